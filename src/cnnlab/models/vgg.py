"""VGG (Simonyan and Zisserman 2014): stacks of 3x3 convs, five max-pooled stages, three FC layers.

Configurations A, B, D and E of the paper (11, 13, 16 and 19 weight layers)
differ only in the number of convs per stage. The paper has no norm layers:
with ``norm: none`` each conv has a bias and the ImageNet parameter counts equal
torchvision's ``vgg11``..``vgg19``; with a norm the bias is dropped (the norm's
shift replaces it), so ``norm=batch`` has 2,752 (vgg11) parameters fewer than
torchvision's ``vgg11_bn``, which keeps both.

VGG has no stem to adapt: ``stem`` picks the head. ``imagenet`` pools the last
maps to 7x7 and uses the paper's 4096-wide FC layers; ``small`` (CIFAR-style)
averages them to 1x1 and uses 512-wide FC layers. Pooling rounds up
(``ceil_mode``), so 28x28 inputs survive the five halvings (28, 14, 7, 4, 2, 1).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

from torch import nn

from cnnlab.models.common import Classifier, Layers, NetArgs, check_positive_int, numbered, stack
from cnnlab.models.layers import conv, pool
from cnnlab.models.registry import register_model

__all__ = ["VGG", "vgg_stage"]

# Output channels of the five stages at width 64; each stage ends in 2x2 max pooling.
STAGE_WIDTHS = (64, 128, 256, 512, 512)
# Paper's table 1: configuration -> 3x3 convs in each of the five stages.
CONVS_PER_STAGE = {
    "A": (1, 1, 2, 2, 2),  # vgg11
    "B": (2, 2, 2, 2, 2),  # vgg13
    "D": (2, 2, 3, 3, 3),  # vgg16
    "E": (2, 2, 4, 4, 4),  # vgg19
}
# FC width of each head when `fc_width` is null.
FC_WIDTHS = {"imagenet": 4096, "small": 512}
# Side of the pooled map the ImageNet head flattens (224 / 2 ** 5).
POOLED = 7


def vgg_stage(
    in_channels: int, width: int, convs: int, layers: Layers, ceil_mode: bool = True
) -> nn.Sequential:
    """``convs`` 3x3 conv-norm-act layers, 2x2 max pooling and the spatial dropout site."""
    units = stack(partial(conv, out_channels=width, kernel_size=3, **layers.unit),
                  convs, in_channels, width)  # fmt: skip
    stage_pool = pool("max", 2, ceil_mode=ceil_mode)
    return numbered("conv", units, pool=stage_pool, drop=layers.dropout.conv())


class VGG(Classifier):
    """Five stages of 3x3 conv-norm-act layers with 2x2 max pooling, then three FC layers.

    No norm, as in the paper. Dropout (the ``dropout`` group) precedes the second
    and third FC layers, where the paper has it; with ``spatial`` true whole maps
    are also dropped after each stage.

    Args:
        args: Input channels, classes, image size (it picks the head) and layers.
        convs_per_stage: Convs in each of the five stages.
        stem: ``auto``, ``imagenet`` (7x7 pooled maps, 4096-wide FC) or ``small``
            (global average pooling, 512-wide FC).
        width: Channels of stage 1 (64); the others scale with it.
        fc_width: Units of the two hidden FC layers; None takes the head's default.
    """

    def __init__(
        self,
        args: NetArgs,
        *,
        convs_per_stage: Sequence[int],
        stem: str = "auto",
        width: int = 64,
        fc_width: int | None = None,
    ) -> None:
        head = args.stem(stem)
        check_positive_int("width", width)
        fc_width = FC_WIDTHS[head] if fc_width is None else check_positive_int("fc_width", fc_width)
        layers = args.layers
        stages: OrderedDict[str, nn.Module] = OrderedDict()
        channels = args.in_channels
        for index, convs in enumerate(convs_per_stage):
            stage_width = STAGE_WIDTHS[index] * width // 64
            stages[f"stage{index + 1}"] = vgg_stage(channels, stage_width, convs, layers)
            channels = stage_width
        side = POOLED if head == "imagenet" else 1
        classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                fc1=nn.Linear(channels * side * side, fc_width),
                act1=layers.act(),
                drop1=layers.dropout.fc(),
                fc2=nn.Linear(fc_width, fc_width),
                act2=layers.act(),
                drop2=layers.dropout.fc(),
                fc3=nn.Linear(fc_width, args.num_classes),
            )
        )
        super().__init__(args, features=nn.Sequential(stages), pool=nn.AdaptiveAvgPool2d(side),
                         classifier=classifier)  # fmt: skip


# Simonyan and Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale Image
# Recognition", arXiv:1409.1556: configurations A, B, D (the paper's best) and E.
_PAPER = "Simonyan and Zisserman 2014, arXiv:1409.1556"
for _name, _config in (("vgg11", "A"), ("vgg13", "B"), ("vgg16", "D"), ("vgg19", "E")):
    register_model(VGG, _name, _PAPER, convs_per_stage=CONVS_PER_STAGE[_config])
