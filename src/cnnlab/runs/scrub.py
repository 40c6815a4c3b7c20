"""Removing secrets from anything cnnlab writes: run manifests, config dumps, logs.

Three rules, all applied by :func:`scrub_secrets`:

* a mapping entry whose key looks secret (``api_key``, ``token``, ``password``, ``passwd``,
  ``secret``, ``credential``, any case, anywhere in the key) has its value replaced by
  ``"***"``; the same holds for ``key=value`` and ``key: value`` text inside strings
  (command lines, overrides, diffs);
* the password of a URL (``postgresql://user:PASSWORD@host/db``) becomes ``***``;
* the values of secret-looking environment variables, ``WANDB_API_KEY`` above all, are
  replaced by ``"***"`` wherever they occur in any string.

A file with masked values cannot be re-run as it is: :func:`masked_keys` lists what must
be supplied again, and :func:`restore_url` gives back a storage URL this process knew.

Matching is deliberately broad (``tokenizer`` counts as secret-looking): hiding a harmless
value costs little, leaking a key costs a lot.
"""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "SECRET_KEY_PATTERN",
    "env_secrets",
    "mask_checkpoint_secrets",
    "masked_keys",
    "remember_urls",
    "restore_url",
    "scrub_secrets",
    "scrub_text",
]

MASK = "***"

# A key (config key, env var name, CLI flag) that holds a secret.
_SECRET_WORDS = r"api[_\-]?key|token|passw(?:or)?d|secret|credential"
SECRET_KEY_PATTERN = re.compile(_SECRET_WORDS, re.IGNORECASE)

# `name=value`, `name: value`, `"name": "value"` in free text, where the name looks secret.
_ASSIGNMENT = re.compile(
    rf"""(?P<lead>[\w.\-]*(?:{_SECRET_WORDS})[\w.\-]*["']?\s*[=:]\s*["']?)"""
    r"""(?P<value>\$\{[^}]*\}|[^\s"',;}\]]+)""",
    re.IGNORECASE,
)

# The password of `scheme://user:password@host`: whatever sits between `user:` and `@`.
_URL_PASSWORD = re.compile(
    r"(?P<lead>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@'\"]*:)(?P<value>[^\s/@'\"]+)(?=@)"
)

# Secret-looking env vars shorter than this are left alone: values such as "0" or "false"
# would otherwise be masked all over the text. WANDB_API_KEY is always masked.
_MIN_ENV_SECRET_LEN = 8
_ALWAYS_MASKED_ENV = ("WANDB_API_KEY",)


def env_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the secret values found in the environment, longest first.

    Args:
        environ: Variables to look at (default: ``os.environ``).

    Returns:
        The value of ``WANDB_API_KEY`` if set, and of every other variable whose name looks
        secret and whose value has at least 8 characters.
    """
    environ = os.environ if environ is None else environ
    found = {
        value
        for name, value in environ.items()
        if value
        and (
            name in _ALWAYS_MASKED_ENV
            or (SECRET_KEY_PATTERN.search(name) and len(value) >= _MIN_ENV_SECRET_LEN)
        )
    }
    # Longest first, so a secret that contains another is masked whole.
    return sorted(found, key=len, reverse=True)


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask secret assignments and known secret values in a string.

    Example:
        >>> scrub_text("logger.wandb.api_key=abc123 seed=1")
        'logger.wandb.api_key=*** seed=1'

    Args:
        text: Any text: a command line, an override, a diff.
        secrets: Literal values to mask wherever they occur.

    Returns:
        The text with each secret replaced by ``***``.
    """
    for secret in secrets:
        text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m["lead"] + MASK, text)
    return _ASSIGNMENT.sub(lambda m: m["lead"] + MASK, text)


def scrub_secrets(data: Any, secrets: Iterable[str] | None = None) -> Any:
    """Return a copy of a JSON-like structure with every secret masked.

    Args:
        data: Nested dicts, lists, tuples and scalars.
        secrets: Literal values to mask (default: :func:`env_secrets` of ``os.environ``).

    Returns:
        The same structure (tuples become lists) with secret-keyed values and secret text
        replaced by ``***``. ``None`` values under secret keys stay ``None``: they hide nothing.
    """
    values = env_secrets() if secrets is None else sorted(set(secrets), key=len, reverse=True)
    return _scrub(data, [v for v in values if v])


def _scrub(data: Any, secrets: list[str]) -> Any:
    if isinstance(data, Mapping):
        return {
            _scrub(key, secrets): (
                MASK
                if isinstance(key, str) and SECRET_KEY_PATTERN.search(key) and value is not None
                else _scrub(value, secrets)
            )
            for key, value in data.items()
        }
    if isinstance(data, list | tuple):
        return [_scrub(item, secrets) for item in data]
    if isinstance(data, str):
        return scrub_text(data, secrets)
    return data


def masked_keys(data: Any, prefix: str = "") -> list[str]:
    """Return the dotted keys of ``data`` whose value was masked (``***`` or a URL's password).

    Example:
        >>> masked_keys({"db_password": "***", "sweep": {"storage": "pg://u:***@h/db"}})
        ['db_password', 'sweep.storage']
    """
    found = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            found += masked_keys(value, f"{prefix}{key}.")
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found += masked_keys(value, f"{prefix}{i}.")
    elif isinstance(data, str) and (data == MASK or f":{MASK}@" in data):
        found.append(prefix.rstrip("."))
    return found


# Masked URL -> the real one, for URLs this process was given (a sweep's storage).
_KNOWN_URLS: dict[str, str] = {}


def remember_urls(data: Any) -> None:
    """Remember every URL with a password in ``data``, so :func:`restore_url` can undo its mask.

    The sweeper records its storage URL masked (in ``sweep.json``) and reopens the study
    from that file at the end of the sweep; in that process the real URL is known.
    """
    if isinstance(data, Mapping):
        for value in data.values():
            remember_urls(value)
    elif isinstance(data, list | tuple):
        for value in data:
            remember_urls(value)
    elif isinstance(data, str):
        for match in _URL_PASSWORD.finditer(data):
            url = data[match.start() :].split()[0]
            _KNOWN_URLS[scrub_text(url, ())] = url


def restore_url(url: str) -> str:
    """Undo the mask of a URL's password when this process knows the URL, else drop it.

    Without the password the database driver looks for it where it usually does
    (``PGPASSWORD`` or ``~/.pgpass`` for PostgreSQL, option files for MySQL).

    Example:
        >>> restore_url("postgresql://me:***@db.example/optuna")
        'postgresql://me@db.example/optuna'
    """
    if f":{MASK}@" not in url:
        return url
    return _KNOWN_URLS.get(url) or url.replace(f":{MASK}@", "@", 1)


# Where Lightning stores the module's and the data module's hyperparameters in a checkpoint.
_CHECKPOINT_HPARAMS = ("hyper_parameters", "datamodule_hyper_parameters")


# Per checkpoint key: (env secrets, hyperparameters, their masked copy) of the last save. A run
# saves the same hyperparameters every epoch, and masking walks every string with three
# regexes (about 0.6 ms a checkpoint on a laptop CPU); comparing and copying is ten times less.
_LAST_MASKED: dict[str, tuple[list[str], dict[str, Any], dict[str, Any]]] = {}


def mask_checkpoint_secrets(checkpoint: dict[str, Any]) -> None:
    """Mask secrets in a checkpoint's hyperparameters, in place, before it is saved.

    Nothing rebuilt from a checkpoint needs a secret: the network needs none, and data
    rebuilt from a checkpoint never downloads.
    """
    secrets = env_secrets()
    for key in _CHECKPOINT_HPARAMS:
        value = checkpoint.get(key)
        if not isinstance(value, Mapping):
            continue
        last = _LAST_MASKED.get(key)
        if last is None or last[0] != secrets or last[1] != value:
            last = (secrets, copy.deepcopy(dict(value)), scrub_secrets(dict(value), secrets))
            _LAST_MASKED[key] = last
        # Copies both ways: no later change to the module's or the checkpoint's dicts reaches
        # the remembered ones.
        checkpoint[key] = copy.deepcopy(last[2])
