"""Write run files so that a reader never sees half of one, even on a full or read-only disk.

Every file of a run folder that is a record (``run.json``, ``metrics.json``, ``metrics.csv``,
``hparams.yaml``, checkpoints, predictions, plots) is written to a temporary file in the same
folder, flushed to disk, and renamed over the target in one step (``os.replace``). The temporary
file must be in the same folder: a rename across file systems is a copy, and a copy can stop
half-way (Lightning's own "atomic" save writes to the system temp folder and copies).

The temporary file is created in one place, :func:`create_temp`, with ``O_CREAT | O_EXCL |
O_NOFOLLOW``: a folder may be shared or unpacked from an archive, and a symbolic link planted
at a temporary name (or a target's name: the rename replaces the link, not what it points to)
never sends the content outside the folder.

When the disk is full, read-only or not ours to write (``ENOSPC``, ``EDQUOT``, ``EROFS``,
``EACCES``, ``EPERM``), the temporary file is removed, the previous version of the target is
left as it was, and :class:`WriteError` names the file and the cause in one line.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any, BinaryIO, TypeGuard

from cnnlab.errors import DataError

__all__ = [
    "DISK_ERRNOS",
    "WriteError",
    "atomic_write",
    "create_temp",
    "is_disk_error",
    "output_errors",
    "replacing",
    "temp_path",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]

# The causes that are the machine's state, not a bug: the user gets one line, not a traceback.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})

# Temporary files start with this and end with TEMP_SUFFIX, so a leftover is easy to spot.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


# Why an output file cannot be written that is the path's doing, not a bug: a folder that
# cannot hold files (/proc: ENOENT), a file where a folder should be, a folder in the way.
PATH_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EEXIST}
)


class WriteError(DataError):
    """A run file could not be written: the disk is full, read-only, or not writable by us.

    The message names the file and the cause, e.g.
    ``.../checkpoints/last.ckpt: cannot write: No space left on device``.
    """

    def __init__(self, path: object, cause: OSError) -> None:
        self.cause = cause
        reason = os.strerror(cause.errno) if cause.errno else str(cause)
        super().__init__(path, f"cannot write: {reason}")


def is_disk_error(exc: BaseException) -> TypeGuard[OSError]:
    """Whether ``exc`` is an OSError caused by the disk (full, read-only, permissions)."""
    return isinstance(exc, OSError) and exc.errno in DISK_ERRNOS


def temp_path(target: Path) -> Path:
    """A fresh temporary name beside ``target`` (same folder, hence same file system)."""
    unique = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
    return target.with_name(f"{TEMP_PREFIX}{target.name}.{unique}{TEMP_SUFFIX}")


# A new file or nothing: never an existing file, never through a link planted at its name.
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def create_temp(target: Path) -> tuple[Path, int]:
    """Create a new, empty temporary file beside ``target``; return its path and a write fd.

    The one place run and sweep files are created: with ``O_CREAT | O_EXCL | O_NOFOLLOW``, so
    a symbolic link or a file someone planted at the name is never followed nor reused (the
    folder may be a shared one, or an unpacked archive). The mode is 0o666 less the umask, as
    for any ordinary file.
    """
    tmp = temp_path(target)
    return tmp, os.open(tmp, _CREATE_FLAGS, 0o666)


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a new, empty temporary file beside ``path``; when the block ends, it replaces
    ``path``.

    For writers that want a file name (``save_hparams_to_yaml``, ``savefig``): they rewrite
    the file :func:`create_temp` made. Write the whole content inside the block; on any error
    the temporary file is removed and ``path`` is left as it was.

    Raises:
        WriteError: When the disk is full, read-only or not writable.
    """
    with _replaced(path) as (tmp, fd):
        os.close(fd)
        yield tmp
        _fsync(tmp)  # durable before the rename makes it visible


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` with what ``write`` writes into a binary file, all or nothing.

    Args:
        path: The file to (re)write; missing parent folders are created.
        write: Called with the open temporary file; writes the whole content.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        WriteError: When the disk is full, read-only or not writable (the previous ``path``,
            if any, is kept and the temporary file removed).
    """
    with _replaced(path) as (_, fd), os.fdopen(fd, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())  # durable before the rename makes it visible
    return Path(path)


@contextmanager
def _replaced(path: str | os.PathLike[str]) -> Iterator[tuple[Path, int]]:
    """Yield a temporary file beside ``path`` (and a write fd); then rename it over ``path``.

    The rename replaces ``path`` itself, also when it is a symbolic link: what the link
    pointed to is not touched. On any error the temporary file is removed.
    """
    target = Path(path)
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp, fd = create_temp(target)
        yield tmp, fd
        os.replace(tmp, target)
    except BaseException as exc:
        # The temporary file may itself be what could not be written: remove what there is.
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        if is_disk_error(exc):
            raise WriteError(target, exc) from exc
        raise


def _fsync(path: Path) -> None:
    """Flush ``path`` (the temporary file a writer filled by name) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes | memoryview) -> Path:
    """Replace ``path`` with ``data``, all or nothing (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(data))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Replace ``path`` with ``text`` in UTF-8, all or nothing (see :func:`atomic_write`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> Path:
    """Write ``data`` as indented JSON so that ``path`` is never seen half-written.

    The JSON goes to a temporary file beside ``path``, is flushed to disk, and then replaces
    ``path`` in one rename (see :mod:`cnnlab.files.atomic`). On any error the temporary file is
    removed and an existing ``path`` is left as it was. Paths, dates and enums are written as
    strings.

    Args:
        path: The file to write; missing parent folders are created.
        data: A JSON-serialisable structure.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        WriteError: When the disk is full, read-only or not writable.
    """
    text = json.dumps(data, indent=2, default=_json_default) + "\n"
    return write_text_atomic(path, text)


def _json_default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    # numpy and torch scalars
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable: {value!r}")


@contextmanager
def output_errors(path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn a failed write of an output the user named into one line naming the file.

    The writers above already do so for a full, read-only or forbidden disk
    (:class:`WriteError`); this adds the causes that come from the path
    itself (:data:`PATH_ERRNOS`), which the checks before the work cannot all foresee (root
    passes ``os.access`` everywhere; a folder can be replaced meanwhile).

    Args:
        path: The output named in the message; None names the file the error names.
    """
    try:
        yield
    except OSError as exc:
        if exc.errno not in PATH_ERRNOS | DISK_ERRNOS:
            raise
        raise WriteError(path or exc.filename or "output", exc) from exc
