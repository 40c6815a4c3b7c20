"""The sweep as one page in W&B: a summary run in the study's group.

With ``logger=wandb`` each trial is a run in the group named after the study.
When the sweep ends, :func:`log_sweep_summary` adds one more run to that group
(``job_type=sweep``) holding the leaderboard as a ``wandb.Table``, the report's
Optuna plots as images, the best trial and its params, and the trial counts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

log = logging.getLogger(__name__)

JOB_TYPE = "sweep"
LEADERBOARD_KEY = "leaderboard"
WANDB_TARGET = "cnnlab.tracking.wandb.wandb_logger"


def wandb_logger_config(config: DictConfig) -> DictConfig | None:
    """The ``logger`` entry that builds the W&B logger (``logger=wandb`` or ``many``), if any."""
    loggers = OmegaConf.select(config, "logger", default=None)
    if not isinstance(loggers, DictConfig):
        return None
    for node in loggers.values():
        if isinstance(node, DictConfig) and node.get("_target_") == WANDB_TARGET:
            return node
    return None


def leaderboard_rows(
    trials: list[FrozenTrial], metric_names: list[str]
) -> tuple[list[str], list[list[Any]]]:
    """The leaderboard's columns and rows: trial, state, one column per objective, params, run.

    Params are a JSON object (trials of one study may differ in their params); an
    objective is None for a trial without a value (pruned, failed, running).
    """
    columns = ["trial", "state", *metric_names, "params", "run_dir"]
    rows = [
        [
            t.number,
            t.state.name.lower(),
            *(t.values or [None] * len(metric_names)),
            json.dumps(t.params, sort_keys=True),
            str(t.user_attrs.get("run_dir", "")),
        ]
        for t in sorted(trials, key=lambda t: t.number)
    ]
    return columns, rows


def log_sweep_summary(
    config: DictConfig, study: optuna.Study, sweep_dir: Path, metric_names: list[str]
) -> Path | None:
    """Log the sweep's summary run when the sweep logs to W&B; return its local folder.

    Never raises: a summary that cannot be logged must not hide the sweep's result.
    """
    node = wandb_logger_config(config)
    if node is None:
        return None
    try:
        return _log(node, study, sweep_dir, metric_names)
    except Exception:
        log.exception("could not log the sweep's summary run to W&B")
        return None


def _log(node: DictConfig, study: optuna.Study, sweep_dir: Path, metric_names: list[str]) -> Path:
    import wandb
    from optuna.trial import TrialState

    from cnnlab.sweeper.report import visible_trials
    from cnnlab.tracking.wandb import resolve_mode, run_settings

    trials = visible_trials(study)
    names = metric_names or [f"objective_{i + 1}" for i in range(len(study.directions))]
    columns, rows = leaderboard_rows(trials, names)
    counts = {
        f"trials/{state.name.lower()}": sum(t.state == state for t in trials)
        for state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    }
    sweep_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=str(node.get("project") or "cnnlab"),
        entity=node.get("entity"),
        group=study.study_name,
        job_type=JOB_TYPE,
        name=f"sweep-{study.study_name}",
        tags=list(node.get("tags") or []),
        mode=resolve_mode(node.get("mode")),  # type: ignore[arg-type]
        dir=str(sweep_dir),
        config={"study_name": study.study_name, "sweep_dir": str(sweep_dir)},
        # wandb records the command line in the run file: none holding a secret.
        settings=run_settings(),
    )
    try:
        images = {
            f"plots/{path.stem}": wandb.Image(str(path)) for path in sorted(sweep_dir.glob("*.png"))
        }
        table = wandb.Table(columns=list[str | int](columns), data=rows)
        run.log({LEADERBOARD_KEY: table, **images})
        run.summary.update({**counts, **_best(study, names)})
        sync_dir = Path(str(run.settings.sync_dir))
    finally:
        run.finish()
    return sync_dir


def _best(study: optuna.Study, names: list[str]) -> dict[str, Any]:
    """The best trial (single objective) or the Pareto front's trial numbers."""
    if len(study.directions) > 1:
        return {"best/trials": sorted(t.number for t in study.best_trials)}
    from cnnlab.sweep.objective import ranked_trials

    ranked = ranked_trials(study)  # ties broken as in best.yaml and the report
    if not ranked:  # no trial completed
        return {}
    best = ranked[0]
    return {
        "best/trial": best.number,
        f"best/{names[0]}": best.value,
        "best/params": best.params,
        "best/run_dir": str(best.user_attrs.get("run_dir", "")),
    }
