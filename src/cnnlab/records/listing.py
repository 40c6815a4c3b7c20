"""Finding run folders and reading them leniently, for ``cnnlab runs`` and sweep reports.

A run folder is any folder holding a ``run.json`` (``outputs/runs/<task>/<stamp>`` and
``outputs/multiruns/<task>/<stamp>/<job>`` alike). Folders are read as hostile, every file
through :mod:`cnnlab.files.read`: only an unreadable ``run.json`` makes a folder unreadable;
a missing or ill-typed field, or a missing or bad ``metrics.json``, leaves that value empty.
Nothing read is resolved as an interpolation.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cnnlab.errors import DataError
from cnnlab.files.read import read_json, read_json_object, read_yaml

__all__ = [
    "RUN_FILE",
    "RunInfo",
    "config_diff",
    "differing_overrides",
    "find_runs",
    "flatten",
    "key_metrics",
    "metric_diff",
    "override_pairs",
    "read_metrics",
    "read_run",
]

RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
HYDRA_FILE = os.path.join(".hydra", "hydra.yaml")
# Override keys that place a run's files rather than change the run: Hydra's, and the
# ``sweep`` node the sweeper adds to each trial (study, storage, trial number, its cores).
_PLACEMENT_KEYS = ("hydra.", "sweep.")


@dataclass(frozen=True)
class RunInfo:
    """What a run folder says, with every field checked for its type.

    Attributes:
        dir: The run folder.
        manifest: ``run.json`` as read (any fields, any types).
        metrics: The numeric entries of ``metrics.json`` (empty when it is missing or bad).
        modified: When ``run.json`` was last written (the run's time when it has no start).
        problems: One line per file of the folder that is there but could not be read
            (``metrics.json``), naming it.
    """

    dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, float]
    modified: datetime
    problems: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``completed``, ``running``, ``failed``, ... or ``unknown`` when not recorded."""
        status = self.manifest.get("status")
        return status if isinstance(status, str) and status else "unknown"

    @property
    def config(self) -> dict[str, Any]:
        """The composed config stored in ``run.json`` (empty when absent or not a mapping)."""
        config = self.manifest.get("config")
        return config if isinstance(config, dict) else {}

    @property
    def task(self) -> str:
        """The task that made the run (``train``), from its config or its folder's place."""
        task = self.config.get("task")
        if isinstance(task, str) and task:
            return task
        # outputs/runs/<task>/<stamp> or outputs/multiruns/<task>/<stamp>/<job>
        parts = self.dir.parts
        for kind, depth in (("runs", 2), ("multiruns", 3)):
            if len(parts) > depth and parts[-depth - 1] == kind:
                return parts[-depth]
        return "?"

    @property
    def start(self) -> datetime:
        """When the run started (timezone-aware), else when ``run.json`` was written."""
        start = self.manifest.get("start")
        if not isinstance(start, str):
            return self.modified
        try:
            # In local time (a naive time is taken as local), as run folders are named.
            moment = datetime.fromisoformat(start).astimezone()
            moment.timestamp()  # raises for a date the platform cannot place (year 1)
        except (ValueError, OverflowError, OSError):
            return self.modified
        return moment

    @property
    def overrides(self) -> list[str]:
        """The run's Hydra overrides (only the string entries of ``run.json``'s list)."""
        overrides = self.manifest.get("overrides")
        if not isinstance(overrides, list):
            return []
        return [item for item in overrides if isinstance(item, str)]

    @property
    def stopped(self) -> str | None:
        """Why training stopped (``max_epochs=2 reached``), when the run recorded it."""
        timings = self.manifest.get("timings")
        stopped = timings.get("stopped") if isinstance(timings, dict) else None
        return stopped if isinstance(stopped, str) else None

    @property
    def error(self) -> str | None:
        """The one-line error of a failed run."""
        error = self.manifest.get("error")
        return str(error) if error is not None else None


def read_run(folder: str | os.PathLike[str]) -> RunInfo:
    """Read the run folder ``folder``.

    Raises:
        DataError: As :func:`read_manifest`. A bad ``metrics.json`` is not an error: the run
            has no metrics, and :attr:`RunInfo.problems` says why.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    path = folder / RUN_FILE
    try:
        modified = datetime.fromtimestamp(os.stat(path, follow_symlinks=False).st_mtime)
    except (OSError, ValueError, OverflowError) as exc:  # removed since, or a date out of range
        raise DataError(path, f"cannot be read ({exc})") from None
    metrics, problem = read_metrics(folder)
    return RunInfo(folder, manifest, metrics, modified.astimezone(), (problem,) if problem else ())


def read_manifest(folder: Path) -> dict[str, Any]:
    """The run folder's ``run.json``, which must be a JSON object.

    Raises:
        DataError: Naming the folder (missing, not a folder) or ``run.json`` (missing, a link,
            a fifo or device, too large or deep, not JSON or not an object).
    """
    if not folder.exists():
        raise DataError(folder, "run folder does not exist")
    if not folder.is_dir():
        raise DataError(folder, f"not a folder; expected a run folder holding {RUN_FILE}")
    if not os.path.lexists(folder / RUN_FILE):
        raise DataError(folder / RUN_FILE, "missing; is this a cnnlab run folder?")
    return read_json_object(RUN_FILE, inside=folder)


def find_runs(root: str | os.PathLike[str]) -> tuple[list[RunInfo], list[str]]:
    """Find and read every run folder under ``root`` (``root`` itself included).

    Returns:
        The readable runs, oldest first, and one warning line per folder whose ``run.json``
        could not be read (that folder is skipped).

    Raises:
        DataError: ``root`` does not exist or is not a folder.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(root, "no such folder")
    if not root.is_dir():
        raise DataError(root, "not a folder")
    runs: list[RunInfo] = []
    warnings: list[str] = []
    for folder in _run_folders(root):
        try:
            run = read_run(folder)
        except DataError as exc:
            warnings.append(f"skipped {exc}")
            continue
        runs.append(run)
        warnings.extend(run.problems)
    runs.sort(key=lambda run: (run.start, str(run.dir)))
    return runs, warnings


def _run_folders(root: Path) -> Iterable[Path]:
    for current, dirs, files in os.walk(root):
        if RUN_FILE in files:
            dirs.clear()  # a run folder holds checkpoints and logs, never another run
            yield Path(current)
        else:
            # .hydra, .git and other hidden folders hold no runs.
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))


def read_metrics(folder: str | os.PathLike[str]) -> tuple[dict[str, float], str | None]:
    """The numeric entries of the run folder's ``metrics.json``, and what was wrong with it.

    Returns:
        The metrics (empty when the file is missing or bad), and None or one line naming
        the file when it is there but cannot be read (a fifo, a link, not a JSON object...).
    """
    path = Path(folder) / METRICS_FILE
    if not os.path.lexists(path):
        return {}, None  # a run that failed or is still running
    try:
        data = read_json(METRICS_FILE, inside=folder)
    except DataError as exc:
        return {}, f"{exc}; its metrics are left out"
    if not isinstance(data, dict):
        return {}, f"{path}: not a JSON object; its metrics are left out"
    metrics = {}
    for key, value in data.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            try:
                metrics[str(key)] = float(value)
            except OverflowError:  # an integer beyond float's range
                continue
    return metrics, None


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys, sorted; lists and scalars stay values.

    Example:
        >>> flatten({"optimizer": {"lr": 0.1, "betas": [0.9, 0.99]}, "seed": 1})
        {'optimizer.betas': [0.9, 0.99], 'optimizer.lr': 0.1, 'seed': 1}
    """
    flat: dict[str, Any] = {}
    # A stack rather than recursion: a hostile run.json may nest as deep as json allows.
    stack: list[tuple[str, Mapping[str, Any]]] = [(prefix, mapping)]
    while stack:
        base, node = stack.pop()
        for key, value in node.items():
            name = f"{base}{key}"
            if isinstance(value, Mapping) and value:
                stack.append((f"{name}.", value))
            else:
                flat[name] = value
    return dict(sorted(flat.items()))


def override_pairs(overrides: Sequence[str]) -> dict[str, str]:
    """``key=value`` overrides as a dict (``+``/``~`` prefixes dropped, ``hydra.*`` and the
    sweeper's ``sweep.*`` left out)."""
    pairs: dict[str, str] = {}
    for line in overrides:
        key, sep, value = line.partition("=")
        key = key.lstrip("+~")
        if sep and key and not key.startswith(_PLACEMENT_KEYS):
            pairs[key] = value
    return pairs


def differing_overrides(runs: Sequence[RunInfo]) -> list[str]:
    """The override keys whose value is not the same in every run (unset counts as a value)."""
    per_run = [override_pairs(run.overrides) for run in runs]
    keys = sorted({key for pairs in per_run for key in pairs})
    return [key for key in keys if len({pairs.get(key) for pairs in per_run}) > 1]


def group_choices(run: RunInfo) -> dict[str, str]:
    """The option chosen for each config group (``model: lenet5``), from ``.hydra/hydra.yaml``.

    Empty when the run kept no ``.hydra`` folder, or the file does not say.

    Raises:
        DataError: Naming the file when it is there but cannot be read (a fifo, a link,
            too large, not YAML).
    """
    if not os.path.lexists(run.dir / HYDRA_FILE):
        return {}
    data = read_yaml(HYDRA_FILE, inside=run.dir)
    choices = _get(_get(_get(data, "hydra"), "runtime"), "choices")
    if not isinstance(choices, dict):
        return {}
    return {
        str(group): str(option)
        for group, option in choices.items()
        if not str(group).startswith("hydra/") and isinstance(option, str | int | float | bool)
    }


def _get(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def key_metrics(runs: Sequence[RunInfo]) -> list[str]:
    """The metrics worth a column: each run's ``optimized_metric``, then the ``test/`` ones."""
    present = {name for run in runs for name in run.metrics}
    chosen: list[str] = []
    for run in runs:
        # Read as stored (resolved): a hostile run.json must not reach OmegaConf's grammar.
        optimized = run.config.get("optimized_metric")
        names = optimized if isinstance(optimized, list) else [optimized]
        chosen += [n for n in names if isinstance(n, str) and n in present and n not in chosen]
    chosen += sorted(n for n in present if n.startswith("test/") and n not in chosen)
    return chosen


def config_diff(a: RunInfo, b: RunInfo) -> list[tuple[str, Any, Any]]:
    """``(dotted key, value in a, value in b)`` for each config value that differs.

    A key one run lacks has the value :data:`MISSING`. Paths inside each run's own folder
    (``checkpoints`` dirpaths) are compared relative to it, and ``paths.run_dir`` (the
    folders themselves) is left out.
    """
    flat_a, flat_b = _folder_free(a), _folder_free(b)
    rows = []
    for key in sorted(set(flat_a) | set(flat_b)):
        if key == "paths.run_dir":
            continue
        value_a, value_b = flat_a.get(key, MISSING), flat_b.get(key, MISSING)
        if value_a != value_b or type(value_a) is not type(value_b):
            rows.append((key, value_a, value_b))
    return rows


def _folder_free(run: RunInfo) -> dict[str, Any]:
    """The flattened config with the run's folder written as ``${paths.run_dir}``."""
    flat = flatten(run.config)
    folder = flat.get("paths.run_dir")
    if not isinstance(folder, str) or not folder:
        return flat
    return {
        key: value.replace(folder, "${paths.run_dir}") if isinstance(value, str) else value
        for key, value in flat.items()
    }


def metric_diff(a: RunInfo, b: RunInfo) -> list[tuple[str, float | None, float | None]]:
    """``(metric, value in a, value in b)`` for every metric of either run, sorted by name."""
    keys = sorted(set(a.metrics) | set(b.metrics))
    return [(key, a.metrics.get(key), b.metrics.get(key)) for key in keys]


class _Missing:
    """The value of a config key a run does not have."""

    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


def format_value(value: Any) -> str:
    """A config or metric value as a short string (floats to 4 significant digits)."""
    if isinstance(value, float):
        # Counts such as model/params in full; scores to 4 significant digits.
        if math.isfinite(value) and value == int(value) and abs(value) >= 1000:
            return f"{value:.0f}"
        return f"{value:.4g}"
    if value is None:
        return "null"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)
