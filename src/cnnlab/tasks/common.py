"""Builders shared by the tasks: data, callbacks, loggers, trainer, checkpoints."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from omegaconf import DictConfig

# The Lightning objects' builders (shared with cnnlab.validation, which builds them before the
# run folder exists) and checkpoint reading live in cnnlab.lit; tasks import them from here.
from cnnlab.errors import config_errors
from cnnlab.lit.build import build_callbacks, build_loggers, build_trainer
from cnnlab.lit.checkpoint import check_checkpoint_matches, load_classifier, read_checkpoint

if TYPE_CHECKING:
    import pytorch_lightning as pl

__all__ = [
    "build_callbacks",
    "build_datamodule",
    "build_loggers",
    "build_trainer",
    "check_checkpoint_matches",
    "load_classifier",
    "read_checkpoint",
]

log = logging.getLogger(__name__)


def build_datamodule(data_cfg: DictConfig) -> pl.LightningDataModule:
    """Instantiate the ``data`` node and load it, downloading first when allowed.

    Loading happens before the Trainer exists so that bad data (missing files,
    wrong class count) fails fast, and only rank 0 ever downloads.
    """
    from hydra.utils import instantiate
    from pytorch_lightning.utilities import rank_zero_only

    log.info("data: %s", data_cfg.get("name", data_cfg.get("_target_")))
    with config_errors("data"):
        datamodule = instantiate(data_cfg)
    # Lightning sets `rank` on the function at import; its stubs do not declare it.
    if rank_zero_only.rank == 0:  # type: ignore[attr-defined]
        datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule
