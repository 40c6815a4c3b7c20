"""MNIST, Fashion-MNIST and KMNIST sources against generated IDX files on a loopback server."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from cnnlab.data.sources import FashionMnistSource, KmnistSource, MnistSource
from cnnlab.data.sources.idx import IdxSource
from cnnlab.errors import ConfigError, DataError

FAMILY = [MnistSource, FashionMnistSource, KmnistSource]


@pytest.mark.parametrize("cls", FAMILY, ids=lambda c: c.__name__)
def test_download_then_load(
    cls: type[IdxSource],
    http_server: tuple[str, Path],
    make_idx_set: Callable[..., dict[str, Any]],
    tmp_path: Path,
) -> None:
    url, served = http_server
    made = make_idx_set(served)
    source = cls(tmp_path / "data", download=True, mirrors=[url], checksums=made["checksums"])
    source.prepare()
    assert sorted(p.name for p in source.raw_dir.iterdir()) == sorted(made["checksums"])
    data = source.load()
    x, y = data.train
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.uint8
    assert y.dtype == torch.int64 and y.tolist() == [i % 10 for i in range(50)]
    expected = torch.from_numpy(made["arrays"]["t10k-images-idx3-ubyte.gz"]).unsqueeze(1)
    assert torch.equal(data.test[0], expected)
    assert data.val is None and len(data.classes) == 10 == len(cls.class_names)


def test_real_checksums_and_mirrors_are_the_upstream_ones() -> None:
    assert MnistSource.default_checksums["train-images-idx3-ubyte.gz"] == (
        "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    )
    assert FashionMnistSource.default_checksums["t10k-labels-idx1-ubyte.gz"] == (
        "bb300cfdad3c16e7a12a480ee83cd310"
    )
    assert KmnistSource.default_checksums["train-labels-idx1-ubyte.gz"] == (
        "e144d726b3acfaa3e44228e80efcd344"
    )
    assert MnistSource.default_mirrors == ("https://ossci-datasets.s3.amazonaws.com/mnist/",)


def test_plain_decompressed_files_are_read(
    make_idx_set: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    raw = tmp_path / "MNIST" / "raw"
    made = make_idx_set(raw)
    for name in made["checksums"]:
        (raw / name.removesuffix(".gz")).write_bytes(gzip.decompress((raw / name).read_bytes()))
        (raw / name).unlink()
    data = MnistSource(tmp_path, download=False).load()
    assert data.train[0].shape == (50, 1, 28, 28)


def test_resize_once_at_load(make_idx_set: Callable[..., dict[str, Any]], tmp_path: Path) -> None:
    make_idx_set(tmp_path / "KMNIST" / "raw")
    data = KmnistSource(tmp_path, image_size=32).load()
    assert data.train[0].shape == (50, 1, 32, 32) and data.train[0].dtype == torch.uint8


def test_missing_without_download_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        MnistSource(tmp_path, download=False).load()
    message = str(err.value)
    assert message.startswith(str(tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"))
    assert "data.source.download=true" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist" in message


def test_no_network_names_url_and_manual_alternative(dead_url: str, tmp_path: Path) -> None:
    source = FashionMnistSource(tmp_path, download=True, mirrors=[dead_url], timeout=5)
    with pytest.raises(DataError) as err:
        source.load()
    message = str(err.value)
    assert dead_url + "train-images-idx3-ubyte.gz" in message
    assert "by hand" in message
    assert list(source.raw_dir.iterdir()) == []


def test_corrupt_download_is_rejected_by_checksum(
    http_server: tuple[str, Path], make_idx_set: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    url, served = http_server
    made = make_idx_set(served)
    wrong = dict(made["checksums"], **{"train-labels-idx1-ubyte.gz": "f" * 32})
    source = MnistSource(tmp_path, download=True, mirrors=[url], checksums=wrong)
    with pytest.raises(DataError, match="checksum mismatch"):
        source.prepare()
    assert not (source.raw_dir / "train-labels-idx1-ubyte.gz").exists()


def test_truncated_file_on_disk_names_it(
    make_idx_set: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    raw = tmp_path / "MNIST" / "raw"
    make_idx_set(raw)
    bad = raw / "t10k-images-idx3-ubyte.gz"
    data = gzip.decompress(bad.read_bytes())
    bad.write_bytes(gzip.compress(data[:-28]))
    with pytest.raises(DataError, match="truncated") as err:
        MnistSource(tmp_path).load()
    assert str(bad) in str(err.value)


def test_label_count_mismatch_names_labels_file(
    make_idx_set: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    raw = tmp_path / "MNIST" / "raw"
    make_idx_set(raw)
    make_idx_set(tmp_path / "other", n_train=40)
    (tmp_path / "other" / "train-labels-idx1-ubyte.gz").replace(raw / "train-labels-idx1-ubyte.gz")
    with pytest.raises(DataError, match="labels for 50 images") as err:
        MnistSource(tmp_path).load()
    assert "train-labels-idx1-ubyte.gz" in str(err.value)


def test_incomplete_checksums_are_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.source\.checksums: no md5 given for"):
        MnistSource(tmp_path, checksums={"train-images-idx3-ubyte.gz": "0" * 32})


def test_bad_image_size_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.image_size"):
        MnistSource(tmp_path, image_size=0)


def test_offline_train_names_every_missing_file(dead_url: str, run_subprocess) -> None:
    # No network (a mirror where nothing listens): one line naming all four files to copy.
    proc = run_subprocess("train", "data=mnist", f"data.source.mirrors=[{dead_url}]", "debug=limit")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert "lacks 4 of the 4 files" in last, last
    for name in MnistSource.train_files + MnistSource.test_files:
        assert name in last, last
