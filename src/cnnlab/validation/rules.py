"""What a config value may be: small rule objects for the schema tables in :mod:`.schema`.

A rule answers :meth:`Rule.problem` with None for a good value, or the message that follows
the key (``"must be an integer >= 1, got 'abc'"``). Values arrive resolved, as plain Python
(OmegaConf already parsed ``1.5`` to a float, ``abc`` to a string, ``nan`` to ``float('nan')``).
Booleans are never numbers here: ``trainer.max_epochs=true`` is a mistake, not 1 epoch.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.errors import show


class Rule:
    """One accepted form of a value."""

    def describe(self) -> str:
        """What an accepted value is, after "must be", e.g. ``an integer >= 1``."""
        raise NotImplementedError

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` has this form."""
        raise NotImplementedError

    def problem(self, value: Any) -> str | None:
        """None when ``value`` is accepted, else the message naming what was expected."""
        return None if self.accepts(value) else f"must be {self.describe()}, got {show(value)}"


INT64_MAX = 2**63 - 1


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Int(Rule):
    """An integer in ``[low, high]`` (either bound may be None)."""

    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return f"an integer in [{self.low}, {self.high}]"
        if self.low is not None:
            return f"an integer >= {self.low}"
        return f"an integer <= {self.high}" if self.high is not None else "an integer"

    def accepts(self, value: Any) -> bool:
        return (
            _is_int(value)
            and abs(value) <= INT64_MAX  # torch and numpy take 64-bit integers at most
            and (self.low is None or value >= self.low)
            and (self.high is None or value <= self.high)
        )


@dataclass(frozen=True)
class Float(Rule):
    """A finite number between ``low`` and ``high``; ``open_low``/``open_high`` exclude a bound."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"a number in {left}{self.low:g}, {self.high:g}{right}"
        if self.low is not None:
            return f"a number {'>' if self.open_low else '>='} {self.low:g}"
        if self.high is not None:
            return f"a number {'<' if self.open_high else '<='} {self.high:g}"
        return "a finite number"

    def accepts(self, value: Any) -> bool:
        if not _is_number(value) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)


@dataclass(frozen=True)
class Bool(Rule):
    """``true`` or ``false`` (not a string such as ``maybe``, not 0/1)."""

    def describe(self) -> str:
        return "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Null(Rule):
    """``null``."""

    def describe(self) -> str:
        return "null"

    def accepts(self, value: Any) -> bool:
        return value is None


class Choice(Rule):
    """One of a fixed set of values (compared with their type: ``1`` is not ``true``)."""

    def __init__(self, *choices: Any) -> None:
        self.choices = choices

    def describe(self) -> str:
        if len(self.choices) == 1:
            return str(self.choices[0])
        return "one of " + ", ".join(map(str, self.choices))

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(c) and value == c for c in self.choices)


@dataclass(frozen=True)
class Str(Rule):
    """Any string, the empty one included (a logger's ``name: ""``)."""

    def describe(self) -> str:
        return "a string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and "\x00" not in value


@dataclass(frozen=True)
class Text(Rule):
    """A non-empty string."""

    def describe(self) -> str:
        return "a non-empty string"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and bool(value.strip()) and "\x00" not in value


@dataclass(frozen=True)
class ListOf(Rule):
    """A list whose items all pass ``item``; ``length`` fixes how many there are."""

    item: Rule
    length: int | None = None

    def describe(self) -> str:
        count = f"{self.length} " if self.length is not None else ""
        return f"a list of {count}values, each {self.item.describe()}"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            return False
        if self.length is not None and len(value) != self.length:
            return False
        return all(self.item.accepts(v) for v in value)


class Either(Rule):
    """Any of several forms, e.g. a fraction of the batches or a count of them."""

    def __init__(self, *rules: Rule) -> None:
        self.rules = rules

    def describe(self) -> str:
        return " or ".join(r.describe() for r in self.rules)

    def accepts(self, value: Any) -> bool:
        return any(r.accepts(value) for r in self.rules)

    def problem(self, value: Any) -> str | None:
        if self.accepts(value):
            return None
        # A path rule explains itself better ("no such file") than the list of forms.
        for rule in self.rules:
            if isinstance(rule, _PathRule) and isinstance(value, str) and value.strip():
                return rule.problem(value)
        return super().problem(value)


def Nullable(rule: Rule) -> Rule:
    """``rule`` or ``null``."""
    return Either(Null(), rule)


class _PathRule(Rule):
    """A path on this machine; subclasses say what must be there."""

    def accepts(self, value: Any) -> bool:
        return self.problem(value) is None

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            return f"must be {self.describe()}, got {show(value)}"
        try:
            return self.path_problem(Path(value).expanduser())
        except OSError as exc:  # a name too long, a loop of links
            return f"cannot use {show(value)} as a path ({exc.strerror or exc})"

    def path_problem(self, path: Path) -> str | None:
        raise NotImplementedError


class ReadableFile(_PathRule):
    """An existing file this process can read."""

    def describe(self) -> str:
        return "the path of a readable file"

    def path_problem(self, path: Path) -> str | None:
        if path.is_dir():
            return f"{path} is a folder, not a file"
        if not path.exists():
            return f"{path}: no such file"
        if not os.access(path, os.R_OK):
            return f"{path}: not readable (permission denied)"
        return None


class ReadablePath(_PathRule):
    """An existing file or folder this process can read."""

    def describe(self) -> str:
        return "the path of a readable file or folder"

    def path_problem(self, path: Path) -> str | None:
        if not path.exists():
            return f"{path}: no such file or folder"
        if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
            return f"{path}: not readable (permission denied)"
        return None


class NewFile(_PathRule):
    """A file path that can be written: not a folder, and its folder can be created.

    ``example`` is the file name the error suggests when the path is a folder.
    """

    def __init__(self, example: str = "predictions.csv") -> None:
        self.example = example

    def describe(self) -> str:
        return "the path of a file to write"

    def path_problem(self, path: Path) -> str | None:
        if path.is_dir() or str(path).endswith(os.sep):
            return f"{path} is a folder; give a file name, e.g. {path / self.example}"
        return creatable_problem(path.parent)


class Folder(_PathRule):
    """A folder that exists or can be created (no file in the way)."""

    def describe(self) -> str:
        return "the path of a folder"

    def path_problem(self, path: Path) -> str | None:
        return creatable_problem(path)


def creatable_problem(folder: Path) -> str | None:
    """None when ``folder`` is a writable folder or can be created; else why not.

    Its nearest existing folder is asked with ``os.access`` and then tried for real (see
    :func:`probe_problem`): ``os.access`` tells root yes everywhere.
    """
    folder = Path(os.path.abspath(folder))
    try:
        if folder.exists() and not folder.is_dir():
            return f"{folder} is a file, not a folder"
        existing = folder
        while not existing.exists():
            existing = existing.parent
    except OSError as exc:  # a name too long, a loop of links
        return f"cannot use {show(str(folder))} as a folder ({exc.strerror or exc})"
    if not existing.is_dir():
        return f"cannot create {folder}: {existing} is a file"
    if not os.access(existing, os.W_OK | os.X_OK):
        read_only = os.statvfs(existing).f_flag & os.ST_RDONLY
        cause = "Read-only file system" if read_only else "permission denied"
        problem: str | None = f"cannot write in {existing} ({cause})"
    else:
        problem = probe_problem(existing)
    # Name the folder asked for when the one that refused is above it (/proc for /proc/x/y).
    return f"{folder}: {problem}" if problem and existing != folder else problem


PROBE_PREFIX = ".cnnlab-probe-"


def probe_problem(folder: Path) -> str | None:
    """Create and remove an empty file in ``folder``; None when it worked, else why not.

    The only honest answer to "can a file be made here": ``os.access`` says yes to root on
    ``/proc`` (where creating a file fails with ENOENT) and on folders that a mount makes
    read-only or full of inodes. The file has a unique name and lives for a moment.
    """
    try:
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as exc:
        return f"cannot write in {folder} ({exc.strerror or exc})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None
