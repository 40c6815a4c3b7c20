"""The sweeper end to end on a tiny real Hydra app with a real SQLite storage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab.sweeper.samplers import SEED_ATTR, trial_seed
from tests.sweep.conftest import load_study, marks


def test_plugin_is_discovered() -> None:
    from hydra.core.plugins import Plugins
    from hydra.plugins.sweeper import Sweeper

    names = [p.__name__ for p in Plugins.instance().discover(Sweeper)]
    assert "CnnlabOptunaSweeper" in names


def test_config_module_does_not_import_optuna() -> None:
    code = (
        "import sys\n"
        "import hydra_plugins.cnnlab_optuna_sweeper.config\n"
        "import hydra_plugins.cnnlab_optuna_sweeper.sweeper\n"
        "print('optuna' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_grid_covers_each_point_once(app: Path, run_app) -> None:
    run_app(
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.3,0.5)",
        "y=range(0,2)",
        "hydra.sweeper.n_trials=50",
    )
    study = load_study(app)
    points = sorted((t.params["x"], t.params["y"]) for t in study.trials)
    assert points == [(x, y) for x in (0.1, 0.3, 0.5) for y in (0, 1)]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len(marks(app)) == 6
    # Run again: the grid is done, nothing more runs.
    run_app(
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.3,0.5)",
        "y=range(0,2)",
        "hydra.sweeper.n_trials=50",
    )
    assert len(load_study(app).trials) == 6 and len(marks(app)) == 6


# TPE and random (the configs' samplers) in the fast suite; the others with `-m slow`.
SLOW = pytest.mark.slow


@pytest.mark.parametrize(
    "sampler",
    [
        "tpe",
        "random",
        pytest.param("qmc", marks=SLOW),
        pytest.param("cmaes", marks=SLOW),
        pytest.param("nsgaii", marks=SLOW),
    ],
)
def test_every_continuous_sampler_runs_a_sweep(app: Path, run_app, sampler: str) -> None:
    run_app(
        f"hydra/sweeper/sampler={sampler}",
        "hydra.sweeper.sampler.seed=3",
        "x=interval(0,1)",
        "y=interval(0,1)",
        "hydra.sweeper.n_trials=4",
    )
    study = load_study(app)
    assert len(study.trials) == 4
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert len({t.params["x"] for t in study.trials}) == 4


def test_resume_reaches_total_and_continues_job_numbers(app: Path, run_app) -> None:
    args = ["hydra/sweeper/sampler=random", "hydra.sweeper.sampler.seed=1", "x=interval(0,1)"]
    run_app(*args, "hydra.sweeper.n_trials=3")
    resumed = run_app(*args, "hydra.sweeper.n_trials=5")
    study = load_study(app)
    assert [t.number for t in study.trials] == [0, 1, 2, 3, 4]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    first, second = sorted((app / "multirun").iterdir())
    # The resumed sweep says where the study's earlier trials are.
    assert f"earlier trials of study {study.study_name} are in: {first}" in resumed.stdout
    assert sorted(p.name for p in second.iterdir() if p.is_dir()) == ["3", "4"]
    info = json.loads((second / "sweep.json").read_text())
    assert info["study_name"] == study.study_name and info["n_trials"] == 5
    # Each trial has its own seed, recorded on it by the sweeper.
    assert [t.user_attrs[SEED_ATTR] for t in study.trials] == [trial_seed(1, n) for n in range(5)]


def test_crash_and_nan_are_failed_and_the_sweep_goes_on(app: Path, run_app) -> None:
    proc = run_app(
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.2,0.3,0.4)",
        "crash_x=0.2",
        "nan_x=0.3",
        "hydra.sweeper.max_failure_rate=0.5",
    )
    study = load_study(app)
    states = {t.params["x"]: t.state for t in study.trials}
    assert states == {
        0.1: TrialState.COMPLETE,
        0.2: TrialState.FAIL,
        0.3: TrialState.FAIL,
        0.4: TrialState.COMPLETE,
    }
    crashed = next(t for t in study.trials if t.params["x"] == 0.2)
    assert crashed.user_attrs["error"] == "RuntimeError: boom at x=0.2"
    nan = next(t for t in study.trials if t.params["x"] == 0.3)
    assert "non-finite" in nan.user_attrs["error"]
    job_dir = Path(crashed.user_attrs["sweep_dir"]) / str(crashed.user_attrs["job_num"])
    assert "boom at x=0.2" in (job_dir / "app.log").read_text()
    # Hydra's own line for a failed job, kept for a crash (one per crashed job).
    assert proc.stderr.count("Error executing job with overrides") == 1


def test_too_many_failures_stop_the_sweep(app: Path, run_app) -> None:
    proc = run_app(
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.2,0.3,0.4)",
        "crash_x=0.1",
        "nan_x=0.2",
        "hydra.sweeper.max_failure_rate=0.25",
        check=False,
    )
    assert proc.returncode != 0
    assert "2 of the 4 planned trials failed (max_failure_rate=0.25)" in proc.stderr
    trials = load_study(app).trials
    # It stops right after the second failure (1 > 0.25 * 4 is still allowed).
    assert [t.state for t in trials].count(TrialState.FAIL) == 2
    assert trials[-1].state == TrialState.FAIL


def test_pruned_trial_is_pruned_and_stops_early(app: Path, run_app) -> None:
    # The median pruner, no warm-up: trial 0 sets the bar, a worse trial 1 stops at step 0.
    # Seed 1 puts x=0.3 (the better point) first on the grid.
    proc = run_app(
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.sampler.seed=1",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "x=choice(0.3,0.9)",
        "steps=5",
        "hydra.sweeper.n_jobs=1",
    )
    study = load_study(app)
    by_x = {t.params["x"]: t for t in study.trials}
    assert by_x[0.3].state == TrialState.COMPLETE
    assert by_x[0.9].state == TrialState.PRUNED
    assert by_x[0.3].number == 0
    assert len(by_x[0.3].intermediate_values) == 5
    assert list(by_x[0.9].intermediate_values) == [0]
    # A pruned trial is no error: Hydra's "Error executing job" line is held back.
    assert "Error executing job" not in proc.stderr
    # Nor is it told again (Optuna would warn "Skipped telling trial").
    assert "Skipped telling" not in proc.stderr


def test_multi_objective_keeps_a_pareto_set(app: Path, run_app) -> None:
    run_app(
        "hydra/sweeper/sampler=grid",
        "hydra.sweeper.direction=[minimize,minimize]",
        "x=choice(0.1,0.3)",
        "y=choice(-1.0,0.0,0.5)",
        "two=true",
        "hydra.sweeper.n_trials=6",
    )
    study = load_study(app)
    assert len(study.trials) == 6
    front = {(t.params["x"], t.params["y"]) for t in study.best_trials}
    assert front == {(0.3, 0.0), (0.3, 0.5)}


@pytest.mark.slow
def test_sigkill_mid_trial_then_same_command_finishes(app: Path, run_app) -> None:
    args = ["hydra/sweeper/sampler=grid", "x=choice(0.1,0.2,0.3,0.4)", "sleep=0.6"]
    env = {**os.environ, "APP_ROOT": str(app)}
    proc = subprocess.Popen(
        [sys.executable, "app.py", "-m", *args],
        cwd=app,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while len(marks(app)) < 2 and time.time() < deadline:  # the second trial is running
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = load_study(app).trials
    finished = {t.number for t in before if t.state == TrialState.COMPLETE}
    assert any(t.state == TrialState.RUNNING for t in before)

    run_app(*args)
    study = load_study(app)
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert finished <= {t.number for t in done}
    assert sorted(t.params["x"] for t in done) == [0.1, 0.2, 0.3, 0.4]
    abandoned = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(abandoned) == 1
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") is not None)
    assert retry.system_attrs["failed_trial"] == abandoned[0].number
    assert retry.params == abandoned[0].params


def test_two_workers_share_one_study(app: Path) -> None:
    env = {**os.environ, "APP_ROOT": str(app)}
    args = [
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.2,0.3,0.4)",
        "y=choice(0.0,1.0)",
        "sleep=0.2",
        "hydra.sweeper.n_trials=8",
    ]
    workers = [
        subprocess.Popen(
            [sys.executable, "app.py", "-m", *args],
            cwd=app,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0, worker.stderr.read() if worker.stderr else ""
    study = load_study(app)
    assert len(study.trials) == 8
    assert [t.number for t in study.trials] == list(range(8))
    points = [(t.params["x"], t.params["y"]) for t in study.trials]
    assert len(set(points)) == 8
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    runs = marks(app)
    assert len(runs) == 8
    assert len({r["trial"] for r in runs}) == 8
    workers_seen = {t.system_attrs["cnnlab:worker"]["pid"] for t in study.trials}
    assert len(workers_seen) == 2


def test_study_name_follows_the_command(app: Path, run_app) -> None:
    run_app("x=choice(0.1,0.2)", "hydra.sweeper.n_trials=1")
    run_app("x=choice(0.1,0.3)", "hydra.sweeper.n_trials=1")
    names = sorted(
        s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{app / 'optuna.db'}")
    )
    assert len(names) == 2
    assert all(n.startswith("app-default-tpe-") for n in names)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["hydra.sweeper.direction=up"], "hydra.sweeper.direction: expected minimize or maximize"),
        (["hydra/sweeper/sampler=motpe"], "The 'motpe' sampler was removed in Optuna 4.0"),
        (["hydra/sweeper/sampler=grid", "x=interval(0,1)"], "x: grid search needs discrete"),
        (["hydra.sweeper.n_jobs=0"], "hydra.sweeper.n_jobs: must be an integer >= 1"),
        (["hydra.sweeper.max_failure_rate=2"], "hydra.sweeper.max_failure_rate: must be in [0, 1]"),
    ],
)
def test_bad_sweeper_settings_name_the_key(run_app, args: list[str], message: str) -> None:
    proc = run_app("x=choice(0.1,0.2)", *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stderr
