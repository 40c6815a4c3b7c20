"""Stop a run whose training loss is no longer a number.

A loss that turns NaN or infinite never recovers, yet nothing else stops the run:
the epoch's mean loss drops NaN batches with only a warning, accuracy stays a
number, and early stopping watches ``monitor.metric``. The run would "complete"
with a useless network and, in a sweep, a value that looks valid. This callback
fails it instead, with one line that says when and what to change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from typing_extensions import override

from cnnlab.errors import CnnlabError


class TrainingDiverged(CnnlabError):
    """The training loss became NaN or infinite (a user setting, mostly the learning rate)."""


class FailOnNonFiniteLoss(pl.Callback):
    """Raise :class:`TrainingDiverged` at the first non-finite training loss.

    Args:
        check_every_n_steps: Check the loss of one batch in this many; reading the loss
            makes an accelerator wait for the step, so a large value costs nothing there.

    Raises:
        ValueError: ``check_every_n_steps`` is below 1.
    """

    def __init__(self, check_every_n_steps: int = 1) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if batch_idx % self.check_every_n_steps:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor):
            return  # a manual-optimisation step that returned nothing
        value = float(loss.detach().float().mean())
        if math.isfinite(value):
            return
        raise TrainingDiverged(
            f"training loss became {value} at epoch {trainer.current_epoch}, batch {batch_idx}"
            f"{_settings_hint(pl_module)}; the run is stopped (lower the learning rate, "
            "or use gradient clipping: trainer.gradient_clip_val)"
        )


def _settings_hint(pl_module: pl.LightningModule) -> str:
    """`` with optimizer.lr=...`` when the module records its optimizer's settings."""
    optimizer = getattr(pl_module, "hparams", {}).get("optimizer")
    if isinstance(optimizer, Mapping) and "lr" in optimizer:
        return f" with optimizer.lr={optimizer['lr']}"
    return ""
