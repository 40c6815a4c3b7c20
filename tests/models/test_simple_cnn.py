"""simple_cnn: stages from widths, size checks, dropout sites."""

from __future__ import annotations

import pytest
import torch
from tests.models.conftest import raises_key
from torch import nn

from cnnlab.models import build_model


def _cnn(**kwargs: object) -> nn.Module:
    return build_model("simple_cnn", **{"in_channels": 3, "num_classes": 10, **kwargs})


def test_stages_follow_widths() -> None:
    net = _cnn(widths=[8, 16, 32], convs_per_stage=1, image_size=32)
    assert [s.conv1.out_channels for s in net.features] == [8, 16, 32]
    assert net.features(torch.randn(2, 3, 32, 32)).shape == (2, 32, 4, 4)
    # 3x3 convs with biases (no norm) and the classifier.
    weights = (3 * 8 + 8 * 16 + 16 * 32) * 9 + 8 + 16 + 32 + 32 * 10 + 10
    assert sum(p.numel() for p in net.parameters()) == weights


def test_default_widths_forward() -> None:
    net = _cnn(image_size=28, in_channels=1)
    assert len(net.features) == 2 and len(net.features[0]) == 4  # 2 convs, pool, dropout
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_spatial_dropout_after_stages() -> None:
    net = _cnn(dropout={"name": "spatial", "rate": 0.2, "spatial": True})
    assert all(type(s.drop) is nn.Dropout2d for s in net.features)
    assert type(net.classifier.drop) is nn.Dropout
    plain = _cnn(dropout="standard")
    assert all(type(s.drop) is nn.Identity for s in plain.features)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"widths": []}, "model.widths"),
        ({"widths": [8, 0]}, "model.widths"),
        ({"widths": "32"}, "model.widths"),
        ({"convs_per_stage": 0}, "model.convs_per_stage"),
        ({"widths": [8, 8, 8, 8], "image_size": 8}, "data.image_size"),
    ],
)
def test_bad_options_name_their_key(kwargs: dict, key: str) -> None:
    with raises_key(key):
        _cnn(**kwargs)
