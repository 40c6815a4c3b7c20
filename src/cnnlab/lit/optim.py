"""Optimizers and learning-rate schedules from the ``optimizer`` and ``scheduler`` groups.

Optimizer configs are Hydra partials of ``torch.optim`` classes. Schedules are
built here, stepped once per optimizer step, with an optional linear warmup in
front (``warmup_epochs``); ``plateau`` steps once per epoch on the monitored metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, cast

import torch
from torch.optim import Optimizer, lr_scheduler

from cnnlab.errors import ConfigError, config_errors, show

SCHEDULERS = ("none", "step", "cosine", "onecycle", "plateau")


def build_optimizer(cfg: Mapping[str, Any], params: Iterable[torch.nn.Parameter]) -> Optimizer:
    """Instantiate the optimizer partial in ``cfg`` after checking lr and weight decay.

    Raises:
        ConfigError: ``optimizer.lr`` or ``optimizer.weight_decay`` out of range, or
            ``optimizer`` for anything torch refuses (an unknown keyword, a bad beta).
    """
    from hydra.utils import instantiate

    lr: Any = cfg.get("lr")
    if not _is_number(lr) or not 0 < lr < math.inf:
        raise ConfigError("optimizer.lr", f"must be a number > 0, got {show(lr)}")
    decay: Any = cfg.get("weight_decay", 0.0)
    if not _is_number(decay) or not 0 <= decay < math.inf:
        raise ConfigError("optimizer.weight_decay", f"must be a number >= 0, got {show(decay)}")
    with config_errors("optimizer", cfg):
        factory: Callable[..., Optimizer] = instantiate(dict(cfg), _partial_=True)
        return factory(params)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def build_scheduler(
    cfg: Mapping[str, Any] | None,
    optimizer: Optimizer,
    *,
    steps_per_epoch: int,
    total_steps: int,
    monitor: str,
    mode: str,
) -> dict[str, Any] | None:
    """Return a Lightning ``lr_scheduler`` dict for ``cfg``, or None for ``name: none``.

    ``cfg`` is ``name`` plus that schedule's parameters; epochs in it become optimizer steps
    (``steps_per_epoch``, ``total_steps`` of the whole fit); ``plateau`` reduces on ``monitor``
    (``mode``: ``min`` or ``max``).
    """
    cfg = dict(cfg or {"name": "none"})
    name = cfg.pop("name", "none")
    if name not in SCHEDULERS:
        raise ConfigError(
            "scheduler.name", f"unknown scheduler {show(name)}; choose from {SCHEDULERS}"
        )
    warmup_epochs = cfg.pop("warmup_epochs", 0)
    if not isinstance(warmup_epochs, int) or isinstance(warmup_epochs, bool) or warmup_epochs < 0:
        raise ConfigError(
            "scheduler.warmup_epochs", f"must be an integer >= 0, got {show(warmup_epochs)}"
        )
    warmup = warmup_epochs * steps_per_epoch
    with config_errors("scheduler", cfg):
        return _schedule(name, cfg, optimizer, warmup, steps_per_epoch, total_steps, monitor, mode)


def _schedule(
    name: str,
    cfg: dict[str, Any],
    optimizer: Optimizer,
    warmup: int,
    steps_per_epoch: int,
    total_steps: int,
    monitor: str,
    mode: str,
) -> dict[str, Any] | None:
    """Build schedule ``name`` with the parameters left in ``cfg`` (see build_scheduler)."""
    if name == "none" and not warmup:
        return None
    if name == "plateau":
        if warmup:
            raise ConfigError("scheduler.warmup_epochs", "plateau does not support warmup; use 0")
        # The module checked mode with check_monitor; ReduceLROnPlateau checks it again.
        plateau_mode = cast("Literal['min', 'max']", mode)
        plateau = lr_scheduler.ReduceLROnPlateau(optimizer, mode=plateau_mode, **cfg)
        return {"scheduler": plateau, "monitor": monitor, "interval": "epoch"}
    if name == "onecycle":
        if warmup:
            raise ConfigError("scheduler.warmup_epochs", "onecycle warms up itself (pct_start)")
        max_lr = [group["lr"] for group in optimizer.param_groups]
        onecycle = lr_scheduler.OneCycleLR(optimizer, max_lr=max_lr, total_steps=total_steps, **cfg)
        return {"scheduler": onecycle, "interval": "step"}

    main_steps = max(total_steps - warmup, 1)
    main: lr_scheduler.LRScheduler
    if name == "step":
        step_size = int(cfg.pop("step_size")) * steps_per_epoch
        main = lr_scheduler.StepLR(optimizer, step_size=max(step_size, 1), **cfg)
    elif name == "cosine":
        main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_steps, **cfg)
    else:  # warmup only
        main = lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
    if warmup:
        ramp = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / warmup, total_iters=warmup)
        main = lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])
    return {"scheduler": main, "interval": "step"}
