"""Finding layers by module path, and putting a network into a state fit for attribution."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import TableConv2d

# The layer types that count as convolutions: PyTorch's and LeNet-5's connection-table conv.
CONV_TYPES = (nn.Conv2d, TableConv2d)


def conv_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Return the convolution layers of ``model`` by module path, in forward-definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, CONV_TYPES)}


def find_layer(model: nn.Module, path: str, key: str = "target_layer") -> nn.Module:
    """Return the submodule at ``path`` (``features.c3.conv``).

    A checkpoint's network sits under ``net.`` in the Lightning module; the path
    may be given with or without that prefix.

    Raises:
        ConfigError: ``key`` when no module has that path; the message lists the
            convolution layers.
    """
    candidates = [path, path.removeprefix("net.")]
    for candidate in candidates:
        try:
            return model.get_submodule(candidate)
        except AttributeError:
            continue
    raise ConfigError(
        key,
        f"no layer {path!r} in {type(model).__name__}; its conv layers are: "
        + ", ".join(conv_layers(model)),
    )


def output_shapes(model: nn.Module, example: torch.Tensor, names: list[str]) -> dict[str, tuple]:
    """Run ``example`` through ``model`` and return the output shape of each named layer."""
    shapes: dict[str, tuple] = {}
    handles = [
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        )
        for name in names
    ]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def default_gradcam_layer(model: nn.Module, example: torch.Tensor) -> str:
    """The path of the last conv layer whose output map is larger than 1x1.

    Grad-CAM uses the last convolutional layer: the most class-specific maps that
    still keep a spatial layout. A conv with a 1x1 output (LeNet-5's C5, a fully
    connected layer in conv form) has no layout left, so it is skipped.

    Args:
        model: The network.
        example: One input batch (any size), used to measure the map sizes.

    Raises:
        ConfigError: ``target_layer`` when the network has no conv layer with a
            spatial output.
    """
    names = list(conv_layers(model))
    shapes = output_shapes(model, example[:1], names)
    spatial = [n for n in names if n in shapes and shapes[n][-1] * shapes[n][-2] > 1]
    if not spatial:
        raise ConfigError(
            "target_layer",
            f"{type(model).__name__} has no conv layer with a spatial output; name a layer",
        )
    return spatial[-1]


@contextmanager
def attribution_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Eval mode, frozen weights and no in-place activations, restored on exit.

    In-place activations overwrite the tensors that hooks captured (Grad-CAM's
    feature maps); eval mode fixes batch norm and turns dropout off; frozen
    weights keep gradients to the input only.
    """
    was_training = model.training
    inplace = [m for m in model.modules() if getattr(m, "inplace", False) is True]
    grads = [p for p in model.parameters() if p.requires_grad]
    for m in inplace:
        m.inplace = False  # type: ignore[assignment]
    for p in grads:
        p.requires_grad_(False)
    model.eval()
    try:
        # Lightning may call in from inference mode (e.g. a test hook); gradients are needed.
        with torch.inference_mode(False), torch.enable_grad():
            yield model
    finally:
        for m in inplace:
            m.inplace = True  # type: ignore[assignment]
        for p in grads:
            p.requires_grad_(True)
        model.train(was_training)
