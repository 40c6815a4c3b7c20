"""Dropout from the ``dropout`` group: ``{name, rate, spatial}``.

Architectures place dropout at two kinds of site:

- before fully connected layers (where the papers put it): units are dropped
  with :class:`torch.nn.Dropout` (Srivastava et al. 2014);
- after conv stages: only with ``spatial: true``, whole feature maps are dropped
  with :class:`torch.nn.Dropout2d` (Tompson et al. 2015). Dropping single pixels
  of a feature map barely regularises, since neighbours carry the same signal,
  so conv sites stay off when ``spatial`` is false.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import NamedTuple

from torch import nn

from cnnlab.models.layers._spec import BOOL, FLOAT, LayerSpec, ParamTypes, keyed, read_spec

__all__ = ["DropoutSites", "dropout_names", "dropout_sites", "get_dropout"]

# name -> the defaults it stands for; `rate` and `spatial` given in the spec win.
_DROPOUTS: dict[str, dict[str, float | bool]] = {
    "none": {"rate": 0.0, "spatial": False},
    "standard": {"rate": 0.5, "spatial": False},
    "spatial": {"rate": 0.1, "spatial": True},
}
_PARAMS: dict[str, ParamTypes] = {"rate": FLOAT, "spatial": BOOL}


def dropout_names() -> list[str]:
    """Return the dropout names :func:`get_dropout` accepts."""
    return sorted(_DROPOUTS)


def get_dropout(spec: LayerSpec | float, *, conv: bool = False) -> Callable[[], nn.Module]:
    """Return a factory for the dropout layer at one kind of site.

    Example:
        >>> spec = {"name": "spatial", "rate": 0.2, "spatial": True}
        >>> get_dropout(spec)(), get_dropout(spec, conv=True)()
        (Dropout(p=0.2, inplace=False), Dropout2d(p=0.2, inplace=False))

    Args:
        spec: A mapping ``{name: none|standard|spatial, rate: float, spatial: bool}``
            (the name supplies defaults for missing keys), a name, a rate, or None
            (no dropout).
        conv: The site follows a conv stage (see the module docstring) rather than
            preceding an FC layer.

    Returns:
        ``factory() -> nn.Module``; :class:`torch.nn.Identity` when nothing is dropped.

    Raises:
        ValueError: ``dropout.rate`` for a rate outside [0, 1) or a rate given with
            ``none``; ``dropout.spatial`` when it contradicts the name;
            ``dropout.name`` for an unknown name.
    """
    if spec is None:
        return nn.Identity
    if isinstance(spec, bool):
        raise keyed("dropout", f"expected a rate, a name or a mapping, got {spec!r}", TypeError)
    if isinstance(spec, int | float):
        spec = {"name": "standard", "rate": float(spec)}
    if callable(spec) and not isinstance(spec, Mapping):
        return spec
    name, given = read_spec(spec, "dropout", dict.fromkeys(_DROPOUTS, _PARAMS))
    params = {**_DROPOUTS[name], **given}
    rate, spatial = params["rate"], params["spatial"]
    if not 0.0 <= rate < 1.0:
        raise keyed("dropout.rate", f"must be in [0, 1), got {rate}")
    if name == "none" and rate > 0:
        raise keyed(
            "dropout.rate", f"dropout 'none' drops nothing, got rate {rate}; use dropout=standard"
        )
    if name != "none" and spatial != _DROPOUTS[name]["spatial"]:
        raise keyed(
            "dropout.spatial",
            f"dropout {name!r} has spatial={_DROPOUTS[name]['spatial']}, got {spatial}; "
            f"use dropout={'spatial' if spatial else 'standard'}",
        )
    if rate == 0.0 or (conv and not spatial):
        return nn.Identity
    return partial(nn.Dropout2d if conv else nn.Dropout, p=rate)


class DropoutSites(NamedTuple):
    """The dropout factories of a model's two kinds of site (see the module docstring)."""

    fc: Callable[[], nn.Module] = nn.Identity
    conv: Callable[[], nn.Module] = nn.Identity


def dropout_sites(spec: LayerSpec | float) -> DropoutSites:
    """Resolve a dropout spec once for both kinds of site.

    Example:
        >>> dropout_sites(0.3).fc(), dropout_sites(0.3).conv()
        (Dropout(p=0.3, inplace=False), Identity())
    """
    if isinstance(spec, DropoutSites):
        return spec
    return DropoutSites(get_dropout(spec), get_dropout(spec, conv=True))
