"""Batched augmentation policies: contracts every policy keeps, and config errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf

from cnnlab.data.augmentation import POLICIES, BatchAugmentation, build_augmentation
from cnnlab.errors import ConfigError

CONF_DIR = Path(__file__).resolve().parents[2] / "conf" / "augmentation"
DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


def _policy(name: str) -> BatchAugmentation:
    aug = build_augmentation({"name": name})
    assert isinstance(aug, BatchAugmentation)
    return aug


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("size", [28, 32])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_keeps_shape_dtype_device_and_range(
    name: str, channels: int, size: int, device: str
) -> None:
    x = torch.rand(6, channels, size, size, device=device)
    y = _policy(name).to(device)(x)
    assert y.shape == x.shape
    assert y.dtype == x.dtype
    assert y.device == x.device
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert not torch.equal(y, x)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_policy_returns_the_input_dtype(name: str, dtype: torch.dtype) -> None:
    x = torch.rand(4, 3, 28, 28).to(dtype)
    assert _policy(name)(x).dtype == dtype


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", sorted(POLICIES))
def test_randomness_differs_per_sample(name: str, channels: int) -> None:
    torch.manual_seed(0)
    # One image repeated: any difference between outputs comes from per-sample parameters.
    x = torch.rand(1, channels, 28, 28).expand(8, -1, -1, -1).contiguous()
    y = _policy(name)(x)
    distinct = {tuple(row.tolist()) for row in y.flatten(1).round(decimals=5)}
    assert len(distinct) >= 3


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_same_seed_gives_same_batch(name: str) -> None:
    aug = _policy(name)
    x = torch.rand(8, 3, 32, 32)
    torch.manual_seed(123)
    first = aug(x)
    torch.manual_seed(123)
    second = aug(x)
    torch.manual_seed(124)
    other = aug(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


def test_input_batch_is_not_modified() -> None:
    x = torch.rand(4, 1, 28, 28)
    before = x.clone()
    for name in POLICIES:
        _policy(name)(x)
    assert torch.equal(x, before)


def test_empty_batch_passes_through() -> None:
    x = torch.rand(0, 3, 32, 32)
    assert _policy("randaugment")(x).shape == x.shape


def test_non_batch_input_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        _policy("digits")(torch.rand(3, 28, 28))
    with pytest.raises(ValueError, match="float"):
        _policy("digits")(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_flip_crop_without_padding_only_flips() -> None:
    aug = build_augmentation({"name": "flip_crop", "padding": 0, "flip_p": 1.0})
    assert aug is not None
    x = torch.rand(3, 3, 32, 32)
    assert torch.equal(aug(x), x.flip(-1))


def test_randaugment_at_zero_magnitude_keeps_geometry() -> None:
    # Magnitude 0 makes every op except autocontrast an identity (posterize keeps 8 bits).
    aug = build_augmentation({"name": "randaugment", "n": 1, "m": 0})
    assert aug is not None
    x = torch.rand(16, 1, 28, 28)
    x[:, :, 0, 0], x[:, :, 0, 1] = 0.0, 1.0  # full range already: autocontrast is identity too
    torch.testing.assert_close(aug(x), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cfg", [None, {"name": "none"}])
def test_none_gives_no_module(cfg: dict[str, Any] | None) -> None:
    assert build_augmentation(cfg) is None


@pytest.mark.parametrize("path", sorted(CONF_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_config_file_builds(path: Path) -> None:
    cfg = OmegaConf.load(path)
    assert cfg.name == path.stem
    aug = build_augmentation(cfg)
    if path.stem == "none":
        assert aug is None
    else:
        assert isinstance(aug, BatchAugmentation)
        assert aug(torch.rand(2, 1, 28, 28)).shape == (2, 1, 28, 28)


def test_config_files_cover_every_policy() -> None:
    assert {p.stem for p in CONF_DIR.glob("*.yaml")} == {"none", *POLICIES}


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"name": "mixup"}, "augmentation.name"),
        ({"p": 0.5}, "augmentation.name"),
        ({"name": "digits", "p": 1.5}, "augmentation.p"),
        ({"name": "color", "p": -0.1}, "augmentation.p"),
        ({"name": "flip_crop", "flip_p": 2}, "augmentation.flip_p"),
        ({"name": "digits", "degrees": "ten"}, "augmentation.degrees"),
        ({"name": "digits", "scale": [1.1, 0.9]}, "augmentation.scale"),
        ({"name": "digits", "scale": 0.9}, "augmentation.scale"),
        ({"name": "digits", "flip_p": 0.5}, "augmentation.flip_p"),
        ({"name": "flip_crop", "padding": -1}, "augmentation.padding"),
        ({"name": "flip_crop", "padding": 2.5}, "augmentation.padding"),
        ({"name": "flip_crop", "padding_mode": "wrap"}, "augmentation.padding_mode"),
        ({"name": "color", "hue": 0.7}, "augmentation.hue"),
        ({"name": "erasing", "scale": [0.0, 0.3]}, "augmentation.scale"),
        ({"name": "erasing", "value": True}, "augmentation.value"),
        ({"name": "randaugment", "n": 0}, "augmentation.n"),
        ({"name": "randaugment", "m": 31}, "augmentation.m"),
    ],
)
def test_bad_config_names_the_key(cfg: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_augmentation(cfg)
    assert info.value.key == key
    assert str(info.value).startswith(f"{key}: ")


def test_unknown_policy_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"choose from \['none', .*'randaugment'\]"):
        build_augmentation({"name": "mixup"})


def test_non_mapping_config_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^augmentation: "):
        build_augmentation("digits")  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
def test_flip_crop_gives_each_image_a_window_of_its_padded_self(mode: str) -> None:
    aug = build_augmentation({"name": "flip_crop", "padding": 2, "padding_mode": mode})
    assert aug is not None
    x = torch.rand(16, 3, 6, 6)
    torch.manual_seed(0)
    out = aug(x)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode=mode)
    for image, source in zip(out, padded, strict=True):
        windows = [source[:, t : t + 6, c : c + 6] for t in range(5) for c in range(5)]
        assert any(torch.equal(image, w) or torch.equal(image, w.flip(-1)) for w in windows)
