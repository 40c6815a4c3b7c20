"""A small VGG-like network: a quick baseline whose width and depth are config values."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.common import (
    NO_NORM,
    ImageSize,
    Layers,
    check_min_side,
    check_positive_int,
    check_widths,
    classifier_head,
)
from cnnlab.models.layers import conv, pool
from cnnlab.models.registry import register_model

__all__ = ["SimpleCNN"]


class SimpleCNN(nn.Module):
    """Stages of 3x3 conv-norm-act layers, each stage ending in 2x2 max pooling, then
    global average pooling, dropout and a linear classifier.

    Each stage halves the maps, so the input side must be at least 2 ** stages.
    With ``dropout.spatial`` true, whole feature maps are also dropped after each
    stage.

    Args:
        in_channels: Input channels.
        num_classes: Outputs.
        image_size: Input side or (height, width); None skips the size check.
        layers: Norm after each conv (none), activation (ReLU), init, and dropout
            (before the classifier; after stages if spatial).
        widths: Output channels of each stage (one stage per entry).
        convs_per_stage: Conv layers per stage.

    Raises:
        ValueError: ``model.widths`` unless a non-empty list of positive ints,
            ``model.convs_per_stage`` unless a positive int, ``data.image_size`` if
            smaller than 2 ** stages.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: ImageSize = None,
        layers: Layers = NO_NORM,
        widths: Sequence[int] = (32, 64),
        convs_per_stage: int = 2,
    ) -> None:
        super().__init__()
        widths = check_widths(widths)
        check_positive_int("convs_per_stage", convs_per_stage)
        stages = len(widths)
        check_min_side(image_size, 2**stages, f"simple_cnn halves the input {stages} times and")
        features: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for index, width in enumerate(widths, start=1):
            stage: OrderedDict[str, nn.Module] = OrderedDict()
            for j in range(1, convs_per_stage + 1):
                stage[f"conv{j}"] = conv(channels, width, 3, norm=layers.norm, act=layers.act)
                channels = width
            stage["pool"] = pool("max", 2)
            stage["drop"] = layers.dropout.conv()
            features[f"stage{index}"] = nn.Sequential(stage)
        self.features = nn.Sequential(features)
        self.classifier = classifier_head(channels, num_classes, layers)
        layers.init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) for images (N, in_channels, H, W)."""
        return self.classifier(self.features(x))


register_model(
    SimpleCNN,
    "simple_cnn",
    'a small VGG-like CNN, after "Very Deep Convolutional Networks for Large-Scale Image '
    'Recognition" (Simonyan and Zisserman 2014, arXiv:1409.1556) in miniature',
)
