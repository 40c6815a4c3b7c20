"""TimeToAccuracy and the CIFAR-10 speed run: the config composes, trains, records and stops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab.errors import ConfigError
from cnnlab.lit.time_to_accuracy import RESULT_FILE, TimeToAccuracy

# The speed run's recipe at CIFAR size on generated data, with a tiny network.
SPEEDRUN_SYNTHETIC = [
    "experiment=cifar10_speedrun",
    "data=synthetic",
    "data.in_channels=3",
    "data.image_size=32",
    "data.batch_size=16",
    "data.source.num_samples=300",
    "model.widths=[4,8,8]",
    "logger=none",
]


def test_target_reached_records_both_clocks_and_stops(run_cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_cli(
        "train",
        *SPEEDRUN_SYNTHETIC,
        # Any accuracy reaches 0: the first validation records the time and stops the run.
        "callbacks.time_to_accuracy.target=0.0",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        f"hydra.run.dir={run_dir}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    wall, train = metrics["val/time_to_target_s"], metrics["val/train_time_to_target_s"]
    assert 0 < train <= wall
    result = json.loads((run_dir / RESULT_FILE).read_text())
    assert result["epoch"] == 0 and result["step"] == 2 and result["target"] == 0.0
    assert result["seconds"] == pytest.approx(wall, abs=1e-3)
    timings = json.loads((run_dir / "run.json").read_text())["timings"]
    assert timings["epochs"] == 1  # stopped at the target, not at max_epochs=3


@pytest.mark.slow
def test_unreached_target_records_nothing(run_cli, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_cli(
        "train",
        *SPEEDRUN_SYNTHETIC,
        "callbacks.time_to_accuracy.target=1.01",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=1",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        f"hydra.run.dir={run_dir}",
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert "val/acc" in metrics and "val/time_to_target_s" not in metrics
    assert not (run_dir / RESULT_FILE).exists()


@pytest.mark.parametrize("target", ["high", float("nan"), True])
def test_bad_target_names_its_key(target: object) -> None:
    with pytest.raises(ConfigError, match=r"callbacks\.time_to_accuracy\.target"):
        TimeToAccuracy(target=target)  # type: ignore[arg-type]


def test_state_key_is_the_one_earlier_checkpoints_hold() -> None:
    # Lightning looks a callback's state up by this string only: a checkpoint written with
    # Lightning's Callback._generate_state_key(monitor=..., target=...) must still resume.
    assert TimeToAccuracy(target=0.94).state_key == (
        "TimeToAccuracy{'monitor': 'val/acc', 'target': 0.94}"
    )
    assert TimeToAccuracy(target=1, monitor="val/acc_top5").state_key == (
        "TimeToAccuracy{'monitor': 'val/acc_top5', 'target': 1.0}"
    )
    assert TimeToAccuracy(target=0.9).state_key != TimeToAccuracy(target=0.94).state_key


# Ended by max_epochs, or by the target (stop=true) at epoch 1 of 3, which a fit continued
# from its last checkpoint must not undo by training on.
@pytest.mark.parametrize("stop, epochs", [("false", 1), ("true", 3)])
def test_a_fit_with_nothing_left_to_train_reports_the_checkpoints_time(
    run_cli, tmp_path: Path, stop: str, epochs: int
) -> None:
    # A sweep's trial killed after its last epoch: its copy continues the last checkpoint,
    # trains nothing, and must still report when the killed fit reached the target.
    run = [
        *SPEEDRUN_SYNTHETIC,
        "callbacks.time_to_accuracy.target=0.0",
        f"callbacks.time_to_accuracy.stop={stop}",
        f"trainer.max_epochs={epochs}",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "test=false",
    ]
    first, copy = tmp_path / "first", tmp_path / "copy"
    run_cli("train", *run, f"hydra.run.dir={first}")
    run_cli(
        "train", *run, f"ckpt_path={first / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={copy}"
    )
    assert "nothing left to train" in (copy / "train.log").read_text()
    keys = TimeToAccuracy(target=0.0).keys
    done, continued = (json.loads((d / "metrics.json").read_text()) for d in (first, copy))
    assert {k: continued.get(k) for k in keys} == pytest.approx({k: done[k] for k in keys})
