"""Batched data augmentation on the device, built from the ``augmentation`` config group.

Every policy works on a whole float batch ``[B, C, H, W]`` in ``[0, 1]`` at once with kornia:
the random parameters are drawn per sample, but no Python loop runs over the samples, so the
same code is fast on a GPU and on a CPU. Policies read their random numbers from torch's global
generator, so ``torch.manual_seed`` makes them repeatable.

Policies (``conf/augmentation/<name>.yaml``): ``none``, ``digits``, ``flip_crop``, ``color``,
``erasing`` and ``randaugment``. The data module applies the returned module to training batches
only; validation and test data are never augmented.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import kornia.augmentation as K
import kornia.enhance as KE
import kornia.geometry.transform as KG
import torch
from torch import Tensor, nn

from cnnlab.config import plain
from cnnlab.errors import ConfigError

__all__ = ["POLICIES", "BatchAugmentation", "RandAugmentPolicy", "build_augmentation"]

_KEY = "augmentation"
_PAD_MODES = ("constant", "reflect", "replicate")


class BatchAugmentation(nn.Module):
    """Applies a kornia pipeline to a batch and keeps its shape, dtype, device and ``[0, 1]`` range.

    ``name`` (the policy's) is shown in ``repr`` and logs.
    """

    def __init__(self, name: str, transform: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.transform = transform

    @torch.no_grad()
    def forward(self, x: Tensor) -> Tensor:
        """Augment a float batch ``[B, C, H, W]`` in ``[0, 1]``; ValueError for anything else."""
        if x.ndim != 4 or not x.is_floating_point():
            raise ValueError(
                f"augmentation expects a float batch [B, C, H, W], got {x.dtype} {tuple(x.shape)}"
            )
        if x.shape[0] == 0:
            return x
        # kornia computes in float32 for the affine warps; hand back what came in.
        out = self.transform(x.float())
        return out.clamp_(0.0, 1.0).to(x.dtype)

    def extra_repr(self) -> str:
        return f"name={self.name!r}"


class _PadCropFlip(nn.Module):
    """Random crop of the zero/reflect/replicate-padded image back to its size, then a flip.

    Pure tensor indexing: one gather picks every image's window, so the cost is one copy of
    the batch (kornia's ``RandomCrop`` builds a crop transform per image and took ~4 ms for
    64 MNIST-size images on a CPU, more than LeNet-5's whole training step).
    """

    def __init__(self, padding: int, padding_mode: str, flip_p: float) -> None:
        super().__init__()
        self.padding = padding
        self.padding_mode = padding_mode
        self.flip_p = flip_p

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, height, width = x.shape
        if self.padding > 0:
            pad = self.padding
            padded = nn.functional.pad(x, (pad, pad, pad, pad), mode=self.padding_mode)
            # Per-image offsets in [0, 2 * pad]: every window lies inside the padded image.
            top = torch.randint(0, 2 * pad + 1, (batch, 1), device=x.device)
            left = torch.randint(0, 2 * pad + 1, (batch, 1), device=x.device)
            rows = (top + torch.arange(height, device=x.device))[:, None, :, None]
            cols = (left + torch.arange(width, device=x.device))[:, None, None, :]
            images = torch.arange(batch, device=x.device)[:, None, None, None]
            planes = torch.arange(channels, device=x.device)[None, :, None, None]
            x = padded[images, planes, rows, cols]
        if self.flip_p > 0:
            flip = torch.rand(batch, device=x.device) < self.flip_p
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x

    def extra_repr(self) -> str:
        return f"padding={self.padding}, padding_mode={self.padding_mode!r}, flip_p={self.flip_p}"


class _ChannelAwareJitter(nn.Module):
    """Colour jitter whose saturation and hue parts are used only for 3-channel (RGB) images.

    Saturation and hue are undefined for one channel; grayscale batches get brightness and
    contrast only, with the same ranges.
    """

    def __init__(
        self, brightness: float, contrast: float, saturation: float, hue: float, p: float
    ) -> None:
        super().__init__()
        self.rgb = K.ColorJitter(brightness, contrast, saturation, hue, p=p)
        self.gray = K.ColorJitter(brightness, contrast, 0.0, 0.0, p=p)

    def forward(self, x: Tensor) -> Tensor:
        return self.rgb(x) if x.shape[1] == 3 else self.gray(x)


# ---------------------------------------------------------------------------------------------
# RandAugment: each op takes the images it applies to, a per-image sign (+1/-1) and the
# magnitude as a fraction f in [0, 1] of its maximum, and is batched over those images.
# The maxima follow torchvision's RandAugment (magnitude bins 0..30).
# ---------------------------------------------------------------------------------------------
_Op = Callable[[Tensor, Tensor, float], Tensor]


def _autocontrast(x: Tensor, sign: Tensor, f: float) -> Tensor:
    # Stretch each image's channels to the full [0, 1]; flat channels are left as they are.
    lo = x.amin(dim=(-2, -1), keepdim=True)
    hi = x.amax(dim=(-2, -1), keepdim=True)
    span = hi - lo
    return torch.where(span > 0, (x - lo) / span.clamp_min(1e-12), x)


def _brightness(x: Tensor, sign: Tensor, f: float) -> Tensor:
    # PIL-style brightness: blend with black, i.e. scale by 1 +/- 0.9 f.
    return (x * (1.0 + 0.9 * f * sign).view(-1, 1, 1, 1)).clamp(0.0, 1.0)


def _contrast(x: Tensor, sign: Tensor, f: float) -> Tensor:
    return KE.adjust_contrast_with_mean_subtraction(x, 1.0 + 0.9 * f * sign)


def _color(x: Tensor, sign: Tensor, f: float) -> Tensor:
    return KE.adjust_saturation(x, 1.0 + 0.9 * f * sign)


def _sharpness(x: Tensor, sign: Tensor, f: float) -> Tensor:
    return KE.sharpness(x, 1.0 + 0.9 * f * sign).clamp(0.0, 1.0)


def _posterize(x: Tensor, sign: Tensor, f: float) -> Tensor:
    bits = torch.full_like(sign, 8 - round(4 * f), dtype=torch.long)
    return KE.posterize(x, bits)


def _solarize(x: Tensor, sign: Tensor, f: float) -> Tensor:
    # kornia inverts pixels >= threshold, so threshold 1.0 would still invert white: skip it.
    return KE.solarize(x, torch.full_like(sign, 1.0 - f)) if f > 0 else x


def _rotate(x: Tensor, sign: Tensor, f: float) -> Tensor:
    return KG.rotate(x, 30.0 * f * sign)


def _shear(axis: int) -> _Op:
    def op(x: Tensor, sign: Tensor, f: float) -> Tensor:
        shear = torch.zeros(sign.shape[0], 2, device=x.device, dtype=x.dtype)
        shear[:, axis] = 0.3 * f * sign
        return KG.shear(x, shear)

    return op


def _translate(axis: int) -> _Op:
    def op(x: Tensor, sign: Tensor, f: float) -> Tensor:
        shift = torch.zeros(sign.shape[0], 2, device=x.device, dtype=x.dtype)
        # Up to 0.45 of the image side, as torchvision's 150/331.
        shift[:, axis] = 0.45 * f * sign * x.shape[-1 - axis]
        return KG.translate(x, shift)

    return op


def _identity(x: Tensor, sign: Tensor, f: float) -> Tensor:
    return x


# Ops valid for any number of channels; "color" (saturation) is added for RGB batches only.
_GRAY_OPS: dict[str, _Op] = {
    "identity": _identity,
    "autocontrast": _autocontrast,
    "brightness": _brightness,
    "contrast": _contrast,
    "sharpness": _sharpness,
    "posterize": _posterize,
    "solarize": _solarize,
    "rotate": _rotate,
    "shear_x": _shear(0),
    "shear_y": _shear(1),
    "translate_x": _translate(0),
    "translate_y": _translate(1),
}
_RGB_OPS: dict[str, _Op] = {**_GRAY_OPS, "color": _color}
_MAX_MAGNITUDE = 30


class RandAugmentPolicy(nn.Module):
    """RandAugment (Cubuk et al., 2019, arXiv:1909.13719) for 1- and 3-channel batches.

    Each image gets its own ``n`` distinct ops drawn uniformly from the op list, each applied at
    magnitude ``m`` (of 30) with a random sign. The loop runs over the ops, never over images: an
    op transforms, in one call, every image that drew it. Ops run in the list's order, unlike the
    paper's random order with repeats. kornia's own ``RandAugment`` is not used because it rejects
    1-channel images and draws one op sequence per batch rather than per image.

    Args:
        n: Ops per image, ``1 <= n <= 12``.
        m: Magnitude, ``0 <= m <= 30``.
    """

    def __init__(self, n: int, m: float) -> None:
        super().__init__()
        self.n = n
        self.m = m

    def forward(self, x: Tensor) -> Tensor:
        ops = _RGB_OPS if x.shape[1] == 3 else _GRAY_OPS
        batch = x.shape[0]
        # Draw on the CPU so a seed gives the same policy on every device.
        scores = torch.rand(batch, len(ops))
        chosen = torch.zeros(batch, len(ops), dtype=torch.bool)
        chosen.scatter_(1, scores.argsort(dim=1)[:, : self.n], True)
        signs = torch.where(torch.rand(batch) < 0.5, -1.0, 1.0)
        f = self.m / _MAX_MAGNITUDE
        out = x.clone()
        for k, op in enumerate(ops.values()):
            rows = chosen[:, k].nonzero().squeeze(1).to(x.device)
            if rows.numel():
                out[rows] = op(out[rows], signs[chosen[:, k]].to(x.device, x.dtype), f)
        return out

    def extra_repr(self) -> str:
        return f"n={self.n}, m={self.m}"


# ---------------------------------------------------------------------------------------------
# Config parsing
# ---------------------------------------------------------------------------------------------
class _Params:
    """Reads and validates a policy's parameters; errors name ``augmentation.<key>``."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)
        self._read: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self._read.add(key)
        return self._values.get(key, default)

    def number(
        self, key: str, default: float, lo: float = -math.inf, hi: float = math.inf
    ) -> float:
        return _check_number(key, self._get(key, default), lo, hi)

    def prob(self, key: str, default: float) -> float:
        return self.number(key, default, 0.0, 1.0)

    def integer(self, key: str, default: int, lo: int, hi: int) -> int:
        return int(_check_number(key, self._get(key, default), lo, hi, integer=True))

    def pair(
        self, key: str, default: tuple[float, float], lo: float, hi: float
    ) -> tuple[float, float]:
        value = self._get(key, default)
        if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 2:
            raise ConfigError(f"{_KEY}.{key}", f"must be a pair [low, high], got {value!r}")
        a, b = (_check_number(key, v, lo, hi) for v in value)
        if a > b:
            raise ConfigError(f"{_KEY}.{key}", f"low must not exceed high, got {list(value)}")
        return a, b

    def choice(self, key: str, default: str, choices: Sequence[str]) -> str:
        value = self._get(key, default)
        if value not in choices:
            raise ConfigError(f"{_KEY}.{key}", f"must be one of {list(choices)}, got {value!r}")
        return str(value)

    def check_all_read(self) -> None:
        unknown = sorted(set(self._values) - self._read)
        if unknown:
            raise ConfigError(
                f"{_KEY}.{unknown[0]}",
                f"unknown parameter for this policy; it takes {sorted(self._read)}",
            )


def _check_number(key: str, value: Any, lo: float, hi: float, integer: bool = False) -> float:
    types, noun = (int, "an integer") if integer else (int | float, "a number")
    if isinstance(value, bool) or not isinstance(value, types) or math.isnan(value):
        raise ConfigError(f"{_KEY}.{key}", f"must be {noun}, got {value!r}")
    if not lo <= value <= hi:
        raise ConfigError(f"{_KEY}.{key}", f"must be in [{lo}, {hi}], got {value!r}")
    return float(value)


def _digits(p: _Params) -> nn.Module:
    # No flips: a mirrored 2 or 7 is not a digit.
    return K.RandomAffine(
        degrees=p.number("degrees", 10.0, 0.0, 180.0),
        translate=(t := p.number("translate", 0.1, 0.0, 1.0), t),
        scale=p.pair("scale", (0.9, 1.1), 1e-3, 10.0),
        p=p.prob("p", 1.0),
    )


def _pad_crop_flip(p: _Params) -> _PadCropFlip:
    return _PadCropFlip(
        padding=p.integer("padding", 4, 0, 1024),
        padding_mode=p.choice("padding_mode", "constant", _PAD_MODES),
        flip_p=p.prob("flip_p", 0.5),
    )


def _color_jitter(p: _Params) -> nn.Module:
    return _ChannelAwareJitter(
        brightness=p.number("brightness", 0.3, 0.0, 1.0),
        contrast=p.number("contrast", 0.3, 0.0, 1.0),
        saturation=p.number("saturation", 0.3, 0.0, 1.0),
        hue=p.number("hue", 0.05, 0.0, 0.5),
        p=p.prob("p", 0.8),
    )


def _erasing(p: _Params) -> nn.Module:
    erase = K.RandomErasing(
        scale=p.pair("scale", (0.02, 0.33), 1e-6, 1.0),
        ratio=p.pair("ratio", (0.3, 3.3), 1e-3, 1e3),
        value=p.number("value", 0.0, 0.0, 1.0),
        p=p.prob("p", 0.5),
    )
    return nn.Sequential(_pad_crop_flip(p), erase)


def _randaugment(p: _Params) -> nn.Module:
    return RandAugmentPolicy(
        n=p.integer("n", 2, 1, len(_GRAY_OPS)),
        m=p.number("m", 9.0, 0.0, _MAX_MAGNITUDE),
    )


# Policy name -> builder; "none" is handled before lookup and gives no module.
POLICIES: dict[str, Callable[[_Params], nn.Module]] = {
    "digits": _digits,
    "flip_crop": _pad_crop_flip,
    "color": _color_jitter,
    "erasing": _erasing,
    "randaugment": _randaugment,
}


def build_augmentation(cfg: Mapping[str, Any] | None) -> BatchAugmentation | None:
    """Build the batch augmentation named by the ``augmentation`` config node.

    Example:
        >>> aug = build_augmentation({"name": "flip_crop", "padding": 4})
        >>> aug(torch.rand(8, 3, 32, 32)).shape
        torch.Size([8, 3, 32, 32])

    Args:
        cfg: The node, with ``name`` and the policy's parameters (missing ones take the
            defaults of ``conf/augmentation/<name>.yaml``). ``None`` means no augmentation.

    Returns:
        A module for float batches ``[B, C, H, W]`` in ``[0, 1]``, or ``None`` for ``none``.

    Raises:
        ConfigError: For an unknown policy (``augmentation.name``), or an invalid or unknown
            parameter (``augmentation.<key>``).
    """
    if cfg is None:
        return None
    if not isinstance(cfg, Mapping):
        raise ConfigError(_KEY, f"must be a mapping with a 'name', got {cfg!r}")
    values = {str(k): v for k, v in plain(cfg).items()}
    name = values.pop("name", None)
    choices = ["none", *POLICIES]
    if name is None:
        raise ConfigError(f"{_KEY}.name", f"missing; choose from {choices}")
    if name == "none":
        return None
    if name not in POLICIES:
        raise ConfigError(f"{_KEY}.name", f"unknown policy {name!r}; choose from {choices}")
    params = _Params(values)
    transform = POLICIES[name](params)
    params.check_all_read()
    return BatchAugmentation(name, transform)
