"""User-facing errors.

Anything a user can get wrong (a config value, a file, a checkpoint) raises a
:class:`CnnlabError`. The CLI prints it as one line and exits non-zero; the
full traceback appears only with ``HYDRA_FULL_ERROR=1``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

# Set by the CLI to what the user asked for: "1" keeps full tracebacks of user errors. The CLI
# itself sets HYDRA_FULL_ERROR=1 so that Hydra raises its errors to it instead of printing them.
TRACEBACKS_ENV = "CNNLAB_TRACEBACKS"


def tracebacks_wanted() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get(TRACEBACKS_ENV, os.environ.get("HYDRA_FULL_ERROR", "0")) == "1"


class CnnlabError(Exception):
    """Base class of errors caused by user input rather than by a bug."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C ended a run, recorded ``interrupted``; ``resume`` is the command that continues it.

    A ``KeyboardInterrupt`` still (a sweep stops, ``finally`` blocks run), so that the CLI
    ends with one line naming the command instead of a traceback.
    """

    def __init__(self, resume: str | None = None) -> None:
        self.resume = resume
        super().__init__(resume or "interrupted")

    def __reduce__(self) -> tuple[type, tuple[str | None]]:
        return type(self), (self.resume,)


class MissingExtraError(CnnlabError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


class ConfigError(CnnlabError, ValueError):
    """A config value is invalid. The message starts with the config key.

    Example:
        >>> raise ConfigError("optimizer.lr", "must be > 0, got -0.1")
        Traceback (most recent call last):
        ...
        cnnlab.errors.ConfigError: optimizer.lr: must be > 0, got -0.1
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from both arguments: a sweep job in another process (joblib) sends it back.
        return type(self), (self.key, self.message)


class DataError(CnnlabError):
    """A data file or folder is missing, corrupt or inconsistent. Names the path."""

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Rebuilt from both arguments: a sweep job in another process (joblib) sends it back.
        return type(self), (self.path, self.message)


class CheckpointError(DataError):
    """A checkpoint cannot be loaded, or belongs to another model."""


# Longest rendering of a bad value in a message: a fuzzed 10,000-character string must not
# turn the one-line error into a page.
_MAX_SHOWN = 80


def show(value: object) -> str:
    """Render a config value for an error message: ``repr``, on one line, shortened."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def printable(text: object) -> str:
    r"""``text`` safe to print on a terminal: what is not printable is shown escaped.

    Folder names, run.json strings and metric names come from files anyone may have written.
    Printed raw, ``\x1b[2J`` clears the screen, ``\x1b]0;...\x07`` sets the window title and
    a newline adds a fake row. Every character Python does not call printable (controls,
    bidirectional overrides and other format characters, line separators, unassigned code
    points) is written as ``\x1b``, ``\u202e`` or ``\U000e0001``; the rest (accents, CJK,
    emoji, the space, the backslash) stays as it is.

    Example:
        >>> print(printable("run\x1b[2J\n"))
        run\x1b[2J\x0a
    """
    text = str(text)
    if text.isprintable():  # the common case: nothing to escape
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def first_line(exc: BaseException) -> str:
    """The root cause of ``exc`` as ``Type: first line of its message``.

    Hydra's ``instantiate`` wraps the builder's exception in a multi-line
    ``InstantiationException``; the user needs the original one.
    """
    while exc.__cause__ is not None and type(exc).__module__.startswith("hydra."):
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    message = lines[0].strip() if lines else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


@contextmanager
def config_errors(key: str, arguments: Iterable[object] = ()) -> Iterator[None]:
    """Turn an exception raised while building ``key`` from the user's config into a ConfigError.

    Anything a builder raises from a config value (a ``TypeError`` for an unknown keyword, a
    ``ValueError`` from torch or Lightning) becomes one line naming ``key``, or ``key.<name>``
    when the message names one of ``arguments`` (the node's keys: Lightning's "`max_epochs`
    must be ..." gives ``trainer.max_epochs``); the original stays attached as ``__cause__``
    for ``HYDRA_FULL_ERROR=1``. Errors that already name their key or file
    (:class:`CnnlabError`) pass through unchanged, and so does the key of a plain
    ``ValueError``/``TypeError`` whose message starts with a dotted config key (the model
    code's convention: ``model.stem: must be one of ...``), so library code needs no
    cnnlab error types.

    Example:
        >>> with config_errors("optimizer"):
        ...     raise ValueError("Invalid momentum: -1")
        Traceback (most recent call last):
        ...
        cnnlab.errors.ConfigError: optimizer: cannot be built (ValueError: Invalid momentum: -1)
        >>> with config_errors("model"):
        ...     raise ValueError("model.stem: must be one of auto, imagenet, small, got 'x'")
        Traceback (most recent call last):
        ...
        cnnlab.errors.ConfigError: model.stem: must be one of auto, imagenet, small, got 'x'
        >>> with config_errors("trainer", ["max_epochs", "num_nodes"]):
        ...     raise ValueError("`num_nodes` < 1")
        Traceback (most recent call last):
        ...
        cnnlab.errors.ConfigError: trainer.num_nodes: is refused (ValueError: `num_nodes` < 1)
    """
    try:
        yield
    except CnnlabError:
        raise
    except Exception as exc:
        cause = exc.__cause__ if type(exc).__module__.startswith("hydra.") else None
        if isinstance(cause, CnnlabError):
            raise cause from exc
        root = cause if cause is not None else exc
        keyed = _KEYED.match(str(root)) if isinstance(root, ValueError | TypeError) else None
        if keyed is not None:
            raise ConfigError(keyed["key"], keyed["message"]) from exc
        named = _first_named(str(root), arguments)
        if named is not None:
            raise ConfigError(f"{key}.{named}", f"is refused ({first_line(exc)})") from exc
        raise ConfigError(key, f"cannot be built ({first_line(exc)})") from exc


def _first_named(message: str, names: Iterable[object]) -> str | None:
    """The name of ``names`` that ``message`` mentions first, as a whole word; None if none."""
    found = []
    for name in map(str, names):
        if not name.startswith("_"):  # _target_, _partial_
            match = re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", message, re.IGNORECASE)
            if match is not None:
                found.append((match.start(), name))
    return min(found)[1] if found else None


# A message that names its config key first: ``group.option: what is wrong``.
_KEYED = re.compile(r"^(?P<key>[a-z_][a-z0-9_]*(?:\.[a-z0-9_]+)+): (?P<message>[^\n]+)")


def find_user_error(exc: BaseException) -> CnnlabError | None:
    """Return the :class:`CnnlabError` in ``exc``'s cause chain, if any.

    Hydra's ``instantiate`` and Lightning wrap exceptions raised in user code; the
    original error is kept as ``__cause__`` or ``__context__``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CnnlabError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None
