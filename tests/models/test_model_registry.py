"""Registry and build_model: names, options, the shipped configs and the errors users can hit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from tests.conftest import quick
from tests.models.conftest import raises_key
from torch import nn

from cnnlab.models import build_model, image_hw, list_models, register_model
from cnnlab.models import registry as registry_module

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_list_models_with_pattern() -> None:
    assert {"lenet5", "simple_cnn"} <= set(list_models())
    assert list_models("lenet*") == ["lenet5"]
    assert list_models("nothing*") == []


def test_register_rejects_duplicates(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry_module, "_MODELS", dict(registry_module._MODELS))

    def tiny(*, in_channels: int, num_classes: int, width: int = 2) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_channels, width, 1), nn.Flatten(), nn.LazyLinear(num_classes)
        )

    assert register_model(tiny) is tiny
    assert build_model("tiny", in_channels=1, num_classes=3, width=4)[0].out_channels == 4
    with pytest.raises(ValueError, match="'tiny' is already registered"):
        register_model(tiny)


def test_unknown_model_lists_choices() -> None:
    with raises_key("model.name", "unknown model 'lenet'; choose from .*lenet5"):
        build_model("lenet", in_channels=1, num_classes=10)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"in_channels": 0, "num_classes": 10}, "model.in_channels"),
        ({"in_channels": 1, "num_classes": "ten"}, "model.num_classes"),
        ({"in_channels": 1, "num_classes": 10, "image_size": [28]}, "data.image_size"),
        ({"in_channels": 1, "num_classes": 10, "image_size": -3}, "data.image_size"),
        ({"in_channels": 1, "num_classes": 10, "depth": 3}, "model.depth"),
        ({"in_channels": 1, "num_classes": 10, "widths": [8]}, "model.widths"),
    ],
)
def test_bad_arguments_name_their_key(kwargs: dict, key: str) -> None:
    with raises_key(key):
        build_model("lenet5", **kwargs)


def test_image_hw() -> None:
    assert image_hw(28) == (28, 28)
    assert image_hw(OmegaConf.create([28, 32])) == (28, 32)


def _root(model: str, **groups: str) -> object:
    """The slice of the root config that a model node interpolates, from the real files."""
    chosen = {"norm": "none", "activation": "relu", "init": "default", "dropout": "none"}
    chosen.update(groups)
    root = {group: OmegaConf.load(CONF / group / f"{name}.yaml") for group, name in chosen.items()}
    root["data"] = {"in_channels": 1, "num_classes": 10, "image_size": 28}
    root["model"] = OmegaConf.load(CONF / "model" / f"{model}.yaml")
    return OmegaConf.create(root)


@pytest.mark.parametrize("model", ["lenet5", "simple_cnn"])
def test_model_configs_instantiate(model: str) -> None:
    cfg = _root(
        model, norm="group", activation="leaky_relu", init="kaiming_normal", dropout="spatial"
    )
    net = instantiate(cfg.model)
    assert net(torch.randn(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize("group", ["norm", "activation", "init", "dropout"])
def test_every_group_option_builds(group: str) -> None:
    for path in sorted((CONF / group).glob("*.yaml")):
        cfg = _root("lenet5", **{group: path.stem})
        assert cfg[group].name == path.stem
        assert isinstance(instantiate(cfg.model), nn.Module)


@pytest.mark.parametrize(
    ("name", "has_batch_norm"), [("resnet18", True), ("mobilenet_v2", True), ("lenet5", False)]
)
def test_reference_norm_is_the_papers_choice(name: str, has_batch_norm: bool) -> None:
    reference = {"name": "reference"}
    net = build_model(name, in_channels=1, num_classes=10, image_size=32, norm=reference)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules()) == has_batch_norm


@pytest.mark.parametrize(
    ("overrides", "line"),
    [
        (
            ["model=resnet18", "model.stem=cifar"],
            "model.stem: must be one of auto, imagenet, small",
        ),
        (["model=densenet_bc", "model.depth=99"], "model.depth: must be 6n + 4"),
        (["model=lenet5", "+model.depth=3"], "model.depth: is not an option of model 'lenet5'"),
    ],
)
def test_a_bad_model_option_is_one_line_naming_its_key(
    run_subprocess, overrides: list[str], line: str
) -> None:
    # Model code raises a plain ValueError/TypeError; the task layer names the key.
    result = run_subprocess("train", *quick(*overrides), timeout=120)
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [x for x in result.stderr.splitlines() if "error:" in x]
    assert len(errors) == 1 and f"error: {line}" in errors[0], errors
    assert "Traceback" not in result.stderr
