"""A run whose training loss turns NaN or inf fails with one line and a failed run.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cnnlab.lit.divergence import FailOnNonFiniteLoss
from tests.conftest import only_run_dir, quick


def test_nan_loss_fails_the_run_with_one_line(tmp_path: Path, run_subprocess) -> None:
    # SGD at lr=1e8 sends LeNet-5's loss to NaN within the first few batches.
    proc = run_subprocess(
        "train", *quick("optimizer=sgd", "optimizer.lr=1e8", "trainer.max_epochs=1", "logger=none")
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(r"cnnlab train: error: training loss became (nan|inf) at epoch 0, batch ", last)
    assert "with optimizer.lr=100000000.0" in last
    run_dir = only_run_dir(tmp_path / "outputs")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "failed"
    assert run["error"].startswith("TrainingDiverged: training loss became ")
    assert not (run_dir / "metrics.json").exists()


def test_check_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="check_every_n_steps must be >= 1, got 0"):
        FailOnNonFiniteLoss(check_every_n_steps=0)
