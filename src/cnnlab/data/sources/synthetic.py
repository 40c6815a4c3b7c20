"""A generated, learnable image set of any size, shape and class count.

Each class is a fixed random smooth pattern (a coarse random grid upsampled
bilinearly); a sample is its class pattern plus Gaussian pixel noise. Classes
are well separated, so a short training run reaches high accuracy, which makes
the set a fast, offline check that a model and training loop actually learn.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from cnnlab.data.sources.base import (
    Source,
    SourceData,
    check_fraction,
    check_positive_int,
    stratified_split,
)
from cnnlab.errors import ConfigError

# Side of the random grid a prototype is upsampled from; small means smooth.
_GRID = 4


class SyntheticSource(Source):
    """Class prototypes plus noise, generated from ``seed``.

    Args:
        num_samples: Total number of images (train and test together).
        image_size: Side of the square images.
        in_channels: Channels per image.
        num_classes: Number of classes; samples are spread evenly over them.
        test_fraction: Share of each class held out as the test set.
        noise: Standard deviation of the pixel noise, in units of the [0, 1] range.
        seed: Seed of the prototypes, noise and split.

    Raises:
        ConfigError: For sizes below their minimum, too few samples for the
            classes, negative noise or a fraction outside (0, 1).
    """

    def __init__(
        self,
        num_samples: int = 2000,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        test_fraction: float = 0.2,
        noise: float = 0.2,
        seed: int = 0,
    ) -> None:
        self.image_size = check_positive_int("data.image_size", image_size)
        self.in_channels = check_positive_int("data.in_channels", in_channels)
        self.num_classes = check_positive_int("data.num_classes", num_classes, minimum=2)
        self.num_samples = check_positive_int("data.source.num_samples", num_samples)
        self.test_fraction = check_fraction("data.source.test_fraction", test_fraction)
        # Each class needs a sample in train and one in test.
        if self.num_samples < 2 * self.num_classes:
            raise ConfigError(
                "data.source.num_samples",
                f"{self.num_samples} is too few for {self.num_classes} classes "
                f"(need at least {2 * self.num_classes})",
            )
        # ... and the fraction must leave each side at least one sample per class.
        n_test = round(self.test_fraction * self.num_samples)
        if n_test < self.num_classes or self.num_samples - n_test < self.num_classes:
            raise ConfigError(
                "data.source.test_fraction",
                f"{self.test_fraction} of {self.num_samples} samples leaves a split with "
                f"fewer samples than the {self.num_classes} classes",
            )
        if isinstance(noise, bool) or not isinstance(noise, int | float) or noise < 0:
            raise ConfigError("data.source.noise", f"must be a number >= 0, got {noise!r}")
        self.noise = float(noise)
        self.seed = int(seed)
        self._remember(
            "num_samples",
            "image_size",
            "in_channels",
            "num_classes",
            "test_fraction",
            "noise",
            "seed",
        )

    def load(self) -> SourceData:
        """Generate the images and split them, stratified, into train and test."""
        gen = torch.Generator().manual_seed(self.seed)
        grid = torch.rand(self.num_classes, self.in_channels, _GRID, _GRID, generator=gen)
        size = (self.image_size, self.image_size)
        prototypes = F.interpolate(grid, size=size, mode="bilinear", align_corners=True)
        labels = torch.arange(self.num_samples) % self.num_classes
        labels = labels[torch.randperm(self.num_samples, generator=gen)]
        noise = torch.randn(self.num_samples, self.in_channels, *size, generator=gen).mul_(
            self.noise
        )
        images = (prototypes[labels] + noise).clamp_(0, 1).mul_(255).round_().to(torch.uint8)
        key = "data.source.test_fraction"  # checked in __init__, so never raised here
        train_idx, test_idx = stratified_split(labels, self.test_fraction, self.seed, key)
        return SourceData(
            train=(images[train_idx], labels[train_idx]),
            test=(images[test_idx], labels[test_idx]),
            val=None,
            classes=[f"class_{i}" for i in range(self.num_classes)],
        )
