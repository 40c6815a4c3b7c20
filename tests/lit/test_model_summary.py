"""The summary printed when fit starts: Lightning's layers and totals, no FLOPs column."""

from __future__ import annotations

import logging

import pytest
import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from cnnlab.lit.model_summary import model_summary


class Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 3), nn.ReLU())

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self.net(batch[0]).sum()

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _fit_output(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, **kwargs: object
) -> str:
    trainer = pl.Trainer(
        max_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=True,
        callbacks=[model_summary(**kwargs)],  # type: ignore[arg-type]
    )
    data = DataLoader(TensorDataset(torch.zeros(2, 4)), batch_size=2)
    with caplog.at_level(logging.INFO):
        trainer.fit(Tiny(), data)
    captured = capsys.readouterr()
    return captured.out + captured.err + caplog.text


def test_layers_and_totals_without_flops(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    output = _fit_output(capsys, caplog, max_depth=2)
    rows = [line for line in output.splitlines() if line.startswith("│")]
    assert [row.split("│")[2].strip() for row in rows] == ["net", "net.0", "net.1"]
    assert "Linear" in rows[1] and "15" in rows[1] and "train" in rows[1]
    assert "Trainable params: 15" in output and "Modules in eval mode: 0" in output
    assert "FLOPs" not in output and "Total Flops" not in output  # the rich and plain names


def test_disabled_prints_no_summary_and_lightning_adds_none(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    output = _fit_output(capsys, caplog, enabled=False)
    assert "Trainable params" not in output and "Name" not in output
