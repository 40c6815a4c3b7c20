"""Loggers (CSV, TensorBoard, wandb offline), secrets, and DDP on two CPU processes."""

from __future__ import annotations

import json
import struct
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import only_run_dir, quick

SECRET = "wandb-secret-0123456789abcdef0123456789abcdef"


def _text_files(folder: Path) -> list[Path]:
    suffixes = {".json", ".yaml", ".yml", ".log", ".csv", ".txt", ".md"}
    return [p for p in folder.rglob("*") if p.is_file() and p.suffix in suffixes]


def read_wandb_records(path: Path) -> list:
    """Decode an offline run's ``.wandb`` transaction log into protobuf records.

    The file is a LevelDB-style log: a 7-byte file header, then 32 KiB blocks of chunks,
    each with a 7-byte header (crc32, length, type: 1 full, 2 first, 3 middle, 4 last).
    """
    from wandb.proto import wandb_internal_pb2

    raw, block, pos = path.read_bytes(), 32768, 7
    assert raw.startswith(b":W&B")
    payloads, partial = [], b""
    while pos + 7 <= len(raw):
        if block - pos % block < 7:  # block trailer
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        data, pos = raw[pos + 7 : pos + 7 + length], pos + 7 + length
        if kind in (1, 4):
            payloads.append(partial + data)
            partial = b""
        elif kind in (2, 3):
            partial += data
    records = []
    for payload in payloads:
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        records.append(record)
    return records


def _finished_records(path: Path, timeout: float = 20.0) -> list:
    """The records of a finished run; wandb's service may flush the log a moment after finish()."""
    deadline = time.monotonic() + timeout
    while True:
        records = read_wandb_records(path)
        if any(r.HasField("exit") for r in records) or time.monotonic() > deadline:
            assert any(r.HasField("exit") for r in records), "the wandb run was never finished"
            return records
        time.sleep(0.5)


def test_wandb_offline_run_holds_config_and_final_metrics(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_cli("train", *quick("logger=wandb", "tags=[digits,quick]"))
    run_dir = only_run_dir(tmp_path / "outputs")
    wandb_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(wandb_runs) == 1
    records = _finished_records(next(wandb_runs[0].glob("run-*.wandb")))
    config = {
        u.key: json.loads(u.value_json)
        for r in records
        if r.HasField("config")
        for u in r.config.update
    }
    assert config["model"]["name"] == "lenet5" and config["tags"] == ["digits", "quick"]
    summary = {
        u.key: json.loads(u.value_json)
        for r in records
        if r.HasField("summary")
        for u in r.summary.update
        if u.key
    }
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/acc", "test/loss", "val/acc_best", "model/params"):
        assert summary[key] == pytest.approx(metrics[key])
    for path in _text_files(run_dir):
        assert SECRET not in path.read_text(errors="ignore"), path
    assert sys.modules["wandb"].run is None  # finished


def test_wandb_records_the_command_line_only_when_it_holds_no_secret(
    run_subprocess, tmp_path: Path
) -> None:
    # wandb reads sys.argv into the run file itself; a secret there turns its metadata off.
    plain, secret = tmp_path / "plain", tmp_path / "secret"
    for run_dir, extra in ((plain, ()), (secret, (f"+db_password={SECRET}",))):
        result = run_subprocess(
            "train", *quick("logger=wandb", "test=false", f"hydra.run.dir={run_dir}", *extra)
        )
        assert result.returncode == 0, result.stderr[-3000:]
    (plain_file,) = plain.glob("wandb/offline-run-*/run-*.wandb")
    (secret_file,) = secret.glob("wandb/offline-run-*/run-*.wandb")
    assert b"logger=wandb" in plain_file.read_bytes()
    assert b"logger=wandb" not in secret_file.read_bytes()
    assert SECRET.encode() not in secret_file.read_bytes()


def test_a_failed_job_finishes_its_wandb_run(run_cli, tmp_path, monkeypatch) -> None:
    import wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(SystemExit):
        run_cli("train", *quick("logger=wandb", "optimized_metric=val/nope"))
    assert wandb.run is None
    run_cli("train", *quick("logger=wandb", f"hydra.run.dir={tmp_path / 'second'}"))
    assert len(list((tmp_path / "second" / "wandb").glob("offline-run-*"))) == 1


def test_many_loggers_write_csv_tensorboard_and_wandb(run_cli, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    run_cli("train", *quick("logger=many"))
    run_dir = only_run_dir(tmp_path / "outputs")
    assert (run_dir / "metrics.csv").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    assert list((run_dir / "wandb").glob("offline-run-*"))


def test_secrets_in_config_values_are_scrubbed_from_the_manifest(run_cli, tmp_path) -> None:
    run_cli("train", *quick("logger=csv", f"+extra.api_key={SECRET}"))
    run_dir = only_run_dir(tmp_path / "outputs")
    assert SECRET not in (run_dir / "run.json").read_text()
    assert SECRET not in (run_dir / "hparams.yaml").read_text()  # what loggers receive


# Slow: three processes, each importing torch and Lightning (about 14 s).
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_ddp_on_two_cpu_processes_writes_one_run_folder(run_subprocess, tmp_path: Path) -> None:
    result = run_subprocess("train", "trainer=ddp_cpu", "debug=limit", "logger=csv", timeout=280)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = only_run_dir(tmp_path / "outputs")
    assert (run_dir / "train_ddp_process_1.log").is_file()  # the second rank ran, here
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["config"]["trainer"]["devices"] == 2
    assert "test/acc" in json.loads((run_dir / "metrics.json").read_text())
