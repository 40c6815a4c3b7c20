"""A small VGG-like network: a quick baseline whose width and depth are config values."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import (
    GlobalAvgPool,
    LayerSpec,
    conv,
    get_act,
    get_dropout,
    get_norm,
    init_weights,
    pool,
)
from cnnlab.models.registry import image_hw, register_model

__all__ = ["SimpleCNN", "simple_cnn"]


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
        widths: Output channels of each stage (one stage per entry).
        convs_per_stage: Conv layers per stage.
        norm: Norm spec after each conv.
        activation: Activation spec (None: ReLU).
        init: Init spec.
        dropout: Dropout spec (before the classifier; after stages if spatial).

    Raises:
        ConfigError: ``model.widths`` unless a non-empty list of positive ints,
            ``model.convs_per_stage`` unless a positive int, ``data.image_size`` if
            smaller than 2 ** stages.
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        num_classes: int = 10,
        image_size: int | Sequence[int] | None = None,
        widths: Sequence[int] = (32, 64),
        convs_per_stage: int = 2,
        norm: LayerSpec = None,
        activation: LayerSpec = None,
        init: LayerSpec = None,
        dropout: LayerSpec | float = None,
    ) -> None:
        super().__init__()
        widths = _check_widths(widths)
        if not isinstance(convs_per_stage, int) or convs_per_stage < 1:
            raise ConfigError(
                "model.convs_per_stage", f"must be a positive int, got {convs_per_stage!r}"
            )
        if image_size is not None and min(image_hw(image_size)) < 2 ** len(widths):
            raise ConfigError(
                "data.image_size",
                f"simple_cnn with {len(widths)} stages halves the input {len(widths)} times "
                f"and needs at least {2 ** len(widths)} pixels per side, got {image_size!r}",
            )
        activation = activation if activation is not None else "relu"
        norm_layer, act_layer = get_norm(norm), get_act(activation)
        stage_dropout, fc_dropout = get_dropout(dropout, conv=True), get_dropout(dropout)

        stages: OrderedDict[str, nn.Module] = OrderedDict()
        channels = in_channels
        for index, width in enumerate(widths, start=1):
            layers: OrderedDict[str, nn.Module] = OrderedDict()
            for j in range(1, convs_per_stage + 1):
                layers[f"conv{j}"] = conv(channels, width, 3, norm=norm_layer, act=act_layer)
                channels = width
            layers["pool"] = pool("max", 2)
            layers["drop"] = stage_dropout()
            stages[f"stage{index}"] = nn.Sequential(layers)
        self.features = nn.Sequential(stages)
        self.classifier = nn.Sequential(
            OrderedDict(
                pool=GlobalAvgPool(), drop=fc_dropout(), fc=nn.Linear(channels, num_classes)
            )
        )
        init_weights(self, init, activation=activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) for images (N, in_channels, H, W)."""
        return self.classifier(self.features(x))


def _check_widths(widths: Sequence[int]) -> tuple[int, ...]:
    if (
        isinstance(widths, str)
        or not isinstance(widths, Sequence)
        or not widths
        or any(not isinstance(w, int) or isinstance(w, bool) or w < 1 for w in widths)
    ):
        raise ConfigError(
            "model.widths", f"must be a non-empty list of positive ints, got {widths!r}"
        )
    return tuple(widths)


@register_model
def simple_cnn(
    *,
    in_channels: int = 3,
    num_classes: int = 10,
    image_size: int | Sequence[int] | None = None,
    norm: LayerSpec = None,
    activation: LayerSpec = None,
    init: LayerSpec = None,
    dropout: LayerSpec | float = None,
    widths: Sequence[int] = (32, 64),
    convs_per_stage: int = 2,
) -> SimpleCNN:
    """A small VGG-like CNN, after "Very Deep Convolutional Networks for Large-Scale Image
    Recognition" (Simonyan and Zisserman 2014, arXiv:1409.1556) in miniature.

    Args:
        in_channels: Input channels (3).
        num_classes: Outputs (10).
        image_size: Input side or (height, width), for the size check (None).
        norm: Norm spec after each conv (none).
        activation: Activation spec (relu).
        init: Init spec (PyTorch's default).
        dropout: Dropout spec (none).
        widths: Channels per stage ((32, 64)).
        convs_per_stage: Conv layers per stage (2).

    Returns:
        The :class:`SimpleCNN` model.
    """
    return SimpleCNN(
        in_channels=in_channels,
        num_classes=num_classes,
        image_size=image_size,
        widths=widths,
        convs_per_stage=convs_per_stage,
        norm=norm,
        activation=activation,
        init=init,
        dropout=dropout,
    )
