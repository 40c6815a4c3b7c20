"""MobileNet v1 (Howard et al. 2017) and v2 (Sandler et al. 2018): depthwise-separable convs.

v1 replaces each standard conv by a depthwise 3x3 conv (one kernel per
channel) and a pointwise 1x1 conv, each followed by norm and activation: about
8-9x fewer mult-adds at a small accuracy cost. The width multiplier alpha
(``width_mult``) thins every layer; the resolution multiplier is just the input
size.

v2 stacks inverted residual blocks: a 1x1 expansion by t, a depthwise 3x3 conv,
and a linear 1x1 projection (no activation, so the narrow bottleneck keeps its
information), with a skip connection when shape allows.

Widths are rounded to multiples of 8 (torchvision's rule), which keeps the
1.0x models exact. Stems: ``imagenet`` strides the first conv by 2; ``small``
(CIFAR-style) does not, and v2's ``small`` also keeps stride 1 in its second stage.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial

import torch
from torch import nn

from cnnlab.models.common import (
    BATCH_NORM,
    Classifier,
    Factory,
    NetArgs,
    check_positive_float,
    make_divisible,
    stack,
    stem_layers,
)
from cnnlab.models.layers import conv
from cnnlab.models.registry import register_model

__all__ = ["InvertedResidual", "MobileNetV1", "MobileNetV2"]

# v1 (paper's table 1) after the 3x3/2 stem conv of 32 maps: (pointwise output channels,
# depthwise stride) of each depthwise-separable layer.
V1_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)  # fmt: skip
V1_STEM = 32

# v2 (paper's table 2): t expansion, c output channels, n repeats, s stride of the first.
V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
V2_STEM, V2_LAST = 32, 1280
# ReLU capped at 6 (robust in low precision) and batch norm: the paper's layers.
V2_LAYERS = BATCH_NORM._replace(act=partial(nn.ReLU6, inplace=True))


class MobileNetV1(Classifier):
    """A 3x3 conv, 13 depthwise-separable layers (depthwise-norm-act, pointwise-norm-act),
    global average pooling, dropout and a linear layer; batch norm, as in the paper.

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        stem: ``auto``, ``imagenet`` (first conv stride 2) or ``small`` (stride 1).
        width_mult: Width multiplier alpha.
    """

    default_layers = BATCH_NORM

    def __init__(self, args: NetArgs, *, stem: str = "auto", width_mult: float = 1.0) -> None:
        kind = args.stem(stem)
        width_mult = check_positive_float("width_mult", width_mult)
        unit = args.layers.unit
        channels = make_divisible(V1_STEM * width_mult)
        features = stem_layers(kind, args.in_channels, channels, args.layers, 3, pooled=False)
        for index, (out, stride) in enumerate(V1_LAYERS, start=1):
            out = make_divisible(out * width_mult)
            features[f"layer{index}"] = nn.Sequential(
                OrderedDict(
                    depthwise=conv(channels, channels, 3, stride=stride, kind="depthwise", **unit),
                    pointwise=conv(channels, out, 1, kind="pointwise", **unit),
                )
            )
            channels = out
        super().__init__(args, features=nn.Sequential(features), head=args.head(channels))


class InvertedResidual(nn.Module):
    """1x1 expansion by t (if t > 1), depthwise 3x3 (strided), linear 1x1 projection; skip
    when shapes match."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        expansion: int,
        norm: Factory,
        act: Factory,
    ) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if expansion != 1:
            layers["expand"] = conv(in_channels, hidden, 1, kind="pointwise", norm=norm, act=act)
        layers["depthwise"] = conv(
            hidden, hidden, 3, stride=stride, kind="depthwise", norm=norm, act=act
        )
        # Linear bottleneck: an activation here would destroy information in few channels.
        layers["project"] = conv(hidden, out_channels, 1, kind="pointwise", norm=norm)
        self.body = nn.Sequential(layers)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return body(x) + x where shapes allow, else body(x)."""
        out = self.body(x)
        return out + x if self.residual else out


class MobileNetV2(Classifier):
    """A 3x3 conv, seven stages of inverted residual blocks, a 1x1 conv to 1280 maps,
    global average pooling, dropout and a linear layer.

    The paper's layers are batch norm and ReLU6; dropout is the ``dropout`` group's
    (torchvision uses 0.2).

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        stem: ``auto``, ``imagenet`` or ``small`` (stride 1 in the stem and stage 2).
        width_mult: Width multiplier.
    """

    default_layers = V2_LAYERS

    def __init__(self, args: NetArgs, *, stem: str = "auto", width_mult: float = 1.0) -> None:
        kind = args.stem(stem)
        width_mult = check_positive_float("width_mult", width_mult)
        layers = args.layers
        unit = layers.unit
        channels = make_divisible(V2_STEM * width_mult)
        features = stem_layers(kind, args.in_channels, channels, layers, 3, pooled=False)
        for index, (t, c, n, s) in enumerate(V2_STAGES, start=1):
            out = make_divisible(c * width_mult)
            stride = 1 if kind == "small" and index == 2 else s
            block = partial(InvertedResidual, out_channels=out, expansion=t, **unit)
            blocks = stack(block, n, channels, out, stride)
            features[f"stage{index}"] = nn.Sequential(*blocks, layers.dropout.conv())
            channels = out
        last = make_divisible(V2_LAST * max(1.0, width_mult))
        features["last"] = conv(channels, last, 1, kind="pointwise", **unit)
        super().__init__(args, features=nn.Sequential(features), head=args.head(last))


register_model(
    MobileNetV1,
    "mobilenet_v1",
    'Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile '
    'Vision Applications", arXiv:1704.04861',
)
register_model(
    MobileNetV2,
    "mobilenet_v2",
    'Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks", '
    "arXiv:1801.04381",
)
