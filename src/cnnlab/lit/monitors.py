"""Lightning's monitoring callbacks (checkpoints, early stopping), minus two per-call costs.

They behave exactly as Lightning's own classes, which they subclass (and whose names they
keep, so checkpoints and resumed runs see the same ``state_key``):

* Lightning reads every callback's ``state_key`` on every hook call, several times a
  training step, to name a profiler section. These callbacks build it from their settings
  (a ``repr`` of a dict) each time; the settings are fixed at construction, so it is built
  once here.
* Before each save, ModelCheckpoint deep-copies every logged metric (a tensor deep copy
  costs about 0.1 ms on a CPU, several per epoch). A new dict with each tensor cloned holds
  the same values and is as safe from later changes.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning import callbacks
from typing_extensions import override

__all__ = ["EarlyStopping", "ModelCheckpoint"]


class ModelCheckpoint(callbacks.ModelCheckpoint):
    """:class:`pytorch_lightning.callbacks.ModelCheckpoint`, with a fixed ``state_key`` and
    a cheap copy of the metrics it saves on."""

    @cached_property
    @override
    def state_key(self) -> str:
        return super().state_key

    @override
    def _monitor_candidates(self, trainer: pl.Trainer) -> dict[str, torch.Tensor]:
        candidates: dict[str, Any] = {
            name: value.clone() if isinstance(value, torch.Tensor) else value
            for name, value in trainer.callback_metrics.items()
        }
        # As Lightning's: `self.log("epoch", 3)` stores a float; file names want integers.
        for name, fallback in (("epoch", trainer.current_epoch), ("step", trainer.global_step)):
            value = candidates.get(name)
            candidates[name] = (
                value.int() if isinstance(value, torch.Tensor) else torch.tensor(fallback)
            )
        return candidates


class EarlyStopping(callbacks.EarlyStopping):
    """:class:`pytorch_lightning.callbacks.EarlyStopping`, with a fixed ``state_key``."""

    @cached_property
    @override
    def state_key(self) -> str:
        return super().state_key
