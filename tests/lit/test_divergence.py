"""A run whose training loss turns NaN or inf fails with one line and a failed run.json."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.lit.divergence import FailOnNonFiniteLoss, TrainingDiverged
from tests.conftest import only_run_dir, quick


def test_nan_loss_fails_the_run_with_one_line(tmp_path: Path, run_subprocess) -> None:
    # SGD at lr=1e8 sends LeNet-5's loss to NaN within the first few batches.
    proc = run_subprocess(
        "train", *quick("optimizer=sgd", "optimizer.lr=1e8", "trainer.max_epochs=1", "logger=none")
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert re.match(
        r"cnnlab train: error: training loss became nan or inf at epoch 0, batches? \d", last
    )
    assert "with optimizer.lr=100000000.0" in last
    run_dir = only_run_dir(tmp_path / "outputs")
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "failed"
    assert run["error"].startswith("TrainingDiverged: training loss became ")
    assert not (run_dir / "metrics.json").exists()


def test_check_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="check_every_n_steps must be >= 1, got 0"):
        FailOnNonFiniteLoss(check_every_n_steps=0)


class _DivergesAtStep(pl.LightningModule):
    """A one-weight model whose loss is NaN from training step ``bad`` on."""

    def __init__(self, bad: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.bad = bad

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss = (self.weight * batch[0]).sum()
        return loss * float("nan") if batch_idx >= self.bad else loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.parametrize(
    ("every", "message"),
    [(1, "epoch 0, batch 3"), (5, "epoch 0, batches 0-4"), (50, "batches 0-9")],
)
def test_the_flag_is_read_every_n_steps_and_at_the_epochs_last_batch(
    every: int, message: str
) -> None:
    data = DataLoader(TensorDataset(torch.ones(10, 1)), batch_size=1)  # 10 batches an epoch
    trainer = pl.Trainer(
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[FailOnNonFiniteLoss(check_every_n_steps=every)],
    )
    with pytest.raises(TrainingDiverged, match=message):
        trainer.fit(_DivergesAtStep(bad=3), train_dataloaders=data)
