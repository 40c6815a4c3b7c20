"""Keep a run folder's record true while a task runs.

``run.json`` is written when the task starts (status ``running``) and rewritten
when it ends (``completed``, ``failed`` with the error, or ``interrupted``);
``metrics.json`` is written only by a task that completes. Only rank 0 writes.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig


class RunRecorder:
    """Writes ``run.json`` and ``metrics.json`` of one job into ``cfg.paths.run_dir``.

    Attributes:
        run_dir: The job's folder.
        timings: Seconds and counts the task measured; saved in ``run.json``.
    """

    def __init__(self, cfg: DictConfig) -> None:
        from pytorch_lightning.utilities import rank_zero_only

        self.cfg = cfg
        self.run_dir = Path(cfg.paths.run_dir)
        self.timings: dict[str, Any] = {}
        self.start = datetime.now(UTC)
        # Lightning sets `rank` on the function at import; its stubs do not declare it.
        self.is_zero = rank_zero_only.rank == 0  # type: ignore[attr-defined]

    def record(self, status: str, error: str | None = None) -> None:
        """(Re)write ``run.json`` with ``status``."""
        from cnnlab.runs.manifest import build_manifest, write_json_atomic

        if not self.is_zero:
            return
        manifest = build_manifest(
            self.cfg,
            overrides=_hydra_overrides(),
            command=list(sys.argv),
            seed=int(self.cfg.get("seed", 0)),
            start=self.start,
            end=None if status == "running" else datetime.now(UTC),
            status=status,
            timings=self.timings,
            error=error,
        )
        write_json_atomic(self.run_dir / "run.json", manifest)

    def write_metrics(self, metrics: dict[str, float]) -> None:
        """Write the final ``metrics.json`` (flat keys, sorted, no timings)."""
        from cnnlab.runs.manifest import write_json_atomic

        if self.is_zero:
            write_json_atomic(self.run_dir / "metrics.json", dict(sorted(metrics.items())))


@contextmanager
def recorded_run(cfg: DictConfig) -> Iterator[RunRecorder]:
    """Record the job run inside the ``with`` block; finish wandb however it ends."""
    from cnnlab.tracking.mlflow import finish_mlflow
    from cnnlab.tracking.wandb import finish_wandb

    recorder = RunRecorder(cfg)
    recorder.record("running")
    try:
        yield recorder
    except KeyboardInterrupt:
        recorder.record("interrupted", "KeyboardInterrupt")
        finish_wandb(failed=True)
        finish_mlflow(recorder.run_dir, "interrupted")
        raise
    except BaseException as exc:
        # optuna.TrialPruned, matched by name: optuna is imported only inside sweeps.
        status = "pruned" if type(exc).__name__ == "TrialPruned" else "failed"
        recorder.record(status, f"{type(exc).__name__}: {exc}")
        finish_wandb(failed=True)
        finish_mlflow(recorder.run_dir, status)
        raise
    recorder.record("completed")
    finish_wandb(failed=False)
    finish_mlflow(recorder.run_dir, "completed")


def _hydra_overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []
