"""Grad-CAM (Selvaraju et al. 2017, arXiv:1610.02391): class activation maps from gradients."""

from __future__ import annotations

import torch
from torch import nn

from cnnlab.interpret._captum import captum_attr
from cnnlab.interpret.layers import attribution_mode


def gradcam(
    model: nn.Module, images: torch.Tensor, target: torch.Tensor, layer: nn.Module
) -> tuple[torch.Tensor, torch.Tensor]:
    """Grad-CAM maps of ``layer`` for each image's target class, at layer and input size.

    With ``A^k`` the layer's feature maps and ``y^c`` the pre-softmax class
    score, ``alpha_k^c`` is the spatial mean of ``dy^c / dA^k`` and the map is
    ``ReLU(sum_k alpha_k^c A^k)`` (:class:`captum.attr.LayerGradCam`), then
    upsampled bilinearly to the input (``LayerAttribution.interpolate``).

    Args:
        model: A network returning class scores (N, classes).
        images: Network input (normalised), (N, C, H, W).
        target: The class of each image, (N,) integers.
        layer: The module whose output gives ``A^k`` (see
            :func:`~cnnlab.interpret.layers.default_gradcam_layer`).

    Returns:
        ``(maps, coarse)``: (N, H, W) at input size and (N, h, w) at the layer's size.
    """
    attr = captum_attr()
    with attribution_mode(model):
        # The input carries the graph: the weights are frozen, yet dy/dA^k is needed.
        inputs = images.detach().clone().requires_grad_(True)
        coarse = attr.LayerGradCam(model, layer).attribute(
            inputs, target=target, relu_attributions=True
        )
    coarse = coarse.detach()
    maps = attr.LayerAttribution.interpolate(coarse, tuple(images.shape[-2:]), "bilinear")
    return maps[:, 0], coarse[:, 0]
