"""Each training run draws its learning curves into its folder, and keeps them in checkpoints."""

from __future__ import annotations

from pathlib import Path

import torch


def test_train_writes_learning_curves_and_checkpoints_their_history(
    tmp_path: Path, run_subprocess
) -> None:
    run_dir = tmp_path / "run"
    proc = run_subprocess("train", "debug=limit", "logger=none", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (run_dir / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in checkpoint["callbacks"].items() if k.startswith("LearningCurves")]
    history = state["history"]
    assert [h["epoch"] for h in history] == [1.0, 2.0]  # debug=limit: two epochs
    assert all({"val/loss", "val/acc"} <= set(h) for h in history)
    # The training values of an epoch arrive after its checkpoint: all but the last.
    assert {"train/loss", "train/acc"} <= set(history[0])
