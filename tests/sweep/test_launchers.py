"""Launchers: trials side by side (joblib, submitit_local) share the cores; SLURM configs compose.

A sweep through ``hydra/launcher=joblib`` or ``submitit_local`` runs the real
``cnnlab train -m`` in a subprocess; each trial's run.json records the torch threads
it trained with.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from optuna.trial import TrialState

from cnnlab.config import config_dir
from cnnlab.machine import usable_cores
from cnnlab.sweep.parallel import jobs_at_once, share_cores
from tests.conftest import QUICK
from tests.sweep.conftest import load_study

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SUBMITIT = "hydra_plugins.hydra_submitit_launcher.submitit_launcher"


@pytest.mark.parametrize(
    ("launcher", "batch", "expected"),
    [
        ({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}, 4, 1),
        ({"_target_": JOBLIB, "n_jobs": 2}, 4, 2),
        ({"_target_": JOBLIB, "n_jobs": 3}, 2, 2),
        ({"_target_": JOBLIB, "n_jobs": 1}, 4, 1),
        ({"_target_": JOBLIB, "n_jobs": -1}, 64, usable_cores()),
        ({"_target_": f"{SUBMITIT}.LocalLauncher"}, 3, 3),
        ({"_target_": f"{SUBMITIT}.SlurmLauncher"}, 8, 1),
    ],
)
def test_jobs_at_once_per_launcher(launcher: dict[str, Any], batch: int, expected: int) -> None:
    assert jobs_at_once(launcher, batch) == expected


def test_share_cores_splits_the_cores_between_parallel_jobs() -> None:
    before = torch.get_num_threads()
    try:
        assert share_cores(OmegaConf.create({"sweep": {"parallel_jobs": 1}})) is None
        assert torch.get_num_threads() == before
        threads = share_cores(OmegaConf.create({"sweep": {"parallel_jobs": 2}}))
        assert threads == max(1, usable_cores() // 2) == torch.get_num_threads()
        assert share_cores(OmegaConf.create({"seed": 1})) is None  # not in a sweep
    finally:
        torch.set_num_threads(before)


def _compose(*overrides: str) -> Any:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def test_slurm_config_extends_the_plugins_own_node() -> None:
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher", reason="pip install cnnlab[cluster]"
    )
    launcher = _compose("hydra/launcher=slurm", "hydra.launcher.partition=gpu").hydra.launcher
    assert launcher._target_ == f"{SUBMITIT}.SlurmLauncher"
    assert launcher.partition == "gpu"
    # null: fitted to the trainer and the cluster before the first trial (test_slurm.py).
    assert launcher.gpus_per_node is None and launcher.cpus_per_task is None
    assert launcher.timeout_min == 120
    assert launcher.array_parallelism == 8
    # The plugin's own options stay reachable under their names.
    assert _compose("hydra/launcher=submitit_slurm").hydra.launcher.partition is None
    local = _compose("hydra/launcher=submitit_local").hydra.launcher
    assert local._target_ == f"{SUBMITIT}.LocalLauncher"


def _side_by_side_sweep(tmp_path: Path, run_subprocess, *launcher: str) -> list[dict[str, Any]]:
    """Run 2 trials, 2 at a time, through ``launcher``; return the two run.json records."""
    proc = run_subprocess(
        "train",
        "-m",
        "hparams_search=random",
        *launcher,
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.report=false",
        *QUICK,
        "logger=none",
        "test=false",
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = tmp_path / "outputs"
    storage = f"sqlite:///{outputs / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2
    runs = [json.loads(p.read_text()) for p in sorted(outputs.glob("multiruns/train/*/*/run.json"))]
    assert len(runs) == 2
    for run in runs:
        assert run["status"] == "completed"
        assert run["config"]["sweep"]["parallel_jobs"] == 2
        assert run["hardware"]["torch_threads"] == max(1, usable_cores() // 2)
    return runs


def _overlap(runs: list[dict[str, Any]]) -> bool:
    (a_start, a_end), (b_start, b_end) = (
        (datetime.fromisoformat(r["start"]), datetime.fromisoformat(r["end"])) for r in runs
    )
    return a_start < b_end and b_start < a_end


@pytest.mark.slow
def test_joblib_runs_two_trials_side_by_side(tmp_path: Path, run_subprocess) -> None:
    runs = _side_by_side_sweep(tmp_path, run_subprocess, "hydra/launcher=joblib")
    assert _overlap(runs)


@pytest.mark.slow
def test_submitit_local_runs_a_two_trial_sweep(tmp_path: Path, run_subprocess) -> None:
    pytest.importorskip(
        "hydra_plugins.hydra_submitit_launcher", reason="pip install cnnlab[cluster]"
    )
    runs = _side_by_side_sweep(tmp_path, run_subprocess, "hydra/launcher=submitit_local")
    assert _overlap(runs)
    # submitit keeps each job's own logs and pickles in the sweep folder.
    assert list((tmp_path / "outputs").glob("multiruns/train/*/.submitit/*"))


def test_a_worker_freed_by_a_short_trial_takes_the_next_at_once(app: Path, run_app) -> None:
    """Two joblib workers, trial 0 long: the other worker runs trials 1, 2, 3 meanwhile.

    A sweep that launched its trials in batches of ``n_jobs`` would wait for trial 0
    before asking for trial 2.
    """
    run_app(
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=4",
        "x=interval(0,1)",
        "slow.trial=0",
        "slow.sleep=8",
        timeout=180,
    )
    trials = {t.number: t for t in load_study(app).trials}
    assert sorted(trials) == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in trials.values())
    long_end = trials[0].datetime_complete
    assert long_end is not None
    for number in (2, 3):
        start = trials[number].datetime_start
        assert start is not None and start < long_end, (number, start, long_end)
    # One job folder per trial, numbered as the trials.
    assert sorted(t.user_attrs["job_num"] for t in trials.values()) == [0, 1, 2, 3]
    assert len({t.user_attrs["run_dir"] for t in trials.values()}) == 4


JOBLIB_TWO = ("hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweeper.n_jobs=2")


def test_two_workers_attribute_each_failure_to_its_trial(app: Path, run_app) -> None:
    run_app(
        *JOBLIB_TWO,
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.2,0.3,0.4)",
        "crash_x=0.2",
        "nan_x=0.3",
        "hydra.sweeper.max_failure_rate=0.5",
        timeout=180,
    )
    trials = {t.params["x"]: t for t in load_study(app).trials}
    assert {x: t.state for x, t in trials.items()} == {
        0.1: TrialState.COMPLETE,
        0.2: TrialState.FAIL,
        0.3: TrialState.FAIL,
        0.4: TrialState.COMPLETE,
    }
    assert trials[0.2].user_attrs["error"] == "RuntimeError: boom at x=0.2"
    assert "non-finite" in trials[0.3].user_attrs["error"]
    crashed = trials[0.2].user_attrs
    assert "boom at x=0.2" in (Path(crashed["run_dir"]) / "app.log").read_text()


def test_two_workers_stop_on_too_many_failures_once_their_trials_are_told(
    app: Path, run_app
) -> None:
    proc = run_app(
        *JOBLIB_TWO,
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.2,0.3,0.4)",
        "crash_x=0.1",
        "nan_x=0.2",
        "hydra.sweeper.max_failure_rate=0.25",
        check=False,
        timeout=180,
    )
    assert proc.returncode != 0
    assert "2 of the 4 planned trials failed (max_failure_rate=0.25)" in proc.stderr
    states = [t.state for t in load_study(app).trials]
    assert states.count(TrialState.FAIL) == 2
    assert TrialState.RUNNING not in states  # the other worker's trial was told first
