"""The first layer's kernels, and the feature maps of chosen layers for an input."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.interpret.layers import attribution_mode, conv_layers, find_layer
from cnnlab.models.layers import TableConv2d


def first_layer_filters(model: nn.Module) -> tuple[str, torch.Tensor]:
    """Return the path and the kernels (out, in, k, k) of the network's first conv layer.

    A connection-table conv (LeNet-5's C3 with ``c3_table=lecun``) gives its dense
    kernel, with zeros for the missing connections.

    Raises:
        ConfigError: ``method`` when the network has no conv layer.
    """
    convs = conv_layers(model)
    if not convs:
        raise ConfigError("method", f"filters: {type(model).__name__} has no conv layer")
    name, layer = next(iter(convs.items()))
    if isinstance(layer, TableConv2d):
        weight = layer.dense_weight()
    else:
        weight = layer.get_parameter("weight")
    return name, weight.detach().cpu()


def feature_maps(
    model: nn.Module, images: torch.Tensor, layers: Sequence[str] | None = None
) -> dict[str, torch.Tensor]:
    """Record the outputs of ``layers`` while ``model`` classifies ``images``.

    Args:
        model: The network.
        images: Network input, (N, C, H, W).
        layers: Module paths; None takes every conv layer whose maps are larger than 1x1.

    Returns:
        Layer path -> its output (N, channels, h, w), on the CPU, in the order given.

    Raises:
        ConfigError: ``layers`` for an unknown path (the message lists the conv
            layers) or a layer whose output is not a 4-d feature map.
    """
    names = list(layers) if layers is not None else list(conv_layers(model))
    if not names:
        raise ConfigError("layers", f"{type(model).__name__} has no conv layer; name layers")
    modules = {name: find_layer(model, name, key="layers") for name in names}
    outputs: dict[str, torch.Tensor] = {}
    handles = [
        module.register_forward_hook(
            lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach().cpu())
        )
        for name, module in modules.items()
    ]
    try:
        with attribution_mode(model), torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    for name in names:
        if not isinstance(outputs.get(name), torch.Tensor) or outputs[name].ndim != 4:
            raise ConfigError("layers", f"{name!r} does not output feature maps (N, C, H, W)")
    if layers is None:
        # A 1x1 "map" (LeNet-5's C5, a fully connected layer in conv form) shows nothing.
        names = [n for n in names if outputs[n].shape[-1] * outputs[n].shape[-2] > 1] or names
    return {name: outputs[name] for name in names}
