"""Shared helper: model code names a bad value's config key first, in a plain error."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def raises_key(key: str, match: str = "") -> Iterator[Any]:
    """Expect a plain ``ValueError``/``TypeError`` whose message starts with ``key: ``.

    Model code imports no cnnlab error types; :func:`cnnlab.errors.config_errors` turns
    such a message into a one-line ``ConfigError`` naming ``key``.
    """
    with pytest.raises((ValueError, TypeError), match=rf"^{re.escape(key)}: {match}") as err:
        yield err
    assert type(err.value) in (ValueError, TypeError), type(err.value)
