"""The LightningModule: a network from the ``model`` group trained as a classifier.

The module is built from plain config dicts (saved as hyperparameters), so
``ImageClassifier.load_from_checkpoint(path, weights_only=True)`` rebuilds the
exact network without any Python objects stored in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, cast

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection, MinMetric
from torchmetrics.classification import MulticlassConfusionMatrix
from typing_extensions import override

from cnnlab.lit.losses import build_loss
from cnnlab.lit.metrics import (
    MetricName,
    Stage,
    best_key,
    check_monitor,
    classification_metrics,
    key,
)
from cnnlab.lit.optim import build_optimizer, build_scheduler
from cnnlab.runs.scrub import mask_checkpoint_secrets


class _LogOptions(TypedDict):
    """Keyword arguments of ``LightningModule.log`` for the epoch metrics."""

    on_step: bool
    on_epoch: bool
    prog_bar: bool


class ImageClassifier(pl.LightningModule):
    """Train, validate and test an image classifier.

    Args:
        model: The ``model`` node (``_target_`` plus builder arguments), resolved.
        num_classes: Number of classes (from the data config).
        loss: The ``loss`` node.
        optimizer: The ``optimizer`` node (a Hydra partial of a ``torch.optim`` class).
        scheduler: The ``scheduler`` node, or None.
        monitor: ``{metric: "val/acc", mode: "max"}``: the one monitored metric.
        data: The resolved ``data`` node, kept so that eval/predict can rebuild the inputs.
        classes: Class names, in label order.
    """

    def __init__(
        self,
        model: Mapping[str, Any],
        num_classes: int,
        loss: Mapping[str, Any],
        optimizer: Mapping[str, Any],
        scheduler: Mapping[str, Any] | None = None,
        monitor: Mapping[str, str] | None = None,
        data: Mapping[str, Any] | None = None,
        classes: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        monitor = dict(monitor or {"metric": key(Stage.VAL, MetricName.ACC), "mode": "max"})
        check_monitor(monitor["metric"], monitor["mode"], num_classes)
        self.monitor = monitor
        self.net = build_network(model)
        self.criterion = build_loss(loss, num_classes)
        # Keyed by Stage.name ("TRAIN"): "train" would clash with nn.Module.train.
        self.accuracy = nn.ModuleDict(
            {s.name: classification_metrics(num_classes, s) for s in Stage}
        )
        self.mean_loss = nn.ModuleDict({s.name: MeanMetric() for s in Stage})
        self.best = MaxMetric() if monitor["mode"] == "max" else MinMetric()
        self.best.persistent(True)  # checkpointed, so a resumed run keeps its best-so-far
        self.confusion = MulticlassConfusionMatrix(num_classes)
        # Samples this process trained on, for the run's throughput (not checkpointed).
        self.train_samples = 0
        # Stages whose metrics Lightning has not been handed yet this epoch.
        self._unlogged: set[Stage] = set()

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: Stage) -> torch.Tensor:
        x, y = batch
        scores = self(x)
        loss = self.criterion(scores, y)
        if stage is Stage.TRAIN:
            loss = loss + self._auxiliary_loss(y)
        self._mean_loss(stage).update(loss.detach(), weight=y.numel())
        self._accuracy(stage).update(scores.detach(), y)
        if stage is Stage.TEST:
            self.confusion.update(scores.detach(), y)
        if stage in self._unlogged:
            self._log_epoch_metrics(stage)
        return loss

    def _log_epoch_metrics(self, stage: Stage) -> None:
        """Hand this epoch's metric objects of ``stage`` to Lightning, once per epoch.

        Lightning keeps a reference to a logged Metric, computes it at the epoch's end and
        resets it; the updates in :meth:`_step` accumulate into it meanwhile. Each
        ``self.log`` call costs Lightning a walk over the metric's attributes (about 0.5 ms
        on a CPU), so logging on every step would cost more than a small network's step.
        """
        self._unlogged.discard(stage)
        # Epoch-level values only: one key per metric, and no per-step compute cost.
        logged: _LogOptions = {
            "on_step": False,
            "on_epoch": True,
            "prog_bar": stage is not Stage.TEST,
        }
        self.log(key(stage, MetricName.LOSS), self._mean_loss(stage), **logged)
        self.log_dict(self._accuracy(stage), **logged)

    def _mean_loss(self, stage: Stage) -> MeanMetric:
        """The running mean loss of ``stage`` (``mean_loss`` holds only MeanMetrics)."""
        return cast(MeanMetric, self.mean_loss[stage.name])

    def _accuracy(self, stage: Stage) -> MetricCollection:
        """The accuracy metrics of ``stage`` (``accuracy`` holds only MetricCollections)."""
        return cast(MetricCollection, self.accuracy[stage.name])

    def _auxiliary_loss(self, y: torch.Tensor) -> torch.Tensor | float:
        """Auxiliary classifiers' loss (GoogLeNet): ``aux_weight`` x the sum of their losses.

        A network with auxiliary heads fills ``aux_scores`` in training mode and sets
        ``aux_weight``; others have neither and add nothing.
        """
        aux_scores = getattr(self.net, "aux_scores", None)
        if not aux_scores:
            return 0.0
        weight = float(getattr(self.net, "aux_weight", 1.0))
        return weight * sum(self.criterion(s, y) for s in aux_scores)

    @override
    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        self.train_samples += len(batch[1])
        return self._step(batch, Stage.TRAIN)

    @override
    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, Stage.VAL)

    @override
    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._step(batch, Stage.TEST)

    @override
    def on_train_epoch_start(self) -> None:
        self._unlogged.add(Stage.TRAIN)

    @override
    def on_validation_epoch_start(self) -> None:
        self._unlogged.add(Stage.VAL)

    @override
    def on_test_epoch_start(self) -> None:
        self._unlogged.add(Stage.TEST)

    @override
    def on_train_start(self) -> None:
        # The sanity check ran validation on an untrained network; forget it.
        self.best.reset()

    @override
    def on_validation_epoch_end(self) -> None:
        # Best-so-far only means something while fitting (not in trainer.validate).
        if self.trainer.sanity_checking or self.trainer.state.fn != TrainerFn.FITTING:
            return
        current = self.epoch_values(Stage.VAL)[self.monitor["metric"]]
        self.best.update(current)
        self.log(best_key(self.monitor["metric"]), self.best.compute(), sync_dist=True)

    def epoch_values(self, stage: Stage) -> dict[str, torch.Tensor]:
        """Return this epoch's loss and accuracies of ``stage`` (synchronised across ranks)."""
        values = dict(self._accuracy(stage).compute())
        values[key(stage, MetricName.LOSS)] = self._mean_loss(stage).compute()
        return values

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # Augmentation and dropout draw from torch's generators; saving them makes a resumed
        # run continue exactly as an uninterrupted one (the data order is seeded per epoch).
        checkpoint["rng_states"] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            checkpoint["rng_states"]["cuda"] = torch.cuda.get_rng_state_all()
        # A checkpoint travels: secrets in its hyperparameters (a mirror's password) stay home.
        mask_checkpoint_secrets(checkpoint)

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states", {})
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])

    @override
    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.hparams["optimizer"], self.parameters())
        total = int(self.trainer.estimated_stepping_batches)
        epochs = (
            self.trainer.max_epochs
            if self.trainer.max_epochs and self.trainer.max_epochs > 0
            else 1
        )
        schedule = build_scheduler(
            self.hparams["scheduler"],
            optimizer,
            steps_per_epoch=max(total // epochs, 1),
            total_steps=max(total, 1),
            monitor=self.monitor["metric"],
            mode=self.monitor["mode"],
        )
        if schedule is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def build_network(model: Mapping[str, Any]) -> nn.Module:
    """Instantiate the network described by a resolved ``model`` node."""
    from hydra.utils import instantiate

    network = instantiate(dict(model), _convert_="all")
    if not isinstance(network, nn.Module):
        raise TypeError(f"model._target_ built {type(network).__name__}, not a torch.nn.Module")
    return network
