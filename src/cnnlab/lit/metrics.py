"""Metric names and the per-epoch sums behind them.

Every logged key is built here from a :class:`Stage` and a :class:`MetricName`,
so a name is spelled once. Configs refer to a key such as ``val/acc`` through
``monitor.metric`` and :func:`check_monitor` rejects keys that are never logged.
"""

from __future__ import annotations

from enum import StrEnum

import torch

from cnnlab.errors import ConfigError

# Top-5 accuracy only means something when there are more than 5 classes.
TOP5_MIN_CLASSES = 6


# Trainable parameters of the network, recorded with the metrics (a sweep objective, too).
PARAMS_KEY = "model/params"


class Stage(StrEnum):
    """The loop a metric comes from; its value is the key prefix."""

    TRAIN = "train"
    VAL = "val"
    TEST = "test"


class MetricName(StrEnum):
    """What is measured; its value is the key suffix."""

    LOSS = "loss"
    ACC = "acc"
    ACC_TOP5 = "acc_top5"


BEST_SUFFIX = "_best"


def key(stage: Stage, name: MetricName) -> str:
    """Return the logged key, e.g. ``key(Stage.VAL, MetricName.ACC) == "val/acc"``."""
    return f"{stage}/{name}"


def best_key(monitored: str) -> str:
    """Return the key of the best-so-far value of a monitored metric (``val/acc_best``)."""
    return monitored + BEST_SUFFIX


# The validation loss at the best epoch of the monitored metric: breaks ties between runs
# (and sweep trials) whose best monitored value is the same, e.g. several at val/acc 1.0.
LOSS_AT_BEST_KEY = "val/loss_at_best"


class LossAtBest:
    """The lowest validation loss among the epochs that reached the best monitored value.

    Accuracy on a few hundred images saturates: several epochs (and several runs) reach the
    same best value. The loss still tells them apart, lower meaning more confident.
    ``mode`` is ``monitor.mode``.
    """

    def __init__(self, mode: str) -> None:
        self.sign = 1.0 if mode == "max" else -1.0
        self.best: float | None = None
        self.loss: float | None = None

    def update(self, monitored: float, loss: float) -> float:
        """Add one validation epoch; return the loss at the best epoch so far."""
        score = self.sign * monitored
        if self.best is None or score > self.best:
            self.best, self.loss = score, loss
        elif score == self.best and (self.loss is None or loss < self.loss):
            self.loss = loss
        return loss if self.loss is None else self.loss

    def state_dict(self) -> dict[str, float | None]:
        """What a checkpoint keeps, so that a resumed run breaks ties as an unbroken one."""
        return {"best": self.best, "loss": self.loss}

    def load_state_dict(self, state: dict[str, float | None]) -> None:
        """Restore :meth:`state_dict` (absent in checkpoints of earlier releases)."""
        self.best, self.loss = state.get("best"), state.get("loss")

    def reset(self) -> None:
        """Forget the sanity check's epoch."""
        self.best = self.loss = None


def metric_names(num_classes: int, stage: Stage) -> list[MetricName]:
    """Return the metrics computed in ``stage`` for a classifier with ``num_classes`` classes.

    Top-5 accuracy is measured on validation and test only: on the training batches it
    would cost every step a second accuracy update for a number nobody selects on.
    """
    names = [MetricName.LOSS, MetricName.ACC]
    if num_classes >= TOP5_MIN_CLASSES and stage is not Stage.TRAIN:
        names.append(MetricName.ACC_TOP5)
    return names


def logged_keys(num_classes: int) -> list[str]:
    """Return every key a classifier logs, best-so-far keys excluded."""
    return [key(stage, name) for stage in Stage for name in metric_names(num_classes, stage)]


class EpochSums:
    """One stage's running sums over an epoch: loss x samples, top-1 and top-5 hits, samples.

    A step adds one small tensor (no host sync, a handful of tensor operations); the epoch's
    values are the ratios of the sums, summed across processes first under DDP. This is all
    a classifier's loss and micro accuracy need, at a fraction of what per-step
    ``torchmetrics`` updates cost on a small network (each is a wrapped call, input
    handling and several operations per metric). ``names``: the stage's :func:`metric_names`.
    """

    def __init__(self, names: list[MetricName]) -> None:
        self.names = names
        self.top5 = MetricName.ACC_TOP5 in names
        self.sums: torch.Tensor | None = None

    def update(self, loss: torch.Tensor, scores: torch.Tensor, target: torch.Tensor) -> None:
        """Add one batch: its mean ``loss``, class ``scores`` ``[N, C]`` and labels ``[N]``."""
        n = target.numel()
        if self.top5:
            hits = scores.topk(5, dim=1).indices == target.unsqueeze(1)
            top1, top5 = hits[:, 0].sum(), hits.any(dim=1).sum()
        else:
            top1 = top5 = (scores.argmax(dim=1) == target).sum()
        batch = torch.stack([loss * n, top1.to(loss.dtype), top5.to(loss.dtype)])
        if self.sums is None:
            # float64 keeps counts exact far past a float32's 2**24 (MPS has no float64).
            dtype = torch.float32 if loss.device.type == "mps" else torch.float64
            self.sums = torch.zeros(4, dtype=dtype, device=loss.device)
        self.sums[:3] += batch
        self.sums[3] += n

    def compute(self, sums: torch.Tensor | None = None) -> dict[MetricName, torch.Tensor]:
        """The epoch's mean loss and accuracies, from ``sums`` (default: this process's)."""
        sums = self.sums if sums is None else sums
        if sums is None or not float(sums[3]):
            return {}
        values = {MetricName.LOSS: sums[0] / sums[3], MetricName.ACC: sums[1] / sums[3]}
        if self.top5:
            values[MetricName.ACC_TOP5] = sums[2] / sums[3]
        return {name: values[name].float() for name in self.names}

    def reset(self) -> None:
        """Start a new epoch."""
        self.sums = None


def check_monitor(metric: str, mode: str, num_classes: int) -> None:
    """Raise :class:`ConfigError` unless ``metric`` is a validation key we log and mode is valid."""
    allowed = [k for k in logged_keys(num_classes) if k.startswith(f"{Stage.VAL}/")]
    if metric not in allowed:
        raise ConfigError("monitor.metric", f"{metric!r} is never logged; choose from {allowed}")
    if mode not in ("min", "max"):
        raise ConfigError("monitor.mode", f"must be 'min' or 'max', got {mode!r}")
