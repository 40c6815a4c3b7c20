"""A multirun checks its base config and every swept value before its first job.

Through the real ``cnnlab train -m``: a mistake in the base config or in any one swept value
(a list, a ``choice``, the bounds of an ``interval``) exits 1 with one line naming the key
and the value, before the sweeper creates its folder, its study or any trial.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

# One epoch of a few batches, no logger: what a job would run (none runs here).
SHORT = ["debug=limit", "trainer.max_epochs=1", "logger=none"]

CASES: dict[str, tuple[list[str], str]] = {
    "a list value": (["optimizer.lr=0.01,abc"], "optimizer.lr: must be a number > 0, got 'abc'"),
    "the first value": (["optimizer.lr=-1,0.01"], "optimizer.lr: must be a number > 0, got -1"),
    "an unknown option": (
        ["optimizer=adam,nope"],
        "optimizer: cannot compose the job with optimizer=nope: In 'train': Could not find",
    ),
    "the base config": (["seed=abc", "optimizer.lr=0.01,0.02"], "seed: must be an integer"),
    "another key in one job": (
        ["trainer.max_epochs=2,1", "trainer.check_val_every_n_epoch=2"],
        "trainer.check_val_every_n_epoch: 2 is more than trainer.max_epochs=1",
    ),
    "an optuna choice": (
        ["hparams_search=random", "data.batch_size=choice(32,0)"],
        "data.batch_size: must be an integer in [1, ",
    ),
    "an optuna interval bound": (
        ["hparams_search=random", "optimizer.weight_decay=interval(-1.0,0.1)"],
        "optimizer.weight_decay: must be a number >= 0, got -1.0",
    ),
    # Checked on the first job's config with the number set (not composed again).
    "an optuna interval's upper bound": (
        ["hparams_search=random", "data.val_fraction=interval(0.1,1.5)"],
        "data.val_fraction: must be a number in (0, 1), got 1.5",
    ),
    "a network that refuses a grid point": (
        ["hparams_search=grid", "data.batch_size=choice(32)", "norm=group", "norm.groups=2,4"],
        "norm.groups: 4 does not divide the 6",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_multirun_stops_before_its_first_job(case: str, run_subprocess, tmp_path: Path) -> None:
    overrides, message = CASES[case]
    study = tmp_path / "study.db"
    storage = (
        [f"hydra.sweeper.storage=sqlite:///{study}"] if "hparams_search" in str(overrides) else []
    )
    proc: subprocess.CompletedProcess[str] = run_subprocess(
        "train", "-m", *SHORT, *overrides, *storage, timeout=120
    )
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith(f"cnnlab train: error: {message}"), errors
    # No job folder, no sweep folder, no study: nothing was started.
    assert list((tmp_path / "outputs").rglob("*")) == []
    assert not study.exists()


def test_the_job_that_varies_another_key_is_named(run_subprocess, tmp_path: Path) -> None:
    proc = run_subprocess(
        "train", "-m", *SHORT, "trainer.max_epochs=2,1", "trainer.check_val_every_n_epoch=2"
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].endswith("(the job with trainer.max_epochs=1)")


def test_full_traceback_with_hydra_full_error(run_subprocess) -> None:
    proc = run_subprocess(
        "train", "-m", *SHORT, "optimizer.lr=0.01,abc", env={"HYDRA_FULL_ERROR": "1"}
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "ConfigError" in proc.stderr
