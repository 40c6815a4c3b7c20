"""Reading layer specs: a name, a mapping ``{name: ..., <params>}``, or None.

Every factory in :mod:`cnnlab.models.layers` takes its spec straight from a config
group (``norm``, ``activation``, ``init``, ``dropout``), so the checks here raise a
plain ``ValueError``/``TypeError`` whose message starts with the group's key
(``norm.groups: ...``); the task layer (:func:`cnnlab.errors.config_errors`) turns it
into a one-line config error naming that key.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from cnnlab.config import plain

#: What a layer argument may be: a name, a mapping with a ``name`` and parameters,
#: a class or ``functools.partial`` (passed through), or None (the factory's default).
LayerSpec: TypeAlias = str | Mapping[str, Any] | Callable[..., Any] | None

#: A parameter's accepted Python types, in the order they are tried.
ParamTypes: TypeAlias = tuple[type, ...]

FLOAT: ParamTypes = (float, int)
INT: ParamTypes = (int,)
BOOL: ParamTypes = (bool,)
STR: ParamTypes = (str,)


def keyed(key: str, message: str, kind: type[Exception] = ValueError) -> Exception:
    """The error for a bad config value: ``key: message``, which the task layer names."""
    return kind(f"{key}: {message}")


def canonical(name: str) -> str:
    """Lower-case a layer name and accept ``-`` for ``_`` (``Leaky-ReLU`` -> ``leaky_relu``)."""
    return name.strip().lower().replace("-", "_")


def split_spec(spec: str | Mapping[str, Any], group: str) -> tuple[str, dict[str, Any]]:
    """Split a spec (a name, or a mapping with a ``name`` key and parameters) of config
    ``group`` into its canonical name and its parameters.

    Parameters set to None are dropped so that the factory's default applies (a YAML
    ``null`` means "use the default").

    Raises:
        ValueError: ``<group>.name`` when the name is missing or not a string,
            ``<group>`` when the spec is neither a string nor a mapping.
    """
    if isinstance(spec, str):
        return canonical(spec), {}
    if isinstance(spec, Mapping):
        params = plain(spec)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise keyed(
                f"{group}.name", f"must be a string naming the {group}, got {name!r}", TypeError
            )
        return canonical(name), {k: v for k, v in params.items() if v is not None}
    raise keyed(
        group,
        f"expected a name or a mapping with a 'name' key, got {type(spec).__name__}",
        TypeError,
    )


def read_spec(
    spec: str | Mapping[str, Any], group: str, choices: Mapping[str, Mapping[str, ParamTypes]]
) -> tuple[str, dict[str, Any]]:
    """Read a spec whose name must be one of ``choices`` (name -> its parameters and their
    accepted types): ``(name, params)`` as :func:`split_spec` and :func:`check_params` give.

    Raises:
        ValueError: ``<group>.name`` for an unknown name (the message lists the
            choices); as :func:`split_spec` and :func:`check_params` otherwise.
    """
    name, params = split_spec(spec, group)
    if name not in choices:
        listed = ", ".join(sorted(choices))
        raise keyed(f"{group}.name", f"unknown {group} {name!r}; choose from {listed}")
    return name, check_params(group, name, params, choices[name])


def check_params(
    group: str, name: str, params: Mapping[str, Any], allowed: Mapping[str, ParamTypes]
) -> dict[str, Any]:
    """Check that every parameter is in ``allowed`` (name -> accepted types) with an accepted
    type; ints given for floats come back as floats.

    Raises:
        ValueError: ``<group>.<param>`` for an unknown parameter, a wrong type, or a number
            that is not finite (NaN, inf).
    """
    checked: dict[str, Any] = {}
    for key, value in params.items():
        if key not in allowed:
            options = ", ".join(sorted(allowed)) or "none"
            raise keyed(
                f"{group}.{key}",
                f"is not a parameter of {group} {name!r} (its parameters: {options})",
                TypeError,
            )
        types = allowed[key]
        # bool is an int subclass; a YAML `true` must not pass as a number.
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise keyed(f"{group}.{key}", f"must be {expected}, got {value!r}", TypeError)
        if float in types and isinstance(value, int | float):
            value = float(value)
            if not math.isfinite(value):
                raise keyed(f"{group}.{key}", f"must be a finite number, got {value!r}")
        checked[key] = value
    return checked
