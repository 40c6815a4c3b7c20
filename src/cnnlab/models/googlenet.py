"""GoogLeNet (Szegedy et al. 2014): inception modules and optional auxiliary classifiers.

An inception module runs four branches in parallel and concatenates them: a
1x1 conv; a 1x1 reduction then a 3x3 conv; a 1x1 reduction then a 5x5 conv; a
3x3/1 max pooling then a 1x1 projection. The reductions keep the cost low.

Where it differs from the paper, it follows torchvision's ``googlenet``, the
usual reference: every conv has batch norm (the ``norm`` group; None means
batch), there is no LRN, and the last pooling before inception 5a is
3x3/2 (the paper's; torchvision's 2x2/2 gives the same 7x7 maps at 224).
torchvision's "5x5" branch really uses a 3x3 kernel (kept for its weights);
``branch5_kernel: 3`` reproduces its 6,624,904 parameters, the default 5 is the
paper's (7,005,832 with batch norm).

Auxiliary classifiers (``aux_logits: true``) sit after inception 4a and 4d
(average pooling to 4x4, 1x1 conv to 128, FC 1024, dropout, FC). In training
mode the network keeps their scores in :attr:`GoogLeNet.aux_scores`; the
training loss adds ``AUX_WEIGHT`` (0.3, the paper's) times their losses.

Stems: ``imagenet`` is the paper's 7x7/2 conv, 3x3/2 max pooling, 1x1 and 3x3
convs and another 3x3/2 pooling; ``small`` keeps the three convs with a 3x3/1
first conv and no pooling (CIFAR-style), so inception 3a sees 32x32 maps.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from cnnlab.models.common import (
    BATCH_NORM,
    Classifier,
    Factory,
    NetArgs,
    NormAct,
    check_bool,
    check_choice,
    check_positive_float,
    make_divisible,
    stem_layers,
)
from cnnlab.models.layers import conv, pool
from cnnlab.models.registry import register_model

__all__ = ["AUX_WEIGHT", "GoogLeNet", "Inception", "InceptionAux"]

#: Weight of each auxiliary classifier's loss in the training loss (the paper's).
AUX_WEIGHT = 0.3

# Paper's table 1, per module: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
# "pool" rows are 3x3/2 max poolings between the groups of modules.
LAYOUT: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("3a", (64, 96, 128, 16, 32, 32)),
    ("3b", (128, 128, 192, 32, 96, 64)),
    ("pool3", ()),
    ("4a", (192, 96, 208, 16, 48, 64)),
    ("4b", (160, 112, 224, 24, 64, 64)),
    ("4c", (128, 128, 256, 24, 64, 64)),
    ("4d", (112, 144, 288, 32, 64, 64)),
    ("4e", (256, 160, 320, 32, 128, 128)),
    ("pool4", ()),
    ("5a", (256, 160, 320, 32, 128, 128)),
    ("5b", (384, 192, 384, 48, 128, 128)),
)
# Stem convs: output channels of conv1 (7x7), conv2 (1x1) and conv3 (3x3).
STEM_WIDTHS = (64, 64, 192)
# The auxiliary classifiers follow these modules.
AUX_AFTER = ("4a", "4d")
BRANCH5_KERNELS = (3, 5)


class Inception(nn.Module):
    """Four parallel branches (1x1; 1x1-3x3; 1x1-5x5; pool-1x1), concatenated.

    ``widths`` is a row of :data:`LAYOUT`; ``branch5_kernel`` is the "5x5" branch's
    kernel (5, or torchvision's 3).
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int],
        norm: Factory,
        act: Factory,
        branch5_kernel: int = 5,
    ) -> None:
        super().__init__()
        c1, r3, c3, r5, c5, proj = widths
        self.out_channels = c1 + c3 + c5 + proj
        unit: NormAct = {"norm": norm, "act": act}
        self.branch1 = conv(in_channels, c1, 1, **unit)
        self.branch3 = nn.Sequential(conv(in_channels, r3, 1, **unit), conv(r3, c3, 3, **unit))
        self.branch5 = nn.Sequential(
            conv(in_channels, r5, 1, **unit), conv(r5, c5, branch5_kernel, **unit)
        )
        self.branch_pool = nn.Sequential(
            pool("max", 3, stride=1, padding=1, ceil_mode=True), conv(in_channels, proj, 1, **unit)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Concatenate the four branches along the channels."""
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)


class InceptionAux(nn.Module):
    """Auxiliary classifier: 4x4 average pooling, 1x1 conv (128), FC (1024), dropout, FC.

    ``width_mult`` scales the 128 and 1024; the paper's ``fc_dropout`` rate is 0.7.
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        norm: Factory,
        act: Factory,
        fc_dropout: Factory,
        width_mult: float = 1.0,
    ) -> None:
        super().__init__()
        channels, units = make_divisible(128 * width_mult, 4), make_divisible(1024 * width_mult, 4)
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = conv(in_channels, channels, 1, norm=norm, act=act)
        self.fc1 = nn.Linear(channels * 16, units)
        self.act = act()
        self.drop = fc_dropout()
        self.fc2 = nn.Linear(units, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes) from an intermediate feature map."""
        x = torch.flatten(self.conv(self.pool(x)), 1)
        return self.fc2(self.drop(self.act(self.fc1(x))))


class GoogLeNet(Classifier):
    """The stem, nine inception modules with poolings between groups, then GAP, dropout, FC.

    Batch norm after every conv, as in torchvision; dropout (the ``dropout`` group;
    the paper's rate is 0.4) precedes the classifier.

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        stem: ``auto``, ``imagenet`` or ``small``.
        aux_logits: Add the two auxiliary classifiers.
        width_mult: Multiplies every width (rounded to a multiple of 4).
        branch5_kernel: Kernel of the "5x5" branch: 5 (paper) or 3 (torchvision).

    Attributes:
        aux_scores: Scores of the auxiliary classifiers from the last forward in
            training mode (empty otherwise).
    """

    default_layers = BATCH_NORM
    stem: nn.Sequential
    blocks: nn.ModuleDict
    aux: nn.ModuleDict
    head: nn.Sequential

    def __init__(
        self,
        args: NetArgs,
        *,
        stem: str = "auto",
        aux_logits: bool = False,
        width_mult: float = 1.0,
        branch5_kernel: int = 5,
    ) -> None:
        kind = args.stem(stem)
        check_bool("aux_logits", aux_logits)
        width_mult = check_positive_float("width_mult", width_mult)
        check_choice("branch5_kernel", branch5_kernel, BRANCH5_KERNELS)
        layers = args.layers
        unit = layers.unit

        def scaled(c: int) -> int:
            return make_divisible(c * width_mult, 4)

        # Caffe's 3x3/2 max pooling, rounding up (not the common stem's padded one).
        pool_3s2 = partial(pool, "max", 3, stride=2, ceil_mode=True)
        w1, w2, w3 = (scaled(c) for c in STEM_WIDTHS)
        stem_part = stem_layers(
            kind, args.in_channels, w1, layers, names=("conv1", "pool1"), pooled=False
        )
        if kind == "imagenet":
            stem_part["pool1"] = pool_3s2()
        stem_part["conv2"] = conv(w1, w2, 1, **unit)
        stem_part["conv3"] = conv(w2, w3, 3, **unit)
        if kind == "imagenet":
            stem_part["pool2"] = pool_3s2()
        blocks, aux = nn.ModuleDict(), nn.ModuleDict()
        channels = w3
        for name, widths in LAYOUT:
            if not widths:
                blocks[name] = nn.Sequential(pool_3s2(), layers.dropout.conv())
                continue
            module = Inception(channels, [scaled(c) for c in widths], **unit,
                               branch5_kernel=branch5_kernel)  # fmt: skip
            blocks[name] = module
            channels = module.out_channels
            if aux_logits and name in AUX_AFTER:
                aux[name] = InceptionAux(
                    channels, args.num_classes, **unit, fc_dropout=layers.dropout.fc,
                    width_mult=width_mult,
                )  # fmt: skip
        super().__init__(args, stem=nn.Sequential(stem_part), blocks=blocks, aux=aux,
                         head=args.head(channels))  # fmt: skip
        self.aux_scores: list[torch.Tensor] = []
        # The training loss adds aux_weight x each auxiliary loss (see ImageClassifier).
        self.aux_weight = AUX_WEIGHT

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return class scores (N, num_classes); in training also fill :attr:`aux_scores`."""
        self.aux_scores = []
        x = self.stem(x)
        for name, block in self.blocks.items():
            x = block(x)
            if self.training and name in self.aux:
                self.aux_scores.append(self.aux[name](x))
        return self.head(x)


register_model(
    GoogLeNet,
    "googlenet",
    'Inception v1: Szegedy et al. 2014, "Going Deeper with Convolutions", arXiv:1409.4842',
)
