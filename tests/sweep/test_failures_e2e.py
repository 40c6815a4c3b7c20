"""Failing trials, bad sweeper settings and plain multiruns through the real ``cnnlab`` command.

Every test runs ``python -m cnnlab train -m ...`` in a subprocess on cnnlab's own
config tree (no test app): a trial that fails must be recorded FAIL with its
error, in the study and in its job's log, and the sweep must go on, stop with one
line, and still write its report.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.trial import FrozenTrial, TrialState

from cnnlab.sweep.storage import RETRY_ATTR

# One epoch of a few batches; no logger files. Each trial trains in about a second.
SHORT = ["debug=limit", "trainer.max_epochs=1", "logger=none"]
# A grid over the command line's points only (hparams_search=grid also sweeps batch size).
GRID = ["hparams_search=grid", "data.batch_size=choice(32)"]

# A user's own callback, found on PYTHONPATH: fails (or kills its own process) at a step.
USER_CALLBACKS = """
import os
import signal
import time

import pytorch_lightning as pl
import torch


class FailAtStep(pl.Callback):
    def __init__(self, step: int, kill: bool = False) -> None:
        self.step, self.kill = step, kill

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"user callback failed at step {trainer.global_step}")


# SIGKILLs its own process the first time epoch `epoch` (0-based) starts, or a fit of `epoch`
# epochs ends, once last.ckpt holds epoch `epoch` - 1 (cnnlab writes checkpoints in a
# background thread).
class KillOnceAtEpoch(pl.Callback):

    def __init__(self, epoch: int, marker: str) -> None:
        self.epoch, self.marker = epoch, marker

    def on_train_epoch_start(self, trainer, pl_module):
        self._kill(trainer)

    def on_train_end(self, trainer, pl_module):
        self._kill(trainer)

    def _kill(self, trainer):
        if trainer.current_epoch != self.epoch or os.path.exists(self.marker):
            return
        last = os.path.join(trainer.checkpoint_callback.dirpath, "last.ckpt")
        deadline = time.monotonic() + 60
        while _saved_epoch(last) != self.epoch - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        open(self.marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)


def _saved_epoch(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)["epoch"]
    except Exception:  # not written yet
        return None
"""


def _output(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def _sweep_dir(tmp_path: Path) -> Path:
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    return sweep_dir


def _study(sweep_dir: Path) -> optuna.Study:
    info = json.loads((sweep_dir / "sweep.json").read_text())
    return optuna.load_study(study_name=info["study_name"], storage=info["storage"])


def _by_param(study: optuna.Study, key: str) -> dict[object, FrozenTrial]:
    return {t.params[key]: t for t in study.trials}


def _assert_recorded_failure(trial: FrozenTrial, error_start: str, *, started: bool = True) -> None:
    """FAIL in the study, the error in its user attrs, its job log and its run.json.

    A config refused by the check before the run starts (``started=False``) leaves no run.json.
    """
    assert trial.state == TrialState.FAIL
    assert trial.user_attrs["error"].startswith(error_start), trial.user_attrs["error"]
    run_dir = Path(trial.user_attrs["run_dir"])
    log = (run_dir / "train.log").read_text()
    assert f"trial {trial.number} failed" in log and error_start in log
    if not started:
        assert not (run_dir / "run.json").exists()
        return
    run = json.loads((run_dir / "run.json").read_text())
    message = error_start.split(": ", 1)[1]  # run.json may name a wrapper's type first
    assert run["status"] == "failed" and message in run["error"], run["error"]


def _assert_ends_with_outcome(proc: subprocess.CompletedProcess[str], sweep_dir: Path) -> list[str]:
    """The sweep's last printed lines: best value and trial, its run folder, the report."""
    lines = proc.stdout.strip().splitlines()[-3:]
    assert lines[0].startswith("best val/acc_best: "), lines
    assert lines[1].startswith("best run folder: "), lines
    assert lines[2] == f"report: {sweep_dir / 'report.md'}", lines
    assert (sweep_dir / "report.md").is_file() and (sweep_dir / "report.html").is_file()
    return lines


def test_failing_trials_are_recorded_and_the_sweep_goes_on(tmp_path: Path, run_subprocess) -> None:
    # lr=1e8 sends the loss to NaN after a step, lr=0.01 trains. (A value the config check
    # refuses, such as lr=-1, stops the multirun before its first trial: test_multirun_check.)
    proc = run_subprocess(
        "train",
        "-m",
        *GRID,
        "optimizer=sgd",
        "optimizer.lr=choice(1e8,0.01)",
        "hydra.sweeper.max_failure_rate=0.9",
        *SHORT,
    )
    assert proc.returncode == 0, _output(proc)[-3000:]
    assert "Traceback" not in _output(proc)
    sweep_dir = _sweep_dir(tmp_path)
    trials = _by_param(_study(sweep_dir), "optimizer.lr")
    _assert_recorded_failure(trials[1e8], "TrainingDiverged: training loss became ")
    assert trials[1e8].user_attrs["error"].split()[4] in ("nan", "inf")
    good = trials[0.01]
    assert good.state == TrialState.COMPLETE
    lines = _assert_ends_with_outcome(proc, sweep_dir)
    assert lines[0] == (
        f"best val/acc_best: {good.value:.6g} (trial {good.number} of study "
        f"{_study(sweep_dir).study_name}; 1 complete, 1 failed)"
    )
    assert lines[1] == f"best run folder: {sweep_dir / str(good.user_attrs['job_num'])}"
    report = (sweep_dir / "report.md").read_text()
    assert "complete 1, pruned 0, failed 1" in report
    # The leaderboard shows the test metrics and run folders relative to the sweep folder.
    header, best_row = report.split("## Leaderboard")[1].strip().splitlines()[0:3:2]
    assert "| test/acc |" in header and "| run folder |" in header
    metrics = json.loads((Path(good.user_attrs["run_dir"]) / "metrics.json").read_text())
    assert f"| {metrics['test/acc']:.4g} |" in best_row
    assert f"| {good.user_attrs['job_num']} |" in best_row


def test_too_many_failures_stop_the_sweep_with_one_line(tmp_path: Path, run_subprocess) -> None:
    proc = run_subprocess(
        "train",
        "-m",
        *GRID,
        "optimizer=sgd",
        "optimizer.lr=choice(1e8,2e8,3e8)",  # each diverges after a step
        "hydra.sweeper.max_failure_rate=0.0",
        *SHORT,
    )
    assert proc.returncode == 1
    assert "Traceback" not in _output(proc)
    sweep_dir = _sweep_dir(tmp_path)
    # It stops at the first failure: the grid's other points never run.
    (failed,) = _study(sweep_dir).trials
    assert failed.state == TrialState.FAIL
    log = Path(failed.user_attrs["run_dir"]) / "train.log"
    last = proc.stderr.strip().splitlines()[-1]
    assert last == (
        "cnnlab train: error: 1 of the 3 planned trials failed (max_failure_rate=0.0); "
        f"last error: {failed.user_attrs['error']}; their logs: {log}"
    )
    assert "Traceback" in log.read_text()
    assert (sweep_dir / "report.md").is_file()
    assert proc.stdout.strip().splitlines()[-1] == f"report: {sweep_dir / 'report.md'}"


def _has_mysql_driver() -> bool:
    return importlib.util.find_spec("MySQLdb") is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["hparams_search=random", "hydra.sweeper.storage=bogus://x"],
            "hydra.sweeper.storage: cannot open 'bogus://x'",
        ),
        (
            ["hparams_search=random", "hydra.sweeper.storage=sqlite:////proc/x/db"],
            "hydra.sweeper.storage: cannot ",
        ),
        pytest.param(
            ["hparams_search=random", "hydra.sweeper.storage=mysql://user@127.0.0.1/cnnlab"],
            "hydra.sweeper.storage: cannot open 'mysql://user@127.0.0.1/cnnlab'",
            marks=pytest.mark.skipif(_has_mysql_driver(), reason="a MySQL driver is installed"),
        ),
        (
            ["hparams_search=grid", "optimizer.lr=interval(0.1,1)"],
            "optimizer.lr: grid search needs discrete values",
        ),
        (
            ["hparams_search=random", "optimizer.lr=tag(log, interval(-1, 1))"],
            "optimizer.lr: a log-scale interval needs start > 0",
        ),
    ],
)
def test_bad_sweeper_setting_is_one_line(
    tmp_path: Path, run_subprocess, args: list[str], message: str
) -> None:
    proc = run_subprocess("train", "-m", *args, *SHORT)
    assert proc.returncode == 1
    assert "Traceback" not in _output(proc)
    assert proc.stderr.strip().splitlines()[-1].startswith(f"cnnlab train: error: {message}")
    # Nothing that looks like a sweep is left behind.
    assert not list((tmp_path / "outputs").rglob("sweep.json"))
    assert not list((tmp_path / "outputs").rglob("report.md"))


@pytest.mark.slow
def test_contradicting_direction_gets_a_warning(tmp_path: Path, run_subprocess) -> None:
    # One trial that fails after a step (it diverges): the warning comes before any job.
    proc = run_subprocess(
        "train",
        "-m",
        "hparams_search=random",
        "hydra.sweeper.direction=minimize",
        "hydra.sweeper.n_trials=1",
        "optimizer=sgd",
        "optimizer.lr=choice(1e8)",
        "hydra.sweeper.max_failure_rate=1.0",
        *SHORT,
    )
    assert proc.returncode == 0, _output(proc)[-3000:]
    warnings = [line for line in _output(proc).splitlines() if "contradicts" in line]
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "hydra.sweeper.direction: minimize contradicts optimized_metric val/acc_best, which "
        "is better when higher (monitor.mode=max); the sweep will minimize it as told"
    )
    info = json.loads((_sweep_dir(tmp_path) / "sweep.json").read_text())
    assert info["directions"] == ["minimize"]
    assert proc.stdout.strip().splitlines()[-2].startswith("no trial of study ")


@pytest.mark.slow
def test_readme_sweep_maximizes_accuracy(tmp_path: Path, run_subprocess) -> None:
    # The README's example, shrunk: no direction given, so it follows monitor.mode (max).
    proc = run_subprocess(
        "train",
        "-m",
        "hydra/sweeper=cnnlab_optuna",
        "hydra/sweeper/sampler=random",
        "optimizer.lr=tag(log, interval(1e-4, 1e-1))",
        "data.batch_size=choice(32,64)",
        "hydra.sweeper.n_trials=3",
        *SHORT,
    )
    assert proc.returncode == 0, _output(proc)[-3000:]
    assert "contradicts" not in _output(proc)
    sweep_dir = _sweep_dir(tmp_path)
    study = _study(sweep_dir)
    assert [d.name for d in study.directions] == ["MAXIMIZE"]
    values = {}
    for trial in study.trials:
        metrics = json.loads((Path(trial.user_attrs["run_dir"]) / "metrics.json").read_text())
        values[trial.number] = metrics["val/acc_best"]
        assert trial.value == pytest.approx(metrics["val/acc_best"])
    best_number = max(values, key=lambda n: (values[n], -n))
    best = OmegaConf.load(sweep_dir / "best.yaml")
    best_trial = study.trials[best_number]
    assert best.optimizer.lr == pytest.approx(best_trial.params["optimizer.lr"])
    assert (
        (sweep_dir / "best.yaml")
        .read_text()
        .splitlines()[1]
        .startswith(f"# Best trial {best_number}: objective {values[best_number]:.4g}")
    )
    _assert_ends_with_outcome(proc, sweep_dir)


def _user_module(tmp_path: Path) -> dict[str, str]:
    folder = tmp_path / "user"
    folder.mkdir()
    (folder / "user_callbacks.py").write_text(textwrap.dedent(USER_CALLBACKS))
    # In front of the caller's PYTHONPATH, which may name the cnnlab under test.
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    return {"PYTHONPATH": os.pathsep.join(p for p in paths if p)}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("overrides", "key", "bad", "good", "error"),
    [
        pytest.param(
            [
                "+callbacks.flaky._target_=user_callbacks.FailAtStep",
                "+callbacks.flaky.step=choice(2,1000)",
            ],
            "callbacks.flaky.step",
            2,
            1000,
            "RuntimeError: user callback failed at step 2",
            id="raises-mid-training",
        ),
    ],
)
def test_one_bad_point_is_recorded_and_the_sweep_goes_on(
    tmp_path: Path,
    run_subprocess,
    overrides: list[str],
    key: str,
    bad: int,
    good: int,
    error: str,
) -> None:
    proc = run_subprocess(
        "train",
        "-m",
        *GRID,
        "optimizer.lr=choice(0.001)",
        *overrides,
        "hydra.sweeper.max_failure_rate=0.9",
        *SHORT,
        env=_user_module(tmp_path),
    )
    assert proc.returncode == 0, _output(proc)[-3000:]
    assert "Traceback" not in _output(proc)
    sweep_dir = _sweep_dir(tmp_path)
    trials = _by_param(_study(sweep_dir), key)
    _assert_recorded_failure(trials[bad], error)
    assert trials[good].state == TrialState.COMPLETE
    _assert_ends_with_outcome(proc, sweep_dir)


@pytest.mark.slow
def test_trial_killed_under_joblib_is_recorded(tmp_path: Path, run_subprocess) -> None:
    # The job's own process gets SIGKILL (as from the OOM killer) in the middle of training.
    proc = run_subprocess(
        "train",
        "-m",
        *GRID,
        "hydra/launcher=joblib",
        "optimizer=sgd",
        "optimizer.lr=choice(1e8,0.001)",
        "+callbacks.flaky._target_=user_callbacks.FailAtStep",
        "+callbacks.flaky.kill=true",
        "+callbacks.flaky.step=choice(1,1000)",
        "hydra.sweeper.max_failure_rate=0.9",
        *SHORT,
        env=_user_module(tmp_path),
    )
    assert proc.returncode == 0, _output(proc)[-3000:]
    sweep_dir = _sweep_dir(tmp_path)
    study = _study(sweep_dir)
    trials = {(t.params["optimizer.lr"], t.params["callbacks.flaky.step"]): t for t in study.trials}
    assert len(trials) == 4
    killed = trials[(0.001, 1)]
    _assert_recorded_failure(killed, "the job's process was lost: TerminatedWorkerError")
    assert "SIGKILL" in killed.user_attrs["error"]
    # A user error (CnnlabError) raised in a joblib worker comes back whole (it pickles).
    _assert_recorded_failure(trials[(1e8, 1000)], "TrainingDiverged: training loss became ")
    assert trials[(0.001, 1000)].state == TrialState.COMPLETE
    _assert_ends_with_outcome(proc, sweep_dir)


def _sweep_killed_at(tmp_path: Path, run_subprocess, epoch: int) -> tuple[FrozenTrial, str]:
    """A one-point sweep of 2-epoch trials whose job is killed once, at ``epoch``.

    Returns the killed trial and its copy's log.
    """
    proc = run_subprocess(
        "train",
        "-m",
        *GRID,
        "optimizer.lr=choice(0.01)",
        "hydra/launcher=joblib",
        "+callbacks.kill._target_=user_callbacks.KillOnceAtEpoch",
        f"+callbacks.kill.epoch={epoch}",
        f"+callbacks.kill.marker={tmp_path / 'killed'}",
        "hydra.sweeper.max_failure_rate=0.9",
        "debug=limit",
        "logger=none",
        env=_user_module(tmp_path),
    )
    assert proc.returncode == 0, _output(proc)[-3000:]
    killed, copy = _study(_sweep_dir(tmp_path)).trials
    assert killed.state == TrialState.FAIL and copy.state == TrialState.COMPLETE
    assert copy.system_attrs[RETRY_ATTR] == killed.number
    assert "error" not in copy.user_attrs  # the killed job's error is not the copy's
    last = Path(killed.user_attrs["run_dir"]) / "checkpoints" / "last.ckpt"
    assert f"++ckpt_path={last}" in copy.user_attrs["overrides"]
    log = (Path(copy.user_attrs["run_dir"]) / "train.log").read_text()
    assert f"Restored all states from the checkpoint at {last}" in log
    return killed, log


def test_requeued_trial_continues_from_the_killed_trials_last_checkpoint(
    tmp_path: Path, run_subprocess
) -> None:
    # The job is killed as its second epoch starts, after epoch 1 saved last.ckpt; its
    # point is queued again, and the copy trains epoch 2 only.
    _, log = _sweep_killed_at(tmp_path, run_subprocess, epoch=1)
    # Epoch 1 is not trained again (Lightning still ends it, with no metrics: an empty line).
    assert "epoch 2/2  train/" in log and "epoch 1/2  train/" not in log, log


def test_a_trial_killed_after_its_fit_ended_is_valued_from_its_last_checkpoint(
    tmp_path: Path, run_subprocess
) -> None:
    # Killed after its last epoch, before it was told (a job cancelled at that moment): the
    # copy has nothing left to train, and its value is the killed trial's best-so-far.
    killed, log = _sweep_killed_at(tmp_path, run_subprocess, epoch=2)
    assert "nothing left to train" in log and "/2  train/" not in log, log
    (copy,) = [t for t in _study(_sweep_dir(tmp_path)).trials if t.number != killed.number]
    killed_log = (Path(killed.user_attrs["run_dir"]) / "train.log").read_text()
    (last_epoch,) = [line for line in killed_log.splitlines() if "epoch 2/2  train/" in line]
    assert f"val/acc_best={copy.value:.4g}" in last_epoch, (copy.value, last_epoch)


@pytest.mark.slow
@pytest.mark.parametrize("outputs_env", [True, False])
def test_plain_multirun_and_its_report(
    tmp_path: Path, run_subprocess, monkeypatch: pytest.MonkeyPatch, outputs_env: bool
) -> None:
    # The README's plain Hydra multirun (basic sweeper), shrunk to two jobs.
    if not outputs_env:
        monkeypatch.delenv("CNNLAB_OUTPUTS")  # outputs/ under the launch folder, tmp_path
    proc = run_subprocess("train", "-m", "optimizer.lr=1e-3,3e-3", "seed=1", *SHORT)
    assert proc.returncode == 0, _output(proc)[-3000:]
    sweep_dir = _sweep_dir(tmp_path)
    assert (sweep_dir / "multirun.yaml").is_file()
    runs = {}
    for job in ("0", "1"):
        run = json.loads((sweep_dir / job / "run.json").read_text())
        assert run["status"] == "completed"
        runs[job] = json.loads((sweep_dir / job / "metrics.json").read_text())

    report = run_subprocess("report", str(sweep_dir))
    assert report.returncode == 0, _output(report)
    markdown = (sweep_dir / "report.md").read_text()
    assert "A plain Hydra multirun (no study): 2 runs - completed 2" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith("| ") and "completed" in line]
    best_job = max(runs, key=lambda j: (runs[j]["val/acc_best"], -int(j)))
    assert rows[0].startswith(f"| {best_job} | completed | {runs[best_job]['val/acc_best']:.4g} |")
    assert f"| {runs[best_job]['test/acc']:.4g} |" in rows[0]
    assert f"| {best_job} |" in rows[0]  # its run folder, relative to the sweep folder
    best = OmegaConf.load(sweep_dir / "best.yaml")
    assert best.optimizer.lr == (1e-3 if best_job == "0" else 3e-3)
