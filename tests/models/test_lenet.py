"""LeNet-5: the paper's parameter counts, input sizes and options."""

from __future__ import annotations

import pytest
import torch
from tests.models.conftest import raises_key

from cnnlab.models import build_model


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _lenet(**kwargs: object) -> torch.nn.Module:
    return build_model(
        "lenet5", **{"in_channels": 1, "num_classes": 10, "image_size": 32, **kwargs}
    )


def test_classic_parameter_count() -> None:
    # C1 156 + C3 2,416 + C5 48,120 + F6 10,164 + output 850.
    net = _lenet()
    assert _params(net) == 61_706
    assert _params(net.features.c3) == 2_416


def test_lecun_table_gives_1516_parameters_in_c3() -> None:
    net = _lenet(c3_table="lecun")
    assert _params(net.features.c3) == 1_516
    assert _params(net) == 61_706 - 2_416 + 1_516


def test_lecun_c3_map_reads_only_its_s2_maps() -> None:
    c3 = _lenet(c3_table="lecun").features.c3
    x = torch.randn(1, 6, 14, 14)
    y = x.clone()
    y[:, 3] += 1  # S2 map 3 feeds C3 maps 1, 2, 3 but not 0
    assert torch.equal(c3(x)[:, 0], c3(y)[:, 0])
    assert not torch.equal(c3(x)[:, 1], c3(y)[:, 1])


def test_trainable_subsampling_adds_two_parameters_per_map() -> None:
    net = _lenet(subsampling="trainable", c3_table="lecun")
    assert _params(net) == 61_706 - 2_416 + 1_516 + 2 * (6 + 16)
    assert _params(net.features.s2) == 12


@pytest.mark.parametrize("subsampling", ["max", "avg", "trainable"])
@pytest.mark.parametrize("size", [28, 32, (28, 32)])
def test_forward_on_mnist_and_paper_sizes(subsampling: str, size: object) -> None:
    net = _lenet(image_size=size, subsampling=subsampling)
    h, w = (size, size) if isinstance(size, int) else size
    x = torch.randn(2, 1, h, w)
    assert net.features[:2](x).shape[-2:] == (14, 14)  # C1 padded by 2 below 32
    assert net.features(x).shape == (2, 120, 1, 1)
    assert net(x).shape == (2, 10)


def test_larger_inputs_feed_all_c5_maps_to_f6() -> None:
    net = _lenet(image_size=64, in_channels=3, num_classes=5)
    assert net.classifier.f6.in_features == 120 * 9 * 9
    assert net(torch.randn(2, 3, 64, 64)).shape == (2, 5)


def test_too_small_images_say_the_minimum() -> None:
    with raises_key("data.image_size", "lenet5 needs inputs of at least 28x28"):
        _lenet(image_size=(27, 32))


@pytest.mark.parametrize(
    ("option", "key"), [("c3_table", "model.c3_table"), ("subsampling", "model.subsampling")]
)
def test_bad_options_name_their_key(option: str, key: str) -> None:
    with raises_key(key, "must be one of"):
        _lenet(**{option: "sparse"})


def test_norm_follows_c1_and_c3_and_dropout_precedes_fc() -> None:
    net = _lenet(norm="batch", dropout={"name": "standard", "rate": 0.5, "spatial": False})
    assert hasattr(net.features.c1, "norm") and hasattr(net.features.c3, "norm")
    assert not hasattr(net.features.c5, "norm")
    assert net.classifier.drop6.p == 0.5 and net.classifier.drop7.p == 0.5
