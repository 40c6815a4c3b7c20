"""Image-specific class saliency (Simonyan, Vedaldi and Zisserman 2014, arXiv:1312.6034)."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.interpret._captum import captum_attr
from cnnlab.interpret.layers import attribution_mode


def saliency(model: nn.Module, images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Saliency maps: the largest absolute input gradient of the class score over channels.

    One backward pass from the pre-softmax score ``S_c`` of each image's target
    class to its input pixels, computed by :class:`captum.attr.Saliency`; the map
    is ``max_channels |dS_c / dI|``.

    Example:
        >>> from cnnlab.models import build_model
        >>> net = build_model("lenet5", in_channels=1, num_classes=10, image_size=28)
        >>> saliency(net, torch.randn(2, 1, 28, 28), torch.tensor([3, 7])).shape
        torch.Size([2, 28, 28])

    Args:
        model: A network returning class scores (N, classes).
        images: Network input (normalised), (N, C, H, W).
        target: The class of each image, (N,) integers.

    Returns:
        The maps, (N, H, W), on the input's device.
    """
    attr = captum_attr()
    with attribution_mode(model):
        inputs = images.detach().clone().requires_grad_(True)
        grads = attr.Saliency(model).attribute(inputs, target=target, abs=True)
    return grads.detach().amax(dim=1)
