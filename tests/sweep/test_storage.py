"""Storages: URLs, journal files, the shared lock, and recovery of abandoned trials."""

from __future__ import annotations

import os
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from cnnlab.errors import ConfigError
from cnnlab.sweep.storage import (
    WORKER_ATTR,
    ask_lock,
    counted_trials,
    file_path,
    normalize_url,
    open_storage,
    recover_abandoned,
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
        assert (tmp_path / "new" / "optuna.db.lock").exists()


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
        dead._trial_id, WORKER_ATTR, {"host": socket.gethostname(), "pid": 2**22 + 7}
    )
    storage.set_trial_system_attr(
        alive._trial_id, WORKER_ATTR, {"host": socket.gethostname(), "pid": os.getpid()}
    )
    assert recover_abandoned(study, grace_period=3600) == [dead.number]
    trials = study.get_trials()
    assert trials[dead.number].state == TrialState.FAIL
    assert trials[alive.number].state == TrialState.RUNNING
    retry = trials[-1]
    assert retry.state == TrialState.WAITING and retry.params == trials[dead.number].params
    # The copy replaces the abandoned trial in the count (waiting: not counted yet).
    assert [t.number for t in counted_trials(trials)] == [done.number, alive.number]


def test_silent_remote_trials_are_abandoned_after_the_grace_period(tmp_path: Path) -> None:
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path}/o.db"), study_name="s")
    trial = study.ask()
    study._storage.set_trial_system_attr(
        trial._trial_id, WORKER_ATTR, {"host": "elsewhere", "pid": 1}
    )
    assert recover_abandoned(study, grace_period=60) == []
    time.sleep(1.1)
    assert recover_abandoned(study, grace_period=1) == [trial.number]
