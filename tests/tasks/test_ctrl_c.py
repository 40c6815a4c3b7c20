"""Ctrl-C during training: the run is recorded ``interrupted`` and says how to continue it.

Lightning answers a KeyboardInterrupt inside ``fit`` with ``sys.exit(1)``; that is no failure
of the run, and its last line names the ``resume=`` command that continues it.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tests.conftest import ctrl_c_when

# Epochs of three batches: the first epoch line comes quickly, the last one not for minutes.
LONG = ["debug=limit", "trainer.max_epochs=2000", "logger=none"]


def _last_line(lines: list[str]) -> str:
    return [line for line in lines if line.strip()][-1]


def test_ctrl_c_records_an_interrupted_run_and_names_its_resume_command(tmp_path: Path) -> None:
    code, lines = ctrl_c_when("epoch 1/", "train", *LONG, cwd=tmp_path)
    (run_dir,) = (tmp_path / "outputs" / "runs" / "train").iterdir()
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "interrupted", record
    assert "SystemExit" not in record.get("error", ""), record
    assert code != 0
    assert not any("Traceback" in line for line in lines), "\n".join(lines[-30:])
    expected = f"interrupted; continue it: cnnlab train resume={run_dir}"
    assert _last_line(lines) == expected, lines[-5:]


def test_ctrl_c_in_a_sweep_leaves_the_trial_to_resume(tmp_path: Path) -> None:
    sweep = ["-m", "hparams_search=random", "hydra.sweeper.n_trials=2"]
    code, lines = ctrl_c_when("epoch 1/", "train", *sweep, *LONG, cwd=tmp_path)
    assert code != 0
    assert not any("Traceback" in line for line in lines), "\n".join(lines[-30:])
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    info = json.loads((sweep_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=info["study_name"], storage=info["storage"])
    trial, copy = study.trials
    # Not a failure of the trial's settings: FAIL marked interrupted, and a copy queued that
    # re-running the command trains (it takes the interrupted trial's place in n_trials).
    assert trial.state == TrialState.FAIL and trial.user_attrs.get("interrupted") is True
    assert "error" not in trial.user_attrs
    assert copy.state == TrialState.WAITING and copy.params == trial.params
    record = json.loads((Path(trial.user_attrs["run_dir"]) / "run.json").read_text())
    assert record["status"] == "interrupted", record
    expected = "interrupted; continue the sweep: cnnlab train -m hparams_search=random"
    assert _last_line(lines).startswith(expected), lines[-5:]
