"""Every user mistake exits non-zero with one line naming the key or file, and no result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import quick

CASES = {
    "negative learning rate": (["optimizer.lr=-0.1"], "optimizer.lr"),
    "zero learning rate": (["optimizer.lr=0"], "optimizer.lr"),
    "zero batch size": (["data.batch_size=0"], "data.batch_size"),
    "image too small for lenet5": (["data.image_size=8"], "data.image_size"),
    "groups do not divide channels": (["norm=group", "norm.groups=5"], "norm.groups"),
    "val_fraction above 1": (["data.val_fraction=1.5"], "data.val_fraction"),
    "val_fraction zero": (["data.val_fraction=0"], "data.val_fraction"),
    "num_classes not matching labels": (["data.num_classes=5"], "data.num_classes"),
    "gpu trainer without a gpu": (["trainer=gpu"], "trainer.accelerator"),
    "unlogged monitor": (["monitor.metric=val/f1"], "monitor.metric"),
}


def _assert_failed_cleanly(capsys: pytest.CaptureFixture[str], outputs: Path, needle: str) -> None:
    err_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err_lines) == 1, err_lines
    assert needle in err_lines[0]
    for run_dir in outputs.glob("runs/*/*"):
        assert not (run_dir / "metrics.json").exists()
        manifest = json.loads((run_dir / "run.json").read_text())
        assert manifest["status"] == "failed"
        assert needle in manifest["error"]


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_config_value(case: str, run_cli, capsys, tmp_path: Path) -> None:
    overrides, needle = CASES[case]
    with pytest.raises(SystemExit) as exit_info:
        run_cli("train", *quick(*overrides))
    assert exit_info.value.code == 1
    _assert_failed_cleanly(capsys, tmp_path / "outputs", needle)


def test_missing_data_with_download_disabled_names_the_folder(run_cli, capsys, tmp_path) -> None:
    with pytest.raises(SystemExit):
        run_cli("train", *quick("data=mnist", "data.source.download=false"))
    err = capsys.readouterr().err
    assert str(tmp_path / "data") in err
    assert "download" in err


def test_corrupt_data_file_is_named(run_cli, capsys, tmp_path: Path) -> None:
    from cnnlab.data.sources import MnistSource

    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MnistSource.train_files + MnistSource.test_files:
        (raw / name).write_bytes(b"\x1f\x8b this is not gzip data")
    with pytest.raises(SystemExit):
        run_cli("train", *quick("data=mnist", "data.source.download=false"))
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and str(raw) in err[0]


def test_a_file_that_is_not_a_checkpoint(run_cli, capsys, tmp_path: Path) -> None:
    bogus = tmp_path / "model.ckpt"
    bogus.write_bytes(b"not a checkpoint at all")
    with pytest.raises(SystemExit):
        run_cli("eval", f"ckpt_path={bogus}")
    err = capsys.readouterr().err
    assert str(bogus) in err and "checkpoint" in err


def test_resuming_a_checkpoint_of_another_model(run_cli, capsys, tmp_path: Path) -> None:
    run_cli("train", *quick("model=simple_cnn", f"hydra.run.dir={tmp_path / 'cnn'}"))
    ckpt = tmp_path / "cnn" / "checkpoints" / "last.ckpt"
    with pytest.raises(SystemExit):
        run_cli("train", *quick("model=lenet5", f"ckpt_path={ckpt}"))
    err = capsys.readouterr().err
    assert str(ckpt) in err and "simple_cnn" in err and "lenet5" in err


def test_real_process_exit_code_and_no_traceback(run_subprocess) -> None:
    result = run_subprocess("train", *quick("optimizer.lr=-1"))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cnnlab train: error: optimizer.lr: must be a number > 0, got -1" in result.stderr


def test_full_traceback_with_hydra_full_error(run_subprocess) -> None:
    result = run_subprocess("train", *quick("optimizer.lr=-1"), env={"HYDRA_FULL_ERROR": "1"})
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
