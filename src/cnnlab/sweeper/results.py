"""``optimization_results.yaml``: a sweep's outcome in hydra-optuna-sweeper's format.

Tools written against the official plugin read this file from the sweep folder.
One objective::

    name: optuna
    best_params: {optimizer.lr: 0.003, data.batch_size: 64}
    best_value: 0.91

Several objectives, the Pareto front::

    name: optuna
    solutions:
    - params: {model.width: 8}
      values: [0.85, 6200.0]

The numbers come from the whole study, so a resumed sweep or one of several workers
reports the study's best, not only its own trials'. cnnlab's richer report
(``report.md``, ``best.yaml``) is written beside it by :mod:`cnnlab.sweeper.report`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

if TYPE_CHECKING:
    import optuna

RESULTS_FILE = "optimization_results.yaml"


def optimization_results(study: optuna.Study) -> dict[str, Any] | None:
    """Return the study's outcome as the official plugin writes it; None before any result."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return None
    if len(study.directions) > 1:
        front = [{"params": t.params, "values": t.values} for t in study.best_trials]
        return {"name": "optuna", "solutions": front}
    from cnnlab.sweep.objective import ranked_trials

    best = ranked_trials(study)[0]  # ties broken by the validation loss at the best epoch
    return {"name": "optuna", "best_params": best.params, "best_value": best.value}


def write_optimization_results(
    study: optuna.Study, sweep_dir: str | os.PathLike[str]
) -> Path | None:
    """Write ``optimization_results.yaml`` into ``sweep_dir``; return its path.

    Nothing is written while no trial has completed. The file is replaced in one rename
    (:mod:`cnnlab.files.atomic`), so a reader never sees it half-written and a link planted
    at its name is replaced, not followed.
    """
    results = optimization_results(study)
    if results is None:
        return None
    from cnnlab.files.atomic import write_text_atomic

    text = OmegaConf.to_yaml(OmegaConf.create(results))
    return write_text_atomic(Path(sweep_dir) / RESULTS_FILE, text)
