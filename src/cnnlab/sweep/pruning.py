"""Pruning: a sweep trial reports its monitored metric and stops when its pruner says so.

The job reopens its study from ``cfg.sweep`` (storage, study name, trial
number) with the pruner the sweep configured (Optuna does not store pruners);
when the pruner prunes, the trial is marked PRUNED in the storage and
``optuna.TrialPruned`` ends the job, so the sweeper records it as pruned, not
as complete with a partial value.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from omegaconf import DictConfig

log = logging.getLogger(__name__)


class TrialReporter:
    """Reports intermediate values of one running trial to its study.

    The trial is named by the job's ``sweep`` node (storage URL, study name, trial number);
    one that is not in the storage is a ``ConfigError`` naming the ``sweep.*`` key.
    """

    def __init__(self, storage: str, study_name: str, trial_number: int) -> None:
        import optuna
        from hydra.utils import instantiate

        from cnnlab.sweep.storage import PRUNER_ATTR, open_storage

        backend = open_storage(storage)
        try:
            study_id = backend.get_study_id_from_name(study_name)
        except KeyError:
            raise ConfigError("sweep.study_name", f"no study {study_name!r} in {storage}") from None
        try:
            trial_id = backend.get_trial_id_from_study_id_trial_number(study_id, trial_number)
        except KeyError:
            raise ConfigError(
                "sweep.trial_number", f"study {study_name!r} has no trial {trial_number}"
            ) from None
        pruner_cfg = backend.get_trial_system_attrs(trial_id).get(PRUNER_ATTR)
        # load_study does not restore the pruner: bring the sweep's own back.
        pruner = instantiate(pruner_cfg) if pruner_cfg else optuna.pruners.NopPruner()
        self.study = optuna.load_study(study_name=study_name, storage=backend, pruner=pruner)
        self.trial = optuna.trial.Trial(self.study, trial_id)

    @classmethod
    def from_config(cls, cfg: DictConfig) -> TrialReporter:
        """Build the reporter from a job's ``sweep`` node."""
        sweep = cfg.sweep
        for key in ("storage", "study_name", "trial_number"):
            if sweep.get(key) is None:
                raise ConfigError(f"sweep.{key}", "is needed to report to the trial")
        return cls(str(sweep.storage), str(sweep.study_name), int(sweep.trial_number))

    def report(self, value: float, step: int, shown: str | None = None) -> None:
        """Report ``value`` at ``step`` (for Lightning, the 0-based epoch); when the pruner
        stops the trial, mark it PRUNED in the storage and raise ``optuna.TrialPruned``.

        ``shown`` is how the pruning message names the step and value: the caller knows what
        they mean on screen (an epoch line counts epochs from 1, rounds values).
        """
        import optuna
        from optuna.trial import TrialState

        if len(self.study.directions) > 1:
            return  # Optuna prunes single-objective studies only: Trial.report would raise
        self.trial.report(float(value), step)
        if not self.trial.should_prune():
            return
        self.study.tell(self.trial, state=TrialState.PRUNED)
        message = f"trial {self.trial.number} pruned {shown or f'at step {step}: {value}'}"
        log.info("%s", message)
        raise optuna.TrialPruned(message)


def trial_pruning_callback(cfg: DictConfig) -> pl.Callback:
    """Return the Lightning callback that reports ``cfg.monitor.metric`` to the trial."""
    import pytorch_lightning as pl

    class TrialPruning(pl.Callback):
        """Reports the monitored metric after each validation epoch; stops when pruned."""

        def __init__(self, reporter: TrialReporter, metric: str) -> None:
            self.reporter = reporter
            self.metric = metric

        def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
            from pytorch_lightning.trainer.states import TrainerFn

            # The fit's epochs only: a lost trial's copy continued from a checkpoint whose fit
            # had ended is validated after it (no epoch of its own), not at step max_epochs.
            if trainer.state.fn != TrainerFn.FITTING:
                return
            if trainer.sanity_checking or not trainer.is_global_zero:
                return
            value = trainer.callback_metrics.get(self.metric)
            if value is None:
                raise ConfigError(
                    "monitor.metric",
                    f"{self.metric!r} was not logged; logged: {sorted(trainer.callback_metrics)}",
                )
            number = float(value)
            self.reporter.report(
                number if math.isfinite(number) else math.nan,
                trainer.current_epoch,
                _epoch_text(trainer, self.metric, number),
            )

    return TrialPruning(TrialReporter.from_config(cfg), str(cfg.monitor.metric))


def _epoch_text(trainer: pl.Trainer, metric: str, value: float) -> str:
    """``after epoch 2/5: val/acc=0.9141``: the epoch and value as the epoch line writes them.

    A trial is pruned before its epoch line is written, so this stands in for that line.
    """
    from cnnlab.lit.callbacks import metric_text

    epoch = f"{trainer.current_epoch + 1}/{trainer.max_epochs}"
    return f"after epoch {epoch}: {metric_text(metric, value)}"
