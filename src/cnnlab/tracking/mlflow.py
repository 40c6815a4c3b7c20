"""MLflow: one run per job in a local store under the outputs folder by default.

:func:`mlflow_logger` (the ``_target_`` of ``conf/logger/mlflow.yaml``) makes
Lightning's ``MLFlowLogger``, which logs the config as params and the metrics
as they are logged. :func:`finish_mlflow` runs when the job has written its
``run.json`` and ``metrics.json``: it logs both files as artefacts and the final
metrics, and ends the MLflow run with the job's status.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import MLFlowLogger
from typing_extensions import override

from cnnlab.errors import ConfigError

log = logging.getLogger(__name__)

MISSING_EXTRA = "mlflow is not installed: pip install 'cnnlab[mlflow]'"
# The run folder's files every MLflow run gets as artefacts.
ARTEFACTS = ("run.json", "metrics.json")
# The job's status (run.json) -> MLflow's run status.
STATUSES = {"completed": "FINISHED", "interrupted": "KILLED"}


class MLFlowRunLogger(MLFlowLogger):
    """Lightning's ``MLFlowLogger``, which knows whether it started its MLflow run.

    The logger starts its run at the first use of ``experiment`` (``run_id`` and
    ``experiment_id`` use it too, so asking them starts a run). One never used
    (``fast_dev_run`` swaps it for a ``DummyLogger``) has no run to end: ``started`` stays
    false, and :func:`finish_mlflow` leaves it alone.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = False

    @property
    @override
    def experiment(self) -> Any:
        from mlflow.tracking import MlflowClient

        client = super().experiment
        # Ranks other than 0 get Lightning's dummy experiment, which starts no run.
        self.started = self.started or isinstance(client, MlflowClient)
        return client


# Loggers made in this process and not finished yet (a multirun makes one per job).
_open_loggers: list[MLFlowRunLogger] = []


def mlflow_logger(
    tracking_uri: str,
    artifact_location: str,
    experiment_name: str = "cnnlab",
    run_name: str | None = None,
    tags: Sequence[str] = (),
    study: str | None = None,
    trial: int | None = None,
    log_checkpoints: bool = False,
) -> MLFlowRunLogger:
    """Create an ``MLFlowLogger`` for this job.

    Args:
        tracking_uri: Where runs are stored (``sqlite:///...``, ``file:...``, ``http://...``).
        artifact_location: Where a new experiment keeps its artefacts.
        experiment_name: MLflow experiment; created when missing.
        run_name: Run name (MLflow makes one up when None).
        tags: Free-form tags, each logged as a tag with the value ``true``.
        study: The sweep's study name (tag ``study``), in a sweep.
        trial: The sweep's trial number (tag ``trial``), in a sweep.
        log_checkpoints: Also log the checkpoints ModelCheckpoint kept (the best ones).

    Raises:
        ConfigError: mlflow is not installed (the ``mlflow`` extra).
    """
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("logger.mlflow", MISSING_EXTRA) from None

    run_tags: dict[str, Any] = {tag: "true" for tag in tags}
    if study is not None:
        run_tags["study"] = study
    if trial is not None:
        run_tags["trial"] = str(trial)
    logger = MLFlowRunLogger(
        experiment_name=experiment_name,
        run_name=run_name,
        tracking_uri=_absolute(tracking_uri),
        tags=run_tags,
        log_model=log_checkpoints,
        artifact_location=str(Path(artifact_location).resolve()),
    )
    _open_loggers.append(logger)
    return logger


def finish_mlflow(run_dir: Path, status: str) -> None:
    """Log the run folder's artefacts and final metrics, and end each open MLflow run.

    Args:
        run_dir: The job's run folder (holds ``run.json`` and ``metrics.json``).
        status: The job's status as ``run.json`` says it (completed, failed, ...).
    """
    while _open_loggers:
        logger = _open_loggers.pop()
        if not logger.started:  # never used: no run to end, and none to start now
            continue
        try:
            _finish(logger, run_dir, status)
        except Exception:  # the job's own outcome (and error) must not be hidden by it
            log.exception("could not finish the MLflow run of %s", run_dir)


def _finish(logger: MLFlowRunLogger, run_dir: Path, status: str) -> None:
    client, run_id = logger.experiment, logger.run_id
    for name in ARTEFACTS:
        if (run_dir / name).is_file():
            client.log_artifact(run_id, str(run_dir / name))
    for key, value in _final_metrics(run_dir).items():
        client.log_metric(run_id, key, value)
    client.set_terminated(run_id, STATUSES.get(status, "FAILED"))


def _final_metrics(run_dir: Path) -> dict[str, float]:
    try:
        metrics = json.loads((run_dir / "metrics.json").read_text())
    except (OSError, ValueError):
        return {}
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and math.isfinite(float(v))
    }


def _absolute(uri: str) -> str:
    """Make a ``sqlite:///`` or ``file:`` path absolute (jobs change folders); make its folder."""
    for prefix in ("sqlite:///", "file:"):
        if uri.startswith(prefix) and not uri.startswith("file://"):
            path = Path(uri[len(prefix) :]).resolve()
            if prefix == "sqlite:///":
                path.parent.mkdir(parents=True, exist_ok=True)
            return f"{prefix}{path}"
    return uri
