"""Checksum-verified downloads and safe archive extraction.

A download streams into a temporary file next to its destination and is
renamed into place only when complete and verified, so an interrupted or
corrupt transfer never leaves a file that looks finished. Extraction checks the
whole member list first and refuses members that would land outside the target
folder (absolute paths, ``..``, anything written through a link, links that
resolve outside, hard links to anything but a file of the archive), then writes
each member itself into a temporary folder, never following a link.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cnnlab.errors import DataError
from cnnlab.files.atomic import replacing

# Some mirrors refuse urllib's default agent string.
_USER_AGENT = "cnnlab/0.1 (+https://github.com/)"
_CHUNK = 1 << 20


def md5_file(path: Path) -> str:
    """Return the hex md5 digest of a file, read in chunks."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_md5(where: object, actual: str, expected: str | None, advice: str = "") -> None:
    """Raise DataError naming ``where`` unless ``actual`` is ``expected`` (None accepts any)."""
    if expected is not None and actual != expected.lower():
        raise DataError(where, f"checksum mismatch: expected md5 {expected}, got {actual}{advice}")


def download_url(url: str, dest: Path, md5: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``, verifying its md5, atomically.

    The body streams to a temporary file in ``dest``'s folder (created if missing) that
    replaces ``dest`` only after the checksum matches (``md5=None`` skips it); on any failure
    the temporary file is removed and ``dest`` is left untouched. ``url`` may be http, https
    or file; ``timeout`` bounds the connection and each read.

    Raises:
        DataError: Naming the URL, when the transfer fails or the checksum differs.
    """
    dest = Path(dest)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with replacing(dest) as tmp:
        digest = hashlib.md5(usedforsecurity=False)
        try:
            with (
                urllib.request.urlopen(request, timeout=timeout) as response,
                tmp.open("wb") as out,
            ):
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(url, f"download failed ({reason})") from exc
        check_md5(url, digest.hexdigest(), md5)
    return dest


def download_from_mirrors(
    filename: str,
    mirrors: Sequence[str],
    folder: Path,
    md5: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``filename`` into ``folder`` from the first of ``mirrors`` that delivers it intact.

    A mirror serving bytes of another md5 counts as failed.

    Raises:
        DataError: Naming the destination, every URL tried and why each failed,
            and how to place the file by hand.
    """
    dest = Path(folder) / filename
    if not mirrors:
        raise DataError(dest, "no download mirrors configured; place the file there by hand")
    failures = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + filename
        try:
            return download_url(url, dest, md5=md5, timeout=timeout)
        except DataError as exc:
            failures.append(str(exc))
    tried = "; ".join(failures)
    raise DataError(
        dest,
        f"could not download {filename} ({tried}). Without network access, download it "
        f"by hand from {mirrors[0].rstrip('/')}/{filename} and place it at {dest}",
    )


# Most symlinks the kernel follows while resolving one path (Linux's MAXSYMLINKS).
_MAX_LINK_HOPS = 40


@dataclass(frozen=True)
class _Member:
    """One archive member as cnnlab will write it: a path inside the folder and its kind."""

    name: str  # as written in the archive, for messages
    parts: tuple[str, ...]  # the checked path below the extraction folder
    kind: str  # "dir", "file", "symlink" or "hardlink"
    link: str = ""  # the symlink's target text, or the hard link's archive path


def _member_parts(archive: Path, name: str) -> tuple[str, ...]:
    """Split a member name into path components; refuse absolute paths and ``..``.

    ``a/../b`` is refused too, not normalised: written literally it would pass through
    ``a``, which may be a link.
    """
    text = name.replace("\\", "/")
    parts = tuple(p for p in text.split("/") if p not in ("", "."))
    if text.startswith("/") or ".." in parts or not parts or "\0" in text:
        raise DataError(archive, f"member {name!r} would escape the extraction folder; refusing")
    return parts


class _Tree:
    """The folder an archive will produce, built from its member list before anything is written.

    Checking the whole list first (instead of asking the file system, as ``os.path.realpath``
    and the tar "data" filter do) means no partial tree is ever written, and no check can be
    fooled by paths too long for the file system to resolve (CVE-2025-4517).
    """

    def __init__(self, archive: Path) -> None:
        self.archive = archive
        self.kinds: dict[tuple[str, ...], str] = {(): "dir"}
        self.links: dict[tuple[str, ...], str] = {}

    def add(self, member: _Member) -> None:
        """Record a member; refuse one written through a link, twice, or under a file."""
        for depth in range(1, len(member.parts)):
            parent = member.parts[:depth]
            kind = self.kinds.setdefault(parent, "dir")
            if kind != "dir":
                raise DataError(
                    self.archive,
                    f"member {member.name!r} would be written through the {kind} "
                    f"{'/'.join(parent)!r}, which could escape the extraction folder; refusing",
                )
        existing = self.kinds.get(member.parts)
        if existing is not None and not (existing == member.kind == "dir"):
            raise DataError(self.archive, f"member {member.name!r} appears twice; refusing")
        self.kinds[member.parts] = member.kind
        if member.kind == "symlink":
            self.links[member.parts] = member.link

    def resolve(self, name: str, start: tuple[str, ...], target: str) -> tuple[str, ...]:
        """Resolve ``target`` from folder ``start`` as the kernel will once all is extracted.

        Raises:
            DataError: The target is absolute, climbs above the folder, or loops.
        """
        resolved: list[str] = list(start)
        pending = [p for p in target.split("/") if p not in ("", ".")]
        hops = 0
        if target.startswith("/"):
            raise DataError(self.archive, f"member {name!r} links to an absolute path; refusing")
        while pending:
            part = pending.pop(0)
            if part == "..":
                if not resolved:
                    raise DataError(
                        self.archive,
                        f"member {name!r} links outside the extraction folder (escape)",
                    )
                resolved.pop()
                continue
            resolved.append(part)
            link = self.links.get(tuple(resolved))
            if link is not None:
                hops += 1
                if hops > _MAX_LINK_HOPS or link.startswith("/"):
                    raise DataError(
                        self.archive, f"member {name!r} links through a loop or out; refusing"
                    )
                resolved.pop()
                pending[:0] = [p for p in link.split("/") if p not in ("", ".")]
        return tuple(resolved)

    def check_links(self, members: Sequence[_Member]) -> None:
        """Every symlink must resolve inside; every hard link must name an extracted file."""
        for member in members:
            if member.kind == "symlink":
                self.resolve(member.name, member.parts[:-1], member.link)
            elif member.kind == "hardlink":
                source = _member_parts(self.archive, member.link)
                if self.kinds.get(source) != "file":
                    raise DataError(
                        self.archive,
                        f"member {member.name!r} is a hard link to {member.link!r}, "
                        "which is not a file of this archive (escape); refusing",
                    )


# Tar member types written, by kind; anything else (devices, pipes) is refused.
_TAR_KINDS = {
    **dict.fromkeys(tarfile.REGULAR_TYPES, "file"),
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}

# Opens a member's data, when a file member is written.
_Opener = Callable[[], IO[bytes]]


def _tar_member(path: Path, tar: tarfile.TarFile, info: tarfile.TarInfo) -> tuple[_Member, _Opener]:
    parts = _member_parts(path, info.name)
    kind = _TAR_KINDS.get(info.type)
    if kind is None:
        raise DataError(path, f"member {info.name!r} is a device or pipe; refusing")

    def data() -> IO[bytes]:
        stream = tar.extractfile(info)
        if stream is None:
            raise DataError(path, f"member {info.name!r} has no data")
        return stream

    return _Member(info.name, parts, kind, info.linkname), data


def _zip_member(
    path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo
) -> tuple[_Member, _Opener]:
    # zipfile writes a stored Unix symlink as a plain file holding its target; so do we.
    kind = "dir" if info.is_dir() else "file"
    member = _Member(info.filename, _member_parts(path, info.filename), kind)
    return member, functools.partial(archive.open, info)


def _write_file(target: Path, source: IO[bytes]) -> None:
    # O_EXCL and O_NOFOLLOW: never write into something that already exists, link or not.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
        shutil.copyfileobj(source, out, _CHUNK)


def _materialise(staging: Path, member: _Member, open_data: _Opener) -> None:
    """Write one checked member below ``staging``; its parents are real folders by now."""
    target = staging.joinpath(*member.parts)
    target.parent.mkdir(parents=True, exist_ok=True)
    if member.kind == "dir":
        target.mkdir(exist_ok=True)
    elif member.kind == "symlink":
        os.symlink(member.link, target)
    elif member.kind == "hardlink":
        source = staging.joinpath(*_member_parts(staging, member.link))
        os.link(source, target, follow_symlinks=False)
    else:
        with open_data() as data:
            _write_file(target, data)


def _extract_members(archive: Path, staging: Path, members: list[tuple[_Member, _Opener]]) -> None:
    """Refuse the archive unless every member, taken together, stays inside; then write them."""
    tree = _Tree(archive)
    for member, _ in members:
        tree.add(member)
    tree.check_links([member for member, _ in members])
    for member, open_data in members:
        _materialise(staging, member, open_data)


def extract_archive(path: Path, dest: Path) -> list[Path]:
    """Extract a tar (optionally gz/bz2/xz compressed) or zip archive into ``dest``.

    Members are unpacked into a temporary folder inside ``dest`` and the
    top-level entries are moved into place only once everything extracted, so a
    failure leaves no partial tree. An existing top-level entry of the same name
    is replaced. ``dest`` is created if missing. Returns the top-level paths created.

    Raises:
        DataError: Naming the archive, when it is unreadable, of an unknown kind,
            or has a member that would escape ``dest``.
    """
    path, dest = Path(path), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=dest))
    try:
        try:
            if tarfile.is_tarfile(path):
                with tarfile.open(path, "r:*") as tar:
                    members = [_tar_member(path, tar, info) for info in tar.getmembers()]
                    _extract_members(path, staging, members)
            elif zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    members = [_zip_member(path, archive, info) for info in archive.infolist()]
                    _extract_members(path, staging, members)
            else:
                raise DataError(path, "not a tar or zip archive")
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
            raise DataError(path, f"cannot extract archive ({exc})") from exc
        created = []
        for entry in sorted(staging.iterdir()):
            target = dest / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(entry, target)
            created.append(target)
        return created
    finally:
        shutil.rmtree(staging, ignore_errors=True)
