"""ShuffleNet v1 (Zhang, Zhou, Lin and Sun 2017): pointwise group convs and channel shuffle.

A ShuffleNet unit is a bottleneck whose 1x1 convs are grouped (g groups), which
cuts their cost by g; a channel shuffle after the first one lets information
cross the groups. Stride-1 units add the input (act(x + F(x))); stride-2 units
concatenate a 3x3/2 average pooling of the input with F(x), so they widen the
maps. The bottleneck has a quarter of the unit's output channels; stage 2's
first 1x1 conv is not grouped (its 24 input channels are too few).

Stage widths come from the paper's table 1 for g = 1, 2, 3, 4, 8 (chosen so
that every g costs about 140M mult-adds at 224x224), times the scale factor s
and rounded to a multiple of 4g (which keeps the 1x table exact).

Stems: ``imagenet`` is the paper's 3x3/2 conv (24 maps) and 3x3/2 max pooling;
``small`` is a 3x3/1 conv without pooling (CIFAR-style).
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
    check_choice,
    check_positive_float,
    make_divisible,
    stack,
    stem_layers,
)
from cnnlab.models.layers import ChannelShuffle, conv, pool
from cnnlab.models.registry import register_model

__all__ = ["STAGE_WIDTHS", "ShuffleNetV1", "ShuffleUnit"]

# Paper's table 1 at 1x: groups g -> output channels of stages 2, 3 and 4.
STAGE_WIDTHS: dict[int, tuple[int, int, int]] = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# Units per stage: one stride-2 unit, then 3, 7 and 3 stride-1 units.
STAGE_UNITS = (4, 8, 4)
STEM_WIDTH = 24


class ShuffleUnit(nn.Module):
    """1x1 GConv-norm-act, channel shuffle, 3x3 depthwise (stride)-norm, 1x1 GConv-norm;
    then act(x + F(x)) (stride 1) or concat(avgpool(x), act(F(x))) (stride 2).

    ``out_channels`` is the concatenation's for stride 2; ``group_first`` false leaves
    the first 1x1 conv ungrouped (stage 2's first unit).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int,
        groups: int,
        norm: Factory,
        act: Factory,
        *,
        group_first: bool = True,
    ) -> None:
        super().__init__()
        mid = out_channels // 4
        branch = out_channels - in_channels if stride == 2 else out_channels
        first_groups = groups if group_first else 1
        self.body = nn.Sequential(
            OrderedDict(
                reduce=conv(in_channels, mid, 1, kind="pointwise", groups=first_groups,
                            norm=norm, act=act),
                shuffle=ChannelShuffle(first_groups),
                depthwise=conv(mid, mid, 3, stride=stride, kind="depthwise", norm=norm),
                expand=conv(mid, branch, 1, kind="pointwise", groups=groups, norm=norm),
            )
        )  # fmt: skip
        self.shortcut = pool("avg", 3, stride=2, padding=1) if stride == 2 else None
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Add (stride 1) or concatenate (stride 2) the shortcut and the residual branch."""
        if self.shortcut is None:
            return self.act(x + self.body(x))
        return torch.cat([self.shortcut(x), self.act(self.body(x))], dim=1)


class ShuffleNetV1(Classifier):
    """Stem, three stages of ShuffleNet units, global average pooling, dropout, FC.

    Batch norm, as in the paper. Dropout (the ``dropout`` group) precedes the
    classifier, and with ``spatial`` true also follows each stage.

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        stem: ``auto``, ``imagenet`` or ``small``.
        groups: Groups g of the pointwise convs: 1, 2, 3, 4 or 8.
        scale: Scale factor s of every width (the paper's 0.25x, 0.5x, 1x, ...).
    """

    default_layers = BATCH_NORM

    def __init__(
        self, args: NetArgs, *, stem: str = "auto", groups: int = 3, scale: float = 1.0
    ) -> None:
        kind = args.stem(stem)
        check_choice("groups", groups, tuple(STAGE_WIDTHS))
        scale = check_positive_float("scale", scale)
        layers = args.layers
        # Stage 2's first unit outputs (its width - stem width) maps through a g-grouped conv.
        channels = make_divisible(STEM_WIDTH * scale, groups, min_value=groups)
        features = stem_layers(kind, args.in_channels, channels, layers, kernel=3)
        for index, (width, units) in enumerate(
            zip(STAGE_WIDTHS[groups], STAGE_UNITS, strict=True), start=2
        ):
            width = make_divisible(width * scale, 4 * groups)
            unit = partial(ShuffleUnit, out_channels=width, groups=groups, **layers.unit)
            # Stage 2's first unit reads the stem's few maps: its first conv is not grouped.
            stage = stack(unit, units, channels, width, stride=2, group_first=index > 2)
            features[f"stage{index}"] = nn.Sequential(*stage, layers.dropout.conv())
            channels = width
        super().__init__(args, features=nn.Sequential(features), head=args.head(channels))


register_model(
    ShuffleNetV1,
    "shufflenet_v1",
    'Zhang et al. 2017, "ShuffleNet: An Extremely Efficient Convolutional Neural Network '
    'for Mobile Devices", arXiv:1707.01083',
)
