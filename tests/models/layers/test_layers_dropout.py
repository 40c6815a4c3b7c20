"""Dropout factory: FC and conv sites, spatial dropout, and rate checks."""

from __future__ import annotations

import re

import pytest
import torch
from tests.models.conftest import raises_key
from torch import nn

from cnnlab.models.layers import dropout_names, get_dropout

STANDARD = {"name": "standard", "rate": 0.3, "spatial": False}
SPATIAL = {"name": "spatial", "rate": 0.2, "spatial": True}


def test_names() -> None:
    assert dropout_names() == ["none", "spatial", "standard"]


@pytest.mark.parametrize("spec", [None, "none", {"name": "none", "rate": 0.0, "spatial": False}])
def test_no_dropout_is_identity_at_both_sites(spec: object) -> None:
    assert get_dropout(spec)().__class__ is nn.Identity
    assert get_dropout(spec, conv=True)().__class__ is nn.Identity


def test_standard_drops_units_before_fc_only() -> None:
    layer = get_dropout(STANDARD)()
    assert type(layer) is nn.Dropout and layer.p == 0.3
    assert type(get_dropout(STANDARD, conv=True)()) is nn.Identity
    assert get_dropout("standard")().p == 0.5
    assert get_dropout(0.25)().p == 0.25


def test_spatial_drops_whole_maps_at_conv_sites() -> None:
    assert type(get_dropout(SPATIAL)()) is nn.Dropout
    layer = get_dropout({**SPATIAL, "rate": 0.5}, conv=True)()
    assert type(layer) is nn.Dropout2d
    out = layer.train()(torch.ones(4, 16, 3, 3))
    per_map = out.flatten(2)
    # Every map is either all zero or all scaled by 1 / (1 - p).
    assert torch.all((per_map == 0).all(-1) | (per_map == 2).all(-1))
    assert (per_map == 0).any() and (per_map == 2).any()


@pytest.mark.parametrize(
    ("spec", "key", "fragment"),
    [
        ({**STANDARD, "rate": 1.0}, "dropout.rate", "[0, 1)"),
        ({**STANDARD, "rate": -0.1}, "dropout.rate", "[0, 1)"),
        ({**STANDARD, "rate": "half"}, "dropout.rate", "must be float"),
        ({"name": "none", "rate": 0.3}, "dropout.rate", "dropout=standard"),
        ({**STANDARD, "spatial": True}, "dropout.spatial", "dropout=spatial"),
        ({**SPATIAL, "spatial": False}, "dropout.spatial", "dropout=standard"),
        ({"name": "alpha"}, "dropout.name", "choose from none, spatial, standard"),
        ({**STANDARD, "p": 0.1}, "dropout.p", "not a parameter"),
        (1.5, "dropout.rate", "[0, 1)"),
        (True, "dropout", "expected a rate"),
    ],
)
def test_bad_specs_name_their_key(spec: object, key: str, fragment: str) -> None:
    with raises_key(key, f".*{re.escape(fragment)}"):
        get_dropout(spec)
