"""DenseNet (Huang, Liu, van der Maaten and Weinberger 2017): dense blocks and transition layers.

Inside a dense block, layer l takes the concatenation of the block input and
all l - 1 earlier layers' outputs and adds ``growth_rate`` (k) new maps. Every
layer is a bottleneck (the "B"): norm-act-1x1 conv to 4k maps, norm-act-3x3
conv to k maps, in the pre-activation order. Transition layers between blocks
(norm-act-1x1 conv, 2x2 average pooling) halve the maps and, with compression
0.5 (the "C"), the channels.

``densenet121``/``densenet169`` are the ImageNet models (four blocks, k=32);
``densenet_bc`` is the paper's CIFAR family: three blocks of (depth - 4) / 6
layers each, e.g. depth 100 with k=12 (0.8M parameters).

Stems: ``imagenet`` is a 7x7/2 conv and 3x3/2 max pooling; ``small`` is one
3x3/1 conv (CIFAR-style). Both output ``init_features`` maps (default 2k).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.common import (
    BATCH_NORM,
    Classifier,
    Factory,
    NetArgs,
    check_positive_float,
    check_positive_int,
    stem_layers,
)
from cnnlab.models.layers import conv, pool
from cnnlab.models.layers._spec import keyed
from cnnlab.models.registry import register_model

__all__ = ["DenseBlock", "DenseNet"]

# Layers per dense block: model -> block sizes (growth rate 32, 64 stem maps).
BLOCKS = {"densenet121": (6, 12, 24, 16), "densenet169": (6, 12, 32, 32)}
# Bottleneck width in units of the growth rate (the paper's 4k).
BN_SIZE = 4


def _preact(
    in_channels: int, out_channels: int, kernel_size: int, norm: Factory, act: Factory
) -> nn.Sequential:
    """norm, act, conv: DenseNet's pre-activation order (the norm's shift replaces the bias)."""
    norm_layer = norm(in_channels)
    bias = isinstance(norm_layer, nn.Identity)
    return nn.Sequential(
        OrderedDict(
            norm=norm_layer,
            act=act(),
            conv=conv(in_channels, out_channels, kernel_size, bias=bias),
        )
    )


class DenseLayer(nn.Module):
    """Bottleneck layer: norm-act-1x1 conv (4k maps), norm-act-3x3 conv (k = growth_rate maps)."""

    def __init__(self, in_channels: int, growth_rate: int, norm: Factory, act: Factory) -> None:
        super().__init__()
        self.reduce = _preact(in_channels, BN_SIZE * growth_rate, 1, norm, act)
        self.grow = _preact(BN_SIZE * growth_rate, growth_rate, 3, norm, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the k new maps computed from all earlier ones."""
        return self.grow(self.reduce(x))


class DenseBlock(nn.Module):
    """``layers`` dense layers that each read the block input and every earlier layer's maps."""

    def __init__(
        self, in_channels: int, layers: int, growth_rate: int, norm: Factory, act: Factory
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            DenseLayer(in_channels + i * growth_rate, growth_rate, norm, act) for i in range(layers)
        )
        self.out_channels = in_channels + layers * growth_rate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the block input concatenated with every layer's new maps."""
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


class DenseNet(Classifier):
    """Stem, dense blocks with transitions between them, a final norm-act, GAP, dropout, FC.

    Batch norm, as in the paper. Dropout (the ``dropout`` group) precedes the
    classifier, and with ``spatial`` true also follows each block.

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        block_sizes: Dense layers per block (the ImageNet models).
        stem: ``auto``, ``imagenet`` or ``small``.
        depth: The CIFAR form instead of ``block_sizes``: L = 6n + 4 layers, three
            blocks of n bottleneck layers.
        growth_rate: Maps each dense layer adds (k).
        init_features: Stem output channels; None means 2k.
        compression: Share of channels a transition keeps (the paper's theta).
    """

    default_layers = BATCH_NORM

    def __init__(
        self,
        args: NetArgs,
        *,
        block_sizes: Sequence[int] | None = None,
        stem: str = "auto",
        depth: int | None = None,
        growth_rate: int = 32,
        init_features: int | None = None,
        compression: float = 0.5,
    ) -> None:
        kind = args.stem(stem)
        if depth is not None:
            if check_positive_int("depth", depth) < 10 or (depth - 4) % 6:
                raise keyed("model.depth", f"must be 6n + 4 (e.g. 40, 100, 190) for n >= 1, "
                            f"got {depth}")  # fmt: skip
            block_sizes = ((depth - 4) // 6,) * 3
        block_sizes = tuple(block_sizes or ())
        check_positive_int("growth_rate", growth_rate)
        if init_features is None:
            init_features = 2 * growth_rate
        check_positive_int("init_features", init_features)
        if check_positive_float("compression", compression) > 1:
            raise keyed("model.compression", f"must be in (0, 1], got {compression!r}")
        layers = args.layers
        norm_layer, act_layer = layers.norm, layers.act
        features: OrderedDict[str, nn.Module] = OrderedDict()
        if kind == "imagenet":
            features.update(
                stem_layers(kind, args.in_channels, init_features, layers, names=("stem", "pool0"))
            )
        else:
            # No norm here: the first dense layer normalises its input (pre-activation),
            # and its shift makes a bias redundant.
            followed_by_norm = not isinstance(norm_layer(init_features), nn.Identity)
            features["stem"] = conv(args.in_channels, init_features, 3, bias=not followed_by_norm)
        channels = init_features
        for index, size in enumerate(block_sizes, start=1):
            block = DenseBlock(channels, size, growth_rate, norm_layer, act_layer)
            features[f"block{index}"] = block
            features[f"drop{index}"] = layers.dropout.conv()
            channels = block.out_channels
            if index < len(block_sizes):
                reduced = int(channels * compression)
                features[f"transition{index}"] = nn.Sequential(
                    _preact(channels, reduced, 1, norm_layer, act_layer), pool("avg", 2)
                )
                channels = reduced
        features["norm"] = norm_layer(channels)
        features["act"] = act_layer()
        super().__init__(args, features=nn.Sequential(features), head=args.head(channels))


# Huang et al. 2017, "Densely Connected Convolutional Networks", arXiv:1608.06993: the
# ImageNet models (k = 32) and DenseNet-BC for CIFAR (section 3; depth 100, k = 12: 0.8M).
_PAPER = "Huang et al. 2017, arXiv:1608.06993"
for _name in ("densenet121", "densenet169"):
    register_model(DenseNet, _name, _PAPER, block_sizes=BLOCKS[_name], depth=None, compression=0.5)
register_model(
    DenseNet,
    "densenet_bc",
    _PAPER,
    defaults={"image_size": 32, "depth": 100, "growth_rate": 12},
    block_sizes=None,
    init_features=None,
)
