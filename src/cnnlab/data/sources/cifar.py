"""The CIFAR "python version" archives, read without running arbitrary pickle code.

The batches inside ``cifar-10-python.tar.gz`` and ``cifar-100-python.tar.gz``
are Python pickles, and unpickling can call any importable function. The
:class:`_RestrictedUnpickler` here resolves only the handful of globals that
rebuilding the batches' numpy arrays needs; anything else (``os.system``,
``builtins.eval``...) raises :class:`~cnnlab.errors.DataError` before it runs.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from cnnlab.data.download import check_md5, download_from_mirrors, extract_archive, md5_file
from cnnlab.data.sources.base import DownloadableSource, SourceData, resize_uint8
from cnnlab.errors import DataError

try:  # numpy >= 2 moved the pickle helpers to numpy._core; old pickles still name numpy.core.
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``, which protocol-2 pickles use for raw bytes.

    Only the latin-1 codec is allowed: other codecs (zlib, bz2...) could be used
    to inflate huge payloads.
    """
    if encoding.lower().replace("-", "").replace("_", "") not in {"latin1", "iso88591"}:
        raise pickle.UnpicklingError(f"codec {encoding!r} is not allowed")
    return text.encode("latin-1", errors)


# (module, name) -> the object the unpickler may use. Nothing else resolves.
_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _numeric._frombuffer,  # type: ignore[attr-defined]
    ("numpy._core.numeric", "_frombuffer"): _numeric._frombuffer,  # type: ignore[attr-defined]
    ("_codecs", "encode"): _latin1_encode,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that builds only dicts, lists, strings, numbers and numpy arrays."""

    def __init__(self, file: Any, path: Path) -> None:
        # latin1 decodes the Python 2 strings of the original batches, including array buffers.
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise DataError(
                self._path,
                f"refusing to unpickle {module}.{name}: a CIFAR batch holds only dicts, "
                "lists and numpy arrays, so this file is not one (or was tampered with)",
            ) from None


def load_pickle(path: Path) -> Any:
    """Unpickle a CIFAR batch or meta file (a dict) with the restricted unpickler.

    Raises:
        DataError: Naming the file, when it is missing, corrupt, or needs any
            global outside the allowed numpy helpers.
    """
    path = Path(path)
    try:
        with path.open("rb") as handle:
            return _RestrictedUnpickler(handle, path).load()
    except DataError:
        raise
    except FileNotFoundError as exc:
        raise DataError(path, "file not found") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(path, f"corrupt CIFAR batch ({type(exc).__name__}: {exc})") from exc


def read_cifar_batch(path: Path, label_key: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Read one CIFAR batch into uint8 images ``[N, 3, 32, 32]`` and int64 labels ``[N]``.

    ``label_key`` is ``labels`` for CIFAR-10, ``fine_labels`` or ``coarse_labels`` for CIFAR-100.

    Raises:
        DataError: Naming the file, when it lacks the keys or has inconsistent sizes.
    """
    batch = load_pickle(path)
    if not isinstance(batch, dict) or "data" not in batch or label_key not in batch:
        raise DataError(path, f"not a CIFAR batch: expected a dict with 'data' and {label_key!r}")
    data, labels = batch["data"], np.asarray(batch[label_key])
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise DataError(path, "'data' must be a uint8 array [N, 3072]")
    if data.shape[1] != _PIXELS or labels.shape != (data.shape[0],):
        raise DataError(
            path, f"'data' {data.shape} and {label_key!r} {labels.shape} do not match [N, 3072]"
        )
    if labels.size and (labels.dtype.kind not in "iu" or labels.min() < 0):
        raise DataError(path, f"{label_key!r} must be non-negative integers")
    images = torch.from_numpy(data.reshape(-1, 3, _SIDE, _SIDE).copy())
    return images, torch.from_numpy(labels.astype(np.int64))


class CifarSource(DownloadableSource):
    """A CIFAR data set from its python-version archive. Subclasses set the class variables.

    The archive goes to ``<root>/<archive>`` and is extracted (safely) next to
    it, giving ``<root>/<folder>/`` as torchvision lays it out. Arguments are those of
    :class:`~cnnlab.data.sources.base.DownloadableSource`; ``checksums`` are ``{archive: md5}``.
    """

    archive: ClassVar[str]
    folder: ClassVar[str]
    default_mirrors: ClassVar[tuple[str, ...]] = ("https://www.cs.toronto.edu/~kriz/",)
    train_batches: ClassVar[tuple[str, ...]]
    test_batches: ClassVar[tuple[str, ...]]
    meta_file: ClassVar[str]
    meta_key: ClassVar[str]
    label_key: ClassVar[str]

    native_size: ClassVar[int] = _SIDE

    @property
    def required_files(self) -> tuple[str, ...]:
        """The archive, as named on the mirrors."""
        return (self.archive,)

    @property
    def data_dir(self) -> Path:
        """The extracted folder holding the batches."""
        return self.root / self.folder

    def _missing(self) -> list[str]:
        names = (*self.train_batches, *self.test_batches, self.meta_file)
        return [name for name in names if not (self.data_dir / name).is_file()]

    def _extract(self, archive: Path) -> None:
        check_md5(archive, md5_file(archive), self.checksums[self.archive], "; delete it")
        extract_archive(archive, self.root)
        missing = self._missing()
        if missing:
            raise DataError(archive, f"archive lacks {self.folder}/{', '.join(missing)}")

    def prepare(self) -> None:
        """Download (when allowed) and extract the archive unless the batches are already there."""
        if not self._missing():
            return
        archive = self.root / self.archive
        if not archive.is_file():
            if not self.download:
                return
            download_from_mirrors(
                self.archive, self.mirrors, self.root, self.checksums[self.archive], self.timeout
            )
        self._extract(archive)

    def load(self) -> SourceData:
        """Read all batches (extracting, and downloading when allowed, if needed)."""
        self.prepare()
        if self._missing():
            mirror = self.mirrors[0].rstrip("/") if self.mirrors else "the CIFAR website"
            raise DataError(
                self.data_dir,
                f"not found. Set data.source.download=true to fetch it, or download "
                f"{mirror}/{self.archive} by hand and place it in {self.root}",
            )
        meta = load_pickle(self.data_dir / self.meta_file)
        if not isinstance(meta, dict) or not isinstance(meta.get(self.meta_key), list):
            raise DataError(self.data_dir / self.meta_file, f"lacks the list {self.meta_key!r}")
        classes = [str(name) for name in meta[self.meta_key]]
        train = self._read(self.train_batches, len(classes))
        test = self._read(self.test_batches, len(classes))
        return SourceData(train=train, test=test, val=None, classes=classes)

    def _read(self, names: Sequence[str], num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
        parts = []
        for name in names:
            images, labels = read_cifar_batch(self.data_dir / name, self.label_key)
            if labels.numel() and int(labels.max()) >= num_classes:
                raise DataError(
                    self.data_dir / name,
                    f"label {int(labels.max())} but {self.meta_file} names {num_classes} classes",
                )
            parts.append((images, labels))
        images = resize_uint8(torch.cat([p[0] for p in parts]), self.image_size)
        return images, torch.cat([p[1] for p in parts])
