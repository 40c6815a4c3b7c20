"""The report of a sweep: leaderboard, plots, seed statistics and ``best.yaml``.

It covers the whole study named in ``sweep.json``: resumed runs and other workers too. A plain
Hydra multirun folder (``multirun.yaml``, no ``sweep.json``) gets a leaderboard ranked by
each run's ``metrics.json`` instead.

A sweep folder may be a colleague's or an unpacked archive, so it is read as data: every file
through :mod:`cnnlab.files.read`, nothing read resolved as an interpolation, the study opened
read-only where it already exists, and every file written through :mod:`cnnlab.files.atomic`
(a link planted at a name is replaced, never followed).
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from cnnlab.errors import DataError, printable
from cnnlab.files.read import field as checked
from cnnlab.files.read import read_json_object
from cnnlab.sweep.objective import ranked_trials, tie_line
from cnnlab.sweep.storage import CONTINUATION_ATTR

if TYPE_CHECKING:
    import optuna
    from optuna.trial import FrozenTrial

    from cnnlab.records.listing import RunInfo

SWEEP_INFO = "sweep.json"
MULTIRUN_CONFIG = "multirun.yaml"
LEADERBOARD_HEADER = ["#", "state", "value", "params", "run folder", "seconds"]
IMPORTANCES = (
    "Parameter importances (importances.png): PED-ANOVA, Optuna's PedAnovaImportanceEvaluator "
    "(how much each parameter's distribution in the best 10% of the completed trials differs "
    "from all of them)."
)
# Keys of a trial's overrides that describe the sweep, not the trained run.
_NOT_RUN_KEYS = ("hparams_search", "experiment", "sweep.", "hydra.")


@dataclass
class Report:
    """What :func:`write_report` wrote (``best`` is None when no trial completed), and one
    warning line per run file that could not be read (that run, or its metrics, left out)."""

    markdown: Path
    html: Path
    best: Path | None
    plots: list[Path]
    warnings: list[str] = field(default_factory=list)


def load_sweep_study(sweep_dir: Path) -> tuple[optuna.Study, dict[str, Any]]:
    """Open the study of the sweep in ``sweep_dir`` and return it with ``sweep.json``.

    The study is opened read-only, and only where it already exists: ``sweep.json`` may
    name any file or server.

    Raises:
        DataError: Naming ``sweep.json``: missing, unreadable, not an object, a field of the
            wrong type, or a storage that does not hold the study.
    """
    from cnnlab.sweep.storage import load_existing_study

    path = Path(sweep_dir) / SWEEP_INFO
    try:
        info = read_json_object(SWEEP_INFO, inside=sweep_dir)
    except DataError as exc:
        raise DataError(path, f"not a cnnlab sweep folder ({exc.message})") from None
    study_name = checked(path, info, "study_name", str)
    storage = checked(path, info, "storage", str)
    for key in ("sampler", "pruner"):  # shown in the summary
        checked(path, info, key, dict)
    if not study_name:
        raise DataError(path, "study_name: missing")
    if not storage:
        raise DataError(path, "the sweep kept its study in memory; nothing to report")
    return load_existing_study(storage, study_name, path), info


def write_report(sweep_dir: Path | str) -> Report:
    """Write the report files of the sweep in ``sweep_dir``; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    sweep_dir = Path(sweep_dir)
    if not os.path.lexists(sweep_dir / SWEEP_INFO) and (sweep_dir / MULTIRUN_CONFIG).exists():
        return write_multirun_report(sweep_dir)
    study, info = load_sweep_study(sweep_dir)
    trials = visible_trials(study)
    board = ranked_trials(study, trials)  # ties in the order of their validation loss
    ties = tie_line(board) if len(study.directions) == 1 else ""
    plots = _plots(study, sweep_dir)
    best = _write_best(board, ties, sweep_dir)
    problems: list[str] = []
    sections = _sections(study, trials, board, ties, info, plots, best, sweep_dir, problems)
    markdown = _write_text(sweep_dir / "report.md", _to_markdown(sections))
    page = _write_text(sweep_dir / "report.html", _to_html(sections, study.study_name))
    return Report(markdown=markdown, html=page, best=best, plots=plots, warnings=problems)


def visible_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The study's trials without the sweeper's bookkeeping (surplus asks)."""
    from cnnlab.sweep.storage import SURPLUS_ATTR

    return [t for t in study.get_trials(deepcopy=False) if not t.system_attrs.get(SURPLUS_ATTR)]


def seed_groups(trials: list[FrozenTrial], seed_key: str = "seed") -> list[dict[str, Any]]:
    """Mean and standard deviation of the first objective over seeds, per configuration.

    Returns:
        One row per configuration of the completed trials that set the seed: ``params``
        (without the seed), ``n``, ``mean``, ``std``; empty when no trial sets it.
    """
    from optuna.trial import TrialState

    groups: dict[str, tuple[dict[str, Any], list[float]]] = {}
    for t in trials:
        if t.state != TrialState.COMPLETE or seed_key not in t.params or not t.values:
            continue
        params = {k: v for k, v in sorted(t.params.items()) if k != seed_key}
        key = json.dumps(params, sort_keys=True, default=str)
        groups.setdefault(key, (params, []))[1].append(t.values[0])
    rows = [
        {
            "params": params,
            "n": len(values),
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        }
        for params, values in groups.values()
    ]
    return sorted(rows, key=lambda r: -r["mean"])


def experiment_config(number: int, overrides: list[str], metric_line: str) -> str:
    """Return ``best.yaml``: an experiment config (``@package _global_``) re-running ``number``.

    Config-group overrides become ``override /group: option`` defaults entries, the run's
    experiment (if any) is included first, and values become nested keys.
    """
    from cnnlab.config import config_dir

    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    defaults: list[str] = []
    values: dict[str, Any] = {}
    for line in overrides:
        if not line.isprintable():  # a newline would add lines of its own to the YAML
            continue
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
    """An override's value as Hydra reads it (the text itself where Hydra cannot)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    try:
        return OverridesParser.create().parse_override(f"k={value}").value()
    except (HydraException, ValueError):
        return value


def _set_nested(target: dict[str, Any], keys: list[str], value: Any) -> None:
    for key in keys[:-1]:
        if not isinstance(target.get(key), dict):  # a later override (a.b=) wins over a=
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value


def _write(path: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Replace ``path`` with what ``write`` writes, all or nothing (a link planted at ``path``
    is replaced, not followed); a DataError naming ``path`` when it cannot be written."""
    from cnnlab.files.atomic import atomic_write

    try:
        return atomic_write(path, write)
    except OSError as exc:  # WriteError (full, read-only) is a DataError and passes
        raise DataError(path, f"cannot write: {exc.strerror or exc}") from None


def _write_text(path: Path, text: str) -> Path:
    return _write(path, lambda fh: fh.write(text.encode("utf-8")))


def _write_best(board: list[FrozenTrial], ties: str, sweep_dir: Path) -> Path | None:
    if not board:
        return None
    best = board[0]
    overrides = best.user_attrs.get("overrides")
    lines = [o for o in overrides if isinstance(o, str)] if isinstance(overrides, list) else []
    # A lost trial's copy continued the lost run from its checkpoint; re-running starts afresh.
    lines = [o for o in lines if o != best.user_attrs.get(CONTINUATION_ATTR)]
    metric = f"objective {', '.join(_fmt(v) for v in best.values)}"
    text = experiment_config(best.number, lines, f"{metric} ({ties})" if ties else metric)
    return _write_text(sweep_dir / "best.yaml", text)


def _plots(study: optuna.Study, sweep_dir: Path) -> list[Path]:
    """Draw what the study's trials allow; a plot that cannot be drawn is left out."""
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return []  # nothing to draw (and Optuna would warn once per plot)

    written = []
    # Categorical parameters are plotted as strings; matplotlib logs an INFO line per axis.
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)
    try:
        for name, make in plot_makers(study).items():
            plt.close("all")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning, too-few-trials warnings
                try:
                    make()
                except (ValueError, RuntimeError, ZeroDivisionError, IndexError):
                    continue
            figure = plt.gcf()  # the one Optuna drew (its axes, or an array of them for slices)
            if any(ax.has_data() for ax in figure.axes):
                figure.set_size_inches(8, 5)
                written.append(_write(sweep_dir / f"{name}.png", _png_of(figure)))
    finally:
        plt.close("all")
    return written


def plot_makers(study: optuna.Study) -> dict[str, Callable[[], Any]]:
    """The report's plots by file name, each a function drawing it with Optuna's matplotlib.

    The value axis names the objective (``val/acc_best``, stored in the study by the sweeper),
    not Optuna's "Objective Value"; with several objectives the plots show the first.
    """
    from optuna.visualization import matplotlib as ovm

    names = study.metric_names or [f"objective {i + 1}" for i in range(len(study.directions))]
    first: dict[str, Any] = {}  # the objective the plots draw
    if len(study.directions) > 1:
        first = {"target": lambda t: t.values[0], "target_name": names[0]}
    elif study.metric_names:  # a study of an earlier release has none: Optuna's label
        first = {"target_name": names[0]}
    makers: dict[str, Callable[[], Any]] = {
        "history": lambda: ovm.plot_optimization_history(study, **first),
        "importances": lambda: ovm.plot_param_importances(
            study, evaluator=_importance_evaluator(), **first
        ),
        "parallel_coordinate": lambda: ovm.plot_parallel_coordinate(study, **first),
        "slice": lambda: ovm.plot_slice(study, **first),
        "intermediate_values": lambda: ovm.plot_intermediate_values(study),
    }
    if len(study.directions) > 1:
        makers["pareto_front"] = lambda: ovm.plot_pareto_front(study)
    return makers


def _importance_evaluator() -> optuna.importance.BaseImportanceEvaluator:
    """The evaluator of the importances plot, named in the report (:data:`IMPORTANCES`).

    Optuna 5's default, given explicitly so that a change of default cannot change
    what the report says it shows. It is cheap: a Parzen estimator per parameter, no model
    fitted (fANOVA fits a random forest).
    """
    from optuna.importance import PedAnovaImportanceEvaluator

    return PedAnovaImportanceEvaluator()


def _png_of(figure: Any) -> Callable[[BinaryIO], object]:
    """A writer of ``figure`` as a PNG into an open file (matplotlib opens no file itself)."""
    # A figure Optuna lays out itself needs no "tight" box: that is a second layout pass.
    # The others keep it: a layout engine of ours misplaces their colorbars (slice) or fails
    # (constrained, on parallel coordinates).
    box = None if figure.get_layout_engine() else "tight"
    return lambda fh: figure.savefig(fh, format="png", dpi=90, bbox_inches=box)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def _params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={_fmt(v)}" for k, v in params.items())


def _sections(
    study: optuna.Study,
    trials: list[FrozenTrial],
    board: list[FrozenTrial],
    ties: str,
    info: dict[str, Any],
    plots: list[Path],
    best: Path | None,
    sweep_dir: Path,
    problems: list[str],
) -> list[tuple[str, Any]]:
    """The report as (title, content) pairs: content is text, a table or plot paths.

    A run folder whose ``metrics.json`` cannot be read adds a line to ``problems``.
    """
    from optuna.trial import TrialState

    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    summary = (
        f"Study `{study.study_name}` in `{info.get('storage')}`; directions "
        f"{', '.join(d.name.lower() for d in study.directions)}; sampler "
        f"`{(info.get('sampler') or {}).get('_target_', '?')}`; pruner "
        f"`{(info.get('pruner') or {}).get('_target_', '?')}`.\n\n"
        f"Trials: {len(trials)} - complete {counts['complete']}, pruned {counts['pruned']}, "
        f"failed {counts['fail']}, running {counts['running']}, waiting {counts['waiting']}."
    )
    if best is not None:
        summary += f"\n\nBest trial as an experiment config: `{best.name}`."
    if ties:
        summary += f" {ties[0].upper()}{ties[1:]}."
    if any(p.stem == "importances" for p in plots):
        summary += f"\n\n{IMPORTANCES}"
    others = [t for t in trials if t not in board]
    ordered = board + sorted(others, key=lambda t: t.number)
    rows = [_trial_row(t, problems) for t in ordered]
    sections: list[tuple[str, Any]] = [
        ("Summary", summary),
        ("Leaderboard", _table(rows, sweep_dir)),
    ]
    if groups := seed_groups(trials):
        seed_rows = [
            [_params(g["params"]), str(g["n"]), _fmt(g["mean"]), _fmt(g["std"])] for g in groups
        ]
        header = ["configuration", "seeds", "mean", "std"]
        sections.append(("Over seeds (mean and standard deviation)", (header, seed_rows)))
    if len(study.directions) > 1:
        front = [
            [str(t.number), ", ".join(_fmt(v) for v in t.values), _params(t.params)]
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


def _trial_row(trial: FrozenTrial, problems: list[str]) -> _Row:
    run_dir = _trial_run_dir(trial.user_attrs)
    value = (
        ", ".join(_fmt(v) for v in trial.values) if trial.values else trial.user_attrs.get("error")
    )
    tests: dict[str, float] = {}
    if run_dir is not None:
        from cnnlab.records.listing import read_metrics

        metrics, problem = read_metrics(run_dir)
        tests = _test_metrics(metrics)
        problems += [problem] if problem else []
    return _Row(
        number=trial.number,
        state=trial.state.name.lower(),
        value=value if isinstance(value, str) else "",
        params=_params(trial.params),
        run_dir=run_dir,
        seconds=trial.duration.total_seconds() if trial.duration else None,
        tests=tests,
    )


def _trial_run_dir(attrs: dict[str, Any]) -> Path | None:
    """The trial's run folder as the sweeper recorded it (None when it did not)."""
    run_dir, sweep_dir, job = attrs.get("run_dir"), attrs.get("sweep_dir"), attrs.get("job_num")
    if isinstance(run_dir, str) and run_dir:
        return Path(run_dir)
    if isinstance(sweep_dir, str) and sweep_dir and type(job) is int:
        return Path(sweep_dir) / str(job)
    return None


def _test_metrics(metrics: dict[str, float]) -> dict[str, float]:
    """The ``test/`` entries of a run's numeric metrics."""
    return {k: v for k, v in metrics.items() if k.startswith("test/")}


def _table(rows: list[_Row], sweep_dir: Path) -> tuple[list[str], list[list[str]]]:
    """The leaderboard table: one column per test metric that any run logged."""
    test_keys = sorted({k for row in rows for k in row.tests})
    header = [*LEADERBOARD_HEADER[:3], *test_keys, *LEADERBOARD_HEADER[3:]]
    table = [
        [
            str(row.number),
            row.state,
            row.value,
            *(_fmt(row.tests[k]) if k in row.tests else "" for k in test_keys),
            row.params,
            _relative(row.run_dir, sweep_dir),
            _fmt(row.seconds or 0.0),
        ]
        for row in rows
    ]
    return header, table


def _relative(path: Path | None, start: Path) -> str:
    """``path`` relative to the sweep folder (``3``, or ``../<other sweep>/0`` when resumed)."""
    if path is None:
        return ""
    try:
        return os.path.relpath(Path(path).resolve(), Path(start).resolve())
    except (OSError, ValueError, RuntimeError):  # a NUL byte, a link loop
        return str(path)


def write_multirun_report(sweep_dir: Path | str) -> Report:
    """Write ``report.md``, ``report.html`` and ``best.yaml`` of a plain Hydra multirun.

    Each job folder's ``run.json`` gives the run's status, overrides and config
    (``optimized_metric`` and ``monitor``, as stored); its ``metrics.json`` the values. A job
    folder that cannot be read is left out with a line in :attr:`Report.warnings`.

    Raises:
        DataError: The folder holds no run folder with a readable ``run.json``.
    """
    sweep_dir = Path(sweep_dir)
    problems: list[str] = []
    runs = _multirun_runs(sweep_dir, problems)
    if not runs:
        if problems:
            raise DataError(sweep_dir, f"no readable run folder; {problems[0]}")
        raise DataError(sweep_dir, "a multirun folder without run folders (no */run.json)")
    metric, direction = _ranking(runs[0].config)
    rows: list[_Row] = []
    ranked: list[tuple[float, _Row, RunInfo]] = []
    for run in runs:
        value = run.metrics.get(metric) if metric else None
        number = _job_number(run.dir.name)
        row = _Row(
            number=len(rows) if number is None else number,
            state=run.status,
            value=_fmt(value) if value is not None else (run.error or ""),
            params=" ".join(run.overrides),
            run_dir=run.dir,
            seconds=_number(run.manifest.get("duration_s")),
            tests=_test_metrics(run.metrics),
        )
        rows.append(row)
        if run.status == "completed" and value is not None and math.isfinite(value):
            ranked.append((value, row, run))
    sign = -1.0 if direction == "maximize" else 1.0
    ranked.sort(key=lambda item: (sign * item[0], item[1].number))
    order = [row for _, row, _ in ranked]
    order += sorted((r for r in rows if all(r is not o for o in order)), key=lambda r: r.number)
    best = None
    if ranked:
        value, row, run = ranked[0]
        text = experiment_config(row.number, run.overrides, f"{metric} {_fmt(value)}")
        best = _write_text(sweep_dir / "best.yaml", text)
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
    markdown = _write_text(sweep_dir / "report.md", _to_markdown(sections))
    page = _write_text(sweep_dir / "report.html", _to_html(sections, sweep_dir.name))
    return Report(markdown=markdown, html=page, best=best, plots=[], warnings=problems)


def _ranking(config: dict[str, Any]) -> tuple[str | None, str]:
    """The metric a plain multirun is ranked by, and its direction, from a run's config.

    Read as plain values, never resolved: run.json stores its config resolved, so a
    ``${...}`` left in it is not cnnlab's (``${oc.env:AWS_SECRET_ACCESS_KEY}`` would put a
    secret of this machine into the report). Such a value counts as absent.
    """
    from cnnlab.sweep.objective import metric_directions

    optimized = config.get("optimized_metric")
    names = [n for n in (optimized if isinstance(optimized, list) else [optimized]) if _plain(n)]
    metric = names[0] if names else None
    monitor = config.get("monitor")
    monitor = monitor if isinstance(monitor, dict) else {}
    plain = {"monitor": {k: monitor[k] for k in ("metric", "mode") if _plain(monitor.get(k))}}
    direction = metric_directions(plain, [metric])[0] if metric else None
    return metric, direction or "minimize"


def _plain(value: Any) -> bool:
    """Whether ``value`` is a one-line string with no interpolation in it."""
    return isinstance(value, str) and bool(value) and value.isprintable() and "${" not in value


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a number that fits one (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _multirun_runs(sweep_dir: Path, problems: list[str]) -> list[RunInfo]:
    """The runs of the job folders in ``sweep_dir``, in job order.

    Only real folders (not links) holding a ``run.json``; one that cannot be read is left out
    with a line in ``problems``, and so is a ``metrics.json`` that cannot be.
    """
    from cnnlab.records.listing import RUN_FILE, read_run

    try:
        entries = sorted(os.scandir(sweep_dir), key=lambda e: e.name)
    except OSError as exc:
        raise DataError(sweep_dir, f"cannot be listed ({exc.strerror or exc})") from None
    runs = []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
            continue
        if not os.path.lexists(os.path.join(entry.path, RUN_FILE)):
            continue
        try:
            run = read_run(entry.path)
        except DataError as exc:
            problems.append(f"skipped {exc}")
            continue
        problems.extend(run.problems)
        runs.append(run)

    def job_order(run: RunInfo) -> tuple[bool, int, str]:  # numbered jobs first
        number = _job_number(run.dir.name)
        return (number is None, number or 0, run.dir.name)

    return sorted(runs, key=job_order)


def _job_number(name: str) -> int | None:
    """The job number of a multirun's run folder (``3``); None for a name of another kind."""
    return int(name) if name.isascii() and name.isdigit() else None


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
            out += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
        else:
            out += [f"![{p.stem}]({p.name})" for p in content]
        out.append("")
    return "\n".join(out)


def _cell(text: str) -> str:
    """A markdown table cell: one line (controls escaped), ``|`` not a column break."""
    return printable(text).replace("|", "\\|")


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
