"""Secrets stay out of every file cnnlab, its loggers and its sweeper write.

The end-to-end tests run the real ``cnnlab`` command with a secret on the command line,
then read every byte of every file it left (run folder, sweep folder, the Optuna study's
SQLite file, the offline wandb files) and look for the secret.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cnnlab.config import config_dir
from cnnlab.errors import ConfigError
from cnnlab.secrets.callback import ScrubSecrets, mask_record
from cnnlab.secrets.mask import (
    MASK,
    masked_keys,
    remember_urls,
    restore_url,
    scrub_secrets,
    scrub_text,
)
from tests.conftest import only_run_dir, quick
from tests.sweep.conftest import postgres_server  # noqa: F401 - a fixture

SECRET = "hunter2-0b5cure"


def _files_containing(root: Path, secret: str) -> list[Path]:
    """Every file under ``root`` whose bytes contain ``secret``."""
    needle = secret.encode()
    return [p for p in sorted(root.rglob("*")) if p.is_file() and needle in p.read_bytes()]


# ---- the scrubber's rules ----


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "postgresql+psycopg2://optuna:s3cr%40t@db.example:5432/studies",
            "postgresql+psycopg2://optuna:***@db.example:5432/studies",
        ),
        ("storage=mysql://u:pw@h/db other", "storage=mysql://u:***@h/db other"),
        ("'redis://:pw@h:6379/0'", "'redis://:***@h:6379/0'"),
        ("https://example.com/a:b@c", "https://example.com/a:b@c"),  # no user:password part
        ("sqlite:///outputs/optuna.db", "sqlite:///outputs/optuna.db"),
        ("+db_passwd=abc,debug=limit", "+db_passwd=***,debug=limit"),
        ("aws_credentials: xyz", "aws_credentials: ***"),
    ],
)
def test_url_passwords_and_more_secret_words_are_masked(text: str, expected: str) -> None:
    assert scrub_text(text, ()) == expected
    assert scrub_text(expected, ()) == expected  # masking twice changes nothing


def test_structures_mask_secret_keys_and_url_passwords() -> None:
    data = {"sweep": {"storage": "postgresql://u:pw@h/db"}, "Credential": "c", "api_key": None}
    assert scrub_secrets(data, secrets=[]) == {
        "sweep": {"storage": f"postgresql://u:{MASK}@h/db"},
        "Credential": MASK,
        "api_key": None,
    }
    assert masked_keys(scrub_secrets(data, secrets=[])) == ["sweep.storage", "Credential"]


def test_a_masked_storage_url_is_restored_only_where_it_is_known() -> None:
    masked = "postgresql://u:***@known.example/db"
    assert restore_url(masked) == "postgresql://u@known.example/db"  # the driver asks PGPASSWORD
    remember_urls({"hydra": {"sweeper": {"storage": "postgresql://u:pw@known.example/db"}}})
    assert restore_url(masked) == "postgresql://u:pw@known.example/db"


def test_a_secret_cannot_be_a_search_dimension() -> None:
    from cnnlab.sweep.space import parse_search_space

    with pytest.raises(ConfigError, match=r"\+db_password|db_password"):
        parse_search_space(None, ["+db_password=choice(a,b)"])


def test_log_records_are_masked_in_their_final_message() -> None:
    record = logging.LogRecord(
        "x", logging.INFO, "f", 1, "study in %s", ("mysql://u:pw@h/d",), None
    )
    mask_record(record)
    assert record.getMessage() == "study in mysql://u:***@h/d"


def test_the_hydra_callback_masks_files_not_the_config(tmp_path: Path) -> None:
    """Hydra's own files are masked; the config the task gets keeps the real values."""
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=[f"+db_password={SECRET}", f"+sweep_storage=postgresql://u:{SECRET}@h/db"],
            return_hydra_config=True,
        )
    folder = tmp_path / ".hydra"
    folder.mkdir()
    task_cfg = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
    (folder / "config.yaml").write_text(OmegaConf.to_yaml(task_cfg))
    (folder / "hydra.yaml").write_text(OmegaConf.to_yaml({"hydra": cfg.hydra}))
    (folder / "overrides.yaml").write_text(OmegaConf.to_yaml(cfg.hydra.overrides.task))
    OmegaConf.update(cfg, "hydra.runtime.output_dir", str(tmp_path), force_add=True)

    ScrubSecrets().on_job_start(config=cfg)

    assert _files_containing(tmp_path, SECRET) == []
    assert cfg.db_password == SECRET  # untouched in memory
    masked = OmegaConf.load(folder / "config.yaml")
    assert masked.db_password == MASK and masked.sweep_storage == f"postgresql://u:{MASK}@h/db"
    assert masked.model == task_cfg.model  # everything else as Hydra wrote it


# ---- the real command ----

# Secret values whose shape defeats a mask that stops at a comma, a space or a `/`.
TOKENS = ("tokA9f3e", "tokB7c1d")
PASSWORDS = ("pwA8k2q", "pwB4m7z")
# `/`, `@` and `:` in a URL's password; the URL is `scheme://u:PASSWORD@h...`.
URL_PASSWORD = "Pq7/zW@k3:Rv9"
# Either side of the `@` left behind would leak part of it. (Computed: this file's text is in
# the run's git diff while it is uncommitted.)
URL_PARTS = (URL_PASSWORD, *URL_PASSWORD.split("@"))
SHAPED = (f"+password={PASSWORDS[0]} {PASSWORDS[1]}", f"+db_url=pg://u:{URL_PASSWORD}@h:5432/db")


def _traces(root: Path, output: str, secrets: tuple[str, ...]) -> dict[str, list[str]]:
    """For each secret found: the files under ``root`` holding it, and ``<console>``."""
    found = {}
    for secret in secrets:
        where = [p.relative_to(root).as_posix() for p in _files_containing(root, secret)]
        where += ["<console>"] if secret in output else []
        if where:
            found[secret] = where
    return found


def test_values_with_commas_spaces_and_slashes_leave_no_trace(run_subprocess, tmp_path) -> None:
    """A list, a value with a space and a URL password with `/@:` are masked whole."""
    tokens = f"+auth_token=[{TOKENS[0]},{TOKENS[1]}]"
    result = run_subprocess("train", *quick("logger=many", tokens, *SHAPED))
    assert result.returncode == 0, result.stderr[-2000:]
    output = result.stdout + result.stderr
    assert _traces(tmp_path, output, (*TOKENS, *PASSWORDS, *URL_PARTS)) == {}
    run_dir = only_run_dir(tmp_path / "outputs")
    config = json.loads((run_dir / "run.json").read_text())["config"]
    # Only the secrets: the URL keeps everything but its password.
    assert (config["auth_token"], config["password"]) == (MASK, MASK)
    assert config["db_url"] == f"pg://u:{MASK}@h:5432/db"


def test_a_multirun_over_secret_values_leaves_none(run_subprocess, tmp_path) -> None:
    """`+auth_token=tokA,tokB` in a multirun: each job gets one, no file gets either."""
    tokens = f"+auth_token={TOKENS[0]},{TOKENS[1]}"
    result = run_subprocess("train", "-m", *quick("logger=csv", tokens, *SHAPED))
    assert result.returncode == 0, result.stderr[-2000:]
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    assert (sweep_dir / "multirun.yaml").is_file() and (sweep_dir / "1" / "run.json").is_file()
    output = result.stdout + result.stderr
    assert _traces(tmp_path, output, (*TOKENS, *PASSWORDS, *URL_PARTS)) == {}


@pytest.mark.slow  # a real PostgreSQL server (pgserver) and two trials
def test_a_sweep_storage_password_with_slash_colon_and_at_stays_home(
    run_subprocess, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The storage URL of a sweep, with a password as SQLAlchemy takes it: `/` and `:` as
    they are, `@` percent-encoded. The server trusts local connections: any password works.
    """
    import optuna

    server = request.getfixturevalue("postgres_server")
    database = f"t{uuid.uuid4().hex[:12]}"
    server.psql(f"CREATE DATABASE {database};")
    password = URL_PASSWORD.replace("@", "%40")
    url = server.get_uri(database).replace(
        "postgresql://postgres:", f"postgresql+psycopg://postgres:{password}", 1
    )
    result = run_subprocess(
        "train",
        "-m",
        "hparams_search=random",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.study_name=pw",
        f"hydra.sweeper.storage='{url}'",
        *quick("logger=csv"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert _traces(tmp_path, output, (password, *URL_PARTS)) == {}
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    recorded = json.loads((sweep_dir / "sweep.json").read_text())["storage"]
    assert recorded == url.replace(password, MASK)
    # The study itself: its user and system attributes, each trial's too.
    storage = optuna.storages.RDBStorage(url)
    study_id = storage.get_study_id_from_name("pw")
    study = optuna.load_study(study_name="pw", storage=storage)
    attributes = json.dumps(
        [study.user_attrs, storage.get_study_system_attrs(study_id)]
        + [[t.user_attrs, t.system_attrs] for t in study.trials],
        default=str,
    )
    assert len(study.trials) == 2 and "overrides" in attributes
    assert not any(secret in attributes for secret in (password, *URL_PARTS))


def test_a_command_line_error_does_not_print_the_secret(run_subprocess) -> None:
    """Hydra refuses `+auth_token=a,b` outside a multirun; its message quotes the override."""
    result = run_subprocess("train", f"+auth_token={TOKENS[0]},{TOKENS[1]}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert f"+auth_token={MASK}" in last, last
    assert not any(token in result.stdout + result.stderr for token in TOKENS)


# A logger's own files in the run folder, besides Hydra's, hparams.yaml of csv, ...
LOGGER_FILES = {
    "csv": ("hparams.yaml",),
    "tensorboard": ("tensorboard/hparams.yaml",),
    "wandb": (".wandb",),
    "mlflow": (),  # its store is outputs/mlflow.db and outputs/mlartifacts, outside the run
    "many": ("hparams.yaml", "tensorboard/hparams.yaml", ".wandb"),
}
NESTED_SECRET = "s3cr3t-in-the-loss-9q"


@pytest.mark.parametrize("logger", list(LOGGER_FILES))
def test_train_with_each_logger_leaves_the_secrets_nowhere(
    run_subprocess, tmp_path: Path, logger: str
) -> None:
    """A secret at the top level and one in a group that reaches the module's hyperparameters.

    Lightning used to log the module's hyperparameters to every logger by itself, unmasked:
    MLflow then refused `loss/api_token` changing from `***` to the secret, and the run
    failed with the secret on the console and in run.json.
    """
    secrets = (f"+db_password={SECRET}", f"+loss.api_token={NESTED_SECRET}")
    result = run_subprocess("train", *quick(f"logger={logger}", *secrets))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Traceback" not in output
    run_dir = only_run_dir(tmp_path / "outputs")
    written = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    expected = (".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml")
    for name in (*expected, "checkpoints/last.ckpt", *LOGGER_FILES[logger]):
        assert any(path.endswith(name) for path in written), (name, written)
    # Every byte under tmp_path: the run folder, the MLflow store, the wandb files.
    assert _traces(tmp_path, output, (SECRET, NESTED_SECRET)) == {}
    assert f"+db_password={MASK}" in (run_dir / ".hydra" / "overrides.yaml").read_text()
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["hyper_parameters"]["loss"]["api_token"] == MASK
    if logger == "mlflow":
        assert (tmp_path / "outputs" / "mlflow.db").is_file()
        params = _mlflow_params(tmp_path / "outputs")
        assert (params["db_password"], params["loss/api_token"]) == (MASK, MASK)
    # Only the secrets: every other value of Hydra's files is as it was.
    hydra_files = {
        name: OmegaConf.load(run_dir / ".hydra" / name) for name in ("config.yaml", "hydra.yaml")
    }
    assert set(masked_keys(OmegaConf.to_container(hydra_files["config.yaml"]))) == {
        "db_password",
        "loss.api_token",
    }
    callbacks = hydra_files["hydra.yaml"].hydra.callbacks
    assert callbacks.mask_private_values._target_ == "cnnlab.secrets.callback.ScrubSecrets"


def _mlflow_params(outputs: Path) -> dict[str, str]:
    """The params of the only run in the MLflow store under ``outputs``."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cnnlab")
    assert experiment is not None
    (run,) = client.search_runs([experiment.experiment_id])
    return dict(run.data.params)


def test_reproduce_asks_for_masked_values_again(run_cli, capsys, tmp_path: Path) -> None:
    run_cli("train", *quick("logger=none", f"+db_password={SECRET}"))
    run_dir = only_run_dir(tmp_path / "outputs")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_cli("reproduce", str(run_dir))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "db_password was masked" in last and "db_password=..." in last
    assert str(run_dir / ".hydra" / "config.yaml") in last and "Traceback" not in err


@pytest.mark.slow
def test_reproduce_with_the_secret_supplied_again(run_subprocess, tmp_path: Path) -> None:
    run_subprocess("train", *quick("logger=none", f"+db_password={SECRET}"))
    run_dir = only_run_dir(tmp_path / "outputs")
    again = tmp_path / "again"
    result = run_subprocess("reproduce", str(run_dir), "--out", str(again), f"db_password={SECRET}")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "metrics match" in result.stdout
    assert _files_containing(again, SECRET) == []


@pytest.mark.slow
def test_sweep_leaves_the_secret_nowhere(run_subprocess, tmp_path: Path) -> None:
    result = run_subprocess(
        "train",
        "-m",
        "hparams_search=random",
        "hydra.sweeper.n_trials=2",
        *quick("logger=wandb", f"+db_password={SECRET}"),
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = tmp_path / "outputs"
    (sweep_dir,) = (outputs / "multiruns" / "train").iterdir()
    for name in ("sweep.json", "best.yaml", "0/.hydra/config.yaml", "1/.hydra/overrides.yaml"):
        assert (sweep_dir / name).is_file(), name
    assert (outputs / "optuna.db").is_file()
    assert list(sweep_dir.glob("*/wandb/*/run-*.wandb"))
    assert _files_containing(tmp_path, SECRET) == []
    assert SECRET not in result.stdout + result.stderr
    assert f"db_password: '{MASK}'" in (sweep_dir / "best.yaml").read_text()
