"""The report of a sweep: leaderboard, plots, seed statistics and ``best.yaml``.

:func:`write_report` reads ``sweep.json`` in a sweep folder (written by the
sweeper when it starts), opens the study it names and writes, into the same
folder, ``report.md``, ``report.html``, one PNG per plot (Optuna's matplotlib
visualisation) and ``best.yaml``, an experiment config that re-runs the best
trial. The report covers the whole study: resumed runs and other workers too.

A plain Hydra multirun folder (``multirun.yaml``, no ``sweep.json``) gets the same
report without a study: a leaderboard ranked by each run's ``metrics.json``.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import statistics
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from cnnlab.errors import DataError

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

SWEEP_INFO = "sweep.json"
MULTIRUN_CONFIG = "multirun.yaml"
LEADERBOARD_HEADER = ["#", "state", "value", "params", "run folder", "seconds"]
# Keys of a trial's overrides that describe the sweep, not the trained run.
_NOT_RUN_KEYS = ("hparams_search", "experiment", "sweep.", "hydra.")


class _Target(TypedDict, total=False):
    """The objective a plot draws (the first one of a multi-objective study)."""

    target: Callable[[FrozenTrial], float]
    target_name: str


@dataclass
class Report:
    """What :func:`write_report` wrote.

    Attributes:
        markdown: ``report.md``.
        html: ``report.html``.
        best: ``best.yaml`` (None when no trial completed).
        plots: The PNG files.
    """

    markdown: Path
    html: Path
    best: Path | None
    plots: list[Path]


def load_sweep_study(sweep_dir: Path) -> tuple[optuna.Study, dict[str, Any]]:
    """Open the study of the sweep in ``sweep_dir`` and return it with ``sweep.json``.

    Raises:
        DataError: ``sweep_dir`` has no readable ``sweep.json``, or its study is gone.
    """
    import optuna

    from cnnlab.sweep.storage import open_storage

    path = Path(sweep_dir) / SWEEP_INFO
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"not a cnnlab sweep folder ({exc})") from None
    if not info.get("storage"):
        raise DataError(path, "the sweep kept its study in memory; nothing to report")
    try:
        study = optuna.load_study(
            study_name=info["study_name"], storage=open_storage(info["storage"])
        )
    except KeyError:
        raise DataError(
            path, f"study {info['study_name']!r} not found in {info['storage']}"
        ) from None
    return study, info


def write_report(sweep_dir: Path | str) -> Report:
    """Write the report files of the sweep in ``sweep_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    sweep_dir = Path(sweep_dir)
    if not (sweep_dir / SWEEP_INFO).exists() and (sweep_dir / MULTIRUN_CONFIG).exists():
        return write_multirun_report(sweep_dir)
    study, info = load_sweep_study(sweep_dir)
    trials = visible_trials(study)
    plots = _plots(study, sweep_dir)
    best = _write_best(study, trials, sweep_dir)
    sections = _sections(study, trials, info, plots, best, sweep_dir)
    markdown = _write(sweep_dir / "report.md", _to_markdown(sections))
    page = _write(sweep_dir / "report.html", _to_html(sections, study.study_name))
    return Report(markdown=markdown, html=page, best=best, plots=plots)


def visible_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials without the sweeper's bookkeeping (surplus asks)."""
    from cnnlab.sweep.storage import SURPLUS_ATTR

    return [t for t in study.get_trials(deepcopy=False) if not t.system_attrs.get(SURPLUS_ATTR)]


def leaderboard(study: optuna.Study, trials: list[FrozenTrial]) -> list[FrozenTrial]:
    """Completed trials, best first (by the first objective for several)."""
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    sign = -1.0 if study.directions[0] == StudyDirection.MAXIMIZE else 1.0
    return sorted(done, key=lambda t: (sign * t.values[0], t.number))


def seed_groups(trials: list[FrozenTrial], seed_key: str = "seed") -> list[dict[str, Any]]:
    """Mean and standard deviation of the first objective over seeds, per configuration.

    Returns:
        One row per configuration with more than one completed seed: ``params``
        (without the seed), ``n``, ``mean``, ``std``; empty when no trial varies the seed.
    """
    from optuna.trial import TrialState

    groups: dict[str, list[float]] = {}
    params_of: dict[str, dict[str, Any]] = {}
    for t in trials:
        if t.state != TrialState.COMPLETE or seed_key not in t.params or not t.values:
            continue
        params = {k: v for k, v in sorted(t.params.items()) if k != seed_key}
        key = json.dumps(params, sort_keys=True, default=str)
        groups.setdefault(key, []).append(t.values[0])
        params_of[key] = params
    rows = []
    for key, values in groups.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append(
            {
                "params": params_of[key],
                "n": len(values),
                "mean": statistics.fmean(values),
                "std": std,
            }
        )
    return sorted(rows, key=lambda r: -r["mean"])


def best_experiment(trial: FrozenTrial, metric_line: str) -> str:
    """Return ``best.yaml``: an experiment config (``@package _global_``) for ``trial``.

    Config-group overrides become ``override /group: option`` defaults entries, the
    trial's experiment (if any) is included first, and values become nested keys.
    """
    return experiment_config(trial.number, trial.user_attrs.get("overrides", []), metric_line)


def experiment_config(number: int, overrides: list[str], metric_line: str) -> str:
    """Return ``best.yaml`` for the run ``number`` made by ``overrides`` (see best_experiment)."""
    from cnnlab.config import config_dir

    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    defaults: list[str] = []
    values: dict[str, Any] = {}
    for line in overrides:
        key, _, value = line.partition("=")
        key = key.lstrip("+~")
        if key == "experiment" and value not in ("", "null"):
            defaults.insert(
                0, f"  # The trial's experiment (this file goes next to it).\n  - {value}"
            )
        elif key.startswith(_NOT_RUN_KEYS) or key in _NOT_RUN_KEYS:
            continue
        elif key in groups:
            defaults.append(f"  - override /{key}: {value}")
        else:
            _set_nested(values, key.split("."), _parse(value))
    lines = [
        "# @package _global_",
        f"# Best trial {number}: {metric_line}.",
        "# Re-run it: copy this file to conf/experiment/best.yaml, then",
        "#   cnnlab train experiment=best",
    ]
    if defaults:
        lines += ["defaults:", *defaults, "  - _self_"]
    from omegaconf import OmegaConf

    if values:
        lines.append(OmegaConf.to_yaml(OmegaConf.create(values)).rstrip())
    return "\n".join(lines) + "\n"


def _parse(value: str) -> Any:
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return OverridesParser.create().parse_override(f"k={value}").value()


def _set_nested(target: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    target[keys[-1]] = value


def _write(path: Path, text: str) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def _write_best(study: optuna.Study, trials: list[FrozenTrial], sweep_dir: Path) -> Path | None:
    board = leaderboard(study, trials)
    if not board:
        return None
    best = board[0]
    metric = ", ".join(_fmt(v) for v in best.values)
    return _write(sweep_dir / "best.yaml", best_experiment(best, f"objective {metric}"))


def _plots(study: optuna.Study, sweep_dir: Path) -> list[Path]:
    """Draw what the study's trials allow; a plot that cannot be drawn is left out."""
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as ovm

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []  # nothing to draw (and Optuna would warn once per plot)

    multi = len(study.directions) > 1
    first: _Target = (
        {"target": lambda t: t.values[0], "target_name": "objective 1"} if multi else {}
    )
    makers: dict[str, Any] = {
        "history": lambda: ovm.plot_optimization_history(study, **first),
        "importances": lambda: ovm.plot_param_importances(study, **first),
        "parallel_coordinate": lambda: ovm.plot_parallel_coordinate(study, **first),
        "slice": lambda: ovm.plot_slice(study, **first),
        "intermediate_values": lambda: ovm.plot_intermediate_values(study),
    }
    if multi:
        makers["pareto_front"] = lambda: ovm.plot_pareto_front(study)
    written = []
    # Categorical parameters are plotted as strings; matplotlib logs an INFO line per axis.
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)
    for name, make in makers.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ExperimentalWarning, too-few-trials warnings
            try:
                axes = make()
            except (ValueError, RuntimeError, ZeroDivisionError, IndexError):
                continue
        figure = _figure_of(axes)
        if figure is None or not _has_content(figure):
            plt.close("all")
            continue
        figure.set_size_inches(8, 5)
        path = sweep_dir / f"{name}.png"
        figure.savefig(path, dpi=90, bbox_inches="tight")
        plt.close("all")
        written.append(path)
    return written


def _figure_of(axes: Any) -> Any:
    if hasattr(axes, "get_figure"):
        return axes.get_figure()
    try:
        return next(iter(axes.flat)).get_figure()  # a numpy array of axes (slice plots)
    except (AttributeError, StopIteration):
        return None


def _has_content(figure: Any) -> bool:
    return any(ax.has_data() for ax in figure.axes)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _sections(
    study: optuna.Study,
    trials: list[FrozenTrial],
    info: dict[str, Any],
    plots: list[Path],
    best: Path | None,
    sweep_dir: Path,
) -> list[tuple[str, Any]]:
    """The report as (title, content) pairs: content is text, a table or plot paths."""
    from optuna.trial import TrialState

    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    summary = (
        f"Study `{study.study_name}` in `{info.get('storage')}`; directions "
        f"{', '.join(d.name.lower() for d in study.directions)}; sampler "
        f"`{info.get('sampler', {}).get('_target_', '?')}`; pruner "
        f"`{(info.get('pruner') or {}).get('_target_', '?')}`.\n\n"
        f"Trials: {len(trials)} - complete {counts['complete']}, pruned {counts['pruned']}, "
        f"failed {counts['fail']}, running {counts['running']}, waiting {counts['waiting']}."
    )
    if best is not None:
        summary += f"\n\nBest trial as an experiment config: `{best.name}`."
    board = leaderboard(study, trials)
    others = [t for t in trials if t not in board]
    rows = [_trial_row(t, sweep_dir) for t in board + sorted(others, key=lambda t: t.number)]
    sections: list[tuple[str, Any]] = [
        ("Summary", summary),
        ("Leaderboard", _table(rows, sweep_dir)),
    ]
    groups = seed_groups(trials)
    if groups:
        seed_rows = [
            [
                " ".join(f"{k}={_fmt(v)}" for k, v in g["params"].items()),
                str(g["n"]),
                _fmt(g["mean"]),
                _fmt(g["std"]),
            ]
            for g in groups
        ]
        sections.append(
            (
                "Over seeds (mean and standard deviation)",
                (["configuration", "seeds", "mean", "std"], seed_rows),
            )
        )
    if len(study.directions) > 1:
        front = [
            [
                str(t.number),
                ", ".join(_fmt(v) for v in t.values),
                " ".join(f"{k}={_fmt(v)}" for k, v in t.params.items()),
            ]
            for t in sorted(study.best_trials, key=lambda t: t.number)
        ]
        sections.append(("Pareto front", (["#", "values", "params"], front)))
    if plots:
        sections.append(("Plots", plots))
    return sections


@dataclass
class _Row:
    """One leaderboard line: a trial of a study, or a run of a plain multirun."""

    number: int
    state: str
    value: str
    params: str
    run_dir: Path | None
    seconds: float | None
    tests: dict[str, float]


def _trial_row(trial: FrozenTrial, sweep_dir: Path) -> _Row:
    attrs = trial.user_attrs
    run_dir = (
        Path(attrs["run_dir"])
        if "run_dir" in attrs
        else Path(attrs["sweep_dir"]) / str(attrs["job_num"])
        if "job_num" in attrs and "sweep_dir" in attrs
        else None
    )
    return _Row(
        number=trial.number,
        state=trial.state.name.lower(),
        value=", ".join(_fmt(v) for v in trial.values) if trial.values else attrs.get("error", ""),
        params=" ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items()),
        run_dir=run_dir,
        seconds=trial.duration.total_seconds() if trial.duration else None,
        tests=_test_metrics(run_dir),
    )


def _test_metrics(run_dir: Path | None) -> dict[str, float]:
    """The ``test/`` metrics in a run folder's ``metrics.json`` (none when it has none)."""
    if run_dir is None:
        return {}
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(metrics, dict):
        return {}
    return {
        k: float(v)
        for k, v in metrics.items()
        if k.startswith("test/") and isinstance(v, int | float)
    }


def _table(rows: list[_Row], sweep_dir: Path) -> tuple[list[str], list[list[str]]]:
    """The leaderboard table: one column per test metric that any run logged."""
    test_keys = sorted({k for row in rows for k in row.tests})
    header = [*LEADERBOARD_HEADER[:3], *test_keys, *LEADERBOARD_HEADER[3:]]
    table = []
    for row in rows:
        tests = [_fmt(row.tests[k]) if k in row.tests else "" for k in test_keys]
        table.append(
            [
                str(row.number),
                row.state,
                row.value,
                *tests,
                row.params,
                _relative(row.run_dir, sweep_dir),
                _fmt(row.seconds or 0.0),
            ]
        )
    return header, table


def _relative(path: Path | None, start: Path) -> str:
    """``path`` relative to the sweep folder (``3``, or ``../<other sweep>/0`` when resumed)."""
    if path is None:
        return ""
    return os.path.relpath(Path(path).resolve(), Path(start).resolve())


def write_multirun_report(sweep_dir: Path | str) -> Report:
    """Write ``report.md``, ``report.html`` and ``best.yaml`` of a plain Hydra multirun.

    Each job folder's ``run.json`` gives the run's status, overrides and resolved
    config (``optimized_metric`` and ``monitor``); its ``metrics.json`` the values.

    Raises:
        DataError: The folder holds no run folder with a readable ``run.json``.
    """
    from cnnlab.sweep.objective import metric_directions, optimized_metrics

    sweep_dir = Path(sweep_dir)
    runs = _multirun_runs(sweep_dir)
    if not runs:
        raise DataError(sweep_dir, "a multirun folder without run folders (no */run.json)")
    config = runs[0][1].get("config") or {}
    names = optimized_metrics(config)
    metric = names[0] if names else None
    direction = (metric_directions(config, [metric]) if metric else [None])[0] or "minimize"
    rows: list[_Row] = []
    ranked: list[tuple[float, _Row, dict[str, Any]]] = []
    for run_dir, manifest, metrics in runs:
        value = metrics.get(metric) if metric else None
        state = str(manifest.get("status", "unknown"))
        number = int(run_dir.name) if run_dir.name.isdigit() else len(rows)
        row = _Row(
            number=number,
            state=state,
            value=_fmt(float(value))
            if isinstance(value, int | float)
            else str(manifest.get("error") or ""),
            params=" ".join(manifest.get("overrides") or []),
            run_dir=run_dir,
            seconds=manifest.get("duration_s"),
            tests=_test_metrics(run_dir),
        )
        rows.append(row)
        if state == "completed" and isinstance(value, int | float) and math.isfinite(value):
            ranked.append((float(value), row, manifest))
    sign = -1.0 if direction == "maximize" else 1.0
    ranked.sort(key=lambda item: (sign * item[0], item[1].number))
    order = [row for _, row, _ in ranked]
    order += sorted((r for r in rows if all(r is not o for o in order)), key=lambda r: r.number)
    best = None
    if ranked:
        value, row, manifest = ranked[0]
        text = experiment_config(
            row.number, list(manifest.get("overrides") or []), f"{metric} {_fmt(value)}"
        )
        best = _write(sweep_dir / "best.yaml", text)
    counts = {state: sum(r.state == state for r in rows) for state in ("completed", "failed")}
    summary = (
        f"A plain Hydra multirun (no study): {len(rows)} runs - completed "
        f"{counts['completed']}, failed {counts['failed']}, other "
        f"{len(rows) - sum(counts.values())}. Ranked by `{metric}` ({direction}), "
        "from each run's metrics.json."
    )
    if best is not None:
        summary += f"\n\nBest run as an experiment config: `{best.name}`."
    sections: list[tuple[str, Any]] = [
        ("Summary", summary),
        ("Leaderboard", _table(order, sweep_dir)),
    ]
    markdown = _write(sweep_dir / "report.md", _to_markdown(sections))
    page = _write(sweep_dir / "report.html", _to_html(sections, sweep_dir.name))
    return Report(markdown=markdown, html=page, best=best, plots=[])


def _multirun_runs(sweep_dir: Path) -> list[tuple[Path, dict[str, Any], dict[str, Any]]]:
    """(folder, run.json, metrics.json) of each job folder, in job order."""
    from cnnlab.runs.listing import RUN_FILE, read_run

    runs = []
    for path in sweep_dir.glob(f"*/{RUN_FILE}"):
        try:
            run = read_run(path.parent)
        except DataError:
            continue
        runs.append((run.dir, run.manifest, run.metrics))

    def job_order(item: tuple[Path, Any, Any]) -> tuple[int, str]:
        name = item[0].name
        return (int(name), name) if name.isdigit() else (1 << 30, name)

    return sorted(runs, key=job_order)


def _to_markdown(sections: list[tuple[str, Any]]) -> str:
    out = ["# Sweep report", ""]
    for title, content in sections:
        out += [f"## {title}", ""]
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, tuple):
            header, rows = content
            out.append("| " + " | ".join(header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        else:
            out += [f"![{p.stem}]({p.name})" for p in content]
        out.append("")
    return "\n".join(out)


def _to_html(sections: list[tuple[str, Any]], title: str) -> str:
    esc = html.escape
    out = [
        "<!doctype html>",
        f"<html><head><meta charset='utf-8'><title>{esc(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px;"
        "font-size:13px}img{max-width:100%}</style></head><body>",
        f"<h1>Sweep report: {esc(title)}</h1>",
    ]
    for name, content in sections:
        out.append(f"<h2>{esc(name)}</h2>")
        if isinstance(content, str):
            out += [f"<p>{esc(p)}</p>" for p in content.split("\n\n")]
        elif isinstance(content, tuple):
            header, rows = content
            out.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>")
            out += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows]
            out.append("</table>")
        else:
            out += [f"<p><img src='{esc(p.name)}' alt='{esc(p.stem)}'></p>" for p in content]
    out.append("</body></html>")
    return "\n".join(out) + "\n"
