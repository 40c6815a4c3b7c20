"""scikit-learn's bundled handwritten digits: the offline default data set.

1,797 8x8 images with values 0..16 (UCI "Optical Recognition of Handwritten
Digits"), shipped inside scikit-learn, so training works with no network.
They are scaled to 0..255 and upsampled once, at load, to ``image_size`` so
that the MNIST-sized models (LeNet-5 expects 28x28 or 32x32) fit unchanged.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from cnnlab.data.sources.base import (
    Source,
    SourceData,
    check_fraction,
    check_positive_int,
    resize_uint8,
    stratified_split,
)

# The bundled images use 17 grey levels, 0..16.
_MAX_LEVEL = 16


class DigitsSource(Source):
    """The scikit-learn digits with a seeded, stratified train/test split.

    Args:
        image_size: Side of the images after bilinear upsampling from 8x8.
        test_fraction: Share of each class held out as the test set.
        seed: Seed of the split; the same seed always gives the same split.

    Raises:
        ConfigError: For an image size below 1 or a fraction outside (0, 1).
    """

    def __init__(self, image_size: int = 28, test_fraction: float = 0.2, seed: int = 0) -> None:
        self.image_size = check_positive_int("data.image_size", image_size)
        self.test_fraction = check_fraction("data.source.test_fraction", test_fraction)
        self.seed = int(seed)
        self._remember("image_size", "test_fraction", "seed")

    def load(self) -> SourceData:
        """Load, scale, upsample and split the 1,797 digits."""
        pixels, targets = _read_digits()
        scaled = np.rint(pixels * (255.0 / _MAX_LEVEL)).clip(0, 255).astype(np.uint8)
        images = resize_uint8(torch.from_numpy(scaled).reshape(-1, 1, 8, 8), self.image_size)
        labels = torch.from_numpy(targets.astype(np.int64))
        key = "data.source.test_fraction"
        train_idx, test_idx = stratified_split(labels, self.test_fraction, self.seed, key)
        return SourceData(
            train=(images[train_idx], labels[train_idx]),
            test=(images[test_idx], labels[test_idx]),
            val=None,
            classes=[str(name) for name in range(10)],
        )


def _read_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 rows of 64 pixel values (0..16) and their labels (0..9).

    Read straight from the file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``,
    64 pixels then the label per row), which is what ``load_digits`` reads: importing
    ``sklearn.datasets`` itself costs a start-up a good tenth of a second. Where that file
    is not found (another layout), ``load_digits`` reads it.
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, "rt", encoding="ascii") as fh:
                rows = np.loadtxt(fh, delimiter=",", dtype=np.float64)
            return rows[:, :-1], rows[:, -1].astype(np.int64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target
