"""Metric names and the torchmetrics collections behind them.

Every logged key is built here from a :class:`Stage` and a :class:`MetricName`,
so a name is spelled once. Configs refer to a key such as ``val/acc`` through
``monitor.metric`` and :func:`check_monitor` rejects keys that are never logged.
"""

from __future__ import annotations

from enum import StrEnum

from torchmetrics import Metric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from cnnlab.errors import ConfigError

# Top-5 accuracy only means something when there are more than 5 classes.
TOP5_MIN_CLASSES = 6


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


def classification_metrics(num_classes: int, stage: Stage) -> MetricCollection:
    """Build the accuracy metrics of one stage, keys prefixed with ``<stage>/``.

    Input checks are off (``validate_args=False``): scores and labels come from the
    module's own step, never from a user, and the checks cost more than the update.
    """
    top_k = {MetricName.ACC: 1, MetricName.ACC_TOP5: 5}
    metrics: dict[str, Metric | MetricCollection] = {
        str(name): MulticlassAccuracy(
            num_classes, top_k=top_k[name], average="micro", validate_args=False
        )
        for name in metric_names(num_classes, stage)
        if name in top_k
    }
    return MetricCollection(metrics, prefix=f"{stage}/")


def check_monitor(metric: str, mode: str, num_classes: int) -> None:
    """Raise :class:`ConfigError` unless ``metric`` is a validation key we log and mode is valid."""
    allowed = [k for k in logged_keys(num_classes) if k.startswith(f"{Stage.VAL}/")]
    if metric not in allowed:
        raise ConfigError("monitor.metric", f"{metric!r} is never logged; choose from {allowed}")
    if mode not in ("min", "max"):
        raise ConfigError("monitor.mode", f"must be 'min' or 'max', got {mode!r}")
