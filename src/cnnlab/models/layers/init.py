"""Weight initialisation schemes from names, applied by one loop over a model's modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol, cast, runtime_checkable

import torch
from torch import nn

from cnnlab.models.layers._spec import FLOAT, STR, LayerSpec, ParamTypes, keyed, read_spec
from cnnlab.models.layers.act import get_act

__all__ = ["CustomInit", "WeightInit", "get_init", "init_names", "init_weights", "nonlinearity_of"]

#: Fills a weight tensor in place.
WeightInit = Callable[[torch.Tensor], Any]

_KAIMING: dict[str, ParamTypes] = {"mode": STR, "nonlinearity": STR}
_GAIN: dict[str, ParamTypes] = {"gain": FLOAT}
_INITS: dict[str, dict[str, ParamTypes]] = {
    "default": {},
    "kaiming_normal": _KAIMING,
    "kaiming_uniform": _KAIMING,
    "xavier_normal": _GAIN,
    "xavier_uniform": _GAIN,
    "orthogonal": _GAIN,
    "normal": {"mean": FLOAT, "std": FLOAT},
}
_NONLINEARITIES = ("linear", "relu", "leaky_relu", "tanh", "sigmoid", "selu")
# Slope of leaky_relu when the nonlinearity is named but no activation gives one.
_DEFAULT_SLOPE = 0.01


@runtime_checkable
class CustomInit(Protocol):
    """A layer whose weights are not a plain ``weight`` tensor initialises itself."""

    def init_with(self, weight_init: WeightInit) -> None:
        """Fill the layer's weights with ``weight_init`` and zero its biases."""


def init_names() -> list[str]:
    """Return the init names :func:`get_init` accepts."""
    return sorted(_INITS)


def nonlinearity_of(activation: LayerSpec) -> tuple[str, float]:
    """Name the activation as :func:`torch.nn.init.calculate_gain` does.

    The Kaiming gains assume a rectifier; smooth rectifiers (ELU, GELU, SiLU,
    Hardswish, ReLU6) get the ReLU gain, the usual approximation.

    Returns:
        ``(nonlinearity, negative_slope)`` for an activation spec (as for
        :func:`~cnnlab.models.layers.get_act`); the slope matters only for leaky_relu.
    """
    layer = get_act(activation, inplace=False)()
    if isinstance(layer, nn.LeakyReLU):
        return "leaky_relu", float(layer.negative_slope)
    if isinstance(layer, nn.Tanh):
        return "tanh", 0.0
    if isinstance(layer, nn.Sigmoid):
        return "sigmoid", 0.0
    if isinstance(layer, nn.Identity):
        return "linear", 0.0
    return "relu", 0.0


def get_init(spec: LayerSpec, *, activation: LayerSpec = None) -> WeightInit | None:
    """Return the function that fills one weight tensor, or None for PyTorch's own init.

    Args:
        spec: A name (``default``, ``kaiming_normal``, ``kaiming_uniform``,
            ``xavier_normal``, ``xavier_uniform``, ``orthogonal``, ``normal``), a
            mapping ``{name: ..., <params>}`` (``mode`` (fan_in/fan_out) and
            ``nonlinearity`` for kaiming, ``gain`` for xavier and orthogonal,
            ``mean`` and ``std`` for normal), a callable filling a tensor (returned
            unchanged), or None (``default``).
        activation: The model's activation spec; Kaiming init takes its
            nonlinearity (and leaky_relu's slope) from it unless the spec names one.

    Returns:
        ``weight_init(tensor)``, or None when PyTorch's per-layer defaults stay.

    Raises:
        ValueError: ``init.name`` for an unknown name (the message lists the
            choices), ``init.<param>`` for an unknown or invalid parameter.
    """
    if spec is None:
        return None
    if callable(spec) and not isinstance(spec, Mapping):
        return spec
    name, params = read_spec(spec, "init", _INITS)
    if name == "default":
        return None
    if name.startswith("kaiming"):
        return _kaiming(name, params, activation)
    if name == "normal":
        if params.get("std", 0.01) <= 0:
            raise keyed("init.std", f"must be > 0, got {params['std']}")
        return partial(nn.init.normal_, mean=params.get("mean", 0.0), std=params.get("std", 0.01))
    if params.get("gain", 1.0) <= 0:
        raise keyed("init.gain", f"must be > 0, got {params['gain']}")
    fill = {
        "xavier_normal": nn.init.xavier_normal_,
        "xavier_uniform": nn.init.xavier_uniform_,
        "orthogonal": nn.init.orthogonal_,
    }[name]
    return partial(fill, gain=params.get("gain", 1.0))


def _kaiming(name: str, params: dict[str, Any], activation: LayerSpec) -> WeightInit:
    mode = params.get("mode", "fan_in")
    if mode not in ("fan_in", "fan_out"):
        raise keyed("init.mode", f"must be 'fan_in' or 'fan_out', got {mode!r}")
    nonlinearity, slope = nonlinearity_of(activation if activation is not None else "relu")
    if "nonlinearity" in params:
        nonlinearity = params["nonlinearity"]
        if nonlinearity not in _NONLINEARITIES:
            raise keyed(
                "init.nonlinearity",
                f"unknown nonlinearity {nonlinearity!r}; choose from {', '.join(_NONLINEARITIES)}",
            )
        slope = slope or _DEFAULT_SLOPE
    fill = nn.init.kaiming_normal_ if name == "kaiming_normal" else nn.init.kaiming_uniform_
    # calculate_gain's names are checked above; the Literal type cannot see that.
    return partial(fill, a=slope, mode=mode, nonlinearity=cast(Any, nonlinearity))


_CONV_TYPES = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d)
_NORM_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.InstanceNorm2d,
    nn.GroupNorm,
    nn.LayerNorm,
)


def init_weights(module: nn.Module, spec: LayerSpec, *, activation: LayerSpec = None) -> None:
    """Initialise every conv and linear layer of ``module`` with one scheme.

    Conv and linear weights get the scheme and zero biases; norm layers get
    weight 1 and bias 0; layers implementing :class:`CustomInit` fill themselves.
    With the ``default`` scheme nothing changes: each layer keeps PyTorch's own
    initialisation. ``spec``, ``activation`` (for Kaiming's gain) and the errors are as for
    :func:`get_init`.
    """
    weight_init = get_init(spec, activation=activation)
    if weight_init is None:
        return
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (*_CONV_TYPES, nn.Linear)):
                weight_init(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, _NORM_TYPES) and getattr(m, "weight", None) is not None:
                nn.init.ones_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, CustomInit):
                m.init_with(weight_init)
