"""Data: the Lightning data module, data set sources, downloads and augmentation.

``ImageDataModule`` is imported on first use, so reading a source (or the
Hydra target ``cnnlab.data.sources...``) does not pay for importing Lightning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cnnlab.data.datamodule import ImageDataModule

__all__ = ["ImageDataModule"]


def __getattr__(name: str) -> Any:
    # PEP 562 lazy attribute: Hydra's `cnnlab.data.ImageDataModule` target resolves through here.
    if name == "ImageDataModule":
        from cnnlab.data.datamodule import ImageDataModule

        return ImageDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
