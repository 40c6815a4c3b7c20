"""The public Hydra ``Sweeper``; all Optuna logic lives in :mod:`._impl`, imported lazily."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hydra.plugins.sweeper import Sweeper

# Importing the config module registers hydra/sweeper=cnnlab_optuna and its groups.
from hydra_plugins.cnnlab_optuna_sweeper import config as _config  # noqa: F401

if TYPE_CHECKING:
    from hydra.types import HydraContext, TaskFunction
    from omegaconf import DictConfig


class CnnlabOptunaSweeper(Sweeper):
    """Runs an Optuna study through Hydra's launcher (see ``config.CnnlabOptunaSweeperConf``)."""

    def __init__(self, **kwargs: Any) -> None:
        from hydra_plugins.cnnlab_optuna_sweeper._impl import OptunaSweeperImpl

        self.sweeper = OptunaSweeperImpl(**kwargs)

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the context and build the launcher (called once by Hydra)."""
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> None:
        """Run the study; ``arguments`` are the command line's overrides.

        Returns None, as hydra-optuna-sweeper does: the results are in the study and in
        the sweep folder (``optimization_results.yaml``, the report).
        """
        self.sweeper.sweep(arguments)
