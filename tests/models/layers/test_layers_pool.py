"""Pooling helpers and channel shuffle."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.models.layers import ChannelShuffle, GlobalAvgPool, output_size, pool


@pytest.mark.parametrize(("kind", "cls"), [("max", nn.MaxPool2d), ("avg", nn.AvgPool2d)])
def test_pool_kinds_and_shapes(kind: str, cls: type) -> None:
    layer = pool(kind, 3, stride=2, padding=1)
    assert type(layer) is cls
    assert layer(torch.randn(1, 2, 9, 9)).shape[-1] == output_size(9, 3, 2, 1)
    assert pool(kind, 2)(torch.randn(1, 2, 9, 9)).shape[-1] == 4
    assert pool(kind, 2, ceil_mode=True)(torch.randn(1, 2, 9, 9)).shape[-1] == 5


def test_max_pool_takes_the_maximum() -> None:
    x = torch.arange(16.0).view(1, 1, 4, 4)
    assert pool("max", 2)(x).flatten().tolist() == [5.0, 7.0, 13.0, 15.0]


def test_unknown_pool_kind() -> None:
    with pytest.raises(ValueError, match="choose from max, avg"):
        pool("min", 2)


def test_global_avg_pool() -> None:
    x = torch.randn(2, 3, 4, 5)
    assert torch.allclose(GlobalAvgPool()(x), x.mean(dim=(2, 3)))
    assert GlobalAvgPool(flatten=False)(x).shape == (2, 3, 1, 1)


def test_channel_shuffle_interleaves_groups() -> None:
    x = torch.arange(6.0).view(1, 6, 1, 1)
    assert ChannelShuffle(2)(x).flatten().tolist() == [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    assert ChannelShuffle(3)(x).flatten().tolist() == [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]
    assert torch.equal(ChannelShuffle(2)(x), nn.ChannelShuffle(2)(x))


def test_channel_shuffle_errors() -> None:
    with pytest.raises(ValueError, match="do not divide 6 channels"):
        ChannelShuffle(4)(torch.zeros(1, 6, 1, 1))
    with pytest.raises(ValueError, match=">= 1"):
        ChannelShuffle(0)
