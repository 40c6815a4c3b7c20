"""A searchable CNN: stages whose depth, width, kernel, conv kind and skips are config values.

Every choice a small neural architecture search makes is one key of
``conf/model/searchable.yaml``, either one value for every stage or a list with
one value per stage, so an Optuna sweep over those keys searches architectures:

    cnnlab train -m model=searchable 'model.depth=range(1,4)' \
        'model.conv=choice(plain,separable,dilated)' 'model.kernel_size=choice(3,5)'

Stage i (of ``num_stages``) has ``depth`` blocks of ``width * width_growth ** i``
channels (or the explicit ``widths``); its first block halves the maps (except in
stage 1). A block is one conv-norm-act unit of the stage's kind:

- ``plain``: a standard k x k conv;
- ``separable``: depthwise k x k then pointwise 1x1 (MobileNet's saving);
- ``dilated``: a k x k conv with dilation 2 (a wider view for the same weights);

with ``skip`` true, a block adds its input (or a 1x1 projection of it) to its
output, as ResNet does.

Stems: ``imagenet`` is a 7x7/2 conv and 3x3/2 max pooling; ``small`` a 3x3/1 conv.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from cnnlab.models.common import (
    BATCH_NORM,
    Classifier,
    Factory,
    NetArgs,
    check_bool,
    check_choice,
    check_positive_float,
    check_positive_int,
    check_scalar_or_list,
    numbered,
    shortcut,
    stack,
    stem_layers,
)
from cnnlab.models.layers import conv as conv_layer  # `conv` is an option name here
from cnnlab.models.layers._spec import keyed
from cnnlab.models.registry import register_model

__all__ = ["CONV_CHOICES", "SearchableBlock", "SearchableNet"]

# Conv kind of a block -> (layer factory kind, dilation).
CONV_CHOICES: dict[str, tuple[str, int]] = {
    "plain": ("standard", 1),
    "separable": ("separable", 1),
    "dilated": ("standard", 2),
}
# Odd kernels keep "same" padding symmetric, so maps stay centred.
KERNEL_SIZES = (1, 3, 5, 7)


class SearchableBlock(nn.Module):
    """One conv-norm-act unit of a kind of :data:`CONV_CHOICES`; with ``skip``, plus the
    input (projected by a 1x1 conv where shapes differ)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        conv_kind: str,
        stride: int,
        skip: bool,
        norm: Factory,
        act: Factory,
    ) -> None:
        super().__init__()
        kind, dilation = CONV_CHOICES[conv_kind]
        self.body = conv_layer(in_channels, out_channels, kernel_size, stride=stride,
                               dilation=dilation, kind=kind, norm=norm, act=act)  # fmt: skip
        self.shortcut = shortcut(in_channels, out_channels, stride, norm) if skip else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return body(x), plus shortcut(x) when the block has a skip."""
        out = self.body(x)
        return out if self.shortcut is None else out + self.shortcut(x)


class SearchableNet(Classifier):
    """Stem, ``num_stages`` stages of :class:`SearchableBlock`, GAP, dropout and a linear layer.

    Batch norm by default. Dropout (the ``dropout`` group) precedes the classifier,
    and with ``spatial`` true also follows each stage.

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        stem: ``auto``, ``imagenet`` or ``small``.
        num_stages: Number of stages.
        depth: Blocks per stage: one int, or one per stage.
        width: Channels of stage 1 (and of the stem).
        width_growth: Factor between consecutive stages' widths.
        widths: Explicit channels per stage; overrides ``width`` and ``width_growth``.
        kernel_size: Kernel side (1, 3, 5 or 7): one, or one per stage.
        conv: ``plain``, ``separable`` or ``dilated``: one, or one per stage.
        skip: Skip connections in the blocks: one bool, or one per stage.

    Attributes:
        stage_specs: One dict per stage (depth, width, kernel_size, conv, skip).

    Raises:
        ValueError: ``model.<option>`` naming the option for any bad value, e.g. a
            per-stage list whose length is not ``num_stages``.
    """

    default_layers = BATCH_NORM

    def __init__(
        self,
        args: NetArgs,
        *,
        stem: str = "auto",
        num_stages: int = 3,
        depth: int | Sequence[int] = 2,
        width: int = 32,
        width_growth: float = 2.0,
        widths: Sequence[int] | None = None,
        kernel_size: int | Sequence[int] = 3,
        conv: str | Sequence[str] = "plain",
        skip: bool | Sequence[bool] = True,
    ) -> None:
        kind = args.stem(stem)
        stages = _stage_table(
            num_stages, depth, width, width_growth, widths, kernel_size, conv, skip
        )
        layers = args.layers
        channels = stages[0]["width"]
        features = stem_layers(kind, args.in_channels, channels, layers)
        for index, stage in enumerate(stages):
            block = partial(SearchableBlock, out_channels=stage["width"],
                            kernel_size=stage["kernel_size"], conv_kind=stage["conv"],
                            skip=stage["skip"], **layers.unit)  # fmt: skip
            blocks = stack(block, stage["depth"], channels, stage["width"], 2 if index else 1)
            features[f"stage{index + 1}"] = numbered("block", blocks, drop=layers.dropout.conv())
            channels = stage["width"]
        super().__init__(args, features=nn.Sequential(features), head=args.head(channels))
        self.stage_specs = stages


def _stage_table(
    num_stages: int,
    depth: int | Sequence[int],
    width: int,
    width_growth: float,
    widths: Sequence[int] | None,
    kernel_size: int | Sequence[int],
    conv_kind: str | Sequence[str],
    skip: bool | Sequence[bool],
) -> list[dict[str, Any]]:
    """Validate the options and return one dict per stage (depth, width, kernel_size, conv,
    skip)."""
    check_positive_int("num_stages", num_stages)
    depths = check_scalar_or_list("depth", depth, num_stages, check_positive_int)
    if widths is None:
        check_positive_int("width", width)
        growth = check_positive_float("width_growth", width_growth)
        stage_widths = [max(1, round(width * growth**i)) for i in range(num_stages)]
    else:
        if isinstance(widths, str) or not isinstance(widths, Sequence):
            raise keyed(
                "model.widths", f"must be a list of ints or null, got {widths!r}", TypeError
            )
        stage_widths = check_scalar_or_list("widths", widths, num_stages, check_positive_int)
    kernels = check_scalar_or_list(
        "kernel_size", kernel_size, num_stages, lambda o, v: check_choice(o, v, KERNEL_SIZES)
    )
    kinds = check_scalar_or_list(
        "conv", conv_kind, num_stages, lambda o, v: check_choice(o, v, tuple(CONV_CHOICES))
    )
    skips = check_scalar_or_list("skip", skip, num_stages, check_bool)
    return [
        {"depth": d, "width": w, "kernel_size": k, "conv": c, "skip": s}
        for d, w, k, c, s in zip(depths, stage_widths, kernels, kinds, skips, strict=True)
    ]


register_model(
    SearchableNet,
    "searchable",
    "after Zoph and Le 2017, arXiv:1611.01578, in a small space: per-stage depth, width, "
    "kernel, conv kind and skips",
)
