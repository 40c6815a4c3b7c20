"""``cnnlab train`` end to end on the bundled digits: the run folder and its record."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import only_run_dir, quick


def test_train_writes_a_complete_run_folder(run_cli, tmp_path: Path) -> None:
    run_cli("train", *quick())
    run_dir = only_run_dir(tmp_path / "outputs")

    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/acc", "test/acc_top5", "test/loss", "val/acc_best", "val/acc", "train/loss"):
        assert key in metrics, sorted(metrics)
    assert metrics["model/params"] == 61706
    assert not any("time" in k or k.endswith("_s") for k in metrics)

    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["seed"] == 42
    assert manifest["overrides"] == quick()
    assert manifest["config"]["model"]["name"] == "lenet5"
    assert manifest["config"]["data"]["num_classes"] == 10
    for key in ("fit_s", "train_samples", "samples_per_s"):
        assert manifest["timings"][key] > 0
    assert "torch" in manifest["packages"]

    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert (run_dir / "confusion_matrix.png").stat().st_size > 1000
    assert (run_dir / "train.log").is_file()
    assert (run_dir / ".hydra" / "config.yaml").is_file()
    with (run_dir / "metrics.csv").open() as f:
        header = next(csv.reader(f))
    assert "val/acc" in header and "train/loss" in header


def test_optimized_metric_must_be_logged(run_cli) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("train", *quick("optimized_metric=val/f1"))
    assert exit_info.value.code == 1


def test_seeded_deterministic_runs_give_identical_metrics(run_cli, tmp_path: Path) -> None:
    overrides = quick("trainer.deterministic=true", "logger=none")
    run_cli("train", *overrides, f"hydra.run.dir={tmp_path / 'a'}")
    run_cli("train", *overrides, f"hydra.run.dir={tmp_path / 'b'}")
    first = (tmp_path / "a" / "metrics.json").read_text()
    assert first == (tmp_path / "b" / "metrics.json").read_text()


def test_resume_from_last_checkpoint_matches_an_uninterrupted_run(run_cli, tmp_path: Path) -> None:
    # Augmentation stays on (its random stream is checkpointed); the schedule is constant
    # because a cosine schedule's length depends on max_epochs, which differs between the runs.
    common = ["trainer.deterministic=true", "logger=none", "scheduler=none", "test=false"]
    common += ["trainer.limit_train_batches=4", "trainer.limit_val_batches=2"]
    run_cli("train", *common, "trainer.max_epochs=4", f"hydra.run.dir={tmp_path / 'full'}")
    interrupted = tmp_path / "resumed"
    run_cli("train", *common, "trainer.max_epochs=2", f"hydra.run.dir={interrupted}")
    run_cli(
        "train", *common, "trainer.max_epochs=4", "ckpt_path=last", f"hydra.run.dir={interrupted}"
    )
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    resumed = json.loads((interrupted / "metrics.json").read_text())
    assert resumed == full


def test_no_callbacks_and_no_logger_still_records_the_run(run_cli, tmp_path: Path) -> None:
    run_cli("train", *quick("callbacks=none", "logger=none"))
    run_dir = only_run_dir(tmp_path / "outputs")
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())
    assert not (run_dir / "checkpoints").exists()


@pytest.mark.slow
def test_default_config_reaches_97_percent_on_digits(run_cli, tmp_path: Path) -> None:
    run_cli("train", "logger=none")
    metrics = json.loads((only_run_dir(tmp_path / "outputs") / "metrics.json").read_text())
    assert metrics["test/acc"] >= 0.97
