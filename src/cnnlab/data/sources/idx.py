"""The IDX file format of the MNIST family, and the source they all share.

An IDX file is a 4-byte magic number (two zero bytes, a type code, the number
of dimensions), the dimensions as big-endian int32, then the values row-major.
:func:`read_idx` checks all of it, so a truncated or corrupt download fails
with the file's name instead of a reshape error deep in numpy.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from cnnlab.data.download import download_from_mirrors
from cnnlab.data.sources.base import DownloadableSource, SourceData, resize_uint8
from cnnlab.errors import DataError
from cnnlab.files.atomic import write_bytes_atomic

# IDX type code -> numpy dtype; multi-byte values are big-endian.
_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dtype: code for code, dtype in _IDX_TYPES.items()}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(path, f"cannot read ({exc}); the file is corrupt, delete it") from exc


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, plain or gzip-compressed (``.gz`` suffix), in native byte order.

    Raises:
        DataError: Naming the file, when it is missing, unreadable, has a bad
            magic number, or holds fewer or more values than its header says.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES or raw[3] == 0:
        raise DataError(path, f"not an IDX file (magic number {raw[:4].hex() or 'missing'})")
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(path, f"truncated IDX header: {ndim} dimensions need {header} bytes")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found != expected:
        kind = "truncated" if found < expected else "has trailing bytes"
        raise DataError(
            path, f"IDX data {kind}: dimensions {dims} need {expected} bytes, found {found}"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)
    return data.astype(dtype.newbyteorder("="), copy=True)


def write_idx(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``.

    The file appears atomically. ``array`` needs at least one dimension and a dtype IDX
    supports (uint8, int8, int16, int32, float32, float64); otherwise ValueError.
    """
    path = Path(path)
    big = array.dtype.newbyteorder(">") if array.dtype.itemsize > 1 else array.dtype
    if big not in _IDX_CODES or array.ndim == 0:
        raise ValueError(f"IDX cannot store a {array.ndim}-d {array.dtype} array")
    header = bytes([0, 0, _IDX_CODES[big], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    body = header + np.ascontiguousarray(array, dtype=big).tobytes()
    if path.suffix == ".gz":
        # mtime=0 keeps the bytes (and so the md5) identical across runs.
        body = gzip.compress(body, mtime=0)
    return write_bytes_atomic(path, body)


class IdxSource(DownloadableSource):
    """An MNIST-style data set: four IDX files, 28x28 grayscale, 10 classes.

    Files live in ``<root>/<folder>/raw/`` (the layout torchvision uses, so an
    existing download is reused), either as downloaded (``.gz``) or
    decompressed. Subclasses set the class variables. Arguments are those of
    :class:`~cnnlab.data.sources.base.DownloadableSource`; ``checksums`` are of the ``.gz`` files.
    """

    folder: ClassVar[str]
    class_names: ClassVar[tuple[str, ...]]
    train_files: ClassVar[tuple[str, str]] = (
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    )
    test_files: ClassVar[tuple[str, str]] = (
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    )
    native_size: ClassVar[int] = 28

    @property
    def required_files(self) -> tuple[str, ...]:
        """The four files, as named on the mirrors."""
        return self.train_files + self.test_files

    @property
    def raw_dir(self) -> Path:
        """The folder holding the IDX files."""
        return self.root / self.folder / "raw"

    def _find(self, filename: str) -> Path | None:
        """Return the file as downloaded or decompressed, whichever exists."""
        for candidate in (self.raw_dir / filename, self.raw_dir / filename.removesuffix(".gz")):
            if candidate.is_file():
                return candidate
        return None

    def _missing(self) -> tuple[str, str]:
        """``("2 of the 4 files", "a, b")``: what a manual copy into :attr:`raw_dir` needs."""
        missing = [n for n in self.required_files if self._find(n) is None]
        return f"{len(missing)} of the {len(self.required_files)} files", ", ".join(missing)

    def prepare(self) -> None:
        """Download the files that are missing, when ``download`` is set."""
        if not self.download:
            return
        for name in self.required_files:
            if self._find(name) is None:
                try:
                    download_from_mirrors(
                        name, self.mirrors, self.raw_dir, self.checksums[name], self.timeout
                    )
                except DataError as exc:
                    # Offline, every file fails alike: name all that a manual copy needs.
                    count, names = self._missing()
                    raise DataError(
                        exc.path,
                        f"{exc.message}. {self.raw_dir} lacks {count}: {names} (each plain or .gz)",
                    ) from None

    def _require(self, filename: str) -> Path:
        found = self._find(filename)
        if found is not None:
            return found
        mirror = self.mirrors[0].rstrip("/") if self.mirrors else "the data set's website"
        count, names = self._missing()
        raise DataError(
            self.raw_dir / filename,
            f"not found ({count} are missing: {names}). Set data.source.download=true to "
            f"fetch them, or download them from {mirror}/ and place them (plain or .gz) in "
            f"{self.raw_dir}",
        )

    def _read_split(self, images_file: str, labels_file: str) -> tuple[torch.Tensor, torch.Tensor]:
        images_path, labels_path = self._require(images_file), self._require(labels_file)
        images, labels = read_idx(images_path), read_idx(labels_path)
        if images.dtype != np.uint8 or images.ndim != 3:
            raise DataError(images_path, f"expected uint8 [N, H, W] images, got {images.shape}")
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise DataError(labels_path, f"has {labels.shape} labels for {images.shape[0]} images")
        if labels.size and int(labels.max()) >= len(self.class_names):
            raise DataError(
                labels_path, f"label {int(labels.max())} outside 0..{len(self.class_names) - 1}"
            )
        x = resize_uint8(torch.from_numpy(images).unsqueeze(1), self.image_size)
        return x, torch.from_numpy(labels.astype(np.int64))

    def load(self) -> SourceData:
        """Read the four IDX files (downloading first when allowed and missing)."""
        self.prepare()
        train = self._read_split(*self.train_files)
        test = self._read_split(*self.test_files)
        return SourceData(train=train, test=test, val=None, classes=list(self.class_names))
