"""Builders shared by the tasks: data, callbacks, loggers, trainer, checkpoints."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from cnnlab.errors import CheckpointError, ConfigError, config_errors

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from cnnlab.lit.module import ImageClassifier

log = logging.getLogger(__name__)

GPU_ACCELERATORS = ("gpu", "cuda")


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

    check_accelerator(trainer_cfg)
    checkpointing = any(isinstance(c, ModelCheckpoint) for c in callbacks)
    with config_errors("trainer"):
        return instantiate(
            trainer_cfg,
            callbacks=callbacks,
            logger=loggers or False,
            enable_checkpointing=checkpointing,
        )


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint file safely (``weights_only=True``) or raise :class:`CheckpointError`."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(path, "no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(path, f"not a loadable checkpoint ({first_line})") from exc
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(path, "not a Lightning checkpoint (no state_dict)")
    if "hyper_parameters" not in checkpoint or "model" not in checkpoint["hyper_parameters"]:
        raise CheckpointError(path, "not a cnnlab checkpoint (no model hyperparameters)")
    return checkpoint


def check_checkpoint_matches(path: str | Path, checkpoint: Mapping[str, Any], model: Any) -> None:
    """Raise :class:`CheckpointError` when ``checkpoint`` was made for another network."""
    saved = checkpoint["hyper_parameters"]
    saved_model = saved["model"]
    for field in ("name", "in_channels", "num_classes"):
        want, have = model.get(field), saved_model.get(field)
        if want != have:
            raise CheckpointError(
                path,
                f"checkpoint is for {field}={have!r}, but this config has model.{field}={want!r}",
            )


def load_classifier(path: str | Path) -> ImageClassifier:
    """Rebuild an :class:`ImageClassifier` from a checkpoint (no code runs from the file)."""
    from cnnlab.lit.module import ImageClassifier

    read_checkpoint(path)  # a clear error for files that are not cnnlab checkpoints
    try:
        return ImageClassifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    except (RuntimeError, KeyError, TypeError) as exc:
        raise CheckpointError(path, f"cannot rebuild the network: {exc}") from exc
