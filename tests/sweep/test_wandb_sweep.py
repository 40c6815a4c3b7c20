"""The sweep as a W&B page: a real sweep with ``logger=wandb``, read back from its offline files.

The offline ``.wandb`` files are decoded into wandb's own protobuf records
(``wandb.proto.wandb_internal_pb2.Record``); the leaderboard table is the JSON file
the table-file record points to.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from tests.sweep.test_failures_e2e import _user_module
from tests.tasks.test_tracking import read_wandb_records

# Four trials on a grid: two complete, two fail (4 groups do not divide LeNet-5's 6 maps).
SWEEP = [
    "train",
    "-m",
    "hparams_search=grid",
    "data.batch_size=choice(32)",
    "optimizer.lr=choice(0.001,0.01)",
    # Half the grid fails mid-training (a user callback), after the config checks passed.
    "+callbacks.flaky._target_=user_callbacks.FailAtStep",
    "+callbacks.flaky.step=choice(2,1000)",
    "hydra.sweeper.max_failure_rate=0.9",
    "debug=limit",
    "trainer.max_epochs=1",
    "test=false",
    "logger=wandb",
]


def _finished_records(run_folder: Path, timeout: float = 30.0) -> list[Any]:
    """The records of a finished offline run (wandb's service may flush a moment later)."""
    (path,) = run_folder.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        records = read_wandb_records(path)
        if any(r.HasField("exit") for r in records):
            return records
        assert time.monotonic() < deadline, f"{path}: the run was never finished"
        time.sleep(0.5)


def _updates(records: list[Any], field: str) -> dict[str, Any]:
    """The ``history`` or ``summary`` updates as one dict; nested keys become nested dicts."""
    result: dict[str, Any] = {}
    for record in records:
        if not record.HasField(field):
            continue
        part = getattr(record, field)
        for update in part.item if field == "history" else part.update:
            *parents, last = [update.key] if update.key else list(update.nested_key)
            node = result
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = json.loads(update.value_json)
    return result


@pytest.mark.slow
def test_sweep_summary_run_and_trial_links(tmp_path: Path, run_subprocess) -> None:
    proc = run_subprocess(*SWEEP, timeout=600, env=_user_module(tmp_path))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    info = json.loads((sweep_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=info["study_name"], storage=info["storage"])
    trials = sorted(study.trials, key=lambda t: t.number)
    assert [t.state for t in trials].count(TrialState.FAIL) == 2

    # One summary run, in the study's group, as job type "sweep".
    (summary_run,) = (sweep_dir / "wandb").glob("offline-run-*")
    records = _finished_records(summary_run)
    (run,) = [r.run for r in records if r.HasField("run")]
    assert (run.run_group, run.job_type) == (study.study_name, "sweep")

    # The leaderboard: one row per trial with its state, objective, params and run folder.
    history = _updates(records, "history")
    table = json.loads((summary_run / "files" / history["leaderboard"]["path"]).read_text())
    assert table["columns"] == ["trial", "state", "val/acc_best", "params", "run_dir"]
    expected = [
        [
            t.number,
            t.state.name.lower(),
            t.value,
            json.dumps(t.params, sort_keys=True),
            t.user_attrs["run_dir"],
        ]
        for t in trials
    ]
    assert table["data"] == expected
    # The report's plots, as images.
    assert "plots/history" in history
    assert (summary_run / "files" / history["plots/history"]["path"]).is_file()

    summary = _updates(records, "summary")
    assert (summary["trials/complete"], summary["trials/fail"], summary["trials/pruned"]) == (
        2,
        2,
        0,
    )
    assert summary["best/params"] == study.best_params
    assert summary["best/val/acc_best"] == pytest.approx(study.best_value)

    # Each trial that trained leads to its own W&B run, in the same group.
    for trial in trials:
        if trial.state != TrialState.COMPLETE:
            continue
        folder = Path(trial.user_attrs["wandb_offline_run"])
        assert folder.parent.parent == Path(trial.user_attrs["run_dir"])
        (trial_run,) = [r.run for r in _finished_records(folder) if r.HasField("run")]
        assert trial_run.run_group == study.study_name
        assert trial_run.display_name == f"trial-{trial.number}"
