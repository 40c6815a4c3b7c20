"""Reading run and sweep folders, which may come from anyone, as data.

A run folder can be a colleague's, an unpacked archive or a shared outputs folder, so
every file cnnlab reads back from one (``run.json``, ``metrics.json``, ``.hydra/*.yaml``,
``sweep.json``, ...) goes through this module:

- **Regular files only.** The file is opened with ``O_NOFOLLOW`` and ``O_NONBLOCK`` and
  checked with ``fstat``: a symbolic link, a fifo (which would block forever), a device
  (``/dev/zero`` never ends) or a folder is refused. With ``inside=``, every folder between
  the run folder and the file is opened the same way, so a linked ``.hydra/`` is refused too.
- **Bounded.** At most :data:`MAX_BYTES` are read; JSON and YAML are refused beyond
  :data:`MAX_DEPTH` levels or :data:`MAX_NODES` values (a 400-byte YAML alias bomb expands
  to billions), and YAML may use at most :data:`MAX_ALIASES` aliases.
- **Plain values.** JSON and YAML come back as dicts, lists, strings, numbers, booleans and
  None; nothing is resolved (no ``${...}`` interpolation, no tags that build objects).
- **One line.** Every problem is a :class:`~cnnlab.errors.DataError` naming the file.

The shape of what was read is the caller's to check (:func:`field` helps).
"""

from __future__ import annotations

import errno
import json
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

from cnnlab.errors import DataError

__all__ = [
    "MAX_ALIASES",
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_NODES",
    "field",
    "read_bytes",
    "read_json",
    "read_json_object",
    "read_text",
    "read_yaml",
]

# A run.json holds the composed config, the git diff (capped by the recorder) and package
# versions: a few hundred KB. Anything near this is not a record cnnlab wrote.
MAX_BYTES = 32 * 1024 * 1024
# Hydra configs nest a handful of levels; JSON parsers recurse once per level.
MAX_DEPTH = 100
# Values in one file, counting every expansion of a YAML alias.
MAX_NODES = 1_000_000
# cnnlab and Hydra write no YAML aliases; a few are tolerated in hand-written files.
MAX_ALIASES = 100

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = _OPEN_FLAGS | getattr(os, "O_DIRECTORY", 0)

T = TypeVar("T")


def read_bytes(
    path: str | os.PathLike[str],
    *,
    inside: str | os.PathLike[str] | None = None,
    limit: int = MAX_BYTES,
) -> bytes:
    """Read a regular file of at most ``limit`` bytes, following no link.

    Args:
        path: The file; relative to ``inside`` when that is given.
        inside: A folder the caller trusts (the run folder it was given). Every folder
            between it and the file must be a real folder, not a link.
        limit: The largest size accepted.

    Raises:
        DataError: Naming the file: missing, a link, not a regular file, too large or
            unreadable.
    """
    shown = Path(inside, path) if inside is not None else Path(path)
    fd = _open_regular(Path(path), None if inside is None else Path(inside), shown)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise DataError(shown, f"is {size:,} bytes; at most {limit:,} are read")
        chunks, total = [], 0
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # the file grew while it was read
                raise DataError(shown, f"is over {limit:,} bytes; at most {limit:,} are read")
        return b"".join(chunks)
    except OSError as exc:
        raise DataError(shown, f"cannot be read ({exc.strerror or exc})") from exc
    finally:
        os.close(fd)


def read_text(
    path: str | os.PathLike[str],
    *,
    inside: str | os.PathLike[str] | None = None,
    limit: int = MAX_BYTES,
) -> str:
    """Read a regular file as UTF-8 text (see :func:`read_bytes`)."""
    data = read_bytes(path, inside=inside, limit=limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        shown = Path(inside, path) if inside is not None else Path(path)
        raise DataError(shown, f"is not UTF-8 text (byte {exc.start})") from None


def read_json(
    path: str | os.PathLike[str],
    *,
    inside: str | os.PathLike[str] | None = None,
    limit: int = MAX_BYTES,
) -> Any:
    """Read a JSON file into plain values, bounded in size, depth and count.

    Raises:
        DataError: As :func:`read_bytes`, or when the file is not valid JSON or is too deep.
    """
    shown = Path(inside, path) if inside is not None else Path(path)
    text = read_text(path, inside=inside, limit=limit)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(shown, f"is not valid JSON ({exc}); corrupt or truncated") from None
    except RecursionError:
        raise DataError(shown, f"nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # a number of over 4300 digits
        raise DataError(shown, f"cannot be decoded ({exc})") from None
    _check_size(shown, data)
    return data


def read_json_object(
    path: str | os.PathLike[str], *, inside: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """Read a JSON file that must hold an object (see :func:`read_json`)."""
    data = read_json(path, inside=inside)
    if not isinstance(data, dict):
        shown = Path(inside, path) if inside is not None else Path(path)
        raise DataError(shown, f"expected a JSON object, found {_kind(data)}")
    return data


def read_yaml(
    path: str | os.PathLike[str],
    *,
    inside: str | os.PathLike[str] | None = None,
    limit: int = MAX_BYTES,
) -> Any:
    """Read a YAML file into plain values: safe tags only, aliases and size bounded.

    Raises:
        DataError: As :func:`read_bytes`, or when the file is not valid YAML, uses more than
            :data:`MAX_ALIASES` aliases, or expands beyond the bounds.
    """
    shown = Path(inside, path) if inside is not None else Path(path)
    text = read_text(path, inside=inside, limit=limit)
    try:
        data = yaml.load(text, Loader=_loader(text))
    except _TooManyAliases:
        raise DataError(shown, f"uses more than {MAX_ALIASES} YAML aliases") from None
    except RecursionError:
        raise DataError(shown, f"nests deeper than {MAX_DEPTH} levels") from None
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise DataError(shown, f"is not valid YAML ({reason[:200]})") from None
    except (ValueError, TypeError, OverflowError) as exc:  # e.g. an impossible !!timestamp
        raise DataError(shown, f"cannot be decoded ({type(exc).__name__}: {exc})") from None
    _check_size(shown, data)
    return data


def field(
    path: str | os.PathLike[str],
    data: Mapping[str, Any],
    key: str,
    kind: type[T] | tuple[type, ...],
    default: Any = None,
) -> T:
    """``data[key]`` checked to be of ``kind``; ``default`` when absent.

    Booleans are not accepted as numbers.

    Raises:
        DataError: Naming the file and the key when the value is of another type.
    """
    if key not in data or data[key] is None:
        return cast(T, default)
    value = data[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        names = " or ".join(_NAMES.get(k, k.__name__) for k in kinds)
        raise DataError(path, f"{key}: expected {names}, found {_kind(value)}")
    return cast(T, value)


_NAMES = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}


def _kind(value: Any) -> str:
    return "null" if value is None else _NAMES.get(type(value), type(value).__name__)


def _open_regular(path: Path, inside: Path | None, shown: Path) -> int:
    """Open ``path`` (below ``inside``, if given) read-only without following any link."""
    parts = path.parts if inside is not None else (path.name,)
    if inside is not None and (path.is_absolute() or ".." in parts):
        raise DataError(shown, "names a file outside its folder")
    start = inside if inside is not None else (path.parent if path.name else path)
    if not parts:
        raise DataError(shown, "is a folder, not a file")
    dir_fd = -1
    try:
        dir_fd = os.open(start, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
        for name in parts[:-1]:
            next_fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        fd = os.open(parts[-1], _OPEN_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        raise DataError(shown, _open_problem(exc)) from None
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder" if stat.S_ISDIR(mode) else "a fifo, socket or device"
        raise DataError(shown, f"is {what}, not a regular file")
    return fd


def _open_problem(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "missing"
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        # O_NOFOLLOW on a link gives ELOOP; O_DIRECTORY on a link or a file gives ENOTDIR.
        return "is (or lies under) a symbolic link or not a folder; links are not followed"
    return f"cannot be read ({exc.strerror or exc})"


def _check_size(shown: Path, data: Any) -> None:
    """Refuse data deeper than MAX_DEPTH or with more than MAX_NODES values (aliases counted)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    nodes = 0
    while stack:
        value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise DataError(shown, f"holds more than {MAX_NODES:,} values")
        if depth > MAX_DEPTH:
            raise DataError(shown, f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            stack.extend((v, depth + 1) for v in value.values())
            nodes += len(value)  # the keys
        elif isinstance(value, list):
            stack.extend((v, depth + 1) for v in value)


def _loader(text: str) -> type[yaml.SafeLoader]:
    """libyaml's fast safe loader where no alias can occur, else the counting one.

    An alias names an anchor (``&name``); text without ``&`` has none, so nothing can
    expand. The pure-Python loader is about ten times slower on a Hydra config.
    """
    if "&" not in text:
        return cast("type[yaml.SafeLoader]", getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return _BoundedLoader


class _TooManyAliases(yaml.YAMLError):
    pass


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader that counts aliases, so a few bytes cannot name billions of values."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                raise _TooManyAliases("too many aliases")
        return super().compose_node(parent, index)
