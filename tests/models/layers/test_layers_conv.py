"""Conv helper: the output-size rule, every conv kind, padding modes and errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from cnnlab.models.layers import CONV_KINDS, TableConv2d, conv, output_size, same_padding


@pytest.mark.parametrize(
    ("i", "k", "s", "p", "d", "o"),
    [
        (4, 3, 1, 0, 1, 2),  # valid: no padding, unit stride
        (5, 3, 1, 1, 1, 5),  # same: half padding
        (5, 3, 2, 0, 1, 2),  # strided
        (7, 3, 1, 0, 2, 3),  # dilated
    ],
)
def test_output_size_matches_the_material(i: int, k: int, s: int, p: int, d: int, o: int) -> None:
    assert output_size(i, k, s, p, d) == o
    conv2d = nn.Conv2d(1, 1, k, s, p, d)
    assert conv2d(torch.zeros(1, 1, i, i)).shape[-1] == o


def test_output_size_below_one_when_kernel_does_not_fit() -> None:
    assert output_size(2, 5) < 1


# Channel counts each kind accepts: (in, out, groups).
CHANNELS = {
    "standard": (4, 6, 1),
    "grouped": (4, 6, 2),
    "depthwise": (4, 8, 1),
    "pointwise": (4, 6, 2),
    "separable": (4, 6, 1),
}


@pytest.mark.parametrize("kind", CONV_KINDS)
@pytest.mark.parametrize(
    ("k", "s", "d", "padding"),
    [(3, 1, 1, 0), (3, 1, 1, 1), (3, 2, 1, 0), (3, 1, 2, 0), (5, 2, 1, 2), (3, 2, 2, 3)],
)
def test_each_kind_gives_the_predicted_shape(
    kind: str, k: int, s: int, d: int, padding: int
) -> None:
    cin, cout, groups = CHANNELS[kind]
    k = 1 if kind == "pointwise" else k
    block = conv(cin, cout, k, stride=s, padding=padding, dilation=d, kind=kind, groups=groups)
    out = block(torch.randn(2, cin, 11, 9))
    expected = tuple(output_size(n, k, s, padding, d) for n in (11, 9))
    assert out.shape == (2, cout, *expected)


@pytest.mark.parametrize("kind", CONV_KINDS)
@pytest.mark.parametrize(("k", "s", "d"), [(3, 1, 1), (3, 2, 1), (2, 1, 1), (4, 2, 1), (3, 3, 2)])
def test_same_padding_gives_ceil_input_over_stride(kind: str, k: int, s: int, d: int) -> None:
    cin, cout, groups = CHANNELS[kind]
    k = 1 if kind == "pointwise" else k
    block = conv(cin, cout, k, stride=s, dilation=d, kind=kind, groups=groups)
    for size in (7, 8):
        assert block(torch.randn(1, cin, size, size)).shape[-1] == math.ceil(size / s)


def test_valid_padding_is_zero() -> None:
    assert conv(1, 1, 3, padding="valid")(torch.zeros(1, 1, 4, 4)).shape[-1] == 2


def test_same_padding_split() -> None:
    assert same_padding(3) == (1, 1)
    assert same_padding(4) == (1, 2)
    assert same_padding(3, d=2) == (2, 2)


@pytest.mark.parametrize(
    ("kind", "groups", "weights"),
    [
        ("standard", 1, 8 * 16 * 9),
        ("grouped", 4, 16 * (8 // 4) * 9),  # each output sees in/groups inputs
        ("depthwise", 1, 16 * 1 * 9),  # depth multiplier 2: one 3x3 kernel per output
        ("separable", 1, 8 * 9 + 8 * 16),  # depthwise 3x3, then pointwise 1x1
    ],
)
def test_weight_counts_per_kind(kind: str, groups: int, weights: int) -> None:
    block = conv(8, 16, 3, kind=kind, groups=groups, bias=False)
    assert sum(p.numel() for p in block.parameters()) == weights


def test_grouped_output_sees_only_its_group() -> None:
    block = conv(4, 4, 1, kind="grouped", groups=2)
    x = torch.randn(1, 4, 3, 3)
    y = x.clone()
    y[:, 2:] += 1  # change the second group's inputs only
    assert torch.equal(block(x)[:, :2], block(y)[:, :2])
    assert not torch.equal(block(x)[:, 2:], block(y)[:, 2:])


def test_bias_off_when_a_norm_follows() -> None:
    block = conv(3, 8, 3, norm="batch", act="relu")
    assert [n for n, _ in block.named_children()] == ["conv", "norm", "act"]
    assert block.conv.bias is None
    assert conv(3, 8, 3, norm="none").conv.bias is not None
    assert conv(3, 8, 3, norm="batch", bias=True).conv.bias is not None
    assert [n for n, _ in conv(3, 8, 3, kind="separable").named_children()] == [
        "depthwise",
        "pointwise",
    ]


def test_block_records_channels_and_stride() -> None:
    block = conv(3, 8, 3, stride=2)
    assert (block.in_channels, block.out_channels, block.stride) == (3, 8, (2, 2))


def test_even_same_kernel_adds_a_pad_layer() -> None:
    block = conv(1, 1, 2)
    assert isinstance(block.pad, nn.ZeroPad2d)


def test_table_conv_reads_only_listed_inputs() -> None:
    layer = TableConv2d(4, [(0, 1), (2, 3), (0, 1, 2, 3)], 3, padding=1)
    assert sum(p.numel() for p in layer.parameters()) == 8 * 9 + 3
    x = torch.randn(1, 4, 5, 5)
    y = x.clone()
    y[:, 2:] += 1
    assert torch.equal(layer(x)[:, 0], layer(y)[:, 0])
    assert not torch.equal(layer(x)[:, 1], layer(y)[:, 1])
    layer(x).sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"kind": "shuffle"}, "unknown conv kind"),
        ({"kind": "pointwise"}, "1x1 kernel"),
        ({"kind": "standard", "groups": 2}, "kind='grouped'"),
        ({"kind": "grouped", "groups": 3}, "must divide"),
        ({"padding": "full"}, "padding must be"),
        ({"padding": -1}, "padding must be >= 0"),
        ({"stride": 0}, "must be >= 1"),
        ({"connections": [(0,)]}, "one row per output map"),
    ],
)
def test_bad_arguments_raise_value_error(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        conv(4, 6, 3, **kwargs)


def test_depthwise_needs_a_multiple_of_inputs() -> None:
    with pytest.raises(ValueError, match="multiple of in_channels"):
        conv(4, 6, 3, kind="depthwise")


def test_table_naming_missing_input_raises() -> None:
    with pytest.raises(ValueError, match=r"input maps 0\.\.1"):
        TableConv2d(2, [(0, 2)], 3)
