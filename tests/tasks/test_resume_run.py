"""``cnnlab train resume=<run folder>``: a killed run, resumed, is the run it would have been."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

# Deterministic and short, with the default cosine schedule and csv logger. Enough batches per
# epoch that a kill lands inside an epoch.
RUN = [
    "trainer.deterministic=true",
    "trainer.max_epochs=4",
    "trainer.limit_train_batches=12",
    "trainer.limit_val_batches=2",
    "trainer.limit_test_batches=2",
    "trainer.log_every_n_steps=4",
]


def _rows(run_dir: Path) -> list[tuple[tuple[str, str], ...]]:
    with (run_dir / "metrics.csv").open(newline="") as fh:
        rows = [tuple(sorted((k, v) for k, v in row.items() if v)) for row in csv.DictReader(fh)]
    return sorted(rows)


def _config(run_dir: Path) -> str:
    config = json.loads((run_dir / "run.json").read_text())["config"]
    return json.dumps(config, sort_keys=True).replace(str(run_dir), "<run>")


def _kill_after_first_checkpoint(run_dir: Path, cwd: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "train", *RUN, f"hydra.run.dir={run_dir}"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # into the second epoch's training batches
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL, "the run ended before it was killed"


# Three real training processes (~50 s on a busy 2-core machine): in the slow suite.
@pytest.mark.slow
def test_killed_run_resumed_matches_an_uninterrupted_run(run_subprocess, tmp_path: Path) -> None:
    full, killed = tmp_path / "full", tmp_path / "killed"
    done = run_subprocess("train", *RUN, f"hydra.run.dir={full}")
    assert done.returncode == 0, done.stderr[-2000:]
    _kill_after_first_checkpoint(killed, tmp_path)
    assert json.loads((killed / "run.json").read_text())["status"] == "running"
    rows_before = _rows(killed)
    assert rows_before, "metrics.csv had no rows at the kill"

    done = run_subprocess("train", f"resume={killed}")

    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads((killed / "metrics.json").read_text()) == json.loads(
        (full / "metrics.json").read_text()
    )
    # Every row written before the kill is still there, and the file is the uninterrupted one.
    assert set(rows_before) <= set(_rows(killed))
    assert _rows(killed) == _rows(full)
    assert _config(killed) == _config(full)
    assert yaml.safe_load((killed / ".hydra" / "overrides.yaml").read_text()) == RUN
    manifest = json.loads((killed / "run.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["overrides"] == RUN
    assert [s["status"] for s in manifest["starts"]] == ["killed", "completed"]
    assert manifest["starts"][1]["resumed_from"] == str(killed / "checkpoints" / "last.ckpt")
    log = (killed / "train.log").read_text()
    assert "epoch 1/4" in log and "epoch 4/4" in log


def test_resume_refuses_what_would_change_the_run(run_cli, capsys, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_cli("train", "debug=limit", "logger=none", f"hydra.run.dir={run_dir}")
    before = (run_dir / "run.json").read_text()
    refused = {
        # The cosine schedule was made for 2 epochs: more would restart it.
        "trainer.max_epochs=8": "trainer.max_epochs",
        "model=vgg11": "model",
        # The run completed: nothing to continue.
        "debug=limit": str(run_dir),
    }
    for change, needle in refused.items():
        with pytest.raises(SystemExit) as exit_info:
            run_cli("train", f"resume={run_dir}", change)
        assert exit_info.value.code == 1
        assert needle in capsys.readouterr().err.strip().splitlines()[-1]
    assert (run_dir / "run.json").read_text() == before


def test_resume_records_safe_changes_with_its_start(run_cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_cli("train", "debug=limit", "scheduler=none", "logger=none", f"hydra.run.dir={run_dir}")
    first = json.loads((run_dir / "run.json").read_text())

    run_cli("train", f"resume={run_dir}", "trainer.max_epochs=3", "test=false")

    manifest = json.loads((run_dir / "run.json").read_text())
    assert [s["status"] for s in manifest["starts"]] == ["completed", "completed"]
    assert manifest["starts"][1]["changes"] == {
        "trainer.max_epochs": [2, 3],
        "test": [True, False],
    }
    assert manifest["starts"][1]["overrides"] == ["trainer.max_epochs=3", "test=false"]
    assert manifest["config"]["trainer"]["max_epochs"] == 3
    assert manifest["start"] == first["start"]
    assert manifest["overrides"] == first["overrides"]


def test_resume_of_a_folder_without_checkpoint_is_one_line(run_subprocess, tmp_path: Path) -> None:
    done = run_subprocess("train", f"resume={tmp_path / 'nowhere'}")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert str(tmp_path / "nowhere") in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "nowhere").exists()


def test_a_run_folder_of_an_earlier_release_still_resumes(
    run_cli, run_subprocess, tmp_path: Path
) -> None:
    """Folders saved when conf/paths used ${hydra:runtime.cwd} (now ${cnnlab.cwd:}) resume."""
    run_dir = tmp_path / "run"
    run_cli("train", "debug=limit", "scheduler=none", "logger=none", f"hydra.run.dir={run_dir}")
    saved = run_dir / ".hydra" / "config.yaml"
    text = saved.read_text()
    assert text.count("${cnnlab.cwd:}") == 2  # paths.data_dir and paths.output_root
    saved.write_text(text.replace("${cnnlab.cwd:}", "${hydra:runtime.cwd}"))

    done = run_subprocess("train", f"resume={run_dir}", "trainer.max_epochs=3")

    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert [s["status"] for s in manifest["starts"]] == ["completed", "completed"]
    assert manifest["config"]["trainer"]["max_epochs"] == 3


# Zeroes the network before each validation of the fit (not the sanity check's): the epoch
# it runs in validates a network that predicts one class for every image.
ZERO_CALLBACK = """
import pytorch_lightning as pl
import torch


class ZeroBeforeValidation(pl.Callback):
    def on_validation_epoch_start(self, trainer, pl_module):
        if not trainer.sanity_checking:
            with torch.no_grad():
                for parameter in pl_module.parameters():
                    parameter.zero_()
"""


@pytest.fixture
def zero_callback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The override that adds :data:`ZERO_CALLBACK`, a user's callback found on sys.path."""
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "zero_callback.py").write_text(ZERO_CALLBACK)
    monkeypatch.syspath_prepend(str(tmp_path / "user"))
    return "+callbacks.zero._target_=zero_callback.ZeroBeforeValidation"


def test_a_fit_continued_from_a_checkpoint_keeps_its_best_so_far(
    run_cli, zero_callback: str, tmp_path: Path
) -> None:
    run = ["debug=limit", "logger=none", "test=false", "scheduler=none"]
    first = tmp_path / "first"
    run_cli("train", *run, f"hydra.run.dir={first}")
    done = json.loads((first / "metrics.json").read_text())
    last = first / "checkpoints" / "last.ckpt"
    kept = ("val/acc", "val/loss", "val/acc_best", "val/loss_at_best")

    # Nothing left to train (a sweep's trial killed after its last epoch, before it was
    # told): the checkpoint's validation and best-so-far are the result.
    ended = tmp_path / "ended"
    run_cli("train", *run, f"ckpt_path={last}", f"hydra.run.dir={ended}")
    metrics = json.loads((ended / "metrics.json").read_text())
    assert {k: metrics[k] for k in kept} == pytest.approx({k: done[k] for k in kept})
    assert "nothing left to train" in (ended / "train.log").read_text()

    # One more epoch, which makes the network worse: the best is still the checkpoint's.
    worse = tmp_path / "worse"
    run_cli(
        "train",
        *run,
        "trainer.max_epochs=3",
        f"ckpt_path={last}",
        zero_callback,
        f"hydra.run.dir={worse}",
    )
    metrics = json.loads((worse / "metrics.json").read_text())
    assert metrics["val/acc"] < done["val/acc_best"]  # the premise: epoch 3 is worse
    assert metrics["val/acc_best"] == done["val/acc_best"]
    assert metrics["val/loss_at_best"] == done["val/loss_at_best"]


def test_a_fit_continued_in_another_folder_tests_the_best_checkpoint_of_the_whole_fit(
    run_cli, zero_callback: str, tmp_path: Path
) -> None:
    # A sweep's re-queued trial continues the killed trial's last.ckpt in a folder of its own.
    # Lightning kept the best checkpoint's path but not its score: the first epoch after the
    # restore became "best" however bad, and the test tested it.
    run = ["debug=limit", "logger=none", "scheduler=none", "trainer.deterministic=true"]
    first = tmp_path / "first"
    run_cli("train", *run, f"hydra.run.dir={first}")
    done = json.loads((first / "metrics.json").read_text())
    worse = tmp_path / "worse"
    run_cli(
        "train",
        *run,
        "trainer.max_epochs=3",
        f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}",
        zero_callback,
        f"hydra.run.dir={worse}",
    )
    metrics = json.loads((worse / "metrics.json").read_text())
    assert metrics["val/acc"] < done["val/acc_best"]  # the premise: epoch 3 is worse
    tested = {k: v for k, v in metrics.items() if k.startswith("test/")}
    assert tested == {k: v for k, v in done.items() if k.startswith("test/")}
    # best.ckpt here is the first run's (which stays), and the folder's checkpoints evaluate.
    best = (first / "checkpoints" / "best.ckpt").read_bytes()
    assert (worse / "checkpoints" / "best.ckpt").read_bytes() == best
    limit = "trainer.limit_test_batches=2"
    for name in ("best.ckpt", "last.ckpt"):
        run_cli("eval", f"ckpt_path={worse / 'checkpoints' / name}", "logger=none", limit)


def test_a_fit_that_early_stopping_ended_stays_ended_when_continued(
    run_cli, tmp_path: Path
) -> None:
    # Early stopping ends the fit at epoch 2 of 4 (no epoch beats the first by 0.5). Its
    # last.ckpt continued (a sweep's trial killed before it was told the fit had ended)
    # trained a third epoch, which the uninterrupted run never did.
    run = ["debug=limit", "logger=none", "scheduler=none", "test=false", "trainer.max_epochs=4"]
    run += ["callbacks.early_stopping.patience=1", "callbacks.early_stopping.min_delta=0.5"]
    first, copy = tmp_path / "first", tmp_path / "copy"
    run_cli("train", *run, f"hydra.run.dir={first}")
    stopped = json.loads((first / "run.json").read_text())["timings"]
    assert stopped["epochs"] == 2 and stopped["stopped"].startswith("early stopping at epoch 2")

    run_cli(
        "train", *run, f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={copy}"
    )

    timings = json.loads((copy / "run.json").read_text())["timings"]
    assert timings["train_samples"] == 0 and timings["epochs"] == 2, timings
    assert timings["stopped"] == stopped["stopped"]
    done, continued = (json.loads((d / "metrics.json").read_text()) for d in (first, copy))
    kept = ("val/acc", "val/loss", "val/acc_best", "val/loss_at_best")
    assert {k: continued[k] for k in kept} == pytest.approx({k: done[k] for k in kept})


def test_a_run_killed_after_its_last_epoch_resumes_without_a_phantom_epoch(
    run_cli, tmp_path: Path
) -> None:
    # Killed after its last validation (during its test, say), the run has nothing left to
    # train: the resume validates its checkpoint, and logged that validation as one more
    # epoch's row of metrics.csv.
    run_dir = tmp_path / "run"
    run_cli("train", "debug=limit", "scheduler=none", "test=false", f"hydra.run.dir={run_dir}")
    rows = _rows(run_dir)
    _as_if_killed(run_dir)

    run_cli("train", f"resume={run_dir}")

    assert "nothing left to train" in (run_dir / "train.log").read_text()
    assert _rows(run_dir) == rows
    statuses = [s["status"] for s in json.loads((run_dir / "run.json").read_text())["starts"]]
    assert statuses == ["killed", "completed"]


def _as_if_killed(run_dir: Path) -> None:
    """Leave ``run.json`` as a run killed after its last checkpoint leaves it."""
    record = json.loads((run_dir / "run.json").read_text())
    record["status"] = record["starts"][-1]["status"] = "running"
    (run_dir / "run.json").write_text(json.dumps(record))


def test_a_moved_run_folder_resumes_with_its_own_best_checkpoint(run_cli, tmp_path: Path) -> None:
    # Its checkpoints name the best checkpoint where it was: Lightning kept that path, and
    # the final test failed on a missing file (or a longer fit forgot the best's score).
    before, run_dir = tmp_path / "before", tmp_path / "moved"
    run_cli("train", "debug=limit", "scheduler=none", "logger=none", f"hydra.run.dir={before}")
    done = json.loads((before / "metrics.json").read_text())
    _as_if_killed(before)
    before.rename(run_dir)

    run_cli("train", f"resume={run_dir}")

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert {k: v for k, v in metrics.items() if k.startswith(("test/", "val/"))} == {
        k: v for k, v in done.items() if k.startswith(("test/", "val/"))
    }


def test_a_checkpoint_continued_without_its_best_checkpoint_tests_its_weights(
    run_cli, tmp_path: Path
) -> None:
    # last.ckpt kept alone (its run folder deleted): the fit has nothing left to train, and
    # its test took the best checkpoint it names, which is gone.
    run = ["debug=limit", "scheduler=none", "logger=none"]
    run_cli("train", *run, f"hydra.run.dir={tmp_path / 'gone'}")
    kept = tmp_path / "last.ckpt"
    (tmp_path / "gone" / "checkpoints" / "last.ckpt").rename(kept)
    shutil.rmtree(tmp_path / "gone")

    run_cli("train", *run, f"ckpt_path={kept}", f"hydra.run.dir={tmp_path / 'copy'}")

    assert "test/acc" in json.loads((tmp_path / "copy" / "metrics.json").read_text())
    assert "best checkpoint" in (tmp_path / "copy" / "train.log").read_text()
