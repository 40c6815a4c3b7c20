"""Activation factory: every name, inplace, parameters and errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from tests.models.conftest import raises_key
from torch import nn

from cnnlab.models.layers import act_names, get_act, get_dropout, get_init, get_norm

# name -> (class, built in place by default)
ACTS = {
    "none": (nn.Identity, False),
    "relu": (nn.ReLU, True),
    "relu6": (nn.ReLU6, True),
    "leaky_relu": (nn.LeakyReLU, True),
    "elu": (nn.ELU, True),
    "gelu": (nn.GELU, False),
    "silu": (nn.SiLU, True),
    "hardswish": (nn.Hardswish, True),
    "tanh": (nn.Tanh, False),
    "sigmoid": (nn.Sigmoid, False),
}


def test_table_covers_every_name() -> None:
    assert sorted(ACTS) == act_names()


@pytest.mark.parametrize("name", sorted(ACTS))
def test_each_name_builds_its_layer(name: str) -> None:
    cls, inplace = ACTS[name]
    layer = get_act(name)()
    assert type(layer) is cls
    assert getattr(layer, "inplace", False) is inplace
    assert getattr(get_act(name, inplace=False)(), "inplace", False) is False
    x = torch.linspace(-3, 3, 7)
    assert torch.allclose(get_act(name, inplace=False)()(x), cls()(x))


def test_parameters_reach_the_layer() -> None:
    assert get_act({"name": "Leaky-ReLU", "negative_slope": 0.2})().negative_slope == 0.2
    assert get_act({"name": "elu", "alpha": 2})().alpha == 2.0
    assert get_act({"name": "gelu", "approximate": "tanh"})().approximate == "tanh"


def test_none_and_classes_pass_through() -> None:
    assert get_act(None) is nn.Identity
    assert get_act(nn.Mish) is nn.Mish


def test_unknown_name_lists_choices() -> None:
    with raises_key("activation.name", "unknown activation 'swish'.*silu"):
        get_act("swish")


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"name": "relu", "negative_slope": 0.1}, "activation.negative_slope"),
        ({"name": "elu", "alpha": "big"}, "activation.alpha"),
        ({"name": "gelu", "approximate": "fast"}, "activation.approximate"),
        ({"name": 5}, "activation.name"),
    ],
)
def test_bad_specs_name_their_key(spec: dict, key: str) -> None:
    with raises_key(key):
        get_act(spec)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize(
    ("factory", "spec", "key"),
    [
        (get_act, {"name": "elu"}, "activation.alpha"),
        (get_act, {"name": "leaky_relu"}, "activation.negative_slope"),
        (get_norm, {"name": "batch"}, "norm.eps"),
        (get_init, {"name": "normal"}, "init.std"),
        (get_dropout, {"name": "standard"}, "dropout.rate"),
    ],
)
def test_a_number_that_is_not_finite_names_its_key(
    factory: Callable[[dict], object], spec: dict, key: str, value: float
) -> None:
    # The layer factories are the only check of these groups' values (no schema entry).
    with raises_key(key, "must be a finite number"):
        factory({**spec, key.split(".")[1]: value})
