"""Lightning's objects from their config groups: data module, callbacks, loggers, Trainer.

One builder each, used twice: by the tasks for the run, and by :mod:`cnnlab.validation`
before the run folder exists, so that what a constructor refuses (Lightning's Trainer and
callbacks check their arguments) is refused before anything is written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cnnlab.errors import ConfigError, config_errors

if TYPE_CHECKING:
    import pytorch_lightning as pl

__all__ = [
    "build_callbacks",
    "build_datamodule",
    "build_loggers",
    "build_trainer",
    "check_accelerator",
]

log = logging.getLogger(__name__)

GPU_ACCELERATORS = ("gpu", "cuda")


def build_callbacks(cfg: Mapping[str, Any] | None, *, with_logger: bool) -> list[pl.Callback]:
    """Instantiate each callback of the ``callbacks`` group (null entries are skipped)."""
    if not with_logger and (cfg or {}).get("lr_monitor") is not None:
        log.info("callbacks.lr_monitor skipped: it needs a logger")
        cfg = {name: node for name, node in (cfg or {}).items() if name != "lr_monitor"}
    return _build_each("callbacks", cfg)


def build_loggers(cfg: Mapping[str, Any] | None) -> list[Any]:
    """Instantiate each logger of the ``logger`` group (null entries are skipped)."""
    return _build_each("logger", cfg)


def _build_each(group: str, cfg: Mapping[str, Any] | None) -> list[Any]:
    from hydra.utils import instantiate

    built = []
    for name, node in (cfg or {}).items():
        if node is not None:
            with config_errors(f"{group}.{name!s}", node):
                built.append(instantiate(node))
    return built


def check_accelerator(trainer_cfg: Mapping[str, Any]) -> None:
    """Fail with a clear error when a GPU is asked for and there is none."""
    accelerator = str(trainer_cfg.get("accelerator", "auto"))
    if accelerator in GPU_ACCELERATORS:
        import torch

        if not torch.cuda.is_available():
            raise ConfigError(
                "trainer.accelerator",
                f"{accelerator!r} asks for a GPU but this machine has none; "
                "use trainer=cpu (or trainer.accelerator=auto)",
            )


def build_trainer(
    trainer_cfg: Mapping[str, Any], callbacks: list[pl.Callback], loggers: list[Any]
) -> pl.Trainer:
    """Instantiate the ``trainer`` node with the given callbacks and loggers.

    Lightning adds a checkpoint callback of its own when none is given; cnnlab writes
    checkpoints only when the ``callbacks`` group asks for them.
    """
    from hydra.utils import instantiate
    from pytorch_lightning.callbacks import ModelCheckpoint

    from cnnlab.lit.checkpoint_io import AtomicCheckpointIO

    check_accelerator(trainer_cfg)
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    with config_errors("trainer", trainer_cfg):
        trainer: pl.Trainer = instantiate(
            trainer_cfg,
            callbacks=callbacks,
            logger=loggers or False,
            enable_checkpointing=checkpointing,
            # Checkpoints are written beside their target and renamed: never half-written.
            plugins=[AtomicCheckpointIO()],
        )
    return trainer


def build_datamodule(data_cfg: Mapping[str, Any]) -> pl.LightningDataModule:
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
