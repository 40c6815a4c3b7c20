"""Time to accuracy: the wall time at which a monitored accuracy first reaches a target.

Speed runs (``conf/experiment/cifar10_speedrun.yaml``, after airbench's "94% on CIFAR-10
in 3.29 seconds") are judged by how soon the network is good enough, not by where it ends.
:class:`TimeToAccuracy` checks the monitored metric after every validation and, the first
time it reaches the target, records two clocks:

- ``<prefix>/time_to_target_s``: wall time since training started, validation included;
- ``<prefix>/train_time_to_target_s``: time spent in training epochs only, the figure
  airbench reports (its clock pauses while it evaluates).

Both land in ``metrics.json`` (through ``trainer.callback_metrics``, which ``cnnlab train``
writes there), in every logger, and in ``time_to_accuracy.json`` in ``dirpath`` with the
epoch and step. The callback can also stop training at the target (``stop``).
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.trainer.states import TrainerFn
from typing_extensions import override

from cnnlab.errors import ConfigError
from cnnlab.files.atomic import write_text_atomic

RESULT_FILE = "time_to_accuracy.json"


class TimeToAccuracy(Callback):
    """Record when ``monitor`` first reaches ``target`` (and optionally stop there).

    Args:
        target: The value to reach, e.g. 0.94.
        monitor: The metric to watch, e.g. ``val/acc`` (higher is better).
        dirpath: Folder for ``time_to_accuracy.json``; None writes no file.
        stop: End training once the target is reached.

    Raises:
        ConfigError: ``callbacks.time_to_accuracy.target`` unless a finite number.

    Example:
        >>> TimeToAccuracy(target=0.94).keys
        ('val/time_to_target_s', 'val/train_time_to_target_s')
    """

    def __init__(
        self,
        target: float,
        monitor: str = "val/acc",
        dirpath: str | Path | None = None,
        stop: bool = False,
    ) -> None:
        number = isinstance(target, int | float) and not isinstance(target, bool)
        if not number or not math.isfinite(target):
            raise ConfigError(
                "callbacks.time_to_accuracy.target", f"must be a finite number, got {target!r}"
            )
        self.target = float(target)
        self.monitor = monitor
        self.dirpath = Path(dirpath) if dirpath is not None else None
        self.stop = bool(stop)
        prefix = monitor.split("/", 1)[0] if "/" in monitor else "val"
        self.keys = (f"{prefix}/time_to_target_s", f"{prefix}/train_time_to_target_s")
        # Clocks of the runs before a resume, so a resumed run keeps counting.
        self._wall_before = 0.0
        self._train_before = 0.0
        self._wall_start = 0.0
        self._train_tic: float | None = None
        self.result: dict[str, Any] | None = None

    @property
    @override
    def state_key(self) -> str:
        """The class name and the monitored metric and target, so two callbacks keep apart.

        The string is the one Lightning's ``Callback._generate_state_key`` made for earlier
        cnnlab releases (``TimeToAccuracy{'monitor': 'val/acc', 'target': 0.94}``): Lightning
        finds a callback's state in a checkpoint by this key alone, and a run resumed from an
        earlier checkpoint would otherwise restart both clocks without a word.
        """
        key = {"monitor": self.monitor, "target": self.target}
        return f"{type(self).__qualname__}{key!r}"

    @override
    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._wall_start = time.perf_counter()

    @override
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._train_tic = time.perf_counter()

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning validates inside the last training batch's loop, before this hook; the
        # training clock is therefore stopped in on_validation_start as well.
        self._pause_train_clock()

    @override
    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._pause_train_clock()

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The epoch's metrics are final here (ModelCheckpoint reads them at the same point).
        if trainer.sanity_checking:
            return
        if trainer.state.fn != TrainerFn.FITTING:
            # A validation after the fit (`cnnlab train` validates a checkpoint that had
            # nothing left to train) reports the result the checkpoint holds, if any.
            self._report(trainer)
            return
        if self.result is None:
            value = trainer.callback_metrics.get(self.monitor)
            if value is not None and float(value) >= self.target:
                self._record(trainer, float(value))
        self._report(trainer)
        if self.result is not None and self.stop:
            trainer.should_stop = True
        if trainer.training:
            self._train_tic = time.perf_counter()  # validation inside an epoch: resume the clock

    def _report(self, trainer: pl.Trainer) -> None:
        if self.result is not None:
            # `self.log` is not allowed in this hook; this is the dict `cnnlab train` reads.
            trainer.callback_metrics[self.keys[0]] = torch.tensor(self.result["seconds"])
            trainer.callback_metrics[self.keys[1]] = torch.tensor(self.result["train_seconds"])

    def _pause_train_clock(self) -> None:
        if self._train_tic is not None:
            self._train_before += time.perf_counter() - self._train_tic
            self._train_tic = None

    def _record(self, trainer: pl.Trainer, value: float) -> None:
        self.result = {
            "monitor": self.monitor,
            "target": self.target,
            "value": value,
            "seconds": round(self._wall_before + time.perf_counter() - self._wall_start, 3),
            "train_seconds": round(self._train_before, 3),
            "epoch": trainer.current_epoch,
            "step": trainer.global_step,
        }
        for logger in trainer.loggers:
            logger.log_metrics(
                {self.keys[0]: self.result["seconds"], self.keys[1]: self.result["train_seconds"]},
                step=trainer.global_step,
            )
        if self.dirpath is not None and trainer.is_global_zero:
            self.dirpath.mkdir(parents=True, exist_ok=True)
            write_text_atomic(self.dirpath / RESULT_FILE, json.dumps(self.result, indent=2) + "\n")

    @override
    def state_dict(self) -> dict[str, Any]:
        running = time.perf_counter() - self._wall_start if self._wall_start else 0.0
        wall = self._wall_before + running
        return {"wall_s": wall, "train_s": self._train_before, "result": self.result}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._wall_before = float(state_dict.get("wall_s", 0.0))
        self._train_before = float(state_dict.get("train_s", 0.0))
        self.result = state_dict.get("result")
