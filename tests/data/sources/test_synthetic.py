"""The generated data set: shapes, class balance, determinism and bad settings."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data.sources import SyntheticSource
from cnnlab.errors import ConfigError


def test_shapes_and_balance() -> None:
    data = SyntheticSource(num_samples=120, image_size=12, in_channels=3, num_classes=6).load()
    (x, y), (xt, yt) = data.train, data.test
    assert x.shape == (96, 3, 12, 12) and xt.shape == (24, 3, 12, 12)
    assert x.dtype == torch.uint8 and y.dtype == torch.int64
    assert y.bincount().tolist() == [16] * 6 and yt.bincount().tolist() == [4] * 6
    assert data.classes == [f"class_{i}" for i in range(6)]


def test_deterministic_per_seed() -> None:
    a = SyntheticSource(num_samples=60, image_size=8, seed=5).load()
    b = SyntheticSource(num_samples=60, image_size=8, seed=5).load()
    c = SyntheticSource(num_samples=60, image_size=8, seed=6).load()
    assert torch.equal(a.train[0], b.train[0]) and torch.equal(a.test[1], b.test[1])
    assert not torch.equal(a.train[0], c.train[0])


def test_classes_are_separable_by_their_means() -> None:
    # Nearest class mean on the training split classifies the test split: the set is learnable.
    data = SyntheticSource(num_samples=400, image_size=8, num_classes=5, seed=0).load()
    (x, y), (xt, yt) = data.train, data.test
    means = torch.stack([x[y == k].float().mean(0) for k in range(5)]).flatten(1)
    pred = torch.cdist(xt.float().flatten(1), means).argmin(1)
    assert (pred == yt).float().mean() > 0.95


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"num_samples": 10, "num_classes": 10}, "data.source.num_samples"),
        ({"num_classes": 1}, "data.num_classes"),
        ({"in_channels": 0}, "data.in_channels"),
        ({"image_size": 0}, "data.image_size"),
        ({"noise": -1.0}, "data.source.noise"),
        ({"test_fraction": 1.0}, "data.source.test_fraction"),
        ({"num_samples": 40, "num_classes": 10, "test_fraction": 0.1}, "data.source.test_fraction"),
    ],
)
def test_bad_settings_name_their_key(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        SyntheticSource(**kwargs)  # type: ignore[arg-type]
    assert str(err.value).startswith(key + ":")
