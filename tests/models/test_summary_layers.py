"""summarize and count_macs: rows, totals, mult-adds and receptive fields on known networks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.models import build_model
from cnnlab.models.layers import GlobalAvgPool
from cnnlab.models.summary import count_macs, summarize


def test_stacked_convs_grow_the_field_by_the_textbook_rule() -> None:
    # r_out = r_in + (k - 1) * d * j_in, j_out = j_in * s.
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3),  # r 3, j 1
        nn.Conv2d(2, 2, 3, stride=2),  # r 5, j 2
        nn.MaxPool2d(2),  # r 7, j 4
        nn.Conv2d(2, 2, 3, dilation=2),  # r 7 + 2 * 2 * 4 = 23, j 4
        nn.Flatten(),
    )
    summary = summarize(net, (1, 1, 64, 64))
    assert [row.receptive_field for row in summary.layers] == [
        [3, 3],
        [5, 5],
        [7, 7],
        [23, 23],
        None,
    ]
    assert [row.output_shape for row in summary.layers][:4] == [
        [1, 2, 62, 62], [1, 2, 30, 30], [1, 2, 15, 15], [1, 2, 11, 11]
    ]  # fmt: skip


def test_rectangular_kernels_and_branches_take_the_widest_input() -> None:
    class TwoBranches(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.narrow = nn.Conv2d(1, 2, (1, 3), padding=(0, 1))
            self.wide = nn.Conv2d(1, 2, (5, 1), padding=(2, 0))
            self.merge = nn.Conv2d(4, 1, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.merge(torch.cat([self.narrow(x), self.wide(x)], 1))

    rows = {row.name: row for row in summarize(TwoBranches(), (1, 1, 8, 8)).layers}
    assert rows["narrow"].receptive_field == [1, 3]
    assert rows["wide"].receptive_field == [5, 1]
    assert rows["merge"].receptive_field == [5, 3]


def test_global_pooling_sees_the_whole_map() -> None:
    net = nn.Sequential(nn.Conv2d(1, 2, 3, stride=2), GlobalAvgPool(flatten=False))
    rows = summarize(net, (1, 1, 9, 9)).layers
    # 4x4 maps with step 2: 3 + (4 - 1) * 2 = 9 pixels.
    assert rows[1].receptive_field == [9, 9]


def test_totals_and_mult_adds_of_a_small_network() -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(64, 5))
    summary = summarize(net, (1, 3, 4, 4))
    conv_macs, fc_macs = 4 * 4 * 4 * 3 * 9, 64 * 5
    assert [row.macs for row in summary.layers] == [conv_macs, 0, 0, fc_macs]
    assert summary.macs == count_macs(net, torch.zeros(1, 3, 4, 4)) == conv_macs + fc_macs
    assert summary.params == summary.trainable_params == 112 + 325
    net[0].weight.requires_grad_(False)
    assert summarize(net, (1, 3, 4, 4)).trainable_params == 112 + 325 - 108
    assert summary.input_shape == [1, 3, 4, 4] and summary.output_shape == [1, 5]


def test_depth_rows_hold_their_children_totals() -> None:
    net = build_model("resnet18", in_channels=3, num_classes=10, image_size=32, base_width=8)
    leaves = summarize(net, (1, 3, 32, 32))
    stages = summarize(net, (1, 3, 32, 32), depth=2)
    assert [row.name for row in stages.layers] == [
        "stem.conv", "stages.stage1", "stages.stage2", "stages.stage3", "stages.stage4",
        "head.pool", "head.fc",
    ]  # fmt: skip
    assert sum(row.params for row in stages.layers) == stages.params == leaves.params
    assert sum(row.macs for row in stages.layers) == stages.macs == leaves.macs
    assert not any(row.kind == "Identity" for row in leaves.layers)


def test_summary_restores_training_mode_and_keeps_weights() -> None:
    net = build_model("mobilenet_v2", in_channels=1, num_classes=3, image_size=28, width_mult=0.1)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    summarize(net.train(), (1, 1, 28, 28))
    assert net.training
    assert all(torch.equal(state[k], v) for k, v in net.state_dict().items())


@pytest.mark.parametrize(("model", "field"), [("resnet18", 435), ("resnet50", 427)])
def test_resnet_receptive_fields_at_imagenet_size(model: str, field: int) -> None:
    # The values usually quoted for ResNet-18 and -50 (theoretical, unclipped).
    with torch.device("meta"):
        net = build_model(model, in_channels=3, num_classes=1000, image_size=224)
        summary = summarize(net, (1, 3, 224, 224), depth=2)
    assert next(r for r in summary.layers if r.name == "stages.stage4").receptive_field == [
        field, field
    ]  # fmt: skip
