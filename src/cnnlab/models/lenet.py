"""LeNet-5 (LeCun, Bottou, Bengio and Haffner 1998), the paper's layout with modern defaults.

C1 6@5x5 -> S2 2x2 -> C3 16@5x5 -> S4 2x2 -> C5 120@5x5 -> F6 84 -> output.
On 32x32 inputs the maps are 28, 14, 10, 5 and 1 pixels wide; 28x28 inputs
(MNIST) get C1 padded by 2, the classic trick, and follow the same sizes.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.common import Classifier, NetArgs, check_choice
from cnnlab.models.layers import conv, output_size, pool
from cnnlab.models.layers._spec import keyed
from cnnlab.models.registry import register_model

__all__ = ["LECUN_C3_TABLE", "LeNet5", "TrainableSubsampling"]

# The paper's Table I: for each C3 map, the S2 maps it reads. Six maps see 3
# neighbours, six see 4 neighbours, three see 4 non-neighbours, one sees all six.
LECUN_C3_TABLE: tuple[tuple[int, ...], ...] = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1), (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

C3_TABLES = ("full", "lecun")
SUBSAMPLINGS = ("max", "avg", "trainable")
# Smallest input side: C1 is padded by 2 below 32, and C5's 5x5 kernel needs S4 >= 5.
MIN_SIZE = 28
# The paper's input side, built for when the data gives no size.
PAPER_SIZE = 32


class TrainableSubsampling(nn.Module):
    """The paper's S2/S4: the mean of each 2x2 block times a trainable coefficient,
    plus a trainable bias, per map (2 parameters per map)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Coefficient 1 and bias 0 start as plain average pooling.
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Subsample ``x`` (N, C, H, W) to (N, C, H // 2, W // 2)."""
        return F.avg_pool2d(x, 2) * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


class LeNet5(Classifier):
    """LeNet-5 with the paper's layout; the options select the paper's or today's choices.

    The paper used scaled tanh, trainable subsampling, the partial C3 table and an
    RBF output layer; the default here is ReLU (the ``activation`` group), max
    pooling, a full C3 and a linear output. Norm layers (the ``norm`` group) follow
    C1 and C3; C5 is a fully connected layer in conv form (1x1 output at 32x32,
    where instance norm would erase it), so it has none. Dropout (the ``dropout``
    group) precedes F6 and the output layer.

    Args:
        args: Input channels, classes, image size (32 if none; at least 28) and
            layers. Below 32, C1 is padded by 2; above 32, C5's maps are larger than
            1x1 and all of them feed F6.
        c3_table: ``full`` (every C3 map reads all S2 maps, 2,416 parameters) or
            ``lecun`` (the paper's table, 1,516 parameters).
        subsampling: ``max``, ``avg`` or ``trainable`` (the paper's: average times
            a coefficient plus a bias per map, then the activation).

    Raises:
        ValueError: ``data.image_size`` below 28, ``model.c3_table`` or
            ``model.subsampling`` not among the choices.
    """

    def __init__(self, args: NetArgs, *, c3_table: str = "full", subsampling: str = "max") -> None:
        check_choice("c3_table", c3_table, C3_TABLES)
        check_choice("subsampling", subsampling, SUBSAMPLINGS)
        height, width = args.image_size or (PAPER_SIZE, PAPER_SIZE)
        if min(height, width) < MIN_SIZE:
            raise keyed(
                "data.image_size",
                f"lenet5 needs inputs of at least {MIN_SIZE}x{MIN_SIZE} (C5's 5x5 kernel must "
                f"fit S4's maps), got {height}x{width}",
            )
        layers = args.layers
        norm_layer, act_layer = layers.norm, layers.act
        # The classic trick for MNIST: pad 28x28 to 32x32 so every map has the paper's size.
        pad = (2 if height < 32 else 0, 2 if width < 32 else 0)
        table = LECUN_C3_TABLE if c3_table == "lecun" else None

        def subsample(channels: int) -> nn.Module:
            if subsampling == "trainable":
                # The paper squashes each subsampled map, as it does after every layer.
                return nn.Sequential(TrainableSubsampling(channels), act_layer())
            return pool(subsampling, 2)

        features = nn.Sequential(
            OrderedDict(
                c1=conv(args.in_channels, 6, 5, padding=pad, norm=norm_layer, act=act_layer),
                s2=subsample(6),
                c3=conv(6, 16, 5, padding="valid", norm=norm_layer, act=act_layer,
                        connections=table),
                s4=subsample(16),
                c5=conv(16, 120, 5, padding="valid", act=act_layer),
            )
        )  # fmt: skip
        c5_h, c5_w = (_c5_size(size, p) for size, p in ((height, pad[0]), (width, pad[1])))
        classifier = nn.Sequential(
            OrderedDict(
                flatten=nn.Flatten(),
                drop6=layers.dropout.fc(),
                f6=nn.Linear(120 * c5_h * c5_w, 84),
                act6=act_layer(),
                drop7=layers.dropout.fc(),
                output=nn.Linear(84, args.num_classes),
            )
        )
        super().__init__(args, features=features, classifier=classifier)


def _c5_size(size: int, pad: int) -> int:
    """C5's output side for an input side: C1 (5, pad), S2 (2/2), C3 (5), S4 (2/2), C5 (5)."""
    size = output_size(size, 5, p=pad)
    size = output_size(output_size(size, 2, s=2), 5)
    return output_size(output_size(size, 2, s=2), 5)


register_model(
    LeNet5,
    "lenet5",
    'LeCun et al. 1998, "Gradient-Based Learning Applied to Document Recognition", '
    "Proc. IEEE, doi:10.1109/5.726791",
)
