"""The bundled scikit-learn digits: split sizes, stratification, determinism, upsampling."""

from __future__ import annotations

import pytest
import torch

from cnnlab.data.sources import DigitsSource
from cnnlab.errors import ConfigError


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = DigitsSource(image_size=28, test_fraction=0.2, seed=0).load()
    return (*data.train, *data.test)


def test_split_sizes_shapes_and_range(digits: tuple[torch.Tensor, ...]) -> None:
    x_train, y_train, x_test, _ = digits
    assert x_train.shape == (1438, 1, 28, 28) and x_test.shape == (359, 1, 28, 28)
    assert x_train.dtype == torch.uint8 and y_train.dtype == torch.int64
    # 0..16 scaled to 0..255: the ink reaches full intensity.
    assert int(x_train.max()) == 255 and int(x_train.min()) == 0


def test_split_is_stratified(digits: tuple[torch.Tensor, ...]) -> None:
    _, y_train, _, y_test = digits
    counts_train, counts_test = y_train.bincount(), y_test.bincount()
    total = counts_train + counts_test
    # Each class's test share is within one sample of 20%.
    assert ((counts_test - 0.2 * total).abs() <= 1).all()


def test_same_seed_same_split_other_seed_differs(digits: tuple[torch.Tensor, ...]) -> None:
    again = DigitsSource(seed=0).load()
    assert torch.equal(again.train[0], digits[0]) and torch.equal(again.test[1], digits[3])
    other = DigitsSource(seed=1).load()
    assert not torch.equal(other.test[0], digits[2])


def test_upsampling_follows_image_size() -> None:
    data = DigitsSource(image_size=32).load()
    assert data.train[0].shape[1:] == (1, 32, 32)
    assert data.classes == [str(i) for i in range(10)]


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_test_fraction(fraction: float) -> None:
    with pytest.raises(ConfigError, match=r"^data\.source\.test_fraction"):
        DigitsSource(test_fraction=fraction)


def test_tiny_test_fraction_leaving_empty_split() -> None:
    with pytest.raises(ConfigError, match=r"^data\.source\.test_fraction: .*empty split"):
        DigitsSource(test_fraction=1e-4).load()


def test_the_bundled_file_is_read_as_scikit_learn_reads_it() -> None:
    import numpy as np
    from sklearn.datasets import load_digits

    from cnnlab.data.sources.digits import _read_digits

    pixels, labels = _read_digits()
    bunch = load_digits()
    assert np.array_equal(pixels, bunch.data) and np.array_equal(labels, bunch.target)
