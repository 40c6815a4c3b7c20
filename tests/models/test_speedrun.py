"""airbench94: the speed-run network's layout, identity init, size check and training step."""

from __future__ import annotations

import pytest
import torch
from tests.models.conftest import raises_key
from torch import nn

from cnnlab.models import build_model, list_models


def test_layout_and_parameter_count() -> None:
    assert "airbench94" in list_models()
    net = build_model("airbench94", in_channels=3, num_classes=10, image_size=32)
    # airbench94's network: 1,972,792 parameters with learnable BN scales (theirs are frozen).
    assert sum(p.numel() for p in net.parameters()) == 1_972_792
    assert net.stem.conv.out_channels == 24 and net.stem.conv.kernel_size == (2, 2)
    assert net.fc.bias is None
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_convs_start_as_the_identity_on_their_inputs() -> None:
    net = build_model("airbench94", in_channels=3, num_classes=10, widths=[8, 16, 16])
    conv = net.features.group1.conv2.conv
    x = torch.randn(1, 8, 5, 5)
    assert torch.allclose(conv(x), x)
    plain = build_model(
        "airbench94", in_channels=3, num_classes=10, widths=[8, 16, 16], dirac_init=False
    )
    assert not torch.allclose(plain.features.group1.conv2.conv(x), x)


def test_logits_are_scaled() -> None:
    torch.manual_seed(0)
    net = build_model(
        "airbench94", in_channels=3, num_classes=10, widths=[4, 8, 8], logit_scale=1.0
    ).eval()
    torch.manual_seed(0)
    scaled = build_model(
        "airbench94", in_channels=3, num_classes=10, widths=[4, 8, 8], logit_scale=0.5
    ).eval()
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(scaled(x), net(x) * 0.5, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"image_size": 8}, "data.image_size"),
        ({"widths": []}, "model.widths"),
        ({"logit_scale": 0}, "model.logit_scale"),
    ],
)
def test_bad_options_name_their_key(options: dict, key: str) -> None:
    with raises_key(key):
        build_model("airbench94", in_channels=3, num_classes=10, **options)


def test_trains_one_step_with_layers_from_names() -> None:
    net = build_model(
        "airbench94",
        in_channels=3,
        num_classes=4,
        widths=[4, 8, 8],
        norm={"name": "group", "groups": 2},
        activation="relu",
    )
    assert any(isinstance(m, nn.GroupNorm) for m in net.modules())
    loss = nn.functional.cross_entropy(net(torch.randn(4, 3, 16, 16)), torch.arange(4))
    loss.backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)
