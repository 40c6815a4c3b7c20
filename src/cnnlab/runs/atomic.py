"""Write run files so that a reader never sees half of one, even on a full or read-only disk.

Every file of a run folder that is a record (``run.json``, ``metrics.json``, ``metrics.csv``,
``hparams.yaml``, checkpoints, predictions, plots) is written to a temporary file in the same
folder, flushed to disk, and renamed over the target in one step (``os.replace``). The temporary
file must be in the same folder: a rename across file systems is a copy, and a copy can stop
half-way (Lightning's own "atomic" save writes to the system temp folder and copies).

When the disk is full, read-only or not ours to write (``ENOSPC``, ``EDQUOT``, ``EROFS``,
``EACCES``, ``EPERM``), the temporary file is removed, the previous version of the target is
left as it was, and :class:`WriteError` names the file and the cause in one line.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, TypeGuard

from cnnlab.errors import DataError

__all__ = [
    "DISK_ERRNOS",
    "WriteError",
    "atomic_write",
    "is_disk_error",
    "replacing",
    "temp_path",
    "write_bytes_atomic",
    "write_text_atomic",
]

# The causes that are the machine's state, not a bug: the user gets one line, not a traceback.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM})

# Temporary files start with this and end with TEMP_SUFFIX, so a leftover is easy to spot.
TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


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


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends, it replaces ``path``.

    For writers that want a file name (``save_hparams_to_yaml``, ``savefig``). Write the
    whole content inside the block; on any error the temporary file is removed and ``path``
    is left as it was.

    Raises:
        WriteError: When the disk is full, read-only or not writable.
    """
    target = Path(path)
    tmp = temp_path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        with open(tmp, "rb+") as fh:  # durable before the rename makes it visible
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        # The temporary file may itself be what could not be written: remove what there is.
        with contextlib.suppress(OSError):
            tmp.unlink()
        if is_disk_error(exc):
            raise WriteError(target, exc) from exc
        raise


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
    with replacing(path) as tmp:
        # os.open with 0o666 lets the umask decide the mode, as for any ordinary file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes | memoryview) -> Path:
    """Replace ``path`` with ``data``, all or nothing (see :func:`atomic_write`)."""
    return atomic_write(path, lambda fh: fh.write(data))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Replace ``path`` with ``text`` in UTF-8, all or nothing (see :func:`atomic_write`)."""
    return write_bytes_atomic(path, text.encode("utf-8"))
