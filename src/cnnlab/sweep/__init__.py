"""Sweeps: what a training job does when cnnlab's Optuna sweeper launched it.

The sweeper adds a ``sweep`` node to each job's config (study name, storage,
trial number, pruner). :func:`sweep_callbacks` turns it into the Lightning
callbacks that report to the trial; a job outside a sweep gets none.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig


def sweep_callbacks(cfg: DictConfig) -> list[Any]:
    """Return the callbacks a sweep trial needs (none outside a sweep)."""
    sweep = cfg.get("sweep")
    if not sweep or sweep.get("trial_number") is None:
        return []
    from cnnlab.sweep.pruning import trial_pruning_callback
    from cnnlab.sweep.trial_links import TrialLinks

    return [trial_pruning_callback(cfg), TrialLinks.from_config(cfg)]
