"""AlexNet (Krizhevsky, Sutskever and Hinton 2012): five conv layers and three FC layers.

The paper split the network across two GPUs: conv2, conv4 and conv5 see only
the maps of their own GPU (5x5x48, 3x3x192, 3x3x192 kernels), while conv3 and
the FC layers read both. ``towers: 2`` reproduces this with grouped convs
(groups=2), as Caffe's reference model did: 60,965,224 parameters at ImageNet
size, the paper's "60 million". ``towers: 1`` (the default) keeps the paper's
widths on one device with full convs: 62,378,344 parameters. torchvision's
``alexnet`` (61,100,840) follows the later "one weird trick" paper (64, 192,
384, 256, 256 channels) and is neither of these.

Local response normalisation (the paper's, k=2, n=5, alpha=1e-4, beta=0.75)
follows the activations of conv1 and conv2 with ``lrn: true``. Norm layers of
the ``norm`` group (none by default, as in the paper) follow every conv.

Stems: ``imagenet`` is the paper's 11x11/4 conv1; ``small`` is a 3x3/1 conv1
(CIFAR-style), after which three 3x3/2 poolings take 32 pixels to 4.
"""

from __future__ import annotations

from collections import OrderedDict

from torch import nn

from cnnlab.models.common import (
    Classifier,
    NetArgs,
    check_bool,
    check_choice,
    check_positive_float,
    check_positive_int,
    make_divisible,
)
from cnnlab.models.layers import conv, pool
from cnnlab.models.registry import register_model

__all__ = ["AlexNet"]

# Output channels of conv1..conv5, and whether the conv sees only its own tower's maps.
CONVS = ((96, False), (256, True), (384, False), (384, True), (256, True))
# Pooled side of conv5's maps that the first FC layer reads (the paper's 6x6x256 = 9,216).
POOLED = {"imagenet": 6, "small": 2}
FC_WIDTHS = {"imagenet": 4096, "small": 1024}
TOWERS = (1, 2)
# The paper divides by k + alpha * sum(a^2); torch's LocalResponseNorm by k + alpha / n * sum.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 1e-4 * 5, 0.75, 2.0


class AlexNet(Classifier):
    """conv1 (LRN, pool), conv2 (LRN, pool), conv3, conv4, conv5 (pool), then three FC layers.

    No norm, as in the paper. Dropout (the ``dropout`` group; the paper's is 0.5)
    precedes the first two FC layers, where the paper has it.

    Args:
        args: Input channels, classes, image size (it picks the stem) and layers.
        stem: ``auto``, ``imagenet`` (11x11/4 conv1) or ``small`` (3x3/1 conv1).
        towers: 1 (full convs) or 2 (the paper's two-GPU split as grouped convs).
        lrn: Local response normalisation after conv1 and conv2.
        width_mult: Multiplies the conv widths (rounded to a multiple of 4).
        fc_width: Units of the two hidden FC layers; None: 4096 (imagenet) or 1024 (small).
    """

    def __init__(
        self,
        args: NetArgs,
        *,
        stem: str = "auto",
        towers: int = 1,
        lrn: bool = True,
        width_mult: float = 1.0,
        fc_width: int | None = None,
    ) -> None:
        kind = args.stem(stem)
        check_choice("towers", towers, TOWERS)
        check_bool("lrn", lrn)
        width_mult = check_positive_float("width_mult", width_mult)
        fc_width = FC_WIDTHS[kind] if fc_width is None else check_positive_int("fc_width", fc_width)
        widths = [make_divisible(c * width_mult, 4) for c, _ in CONVS]
        first = (11, 4, 2) if kind == "imagenet" else (3, 1, 1)  # kernel, stride, padding
        # Overlapping 3x3/2 pooling (the paper's); the small stem pads so 28 and 32 pool evenly.
        pool_pad = 0 if kind == "imagenet" else 1
        layers = args.layers
        features: OrderedDict[str, nn.Module] = OrderedDict()
        channels = args.in_channels
        for index, ((_, split), width) in enumerate(zip(CONVS, widths, strict=True), start=1):
            k, s, p = first if index == 1 else ((5, 1, 2) if index == 2 else (3, 1, 1))
            grouped = split and towers == 2
            features[f"conv{index}"] = conv(
                channels, width, k, stride=s, padding=p, norm=layers.norm, act=layers.act,
                kind="grouped" if grouped else "standard", groups=2 if grouped else 1,
            )  # fmt: skip
            channels = width
            if index <= 2 and lrn:
                features[f"lrn{index}"] = nn.LocalResponseNorm(LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K)
            if index in (1, 2, 5):
                features[f"pool{index}"] = pool("max", 3, stride=2, padding=pool_pad)
        side = POOLED[kind]
        classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                drop6=layers.dropout.fc(),
                fc6=nn.Linear(channels * side * side, fc_width),
                act6=layers.act(),
                drop7=layers.dropout.fc(),
                fc7=nn.Linear(fc_width, fc_width),
                act7=layers.act(),
                fc8=nn.Linear(fc_width, args.num_classes),
            )
        )
        super().__init__(args, features=nn.Sequential(features), pool=nn.AdaptiveAvgPool2d(side),
                         classifier=classifier)  # fmt: skip


register_model(
    AlexNet,
    "alexnet",
    'Krizhevsky, Sutskever and Hinton 2012, "ImageNet Classification with Deep '
    'Convolutional Neural Networks", NeurIPS 2012',
)
