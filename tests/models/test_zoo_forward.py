"""Every zoo model x every norm trains two steps on MNIST- and CIFAR-shaped batches; stems,
options and their errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import OmegaConf
from tests.models.conftest import raises_key

from cnnlab.models import build_model, list_models

CONF = Path(__file__).resolve().parents[2] / "conf"

# Smallest widths each family allows, so that one case takes well under a second.
TINY: dict[str, dict[str, Any]] = {
    "alexnet": {"width_mult": 0.05, "fc_width": 16, "towers": 2},
    "vgg11": {"width": 8, "fc_width": 8},
    "vgg13": {"width": 8, "fc_width": 8},
    "vgg16": {"width": 8, "fc_width": 8},
    "vgg19": {"width": 8, "fc_width": 8},
    "googlenet": {"width_mult": 0.05, "aux_logits": True},
    "resnet18": {"base_width": 4},
    "resnet34": {"base_width": 4},
    "resnet50": {"base_width": 4},
    "densenet121": {"growth_rate": 2, "init_features": 4},
    "densenet169": {"growth_rate": 2, "init_features": 4},
    "densenet_bc": {"depth": 10, "growth_rate": 8},
    "mobilenet_v1": {"width_mult": 0.25},
    "mobilenet_v2": {"width_mult": 0.1},
    "shufflenet_v1": {"scale": 0.5, "groups": 2},
    "searchable": {"width": 4, "depth": [1, 2, 1], "conv": ["plain", "separable", "dilated"]},
}
NORMS = sorted(path.stem for path in (CONF / "norm").glob("*.yaml"))
SHAPES = {"mnist": (1, 28), "cifar": (3, 32)}
# 58 and 82 dense layers even at growth rate 2: one case each in the fast suite, the rest slow.
DEEP = {"densenet121", "densenet169"}
CASES = [
    pytest.param(
        model,
        norm,
        shape,
        marks=[pytest.mark.slow] if model in DEEP and (norm, shape) != ("batch", "mnist") else [],
        id=f"{model}-{norm}-{shape}",
    )
    for model in sorted(TINY)
    for norm in NORMS
    for shape in sorted(SHAPES)
]


def _norm(name: str) -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(CONF / "norm" / f"{name}.yaml"))  # type: ignore[return-value]


def test_every_zoo_model_has_tiny_settings_and_a_config() -> None:
    # airbench94 is the speed run's network (tests/models/test_speedrun.py), not a zoo family.
    zoo = set(list_models()) - {"lenet5", "simple_cnn", "airbench94"}
    assert zoo == set(TINY)
    for name in zoo:
        cfg = OmegaConf.load(CONF / "model" / f"{name}.yaml")
        assert cfg.name == name and cfg.stem == "auto"
        assert (CONF / "experiment" / f"digits_{name}.yaml").is_file()


@pytest.mark.parametrize(("model", "norm", "shape"), CASES)
def test_trains_two_steps(model: str, norm: str, shape: str) -> None:
    torch.manual_seed(0)
    channels, side = SHAPES[shape]
    net = build_model(
        model,
        in_channels=channels,
        num_classes=3,
        image_size=side,
        norm=_norm(norm),
        dropout={"name": "spatial", "rate": 0.1, "spatial": True},
        **TINY[model],
    )
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = torch.randn(2, channels, side, side), torch.tensor([0, 2])
    before = [p.detach().clone() for p in net.parameters()]
    for _ in range(2):
        optimizer.zero_grad()
        scores = net(x)
        assert scores.shape == (2, 3)
        loss = torch.nn.functional.cross_entropy(scores, y)
        loss.backward()
        optimizer.step()
    assert torch.isfinite(loss)
    # Not every tensor need move (a 4-channel VGG-19 can lose all ReLUs of a layer), but the
    # classifier always does.
    changed = [not torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True)]
    assert changed[-1] and all(torch.isfinite(p).all() for p in net.parameters())


def test_group_norm_that_does_not_divide_a_width_names_norm_groups() -> None:
    # scale 0.25 with g = 3 gives 15-channel bottlenecks: 2 groups cannot split them.
    with raises_key("norm.groups", ".*15 channels"):
        build_model("shufflenet_v1", in_channels=3, num_classes=10, image_size=32,
                    norm={"name": "group", "groups": 2}, scale=0.25)  # fmt: skip


@pytest.mark.parametrize(
    ("model", "options", "first_conv"),
    [
        ("resnet18", {}, "stem.conv.conv"),
        ("densenet121", {}, "features.stem.conv"),
        ("mobilenet_v1", {}, "features.stem.conv"),
        ("shufflenet_v1", {}, "features.stem.conv"),
        ("alexnet", {}, "features.conv1.conv"),
        ("googlenet", {}, "stem.conv1.conv"),
        ("searchable", {}, "features.stem.conv"),
    ],
)
def test_stem_follows_the_input_size_unless_forced(
    model: str, options: dict[str, Any], first_conv: str
) -> None:
    def stride_of(**kwargs: Any) -> int:
        with torch.device("meta"):
            net = build_model(model, in_channels=3, num_classes=10, **options, **kwargs)
        return dict(net.named_modules())[first_conv].stride[0]

    assert stride_of(image_size=32) == 1
    assert stride_of(image_size=64) == 1
    assert stride_of(image_size=96) > 1
    assert stride_of(image_size=224) > 1
    assert stride_of(image_size=32, stem="imagenet") > 1
    assert stride_of(image_size=224, stem="small") == 1


def test_vgg_stem_option_picks_the_head() -> None:
    with torch.device("meta"):
        small = build_model("vgg11", in_channels=3, num_classes=10, image_size=32)
        large = build_model("vgg11", in_channels=3, num_classes=10, image_size=32, stem="imagenet")
    assert small.classifier.fc1.in_features == 512 and small.classifier.fc1.out_features == 512
    assert large.classifier.fc1.in_features == 512 * 7 * 7
    assert large.classifier.fc1.out_features == 4096


def test_small_stems_keep_maps_for_28_pixel_inputs() -> None:
    # Each would fail (maps below 1x1) or waste most of the input with the ImageNet stem.
    for model in ("alexnet", "vgg19", "resnet18", "shufflenet_v1", "mobilenet_v2"):
        net = build_model(model, in_channels=1, num_classes=10, image_size=28, **TINY[model])
        assert net(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_alexnet_two_towers_group_conv2_conv4_conv5() -> None:
    with torch.device("meta"):
        net = build_model("alexnet", in_channels=3, num_classes=1000, towers=2)
    groups = {name: m.groups for name, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)}
    assert [groups[f"features.conv{i}.conv"] for i in range(1, 6)] == [1, 2, 1, 2, 2]


def test_googlenet_aux_scores_only_in_training() -> None:
    net = build_model("googlenet", in_channels=3, num_classes=5, image_size=32,
                      aux_logits=True, width_mult=0.05)  # fmt: skip
    net.train()(torch.randn(2, 3, 32, 32))
    assert [s.shape for s in net.aux_scores] == [(2, 5), (2, 5)]
    net.eval()(torch.randn(2, 3, 32, 32))
    assert net.aux_scores == []


def test_searchable_stage_table() -> None:
    net = build_model("searchable", in_channels=1, num_classes=10, image_size=28, width=8,
                      num_stages=2, depth=[1, 3], kernel_size=5, conv=["dilated", "separable"],
                      skip=[False, True])  # fmt: skip
    assert net.stage_specs == [
        {"depth": 1, "width": 8, "kernel_size": 5, "conv": "dilated", "skip": False},
        {"depth": 3, "width": 16, "kernel_size": 5, "conv": "separable", "skip": True},
    ]
    stage2 = net.features.stage2
    assert stage2.block1.shortcut is not None and stage2.block1.body.depthwise.kernel_size == (5, 5)
    assert net.features.stage1.block1.body.conv.dilation == (2, 2)
    assert net.features.stage1.block1.shortcut is None
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("model", "options", "key"),
    [
        ("resnet18", {"stem": "cifar"}, "model.stem"),
        ("resnet18", {"base_width": 0}, "model.base_width"),
        ("alexnet", {"towers": 3}, "model.towers"),
        ("alexnet", {"lrn": "yes"}, "model.lrn"),
        ("vgg16", {"fc_width": -1}, "model.fc_width"),
        ("googlenet", {"branch5_kernel": 7}, "model.branch5_kernel"),
        ("densenet_bc", {"depth": 99}, "model.depth"),
        ("densenet121", {"growth_rate": 0}, "model.growth_rate"),
        ("mobilenet_v2", {"width_mult": 0}, "model.width_mult"),
        ("shufflenet_v1", {"groups": 5}, "model.groups"),
        ("shufflenet_v1", {"scale": -0.5}, "model.scale"),
        ("searchable", {"depth": [1, 2]}, "model.depth"),
        ("searchable", {"depth": 0}, "model.depth"),
        ("searchable", {"conv": "deformable"}, "model.conv"),
        ("searchable", {"kernel_size": [3, 4, 3]}, "model.kernel_size"),
        ("searchable", {"skip": "sometimes"}, "model.skip"),
        ("searchable", {"widths": [8, 16]}, "model.widths"),
        ("searchable", {"width_growth": 0}, "model.width_growth"),
        ("searchable", {"num_stages": 0}, "model.num_stages"),
        ("vgg11", {"depth": 3}, "model.depth"),
    ],
)
def test_bad_options_name_their_key(model: str, options: dict[str, Any], key: str) -> None:
    with raises_key(key), torch.device("meta"):
        build_model(model, in_channels=3, num_classes=10, image_size=32, **options)
