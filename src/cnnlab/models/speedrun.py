"""The CIFAR-10 speed-run network: airbench's 8-layer convnet, built from cnnlab's layers.

airbench (Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU",
arXiv:2404.00498), which descends from hlb-CIFAR10 and Page's "How to train your
ResNet", trains a small, wide, shallow network: a 2x2 "patch" stem, then three
groups of ``conv3x3 -> maxpool2 -> norm -> act -> conv3x3 -> norm -> act``, a global
max pool and a bias-free linear layer whose scores are scaled down (by 1/9).

What this module keeps and what it leaves out (see ``conf/experiment/cifar10_speedrun.yaml``):

- kept: the layout and widths (64, 256, 256), the 2x2 stem of ``2 * in * 4`` channels
  with a bias and an activation, no conv biases after the stem, the logit scaling,
  and the identity ("dirac") initialisation of each 3x3 conv's first input channels,
  which gives the network an implicit residual path.
- left out: the frozen patch-whitening initialisation of the stem (it needs the
  training images when the network is built; here the stem trains like any conv),
  batch norms without a learnable scale (cnnlab's norm group decides the norm), and
  the per-group learning rates (biases at 64x), which the optimizer group cannot express.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from cnnlab.models.common import (
    BATCH_NORM,
    Classifier,
    NetArgs,
    check_min_side,
    check_positive_float,
    check_widths,
)
from cnnlab.models.layers import conv, pool
from cnnlab.models.registry import register_model

__all__ = ["SpeedrunNet"]

# The stem's 2x2 valid conv takes one pixel, then each group halves the maps: a 16-pixel
# input leaves 1x1 maps after the third group.
_MIN_SIDE = 16
# airbench's layers: batch norm and GELU.
AIRBENCH_LAYERS = BATCH_NORM._replace(act=nn.GELU)


class SpeedrunNet(Classifier):
    """A patch stem, conv groups that pool early, global max pooling, scaled logits.

    airbench's layers are batch norm and GELU; ``init`` applies to the convs and the
    classifier (before the identity part), and dropout precedes the classifier
    (none: the recipe regularises with label smoothing and augmentation).

    Args:
        args: Input channels, classes, image size (None skips the size check) and layers.
        widths: Output channels of each group (one group per entry).
        stem_kernel: Side of the stem's valid conv; its width is ``2 * in * k * k``.
        logit_scale: Factor on the class scores (airbench: 1/9).
        dirac_init: Initialise each 3x3 conv as the identity on its first input channels.

    Raises:
        ValueError: ``model.widths`` unless a non-empty list of positive ints,
            ``model.logit_scale`` unless positive, ``data.image_size`` if too small.
    """

    default_layers = AIRBENCH_LAYERS
    features: nn.Sequential

    def __init__(
        self,
        args: NetArgs,
        *,
        widths: Sequence[int] = (64, 256, 256),
        stem_kernel: int = 2,
        logit_scale: float = 1 / 9,
        dirac_init: bool = True,
    ) -> None:
        widths = check_widths(widths)
        logit_scale = check_positive_float("logit_scale", logit_scale)
        check_min_side(args.image_size, _MIN_SIDE, "the speed-run network")
        norm_layer, act_layer = args.layers.norm, args.layers.act
        stem_width = 2 * args.in_channels * stem_kernel**2
        stem = conv(
            args.in_channels, stem_width, stem_kernel, padding="valid", bias=True, act=act_layer
        )
        groups: OrderedDict[str, nn.Module] = OrderedDict()
        channels = stem_width
        for index, width in enumerate(widths, start=1):
            # Pooling right after the first conv runs the norm and activation on a
            # quarter of the pixels: airbench's order.
            groups[f"group{index}"] = nn.Sequential(
                OrderedDict(
                    conv1=conv(channels, width, 3, bias=False),
                    pool=pool("max", 2),
                    norm1=norm_layer(width),
                    act1=act_layer(),
                    conv2=conv(width, width, 3, bias=False),
                    norm2=norm_layer(width),
                    act2=act_layer(),
                )
            )
            channels = width
        super().__init__(
            args, stem=stem, features=nn.Sequential(groups), pool=nn.AdaptiveMaxPool2d(1),
            flatten=nn.Flatten(), drop=args.layers.dropout.fc(),
            fc=nn.Linear(channels, args.num_classes, bias=False),
        )  # fmt: skip
        self.logit_scale = logit_scale
        if dirac_init:
            self._identity_init()

    def _identity_init(self) -> None:
        """Make each 3x3 conv pass its first ``in_channels`` inputs through unchanged."""
        with torch.no_grad():
            for layer in self.features.modules():
                if isinstance(layer, nn.Conv2d):
                    nn.init.dirac_(layer.weight[: layer.weight.shape[1]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the scaled class scores (N, num_classes) for images (N, in_channels, H, W)."""
        return super().forward(x) * self.logit_scale


register_model(
    SpeedrunNet,
    "airbench94",
    'Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", arXiv:2404.00498',
    stem_kernel=2,
)
