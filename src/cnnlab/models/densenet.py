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
from typing import Any

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.common import (
    Factory,
    check_positive_float,
    check_positive_int,
    choose_stem,
    classifier_head,
)
from cnnlab.models.layers import (
    LayerSpec,
    conv,
    get_act,
    get_dropout,
    get_norm,
    init_weights,
    pool,
)
from cnnlab.models.registry import register_model, variant_of

__all__ = ["DenseBlock", "DenseNet", "densenet121", "densenet169", "densenet_bc"]


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
    """Bottleneck layer: norm-act-1x1 conv (4k maps), norm-act-3x3 conv (k maps).

    Args:
        in_channels: Channels of the concatenated inputs.
        growth_rate: New maps (k).
        norm: Norm factory.
        act: Activation factory.
    """

    def __init__(self, in_channels: int, growth_rate: int, norm: Factory, act: Factory) -> None:
        super().__init__()
        self.reduce = _preact(in_channels, BN_SIZE * growth_rate, 1, norm, act)
        self.grow = _preact(BN_SIZE * growth_rate, growth_rate, 3, norm, act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the k new maps computed from all earlier ones."""
        return self.grow(self.reduce(x))


class DenseBlock(nn.Module):
    """Layers that each read the block input and every earlier layer's maps.

    Args:
        in_channels: Block input channels.
        layers: Number of dense layers.
        growth_rate: Maps each layer adds.
        norm: Norm factory.
        act: Activation factory.
    """

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


class DenseNet(nn.Module):
    """Stem, dense blocks with transitions between them, a final norm-act, GAP, dropout, FC.

    Args:
        block_sizes: Dense layers per block.
        in_channels: Input channels.
        num_classes: Outputs.
        image_size: Input side or (height, width); picks the stem under ``stem: auto``.
        norm: Norm spec (None: batch, as in the paper).
        activation: Activation spec (None: ReLU).
        init: Init spec.
        dropout: Dropout spec (before the classifier; after blocks if spatial).
        stem: ``auto``, ``imagenet`` or ``small``.
        growth_rate: Maps each dense layer adds (k).
        init_features: Stem output channels; None means 2k.
        compression: Share of channels a transition keeps (the paper's theta).

    Raises:
        ConfigError: ``model.<option>`` for a bad option value.
    """

    def __init__(
        self,
        *,
        block_sizes: Sequence[int],
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | Sequence[int] | None = None,
        norm: LayerSpec = None,
        activation: LayerSpec = None,
        init: LayerSpec = None,
        dropout: LayerSpec | float = None,
        stem: str = "auto",
        growth_rate: int = 32,
        init_features: int | None = None,
        compression: float = 0.5,
    ) -> None:
        super().__init__()
        kind = choose_stem(stem, image_size)
        check_positive_int("growth_rate", growth_rate)
        if init_features is None:
            init_features = 2 * growth_rate
        check_positive_int("init_features", init_features)
        if check_positive_float("compression", compression) > 1:
            raise ConfigError("model.compression", f"must be in (0, 1], got {compression!r}")
        activation = activation if activation is not None else "relu"
        norm_layer = get_norm(norm if norm is not None else "batch")
        act_layer = get_act(activation)
        stage_dropout, fc_dropout = get_dropout(dropout, conv=True), get_dropout(dropout)

        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if kind == "imagenet":
            layers["stem"] = conv(in_channels, init_features, 7, stride=2, norm=norm_layer,
                                  act=act_layer)  # fmt: skip
            layers["pool0"] = pool("max", 3, stride=2, padding=1)
        else:
            # No norm here: the first dense layer normalises its input (pre-activation),
            # and its shift makes a bias redundant.
            followed_by_norm = not isinstance(norm_layer(init_features), nn.Identity)
            layers["stem"] = conv(in_channels, init_features, 3, bias=not followed_by_norm)
        channels = init_features
        for index, size in enumerate(block_sizes, start=1):
            block = DenseBlock(channels, size, growth_rate, norm_layer, act_layer)
            layers[f"block{index}"] = block
            layers[f"drop{index}"] = stage_dropout()
            channels = block.out_channels
            if index < len(block_sizes):
                reduced = int(channels * compression)
                layers[f"transition{index}"] = nn.Sequential(
                    _preact(channels, reduced, 1, norm_layer, act_layer), pool("avg", 2)
                )
                channels = reduced
        layers["norm"] = norm_layer(channels)
        layers["act"] = act_layer()
        self.features = nn.Sequential(layers)
        self.head = classifier_head(channels, num_classes, fc_dropout)
        init_weights(self, init, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) for images (N, in_channels, H, W)."""
        return self.head(self.features(x))


@register_model
def densenet121(
    *,
    in_channels: int = 3,
    num_classes: int = 1000,
    image_size: int | Sequence[int] | None = None,
    norm: LayerSpec = None,
    activation: LayerSpec = None,
    init: LayerSpec = None,
    dropout: LayerSpec | float = None,
    stem: str = "auto",
    growth_rate: int = 32,
    init_features: int | None = None,
) -> DenseNet:
    """DenseNet-121 from "Densely Connected Convolutional Networks" (Huang et al. 2017,
    arXiv:1608.06993): blocks of (6, 12, 24, 16) layers, k = 32.

    Args:
        in_channels: Input channels (3).
        num_classes: Outputs (1000).
        image_size: Input side or (height, width), for the stem choice (None: ImageNet).
        norm: Norm spec (batch).
        activation: Activation spec (relu).
        init: Init spec (PyTorch's default).
        dropout: Dropout spec (none).
        stem: ``auto``, ``imagenet`` or ``small`` (auto).
        growth_rate: Growth rate k (32).
        init_features: Stem channels (None: 2k).

    Returns:
        The :class:`DenseNet` model.
    """
    return DenseNet(
        block_sizes=BLOCKS["densenet121"], in_channels=in_channels, num_classes=num_classes,
        image_size=image_size, norm=norm, activation=activation, init=init, dropout=dropout,
        stem=stem, growth_rate=growth_rate, init_features=init_features,
    )  # fmt: skip


@register_model
@variant_of(densenet121)
def densenet169(**options: Any) -> DenseNet:
    """DenseNet-169 (Huang et al. 2017, arXiv:1608.06993): blocks of (6, 12, 32, 32), k = 32.

    Args: as for :func:`densenet121`.
    """
    return DenseNet(block_sizes=BLOCKS["densenet169"], **options)


@register_model
def densenet_bc(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int | Sequence[int] | None = 32,
    norm: LayerSpec = None,
    activation: LayerSpec = None,
    init: LayerSpec = None,
    dropout: LayerSpec | float = None,
    stem: str = "auto",
    depth: int = 100,
    growth_rate: int = 12,
    compression: float = 0.5,
) -> DenseNet:
    """DenseNet-BC for CIFAR (Huang et al. 2017, arXiv:1608.06993, section 3): three dense
    blocks of (depth - 4) / 6 bottleneck layers, compression 0.5.

    Args:
        in_channels: Input channels (3).
        num_classes: Outputs (10).
        image_size: Input side or (height, width), for the stem choice (32).
        norm: Norm spec (batch).
        activation: Activation spec (relu).
        init: Init spec (PyTorch's default).
        dropout: Dropout spec (none).
        stem: ``auto``, ``imagenet`` or ``small`` (auto).
        depth: Layers L, with (L - 4) divisible by 6 (100).
        growth_rate: Growth rate k (12).
        compression: Share of channels a transition keeps (0.5).

    Returns:
        The :class:`DenseNet` model.

    Raises:
        ConfigError: ``model.depth`` unless depth - 4 is a positive multiple of 6.
    """
    check_positive_int("depth", depth)
    if depth < 10 or (depth - 4) % 6:
        raise ConfigError(
            "model.depth", f"must be 6n + 4 (e.g. 40, 100, 190) for n >= 1, got {depth}"
        )
    per_block = (depth - 4) // 6
    return DenseNet(
        block_sizes=(per_block,) * 3, in_channels=in_channels, num_classes=num_classes,
        image_size=image_size, norm=norm, activation=activation, init=init, dropout=dropout,
        stem=stem, growth_rate=growth_rate, compression=compression,
    )  # fmt: skip
