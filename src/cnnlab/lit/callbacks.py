"""Callbacks of the ``callbacks`` group that Lightning does not ship."""

from __future__ import annotations

import logging
import shutil
import sys
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import (
    Callback,
    EarlyStopping,
    ModelCheckpoint,
    ProgressBar,
    RichProgressBar,
)
from typing_extensions import override

from cnnlab.files.atomic import replacing
from cnnlab.lit.time_to_accuracy import TimeToAccuracy

log = logging.getLogger(__name__)


def progress_bar(refresh_rate: int = 10) -> ProgressBar:
    """A rich progress bar on a terminal, one log line per epoch otherwise (CI, files).

    The bar is drawn every ``refresh_rate`` batches and replaced by the next epoch's (as
    Lightning's own default does): on the digits, redrawing it after every batch made a
    run in a terminal 3.8x slower than the same run writing to a file, and keeping every
    epoch's bar on screen cost another 15%.
    """
    if sys.stdout.isatty():
        return RichProgressBar(refresh_rate=refresh_rate, leave=False)
    return EpochLogProgress()


class EpochLogProgress(ProgressBar):
    """A quiet progress bar: one ``logging`` line with the epoch's metrics."""

    def __init__(self) -> None:
        super().__init__()
        self._enabled = True

    @override
    def disable(self) -> None:
        self._enabled = False

    @override
    def enable(self) -> None:
        self._enabled = True

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if v.numel() == 1 and not k.startswith("test/")
        }
        shown = "  ".join(metric_text(k, v) for k, v in sorted(metrics.items()))
        log.info("epoch %d/%d  %s", trainer.current_epoch + 1, trainer.max_epochs, shown)


def metric_text(name: str, value: float) -> str:
    """``name=value`` as the epoch line shows it, for every message that quotes a metric.

    One rounding for all: a message that quotes a value of an epoch line (the pruning one)
    then reads the same number as the line does.
    """
    return f"{name}={value:.4g}"


class ConfusionMatrixPlot(Callback):
    """Save the test confusion matrix as ``confusion_matrix.png`` in ``dirpath`` (the run folder
    by default) and send it to image loggers."""

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.path: Path | None = None

    @override
    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        counts = pl_module.confusion.compute().cpu().numpy()  # type: ignore[union-attr, operator]
        pl_module.confusion.reset()  # type: ignore[union-attr, operator]
        if not _draws(trainer):
            return
        import matplotlib.pyplot as plt
        import numpy as np

        classes: list[str] = pl_module.hparams.get("classes") or [
            str(i) for i in range(counts.shape[0])
        ]
        size = min(4 + 0.35 * len(classes), 20)
        fig, ax = plt.subplots(figsize=(size, size))
        ax.imshow(counts, cmap="Blues")
        if len(classes) <= 20:
            ax.set_xticks(range(len(classes)), classes, rotation=90)
            ax.set_yticks(range(len(classes)), classes)
            for (i, j), count in np.ndenumerate(counts):
                if count:
                    ax.text(j, i, str(count), ha="center", va="center", fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("test confusion matrix")
        self.path = self.dirpath / "confusion_matrix.png"
        _save_figure(trainer, fig, self.path, "test/confusion_matrix", dpi=100)


class LearningCurves(Callback):
    """Save ``learning_curves.png`` in ``dirpath``: loss and accuracy per epoch, train and val.

    Hand tuning looks at how a run learned (over- or under-fitting, a learning rate too high),
    not only where it ended. The values are kept per epoch, and in the checkpoint, so a
    resumed run draws its whole history. ``dirpath`` is the run folder by default.
    """

    KEYS = ("train/loss", "val/loss", "train/acc", "val/acc")

    def __init__(self, dirpath: str | Path) -> None:
        self.dirpath = Path(dirpath)
        self.history: list[dict[str, float]] = []

    @override
    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Before ModelCheckpoint (always last) saves the epoch, so the checkpoint has it.
        if not trainer.sanity_checking:
            self._record(trainer, "val/")

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The epoch's training values reach callback_metrics only now: after the checkpoint
        # of the epoch was saved, so a resumed run lacks the last one before it resumed.
        self._record(trainer, "train/")

    def _record(self, trainer: pl.Trainer, stage: str) -> None:
        epoch = float(trainer.current_epoch + 1)
        if not self.history or self.history[-1]["epoch"] != epoch:
            self.history.append({"epoch": epoch})
        metrics = trainer.callback_metrics
        self.history[-1].update(
            {k: float(metrics[k]) for k in self.KEYS if k.startswith(stage) and k in metrics}
        )

    @override
    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.history or not _draws(trainer):
            return
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, measure in zip(axes, ("loss", "acc"), strict=True):
            for stage in ("train", "val"):
                points = [
                    (h["epoch"], h[f"{stage}/{measure}"])
                    for h in self.history
                    if f"{stage}/{measure}" in h
                ]
                if points:
                    ax.plot(*zip(*points, strict=True), marker=".", label=f"{stage}/{measure}")
            ax.set_xlabel("epoch")
            ax.set_ylabel(measure)
            ax.legend()
        fig.suptitle("learning curves")
        _save_figure(trainer, fig, self.dirpath / "learning_curves.png", "learning_curves", dpi=90)

    @override
    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history}

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = [dict(h) for h in state_dict.get("history", [])]


def _draws(trainer: pl.Trainer) -> bool:
    """Rank 0 draws, with matplotlib's file backend; none under fast_dev_run (a smoke test:
    Lightning writes no logs or checkpoints then, nor do we plots)."""
    if not trainer.is_global_zero or getattr(trainer, "fast_dev_run", False):
        return False
    import matplotlib

    matplotlib.use("Agg")
    return True


def _save_figure(trainer: pl.Trainer, fig: Any, path: Path, name: str, *, dpi: int) -> None:
    """Write ``fig`` to ``path`` as a PNG (atomically), close it, and send it to the loggers."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    try:
        with replacing(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    log_image(trainer, name, path)


def log_image(trainer: pl.Trainer, name: str, path: Path) -> None:
    """Send an image file to every logger that takes images (wandb, TensorBoard)."""
    from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger

    # By type, not by attribute: under fast_dev_run Lightning's DummyLogger answers every
    # attribute with a no-op function.
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_image(key=name, images=[str(path)])
        elif isinstance(logger, TensorBoardLogger):
            import numpy as np
            from PIL import Image

            image = np.asarray(Image.open(path).convert("RGB"))
            logger.experiment.add_image(name, image, dataformats="HWC")


class KeepBestAcrossFolders(Callback):
    """Keep the best checkpoint of a fit continued from a checkpoint of another folder.

    Lightning reloads a ``ModelCheckpoint``'s ``best_model_path`` but forgets its score when
    the checkpoint's folder is not its own (a sweep's re-queued trial, ``ckpt_path=`` of
    another run): the first epoch after the restore was then "best" however bad, and the
    final test tested it while ``val/acc_best`` named the checkpoint's best. This copies that
    best into the new folder with its score, so only a better epoch replaces it there; the
    checkpoint's own folder is left as it was.
    """

    def __init__(self) -> None:
        self._states: dict[str, Any] = {}

    @override
    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        self._states = dict(checkpoint.get("callbacks") or {})

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After the restore: ModelCheckpoint.load_state_dict has run.
        states, self._states = self._states, {}
        for callback in trainer.checkpoint_callbacks:
            state = states.get(callback.state_key)
            if isinstance(callback, ModelCheckpoint) and isinstance(state, dict):
                _restore_best(trainer, callback, state)


def _restore_best(trainer: pl.Trainer, callback: ModelCheckpoint, state: dict[str, Any]) -> None:
    """The best checkpoint of ``state`` (another folder's), in ``callback``'s folder.

    From the checkpoint's folder it is copied: the run folder stays whole (``cnnlab eval`` of
    its ``best.ckpt``), and its checkpoints name no file outside it (which
    :func:`cnnlab.lit.checkpoint.check_callback_paths` refuses). A run folder that was moved
    has it already, under the same name. Of a top-k, the best is kept.
    """
    best, score, folder = (state.get(k) for k in ("best_model_path", "best_model_score", "dirpath"))
    if callback.monitor is None or score is None or folder == callback.dirpath:
        return  # no best (last.ckpt's callback), or Lightning restored it all
    if callback.dirpath is None or not isinstance(best, str) or not isinstance(folder, str):
        return
    here = Path(callback.dirpath) / Path(best).relative_to(folder)  # inside: read_checkpoint
    if Path(best).is_file():
        if trainer.is_global_zero:
            here.parent.mkdir(parents=True, exist_ok=True)
            with replacing(here) as tmp:
                shutil.copyfile(best, tmp)
        trainer.strategy.barrier("cnnlab_best_copied")
        log.info("continuing a fit: its best checkpoint %s, copied here, is the one to beat", best)
    elif not here.is_file():
        # Lightning kept the path: the final test would fail on a missing file.
        log.warning(
            "the continued fit's best checkpoint %s is gone: the best epoch from here on is kept "
            "(the test takes the last weights if there is none)",
            best,
        )
        callback.best_model_path = ""
        return
    callback.best_model_path = callback.kth_best_model_path = str(here)
    callback.best_model_score = callback.kth_value = score
    callback.best_k_models = {str(here): score}


class KeepStopped(Callback):
    """Stop a fit continued from a checkpoint that early stopping (or its target) had ended.

    Lightning does not checkpoint ``trainer.should_stop``: a fit that early stopping or the
    time-to-accuracy target ended, continued from its last checkpoint (a sweep's trial
    killed before it was told its fit had ended), trained another epoch, which the
    uninterrupted run never did, and its best-so-far could change. Those callbacks' restored
    states say they had stopped it; a stop for another reason (``max_time``) is not kept, so
    a continuation given more time trains on.
    """

    @override
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # The end of the checkpoint's own epoch (last.ckpt is saved after its validation),
        # which Lightning ends after the restore without a batch: the fit ends there, as it
        # did (in on_train_start, that epoch would stay unended: one fewer in run.json).
        if trainer.should_stop:
            return
        callbacks: list[Callback] = trainer.callbacks  # type: ignore[attr-defined]
        stopped = [type(c).__name__ for c in callbacks if _has_stopped(c)]
        if stopped:
            log.info("the checkpoint's fit had been stopped by %s: it stays so", stopped[0])
            trainer.should_stop = True


def _has_stopped(callback: Callback) -> bool:
    """Whether ``callback``'s state says it stopped the fit."""
    if isinstance(callback, EarlyStopping):
        return early_stopping_stopped(callback)
    return isinstance(callback, TimeToAccuracy) and callback.stop and callback.result is not None


def early_stopping_stopped(callback: EarlyStopping) -> bool:
    """Whether ``callback`` stopped its fit (its state says so after a restore too)."""
    # stopping_reason_message exists from Lightning 2.5; stopped_epoch stays 0 until it stops.
    return bool(getattr(callback, "stopping_reason_message", None)) or callback.stopped_epoch > 0
