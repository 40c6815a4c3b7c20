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
from functools import partial

import torch
from torch import nn

from cnnlab.models.common import (
    BATCH_NORM,
    Classifier,
    Factory,
    NetArgs,
    check_positive_int,
    numbered,
    shortcut,
    stack,
    stem_layers,
)
from cnnlab.models.layers import conv
from cnnlab.models.registry import register_model

__all__ = ["BasicBlock", "Bottleneck", "ResNet"]

# Stage widths at base_width 64: the 3x3 convs' channels; bottleneck blocks output 4x as many.
STAGE_WIDTHS = (64, 128, 256, 512)


class BasicBlock(nn.Module):
    """Two 3x3 conv-norm layers of ``width`` channels (the first strided); the activation
    follows the addition."""

    expansion = 1

    def __init__(self, in_channels: int, width: int, stride: int, norm: Factory, act: Factory):
        super().__init__()
        self.conv1 = conv(in_channels, width, 3, stride=stride, norm=norm, act=act)
        self.conv2 = conv(width, width, 3, norm=norm)
        self.shortcut = shortcut(in_channels, width, stride, norm)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return act(F(x) + shortcut(x))."""
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by :attr:`expansion`; activation after the add.

    The 1x1 and 3x3 convs have ``width`` channels; the block outputs ``4 * width``.
    """

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int, norm: Factory, act: Factory):
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = conv(in_channels, width, 1, norm=norm, act=act)
        self.conv2 = conv(width, width, 3, stride=stride, norm=norm, act=act)
        self.conv3 = conv(width, out_channels, 1, norm=norm)
        self.shortcut = shortcut(in_channels, out_channels, stride, norm)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return act(F(x) + shortcut(x))."""
        return self.act(self.conv3(self.conv2(self.conv1(x))) + self.shortcut(x))


class ResNet(Classifier):
    """A stem, four stages of residual blocks, global average pooling and a linear layer.

    Stage i has ``depths[i]`` blocks of width ``STAGE_WIDTHS[i] * base_width / 64``;
    stages 2-4 halve the maps in their first block. Norm is batch norm, as in the
    paper. Dropout (the ``dropout`` group) precedes the linear layer, and with
    ``spatial`` true also follows each stage.

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        block: :class:`BasicBlock` or :class:`Bottleneck` (the variant fixes it).
        depths: Blocks per stage.
        stem: ``auto``, ``imagenet`` (7x7/2 conv + 3x3/2 max pool) or ``small`` (3x3/1 conv).
        base_width: Width of stage 1 (64); the others scale with it.

    Raises:
        ValueError: ``model.stem``/``model.base_width`` for bad values; ``norm.groups``
            when a group count does not divide a width.
    """

    default_layers = BATCH_NORM

    def __init__(
        self,
        args: NetArgs,
        *,
        block: type[BasicBlock | Bottleneck],
        depths: Sequence[int],
        stem: str = "auto",
        base_width: int = 64,
    ) -> None:
        check_positive_int("base_width", base_width)
        layers = args.layers
        stem_part = stem_layers(args.stem(stem), args.in_channels, base_width, layers,
                                names=("conv", "pool"))  # fmt: skip
        channels = base_width
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        for index, (depth, width) in enumerate(zip(depths, STAGE_WIDTHS, strict=True)):
            width = width * base_width // 64
            out = width * block.expansion
            block_at = partial(block, width=width, norm=layers.norm, act=layers.act)
            blocks = stack(block_at, depth, channels, out, stride=2 if index else 1)
            stages[f"stage{index + 1}"] = numbered("block", blocks, drop=layers.dropout.conv())
            channels = out
        super().__init__(
            args, stem=nn.Sequential(stem_part), stages=nn.Sequential(stages),
            head=args.head(channels),
        )  # fmt: skip


# He et al. 2015, "Deep Residual Learning for Image Recognition", arXiv:1512.03385, table 1.
_PAPER = "He et al. 2015, arXiv:1512.03385"
register_model(ResNet, "resnet18", _PAPER, block=BasicBlock, depths=(2, 2, 2, 2))
register_model(ResNet, "resnet34", _PAPER, block=BasicBlock, depths=(3, 4, 6, 3))
register_model(ResNet, "resnet50", _PAPER, block=Bottleneck, depths=(3, 4, 6, 3))
