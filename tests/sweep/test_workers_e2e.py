"""Many workers on one study, through the real ``cnnlab train -m`` command.

Each worker is a separate ``python -m cnnlab train -m ...`` process running the
same command on the same study, as on a cluster. Checked on SQLite, Optuna's
journal file and a real PostgreSQL (pgserver): a grid runs every point exactly
once, TPE finishes exactly ``n_trials``, and a worker killed mid-trial leaves its
trial FAIL while the rerun command completes the study with distinct points.

Each multi-worker test prints one ``FIGURES`` line (trials, duplicates, lost,
wall time); run them with ``pytest -m slow -s tests/sweep/test_workers_e2e.py``.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from cnnlab.sweep.storage import WORKER_ATTR, open_storage

STUDY = "workers"
# One epoch of two batches: the trials are tiny, the sweep machinery is what runs.
TINY = [
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=2",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "hydra.sweeper.report=false",
    f"hydra.sweeper.study_name={STUDY}",
]
# conf/hparams_search/grid.yaml's grid, as (data.batch_size, optimizer.lr) points.
GRID = set(itertools.product([32, 64], [3e-4, 1e-3, 3e-3]))


@pytest.fixture(params=["sqlite", "journal", "postgres"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty storage of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/optuna.db"
    if request.param == "journal":
        return f"journal:{tmp_path}/optuna.journal"
    url: str = request.getfixturevalue("postgres_url")
    return url


@dataclass
class Worker:
    """One ``cnnlab train -m`` process and the file its output goes to."""

    proc: subprocess.Popen[str]
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def start_workers(tmp_path: Path, count: int, url: str, *overrides: str) -> list[Worker]:
    """Start ``count`` processes running the same sweep command on the study in ``url``."""
    args = [*overrides, *TINY, f'hydra.sweeper.storage="{url}"']
    workers = []
    for _ in range(count):
        log = tmp_path / f"worker-{len(list(tmp_path.glob('worker-*.log')))}.log"
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "cnnlab", "train", "-m", *args],
                cwd=tmp_path,
                env={**os.environ, "HYDRA_FULL_ERROR": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        workers.append(Worker(proc, log))
    return workers


def wait_all(workers: list[Worker], timeout: float = 900) -> None:
    """Wait for every worker; fail with its output if one fails or leaves a traceback."""
    deadline = time.monotonic() + timeout
    for worker in workers:
        worker.proc.wait(timeout=max(deadline - time.monotonic(), 1))
    for worker in workers:
        text = worker.output()
        assert worker.proc.returncode == 0, text[-3000:]
        assert "Traceback" not in text, text[-3000:]
        assert "Forcibly releasing" not in text, text[-3000:]


def load(url: str) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=open_storage(url))


def point(trial: FrozenTrial) -> tuple[object, ...]:
    return tuple(v for _, v in sorted(trial.params.items()))


def complete(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def report(name: str, url: str, n_trials: int, done: list[FrozenTrial], wall: float) -> None:
    """Print the figures the issue asks for (shown with ``pytest -s``)."""
    points = Counter(point(t) for t in done)
    duplicates = sum(n - 1 for n in points.values())
    lost = n_trials - len(points)
    kind = url.split(":", 1)[0]
    print(
        f"\nFIGURES {name} {kind}: trials={len(done)} duplicates={duplicates} "
        f"lost={lost} wall={wall:.0f}s"
    )


@pytest.mark.slow
def test_two_workers_share_a_random_sweep(tmp_path: Path) -> None:
    """The fast one: two workers, one SQLite study, four distinct random points."""
    url = f"sqlite:///{tmp_path}/optuna.db"
    workers = start_workers(tmp_path, 2, url, "hparams_search=random", "hydra.sweeper.n_trials=4")
    wait_all(workers)
    done = complete(load(url))
    assert len(done) == 4
    assert len({point(t) for t in done}) == 4
    # Both workers took part (the second may start late on a busy machine: at least one trial).
    pids = {t.system_attrs[WORKER_ATTR]["pid"] for t in done}
    assert pids <= {w.proc.pid for w in workers}


@pytest.mark.slow
def test_four_workers_run_each_grid_point_once(tmp_path: Path, storage_url: str) -> None:
    start = time.monotonic()
    wait_all(start_workers(tmp_path, 4, storage_url, "hparams_search=grid"))
    study = load(storage_url)
    done = complete(study)
    report("grid", storage_url, len(GRID), done, time.monotonic() - start)
    assert len(study.trials) == len(GRID) == len(done)
    assert sorted(point(t) for t in done) == sorted(GRID)


@pytest.mark.slow
def test_four_workers_finish_exactly_n_tpe_trials(tmp_path: Path, storage_url: str) -> None:
    start = time.monotonic()
    wait_all(
        start_workers(tmp_path, 4, storage_url, "hparams_search=tpe", "hydra.sweeper.n_trials=8")
    )
    study = load(storage_url)
    done = complete(study)
    report("tpe", storage_url, 8, done, time.monotonic() - start)
    assert len(done) == 8 and len(study.trials) == 8
    assert len({point(t) for t in done}) == 8


def running_trial_of(workers: list[Worker], url: str, timeout: float = 300) -> FrozenTrial:
    """Wait until one of ``workers`` runs a trial; return that trial."""
    pids = {w.proc.pid for w in workers}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            running = load(url).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        except KeyError:  # the study does not exist yet
            running = []
        for trial in running:
            if trial.system_attrs.get(WORKER_ATTR, {}).get("pid") in pids:
                return trial
        time.sleep(0.2)
    raise AssertionError(f"no worker started a trial in {timeout} s")


def kill_and_rerun(tmp_path: Path, url: str, count: int, n_trials: int) -> None:
    """Start ``count`` workers, SIGKILL one mid-trial, let the rest finish, rerun once."""
    command = ("hparams_search=random", f"hydra.sweeper.n_trials={n_trials}")
    start = time.monotonic()
    workers = start_workers(tmp_path, count, url, *command)
    victim_trial = running_trial_of(workers, url)
    victim = next(w for w in workers if w.proc.pid == victim_trial.system_attrs[WORKER_ATTR]["pid"])
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(timeout=60)
    wait_all([w for w in workers if w is not victim])
    wait_all(start_workers(tmp_path, 1, url, *command))

    study = load(url)
    done = complete(study)
    report(f"kill-{count}", url, n_trials, done, time.monotonic() - start)
    assert study.trials[victim_trial.number].state == TrialState.FAIL
    assert len(done) == n_trials
    # The rerun draws new points: as many distinct configurations as trials.
    assert len({point(t) for t in done}) == n_trials


# Slow (about 13 s); the fast suite resumes sweeps in tests/sweep/test_sweeper.py.
@pytest.mark.slow
def test_a_killed_sweep_resumes_with_new_points(tmp_path: Path) -> None:
    """One worker killed mid-trial, the command rerun: n_trials COMPLETE, all distinct."""
    kill_and_rerun(tmp_path, f"sqlite:///{tmp_path}/optuna.db", count=1, n_trials=3)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_is_failed_and_replaced(tmp_path: Path, storage_url: str) -> None:
    kill_and_rerun(tmp_path, storage_url, count=4, n_trials=8)
