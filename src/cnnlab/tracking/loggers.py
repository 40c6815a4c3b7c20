"""Hyperparameters reach the loggers at one point, masked; the TensorBoard logger's extra check.

Lightning would log the module's hyperparameters to every logger by itself, secrets
included, at the start of each fit or test. The module saves them with ``logger=False``
instead, and the tasks give each logger the run's hyperparameters through
:func:`log_hyperparameters`, masked once by :func:`~cnnlab.secrets.mask.scrub_secrets`:
no logger (csv, TensorBoard, wandb, MLflow, or one of the user's own) needs to mask
anything itself.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Mapping
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.secrets.mask import scrub_secrets

__all__ = ["log_hyperparameters", "tensorboard_logger"]


def log_hyperparameters(loggers: Iterable[Any], hyperparameters: Mapping[str, Any]) -> None:
    """Log ``hyperparameters`` to each logger, with every secret masked.

    Args:
        loggers: Lightning loggers (``trainer.loggers``).
        hyperparameters: The run's config (or a checkpoint's hyperparameters), real values.
    """
    masked = scrub_secrets(dict(hyperparameters))
    for logger in loggers:
        logger.log_hyperparams(masked)


def tensorboard_logger(**kwargs: Any) -> Any:
    """Lightning's ``TensorBoardLogger``, or one line naming the extra to install.

    Raises:
        ConfigError: neither tensorboard nor tensorboardX is installed (the extra).
    """
    from pytorch_lightning.loggers import TensorBoardLogger

    if not any(_installed(name) for name in ("tensorboard", "tensorboardX")):
        raise ConfigError(
            "logger.tensorboard",
            "tensorboard is not installed: pip install 'cnnlab[tensorboard]'",
        )
    return TensorBoardLogger(**kwargs)


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
