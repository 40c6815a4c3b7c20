"""What every data source returns, and the small helpers the sources share.

A source turns files (or a generator) into :class:`SourceData`: uint8 images
``[N, C, H, W]`` and int64 labels ``[N]`` per split, held in memory, or a
disk-backed dataset for image folders. The data module does the rest
(validation split, statistics, loaders), so a source stays a plain reader.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F

from cnnlab.errors import ConfigError

# One in-memory split: uint8 images [N, C, H, W] and int64 labels [N].
TensorSplit = tuple[Tensor, Tensor]

# Images are resized in chunks so a 60k-image set never needs one huge float copy.
_RESIZE_CHUNK = 4096


@dataclass(frozen=True)
class SourceData:
    """The splits of one data set as a source delivers them.

    Attributes:
        train: The training split: a ``(images, labels)`` pair of tensors, or a
            disk-backed dataset with a ``labels`` tensor (image folders).
        test: The test split, same kind as ``train``.
        val: The validation split when the data set ships one; ``None`` lets the
            data module carve it from ``train``.
        classes: Class names, index ``i`` naming label ``i``.
    """

    train: Any
    test: Any
    val: Any | None
    classes: list[str]


class Source(ABC):
    """A data set reader. Subclasses set ``self._settings`` to their constructor arguments."""

    _settings: dict[str, Any]

    def _remember(self, *names: str) -> None:
        """Set ``_settings`` from the named attributes, paths as text (plain values for YAML)."""
        values = {name: getattr(self, name) for name in names}
        self._settings = {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}

    def prepare(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Fetch missing files when the source may download. Runs once, on rank 0.

        Sources without files (generated or bundled data) have nothing to do.
        """

    @abstractmethod
    def load(self) -> SourceData:
        """Read the data set into memory (or index its files) and return its splits."""

    def config(self) -> dict[str, Any]:
        """The settings that rebuild this source, with its ``_target_``: hparams, checkpoints."""
        target = f"{type(self).__module__}.{type(self).__qualname__}"
        return {"_target_": target, **self._settings}


class DownloadableSource(Source):
    """A source read from files that can be fetched from mirrors and checked by md5.

    Subclasses set ``default_mirrors``, ``default_checksums`` and ``native_size``, and
    name the files that need a checksum in :attr:`required_files`.

    Args:
        root: Folder holding the data sets.
        download: Fetch missing files from ``mirrors``.
        image_size: Side of the images after a one-time bilinear resize (None keeps them).
        mirrors: Base URLs to try in order; ``None`` uses the upstream mirrors.
        checksums: ``filename -> md5``; ``None`` uses the upstream checksums.
        timeout: Seconds per connection and read while downloading.
    """

    default_mirrors: ClassVar[tuple[str, ...]]
    default_checksums: ClassVar[Mapping[str, str]]
    native_size: ClassVar[int]

    def __init__(
        self,
        root: str | os.PathLike[str],
        download: bool = False,
        image_size: int | None = None,
        mirrors: Sequence[str] | None = None,
        checksums: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.root = Path(root).expanduser()
        self.download = bool(download)
        size = self.native_size if image_size is None else image_size
        self.image_size = check_positive_int("data.image_size", size)
        self.mirrors = list(self.default_mirrors if mirrors is None else mirrors)
        self.checksums = dict(self.default_checksums if checksums is None else checksums)
        self.timeout = float(timeout)
        missing = [name for name in self.required_files if name not in self.checksums]
        if missing:
            raise ConfigError("data.source.checksums", f"no md5 given for {', '.join(missing)}")
        self._remember("root", "download", "image_size", "mirrors", "checksums", "timeout")

    @property
    @abstractmethod
    def required_files(self) -> tuple[str, ...]:
        """The files, as named on the mirrors, whose md5 must be known."""


def check_positive_int(key: str, value: object, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum``, or raise ConfigError naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(key, f"must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ConfigError(key, f"must be >= {minimum}, got {value}")
    return int(value)


def check_fraction(key: str, value: object) -> float:
    """Return ``value`` as a float strictly between 0 and 1, or raise ConfigError naming ``key``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(key, f"must be a number in (0, 1), got {value!r}")
    if not 0.0 < float(value) < 1.0:
        raise ConfigError(key, f"must be in (0, 1), got {value}")
    return float(value)


def resize_uint8(images: Tensor, size: int) -> Tensor:
    """Resize uint8 images ``[N, C, H, W]`` to ``size`` x ``size`` with bilinear interpolation.

    Downscaling uses antialiasing so thin strokes do not alias away. Returns the
    input unchanged when it already has the requested size.
    """
    if images.shape[-2:] == (size, size):
        return images
    shrinking = images.shape[-1] > size or images.shape[-2] > size
    chunks = []
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start : start + _RESIZE_CHUNK].float()
        out = F.interpolate(
            chunk, size=(size, size), mode="bilinear", align_corners=False, antialias=shrinking
        )
        chunks.append(out.round_().clamp_(0, 255).to(torch.uint8))
    if not chunks:
        return images.new_zeros((0, images.shape[1], size, size))
    return torch.cat(chunks)


def stratified_split(labels: Tensor, fraction: float, seed: int, key: str) -> tuple[Tensor, Tensor]:
    """Split indices so that ``fraction`` of each class goes to the second part.

    The total held-out count is ``round(fraction * N)``; per-class counts are
    the floors of each class's share plus one for the classes with the largest
    remainders, so class proportions match as closely as integers allow. The
    same labels, fraction and seed always give the same split.

    Returns:
        ``(keep, held_out)``: sorted int64 index tensors, disjoint, covering ``0..N-1``.

    Raises:
        ConfigError: Naming ``key`` (the fraction's), when either part would be empty.
    """
    y = labels.numpy()
    total = len(y)
    n_held = round(fraction * total)
    if n_held < 1 or n_held > total - 1:
        raise ConfigError(
            key, f"{fraction} of {total} samples holds out {n_held}, which leaves an empty split"
        )
    classes, counts = np.unique(y, return_counts=True)
    shares = counts * (n_held / total)
    quota = np.floor(shares).astype(np.int64)
    # Largest-remainder rounding; the stable sort breaks ties by class order, deterministically.
    order = np.argsort(-(shares - quota), kind="stable")
    quota[order[: n_held - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    held = [
        rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)
    ]
    held_idx = np.sort(np.concatenate(held))
    mask = np.ones(total, dtype=bool)
    mask[held_idx] = False
    keep_idx = np.flatnonzero(mask)
    return torch.from_numpy(keep_idx).long(), torch.from_numpy(held_idx).long()
