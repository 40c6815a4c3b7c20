"""Init schemes: each one sets the weight statistics it promises, through one loop."""

from __future__ import annotations

import math

import pytest
import torch
from tests.models.conftest import raises_key
from torch import nn

from cnnlab.models.layers import (
    TableConv2d,
    get_init,
    init_names,
    init_weights,
    nonlinearity_of,
)


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(16, 32, 3),
        nn.BatchNorm2d(32),
        nn.Flatten(),
        nn.Linear(512, 128),
        nn.LayerNorm(128),
    )
    with torch.no_grad():  # make the norm parameters visibly non-default
        for m in (net[1], net[4]):
            m.weight.uniform_(2, 3)
            m.bias.uniform_(2, 3)
    return net


def test_names() -> None:
    assert init_names() == [
        "default",
        "kaiming_normal",
        "kaiming_uniform",
        "normal",
        "orthogonal",
        "xavier_normal",
        "xavier_uniform",
    ]


@pytest.mark.parametrize("spec", [None, "default", {"name": "default"}])
def test_default_keeps_pytorch_init(spec: object) -> None:
    net = _net()
    before = [p.clone() for p in net.parameters()]
    init_weights(net, spec)
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))


@pytest.mark.parametrize("name", [n for n in init_names() if n != "default"])
def test_every_scheme_zeroes_biases_and_resets_norms(name: str) -> None:
    net = _net()
    before = net[0].weight.clone()
    init_weights(net, name)
    assert not torch.equal(before, net[0].weight)
    assert not net[0].bias.any() and not net[3].bias.any()
    for norm in (net[1], net[4]):
        assert torch.all(norm.weight == 1) and not norm.bias.any()


def test_orthogonal_rows_are_orthonormal() -> None:
    net = _net()
    init_weights(net, {"name": "orthogonal", "gain": 2.0})
    conv = net[0].weight.flatten(1)  # 32 rows of 16 * 9 = 144
    assert torch.allclose(conv @ conv.T, 4 * torch.eye(32), atol=1e-4)
    fc = net[3].weight  # 128 x 512
    assert torch.allclose(fc @ fc.T, 4 * torch.eye(128), atol=1e-4)


def test_normal_has_the_configured_std() -> None:
    layer = nn.Linear(400, 400)
    init_weights(layer, {"name": "normal", "mean": 0.0, "std": 0.05})
    assert layer.weight.std().item() == pytest.approx(0.05, rel=0.02)
    assert abs(layer.weight.mean().item()) < 0.002


@pytest.mark.parametrize(
    ("activation", "gain"),
    [
        ("relu", math.sqrt(2)),
        (None, math.sqrt(2)),
        ("gelu", math.sqrt(2)),
        ({"name": "leaky_relu", "negative_slope": 0.2}, math.sqrt(2 / 1.04)),
        ("tanh", 5 / 3),
        ("sigmoid", 1.0),
    ],
)
def test_kaiming_takes_gain_from_activation(activation: object, gain: float) -> None:
    layer = nn.Conv2d(64, 256, 3)  # fan_in 576
    init_weights(layer, "kaiming_normal", activation=activation)
    assert layer.weight.std().item() == pytest.approx(gain / math.sqrt(576), rel=0.03)


def test_kaiming_uniform_fan_out_and_explicit_nonlinearity() -> None:
    layer = nn.Conv2d(256, 64, 3)  # fan_out 576
    spec = {"name": "kaiming_uniform", "mode": "fan_out", "nonlinearity": "linear"}
    init_weights(layer, spec, activation="relu")
    bound = math.sqrt(3 / 576)  # gain 1 for linear
    assert layer.weight.abs().max().item() <= bound
    assert layer.weight.abs().max().item() > 0.95 * bound


def test_xavier_normal_std() -> None:
    layer = nn.Linear(300, 500)
    init_weights(layer, "xavier_normal")
    assert layer.weight.std().item() == pytest.approx(math.sqrt(2 / 800), rel=0.03)


def test_table_conv_initialises_only_its_connections() -> None:
    layer = TableConv2d(4, [(0, 1), (1, 2, 3)], 3)
    init_weights(layer, {"name": "normal", "std": 1.0})
    assert layer.weight.shape == (5, 3, 3) and layer.weight.std() > 0.5
    dense = layer.dense_weight()
    assert not dense[0, 2:].any() and not dense[1, 0].any()
    assert not layer.bias.any()


def test_nonlinearity_of() -> None:
    assert nonlinearity_of({"name": "leaky_relu", "negative_slope": 0.3}) == ("leaky_relu", 0.3)
    assert nonlinearity_of("none") == ("linear", 0.0)
    assert nonlinearity_of(nn.SiLU) == ("relu", 0.0)


def test_callable_spec_is_applied() -> None:
    layer = nn.Linear(3, 3)
    init_weights(layer, nn.init.ones_)
    assert torch.all(layer.weight == 1)
    assert get_init(nn.init.zeros_) is nn.init.zeros_


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ("he", "init.name"),
        ({"name": "kaiming_normal", "mode": "fan_avg"}, "init.mode"),
        ({"name": "kaiming_normal", "nonlinearity": "gelu"}, "init.nonlinearity"),
        ({"name": "normal", "std": 0}, "init.std"),
        ({"name": "orthogonal", "gain": -1}, "init.gain"),
        ({"name": "xavier_uniform", "std": 0.1}, "init.std"),
    ],
)
def test_bad_specs_name_their_key(spec: object, key: str) -> None:
    with raises_key(key):
        init_weights(nn.Linear(2, 2), spec)
