"""Secret masking of structures and text."""

from __future__ import annotations

import sys

import pytest

from cnnlab.secrets.mask import (
    MASK,
    env_secrets,
    mask_checkpoint_secrets,
    remember_secrets,
    scrub_secrets,
    scrub_text,
    secret_values,
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


def test_checkpoint_masking_masks_a_copy_at_each_save(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module keeps its real values; each save masks what the checkpoint gets then."""
    hparams = {"data": {"mirror": "https://me:pw1@host/x", "batch_size": 64}}

    def save() -> dict:
        checkpoint = {"hyper_parameters": hparams, "datamodule_hyper_parameters": {"token": "t"}}
        mask_checkpoint_secrets(checkpoint)
        return checkpoint

    first = save()
    assert first["hyper_parameters"]["data"]["mirror"] == f"https://me:{MASK}@host/x"
    assert first["datamodule_hyper_parameters"] == {"token": MASK}
    assert hparams["data"]["mirror"] == "https://me:pw1@host/x"  # the module's own dict
    first["hyper_parameters"]["data"]["batch_size"] = 0  # a later change to a saved copy
    assert save()["hyper_parameters"]["data"]["batch_size"] == 64
    hparams["data"]["note"] = "key k-1234567890"
    monkeypatch.setenv("MIRROR_TOKEN", "k-1234567890")  # a new secret in the environment
    assert save()["hyper_parameters"]["data"]["note"] == f"key {MASK}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The password runs to the last `@`: `@ss` is part of it, not of the host.
        ("postgresql://u:p@ss@h/db", f"postgresql://u:{MASK}@h/db"),
        # `/` and `:` are legal in an SQLAlchemy URL's password.
        ("postgresql+psycopg://u:a/b:c@h:5432/db", f"postgresql+psycopg://u:{MASK}@h:5432/db"),
        ("see 'mysql://me:x/y@h/d' and a@b", f"see 'mysql://me:{MASK}@h/d' and a@b"),
    ],
)
def test_a_url_password_ends_at_the_last_at_sign(text: str, expected: str) -> None:
    assert scrub_text(text, ()) == expected


def test_secret_values_are_each_element_part_and_url_password() -> None:
    config = {
        "auth_token": ["tokA", "tokB"],
        "db": {"password": "pwA pwB", "url": "postgresql://u:p@ss@h/db", "port": 5432},
        "mirror_secret": 123456,
        "seed": 1234,
        "api_key": True,  # a flag, not a value to look for
        "passwd": "no",
    }
    values = secret_values(config)
    assert {"tokA", "tokB", "tokA,tokB", "tokA, tokB", "pwA pwB", "pwA", "pwB"} <= values
    assert {"p@ss", "123456"} <= values
    # Hydra's spelling in a job's overrides.yaml, too.
    assert "pwA\\ pwB" in values
    assert values.isdisjoint({"1234", "5432", "True", "no", "u", "h"})


def test_secret_values_of_overrides_keep_commas_spaces_and_encoded_characters() -> None:
    overrides = [
        "+auth_token=tokA,tokB",
        "++password=pwA pwB",
        "hydra.sweeper.storage=postgresql://u:a/b%40c@h/db",
        "optimizer.lr=0.125",
    ]
    values = secret_values(overrides)
    assert {"tokA,tokB", "tokA", "tokB", "pwA pwB", "pwA", "pwB", "a/b%40c", "a/b@c"} <= values
    assert not any("0.125" in value or "postgresql" in value for value in values)


def test_secret_values_of_hydra_joined_overrides_stop_at_the_next_override() -> None:
    """`hydra.job.override_dirname` joins a job's overrides with commas."""
    dirname = "+auth_token=tokA,+db_url=pg://u:x/y@z@h/db,+password=pwA pwB,debug=limit"
    values = secret_values([dirname])
    assert {"tokA", "x/y@z", "pwA pwB", "pwB"} <= values
    assert not any("limit" in value or "db_url" in value for value in values)


def test_command_line_secrets_are_masked_in_any_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["cnnlab", "+auth_token=tokA,tokB", "+password=pwA pwB"])
    text = "overrides +auth_token=tokA,tokB +password=pwA pwB; job 1 got tokB, job 2 'pwB'"
    assert scrub_text(text) == (
        f"overrides +auth_token={MASK} +password={MASK}; job 1 got {MASK}, job 2 '{MASK}'"
    )
    assert scrub_secrets({"note": "[tokA, tokB]"}) == {"note": f"[{MASK}, {MASK}]"}


def test_remembered_secrets_are_masked_by_every_later_scrub() -> None:
    remember_secrets({"mirror": {"credentials": ["zq-first-9", "zq-second-9"]}})
    data = {"log": "fetched with zq-second-9", "cmd": ["x", "zq-first-9,zq-second-9"]}
    assert scrub_secrets(data) == {"log": f"fetched with {MASK}", "cmd": ["x", MASK]}
    assert scrub_text("zq-first-9 and zq-second-9") == f"{MASK} and {MASK}"
