"""The IDX reader and writer: round trips, compression, and every corruption it must catch."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from cnnlab.data.sources.idx import read_idx, write_idx
from cnnlab.errors import DataError


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(
    "array",
    [
        np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4),
        np.array([0, 9, 3], dtype=np.uint8),
        np.array([[-5, 300], [7, -32000]], dtype=np.int16),
        np.array([1.5, -2.25], dtype=np.float32),
    ],
    ids=["uint8-3d", "uint8-1d", "int16", "float32"],
)
def test_round_trip(tmp_path: Path, array: np.ndarray, suffix: str) -> None:
    path = write_idx(tmp_path / f"a.idx{suffix}", array)
    back = read_idx(path)
    assert back.dtype == array.dtype.newbyteorder("=")
    np.testing.assert_array_equal(back, array)


def test_gz_is_really_compressed(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "a.gz", np.zeros((3, 2), dtype=np.uint8))
    raw = gzip.decompress(path.read_bytes())
    assert raw[:4] == bytes([0, 0, 0x08, 2])


def test_truncated_file_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "t.idx", np.zeros((10, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="truncated") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_trailing_bytes_are_rejected(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "t.idx", np.zeros(4, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="trailing"):
        read_idx(path)


def test_truncated_header(tmp_path: Path) -> None:
    path = tmp_path / "h.idx"
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0]))
    with pytest.raises(DataError, match="header"):
        read_idx(path)


@pytest.mark.parametrize(
    "head", [b"\x1f\x8b\x08\x03", b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"\x00"]
)
def test_bad_magic_number(tmp_path: Path, head: bytes) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(head + b"\x00" * 8)
    with pytest.raises(DataError, match="not an IDX file") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_corrupt_gzip_names_the_file(tmp_path: Path) -> None:
    path = write_idx(tmp_path / "c.idx.gz", np.zeros((50, 28, 28), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(DataError, match="corrupt") as err:
        read_idx(path)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope.idx")


def test_write_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="IDX cannot store"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.uint16))
    assert list(tmp_path.iterdir()) == []
