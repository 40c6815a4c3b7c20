"""Hydra callbacks that every ``cnnlab <task> -m`` needs, whatever the sweeper.

Named in ``conf/hydra/default.yaml`` under ``hydra.callbacks``.
"""

from __future__ import annotations

from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


class HydraConfigAtMultirunStart(Callback):
    """Make ``${hydra:...}`` resolvable before the sweeper reads ``hydra.sweep.dir``.

    ``paths.output_root`` (hence ``hydra.sweep.dir``) uses ``${hydra:runtime.cwd}``.
    Hydra sets its config for each job, but Hydra's basic sweeper resolves the sweep
    folder before any job starts, and fails with "HydraConfig was not set" (with
    ``$CNNLAB_OUTPUTS`` too: ``oc.env`` resolves its default eagerly). The multirun's
    start is the first moment a callback sees the composed config.
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Set the composed config as Hydra's config for the sweeper process."""
        from hydra.core.hydra_config import HydraConfig

        HydraConfig.instance().set_config(config)
