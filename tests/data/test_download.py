"""Downloads from a real HTTP server on loopback, and safe archive extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from cnnlab.data.download import download_from_mirrors, download_url, extract_archive, md5_file
from cnnlab.errors import DataError

PAYLOAD = b"cnnlab test payload\n" * 1000
PAYLOAD_MD5 = hashlib.md5(PAYLOAD, usedforsecurity=False).hexdigest()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_download_writes_verified_file(http_server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = http_server
    (served / "blob.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "blob.bin"
    assert download_url(url + "blob.bin", dest, md5=PAYLOAD_MD5) == dest
    assert dest.read_bytes() == PAYLOAD
    assert _leftovers(dest.parent) == ["blob.bin"]  # no .part file left behind


def test_checksum_mismatch_leaves_nothing(http_server: tuple[str, Path], tmp_path: Path) -> None:
    url, served = http_server
    (served / "blob.bin").write_bytes(PAYLOAD)
    dest = tmp_path / "out" / "blob.bin"
    with pytest.raises(DataError, match="checksum mismatch") as err:
        download_url(url + "blob.bin", dest, md5="0" * 32)
    assert url + "blob.bin" in str(err.value)
    assert _leftovers(dest.parent) == []


def test_http_error_names_url(http_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = http_server
    with pytest.raises(DataError, match="download failed") as err:
        download_url(url + "missing.bin", tmp_path / "missing.bin")
    assert str(err.value).startswith(url + "missing.bin")
    assert not (tmp_path / "missing.bin").exists()


def test_unreachable_mirror_names_url_and_manual_path(dead_url: str, tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        download_from_mirrors("blob.bin", [dead_url], tmp_path, md5=PAYLOAD_MD5, timeout=5)
    message = str(err.value)
    assert dead_url + "blob.bin" in message
    assert "by hand" in message and str(tmp_path / "blob.bin") in message
    assert _leftovers(tmp_path) == []


def test_mirrors_are_tried_in_order(
    dead_url: str, http_server: tuple[str, Path], tmp_path: Path
) -> None:
    url, served = http_server
    (served / "blob.bin").write_bytes(PAYLOAD)
    path = download_from_mirrors("blob.bin", [dead_url, url], tmp_path, md5=PAYLOAD_MD5)
    assert md5_file(path) == PAYLOAD_MD5


def _tar_with(path: Path, members: list[tarfile.TarInfo]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info in members:
            data = b"x" * info.size if info.isfile() else None
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 3
    return info


def test_extract_tar(tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "ok.tar.gz", [_file("top/a.txt"), _file("top/sub/b.txt")])
    dest = tmp_path / "dest"
    assert extract_archive(archive, dest) == [dest / "top"]
    assert (dest / "top" / "sub" / "b.txt").read_bytes() == b"xxx"
    assert _leftovers(dest) == ["top"]  # the staging folder is gone


def _symlink(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.mark.parametrize(
    "member",
    [_file("../escaped.txt"), _file("top/../../escaped.txt"), _file("/tmp/abs.txt")],
    ids=["parent", "nested-parent", "absolute"],
)
def test_tar_member_escaping_is_rejected(tmp_path: Path, member: tarfile.TarInfo) -> None:
    archive = _tar_with(tmp_path / "evil.tar.gz", [_file("top/ok.txt"), member])
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match="escape") as err:
        extract_archive(archive, dest)
    assert str(archive) in str(err.value)
    assert _leftovers(dest) == []  # nothing at all was extracted
    assert not (tmp_path / "escaped.txt").exists()


def test_tar_symlink_pointing_out_is_rejected(tmp_path: Path) -> None:
    archive = _tar_with(tmp_path / "link.tar", [_symlink("top/link", "../../outside")])
    with pytest.raises(DataError, match="escape"):
        extract_archive(archive, tmp_path / "dest")


def test_zip_escaping_member_is_rejected(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("top/ok.txt", "ok")
        zf.writestr("../escaped.txt", "bad")
    with pytest.raises(DataError, match="escape"):
        extract_archive(archive, tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists()


def test_extract_zip(tmp_path: Path) -> None:
    archive = tmp_path / "ok.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("top/a.txt", "hello")
    extract_archive(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "top" / "a.txt").read_text() == "hello"


def test_not_an_archive(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not an archive")
    with pytest.raises(DataError, match="not a tar or zip") as err:
        extract_archive(junk, tmp_path / "dest")
    assert str(junk) in str(err.value)
