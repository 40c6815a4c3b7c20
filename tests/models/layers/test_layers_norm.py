"""Norm factory: every name, parameters, pass-through and the errors users can hit."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from omegaconf import OmegaConf
from tests.models.conftest import raises_key
from torch import nn

from cnnlab.models.layers import (
    GroupNorm2d,
    InstanceNorm2d,
    LayerNorm2d,
    get_norm,
    get_norm1d,
    norm_names,
)

# name -> (2-D class, number of GroupNorm groups for 8 channels or None)
NORMS = {
    "none": (nn.Identity, None),
    "batch": (nn.BatchNorm2d, None),
    "layer": (LayerNorm2d, 1),
    "instance": (InstanceNorm2d, 8),
    "group": (GroupNorm2d, 2),
}


def test_table_covers_every_name() -> None:
    assert sorted(NORMS) == norm_names()


@pytest.mark.parametrize("name", sorted(NORMS))
def test_each_name_builds_its_layer(name: str) -> None:
    cls, groups = NORMS[name]
    layer = get_norm(name)(8)
    assert type(layer) is cls
    if groups is not None:
        assert layer.num_groups == groups and layer.num_channels == 8 and layer.affine
    assert layer(torch.randn(2, 8, 4, 4)).shape == (2, 8, 4, 4)


def test_statistics_sets_differ_as_the_material_says() -> None:
    x = torch.randn(3, 4, 5, 5) * 3 + 2
    layer = get_norm("layer")(4)(x)
    instance = get_norm("instance")(4)(x)
    batch = get_norm("batch")(4).train()(x)
    # layer: each sample over (C, H, W); instance: each sample and channel over (H, W);
    # batch: each channel over (N, H, W).
    assert torch.allclose(layer.mean(dim=(1, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(instance.mean(dim=(2, 3)), torch.zeros(3, 4), atol=1e-5)
    assert torch.allclose(batch.mean(dim=(0, 2, 3)), torch.zeros(4), atol=1e-5)
    assert not torch.allclose(layer.mean(dim=(2, 3)), torch.zeros(3, 4), atol=1e-3)


def test_mapping_parameters_reach_the_layer() -> None:
    batch = get_norm({"name": "batch", "eps": 1e-3, "momentum": 0.2})(4)
    assert (batch.eps, batch.momentum) == (1e-3, 0.2)
    group = get_norm(OmegaConf.create({"name": "Group", "groups": 4, "eps": 1}))(8)
    assert (group.num_groups, group.eps) == (4, 1.0)


def test_null_parameter_keeps_the_default() -> None:
    assert get_norm({"name": "group", "groups": None})(6).num_groups == 2


def test_none_class_and_partial_pass_through() -> None:
    assert isinstance(get_norm(None)(4), nn.Identity)
    assert get_norm(nn.BatchNorm2d) is nn.BatchNorm2d
    factory = partial(nn.GroupNorm, 2)
    assert get_norm(factory) is factory


def test_group_not_dividing_names_key_and_channels() -> None:
    factory = get_norm({"name": "group", "groups": 8})
    with raises_key("norm.groups", "8 does not divide the 6 channels") as err:
        factory(6)
    assert "1, 2, 3, 6" in str(err.value)


def test_unknown_name_lists_choices() -> None:
    with raises_key("norm.name", "unknown norm 'bn'; choose from batch, "):
        get_norm("bn")


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({"name": "batch", "groups": 2}, "norm.groups"),
        ({"name": "group", "groups": "two"}, "norm.groups"),
        ({"name": "group", "groups": 2.0}, "norm.groups"),
        ({"name": "group", "groups": 0}, "norm.groups"),
        ({"name": "layer", "eps": True}, "norm.eps"),
        ({"name": "layer", "eps": 0}, "norm.eps"),
        ({"name": "batch", "momentum": 1.5}, "norm.momentum"),
        ({"groups": 2}, "norm.name"),
        (3, "norm"),
    ],
)
def test_bad_specs_name_their_key(spec: object, key: str) -> None:
    with raises_key(key):
        get_norm(spec)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("none", nn.Identity),
        ("batch", nn.BatchNorm1d),
        ("layer", LayerNorm2d),
        ("instance", nn.Identity),
        ("group", GroupNorm2d),
    ],
)
def test_1d_variant_works_on_fc_features(name: str, cls: type) -> None:
    layer = get_norm1d(name)(6)
    assert type(layer) is cls
    assert layer(torch.randn(4, 6)).shape == (4, 6)
