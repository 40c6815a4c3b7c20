"""Storages: URLs, journal files, PostgreSQL, the shared lock, and recovery of abandoned trials."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab.errors import ConfigError
from cnnlab.sweep.storage import (
    RETRY_ATTR,
    WORKER_ATTR,
    Heartbeat,
    ask_lock,
    counted_trials,
    file_path,
    lock_file,
    normalize_url,
    open_storage,
    recover_abandoned,
    trial_id,
    uses_optuna_heartbeat,
)


def test_relative_urls_become_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_url("sqlite:///out/optuna.db") == f"sqlite:///{tmp_path}/out/optuna.db"
    assert normalize_url("journal:out/j.log") == f"journal:{tmp_path}/out/j.log"
    assert normalize_url("postgresql://u@h/db") == "postgresql://u@h/db"
    assert file_path("journal:///abs/j.log") == Path("/abs/j.log")


def test_journal_storage_holds_a_study(tmp_path: Path) -> None:
    url = f"journal:{tmp_path}/deep/journal.log"
    study = optuna.create_study(storage=open_storage(url), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = optuna.load_study(study_name="s", storage=open_storage(url))
    assert len(again.trials) == 2


@pytest.mark.parametrize("url", ["nosuchdriver://x/y", "sqlite:////proc/no/such/dir/optuna.db"])
def test_bad_storage_names_the_key(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^hydra\.sweeper\.storage: cannot open"):
        open_storage(url)


def test_ask_lock_creates_its_folder(tmp_path: Path) -> None:
    with ask_lock(f"sqlite:///{tmp_path}/new/optuna.db"):
        assert (tmp_path / "new" / "optuna.db.cnnlab-lock").exists()


def test_dead_worker_trials_are_failed_and_requeued(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/optuna.db")
    study = optuna.create_study(storage=storage, study_name="s")
    done = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    study.tell(done, 1.0)
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    alive = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    import socket

    # A pid that cannot exist for the dead one; this process for the live one.
    storage.set_trial_system_attr(
        trial_id(storage, "s", dead.number),
        WORKER_ATTR,
        {"host": socket.gethostname(), "pid": 2**22 + 7},
    )
    storage.set_trial_system_attr(
        trial_id(storage, "s", alive.number),
        WORKER_ATTR,
        {"host": socket.gethostname(), "pid": os.getpid()},
    )
    assert recover_abandoned(study, storage, grace_period=3600) == [dead.number]
    trials = study.get_trials()
    assert trials[dead.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.params == trials[dead.number].params
    # The copy replaces the abandoned trial in the count (waiting: not counted yet).
    assert [t.number for t in counted_trials(trials)] == [done.number, alive.number]


def test_silent_remote_trials_are_abandoned_after_the_grace_period(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/o.db")
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    storage.set_trial_system_attr(
        trial_id(storage, "s", trial.number), WORKER_ATTR, {"host": "elsewhere", "pid": 1}
    )
    assert recover_abandoned(study, storage, grace_period=60) == []
    time.sleep(1.1)
    assert recover_abandoned(study, storage, grace_period=1) == [trial.number]


def test_trial_id_is_the_id_storage_methods_take(tmp_path: Path) -> None:
    """Found from the trial's number alone, in each kind of storage the sweeper opens."""
    for storage in (
        optuna.storages.InMemoryStorage(),
        open_storage(f"sqlite:///{tmp_path}/o.db"),
        open_storage(f"journal:{tmp_path}/j.log"),
    ):
        for name in ("a", "b"):  # two studies: ids differ from numbers in the second
            study = optuna.create_study(storage=storage, study_name=name)
            trials = [study.ask() for _ in range(2)]
            for trial in trials:
                stored_id = trial_id(storage, name, trial.number)
                storage.set_trial_user_attr(stored_id, "n", trial.number)
            assert [t.user_attrs["n"] for t in study.get_trials()] == [0, 1]


def test_our_lock_is_not_optunas_journal_lock(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Optuna's journal backend locks ``<journal>.lock``; ours must be another file, or
    every write under our lock waits 30 s for Optuna to break it."""
    url = f"journal:{tmp_path}/journal.log"
    start = time.monotonic()
    with ask_lock(url):
        study = optuna.create_study(storage=open_storage(url), study_name="s")
        study.tell(study.ask({"x": optuna.distributions.FloatDistribution(0, 1)}), 1.0)
    assert time.monotonic() - start < 20  # Optuna gives up waiting only after 30 s
    assert "Forcibly releasing" not in capfd.readouterr().err
    assert lock_file(tmp_path / "journal.log") != tmp_path / "journal.log.lock"


def test_rdb_storages_use_optunas_heartbeat(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/o.db", heartbeat_interval=1, grace_period=1)
    assert uses_optuna_heartbeat(storage)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    # A worker on another host that stamped its trial once, then went silent.
    stored_id = trial_id(storage, "s", trial.number)
    storage.set_trial_system_attr(stored_id, WORKER_ATTR, {"host": "elsewhere", "pid": 1})
    heartbeat = Heartbeat(storage, interval=1)
    heartbeat.add([stored_id])
    assert recover_abandoned(study, storage, grace_period=1) == []
    time.sleep(2.5)
    assert recover_abandoned(study, storage, grace_period=1) == [trial.number]
    old, copy = study.get_trials()
    assert old.state == TrialState.FAIL
    assert copy.state == TrialState.WAITING and copy.params == old.params
    assert copy.system_attrs[RETRY_ATTR] == old.number and WORKER_ATTR not in copy.system_attrs


def test_missing_postgres_driver_says_what_to_install() -> None:
    with pytest.raises(ConfigError, match=r"cnnlab\[postgres\]"):
        open_storage("postgresql+pg8000://user@localhost/db")


WORKER = """
import sys
from cnnlab.sweep.storage import open_storage
open_storage(sys.argv[1], heartbeat_interval=30)
print("opened")
"""


def test_postgres_workers_create_a_fresh_schema_together(postgres_url: str) -> None:
    """Optuna alone: several workers on a fresh database fail with UniqueViolation."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, postgres_url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [w.communicate(timeout=120)[0] for w in workers]
    assert [w.returncode for w in workers] == [0] * 4, outputs
    study = optuna.create_study(storage=open_storage(postgres_url), study_name="s")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert len(study.trials) == 2


def test_postgres_ask_lock_lets_one_worker_in_at_a_time(postgres_url: str) -> None:
    events: list[str] = []
    inside = threading.Event()

    def first() -> None:
        with ask_lock(postgres_url):
            events.append("first in")
            inside.set()
            time.sleep(0.5)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(30)
    with ask_lock(postgres_url):
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]
