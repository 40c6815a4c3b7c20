"""Removing secrets from anything cnnlab writes: run manifests, config dumps, logs.

Secrets are masked on their values, not on the shape of the text around them: a value with a
comma, a space or a ``/`` cannot be cut out of free text reliably, but it can be found whole.
So the values are collected once and every occurrence of each is replaced, longest first.
The known values (:func:`known_secrets`) are:

* the values under a key that looks secret (``api_key``, ``token``, ``password``, ``passwd``,
  ``secret``, ``credential``, any case, anywhere in the key) in the config this process was
  given (:func:`remember_secrets`, called by the Hydra callback of
  :mod:`cnnlab.secrets.callback`) and in the overrides of its command line; a list gives
  each element and the joined form, and a text with commas or spaces each part too;
* the password of every URL in them (``postgresql://user:PASSWORD@host/db``, read up to the
  last ``@``, as it may hold ``/``, ``:`` or ``@``);
* the values of secret-looking environment variables, ``WANDB_API_KEY`` above all.

:func:`scrub_secrets` and :func:`scrub_text` replace each of them by ``***`` wherever it
occurs. They also keep the rules on shapes, for secrets this process never saw (a file from
elsewhere, an error message): a mapping entry under a secret-looking key becomes ``"***"``,
as does the value of ``key=value`` and ``key: value`` text with such a key, and a URL's
password.

A file with masked values cannot be re-run as it is: :func:`masked_keys` lists what must
be supplied again, and :func:`restore_url` gives back a storage URL this process knew.

Matching is deliberately broad (``tokenizer`` counts as secret-looking): hiding a harmless
value costs little, leaking a key costs a lot.
"""

from __future__ import annotations

import functools
import os
import re
import sys
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "MASK",
    "SECRET_KEY_PATTERN",
    "env_secrets",
    "known_secrets",
    "mask_checkpoint_secrets",
    "masked_keys",
    "remember_secrets",
    "remember_urls",
    "restore_url",
    "scrub_secrets",
    "scrub_text",
    "secret_values",
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

# The password of `scheme://user:password@host`: whatever sits between `user:` and the last
# `@` before the next space or quote. SQLAlchemy URLs allow `/` and `:` in a password, and an
# `@` there is taken as the end of the password by the URL's reader: masking up to the last
# one hides the password under either reading.
_URL_PASSWORD = re.compile(
    r"(?P<lead>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s/:@'\"]*:)(?P<value>[^\s'\"]+)(?=@)"
)

# One override of a command line: `key=value`, `+key=value`, `++key=value`. Hydra joins a
# job's overrides with commas (`hydra.job.override_dirname`): a value ends before `,key=`.
_OVERRIDE = re.compile(r"[+~]{0,2}(?P<key>[^=\s,]+)=(?P<value>.*)", re.DOTALL)
_NEXT_OVERRIDE = re.compile(r",(?=[+~]{0,2}[\w.\-/@]+=)")
# What separates the parts of a value given as a list (`a,b`, `[a, b]`) or as several words.
_PARTS = re.compile(r"[\s,]+")
_ENCLOSING = "[](){}'\" "
# Hydra writes the overrides of a job with these characters escaped (`pg\://u\:pw@h`).
_HYDRA_SPECIAL = re.compile(r"([\\()\[\]{}:=, \t])")
_HYDRA_ESCAPED = re.compile(r"\\(.)")

# A value shorter than this is masked where its key is, but not searched for in all text: "1"
# would otherwise mask every digit of every file. Nor are words that many settings take.
_MIN_SECRET_LEN = 3
_NOT_SECRETS = frozenset({"true", "false", "null", "none", "yes", "no", MASK})

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


# Secret values this process was given (see remember_secrets).
_REMEMBERED: set[str] = set()


def secret_values(data: Any) -> set[str]:
    """Return the secret values in ``data``: a config, a list of overrides, a URL.

    Example:
        >>> sorted(secret_values(["+auth_token=tokA,tokB", "db=pg://u:a/b@h/db", "seed=1"]))
        ['a/b', 'tokA', 'tokA,tokB', 'tokB']

    Args:
        data: Nested dicts, lists and scalars; a string is read as an override
            (``key=value``) and searched for URLs with a password.

    Returns:
        Every value under a secret-looking key (each element of a list, each part of a
        text with commas or spaces, and the whole), and every URL password (also
        percent-decoded), except values too short or too common to search for.
    """
    found: set[str] = set()
    _collect(data, found, secret=False)
    return {value for value in found if _searchable(value)}


def remember_secrets(data: Any) -> None:
    """Add the secret values of ``data`` (see :func:`secret_values`) to :func:`known_secrets`.

    Called with the composed config before anything is written, so every later mask in this
    process finds each value wherever it appears.
    """
    _REMEMBERED.update(secret_values(data))


def known_secrets() -> list[str]:
    """Return every secret value this process knows, longest first.

    Those remembered from its config, those in the overrides of its command line (known
    before any config is composed, so an error about the command line is masked too), and
    those of the environment (:func:`env_secrets`).
    """
    found = _REMEMBERED | _command_line_secrets(tuple(sys.argv[1:])) | set(env_secrets())
    return sorted(found, key=len, reverse=True)


@functools.lru_cache(maxsize=8)
def _command_line_secrets(args: tuple[str, ...]) -> set[str]:
    return secret_values(list(args))


def _collect(data: Any, found: set[str], secret: bool) -> None:
    if isinstance(data, Mapping):
        for key, value in data.items():
            key_is_secret = isinstance(key, str) and bool(SECRET_KEY_PATTERN.search(key))
            _collect(value, found, secret or key_is_secret)
    elif isinstance(data, list | tuple):
        for item in data:
            _collect(item, found, secret)
        if secret:
            scalars = [str(item) for item in data if isinstance(item, str | int | float)]
            found.update((",".join(scalars), ", ".join(scalars)))
    elif isinstance(data, str):
        if secret:
            found.update(_forms(data))
        else:
            for text in _NEXT_OVERRIDE.split(data):
                override = _OVERRIDE.fullmatch(text)
                if override and SECRET_KEY_PATTERN.search(override["key"]):
                    found.update(_forms(override["value"]))
        for match in _URL_PASSWORD.finditer(data):
            found.update(_spellings(match["value"]))  # one token: commas may be part of it
    elif secret and isinstance(data, int | float) and not isinstance(data, bool):
        found.add(str(data))


def _forms(value: str) -> set[str]:
    """The ways a secret value can appear in text: whole, unquoted, and each of its parts."""
    whole = _HYDRA_ESCAPED.sub(r"\1", value).strip().strip(_ENCLOSING)
    parts = (part.strip(_ENCLOSING) for part in _PARTS.split(whole))
    return {value, *_spellings(whole), *(s for part in parts for s in _spellings(part))}


def _spellings(value: str) -> set[str]:
    """``value`` as given, percent-decoded, and as Hydra writes it in a job's overrides."""
    plain = _HYDRA_ESCAPED.sub(r"\1", value)
    return {value, plain, urllib.parse.unquote(plain), _HYDRA_SPECIAL.sub(r"\\\1", plain)}


def _searchable(value: str) -> bool:
    return len(value) >= _MIN_SECRET_LEN and value.lower() not in _NOT_SECRETS


def scrub_text(text: str, secrets: Iterable[str] | None = None) -> str:
    """Mask known secret values, secret assignments and URL passwords in a string.

    Example:
        >>> scrub_text("logger.wandb.api_key=abc123 seed=1")
        'logger.wandb.api_key=*** seed=1'
        >>> scrub_text("postgresql://u:p@ss@h/db", ())
        'postgresql://u:***@h/db'

    Args:
        text: Any text: a command line, an override, a diff, a log line.
        secrets: Literal values to mask wherever they occur (default: :func:`known_secrets`).

    Returns:
        The text with each secret replaced by ``***``.
    """
    values = known_secrets() if secrets is None else sorted(secrets, key=len, reverse=True)
    for secret in values:
        if secret:
            text = text.replace(secret, MASK)
    text = _URL_PASSWORD.sub(lambda m: m["lead"] + MASK, text)
    return _ASSIGNMENT.sub(lambda m: m["lead"] + MASK, text)


def scrub_secrets(data: Any, secrets: Iterable[str] | None = None) -> Any:
    """Return a copy of a JSON-like structure with every secret masked.

    Args:
        data: Nested dicts, lists, tuples and scalars.
        secrets: Literal values to mask (default: :func:`known_secrets`).

    Returns:
        The same structure (tuples become lists) with secret-keyed values and secret text
        replaced by ``***``. ``None`` values under secret keys stay ``None``: they hide nothing.
    """
    values = known_secrets() if secrets is None else sorted(set(secrets), key=len, reverse=True)
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


def mask_checkpoint_secrets(checkpoint: dict[str, Any]) -> None:
    """Mask secrets in a checkpoint's hyperparameters, in place, before it is saved.

    This is where hyperparameters leave the process in a file: the module and the data
    module keep the real values (they run with them), the checkpoint gets a masked copy.
    Nothing rebuilt from a checkpoint needs a secret: the network needs none, and data
    rebuilt from a checkpoint never downloads.
    """
    for key in _CHECKPOINT_HPARAMS:
        value = checkpoint.get(key)
        if isinstance(value, Mapping):
            checkpoint[key] = scrub_secrets(dict(value))
