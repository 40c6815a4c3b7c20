"""Activation layers (non-linearities) from names."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from torch import nn

from cnnlab.models.layers._spec import FLOAT, STR, LayerSpec, ParamTypes, keyed, read_spec

__all__ = ["act_names", "get_act"]

# name -> (class, parameters, whether the class takes `inplace`).
_ACTS: dict[str, tuple[type[nn.Module], dict[str, ParamTypes], bool]] = {
    "none": (nn.Identity, {}, False),
    "relu": (nn.ReLU, {}, True),
    # ReLU capped at 6: MobileNet v2's choice, robust in low precision.
    "relu6": (nn.ReLU6, {}, True),
    "leaky_relu": (nn.LeakyReLU, {"negative_slope": FLOAT}, True),
    "elu": (nn.ELU, {"alpha": FLOAT}, True),
    "gelu": (nn.GELU, {"approximate": STR}, False),
    "silu": (nn.SiLU, {}, True),
    "hardswish": (nn.Hardswish, {}, True),
    "tanh": (nn.Tanh, {}, False),
    "sigmoid": (nn.Sigmoid, {}, False),
}
_PARAMS = {name: params for name, (_, params, _) in _ACTS.items()}


def act_names() -> list[str]:
    """Return the activation names :func:`get_act` accepts."""
    return sorted(_ACTS)


def get_act(spec: LayerSpec, *, inplace: bool = True) -> Callable[[], nn.Module]:
    """Return a factory that makes the activation layer.

    Example:
        >>> get_act({"name": "leaky_relu", "negative_slope": 0.2})()
        LeakyReLU(negative_slope=0.2, inplace=True)

    Args:
        spec: A name (``none``, ``relu``, ``relu6``, ``leaky_relu``, ``elu``, ``gelu``,
            ``silu``, ``hardswish``, ``tanh``, ``sigmoid``), a mapping
            ``{name: ..., <params>}`` (``negative_slope`` for leaky_relu, ``alpha`` for
            elu, ``approximate`` (``none``/``tanh``) for gelu), a class or partial
            (returned unchanged), or None (:class:`torch.nn.Identity`).
        inplace: Build layers that overwrite their input where the class supports
            it (saves memory). Pass False when hooks read activations, as saliency
            and Grad-CAM do.

    Returns:
        ``factory() -> nn.Module``.

    Raises:
        ValueError: ``activation.name`` for an unknown name (the message lists the
            choices), ``activation.<param>`` for an unknown or invalid parameter.
    """
    if spec is None:
        return nn.Identity
    if callable(spec) and not isinstance(spec, Mapping):
        return spec
    name, params = read_spec(spec, "activation", _PARAMS)
    cls, _, takes_inplace = _ACTS[name]
    if params.get("approximate", "none") not in ("none", "tanh"):
        raise keyed(
            "activation.approximate", f"must be 'none' or 'tanh', got {params['approximate']!r}"
        )
    if takes_inplace and inplace:
        params["inplace"] = True
    return partial(cls, **params) if params else cls
