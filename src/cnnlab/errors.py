"""User-facing errors.

Anything a user can get wrong (a config value, a file, a checkpoint) raises a
:class:`CnnlabError`. The CLI prints it as one line and exits non-zero; the
full traceback appears only with ``HYDRA_FULL_ERROR=1``.
"""

from __future__ import annotations


class CnnlabError(Exception):
    """Base class of errors caused by user input rather than by a bug."""


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
