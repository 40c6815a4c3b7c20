"""Builders shared by the tasks: data, callbacks, loggers, trainer, checkpoints."""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cnnlab.errors import ConfigError, config_errors

# Checkpoint reading lives with the module it rebuilds; tasks import it from here.
from cnnlab.lit.checkpoint import check_checkpoint_matches, load_classifier, read_checkpoint

if TYPE_CHECKING:
    import pytorch_lightning as pl

__all__ = [
    "build_callbacks",
    "build_datamodule",
    "build_loggers",
    "build_trainer",
    "check_accelerator",
    "check_checkpoint_matches",
    "load_classifier",
    "output_errors",
    "read_checkpoint",
    "to_dict",
]

log = logging.getLogger(__name__)

GPU_ACCELERATORS = ("gpu", "cuda")

# Why an output file cannot be written that is the path's doing, not a bug: a folder that
# cannot hold files (/proc: ENOENT), a file where a folder should be, a folder in the way.
PATH_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EEXIST}
)


def to_dict(node: Any) -> Any:
    """Resolve a config node into plain Python containers (None stays None)."""
    if node is None:
        return None
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


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


def build_callbacks(cfg: DictConfig | None, *, with_logger: bool) -> list[pl.Callback]:
    """Instantiate each callback of the ``callbacks`` group (null entries are skipped)."""
    from hydra.utils import instantiate

    callbacks = []
    for name, node in (cfg or {}).items():
        if node is None:
            continue
        if name == "lr_monitor" and not with_logger:
            log.info("callbacks.lr_monitor skipped: it needs a logger")
            continue
        with config_errors(f"callbacks.{name!s}"):
            callbacks.append(instantiate(node))
    return callbacks


def build_loggers(cfg: DictConfig | None) -> list[Any]:
    """Instantiate each logger of the ``logger`` group."""
    from hydra.utils import instantiate

    loggers = []
    for name, node in (cfg or {}).items():
        if node is not None:
            with config_errors(f"logger.{name!s}"):
                loggers.append(instantiate(node))
    return loggers


def check_accelerator(trainer_cfg: DictConfig) -> None:
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
    trainer_cfg: DictConfig, callbacks: list[pl.Callback], loggers: list[Any]
) -> pl.Trainer:
    """Instantiate the ``trainer`` node with the given callbacks and loggers.

    Lightning adds a checkpoint callback of its own when none is given; cnnlab writes
    checkpoints only when the ``callbacks`` group asks for them.
    """
    from hydra.utils import instantiate
    from pytorch_lightning.callbacks import ModelCheckpoint

    from cnnlab.lit.checkpoint_io import AtomicCheckpointIO
    from cnnlab.lit.profiler import NoProfiler

    check_accelerator(trainer_cfg)
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    # No profiler asked for: one that costs nothing per hook call (see cnnlab.lit.profiler).
    profiler = {} if trainer_cfg.get("profiler") else {"profiler": NoProfiler()}
    with config_errors("trainer"):
        return instantiate(
            trainer_cfg,
            callbacks=callbacks,
            logger=loggers or False,
            enable_checkpointing=checkpointing,
            # Checkpoints are written beside their target and renamed: never half-written.
            plugins=[AtomicCheckpointIO()],
            **profiler,
        )


@contextmanager
def output_errors(path: str | os.PathLike[str] | None = None) -> Iterator[None]:
    """Turn a failed write of an output the user named into one line naming the file.

    :mod:`cnnlab.files.atomic` already does so for a full, read-only or forbidden disk
    (:class:`~cnnlab.files.atomic.WriteError`); this adds the causes that come from the path
    itself (:data:`PATH_ERRNOS`), which the checks before the work cannot all foresee (root
    passes ``os.access`` everywhere; a folder can be replaced meanwhile).

    Args:
        path: The output named in the message; None names the file the error names.
    """
    from cnnlab.files.atomic import DISK_ERRNOS, WriteError

    try:
        yield
    except OSError as exc:
        if exc.errno not in PATH_ERRNOS | DISK_ERRNOS:
            raise
        raise WriteError(path or exc.filename or "output", exc) from exc
