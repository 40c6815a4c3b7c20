"""The wandb run's settings: no system metadata only when the command line holds a secret."""

from __future__ import annotations

import pytest

from cnnlab.tracking.wandb import run_settings


def test_a_command_line_without_secrets_keeps_wandbs_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.argv", ["cnnlab", "train", "logger=wandb", "optimizer.lr=0.1"])
    assert run_settings() == {}


@pytest.mark.parametrize(
    "arg", ["+db_password=hunter2", "hydra.sweeper.storage=postgresql://u:pw@host/db"]
)
def test_a_secret_on_the_command_line_turns_the_metadata_off(
    monkeypatch: pytest.MonkeyPatch, arg: str
) -> None:
    monkeypatch.setattr("sys.argv", ["cnnlab", "train", "logger=wandb", arg])
    assert run_settings() == {"x_disable_meta": True}
