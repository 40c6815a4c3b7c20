"""Keep a run folder's record true while a task runs.

``run.json`` is written when the task starts (status ``running``) and rewritten
when it ends (``completed``, ``failed`` with the error, or ``interrupted``);
``metrics.json`` is written only by a task that completes. Only rank 0 writes.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from cnnlab.errors import DataError, RunInterrupted, find_user_error, show
from cnnlab.files.atomic import WriteError, write_json_atomic
from cnnlab.files.read import field, read_json_object

if TYPE_CHECKING:
    from cnnlab.records.resume import Resume

log = logging.getLogger(__name__)


class RunRecorder:
    """Writes ``run.json`` and ``metrics.json`` of one job into ``cfg.paths.run_dir``.

    A resumed run (``resume``) keeps the first start's ``start``, ``command`` and
    ``overrides`` and appends this start to the ``starts`` already in ``run.json``. The task
    puts the seconds and counts it measured in ``timings``, saved in ``run.json`` too.
    """

    def __init__(self, cfg: DictConfig, resume: Resume | None = None) -> None:
        from pytorch_lightning.utilities import rank_zero_only

        self.cfg = cfg
        self.resume = resume
        self.run_dir = Path(cfg.paths.run_dir)
        self.timings: dict[str, Any] = {}
        self.start = datetime.now(UTC)
        # Lightning sets `rank` on the function at import; its stubs do not declare it.
        self.is_zero = rank_zero_only.rank == 0  # type: ignore[attr-defined]
        # Read and type-checked by resume_run before anything was built (previous_record).
        self.first = resume.record if resume else {}
        self.earlier_starts = _starts_of(self.first)

    def record(self, status: str, error: str | None = None) -> None:
        """(Re)write ``run.json`` with ``status``."""
        from cnnlab.records.manifest import build_manifest

        if not self.is_zero:
            return
        end = None if status == "running" else datetime.now(UTC)
        this_start: dict[str, Any] = {
            "start": self.start.isoformat(),
            "end": end.isoformat() if end else None,
            "status": status,
            "command": list(sys.argv),
            "overrides": self.resume.overrides if self.resume else _hydra_overrides(),
            "error": error,
        }
        if self.resume:
            this_start["resumed_from"] = str(self.resume.checkpoint)
            this_start["changes"] = self.resume.changes
        first_start = _when(self.first.get("start")) or self.start
        manifest = build_manifest(
            self.cfg,
            overrides=self.resume.original_overrides if self.resume else _hydra_overrides(),
            command=self.first.get("command") or list(sys.argv),
            seed=int(self.cfg.get("seed", 0)),
            start=first_start,
            end=end,
            status=status,
            timings=self.timings,
            error=error,
            starts=[*self.earlier_starts, this_start],
        )
        write_json_atomic(self.run_dir / "run.json", manifest)

    def record_end(self, status: str, error: str) -> None:
        """Record how a failed run ended, if the disk still lets us.

        On a full or read-only disk ``run.json`` keeps its previous content (it is never
        half-written) and the run's own error stays the one reported.
        """
        try:
            self.record(status, error)
        except (WriteError, OSError) as exc:
            log.warning("run.json not updated to %r: %s", status, exc)

    def write_metrics(self, metrics: dict[str, float]) -> None:
        """Write the final ``metrics.json`` (flat keys, sorted, no timings)."""
        if self.is_zero:
            write_json_atomic(self.run_dir / "metrics.json", dict(sorted(metrics.items())))


@contextmanager
def recorded_run(
    cfg: DictConfig,
    resume: Resume | None = None,
    *,
    finish: Callable[[Path, str], None] | None = None,
) -> Iterator[RunRecorder]:
    """Record the job run inside the ``with`` block.

    Args:
        cfg: The job's config.
        resume: What a resumed run continues from.
        finish: Called with the run folder and the final status (``completed``, ``failed``,
            ``pruned``, ``interrupted``) however the block ends, after ``run.json`` says it:
            the trackers' ending (:func:`cnnlab.tracking.finish_trackers`), handed in so that
            run records need not know the trackers.
    """
    recorder = RunRecorder(cfg, resume)
    recorder.record("running")
    try:
        yield recorder
    except KeyboardInterrupt:
        recorder.record_end("interrupted", "KeyboardInterrupt")
        if finish:
            finish(recorder.run_dir, "interrupted")
        # Only training continues from its folder (`cnnlab train resume=<run folder>`).
        command = f"cnnlab train resume={recorder.run_dir}" if cfg.get("task") == "train" else None
        raise RunInterrupted(command) from None
    except BaseException as exc:
        # optuna.TrialPruned, matched by name: optuna is imported only inside sweeps.
        status = "pruned" if type(exc).__name__ == "TrialPruned" else "failed"
        recorder.record_end(status, _reason(exc))
        if finish:
            finish(recorder.run_dir, status)
        raise
    recorder.record("completed")
    if finish:
        finish(recorder.run_dir, "completed")


def previous_record(run_dir: Path) -> dict[str, Any]:
    """A resumed run's ``run.json``, its fields type-checked; empty when there is none.

    Read as data from anyone (:mod:`cnnlab.files.read`) and checked before training starts,
    so that a bad field is one line now, not a failed final record that leaves the run
    "running" after all its epochs.

    Raises:
        DataError: Naming ``run.json`` and the field: a link, a fifo, not JSON, or a field
            of the wrong type (``starts: 5``, ``command: 5``, a ``start`` without offset).
    """
    path = run_dir / "run.json"
    if not os.path.lexists(path):
        return {}
    record = read_json_object("run.json", inside=run_dir)
    _check_start(path, "", record)
    starts = _field(path, "", record, "starts", list, [])
    for i, entry in enumerate(starts):
        if not isinstance(entry, dict):
            raise DataError(path, f"starts[{i}]: expected an object, found {type(entry).__name__}")
        _check_start(path, f"starts[{i}].", entry)
    return record


def _check_start(path: Path, prefix: str, entry: dict[str, Any]) -> None:
    """The fields of one start (or of the record's top level) that the recorder reuses."""
    for key in ("status", "error", "resumed_from"):
        _field(path, prefix, entry, key, str)
    for key in ("command", "overrides"):
        values = _field(path, prefix, entry, key, list, [])
        if not all(isinstance(v, str) for v in values):
            raise DataError(path, f"{prefix}{key}: expected a list of strings")
    _field(path, prefix, entry, "changes", dict)
    for key in ("start", "end"):
        text = _field(path, prefix, entry, key, str)
        if text is not None and _when(text) is None:
            raise DataError(
                path, f"{prefix}{key}: {show(text)} is not an ISO time with a UTC offset"
            )


def _field(
    path: Path, prefix: str, entry: dict[str, Any], key: str, kind: type, default: Any = None
) -> Any:
    """:func:`cnnlab.files.read.field`, its message naming the key under ``prefix``."""
    try:
        return field(path, entry, key, kind, default)
    except DataError as exc:
        raise DataError(path, f"{prefix}{exc.message}") from None


def _starts_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The starts recorded so far; a start still "running" ended without a record: killed."""
    if not record:
        return []
    starts = record.get("starts") or [
        {key: record.get(key) for key in ("start", "end", "status", "command", "overrides")}
    ]
    return [
        {**entry, "status": "killed"} if entry.get("status") == "running" else dict(entry)
        for entry in starts
        if isinstance(entry, dict)
    ]


def _when(text: Any) -> datetime | None:
    """``text`` as a time with its UTC offset; None when it is not one (naive times too)."""
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def _reason(exc: BaseException) -> str:
    """The one-line reason of a failure: the user error in the chain, else the exception."""
    user_error = find_user_error(exc)
    if user_error is not None:
        return f"{type(user_error).__name__}: {user_error}"
    return f"{type(exc).__name__}: {exc}"


def _hydra_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
