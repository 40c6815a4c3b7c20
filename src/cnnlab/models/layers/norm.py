"""Normalisation layers from names: none, batch, layer, instance and group norm.

All four share y = gamma * (x - mu) / sigma + beta and differ only in the set of
values mu and sigma are taken over (Wu and He 2018, fig. 2):

- ``batch``: per channel, over the mini-batch and space (:class:`torch.nn.BatchNorm2d`);
- ``layer``: per sample, over all channels and space (:class:`LayerNorm2d`);
- ``instance``: per sample and channel, over space (:class:`InstanceNorm2d`);
- ``group``: per sample, over groups of C/G channels and space (:class:`GroupNorm2d`).

The image variants of layer and instance norm are GroupNorm with 1 group and with
one group per channel; they are classes of their own so a model printout says
which norm the run used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial

from torch import nn

from cnnlab.models.layers._spec import BOOL, FLOAT, INT, LayerSpec, ParamTypes, keyed, read_spec

__all__ = ["GroupNorm2d", "InstanceNorm2d", "LayerNorm2d", "get_norm", "get_norm1d", "norm_names"]

#: Groups used when a ``group`` spec gives none: 2 divides every width of the
#: built-in models (LeNet-5 has 6 maps); Wu and He's 32 suits wide nets.
DEFAULT_GROUPS = 2


class LayerNorm2d(nn.GroupNorm):
    """Layer norm for images: GroupNorm with one group (per sample, over C, H and W)."""

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(1, num_channels, eps=eps, affine=affine)


class InstanceNorm2d(nn.GroupNorm):
    """Instance norm: GroupNorm with one group per channel (per sample and channel, over H, W).

    Unlike :class:`torch.nn.InstanceNorm2d` it is affine by default and keeps no
    running statistics, so training and evaluation normalise the same way.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5, affine: bool = True) -> None:
        super().__init__(num_channels, num_channels, eps=eps, affine=affine)


class GroupNorm2d(nn.GroupNorm):
    """Group norm (Wu and He 2018) with the channel count first, like the other norm layers.

    Raises:
        ValueError: ``norm.groups`` when ``groups`` does not divide ``num_channels``.
    """

    def __init__(
        self,
        num_channels: int,
        groups: int = DEFAULT_GROUPS,
        eps: float = 1e-5,
        affine: bool = True,
    ) -> None:
        if num_channels % groups:
            divisors = [d for d in range(1, num_channels + 1) if num_channels % d == 0]
            raise keyed(
                "norm.groups",
                f"{groups} does not divide the {num_channels} channels of a layer of this "
                f"model; use a divisor of every layer width (divisors of {num_channels}: "
                f"{', '.join(map(str, divisors))})",
            )
        super().__init__(groups, num_channels, eps=eps, affine=affine)


_AFFINE: dict[str, ParamTypes] = {"eps": FLOAT, "affine": BOOL}
_BATCH: dict[str, ParamTypes] = {**_AFFINE, "momentum": FLOAT, "track_running_stats": BOOL}
_GROUP: dict[str, ParamTypes] = {**_AFFINE, "groups": INT}

# name -> (2-D layer for conv features, 1-D layer for FC features, parameters).
# Instance norm of an FC feature would normalise a single value, so it is Identity there.
_NORMS: dict[
    str, tuple[Callable[..., nn.Module], Callable[..., nn.Module], dict[str, ParamTypes]]
] = {
    "none": (nn.Identity, nn.Identity, {}),
    "batch": (nn.BatchNorm2d, nn.BatchNorm1d, _BATCH),
    "layer": (LayerNorm2d, LayerNorm2d, _AFFINE),
    "instance": (InstanceNorm2d, nn.Identity, _AFFINE),
    "group": (GroupNorm2d, GroupNorm2d, _GROUP),
}
_PARAMS = {name: params for name, (_, _, params) in _NORMS.items()}


def norm_names() -> list[str]:
    """Return the norm names :func:`get_norm` accepts."""
    return sorted(_NORMS)


def _resolve(spec: LayerSpec, *, fc: bool) -> Callable[[int], nn.Module]:
    if spec is None:
        return nn.Identity
    if callable(spec) and not isinstance(spec, Mapping):
        # A class or partial chosen in code is trusted as is (timm's convention).
        return spec
    name, params = read_spec(spec, "norm", _PARAMS)
    conv_layer, fc_layer, _ = _NORMS[name]
    if "groups" in params and params["groups"] < 1:
        raise keyed("norm.groups", f"must be >= 1, got {params['groups']}")
    if "eps" in params and params["eps"] <= 0:
        raise keyed("norm.eps", f"must be > 0, got {params['eps']}")
    if "momentum" in params and not 0 <= params["momentum"] <= 1:
        raise keyed("norm.momentum", f"must be in [0, 1], got {params['momentum']}")
    layer = fc_layer if fc else conv_layer
    return partial(layer, **params) if params else layer


def get_norm(spec: LayerSpec) -> Callable[[int], nn.Module]:
    """Return a factory that makes the norm layer for a conv feature map of C channels.

    Example:
        >>> norm_layer = get_norm({"name": "group", "groups": 2})
        >>> norm_layer(6)
        GroupNorm2d(2, 6, eps=1e-05, affine=True, bias=True)

    Args:
        spec: A name (``none``, ``batch``, ``layer``, ``instance``, ``group``), a
            mapping ``{name: ..., <params>}`` (``eps``, ``affine``; ``momentum`` and
            ``track_running_stats`` for batch; ``groups`` for group), a class or
            partial taking the channel count (returned unchanged), or None
            (:class:`torch.nn.Identity`).

    Returns:
        ``factory(num_channels) -> nn.Module``.

    Raises:
        ValueError: ``norm.name`` for an unknown name (the message lists the
            choices), ``norm.<param>`` for an unknown or invalid parameter.
    """
    return _resolve(spec, fc=False)


def get_norm1d(spec: LayerSpec) -> Callable[[int], nn.Module]:
    """Return a factory for the same norm applied to FC features of shape (N, C).

    ``batch`` gives :class:`torch.nn.BatchNorm1d`; ``layer`` and ``group`` work on
    (N, C) as they are; ``instance`` gives :class:`torch.nn.Identity` (one value per
    channel has no spread to normalise). Classes and partials are returned unchanged;
    ``spec`` and the errors are as for :func:`get_norm`.
    """
    return _resolve(spec, fc=True)
