"""Run folders written by an older cnnlab, naming targets that were renamed since, still resume."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from cnnlab.lit.checkpoint import RENAMED_TARGETS, allowed_targets, rename_targets

OLD_MONITORS = {
    "pytorch_lightning.callbacks.ModelCheckpoint": "cnnlab.lit.monitors.ModelCheckpoint",
    "pytorch_lightning.callbacks.EarlyStopping": "cnnlab.lit.monitors.EarlyStopping",
}


def test_each_new_name_is_one_cnnlab_configs_use_and_no_old_one_is() -> None:
    callbacks = allowed_targets().targets["callbacks.*"]
    assert set(RENAMED_TARGETS.values()) <= callbacks
    assert not set(RENAMED_TARGETS) & callbacks


def test_rename_targets_rewrites_only_renamed_targets_at_any_depth() -> None:
    config = {
        "callbacks": {
            "best": {"_target_": "cnnlab.lit.monitors.ModelCheckpoint", "monitor": "val/acc"},
            "stop": {"_target_": "cnnlab.lit.monitors.EarlyStopping"},
            "other": [{"_target_": "cnnlab.lit.divergence.FailOnNonFiniteLoss"}],
        },
        "note": "cnnlab.lit.monitors.ModelCheckpoint",  # not a target: kept
    }
    rename_targets(config)
    assert config == {
        "callbacks": {
            "best": {
                "_target_": "pytorch_lightning.callbacks.ModelCheckpoint",
                "monitor": "val/acc",
            },
            "stop": {"_target_": "pytorch_lightning.callbacks.EarlyStopping"},
            "other": [{"_target_": "cnnlab.lit.divergence.FailOnNonFiniteLoss"}],
        },
        "note": "cnnlab.lit.monitors.ModelCheckpoint",
    }


def _callback_keys(run_dir: Path) -> set[str]:
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return set(checkpoint["callbacks"])


def test_a_folder_naming_the_old_monitor_classes_resumes(run_subprocess, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = run_subprocess(
        "train", "debug=limit", "scheduler=none", "test=false", f"hydra.run.dir={run_dir}"
    )
    assert first.returncode == 0, first.stderr[-2000:]
    # The folder as cnnlab wrote it when these callbacks were its own subclasses.
    config = run_dir / ".hydra" / "config.yaml"
    text = config.read_text()
    for new, old in OLD_MONITORS.items():
        assert new in text
        text = text.replace(new, old)
    config.write_text(text)
    keys = _callback_keys(run_dir)
    epochs = json.loads((run_dir / "run.json").read_text())["config"]["trainer"]["max_epochs"]

    resumed = run_subprocess("train", f"resume={run_dir}", f"trainer.max_epochs={epochs + 1}")

    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    record = json.loads((run_dir / "run.json").read_text())
    assert [start["status"] for start in record["starts"]] == ["completed", "completed"]
    # Lightning restored the callbacks' states under the same keys the first start saved.
    assert any(key.startswith("EarlyStopping{") for key in keys)
    assert _callback_keys(run_dir) == keys
