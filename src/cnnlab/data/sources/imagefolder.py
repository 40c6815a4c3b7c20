"""ImageNet-style class folders, decoded from disk with Pillow.

Layout::

    root/train/<class>/*.png|jpg|...   required
    root/val/<class>/...               optional
    root/test/<class>/...              optional

Class names are the sorted sub-folders of ``train/``. With a ``test/``
folder, ``val/`` (when present) is the validation split. Without one,
``val/`` plays the test set, as the ImageNet "val" set does in papers, and
the data module carves the validation split from ``train/``. Images are not
loaded into memory: each is decoded, converted to the configured channels
and resized when a batch asks for it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import Dataset

from cnnlab.data.sources.base import Source, SourceData, check_positive_int
from cnnlab.errors import ConfigError, DataError, first_line

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm")
# Pillow's mode for each supported channel count.
_MODES = {1: "L", 3: "RGB"}


def decode_image(path: Path, in_channels: int, image_size: int) -> Tensor:
    """Decode an image file into uint8 ``[in_channels, image_size, image_size]``.

    One channel converts to greyscale, three to RGB; the image is resized bilinearly.

    Raises:
        DataError: Naming the file, when Pillow cannot read it or it has more pixels
            than Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``).
    """
    mode = _MODES[in_channels]
    try:
        with warnings.catch_warnings():
            # Pillow only warns between the limit and twice it; a network that resizes to
            # a few dozen pixels has no use for such images, and decoding them costs GBs.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                img = opened.convert(mode)
                if img.size != (image_size, image_size):
                    img = img.resize((image_size, image_size), Image.Resampling.BILINEAR)
                array = np.asarray(img, dtype=np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(path, f"image too large to decode safely ({first_line(exc)})") from exc
    except Exception as exc:
        # A hostile or damaged file makes Pillow raise many types (OSError, SyntaxError,
        # EOFError, struct.error, zlib.error, ...): all of them mean "not a readable image".
        raise DataError(path, f"cannot decode image ({first_line(exc)})") from exc
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


@dataclass(eq=False, repr=False)  # identity hash; no repr listing every file
class ImageFileDataset(Dataset[tuple[Tensor, Tensor]]):
    """Image files with int64 ``labels`` ``[len(files)]``, decoded one sample at a time."""

    files: list[Path]
    labels: Tensor
    in_channels: int
    image_size: int

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        image = decode_image(self.files[index], self.in_channels, self.image_size)
        return image, self.labels[index]

    def subset(self, indices: Tensor) -> ImageFileDataset:
        """Return a dataset of only ``indices``, sharing nothing mutable with this one."""
        picked = [self.files[i] for i in indices.tolist()]
        return ImageFileDataset(picked, self.labels[indices], self.in_channels, self.image_size)


def _list_images(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


class ImageFolderSource(Source):
    """Images sorted into one folder per class, for ``train/`` and optionally ``val/``, ``test/``.

    ``in_channels`` 1 converts the images to greyscale, 3 to RGB.

    Raises:
        ConfigError: For an unsupported channel count or image size below 1.
    """

    def __init__(self, root: str | os.PathLike[str], image_size: int = 64, in_channels: int = 3):
        self.root = Path(root).expanduser()
        self.image_size = check_positive_int("data.image_size", image_size)
        if in_channels not in _MODES:
            raise ConfigError(
                "data.in_channels", f"image folders support 1 or 3 channels, got {in_channels!r}"
            )
        self.in_channels = int(in_channels)
        self._remember("root", "image_size", "in_channels")

    def _index(self, split_dir: Path, classes: list[str]) -> ImageFileDataset:
        """List the images of one split; class folders must be among ``classes``."""
        if not split_dir.is_dir():
            raise DataError(split_dir, "folder not found")
        lookup = {name: i for i, name in enumerate(classes)}
        files: list[Path] = []
        labels: list[int] = []
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            if class_dir.name not in lookup:
                raise DataError(
                    class_dir, f"class {class_dir.name!r} is not among the train/ classes"
                )
            images = _list_images(class_dir)
            files += images
            labels += [lookup[class_dir.name]] * len(images)
        if not files:
            raise DataError(
                split_dir, f"no images ({', '.join(IMAGE_EXTENSIONS)}) in its class folders"
            )
        tensor = torch.tensor(labels, dtype=torch.int64)
        return ImageFileDataset(files, tensor, self.in_channels, self.image_size)

    def load(self) -> SourceData:
        """Index the image files (nothing is decoded yet).

        Raises:
            DataError: Naming the path, when ``root``, ``train/`` or a needed
                split is missing, a train class folder is empty, or a split has
                a class train/ lacks.
        """
        train_dir = self.root / "train"
        if not train_dir.is_dir():
            raise DataError(train_dir, "folder not found; expected root/train/<class>/<images>")
        classes = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
        if not classes:
            raise DataError(train_dir, "has no class folders; expected train/<class>/<images>")
        for name in classes:
            if not _list_images(train_dir / name):
                raise DataError(train_dir / name, "class folder has no images")
        train = self._index(train_dir, classes)
        val_dir, test_dir = self.root / "val", self.root / "test"
        if test_dir.is_dir():
            test = self._index(test_dir, classes)
            val = self._index(val_dir, classes) if val_dir.is_dir() else None
        elif val_dir.is_dir():
            test, val = self._index(val_dir, classes), None
        else:
            raise DataError(self.root, "needs a val/ or test/ folder next to train/")
        return SourceData(train=train, test=test, val=val, classes=classes)


def find_images(path: Path) -> list[Path]:
    """Return ``path`` itself or the images under it, sorted; DataError when there are none."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(path, "input: no such file or folder")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(
            path, f"input: no image files ({', '.join(IMAGE_EXTENSIONS)}) in this folder"
        )
    return files
