"""The LightningModule: a network from the ``model`` group trained as a classifier.

The module is built from plain config dicts (saved as hyperparameters), so
``ImageClassifier.load_from_checkpoint(path, weights_only=True)`` rebuilds the
exact network without any Python objects stored in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MaxMetric, MinMetric
from torchmetrics.classification import MulticlassConfusionMatrix
from typing_extensions import override

from cnnlab.lit.losses import build_loss
from cnnlab.lit.metrics import (
    LOSS_AT_BEST_KEY,
    EpochSums,
    LossAtBest,
    MetricName,
    Stage,
    best_key,
    check_monitor,
    key,
    metric_names,
)
from cnnlab.lit.optim import build_optimizer, build_scheduler
from cnnlab.secrets.mask import mask_checkpoint_secrets


class ImageClassifier(pl.LightningModule):
    """Train, validate and test an image classifier.

    Built from the resolved config nodes of the same names (``optimizer``: a Hydra partial of
    a ``torch.optim`` class). ``monitor`` is the one monitored metric, ``{metric: "val/acc",
    mode: "max"}``; ``data`` is kept so that eval/predict can rebuild the inputs; ``classes``
    are the class names, in label order.
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
        # For the checkpoint (masked when it is saved), not for the loggers: Lightning would
        # log them, secrets included, to each one. The task logs the run's config, masked
        # (cnnlab.tracking.loggers.log_hyperparameters).
        self.save_hyperparameters(logger=False)
        monitor = dict(monitor or {"metric": key(Stage.VAL, MetricName.ACC), "mode": "max"})
        check_monitor(monitor["metric"], monitor["mode"], num_classes)
        self.monitor = monitor
        self.net = build_network(model)
        self.criterion = build_loss(loss, num_classes)
        # Loss and accuracies of the epoch so far, per stage (not checkpointed: an epoch
        # resumes from its start).
        self.epoch_sums = {s: EpochSums(metric_names(num_classes, s)) for s in Stage}
        self.best = MaxMetric() if monitor["mode"] == "max" else MinMetric()
        self.best.persistent(True)  # checkpointed, so a resumed run keeps its best-so-far
        self.loss_at_best = LossAtBest(monitor["mode"])  # breaks ties between runs
        self.confusion = MulticlassConfusionMatrix(num_classes)
        # Samples this process trained on, for the run's throughput (not checkpointed).
        self.train_samples = 0

    @override
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: Stage) -> torch.Tensor:
        x, y = batch
        scores = self(x)
        loss = self.criterion(scores, y)
        if stage is Stage.TRAIN:
            loss = loss + self._auxiliary_loss(y)
        self.epoch_sums[stage].update(loss.detach(), scores.detach(), y)
        if stage is Stage.TEST:
            self.confusion.update(scores.detach(), y)
        return loss

    def _log_epoch_metrics(self, stage: Stage) -> dict[str, torch.Tensor]:
        """Log the epoch's loss and accuracies of ``stage`` (summed across processes), once.

        Values are logged once an epoch, from the running sums, so a step costs no
        ``self.log`` call (about 0.5 ms of Lightning's bookkeeping on a CPU, more than a
        small network's step) and no host sync.
        """
        sums = self.epoch_sums[stage]
        if sums.sums is None:
            return {}
        total = self.trainer.strategy.reduce(sums.sums.clone(), reduce_op="sum")
        values = {key(stage, name): value for name, value in sums.compute(total).items()}
        for name, value in values.items():
            self.log(
                name,
                value,
                on_step=False,
                on_epoch=True,
                prog_bar=stage is not Stage.TEST,
                batch_size=1,
            )
        sums.reset()
        return values

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
        self.epoch_sums[Stage.TRAIN].reset()

    @override
    def on_validation_epoch_start(self) -> None:
        self.epoch_sums[Stage.VAL].reset()

    @override
    def on_test_epoch_start(self) -> None:
        self.epoch_sums[Stage.TEST].reset()

    @override
    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        # After the epoch's last batch, before validation and the epoch-end callbacks (the
        # progress line among them), which all read the training values.
        if batch_idx + 1 == self.trainer.num_training_batches:
            self._log_epoch_metrics(Stage.TRAIN)

    @override
    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics(Stage.TRAIN)  # an epoch that ended early (max_steps)

    @override
    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics(Stage.TEST)

    @override
    def on_validation_epoch_end(self) -> None:
        values = self._log_epoch_metrics(Stage.VAL)
        # Best-so-far only means something while fitting (not in trainer.validate).
        if self.trainer.sanity_checking or self.trainer.state.fn != TrainerFn.FITTING:
            return
        current = values.get(self.monitor["metric"])
        if current is None:
            return  # no validation batch ran (limit_val_batches=0)
        self.best.update(current)
        self.log(best_key(self.monitor["metric"]), self.best.compute(), sync_dist=True)
        loss = values.get(key(Stage.VAL, MetricName.LOSS))
        if loss is not None:
            at_best = self.loss_at_best.update(float(current), float(loss))
            self.log(LOSS_AT_BEST_KEY, at_best, sync_dist=True)

    def best_so_far(self) -> dict[str, torch.Tensor]:
        """The best monitored value of the fit and the loss at it, as logged, if one was seen.

        For a fit that had nothing left to train (its checkpoint ended it): they come from
        the checkpoint, where an epoch's end logs them.
        """
        (best,) = self.best.metric_state.values()  # -inf or inf before any epoch (not 0)
        if not isinstance(best, torch.Tensor) or not torch.isfinite(best):
            return {}
        values = {best_key(self.monitor["metric"]): best.clone()}
        if self.loss_at_best.loss is not None:
            values[LOSS_AT_BEST_KEY] = torch.tensor(self.loss_at_best.loss)
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
        checkpoint["loss_at_best"] = self.loss_at_best.state_dict()

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("rng_states", {})
        if "torch" in states:
            torch.set_rng_state(states["torch"])
        if "cuda" in states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
        self.loss_at_best.load_state_dict(checkpoint.get("loss_at_best") or {})

    @override
    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.hparams["optimizer"], self.parameters())
        total = int(self.trainer.estimated_stepping_batches)
        epochs = max(self.trainer.max_epochs or 1, 1)  # -1: no limit
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
    """Instantiate the network described by a resolved ``model`` node.

    Raises:
        ConfigError: Naming ``model.<option>`` (or the layer group's key) when the model
            code rejects a value, else ``model``.
    """
    from hydra.utils import instantiate

    from cnnlab.errors import config_errors

    with config_errors("model"):
        network = instantiate(dict(model), _convert_="all")
    if not isinstance(network, nn.Module):
        raise TypeError(f"model._target_ built {type(network).__name__}, not a torch.nn.Module")
    return network
