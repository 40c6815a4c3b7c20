"""Sweeps stopped mid-trial and resumed, through the real ``cnnlab train -m`` command.

The sweep process itself dies (SIGKILL: under the basic launcher its trial's job runs in it,
and a user callback kills it) or is stopped with Ctrl-C; the same command, run again on the
same SQLite study, runs the lost trial's point once more, continuing the lost run from its
last checkpoint, and sums the study up as if the sweep had never stopped.
"""

from __future__ import annotations

import json
import os
import signal
import textwrap
from pathlib import Path

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from cnnlab.sweep.storage import RETRY_ATTR
from tests.conftest import ctrl_c_when
from tests.sweep.test_failures_e2e import GRID, USER_CALLBACKS

# Two epochs of a few batches (debug=limit), one grid point: the lost trial and its copy.
COMMAND = [*GRID, "optimizer.lr=choice(0.01)", "debug=limit", "logger=none", "test=false"]

# Waits (for Ctrl-C) as epoch `epoch` (0-based) starts, in the first `times` runs that get
# there, and says so on stdout; in the first, once last.ckpt holds epoch `epoch` - 1.
WAIT_CALLBACK = """
class WaitAtEpoch(pl.Callback):

    def __init__(self, epoch: int, marker: str, times: int = 1) -> None:
        self.epoch, self.marker, self.times = epoch, marker, times

    def on_train_epoch_start(self, trainer, pl_module):
        waited = int(open(self.marker).read()) if os.path.exists(self.marker) else 0
        if trainer.current_epoch != self.epoch or waited >= self.times:
            return
        last = os.path.join(trainer.checkpoint_callback.dirpath, "last.ckpt")
        deadline = time.monotonic() + 60
        while not waited and _saved_epoch(last) != self.epoch - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        with open(self.marker, "w") as handle:
            handle.write(str(waited + 1))
        print("user callback: waiting for Ctrl-C", flush=True)
        time.sleep(300)
"""


def _env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose own callbacks are on PYTHONPATH."""
    folder = tmp_path / "user"
    folder.mkdir(exist_ok=True)
    source = textwrap.dedent(USER_CALLBACKS) + textwrap.dedent(WAIT_CALLBACK)
    (folder / "user_callbacks.py").write_text(source)
    # In front of the caller's PYTHONPATH, which may name the cnnlab under test.
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def _latest_sweep(tmp_path: Path) -> Path:
    return sorted((tmp_path / "outputs" / "multiruns" / "train").iterdir())[-1]


def _trials(sweep_dir: Path) -> list[FrozenTrial]:
    url = f"sqlite:///{sweep_dir.parents[2] / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(url)
    return optuna.load_study(study_name=summary.study_name, storage=url).trials


def _resumed(tmp_path: Path, run_subprocess, *extra: str) -> tuple[FrozenTrial, FrozenTrial, str]:
    """Run the command again; the lost trial, its copy (the study's only two) and the copy's log.

    The copy ran the same point once, continuing the lost run from its last checkpoint.
    """
    proc = run_subprocess("train", "-m", *COMMAND, *extra, env=_env(tmp_path))
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    lost, copy = _trials(_latest_sweep(tmp_path))
    assert lost.state == TrialState.FAIL and copy.state == TrialState.COMPLETE
    assert copy.system_attrs[RETRY_ATTR] == lost.number and copy.params == lost.params
    last = Path(lost.user_attrs["run_dir"]) / "checkpoints" / "last.ckpt"
    log = (Path(copy.user_attrs["run_dir"]) / "train.log").read_text()
    assert f"Restored all states from the checkpoint at {last}" in log, log
    return lost, copy, log


@pytest.mark.parametrize("epoch", [1, 2])
def test_a_killed_sweep_rerun_continues_its_lost_trial(
    tmp_path: Path, run_subprocess, epoch: int
) -> None:
    # The sweep's process is killed as epoch 2 starts (1), or after the fit's last epoch,
    # before the trial was told (2).
    kill = [
        "+callbacks.kill._target_=user_callbacks.KillOnceAtEpoch",
        f"+callbacks.kill.epoch={epoch}",
        f"+callbacks.kill.marker={tmp_path / 'killed'}",
    ]
    proc = run_subprocess("train", "-m", *COMMAND, *kill, env=_env(tmp_path))
    assert proc.returncode == -signal.SIGKILL, (proc.stdout + proc.stderr)[-3000:]

    lost, copy, _ = _resumed(tmp_path, run_subprocess, *kill)
    # The lost run's folder no longer says "running" (`cnnlab runs` lists it as failed).
    record = json.loads((Path(lost.user_attrs["run_dir"]) / "run.json").read_text())
    assert record["status"] == "failed" and "lost" in record["error"], record
    # The pruner heard of the epochs each trained, at their steps: none after the fit's last.
    assert set(lost.intermediate_values) == set(range(epoch))
    assert set(copy.intermediate_values) == set(range(epoch, 2))
    # best.yaml re-runs the point from scratch, not from the lost run's checkpoint.
    best = (_latest_sweep(tmp_path) / "best.yaml").read_text()
    assert "lr: 0.01" in best and "ckpt_path" not in best, best


def _ctrl_c(tmp_path: Path, *args: str) -> int:
    """Run ``cnnlab <args>``, press Ctrl-C once its callback waits; its exit code."""
    code, lines = ctrl_c_when("waiting for Ctrl-C", *args, cwd=tmp_path, env=_env(tmp_path))
    assert not any("Traceback" in line for line in lines), "\n".join(lines[-30:])
    return code


def test_a_sweep_stopped_with_ctrl_c_resumes_its_trial(tmp_path: Path, run_subprocess) -> None:
    wait = [
        "+callbacks.wait._target_=user_callbacks.WaitAtEpoch",
        "+callbacks.wait.epoch=1",
        f"+callbacks.wait.marker={tmp_path / 'waited'}",
    ]
    code = _ctrl_c(tmp_path, "train", "-m", *COMMAND, *wait)
    assert code != 0

    lost, copy, log = _resumed(tmp_path, run_subprocess, *wait)
    assert lost.user_attrs.get("interrupted") is True
    # The copy finished: it is no interrupted trial, whatever its lost run was.
    assert "interrupted" not in copy.user_attrs and "error" not in copy.user_attrs
    assert "epoch 2/2  train/" in log and "epoch 1/2  train/" not in log, log


def test_a_copy_stopped_before_its_first_checkpoint_leaves_the_lost_runs_progress(
    tmp_path: Path, run_subprocess
) -> None:
    # Ctrl-C in epoch 2; then again in the copy continuing it, before it saved a checkpoint of
    # its own: the copy's copy still continues from the first run's last.ckpt.
    wait = [
        "+callbacks.wait._target_=user_callbacks.WaitAtEpoch",
        "+callbacks.wait.epoch=1",
        f"+callbacks.wait.marker={tmp_path / 'waited'}",
        "+callbacks.wait.times=2",
    ]
    for _ in range(2):
        assert _ctrl_c(tmp_path, "train", "-m", *COMMAND, *wait) != 0

    proc = run_subprocess("train", "-m", *COMMAND, *wait, env=_env(tmp_path))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    first, copy, last_copy = _trials(_latest_sweep(tmp_path))
    assert [first.state, copy.state] == [TrialState.FAIL, TrialState.FAIL]
    assert last_copy.state == TrialState.COMPLETE and last_copy.system_attrs[RETRY_ATTR] == 1
    last = Path(first.user_attrs["run_dir"]) / "checkpoints" / "last.ckpt"
    log = (Path(last_copy.user_attrs["run_dir"]) / "train.log").read_text()
    assert f"Restored all states from the checkpoint at {last}" in log, log
    assert "epoch 2/2  train/" in log and "epoch 1/2  train/" not in log, log
