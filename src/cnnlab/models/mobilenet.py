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
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.common import (
    Factory,
    NormAct,
    check_positive_float,
    choose_stem,
    classifier_head,
    make_divisible,
)
from cnnlab.models.layers import (
    LayerSpec,
    conv,
    get_act,
    get_dropout,
    get_norm,
    init_weights,
)
from cnnlab.models.registry import register_model

__all__ = ["InvertedResidual", "MobileNetV1", "MobileNetV2", "mobilenet_v1", "mobilenet_v2"]


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


class MobileNetV1(nn.Module):
    """A 3x3 conv, 13 depthwise-separable layers (depthwise-norm-act, pointwise-norm-act),
    global average pooling, dropout and a linear layer.

    Args:
        in_channels: Input channels.
        num_classes: Outputs.
        image_size: Input side or (height, width); picks the stem under ``stem: auto``.
        norm: Norm spec (None: batch, as in the paper).
        activation: Activation spec (None: ReLU).
        init: Init spec.
        dropout: Dropout spec.
        stem: ``auto``, ``imagenet`` (first conv stride 2) or ``small`` (stride 1).
        width_mult: Width multiplier alpha.

    Raises:
        ConfigError: ``model.<option>`` for a bad option value.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | Sequence[int] | None = None,
        norm: LayerSpec = None,
        activation: LayerSpec = None,
        init: LayerSpec = None,
        dropout: LayerSpec | float = None,
        stem: str = "auto",
        width_mult: float = 1.0,
    ) -> None:
        super().__init__()
        kind = choose_stem(stem, image_size)
        width_mult = check_positive_float("width_mult", width_mult)
        activation = activation if activation is not None else "relu"
        unit: NormAct = {
            "norm": get_norm(norm if norm is not None else "batch"),
            "act": get_act(activation),
        }
        fc_dropout = get_dropout(dropout)

        channels = make_divisible(V1_STEM * width_mult)
        stride = 2 if kind == "imagenet" else 1
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            stem=conv(in_channels, channels, 3, stride=stride, **unit)
        )
        for index, (out, stride) in enumerate(V1_LAYERS, start=1):
            out = make_divisible(out * width_mult)
            layers[f"layer{index}"] = nn.Sequential(
                OrderedDict(
                    depthwise=conv(channels, channels, 3, stride=stride, kind="depthwise", **unit),
                    pointwise=conv(channels, out, 1, kind="pointwise", **unit),
                )
            )
            channels = out
        self.features = nn.Sequential(layers)
        self.head = classifier_head(channels, num_classes, fc_dropout)
        init_weights(self, init, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) for images (N, in_channels, H, W)."""
        return self.head(self.features(x))


class InvertedResidual(nn.Module):
    """1x1 expansion (t > 1), depthwise 3x3, linear 1x1 projection; skip when shapes match.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        stride: Depthwise stride.
        expansion: Expansion factor t.
        norm: Norm factory.
        act: Activation factory.
    """

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


class MobileNetV2(nn.Module):
    """A 3x3 conv, seven stages of inverted residual blocks, a 1x1 conv to 1280 maps,
    global average pooling, dropout and a linear layer.

    Args:
        in_channels: Input channels.
        num_classes: Outputs.
        image_size: Input side or (height, width); picks the stem under ``stem: auto``.
        norm: Norm spec (None: batch, as in the paper).
        activation: Activation spec (None: ReLU6, the paper's).
        init: Init spec.
        dropout: Dropout spec (torchvision uses 0.2).
        stem: ``auto``, ``imagenet`` or ``small`` (stride 1 in the stem and stage 2).
        width_mult: Width multiplier.

    Raises:
        ConfigError: ``model.<option>`` for a bad option value.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 1000,
        image_size: int | Sequence[int] | None = None,
        norm: LayerSpec = None,
        activation: LayerSpec = None,
        init: LayerSpec = None,
        dropout: LayerSpec | float = None,
        stem: str = "auto",
        width_mult: float = 1.0,
    ) -> None:
        super().__init__()
        kind = choose_stem(stem, image_size)
        width_mult = check_positive_float("width_mult", width_mult)
        activation = activation if activation is not None else "relu6"
        norm_layer, act_layer = get_norm(norm if norm is not None else "batch"), get_act(activation)
        stage_dropout, fc_dropout = get_dropout(dropout, conv=True), get_dropout(dropout)

        channels = make_divisible(V2_STEM * width_mult)
        small = kind == "small"
        layers: OrderedDict[str, nn.Module] = OrderedDict(
            stem=conv(in_channels, channels, 3, stride=1 if small else 2, norm=norm_layer,
                      act=act_layer)
        )  # fmt: skip
        for index, (t, c, n, s) in enumerate(V2_STAGES, start=1):
            out = make_divisible(c * width_mult)
            stride = 1 if small and index == 2 else s
            blocks = [
                InvertedResidual(channels if j == 0 else out, out, stride if j == 0 else 1, t,
                                 norm_layer, act_layer)
                for j in range(n)
            ]  # fmt: skip
            layers[f"stage{index}"] = nn.Sequential(*blocks, stage_dropout())
            channels = out
        last = make_divisible(V2_LAST * max(1.0, width_mult))
        layers["last"] = conv(channels, last, 1, kind="pointwise", norm=norm_layer, act=act_layer)
        self.features = nn.Sequential(layers)
        self.head = classifier_head(last, num_classes, fc_dropout)
        init_weights(self, init, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) for images (N, in_channels, H, W)."""
        return self.head(self.features(x))


@register_model
def mobilenet_v1(
    *,
    in_channels: int = 3,
    num_classes: int = 1000,
    image_size: int | Sequence[int] | None = None,
    norm: LayerSpec = None,
    activation: LayerSpec = None,
    init: LayerSpec = None,
    dropout: LayerSpec | float = None,
    stem: str = "auto",
    width_mult: float = 1.0,
) -> MobileNetV1:
    """MobileNet v1 from "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
    Applications" (Howard et al. 2017, arXiv:1704.04861).

    Args:
        in_channels: Input channels (3).
        num_classes: Outputs (1000).
        image_size: Input side or (height, width), for the stem choice (None: ImageNet).
        norm: Norm spec (batch).
        activation: Activation spec (relu).
        init: Init spec (PyTorch's default).
        dropout: Dropout spec (none).
        stem: ``auto``, ``imagenet`` or ``small`` (auto).
        width_mult: Width multiplier alpha, e.g. 0.75, 0.5, 0.25 (1.0).

    Returns:
        The :class:`MobileNetV1` model.
    """
    return MobileNetV1(
        in_channels=in_channels, num_classes=num_classes, image_size=image_size, norm=norm,
        activation=activation, init=init, dropout=dropout, stem=stem, width_mult=width_mult,
    )  # fmt: skip


@register_model
def mobilenet_v2(
    *,
    in_channels: int = 3,
    num_classes: int = 1000,
    image_size: int | Sequence[int] | None = None,
    norm: LayerSpec = None,
    activation: LayerSpec = None,
    init: LayerSpec = None,
    dropout: LayerSpec | float = None,
    stem: str = "auto",
    width_mult: float = 1.0,
) -> MobileNetV2:
    """MobileNet v2 from "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (Sandler et
    al. 2018, arXiv:1801.04381).

    Args:
        in_channels: Input channels (3).
        num_classes: Outputs (1000).
        image_size: Input side or (height, width), for the stem choice (None: ImageNet).
        norm: Norm spec (batch).
        activation: Activation spec (relu6).
        init: Init spec (PyTorch's default).
        dropout: Dropout spec (none; torchvision uses 0.2).
        stem: ``auto``, ``imagenet`` or ``small`` (auto).
        width_mult: Width multiplier (1.0).

    Returns:
        The :class:`MobileNetV2` model.
    """
    return MobileNetV2(
        in_channels=in_channels, num_classes=num_classes, image_size=image_size, norm=norm,
        activation=activation, init=init, dropout=dropout, stem=stem, width_mult=width_mult,
    )  # fmt: skip
