"""Archives cannot write outside their folder: tar and zip, links, and CVE-2025-4517.

Each hostile archive targets the folder around the extraction folder: it tries to
create ``pwned.txt`` there or to overwrite ``outside/victim.txt``. The tests take a
snapshot of everything outside the destination before and after, so any escape,
whatever its route, fails them.
"""

from __future__ import annotations

import hashlib
import io
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from cnnlab.data.download import extract_archive
from cnnlab.errors import DataError

# The extraction folder is <tmp>/dest; cnnlab stages inside it, so the folder around
# ``dest`` is two levels above a member at the top of the staging folder.
UP_TO_TMP = "../.."


def _file(name: str, data: bytes = b"pwned") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _dir(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info, b""


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def _hardlink(name: str, target: str) -> tuple[tarfile.TarInfo, bytes]:
    return _link(name, target, tarfile.LNKTYPE)


def _pathmax_chain() -> list[tuple[tarfile.TarInfo, bytes]]:
    """The CVE-2025-4517 shape: short link names that expand past PATH_MAX.

    ``a/b/.../p`` are one-letter links to 247-character folders nested in each other, so
    the path they stand for is about 4,000 characters long. Python's unpatched
    ``os.path.realpath`` stops resolving there and goes on lexically; the kernel does not.
    """
    long_name = "d" * 247
    steps = "abcdefghijklmnop"
    members, prefix = [], ""
    for step in steps:
        members += [_dir(prefix + long_name), _link(prefix + step, long_name)]
        prefix += long_name + "/"
    top = "/".join(steps) + "/" + "l" * 254
    members.append(_link(top, "/".join([".."] * len(steps))))  # back to the top folder
    members.append(_link("escape", f"{top}/{UP_TO_TMP}"))  # and out of it
    return members


HOSTILE_TARS: dict[str, list[tuple[tarfile.TarInfo, bytes]]] = {
    "parent": [_file("top/ok.txt", b"ok"), _file("../pwned.txt")],
    "nested-parent": [_file("top/../../pwned.txt")],
    "absolute": [_file("/PLACEHOLDER/pwned.txt")],
    "symlink-out-then-write": [_link("top", UP_TO_TMP), _file("top/pwned.txt")],
    "symlink-absolute": [_link("top", "/PLACEHOLDER"), _file("top/pwned.txt")],
    "symlink-out": [_link("top/link", "../../outside")],
    "link-made-outside-later": [
        # Checked lexically `l` stays inside; once `d` is `.`, `d/..` is the parent folder.
        _link("l", "d/../outside/victim.txt"),
        _link("d", "."),
    ],
    "hardlink-absolute": [_hardlink("h", "/PLACEHOLDER/outside/victim.txt"), _file("h")],
    "hardlink-parent": [_hardlink("h", "../outside/victim.txt"), _file("h")],
    "hardlink-via-symlink": [
        _link("s", f"{UP_TO_TMP}/outside/victim.txt"),
        _hardlink("h", "s"),
        _file("h"),
    ],
    "duplicate-file-over-link": [_link("x", f"{UP_TO_TMP}/outside/victim.txt"), _file("x")],
    "pathmax-symlink-chain": [*_pathmax_chain(), _file("escape/pwned.txt")],
    "pathmax-hardlink": [
        *_pathmax_chain(),
        _hardlink("h", "escape/outside/victim.txt"),
        _file("h"),
    ],
}


def _write_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], root: Path) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            info.name = info.name.replace("/PLACEHOLDER", str(root))
            info.linkname = info.linkname.replace("/PLACEHOLDER", str(root))
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _zip_symlink(zf: zipfile.ZipFile, name: str, target: str) -> None:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, target)


HOSTILE_ZIPS: dict[str, Callable[[zipfile.ZipFile, Path], None]] = {
    "parent": lambda zf, root: zf.writestr("../pwned.txt", "pwned"),
    "nested-parent": lambda zf, root: zf.writestr("top/../../pwned.txt", "pwned"),
    "absolute": lambda zf, root: zf.writestr(f"{root}/pwned.txt", "pwned"),
    "backslash-parent": lambda zf, root: zf.writestr("..\\pwned.txt", "pwned"),
    "duplicate": lambda zf, root: (zf.writestr("a.txt", "1"), zf.writestr("a.txt", "2")),
}


def _snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Every path under ``root`` outside ``skip``: its kind and content (or link target)."""
    seen = {}
    for path in sorted(root.rglob("*")):
        if path == skip or skip in path.parents:
            continue
        if path.is_symlink():
            seen[str(path)] = "link:" + str(path.readlink())
        elif path.is_file():
            seen[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            seen[str(path)] = "dir"
    return seen


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """A folder around the destination, with a file an archive would like to overwrite."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "victim.txt").write_text("precious")
    return tmp_path


def _assert_refused(archive: Path, world: Path, dest: Path) -> None:
    before = _snapshot(world, dest)
    with pytest.raises(DataError) as err:
        extract_archive(archive, dest)
    message = str(err.value)
    assert str(archive) in message and "member " in message, message
    assert len(message.splitlines()) == 1
    assert _snapshot(world, dest) == before
    assert not (world / "pwned.txt").exists()
    assert (world / "outside" / "victim.txt").read_text() == "precious"
    assert [p.name for p in dest.iterdir()] == []  # nothing extracted, no staging left


@pytest.mark.parametrize("case", sorted(HOSTILE_TARS))
def test_hostile_tar_is_refused(case: str, world: Path) -> None:
    archive = _write_tar(world / "evil.tar", HOSTILE_TARS[case], world)
    _assert_refused(archive, world, world / "dest")


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("case", sorted(HOSTILE_ZIPS))
def test_hostile_zip_is_refused(case: str, world: Path) -> None:
    archive = world / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("top/ok.txt", "ok")
        HOSTILE_ZIPS[case](zf, world)
    _assert_refused(archive, world, world / "dest")


def test_zip_symlink_entries_stay_plain_files(world: Path) -> None:
    """A zip's Unix symlink entry is written as a file holding its target, never followed."""
    archive = world / "links.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        _zip_symlink(zf, "top/link", f"{UP_TO_TMP}/outside")
        zf.writestr("top/link2/pwned.txt", "pwned")
    dest = world / "dest"
    before = _snapshot(world, dest)
    extract_archive(archive, dest)
    link = dest / "top" / "link"
    assert link.is_file() and not link.is_symlink()
    assert _snapshot(world, dest) == before


def test_links_inside_the_archive_still_work(world: Path) -> None:
    """The checks refuse escapes, not links: relative links and hard links inside are kept."""
    members = [
        _file("top/data/a.bin", b"abc"),
        _link("top/alias", "data/a.bin"),
        _link("top/up", "../top/data"),
        _hardlink("top/copy.bin", "top/data/a.bin"),
    ]
    dest = world / "dest"
    extract_archive(_write_tar(world / "ok.tar", members, world), dest)
    assert (dest / "top" / "alias").read_bytes() == b"abc"
    assert (dest / "top" / "up" / "a.bin").read_bytes() == b"abc"
    assert (dest / "top" / "copy.bin").stat().st_ino == (dest / "top/data/a.bin").stat().st_ino
