"""Reading a finished run folder back, and comparing the metrics of two runs.

``cnnlab reproduce RUN_DIR`` loads the run with :func:`load_run`, re-runs it with the same
overrides, and reports :func:`compare_metrics` of the two ``metrics.json``. The folder's
files are read as data from anyone, through :mod:`cnnlab.files.read`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cnnlab.errors import DataError
from cnnlab.files.read import read_json_object, read_yaml
from cnnlab.records.listing import METRICS_FILE, RUN_FILE, read_manifest

__all__ = ["OVERRIDES_FILE", "RunRecord", "compare_metrics", "load_run", "read_overrides"]

OVERRIDES_FILE = Path(".hydra") / "overrides.yaml"


@dataclass(frozen=True)
class RunRecord:
    """What a run folder says about its run.

    Attributes:
        dir: The run folder.
        manifest: The content of ``run.json``.
        metrics: The content of ``metrics.json``: flat metric names to numbers.
        overrides: The Hydra overrides that made the run (``.hydra/overrides.yaml``, or the
            manifest's ``overrides`` when the folder has no ``.hydra/``).
    """

    dir: Path
    manifest: dict[str, Any]
    metrics: dict[str, float]
    overrides: list[str] = field(default_factory=list)


def load_run(run_dir: str | os.PathLike[str]) -> RunRecord:
    """Read a run folder written by ``cnnlab train``.

    Raises:
        DataError: As :func:`~cnnlab.records.listing.read_manifest`, or naming
            ``metrics.json`` or ``.hydra/overrides.yaml`` when missing, unreadable, not valid
            JSON/YAML or of the wrong shape.
    """
    folder = Path(run_dir)
    manifest = read_manifest(folder)
    metrics_path = folder / METRICS_FILE
    if not os.path.lexists(metrics_path):
        status = manifest.get("status")
        why = f"the run's status is {status!r}" if status != "completed" else "it was removed"
        raise DataError(metrics_path, f"missing, so there are no final metrics ({why})")
    metrics = _metrics(metrics_path, read_json_object(METRICS_FILE, inside=folder))
    return RunRecord(folder, manifest, metrics, read_overrides(folder, manifest))


def compare_metrics(
    expected: Mapping[str, float],
    actual: Mapping[str, float],
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
) -> list[str]:
    """List how two sets of final metrics differ.

    ``expected`` are the original run's metrics, ``actual`` the new run's. Values match when
    ``|actual - expected| <= atol + rtol * |expected|`` (the default tolerances of zero ask for
    identical numbers). Two NaNs match, as do equal infinities.

    Example:
        >>> for line in compare_metrics({"acc": 0.97, "loss": 0.1}, {"acc": 0.96}):
        ...     print(line)
        acc: expected 0.97, got 0.96 (difference -0.01)
        loss: missing (expected 0.1)

    Returns:
        One line per difference, sorted by metric name: missing metrics, metrics the original
        run did not have, and values that differ (with both values). Empty when they match.

    Raises:
        ValueError: If a tolerance is negative or NaN.
    """
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not tol >= 0:
            raise ValueError(f"{name} must be >= 0, got {tol!r}")
    differences = []
    for key in sorted(set(expected) | set(actual)):
        if key not in actual:
            differences.append(f"{key}: missing (expected {expected[key]!r})")
        elif key not in expected:
            differences.append(f"{key}: not in the original run (got {actual[key]!r})")
        else:
            want, got = float(expected[key]), float(actual[key])
            if not _close(want, got, rtol, atol):
                delta = got - want
                note = f" (difference {delta:+.3g})" if math.isfinite(delta) else ""
                differences.append(f"{key}: expected {want!r}, got {got!r}{note}")
    return differences


def _close(want: float, got: float, rtol: float, atol: float) -> bool:
    if math.isnan(want) or math.isnan(got):
        return math.isnan(want) and math.isnan(got)
    if want == got:  # also equal infinities
        return True
    return abs(got - want) <= atol + rtol * abs(want)


def _metrics(path: Path, data: dict[str, Any]) -> dict[str, float]:
    for key, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DataError(path, f"metric {key!r} is not a number: {value!r}")
    return {key: float(value) for key, value in data.items()}


def _kind(data: Any) -> str:
    if isinstance(data, list):
        return "a list with other values"
    return "null" if data is None else type(data).__name__


def read_overrides(folder: Path, manifest: dict[str, Any] | None = None) -> list[str]:
    """The overrides that made the run: ``.hydra/overrides.yaml``, else (a folder without
    ``.hydra/``) the ``manifest``'s, else none.

    Raises:
        DataError: Naming the file when it cannot be read or is not a list of strings.
    """
    if os.path.lexists(folder / OVERRIDES_FILE):
        data, source = read_yaml(OVERRIDES_FILE, inside=folder), folder / OVERRIDES_FILE
    else:
        data, source = (manifest or {}).get("overrides", []), folder / RUN_FILE
    # Hydra writes an empty file as `[]`; an empty file read by hand gives None.
    data = [] if data is None else data
    if not isinstance(data, list) or not all(isinstance(item, str) for item in data):
        # The content is not shown: a linked or crafted file could hold anything.
        raise DataError(source, f"overrides must be a list of strings, found {_kind(data)}")
    return list(data)
