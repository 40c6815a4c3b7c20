"""Lightning loggers that mask secrets in the hyperparameters they are given.

Lightning logs the module's hyperparameters by itself at the start of every fit or
test (``hparams.yaml``, TensorBoard's hparams, the wandb config), next to the config
cnnlab logs; both go through :func:`~cnnlab.runs.scrub.scrub_secrets` here, so a
secret inside the model or data node never reaches a logger's files.
"""

from __future__ import annotations

import functools
import importlib.util
from argparse import Namespace
from collections.abc import Mapping
from typing import Any

from cnnlab.errors import ConfigError
from cnnlab.runs.scrub import scrub_secrets

__all__ = ["masking", "tensorboard_logger"]


@functools.cache
def masking(logger_class: type[Any]) -> type[Any]:
    """Return a subclass of a Lightning logger class whose ``log_hyperparams`` masks secrets."""

    class Masked(logger_class):
        def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
            if isinstance(params, Namespace):
                params = vars(params)
            if isinstance(params, Mapping):
                params = scrub_secrets(dict(params))
            super().log_hyperparams(params, *args, **kwargs)

    # A module-level name (see __getattr__ below), so ddp_spawn can pickle the logger.
    Masked.__name__ = Masked.__qualname__ = f"{_PREFIX}{logger_class.__name__}"
    Masked.__module__ = __name__
    return Masked


_PREFIX = "Masked"


def __getattr__(name: str) -> Any:
    # PEP 562: `MaskedCSVLogger` and friends resolve on demand (pickle looks them up here).
    if name.startswith(_PREFIX):
        from pytorch_lightning import loggers

        logger_class = getattr(loggers, name.removeprefix(_PREFIX), None)
        if isinstance(logger_class, type):
            return masking(logger_class)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def tensorboard_logger(**kwargs: Any) -> Any:
    """A ``TensorBoardLogger`` that masks secrets in its hparams.

    Raises:
        ConfigError: neither tensorboard nor tensorboardX is installed (the extra).
    """
    from pytorch_lightning.loggers import TensorBoardLogger

    if not any(_installed(name) for name in ("tensorboard", "tensorboardX")):
        raise ConfigError(
            "logger.tensorboard",
            "tensorboard is not installed: pip install 'cnnlab[tensorboard]'",
        )

    return masking(TensorBoardLogger)(**kwargs)


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported (found on the path, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:
        return False
