"""build_manifest and write_json_atomic with real configs, repositories and files."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

import cnnlab
from cnnlab.files.atomic import write_json_atomic
from cnnlab.records.manifest import PACKAGES, RunStatus, build_manifest

START = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
SECRET = "wk-0123456789abcdef-secret"


def _manifest(cfg: object = None, **kwargs: object) -> dict:
    args: dict = {
        "overrides": ["model=lenet5", "optimizer.lr=0.05"],
        "command": ["cnnlab", "train", "model=lenet5"],
        "seed": 7,
        "start": START,
        "end": START + timedelta(seconds=90),
        "status": "completed",
        "timings": {"fit_s": 88.5, "samples_per_s": 1200.0},
        "error": None,
    }
    args.update(kwargs)
    config = (
        OmegaConf.create({"seed": 7, "lr": 0.05, "opt": {"lr": "${lr}"}}) if cfg is None else cfg
    )
    return build_manifest(config, **args)


def test_manifest_records_the_run(repo: Path) -> None:
    m = _manifest(source_dir=repo)
    assert m["cnnlab_version"] == cnnlab.__version__
    assert m["status"] == "completed"
    assert m["seed"] == 7
    assert m["start"] == "2025-01-02T03:04:05+00:00"
    assert m["end"] == "2025-01-02T03:05:35+00:00"
    assert m["duration_s"] == 90.0
    assert m["timings"] == {"fit_s": 88.5, "samples_per_s": 1200.0}
    assert m["error"] is None
    assert m["command"] == ["cnnlab", "train", "model=lenet5"]
    assert m["overrides"] == ["model=lenet5", "optimizer.lr=0.05"]
    # Resolved, and a plain dict rather than a DictConfig.
    assert m["config"] == {"seed": 7, "lr": 0.05, "opt": {"lr": 0.05}}
    assert type(m["config"]) is dict
    assert m["config_resolved"] is True
    assert m["git"]["dirty"] is False
    assert len(m["git"]["commit"]) >= 40


def test_manifest_records_versions_platform_and_hardware() -> None:
    m = _manifest()
    assert set(m["packages"]) == set(PACKAGES)
    assert m["packages"]["torch"] == torch.__version__
    assert all(m["packages"][name] for name in ("omegaconf", "hydra-core", "kornia", "numpy"))
    assert m["platform"]["python"].count(".") == 2
    assert m["platform"]["os"] and m["platform"]["machine"]
    hw = m["hardware"]
    assert hw["cpu_count"] == os.cpu_count()
    assert 1 <= hw["cpus_usable"] <= hw["cpu_count"]
    assert hw["memory_bytes"] > 2**20
    assert hw["cuda_devices"] == [
        torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
    ]


def test_running_manifest_has_no_end() -> None:
    m = _manifest(status=RunStatus.RUNNING, end=None)
    assert m["status"] == "running"
    assert m["end"] is None and m["duration_s"] is None


def test_failed_manifest_keeps_the_error() -> None:
    m = _manifest(status="failed", error="ConfigError: optimizer.lr: must be > 0")
    assert m["status"] == "failed"
    assert m["error"] == "ConfigError: optimizer.lr: must be > 0"


def test_naive_times_are_written_with_their_offset() -> None:
    naive = datetime(2025, 6, 1, 12, 0, 0)
    m = _manifest(start=naive, end=naive + timedelta(seconds=1))
    parsed = datetime.fromisoformat(m["start"])
    assert parsed.tzinfo is not None
    assert parsed == naive.astimezone()


def test_unknown_status_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"one of \['running', 'completed'"):
        _manifest(status="done")


def test_unresolvable_config_is_kept_unresolved() -> None:
    cfg = OmegaConf.create({"out": "${hydra:runtime.output_dir}", "lr": 0.1})
    m = _manifest(cfg)
    assert m["config_resolved"] is False
    assert m["config"] == {"out": "${hydra:runtime.output_dir}", "lr": 0.1}


def test_plain_mapping_config_is_accepted() -> None:
    assert _manifest({"a": {"b": 1}})["config"] == {"a": {"b": 1}}


def test_manifest_without_repository_has_null_git(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
        assert _manifest(source_dir=tmp_path)["git"] is None


def test_wandb_key_never_reaches_run_json(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", SECRET)
    # In a tracked file's uncommitted change: the manifest stores the diff.
    (repo / "train.py").write_text(f'lr = 0.1\nwandb.login(key="{SECRET}")\n')
    cfg = OmegaConf.create(
        {
            "logger": {"wandb": {"api_key": SECRET, "project": "cnnlab", "password": "pw"}},
            "notes": f"copied {SECRET} by mistake",
            "from_env": "${oc.env:WANDB_API_KEY}",
            "auth_token": "tok-1",
        }
    )
    m = _manifest(
        cfg,
        source_dir=repo,
        overrides=[f"logger.wandb.api_key={SECRET}", "model=lenet5"],
        command=["env", f"WANDB_API_KEY={SECRET}", "cnnlab", "train"],
        error=f"wandb: invalid key {SECRET}",
    )
    path = write_json_atomic(tmp_path / "run" / "run.json", m)
    text = path.read_text()
    assert SECRET not in text
    assert SECRET[3:-3] not in text
    written = json.loads(text)
    assert written["config"]["logger"]["wandb"] == {
        "api_key": "***",
        "project": "cnnlab",
        "password": "***",
    }
    assert written["config"]["notes"] == "copied *** by mistake"
    assert written["config"]["from_env"] == "***"
    assert written["config"]["auth_token"] == "***"
    assert written["overrides"] == ["logger.wandb.api_key=***", "model=lenet5"]
    assert written["command"] == ["env", "WANDB_API_KEY=***", "cnnlab", "train"]
    assert "+wandb.login(key=" in written["git"]["diff"]


def test_write_json_atomic_round_trips_and_leaves_no_temp_file(tmp_path: Path) -> None:
    class Color(Enum):
        RED = "red"

    data = {"path": tmp_path, "when": START, "color": Color.RED, "n": torch.tensor(3.5)}
    target = write_json_atomic(tmp_path / "a" / "b.json", data)
    assert target == tmp_path / "a" / "b.json"
    assert json.loads(target.read_text()) == {
        "path": str(tmp_path),
        "when": START.isoformat(),
        "color": "red",
        "n": 3.5,
    }
    assert os.listdir(tmp_path / "a") == ["b.json"]


def test_failed_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = write_json_atomic(tmp_path / "run.json", {"status": "running"})
    with pytest.raises(TypeError, match="not JSON serialisable"):
        write_json_atomic(target, {"status": "completed", "bad": object()})
    assert json.loads(target.read_text()) == {"status": "running"}
    assert os.listdir(tmp_path) == ["run.json"]


def test_written_file_mode_follows_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        target = write_json_atomic(tmp_path / "run.json", {})
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o644


def test_own_code_facts_are_gathered_once_per_process() -> None:
    """Every record of a process (a run's start and end, a sweep's trials) shares them."""
    from cnnlab.records import manifest

    manifest._facts_once.cache_clear()
    first = _manifest()
    first["packages"]["torch"] = "edited"  # a record's copy, not the process's facts
    second = _manifest()
    assert manifest._facts_once.cache_info().misses == 1
    assert second["packages"]["torch"] == _manifest()["packages"]["torch"] != "edited"
    assert second["git"] == _manifest()["git"]
