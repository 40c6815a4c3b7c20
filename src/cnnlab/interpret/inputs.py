"""The images to explain: a fixed sample of a data set's test split, or the user's files."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import ConfigError


@dataclass(frozen=True)
class ImageBatch:
    """Images to explain, with what is known about them.

    Attributes:
        images: uint8 images, (N, C, H, W).
        labels: The true class of each image, or None when unknown (user files).
        sources: Where each image came from (``test[17]`` or a file path).
    """

    images: torch.Tensor
    labels: list[int | None]
    sources: list[str]


def as_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images as floats on [0, 1]; float images are taken to be on that scale already."""
    return images.float() / 255 if images.dtype == torch.uint8 else images.float()


def sample_per_class(
    batches: Iterable[Any], num_classes: int, per_class: int, split: str = "test"
) -> ImageBatch:
    """The first ``per_class`` images of each class, in class order, from a loader's batches.

    Deterministic for an unshuffled loader (the test split), so runs and the
    end-of-training callback show the same images.

    Args:
        batches: ``(images, labels)`` batches, e.g. ``datamodule.test_dataloader()``.
        num_classes: Number of classes.
        per_class: Images wanted per class.
        split: Name of the split, for the ``sources`` entries.

    Raises:
        ConfigError: ``per_class`` unless a positive int.
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ConfigError("per_class", f"must be a positive int, got {per_class!r}")
    chosen: dict[int, list[tuple[int, torch.Tensor]]] = {c: [] for c in range(num_classes)}
    seen = 0
    for images, labels in batches:
        for image, label in zip(images, labels.tolist(), strict=True):
            if label in chosen and len(chosen[label]) < per_class:
                chosen[label].append((seen, image))
            seen += 1
        if all(len(v) == per_class for v in chosen.values()):
            break
    picked = [(c, i, img) for c in range(num_classes) for i, img in chosen[c]]
    if not picked:
        raise ConfigError("per_class", f"the {split} split has no images to show")
    return ImageBatch(
        images=torch.stack([img for _, _, img in picked]),
        labels=[c for c, _, _ in picked],
        sources=[f"{split}[{i}]" for _, i, _ in picked],
    )


def mean_image(batches: Iterable[Any], max_images: int = 10_000) -> torch.Tensor:
    """The mean image (C, H, W) on the [0, 1] scale of up to ``max_images`` images.

    Raises:
        ValueError: When the loader yields no images.
    """
    total: torch.Tensor | None = None
    count = 0
    for images, _ in batches:
        images = as_unit(images[: max_images - count])
        total = images.sum(0) if total is None else total + images.sum(0)
        count += images.shape[0]
        if count >= max_images:
            break
    if total is None or count == 0:
        raise ValueError("no training images to average")
    return total / count


def load_files(path: str | Path, channels: int, size: int) -> ImageBatch:
    """Decode an image file, or the images under a folder, as the network expects them.

    Raises:
        DataError: The path does not exist, holds no images, or an image is unreadable.
    """
    from cnnlab.data.sources.imagefolder import decode_image, find_images

    files = find_images(Path(path))
    return ImageBatch(
        images=torch.stack([decode_image(f, channels, size) for f in files]),
        labels=[None] * len(files),
        sources=[str(f) for f in files],
    )
