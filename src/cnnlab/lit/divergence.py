"""Stop a run whose training loss is no longer a number.

A loss that turns NaN or infinite never recovers, yet nothing else stops the run:
the epoch's mean loss drops NaN batches with only a warning, accuracy stays a
number, and early stopping watches ``monitor.metric``. The run would "complete"
with a useless network and, in a sweep, a value that looks valid. This callback
fails it instead, with one line that says when and what to change.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from typing_extensions import override

from cnnlab.errors import CnnlabError


class TrainingDiverged(CnnlabError):
    """The training loss became NaN or infinite (a user setting, mostly the learning rate)."""


class FailOnNonFiniteLoss(pl.Callback):
    """Raise :class:`TrainingDiverged` once a training loss was NaN or infinite.

    Every step's loss is examined where it lives (on the accelerator): the test is folded
    into one flag there, with no wait for the device. The flag is read, which makes an
    accelerator finish its queued work, every ``check_every_n_steps`` steps and at the
    epoch's last batch, before validation; a diverged run stops at the first read.

    Raises:
        ValueError: ``check_every_n_steps`` is below 1.
    """

    def __init__(self, check_every_n_steps: int = 1) -> None:
        if check_every_n_steps < 1:
            raise ValueError(f"check_every_n_steps must be >= 1, got {check_every_n_steps}")
        self.check_every_n_steps = check_every_n_steps
        self._finite: torch.Tensor | None = None  # all losses since the last read were finite
        self._first_batch = 0  # the first batch since the last read

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if not isinstance(loss, torch.Tensor):
            return  # a manual-optimisation step that returned nothing
        finite = torch.isfinite(loss.detach()).all()
        if self._finite is None:
            self._finite, self._first_batch = finite, batch_idx
        else:
            self._finite &= finite
        last = batch_idx + 1 == trainer.num_training_batches
        if (batch_idx + 1) % self.check_every_n_steps and not last:
            return
        all_finite, self._finite = bool(self._finite), None
        if all_finite:
            return
        where = (
            f"batch {batch_idx}"
            if batch_idx == self._first_batch
            else f"batches {self._first_batch}-{batch_idx}"
        )
        raise TrainingDiverged(
            f"training loss became nan or inf at epoch {trainer.current_epoch}, {where}"
            f"{_settings_hint(pl_module)}; the run is stopped (lower the learning rate, "
            "or use gradient clipping: trainer.gradient_clip_val)"
        )


def _settings_hint(pl_module: pl.LightningModule) -> str:
    """`` with optimizer.lr=...`` when the module records its optimizer's settings."""
    optimizer = getattr(pl_module, "hparams", {}).get("optimizer")
    if isinstance(optimizer, Mapping) and "lr" in optimizer:
        return f" with optimizer.lr={optimizer['lr']}"
    return ""
