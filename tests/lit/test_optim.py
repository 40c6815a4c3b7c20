"""Optimizers and schedules built from the config groups behave as configured."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from cnnlab.config import config_dir
from cnnlab.errors import ConfigError
from cnnlab.lit.optim import build_optimizer, build_scheduler

OPTIMIZERS = sorted(p.stem for p in (config_dir() / "optimizer").glob("*.yaml"))
SCHEDULERS = sorted(p.stem for p in (config_dir() / "scheduler").glob("*.yaml"))


def _group(group: str, name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(Path(config_dir(), group, f"{name}.yaml")))


def _params() -> list[torch.nn.Parameter]:
    return [torch.nn.Parameter(torch.ones(3))]


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_config_builds_and_steps(name: str) -> None:
    params = _params()
    optimizer = build_optimizer(_group("optimizer", name), params)
    params[0].sum().backward()
    optimizer.step()
    assert not torch.equal(params[0].detach(), torch.ones(3))
    assert optimizer.param_groups[0]["weight_decay"] == _group("optimizer", name)["weight_decay"]


@pytest.mark.parametrize(("lr", "key"), [(-0.1, "optimizer.lr"), (0.0, "optimizer.lr")])
def test_non_positive_learning_rate_is_rejected(lr: float, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        build_optimizer({**_group("optimizer", "sgd"), "lr": lr}, _params())


def _lrs(cfg: dict, steps: int = 40, per_epoch: int = 4) -> list[float]:
    optimizer = torch.optim.SGD(_params(), lr=1.0)
    schedule = build_scheduler(
        cfg, optimizer, steps_per_epoch=per_epoch, total_steps=steps, monitor="val/acc", mode="max"
    )
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if schedule is not None and schedule["interval"] == "step":
            schedule["scheduler"].step()
    return lrs


@pytest.mark.parametrize("name", SCHEDULERS)
def test_every_scheduler_config_builds(name: str) -> None:
    assert len(_lrs(_group("scheduler", name))) == 40


def test_warmup_ramps_linearly_then_follows_the_schedule() -> None:
    lrs = _lrs({"name": "cosine", "eta_min": 0.0, "warmup_epochs": 2})
    warmup = lrs[:8]
    assert warmup == sorted(warmup) and warmup[0] == pytest.approx(1 / 8)
    assert lrs[8] == pytest.approx(1.0)
    assert lrs[-1] < 0.05


def test_step_schedule_counts_epochs() -> None:
    lrs = _lrs({"name": "step", "step_size": 2, "gamma": 0.1, "warmup_epochs": 0})
    assert lrs[7] == pytest.approx(1.0) and lrs[8] == pytest.approx(0.1)


def test_onecycle_peaks_at_the_configured_lr() -> None:
    lrs = _lrs(_group("scheduler", "onecycle"))
    assert max(lrs) == pytest.approx(1.0, rel=1e-3)
    assert lrs[0] < 0.1 and lrs[-1] < 1e-3


def test_plateau_steps_per_epoch_on_the_monitor() -> None:
    optimizer = torch.optim.SGD(_params(), lr=1.0)
    schedule = build_scheduler(
        _group("scheduler", "plateau"),
        optimizer,
        steps_per_epoch=4,
        total_steps=40,
        monitor="val/acc",
        mode="max",
    )
    assert schedule["interval"] == "epoch" and schedule["monitor"] == "val/acc"


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"name": "exponential"}, "scheduler.name"),
        ({"name": "plateau", "warmup_epochs": 1}, "scheduler.warmup_epochs"),
    ],
)
def test_bad_scheduler_config_names_the_key(cfg: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        _lrs(cfg)
