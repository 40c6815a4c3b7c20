"""Checksum-verified downloads and safe archive extraction.

A download streams into a temporary file next to its destination and is
renamed into place only when complete and verified, so an interrupted or
corrupt transfer never leaves a file that looks finished. Extraction refuses
members that would land outside the target folder (absolute paths, ``..``,
links pointing out) and also unpacks into a temporary folder first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import posixpath
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from cnnlab.errors import DataError

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


@contextlib.contextmanager
def _temporary_sibling(dest: Path) -> Iterator[Path]:
    """Yield a fresh temporary path in ``dest``'s folder, removed afterwards unless renamed."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)


def download_url(url: str, dest: Path, md5: str | None = None, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest``, verifying its md5, atomically.

    The body streams to a ``.part`` file in ``dest``'s folder and is renamed to
    ``dest`` with ``os.replace`` only after the checksum matches; on any failure
    the temporary file is removed and ``dest`` is left untouched.

    Args:
        url: The address to fetch (http, https or file).
        dest: Where the finished file goes; its folder is created.
        md5: Expected hex md5 of the body; ``None`` skips verification.
        timeout: Seconds to wait for the connection and for each read.

    Returns:
        ``dest``.

    Raises:
        DataError: Naming the URL, when the transfer fails or the checksum differs.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    with _temporary_sibling(dest) as tmp:
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
        actual = digest.hexdigest()
        if md5 is not None and actual != md5.lower():
            raise DataError(url, f"checksum mismatch: expected md5 {md5}, got {actual}")
        os.replace(tmp, dest)
    return dest


def download_from_mirrors(
    filename: str,
    mirrors: Sequence[str],
    folder: Path,
    md5: str | None = None,
    timeout: float = 30.0,
) -> Path:
    """Download ``filename`` from the first mirror that delivers it intact.

    Args:
        filename: Name of the file on the mirrors and on disk.
        mirrors: Base URLs, tried in order; ``filename`` is appended to each.
        folder: The folder that receives the file.
        md5: Expected hex md5; a mirror serving other bytes counts as failed.
        timeout: Seconds per connection and read.

    Returns:
        The path of the downloaded file.

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


def _check_member(archive: Path, name: str, dest: Path) -> None:
    """Raise DataError when an archive path would resolve outside ``dest``."""
    norm = posixpath.normpath(name.replace("\\", "/"))
    escapes = norm.startswith("/") or norm == ".." or norm.startswith("../")
    if escapes or not (dest / norm).resolve().is_relative_to(dest.resolve()):
        raise DataError(archive, f"member {name!r} would escape {dest}; refusing to extract")


def _extract_tar(path: Path, staging: Path) -> None:
    with tarfile.open(path, "r:*") as tar:
        for member in tar.getmembers():
            _check_member(path, member.name, staging)
            # A link must point inside too, or a later member could be written through it.
            if member.issym():
                link = posixpath.join(posixpath.dirname(member.name), member.linkname)
                _check_member(path, link, staging)
            elif member.islnk():
                _check_member(path, member.linkname, staging)
        # The "data" filter is a second line of defence: it also drops device files and
        # unsafe permission bits.
        tar.extractall(staging, filter="data")


def _extract_zip(path: Path, staging: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            _check_member(path, name, staging)
        archive.extractall(staging)


def extract_archive(path: Path, dest: Path) -> list[Path]:
    """Extract a tar (optionally gz/bz2/xz compressed) or zip archive into ``dest``.

    Members are unpacked into a temporary folder inside ``dest`` and the
    top-level entries are moved into place only once everything extracted, so a
    failure leaves no partial tree. An existing top-level entry of the same name
    is replaced.

    Args:
        path: The archive.
        dest: The folder to extract into; created if missing.

    Returns:
        The top-level paths created in ``dest``.

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
                _extract_tar(path, staging)
            elif zipfile.is_zipfile(path):
                _extract_zip(path, staging)
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
