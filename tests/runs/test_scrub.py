"""Secret masking of structures and text."""

from __future__ import annotations

import pytest

from cnnlab.runs.scrub import (
    MASK,
    env_secrets,
    mask_checkpoint_secrets,
    scrub_secrets,
    scrub_text,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("logger.wandb.api_key=abc123 seed=1", "logger.wandb.api_key=*** seed=1"),
        ("WANDB_API_KEY=xyz python train.py", "WANDB_API_KEY=*** python train.py"),
        ('+  api_key: "abc"', '+  api_key: "***"'),
        ('{"password": "hunter2", "x": 1}', '{"password": "***", "x": 1}'),
        ("--hf-token=abc", "--hf-token=***"),
        ("client_secret: ${oc.env:SECRET}", "client_secret: ***"),
        ("Api-Key: abc", "Api-Key: ***"),
        ("model=lenet5 norm=batch", "model=lenet5 norm=batch"),
        ("the secret of training", "the secret of training"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_known_values_are_masked_anywhere_in_text() -> None:
    assert scrub_text("run with k-123456 and k-123456!", ["k-123456"]) == "run with *** and ***!"


def test_structure_keys_that_look_secret_are_masked() -> None:
    data = {
        "logger": {"wandb": {"api_key": "abc", "project": "p"}},
        "Token": ["a", "b"],
        "db": {"PASSWORD": 12345, "host": "h"},
        "empty_secret": None,
        "items": ("x", {"secret_sauce": 1}),
    }
    assert scrub_secrets(data, secrets=[]) == {
        "logger": {"wandb": {"api_key": MASK, "project": "p"}},
        "Token": MASK,
        "db": {"PASSWORD": MASK, "host": "h"},
        "empty_secret": None,
        "items": ["x", {"secret_sauce": MASK}],
    }


def test_secret_values_are_masked_in_nested_strings_and_keys() -> None:
    data = {"notes": ["key is s3cr3t-value here"], "s3cr3t-value": 1}
    assert scrub_secrets(data, secrets=["s3cr3t-value"]) == {
        "notes": ["key is *** here"],
        MASK: 1,
    }


def test_env_secrets_picks_wandb_key_and_long_secret_looking_values() -> None:
    environ = {
        "WANDB_API_KEY": "abc",  # short, but always masked
        "HF_TOKEN": "hf_0123456789",
        "MY_PASSWORD": "short",  # too short to mask safely everywhere
        "TOKENIZERS_PARALLELISM": "false",
        "HOME": "/home/someone-long-enough",
    }
    assert env_secrets(environ) == ["hf_0123456789", "abc"]


def test_scrub_secrets_reads_the_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "wandb-key-from-env")
    assert scrub_secrets({"cmd": "export X=wandb-key-from-env"}) == {"cmd": "export X=***"}


def test_checkpoint_masking_follows_every_change_between_saves(monkeypatch) -> None:
    """Saves re-use the last masked hyperparameters only while they and the env are unchanged."""
    hparams = {"data": {"mirror": "https://me:pw1@host/x", "batch_size": 64}}

    def save() -> dict:
        checkpoint = {"hyper_parameters": hparams, "datamodule_hyper_parameters": {"token": "t"}}
        mask_checkpoint_secrets(checkpoint)
        return checkpoint

    first = save()
    assert first["hyper_parameters"]["data"]["mirror"] == f"https://me:{MASK}@host/x"
    assert first["datamodule_hyper_parameters"] == {"token": MASK}
    first["hyper_parameters"]["data"]["batch_size"] = 0  # a later change to a saved copy
    assert save()["hyper_parameters"]["data"]["batch_size"] == 64
    hparams["data"]["mirror"] = "https://me:pw2@host/x"  # the module's own dict changes
    hparams["data"]["note"] = "key k-1234567890"
    assert save()["hyper_parameters"]["data"]["mirror"] == f"https://me:{MASK}@host/x"
    monkeypatch.setenv("MIRROR_TOKEN", "k-1234567890")  # a new secret in the environment
    assert save()["hyper_parameters"]["data"]["note"] == f"key {MASK}"
