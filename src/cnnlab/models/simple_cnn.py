"""A small VGG-like network: a quick baseline whose width and depth are config values."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from cnnlab.models.common import (
    Classifier,
    NetArgs,
    check_min_side,
    check_positive_int,
    check_widths,
)
from cnnlab.models.registry import register_model
from cnnlab.models.vgg import vgg_stage

__all__ = ["SimpleCNN"]


class SimpleCNN(Classifier):
    """VGG stages (3x3 conv-norm-act layers, then 2x2 max pooling), then global average
    pooling, dropout and a linear classifier.

    Each stage halves the maps, so the input side must be at least 2 ** stages.
    No norm by default. With ``dropout.spatial`` true, whole feature maps are also
    dropped after each stage.

    Args:
        args: Input channels, classes, image size (None skips the size check) and layers.
        widths: Output channels of each stage (one stage per entry).
        convs_per_stage: Conv layers per stage.

    Raises:
        ValueError: ``model.widths`` unless a non-empty list of positive ints,
            ``model.convs_per_stage`` unless a positive int, ``data.image_size`` if
            smaller than 2 ** stages.
    """

    def __init__(
        self, args: NetArgs, *, widths: Sequence[int] = (32, 64), convs_per_stage: int = 2
    ) -> None:
        widths = check_widths(widths)
        check_positive_int("convs_per_stage", convs_per_stage)
        stages = len(widths)
        check_min_side(args.image_size, 2**stages,
                       f"simple_cnn halves the input {stages} times and")  # fmt: skip
        features: OrderedDict[str, nn.Module] = OrderedDict()
        channels = args.in_channels
        for index, width in enumerate(widths, start=1):
            features[f"stage{index}"] = vgg_stage(
                channels, width, convs_per_stage, args.layers, ceil_mode=False
            )
            channels = width
        super().__init__(args, features=nn.Sequential(features), classifier=args.head(channels))


register_model(
    SimpleCNN,
    "simple_cnn",
    'a small VGG-like CNN, after "Very Deep Convolutional Networks for Large-Scale Image '
    'Recognition" (Simonyan and Zisserman 2014, arXiv:1409.1556) in miniature',
)
