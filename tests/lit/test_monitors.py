"""cnnlab's ModelCheckpoint and EarlyStopping behave as Lightning's own."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from pytorch_lightning import callbacks

from cnnlab.lit.monitors import EarlyStopping, ModelCheckpoint


@pytest.mark.parametrize(
    ("ours", "theirs", "kwargs"),
    [
        (ModelCheckpoint, callbacks.ModelCheckpoint, {"monitor": "val/acc", "mode": "max"}),
        (ModelCheckpoint, callbacks.ModelCheckpoint, {"monitor": None, "every_n_epochs": 2}),
        (EarlyStopping, callbacks.EarlyStopping, {"monitor": "val/loss", "patience": 3}),
    ],
)
def test_state_keys_are_lightnings(ours: type, theirs: type, kwargs: dict[str, Any]) -> None:
    # Checkpoints store callback states under these keys: a resumed run must find them.
    callback = ours(**kwargs)
    assert callback.state_key == theirs(**kwargs).state_key
    assert callback.state_key == callback.state_key  # the cached value


def test_monitor_candidates_equal_lightnings_and_keep_their_values() -> None:
    trainer = SimpleNamespace(
        callback_metrics={"val/acc": torch.tensor(0.5), "epoch": torch.tensor(3.0)},
        current_epoch=3,
        global_step=7,
    )
    ours = ModelCheckpoint(monitor="val/acc")._monitor_candidates(trainer)  # type: ignore[arg-type]
    theirs = callbacks.ModelCheckpoint(monitor="val/acc")._monitor_candidates(trainer)  # type: ignore[arg-type]
    assert ours.keys() == theirs.keys() == {"val/acc", "epoch", "step"}
    for name in ours:
        assert ours[name].dtype == theirs[name].dtype
        assert torch.equal(ours[name], theirs[name])
    trainer.callback_metrics["val/acc"].add_(1)  # a metric changed in place later
    assert float(ours["val/acc"]) == 0.5
