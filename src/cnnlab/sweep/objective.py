"""What a sweep optimises: the names of the returned metrics, their directions, the best trial.

One place for the rule "accuracy is maximised, loss minimised", shared by the
sweeper (its default direction) and the report (the order of a plain multirun);
and one place for which trial is best when several share the best value: the one with
the lowest validation loss at its best epoch (:func:`ranked_trials`), used by the
printed outcome, ``best.yaml``, the report and ``optimization_results.yaml`` alike.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from omegaconf import OmegaConf

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial, Trial

# The trial's user attribute holding its tie-break value (the run's ``val/loss_at_best``).
TIE_BREAK_ATTR = "val/loss_at_best"


def optimized_metrics(config: Any) -> list[str]:
    """The names of what each job returns: ``optimized_metric`` (one or a list), or []."""
    names = OmegaConf.select(_as_config(config), "optimized_metric", default=None)
    if names is None:
        return []
    if OmegaConf.is_list(names) or isinstance(names, list | tuple):
        return [str(n) for n in names]
    return [str(names)]


def metric_directions(config: Any, names: list[str]) -> list[str | None]:
    """The direction (``maximize``/``minimize``) each metric of ``names`` is better in.

    A metric derived from ``monitor.metric`` (``val/acc_best`` from ``val/acc``)
    follows ``monitor.mode``; otherwise accuracies are maximised, and losses and
    parameter counts minimised. None where the config does not tell.
    """
    config = _as_config(config)
    metric = OmegaConf.select(config, "monitor.metric", default=None)
    mode = OmegaConf.select(config, "monitor.mode", default=None)
    directions: list[str | None] = []
    for name in names:
        leaf = name.rsplit("/", 1)[-1]
        if metric and mode in ("min", "max") and name.startswith(str(metric)):
            directions.append(f"{mode}imize")
        elif leaf.startswith("acc"):
            directions.append("maximize")
        elif leaf.startswith("loss") or leaf == "params":
            directions.append("minimize")
        else:
            directions.append(None)
    return directions


def _as_config(config: Any) -> Any:
    return config if OmegaConf.is_config(config) else OmegaConf.create(config or {})


def record_tie_break(trial: Trial, run_dir: str | os.PathLike[str]) -> None:
    """Store the run's validation loss at its best epoch on ``trial`` (before it is told).

    Read from the run folder's ``metrics.json`` (as any run folder: a bounded regular file);
    a run without it (an older release, no validation loss) leaves the trial without one.
    """
    from cnnlab.errors import DataError
    from cnnlab.files.read import read_json_object

    try:
        value = _finite(read_json_object("metrics.json", inside=run_dir).get(TIE_BREAK_ATTR))
    except DataError:
        return
    if value is not None:
        trial.set_user_attr(TIE_BREAK_ATTR, value)


def tie_break_value(trial: FrozenTrial) -> float | None:
    """The trial's recorded tie-break value (lower is better), or None."""
    return _finite(trial.user_attrs.get(TIE_BREAK_ATTR))


def _finite(value: Any) -> float | None:
    """``value`` as a float if it is a finite number (not a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def ranked_trials(
    study: optuna.Study, trials: list[FrozenTrial] | None = None
) -> list[FrozenTrial]:
    """Completed trials of ``study`` (or of ``trials``), best first.

    By the first objective in the study's direction; trials with the same value by their
    validation loss at the best epoch (lowest first; none recorded: after those that have
    one), then by number.
    """
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    if trials is None:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0

    def order(trial: FrozenTrial) -> tuple[float, bool, float, int]:
        loss = tie_break_value(trial)
        return (sign * trial.values[0], loss is None, loss or 0.0, trial.number)

    return sorted(done, key=order)


def tied_best(ranked: list[FrozenTrial]) -> int:
    """How many of the ``ranked`` trials share the first one's objective value."""
    if not ranked:
        return 0
    return sum(t.values[0] == ranked[0].values[0] for t in ranked)


def tie_line(ranked: list[FrozenTrial]) -> str:
    """Words on the best trial's ties, e.g. ``6 trials tie at 1; chosen by the lowest ...``."""
    ties = tied_best(ranked)
    if ties < 2:
        return ""
    loss = tie_break_value(ranked[0])
    chosen = (
        f"the lowest {TIE_BREAK_ATTR} ({loss:.6g})"
        if loss is not None
        else "the lowest trial number (no validation loss recorded)"
    )
    return f"{ties} trials tie at {ranked[0].values[0]:.6g}; chosen by {chosen}"
