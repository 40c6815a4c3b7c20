"""``cnnlab train debug=fast_dev_run`` (a README command) with the default csv logger."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import only_run_dir


def test_fast_dev_run_with_the_default_logger_completes(run_subprocess, tmp_path: Path) -> None:
    # Lightning swaps the csv logger for a DummyLogger under fast_dev_run; the task used to
    # mistake it for wandb and crash after training.
    done = run_subprocess("train", "debug=fast_dev_run")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    run_dir = only_run_dir(tmp_path / "outputs")
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())


# Packages a default run does not use; each costs start-up time (PITFALLS.md measures them).
# matplotlib, scipy and rich are not listed: Lightning itself imports them.
NOT_IMPORTED = ("wandb", "mlflow", "captum", "optuna", "sqlalchemy", "sklearn", "pandas")


def test_a_default_run_imports_no_package_it_does_not_use(run_subprocess) -> None:
    done = run_subprocess("train", "debug=fast_dev_run", env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    # `-X importtime` lines: "import time: self [us] | cumulative | <indent>module".
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "pytorch_lightning" in imported  # the lines were read
    assert sorted(set(NOT_IMPORTED) & imported) == []
    assert not [name for name in imported if name.startswith("cnnlab.interpret")]
