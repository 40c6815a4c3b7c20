"""Experiment trackers: logger factories for the ``logger`` config group, and their ending."""

from __future__ import annotations

from pathlib import Path


def finish_trackers(run_dir: Path, status: str) -> None:
    """End the trackers this job started: W&B's run, MLflow's runs (with the run's files).

    Args:
        run_dir: The job's run folder.
        status: Its final status, as ``run.json`` says it (``completed``, ``failed``, ...).
    """
    from cnnlab.tracking.mlflow import finish_mlflow
    from cnnlab.tracking.wandb import finish_wandb

    finish_wandb(failed=status != "completed")
    finish_mlflow(run_dir, status)
