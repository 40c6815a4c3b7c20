"""``cnnlab runs``: list the runs in an outputs folder, and compare two of them.

Hand tuning is run, look, change a value, run again. ``cnnlab runs`` shows what was run:
one line per run folder (``runs/`` and ``multiruns/`` alike) with its time, task, status,
the overrides that differ between the listed runs, its key metrics and its folder.
``cnnlab runs compare A B`` shows how two runs' configs and metrics differ; ``cnnlab runs
sweeps`` lists the sweeps, each with its study, trials and best trial.

Run folders are read as data (:mod:`cnnlab.records.listing`): a folder that cannot be read is
skipped with one warning line, and every string that came from a folder (its name, run.json
values, metric names) is printed with its control characters escaped
(:func:`~cnnlab.errors.printable`), so no escape sequence in them reaches the terminal.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.console import OneLineParser, exit_on_user_error
from cnnlab.errors import CnnlabError, DataError, printable

if TYPE_CHECKING:
    from rich.console import Console

    from cnnlab.records.listing import RunInfo

# Table width when stdout is not a terminal: run folders stay on one line.
PIPED_WIDTH = 400
# Keys of a run besides its config, metrics and group choices (for --sort and --filter).
COLUMNS = ("time", "task", "status", "folder")
STATUS_STYLE = {"completed": "green", "failed": "red", "running": "yellow", "interrupted": "red"}


def main(argv: list[str]) -> int:
    """Run ``cnnlab runs [FOLDER] [options]`` or ``cnnlab runs compare A B``; return the status.

    Returns:
        0 on success (also when no run matches), 1 for a missing folder, an unreadable run
        named by the user or a bad option (one line on stderr).
    """
    if argv[:1] == ["compare"]:
        return _compare_main(argv[1:])
    if argv[:1] == ["sweeps"]:
        return _sweeps_main(argv[1:])
    parser = OneLineParser(
        exit_status=1,
        prog="cnnlab runs",
        description="List the runs under FOLDER (default: $CNNLAB_OUTPUTS or ./outputs). "
        "`cnnlab runs compare A B` compares two run folders; `cnnlab runs sweeps` lists the "
        "sweeps.",
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, metavar="FOLDER", help="searched for run.json files"
    )
    parser.add_argument(
        "--sort",
        metavar="KEY",
        help="sort by a column (time, task, status, folder), a metric (test/acc) or a config "
        "key (optimizer.lr, model); default: time",
    )
    parser.add_argument("--reverse", "-r", action="store_true", help="sort in reverse order")
    parser.add_argument(
        "--filter",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="keep runs whose config key, group, status or task has VALUE (repeatable)",
    )
    parser.add_argument(
        "--last",
        type=int,
        metavar="N",
        help="keep the last N rows after sorting (by time, the default: the N most recent)",
    )
    parser.add_argument(
        "--top",
        type=int,
        metavar="N",
        help="keep the N runs with the highest --sort value, highest first (with -r: lowest)",
    )
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    args = parser.parse_args(argv)
    for option in ("last", "top"):
        count = getattr(args, option)
        if count is not None and count < 1:
            parser.error(f"--{option}: must be at least 1, got {count}")
    with exit_on_user_error("runs", log_it=False):
        _list(args.folder if args.folder is not None else outputs_root(), args)
    return 0


def outputs_root() -> Path:
    """The outputs folder a run writes into: ``$CNNLAB_OUTPUTS``, else ``./outputs``."""
    return Path(os.environ.get("CNNLAB_OUTPUTS", "outputs"))


def _list(root: Path, args: argparse.Namespace) -> None:
    from cnnlab.errors import ConfigError
    from cnnlab.records.listing import find_runs

    runs, warnings = find_runs(root)
    # Group choices (.hydra/hydra.yaml, one YAML file per run) only when a key may name one.
    groups = bool(args.filter or args.sort)
    values = {run.dir: _values(run, groups, warnings) for run in runs}
    for warning in warnings:
        _warn(warning)
    for text in args.filter:
        key, sep, wanted = text.partition("=")
        if not sep or not key:
            raise ConfigError("--filter", f"expected KEY=VALUE, got {text!r}")
        if runs and not any(key in v for v in values.values()):
            raise ConfigError("--filter", f"no run has the key {key!r}")
        runs = [run for run in runs if _matches(values[run.dir].get(key, _ABSENT), wanted)]
    sort = args.sort or "time"
    if runs and not any(sort in v for v in values.values()):
        raise ConfigError("--sort", f"no run has the key {sort!r}")
    # --top: the highest first; runs without the key stay last either way.
    reverse = args.reverse != (args.top is not None)
    runs = _sorted(runs, [values[run.dir].get(sort, _ABSENT) for run in runs], reverse)
    if args.top is not None:
        runs = runs[: args.top]
    if args.last is not None:
        runs = runs[-args.last :]  # after sorting: by time, the most recent
    if args.json:
        print(json.dumps([_as_json(run, runs) for run in runs], indent=2, default=str))
    elif not runs:
        print(f"no runs in {printable(root)}" + (" match the filters" if args.filter else ""))
    else:
        _console().print(_table(runs, root))


_ABSENT = object()


def _warn(line: str, command: str = "runs") -> None:
    print(f"cnnlab {command}: warning: {printable(line)}", file=sys.stderr)


def _values(run: RunInfo, groups: bool, warnings: list[str]) -> dict[str, Any]:
    """What --sort and --filter can name: group choices, overrides, config, metrics, columns.

    The group choices (``.hydra/hydra.yaml``) only with ``groups``; one that is there but
    cannot be read adds a line to ``warnings``.
    """
    from cnnlab.records.listing import flatten, group_choices, override_pairs

    values: dict[str, Any] = {}
    if groups:
        try:
            values.update(group_choices(run))
        except DataError as exc:
            warnings.append(f"{exc}; its group choices are left out")
    values.update(override_pairs(run.overrides))
    values.update(flatten(run.config))
    values.update(run.metrics)
    values.update(time=run.start, task=run.task, status=run.status, folder=str(run.dir))
    return values


def _matches(actual: Any, wanted: str) -> bool:
    """Whether a run's value is ``wanted`` as typed on the command line (``1e-3``, ``true``)."""
    from cnnlab.records.listing import format_value

    if actual is _ABSENT:
        return False
    if isinstance(actual, bool):  # before int: true is not 1
        return wanted.lower() == str(actual).lower()
    if isinstance(actual, int | float):
        try:
            return float(wanted) == actual
        except ValueError:
            return False
    if isinstance(actual, str):
        return actual == wanted
    # null, lists and mappings as --json and compare print them.
    return format_value(actual) == wanted


def _sorted(runs: list[RunInfo], keys: list[Any], reverse: bool) -> list[RunInfo]:
    """Runs by their key: numbers, then text (or the reverse); runs without the key last."""
    from datetime import datetime

    def rank(value: Any) -> tuple[int, float, str]:
        if isinstance(value, datetime):
            return (0, value.timestamp(), "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if value != value:  # NaN: after every number and text
                return (2, 0.0, "nan")
            # An integer beyond float's range sorts as infinity.
            if abs(value) > sys.float_info.max:
                return (0, math.inf if value > 0 else -math.inf, "")
            return (0, float(value), "")
        return (1, 0.0, str(value))

    present = [(rank(k), i) for i, k in enumerate(keys) if k is not _ABSENT]
    absent = [i for i, k in enumerate(keys) if k is _ABSENT]
    order = sorted(present, key=lambda item: item[0], reverse=reverse)
    return [runs[i] for _, i in order] + [runs[i] for i in absent]


def _console() -> Console:
    from rich.console import Console

    # Folders, overrides and metric names come from files: brackets in them are text, not
    # rich markup (a stray "[/]" would raise), and ":name:" is not an emoji.
    console = Console(markup=False, emoji=False, highlight=False)
    if console.is_terminal or os.environ.get("COLUMNS", "").isdigit():
        return console  # the terminal's width, or the one COLUMNS asks for
    # Piped into a file or a test: no terminal width to respect, and rich would default to 80.
    return Console(markup=False, emoji=False, highlight=False, width=PIPED_WIDTH)


def _shown(folder: Path, root: Path) -> str:
    try:
        return str(folder.relative_to(root)) or "."
    except ValueError:
        return str(folder)


def _table(runs: list[RunInfo], root: Path) -> Any:
    from rich.table import Table
    from rich.text import Text

    from cnnlab.records.listing import (
        differing_overrides,
        format_value,
        key_metrics,
        override_pairs,
    )

    # One run alone differs from nothing: show all its overrides.
    keys = differing_overrides(runs) if len(runs) > 1 else list(override_pairs(runs[0].overrides))
    metrics = key_metrics(runs)
    p = printable  # every cell and header below may come from a run folder
    table = Table(title=p(f"{len(runs)} run{'s' * (len(runs) != 1)} in {root}"))
    # Short columns keep their width; overrides and folder wrap (long words fold) to fit
    # the terminal, instead of every other column being cut to "…".
    for name in ("time", "task", "status"):
        table.add_column(name, no_wrap=True)
    table.add_column("overrides", overflow="fold")
    for name in metrics:
        table.add_column(p(name), justify="right", no_wrap=True)
    table.add_column("folder", overflow="fold")
    for run in runs:
        pairs = override_pairs(run.overrides)
        overrides = " ".join(f"{k}={pairs[k]}" for k in keys if k in pairs)
        table.add_row(
            run.start.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
            p(run.task),
            Text(p(run.status), style=STATUS_STYLE.get(run.status, "")),
            p(overrides),
            *(format_value(run.metrics[m]) if m in run.metrics else "" for m in metrics),
            p(_shown(run.dir, root)),
        )
    return table


def _as_json(run: RunInfo, runs: Sequence[RunInfo]) -> dict[str, Any]:
    from cnnlab.records.listing import differing_overrides, override_pairs

    pairs = override_pairs(run.overrides)
    return {
        "folder": str(run.dir.resolve()),
        "time": run.start.isoformat(),
        "task": run.task,
        "status": run.status,
        "error": run.error,
        "stopped": run.stopped,
        "overrides": run.overrides,
        "differing": {k: pairs[k] for k in differing_overrides(runs) if k in pairs},
        "metrics": run.metrics,
    }


def _compare_main(argv: list[str]) -> int:
    parser = OneLineParser(
        exit_status=1,
        prog="cnnlab runs compare",
        description="Show how the configs (dotted keys) and metrics of two run folders differ.",
    )
    parser.add_argument("a", type=Path, metavar="A", help="a run folder")
    parser.add_argument("b", type=Path, metavar="B", help="another run folder")
    parser.add_argument("--json", action="store_true", help="print the differences as JSON")
    args = parser.parse_args(argv)
    from cnnlab.records.listing import read_run

    with exit_on_user_error("runs compare", log_it=False):
        a, b = read_run(_locate(args.a)), read_run(_locate(args.b))
    for problem in (*a.problems, *b.problems):
        _warn(problem, "runs compare")
    if args.json:
        print(json.dumps(_comparison_json(a, b), indent=2, default=str))
    else:
        _print_comparison(a, b)
    return 0


def _locate(folder: Path) -> Path:
    """``folder`` as given, else under the outputs folder (as ``cnnlab runs`` shows it)."""
    if folder.exists() or folder.is_absolute():
        return folder
    under_outputs = outputs_root() / folder
    return under_outputs if under_outputs.exists() else folder


def _print_comparison(a: RunInfo, b: RunInfo) -> None:
    from rich.table import Column, Table

    from cnnlab.records.listing import MISSING, config_diff, format_value

    console = _console()
    p = printable  # every value below may come from a run folder
    for label, run in (("A", a), ("B", b)):
        how = f"{run.status}; {run.stopped}" if run.stopped else run.status
        console.print(p(f"{label}: {run.dir}  ({how})"))
        console.print(p(f"   overrides: {' '.join(run.overrides) or '(none)'}"))
    differences = config_diff(a, b)
    if differences:
        config = Table("key", "A", "B", title=f"config: {len(differences)} keys differ")
        for key, *values in differences:
            config.add_row(
                p(key), *("(absent)" if v is MISSING else p(format_value(v)) for v in values)
            )
        console.print(config)
    else:
        console.print("config: the same")
    rows = _metric_rows(a, b)
    if not rows:
        console.print("metrics: neither run has metrics.json")
        return
    right = [Column(name, justify="right") for name in ("A", "B", "B - A")]
    metrics = Table("metric", *right, title="metrics")
    for key, value_a, value_b, delta in rows:
        metrics.add_row(
            p(key),
            *("" if v is None else format_value(v) for v in (value_a, value_b)),
            "" if delta is None else f"{delta:+.4g}",
        )
    console.print(metrics)


def _metric_rows(a: RunInfo, b: RunInfo) -> list[tuple[str, Any, Any, float | None]]:
    """The metrics of either run: key, A, B (None where absent) and B - A where both have it."""
    from cnnlab.records.listing import metric_diff

    rows = metric_diff(a, b)
    return [(k, va, vb, None if va is None or vb is None else vb - va) for k, va, vb in rows]


def _comparison_json(a: RunInfo, b: RunInfo) -> dict[str, Any]:
    from cnnlab.records.listing import MISSING, config_diff

    config = [
        {"key": key, **{name: v for name, v in (("a", va), ("b", vb)) if v is not MISSING}}
        for key, va, vb in config_diff(a, b)
    ]
    names = ("key", "a", "b", "difference")
    metrics = [dict(zip(names, row, strict=True)) for row in _metric_rows(a, b)]
    return {
        "a": str(a.dir.resolve()),
        "b": str(b.dir.resolve()),
        "config": config,
        "metrics": metrics,
    }


def _sweeps_main(argv: list[str]) -> int:
    """``cnnlab runs sweeps [FOLDER]``: one line per sweep folder, its study and best trial."""
    parser = OneLineParser(
        exit_status=1,
        prog="cnnlab runs sweeps",
        description="List the sweeps under FOLDER (default: $CNNLAB_OUTPUTS or ./outputs): "
        "study, trials by state, best value and its trial.",
    )
    parser.add_argument(
        "folder", nargs="?", type=Path, metavar="FOLDER", help="searched for sweep.json files"
    )
    parser.add_argument("--json", action="store_true", help="print the sweeps as JSON")
    args = parser.parse_args(argv)
    root = args.folder if args.folder is not None else outputs_root()
    with exit_on_user_error("runs sweeps", log_it=False):
        if not root.is_dir():
            raise DataError(root, "no such folder")
    sweeps = []
    for folder in _sweep_folders(root):
        try:
            sweeps.append(_sweep_summary(folder))
        except CnnlabError as exc:
            _warn(f"skipped {exc}")
    if args.json:
        print(json.dumps(sweeps, indent=2, default=str))
    elif not sweeps:
        print(f"no sweeps in {printable(root)}")
    else:
        _console().print(_sweeps_table(sweeps, root))
    return 0


def _sweep_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) holding a sweep's ``sweep.json``, oldest first.

    Links are not followed (``os.walk``); a sweep folder holds no other sweep.
    """
    from cnnlab.sweeper.report import SWEEP_INFO

    found = []
    for current, dirs, files in os.walk(root):
        if SWEEP_INFO in files:
            dirs.clear()
            found.append(Path(current))
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found, key=lambda folder: (folder.name, str(folder)))


def _sweep_summary(folder: Path) -> dict[str, Any]:
    """What ``cnnlab runs sweeps`` shows of one sweep: read from its study, opened read-only.

    Raises:
        DataError: ``sweep.json`` cannot be read or its study is not where it says.
    """
    from optuna.trial import TrialState

    from cnnlab.sweep.objective import ranked_trials, tied_best
    from cnnlab.sweeper.report import load_sweep_study, visible_trials

    study, info = load_sweep_study(folder)
    trials = visible_trials(study)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in TrialState}
    ranked = ranked_trials(study, trials)
    best = ranked[0] if ranked else None
    return {
        "folder": str(folder.resolve()),
        "study": study.study_name,
        "storage": info.get("storage"),
        "directions": [d.name.lower() for d in study.directions],
        "trials": {state: n for state, n in counts.items() if n},
        "best_trial": best.number if best else None,
        "best_values": list(best.values) if best else None,
        "tied": tied_best(ranked),
        "best_params": best.params if best else None,
    }


def _sweeps_table(sweeps: list[dict[str, Any]], root: Path) -> Any:
    from rich.table import Table

    from cnnlab.records.listing import format_value

    p = printable  # study names, folders and parameters come from files
    table = Table(title=p(f"{len(sweeps)} sweep{'s' * (len(sweeps) != 1)} in {root}"))
    table.add_column("study", overflow="fold")
    table.add_column("trials", overflow="fold")
    table.add_column("best", justify="right", no_wrap=True)
    table.add_column("best trial", overflow="fold")
    table.add_column("folder", overflow="fold")
    for sweep in sweeps:
        values = sweep["best_values"]
        best = ", ".join(format_value(v) for v in values) if values else ""
        tied = f" ({sweep['tied']} tie)" if sweep["tied"] > 1 else ""
        params = " ".join(f"{k}={format_value(v)}" for k, v in (sweep["best_params"] or {}).items())
        number = sweep["best_trial"]
        table.add_row(
            p(sweep["study"]),
            " ".join(f"{n} {state}" for state, n in sweep["trials"].items()),
            best + tied,
            p(f"#{number} {params}" if number is not None else ""),
            p(_shown(Path(sweep["folder"]), root.resolve())),
        )
    return table
