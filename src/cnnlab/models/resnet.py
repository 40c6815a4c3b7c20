"""ResNet (He, Zhang, Ren and Sun 2015): residual blocks with skip connections.

Each block learns a residual F(x) and outputs act(F(x) + shortcut(x)); the
shortcut is the identity, or a 1x1 strided conv plus norm (a projection
shortcut, option B of the paper) where the block changes width or resolution.
ResNet-18/34 stack basic blocks (two 3x3 convs), ResNet-50 bottleneck blocks
(1x1 reduce, 3x3, 1x1 expand by 4; the stride sits on the 3x3 conv, as in
torchvision's "v1.5").

Stems: ``imagenet`` is the paper's 7x7/2 conv and 3x3/2 max pooling; ``small``
is one 3x3/1 conv without pooling (the CIFAR variant), so a 32x32 input reaches
stage 4 at 4x4.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.common import (
    BATCH_NORM,
    Factory,
    ImageSize,
    Layers,
    check_choice,
    check_positive_int,
    choose_stem,
    classifier_head,
    stem_layers,
)
from cnnlab.models.layers import conv
from cnnlab.models.registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]

# Stage widths at base_width 64: the 3x3 convs' channels; bottleneck blocks output 4x as many.
STAGE_WIDTHS = (64, 128, 256, 512)
BLOCKS = ("basic", "bottleneck")


def _shortcut(in_channels: int, out_channels: int, stride: int, norm: Factory) -> nn.Module:
    """The identity, or a projection (1x1 conv + norm) where shape changes."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return conv(in_channels, out_channels, 1, stride=stride, padding=0, norm=norm)


class BasicBlock(nn.Module):
    """Two 3x3 conv-norm layers; the activation follows the addition.

    Args:
        in_channels: Input channels.
        width: Channels of both convs (the block's output).
        stride: Stride of the first conv (2 halves the maps).
        norm: Norm factory.
        act: Activation factory.
    """

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, norm: Factory, act: Factory):
        super().__init__()
        self.conv1 = conv(in_channels, width, 3, stride=stride, norm=norm, act=act)
        self.conv2 = conv(width, width, 3, norm=norm)
        self.shortcut = _shortcut(in_channels, width, stride, norm)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return act(F(x) + shortcut(x))."""
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by :attr:`expansion`; activation after the add.

    Args:
        in_channels: Input channels.
        width: Channels of the 1x1 and 3x3 convs; the block outputs ``4 * width``.
        stride: Stride of the 3x3 conv.
        norm: Norm factory.
        act: Activation factory.
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, norm: Factory, act: Factory):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv(in_channels, width, 1, norm=norm, act=act)
        self.conv2 = conv(width, width, 3, stride=stride, norm=norm, act=act)
        self.conv3 = conv(width, out_channels, 1, norm=norm)
        self.shortcut = _shortcut(in_channels, out_channels, stride, norm)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return act(F(x) + shortcut(x))."""
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class ResNet(nn.Module):
    """A stem, four stages of residual blocks, global average pooling and a linear layer.

    Stage i has ``depths[i]`` blocks of width ``STAGE_WIDTHS[i] * base_width / 64``;
    stages 2-4 halve the maps in their first block. Dropout (the ``dropout`` group)
    precedes the linear layer, and with ``spatial`` true also follows each stage.

    Args:
        block: ``basic`` or ``bottleneck``.
        depths: Blocks per stage.
        in_channels: Input channels.
        num_classes: Outputs.
        image_size: Input side or (height, width); picks the stem under ``stem: auto``.
        layers: Norm (batch, as in the paper), activation (ReLU), init and dropout.
        stem: ``auto``, ``imagenet`` (7x7/2 conv + 3x3/2 max pool) or ``small`` (3x3/1 conv).
        base_width: Width of stage 1 (64); the others scale with it.

    Raises:
        ValueError: ``model.stem``/``model.base_width`` for bad values; ``norm.groups``
            when a group count does not divide a width.
    """

    def __init__(
        self,
        *,
        block: str,
        depths: Sequence[int],
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: ImageSize = None,
        layers: Layers = BATCH_NORM,
        stem: str = "auto",
        base_width: int = 64,
    ) -> None:
        super().__init__()
        check_choice("block", block, BLOCKS)
        block_cls = BasicBlock if block == "basic" else Bottleneck
        check_positive_int("base_width", base_width)
        kind = choose_stem(stem, image_size)
        self.stem = nn.Sequential(
            stem_layers(kind, in_channels, base_width, layers, names=("conv", "pool"))
        )
        channels = base_width
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        for index, (depth, width) in enumerate(zip(depths, STAGE_WIDTHS, strict=True)):
            width = width * base_width // 64
            blocks: OrderedDict[str, nn.Module] = OrderedDict()
            for j in range(depth):
                stride = 2 if index > 0 and j == 0 else 1
                blocks[f"block{j + 1}"] = block_cls(
                    channels, width, stride, layers.norm, layers.act
                )
                channels = width * block_cls.expansion
            blocks["drop"] = layers.dropout.conv()
            stages[f"stage{index + 1}"] = nn.Sequential(blocks)
        self.stages = nn.Sequential(stages)
        self.head = classifier_head(channels, num_classes, layers)
        layers.init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) for images (N, in_channels, H, W)."""
        return self.head(self.stages(self.stem(x)))


# He et al. 2015, "Deep Residual Learning for Image Recognition", arXiv:1512.03385, table 1.
_PAPER = "He et al. 2015, arXiv:1512.03385"
register_model(ResNet, "resnet18", _PAPER, block="basic", depths=(2, 2, 2, 2))
register_model(ResNet, "resnet34", _PAPER, block="basic", depths=(3, 4, 6, 3))
register_model(ResNet, "resnet50", _PAPER, block="bottleneck", depths=(3, 4, 6, 3))
