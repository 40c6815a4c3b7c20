"""Link a sweep trial to its W&B run, as user attributes the dashboard shows.

The sweeper already records each trial's run folder (``run_dir``). A trial
that logs to Weights & Biases adds ``wandb_url`` (an online run's page) or
``wandb_offline_run`` (an offline run's folder, for ``wandb sync``), so a team
goes from a trial in optuna-dashboard straight to its run.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytorch_lightning as pl

if TYPE_CHECKING:
    from omegaconf import DictConfig

log = logging.getLogger(__name__)

URL_ATTR = "wandb_url"
OFFLINE_ATTR = "wandb_offline_run"


def wandb_links(run: Any) -> dict[str, str]:
    """The user attributes that lead to ``run`` (a ``wandb`` run): its URL or offline folder."""
    url = getattr(run, "url", None)
    if url:
        return {URL_ATTR: str(url)}
    sync_dir = getattr(getattr(run, "settings", None), "sync_dir", None)
    return {OFFLINE_ATTR: str(sync_dir)} if sync_dir else {}


class TrialLinks(pl.Callback):
    """At the start of fit, record the trial's W&B run on the trial in the study storage.

    The trial is named by the job's ``sweep`` node: storage URL, study name, trial number.
    """

    def __init__(self, storage: str, study_name: str, trial_number: int) -> None:
        self.storage = storage
        self.study_name = study_name
        self.trial_number = trial_number

    @classmethod
    def from_config(cls, cfg: DictConfig) -> TrialLinks:
        """Build it from a job's ``sweep`` node."""
        sweep = cfg.sweep
        return cls(str(sweep.storage), str(sweep.study_name), int(sweep.trial_number))

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Write the links of the first W&B logger (a ``DummyLogger`` has none)."""
        from pytorch_lightning.loggers import WandbLogger

        from cnnlab.sweep.storage import open_storage, trial_id

        if not trainer.is_global_zero:
            return
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        links = wandb_links(loggers[0].experiment) if loggers else {}
        if not links:
            return
        backend = open_storage(self.storage)
        storage_id = trial_id(backend, self.study_name, self.trial_number)
        for key, value in links.items():
            backend.set_trial_user_attr(storage_id, key, value)
        log.info("trial %d: %s", self.trial_number, links)
