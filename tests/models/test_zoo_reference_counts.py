"""Parameter and mult-add counts at ImageNet size against the papers and torchvision's model docs.

Models are built on the ``meta`` device (shapes without storage), so even VGG-19 costs no
memory; mult-adds come from :func:`cnnlab.models.summary.count_macs` (FlopCounterMode / 2).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from cnnlab.models import build_model
from cnnlab.models.summary import count_macs

IMAGENET = {"in_channels": 3, "num_classes": 1000, "image_size": 224}
TV = "torchvision.models docs (weights' num_params)"

# (model, options, exact parameter count, source). "batch"/"none" is the reference's norm.
EXACT_PARAMS: list[tuple[str, dict[str, Any], int, str]] = [
    ("resnet18", {"norm": "batch"}, 11_689_512, TV),
    ("resnet34", {"norm": "batch"}, 21_797_672, TV),
    ("resnet50", {"norm": "batch"}, 25_557_032, TV),
    ("vgg11", {"norm": "none"}, 132_863_336, TV),
    ("vgg13", {"norm": "none"}, 133_047_848, TV),
    ("vgg16", {"norm": "none"}, 138_357_544, TV),
    ("vgg19", {"norm": "none"}, 143_667_240, TV),
    ("densenet121", {"norm": "batch"}, 7_978_856, TV),
    ("densenet169", {"norm": "batch"}, 14_149_480, TV),
    # torchvision's "5x5" branch has a 3x3 kernel; no auxiliary classifiers.
    ("googlenet", {"norm": "batch", "branch5_kernel": 3}, 6_624_904, TV),
    ("mobilenet_v2", {"norm": "batch"}, 3_504_872, TV),
    # The paper's two-GPU AlexNet (fig. 2 layer sizes, LRN has no parameters): the sum of
    # its layers, also the count of Caffe's bvlc_alexnet; the paper rounds it to "60 million".
    ("alexnet", {"norm": "none", "towers": 2}, 60_965_224, "Krizhevsky et al. 2012, fig. 2"),
    # The same widths on one device (full conv2/4/5): our arithmetic, no published figure.
    # torchvision's alexnet (61,100,840) uses other widths (64-192-384-256-256).
    ("alexnet", {"norm": "none", "towers": 1}, 62_378_344, "fig. 2 widths, ungrouped"),
]

# (model, options, input side, classes, millions of parameters as published, source).
ROUNDED_PARAMS: list[tuple[str, dict[str, Any], int, int, float, str]] = [
    ("mobilenet_v1", {"norm": "batch"}, 224, 1000, 4.2, "Howard et al. 2017, tables 6-8"),
    # Exact count 769,162 agrees with common CIFAR re-implementations (not in the paper).
    ("densenet_bc", {"norm": "batch", "depth": 100, "growth_rate": 12}, 32, 10, 0.8,
     "Huang et al. 2017, table 2"),
]  # fmt: skip

# (model, options, published mult-adds, relative tolerance, source).
MACS: list[tuple[str, dict[str, Any], float, float, str]] = [
    ("mobilenet_v1", {"norm": "batch"}, 569e6, 0.001, "Howard et al. 2017, tables 6-8: 569M"),
    ("mobilenet_v2", {"norm": "batch"}, 300e6, 0.005, "Sandler et al. 2018, table 4: 300M"),
    # Paper, table 1: 1.8 and 3.6 x 10^9 FLOPs (= mult-adds), given to two digits.
    ("resnet18", {"norm": "batch"}, 1.8e9, 0.01, "He et al. 2015, table 1"),
    ("resnet34", {"norm": "batch"}, 3.6e9, 0.02, "He et al. 2015, table 1"),
    # The stride on the 3x3 conv (torchvision's "v1.5") costs more than the paper's 3.8e9.
    ("resnet50", {"norm": "batch"}, 4.09e9, 0.001, TV + ": 4.09 GFLOPS"),
    ("vgg11", {"norm": "none"}, 7.61e9, 0.001, TV + ": 7.61 GFLOPS"),
    ("vgg13", {"norm": "none"}, 11.31e9, 0.001, TV + ": 11.31 GFLOPS"),
    ("vgg16", {"norm": "none"}, 15.47e9, 0.001, TV + ": 15.47 GFLOPS"),
    ("vgg19", {"norm": "none"}, 19.63e9, 0.001, TV + ": 19.63 GFLOPS"),
    ("densenet121", {"norm": "batch"}, 2.83e9, 0.002, TV + ": 2.83 GFLOPS"),
    ("densenet169", {"norm": "batch"}, 3.36e9, 0.002, TV + ": 3.36 GFLOPS"),
    ("googlenet", {"norm": "batch", "branch5_kernel": 3}, 1.50e9, 0.002, TV + ": 1.50 GFLOPS"),
    # AlexNet's paper gives no count; "720 MFLOPs" is the figure the ShuffleNet paper's
    # AlexNet comparison uses (Zhang et al. 2017; table number not re-checked): uncertain,
    # rounded, hence the 1% tolerance.
    ("alexnet", {"norm": "none", "towers": 2}, 720e6, 0.01, "Zhang et al. 2017 (cited)"),
]

# ShuffleNet v1 1x, Zhang et al. 2017, table 1 / table 2: MFLOPs for g = 1, 2, 3, 4, 8.
# The table's figures equal the conv mult-adds (the 1000-way FC layer left out, 0.6-1.5M)
# rounded to the million; with the FC layer each is within 1.2%.
SHUFFLENET_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}
# Table 1: output channels of stages 2, 3 and 4 for each g.
SHUFFLENET_WIDTHS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}


def _meta(model: str, **options: Any) -> torch.nn.Module:
    with torch.device("meta"):
        return build_model(model, **{**IMAGENET, **options})


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(
    ("model", "options", "expected", "source"),
    EXACT_PARAMS,
    ids=[f"{m}-{'-'.join(map(str, o.values()))}" for m, o, _, _ in EXACT_PARAMS],
)
def test_parameter_counts_equal_the_reference(
    model: str, options: dict[str, Any], expected: int, source: str
) -> None:
    assert _params(_meta(model, **options)) == expected, source


@pytest.mark.parametrize(("model", "options", "side", "classes", "millions", "source"),
                         ROUNDED_PARAMS, ids=[row[0] for row in ROUNDED_PARAMS])  # fmt: skip
def test_parameter_counts_round_to_the_papers(
    model: str, options: dict[str, Any], side: int, classes: int, millions: float, source: str
) -> None:
    net = _meta(model, image_size=side, num_classes=classes, **options)
    assert round(_params(net) / 1e6, 1) == millions, source


@pytest.mark.parametrize(("model", "options", "expected", "tolerance", "source"), MACS,
                         ids=[row[0] + ("-" + row[4][:5]) for row in MACS])  # fmt: skip
def test_mult_adds_match_the_reference(
    model: str, options: dict[str, Any], expected: float, tolerance: float, source: str
) -> None:
    with torch.device("meta"):
        macs = count_macs(_meta(model, **options), torch.zeros(1, 3, 224, 224))
    assert macs == pytest.approx(expected, rel=tolerance), source


@pytest.mark.parametrize("groups", sorted(SHUFFLENET_MFLOPS))
def test_shufflenet_complexity_table(groups: int) -> None:
    net = _meta("shufflenet_v1", norm="batch", groups=groups)
    with torch.device("meta"), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, 224, 224))
    by_op = counter.get_flop_counts()["Global"]
    conv_macs = sum(v for op, v in by_op.items() if "convolution" in str(op)) // 2
    assert round(conv_macs / 1e6) == SHUFFLENET_MFLOPS[groups]
    total = counter.get_total_flops() // 2
    assert total == pytest.approx(SHUFFLENET_MFLOPS[groups] * 1e6, rel=0.012)

    widths = tuple(
        getattr(net.features, f"stage{i}")[0].body.expand.out_channels
        + getattr(net.features, f"stage{i}")[0].body.reduce.in_channels
        for i in (2, 3, 4)
    )
    assert widths == SHUFFLENET_WIDTHS[groups]


def test_shufflenet_scale_factor_scales_the_widths() -> None:
    net = _meta("shufflenet_v1", norm="batch", groups=3, scale=0.5)
    # Table 1 at 0.5x: 120, 240, 480 output channels; the stem's 24 maps become 12.
    assert net.features.stem.conv.out_channels == 12
    assert net.head.fc.in_features == 480
