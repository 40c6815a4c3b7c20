"""Pieces the architecture families share: layer factories, stems, heads, option checks.

Every family adapts to the input size the same way: ``stem: auto`` picks the
paper's (ImageNet) stem for inputs larger than :data:`SMALL_MAX` pixels and the
small-input (CIFAR-style) stem otherwise; ``stem: imagenet`` or ``stem: small``
forces one. Option checks raise a plain ``ValueError``/``TypeError`` whose message
starts with ``model.<option>: ``, which the task layer turns into a one-line config
error naming that key.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any, ClassVar, NamedTuple, TypedDict

import torch
from torch import nn

from cnnlab.config import plain
from cnnlab.models.layers import (
    DropoutSites,
    GlobalAvgPool,
    WeightInit,
    conv,
    init_weights,
    pool,
)
from cnnlab.models.layers._spec import keyed

__all__ = [
    "BATCH_NORM",
    "NO_NORM",
    "RELU",
    "SMALL_MAX",
    "STEMS",
    "Classifier",
    "Factory",
    "Layers",
    "NetArgs",
    "NormAct",
    "check_bool",
    "check_choice",
    "check_positive_float",
    "check_positive_int",
    "check_scalar_or_list",
    "image_hw",
    "make_divisible",
    "numbered",
    "shortcut",
    "stack",
    "stem_layers",
]

# A layer factory made by the layer factory: norm(channels), act(), dropout().
Factory = Callable[..., nn.Module]
#: What ``activation: relu`` resolves to (in place: saves memory).
RELU: Factory = partial(nn.ReLU, inplace=True)


class NormAct(TypedDict):
    """The norm and activation factories of a conv unit (``conv(..., **layers.unit)``)."""

    norm: Factory
    act: Factory


class Layers(NamedTuple):
    """The layer choices a family builds with, resolved once by :func:`build_model`.

    A family's default (``default_layers = BATCH_NORM``) is its paper's choice; the
    ``norm`` and ``activation`` groups replace it, ``init`` and ``dropout`` apply
    where given.
    """

    norm: Factory = nn.Identity
    act: Factory = RELU
    init: WeightInit | None = None
    dropout: DropoutSites = DropoutSites()

    @property
    def unit(self) -> NormAct:
        """The norm and activation after a conv: ``conv(..., **layers.unit)``."""
        return {"norm": self.norm, "act": self.act}


#: The defaults of families whose papers have no norm layers, and of those with batch norm.
NO_NORM = Layers()
BATCH_NORM = Layers(norm=nn.BatchNorm2d)


class NetArgs(NamedTuple):
    """What :func:`~cnnlab.models.build_model` hands every family, checked and resolved.

    Attributes:
        in_channels: Input channels.
        num_classes: Outputs.
        image_size: (height, width), or None when unknown (ImageNet-size stems).
        layers: Norm, activation, init and dropout (the family's paper's where not set).
    """

    in_channels: int
    num_classes: int
    image_size: tuple[int, int] | None
    layers: Layers

    def stem(self, choice: str) -> str:
        """Resolve ``model.stem`` (auto, imagenet, small) to imagenet or small for this input
        (imagenet when its size is unknown)."""
        check_choice("stem", choice, STEMS)
        if choice != "auto":
            return choice
        small = self.image_size is not None and max(self.image_size) <= SMALL_MAX
        return "small" if small else "imagenet"

    def head(self, channels: int) -> nn.Sequential:
        """The modern head: global average pooling, dropout, one linear layer.

        Returns:
            ``Sequential(pool, drop, fc)`` mapping (N, channels, H, W) to (N, num_classes).
        """
        drop, fc = self.layers.dropout.fc(), nn.Linear(channels, self.num_classes)
        return nn.Sequential(OrderedDict(pool=GlobalAvgPool(), drop=drop, fc=fc))


class Classifier(nn.Module):
    """A network as named parts run in order (``stem``, ``features``, ``head``...).

    A family builds its parts and hands them over by name. The names start every
    state_dict key (``head.fc.weight``), so they are the checkpoint format: keep them
    when a family changes. The weights are initialised once, after every part exists,
    with the ``init`` group's scheme (PyTorch's own when none is given). A family checks
    its options: a bad value raises ``ValueError``/``TypeError('model.<option>: ...')``.

    Attributes:
        default_layers: The paper's norm and activation, the family's default; the
            ``norm``/``activation`` groups replace them (``norm: reference`` keeps them).
    """

    default_layers: ClassVar[Layers] = NO_NORM

    def __init__(self, args: NetArgs, **parts: nn.Module) -> None:
        super().__init__()
        for name, part in parts.items():
            self.add_module(name, part)
        init_weights(self, args.layers.init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) for images (N, in_channels, H, W)."""
        for part in self.children():
            x = part(x)
        return x


STEMS = ("auto", "imagenet", "small")
#: Largest input side that gets the small-input stem under ``stem: auto`` (CIFAR is 32,
#: MNIST 28, Tiny ImageNet 64); the ImageNet stems divide the input by 4 before stage 1.
SMALL_MAX = 64


def image_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    """Read ``data.image_size`` (one side, or [height, width]) as (height, width).

    Raises:
        ValueError: ``data.image_size: ...`` unless it is one or two positive ints.
    """
    size = plain(image_size)
    pair = [size, size] if isinstance(size, int) else size
    if not isinstance(pair, list) or len(pair) != 2:
        raise keyed("data.image_size", f"must be a positive int or [height, width], got {size!r}")
    return check_positive_int("image_size", pair[0], "data"), check_positive_int(
        "image_size", pair[1], "data"
    )


def stem_layers(
    kind: str,
    in_channels: int,
    width: int,
    layers: Layers,
    kernel: int = 7,
    names: tuple[str, str] = ("stem", "pool"),
    pooled: bool = True,
) -> OrderedDict[str, nn.Module]:
    """The stem: ``imagenet`` is a kxk/2 conv and 3x3/2 max pooling, ``small`` one 3x3/1 conv.

    ``kind`` comes from :meth:`NetArgs.stem`, ``names`` name the conv and the pooling,
    and ``pooled`` false leaves the ImageNet stem's pooling out (MobileNet's stem).
    """
    small = kind == "small"
    stem: OrderedDict[str, nn.Module] = OrderedDict()
    stem[names[0]] = conv(in_channels, width, 3 if small else kernel, stride=1 if small else 2,
                          **layers.unit)  # fmt: skip
    if pooled and not small:
        stem[names[1]] = pool("max", 3, stride=2, padding=1)
    return stem


def shortcut(in_channels: int, out_channels: int, stride: int, norm: Factory) -> nn.Module:
    """A residual block's shortcut: the identity, or where the shape changes a projection
    (a 1x1 strided conv and norm, option B of the ResNet paper)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv(in_channels, out_channels, 1, stride=stride, norm=norm)


def stack(
    make: Callable[..., nn.Module],
    count: int,
    in_channels: int,
    out_channels: int,
    stride: int = 1,
    **first: Any,
) -> list[nn.Module]:
    """The ``count`` blocks of a stage, built by ``make(in_channels=..., stride=...)``.

    The first block changes the width and the resolution (``stride``) and also gets
    the ``first`` keywords; the others read ``out_channels`` at stride 1.
    """
    blocks = [make(in_channels=in_channels, stride=stride, **first)]
    return blocks + [make(in_channels=out_channels, stride=1) for _ in range(count - 1)]


def numbered(prefix: str, modules: Iterable[nn.Module], **after: nn.Module) -> nn.Sequential:
    """``modules`` named ``<prefix>1``, ``<prefix>2``..., then the ``after`` layers by name."""
    parts = OrderedDict((f"{prefix}{j}", m) for j, m in enumerate(modules, start=1))
    return nn.Sequential(OrderedDict(**parts, **after))


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (MobileNet's rule).

    Never rounds down by more than 10%, and never below ``min_value`` (``divisor``
    by default), so that width multipliers keep layers usable and group/channel
    splits valid.

    Example:
        >>> make_divisible(32 * 0.75), make_divisible(3.0)
        (24, 8)
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_choice(option: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is in ``choices``, else raise ``ValueError('model.<option>')``."""
    if isinstance(value, bool) or value not in choices:
        listed = ", ".join(map(str, choices))
        raise keyed(f"model.{option}", f"must be one of {listed}, got {value!r}")
    return value


def check_positive_int(option: str, value: Any, group: str = "model") -> int:
    """Return ``value`` if it is an int >= 1, else raise ``ValueError('<group>.<option>: ...')``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise keyed(f"{group}.{option}", f"must be a positive int, got {value!r}")
    return value


def check_positive_float(option: str, value: Any) -> float:
    """Return ``value`` as a float if it is a number > 0, else raise ``ValueError``."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise keyed(f"model.{option}", f"must be a number > 0, got {value!r}")
    return float(value)


def check_bool(option: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise ``TypeError('model.<option>: ...')``."""
    if not isinstance(value, bool):
        raise keyed(f"model.{option}", f"must be true or false, got {value!r}", TypeError)
    return value


def check_scalar_or_list(
    option: str, value: Any, length: int, check: Callable[[str, Any], Any]
) -> list[Any]:
    """Expand a per-stage option: one value for every stage, or a list with one per stage
    (``length`` stages); ``check`` validates each, e.g. :func:`check_positive_int`.

    Raises:
        ValueError: ``model.<option>: ...`` for a list of the wrong length or a bad value.
    """
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != length:
            raise keyed(
                f"model.{option}",
                f"needs one value per stage ({length}) or a single value, got {list(value)!r}",
            )
        return [check(option, v) for v in value]
    return [check(option, value)] * length


def check_widths(widths: Any) -> tuple[int, ...]:
    """Return ``model.widths`` as a tuple if it is a non-empty list of positive ints."""
    if (
        isinstance(widths, str)
        or not isinstance(widths, Sequence)
        or not widths
        or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths)
    ):
        raise keyed("model.widths", f"must be a non-empty list of positive ints, got {widths!r}")
    return tuple(widths)


def check_min_side(image_size: tuple[int, int] | None, minimum: int, why: str) -> None:
    """Raise ``ValueError('data.image_size: ...')`` if a side is below ``minimum``."""
    if image_size is not None and min(image_size) < minimum:
        raise keyed("data.image_size", f"{why} needs at least {minimum} pixels per side, "
                    f"got {image_size!r}")  # fmt: skip
