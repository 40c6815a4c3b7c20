"""The builders' errors name the argument the constructor's message names, else the group."""

from __future__ import annotations

from typing import Any

import pytest

from cnnlab.errors import ConfigError
from cnnlab.lit.build import build_callbacks, build_trainer

TRAINER = "pytorch_lightning.Trainer"


@pytest.mark.parametrize(
    ("arguments", "key"),
    [
        ({"max_epochs": -5}, "trainer.max_epochs"),
        ({"limit_train_batches": 1.5}, "trainer.limit_train_batches"),
        ({"precision": 7}, "trainer.precision"),
        # "`Trainer(devices=0)` value is not a valid input using cpu accelerator": the first
        # argument the message names.
        ({"accelerator": "cpu", "devices": 0}, "trainer.devices"),
        # A message that names no argument names the group.
        ({"limit_test_batches": "x"}, "trainer"),
    ],
)
def test_a_trainer_argument_error_names_the_argument(arguments: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        build_trainer({"_target_": TRAINER, **arguments}, [], [])
    assert err.value.key == key


def test_a_callback_argument_error_names_the_argument() -> None:
    node = {"_target_": "pytorch_lightning.callbacks.EarlyStopping", "monitor": "m", "mode": "up"}
    with pytest.raises(ConfigError) as err:
        build_callbacks({"early_stopping": node}, with_logger=False)
    assert err.value.key == "callbacks.early_stopping.mode"
