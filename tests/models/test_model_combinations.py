"""Every shipped norm x activation x init option builds each model and trains one step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from cnnlab.models import build_model

CONF = Path(__file__).resolve().parents[2] / "conf"


def _options(group: str) -> list[str]:
    return sorted(path.stem for path in (CONF / group).glob("*.yaml"))


def _spec(group: str, name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF / group / f"{name}.yaml"))  # type: ignore[return-value]


# Tiny settings so each case runs in milliseconds.
MODELS = {
    "lenet5": ({"image_size": 28}, (2, 1, 28, 28)),
    "simple_cnn": ({"image_size": 8, "widths": [4, 8], "convs_per_stage": 1}, (2, 1, 8, 8)),
}


@pytest.mark.parametrize("init", _options("init"))
@pytest.mark.parametrize("activation", _options("activation"))
@pytest.mark.parametrize("norm", _options("norm"))
@pytest.mark.parametrize("model", sorted(MODELS))
def test_builds_and_backpropagates(model: str, norm: str, activation: str, init: str) -> None:
    torch.manual_seed(0)
    options, shape = MODELS[model]
    net = build_model(
        model,
        in_channels=1,
        num_classes=3,
        norm=_spec("norm", norm),
        activation=_spec("activation", activation),
        init=_spec("init", init),
        dropout=_spec("dropout", "spatial"),
        **options,
    )
    out = net(torch.randn(*shape))
    assert out.shape == (2, 3) and torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 2])).backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
