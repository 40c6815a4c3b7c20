"""A sweep whose study's disk fills up: one line naming the storage and the cause.

Needs a small real file system that can fill up: a 3 MB tmpfs, which only root can mount
(skipped otherwise). The study is SQLite on it; a user callback fills the disk while a job
trains, so the sweeper's next write to the study fails as it would on a real full disk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

SHORT = ["debug=limit", "trainer.max_epochs=1", "logger=none", "callbacks=none", "test=false"]

# Fills the disk that holds FILL_PATH at the end of training, while the marker file exists.
FILL_DISK = """
import os

import pytorch_lightning as pl


class FillDisk(pl.Callback):
    def __init__(self, path: str, marker: str) -> None:
        self.path, self.marker = path, marker

    def on_train_end(self, trainer, pl_module):
        if not os.path.exists(self.marker):
            return
        with open(self.path, "ab") as fh:
            try:
                while True:
                    fh.write(b"\\0" * 65536)
                    fh.flush()
            except OSError:
                pass
"""


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs, unmounted after the test."""
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    done = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=3M", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        # Lazily: this process may still hold the SQLite file open (Optuna's engine).
        subprocess.run(["umount", "--lazy", str(folder)], check=False)


def _states(storage: str) -> Counter[str]:
    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    return Counter(t.state.name for t in study.trials)


def test_a_full_disk_ends_the_sweep_with_one_line_and_the_next_run_recovers(
    small_disk: Path, run_subprocess, tmp_path: Path
) -> None:
    user = tmp_path / "user"
    user.mkdir()
    (user / "fill_disk.py").write_text(textwrap.dedent(FILL_DISK))
    filler, marker = small_disk / "filler", tmp_path / "fill-now"
    marker.touch()
    storage = f"sqlite:///{small_disk / 'study.db'}"
    args = [
        "train",
        "-m",
        *SHORT,
        "hparams_search=random",
        "hydra.sweeper.n_trials=1",
        f"hydra.sweeper.storage={storage}",
        "+callbacks.fill._target_=fill_disk.FillDisk",
        f"+callbacks.fill.path={filler}",
        f"+callbacks.fill.marker={marker}",
    ]
    env = {"PYTHONPATH": f"{user}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}

    proc = run_subprocess(*args, env=env)
    assert proc.returncode == 1, proc.stdout[-2000:]
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    errors = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert errors == [
        f"cnnlab train: error: {storage}: the study cannot be written: "
        "sqlite3.OperationalError: database or disk is full"
    ]
    # The storage is on the full disk: the trial cannot be marked FAIL, and the log says so.
    assert _states(storage) == {"RUNNING": 1}
    assert "stay RUNNING (the storage refuses writes)" in proc.stdout + proc.stderr

    # Space again: the same command re-queues the abandoned trial and runs it.
    filler.unlink()
    marker.unlink()
    proc = run_subprocess(*args, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _states(storage) == {"FAIL": 1, "COMPLETE": 1}
