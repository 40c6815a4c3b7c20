"""CIFAR sources: archives from a loopback server, safe extraction, the restricted unpickler."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from cnnlab.data.download import extract_archive
from cnnlab.data.sources import Cifar10Source, Cifar100Source
from cnnlab.data.sources.cifar import load_pickle, read_cifar_batch
from cnnlab.errors import DataError

MakeArchive = Callable[..., dict[str, Any]]


class _RunsShell:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def test_download_extract_load_cifar10(
    http_server: tuple[str, Path], make_cifar_archive: MakeArchive, tmp_path: Path
) -> None:
    url, served = http_server
    made = make_cifar_archive(served)
    root = tmp_path / "data"
    source = Cifar10Source(
        root, download=True, mirrors=[url], checksums={made["path"].name: made["md5"]}
    )
    data = source.load()
    x, y = data.train
    assert x.shape == (60, 3, 32, 32) and x.dtype == torch.uint8
    assert y.tolist() == made["train"] and data.test[1].tolist() == made["test"]
    assert data.classes == made["classes"]
    assert (root / "cifar-10-batches-py" / "data_batch_5").is_file()


def test_cifar100_uses_fine_labels(make_cifar_archive: MakeArchive, tmp_path: Path) -> None:
    made = make_cifar_archive(tmp_path, kind="cifar100")
    # Placed by hand, download disabled: the archive is verified and extracted, no network used.
    source = Cifar100Source(tmp_path, download=False, checksums={made["path"].name: made["md5"]})
    data = source.load()
    assert data.train[1].tolist() == made["train"]
    assert len(data.classes) == 100 and data.classes[3] == "fine3"


def test_resize_once_at_load(make_cifar_archive: MakeArchive, tmp_path: Path) -> None:
    made = make_cifar_archive(tmp_path)
    source = Cifar10Source(tmp_path, image_size=16, checksums={made["path"].name: made["md5"]})
    assert source.load().test[0].shape == (12, 3, 16, 16)


def test_real_archive_checksums() -> None:
    assert Cifar10Source.default_checksums == {
        "cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"
    }
    assert Cifar100Source.default_checksums == {
        "cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"
    }


def test_missing_without_download_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        Cifar10Source(tmp_path, download=False).load()
    message = str(err.value)
    assert message.startswith(str(tmp_path / "cifar-10-batches-py"))
    assert "data.source.download=true" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message


def test_placed_archive_with_wrong_checksum(
    make_cifar_archive: MakeArchive, tmp_path: Path
) -> None:
    made = make_cifar_archive(tmp_path)
    with pytest.raises(DataError, match="checksum mismatch") as err:
        Cifar10Source(tmp_path).load()  # the upstream md5 cannot match the generated archive
    assert str(made["path"]) in str(err.value)


def test_archive_member_escaping_root_is_rejected(
    make_cifar_archive: MakeArchive, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    made = make_cifar_archive(root, extra={"../escaped.txt": b"gotcha"})
    source = Cifar10Source(root, checksums={made["path"].name: made["md5"]})
    with pytest.raises(DataError, match="escape"):
        source.load()
    assert not (tmp_path / "escaped.txt").exists()
    assert not (root / "cifar-10-batches-py").exists()


def test_malicious_pickle_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "data_batch_1"
    evil.write_bytes(pickle.dumps({"data": _RunsShell(marker)}, protocol=2))
    with pytest.raises(DataError, match=r"refusing to unpickle (posix|nt|os)\.system") as err:
        load_pickle(evil)
    assert str(evil) in str(err.value)
    assert not marker.exists()


def test_malicious_batch_inside_a_real_layout_is_refused(
    make_cifar_archive: MakeArchive, tmp_path: Path
) -> None:
    made = make_cifar_archive(tmp_path)
    extract_archive(made["path"], tmp_path)
    marker = tmp_path / "pwned"
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(pickle.dumps(_RunsShell(marker), protocol=4))
    source = Cifar10Source(tmp_path, checksums={made["path"].name: made["md5"]})
    with pytest.raises(DataError, match="refusing to unpickle") as err:
        source.load()
    assert str(batch) in str(err.value)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_unpickle_with_any_protocol(tmp_path: Path, protocol: int) -> None:
    data = np.arange(2 * 3072, dtype=np.uint8).reshape(2, 3072) % 251
    path = tmp_path / "batch"
    path.write_bytes(pickle.dumps({"data": data, "labels": [1, 0]}, protocol=protocol))
    images, labels = read_cifar_batch(path, "labels")
    assert images.shape == (2, 3, 32, 32) and labels.tolist() == [1, 0]
    assert torch.equal(images.reshape(2, -1), torch.from_numpy(data))


def test_codec_other_than_latin1_is_refused(tmp_path: Path) -> None:
    # Hand-written protocol-2 pickle: _codecs.encode("x", "rot13").
    payload = b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x05\x00\x00\x00rot13\x86R."
    path = tmp_path / "batch"
    path.write_bytes(payload)
    with pytest.raises(DataError, match="rot13"):
        load_pickle(path)


def test_truncated_pickle_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "test_batch"
    blob = pickle.dumps({"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 4}, protocol=2)
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt CIFAR batch") as err:
        read_cifar_batch(path, "labels")
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "batch",
    [
        {"data": np.zeros((4, 100), np.uint8), "labels": [0] * 4},
        {"data": np.zeros((4, 3072), np.uint8), "labels": [0] * 3},
        {"data": np.zeros((4, 3072), np.float32), "labels": [0] * 4},
        {"pixels": np.zeros((4, 3072), np.uint8)},
        [1, 2, 3],
    ],
    ids=["wrong-width", "label-count", "dtype", "no-data-key", "not-a-dict"],
)
def test_malformed_batch_names_the_file(tmp_path: Path, batch: Any) -> None:
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError) as err:
        read_cifar_batch(path, "labels")
    assert str(path) in str(err.value)
