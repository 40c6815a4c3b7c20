"""Every user mistake exits non-zero with one line naming the key or file, and no result."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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
    "device-resident set with loader workers": (
        ["data.device_resident=true", "data.num_workers=1"],
        "data.device_resident",
    ),
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


# ------------------------------------------------------------------------------------------
# Every case of issue 10, section 6 (tracebacks, values accepted wrongly, errors caught only
# after training, unclear errors), by table: non-zero exit, no traceback, the last line names
# the key or the file, and no run folder is left behind. Placeholders: {file} an existing
# text file, {folder} a folder, {ckpt} a file passed as checkpoint (validation does not read
# it), {image} an image file, {run} a finished-looking run folder with a corrupt config.yaml.
# ------------------------------------------------------------------------------------------

LISTED: dict[str, tuple[list[str], str]] = {
    "max_epochs abc": (["train", "trainer.max_epochs=abc"], "trainer.max_epochs"),
    "max_epochs 1.5": (["train", "trainer.max_epochs=1.5"], "trainer.max_epochs"),
    "max_epochs nan": (["train", "trainer.max_epochs=nan"], "trainer.max_epochs"),
    "max_epochs 0": (["train", "trainer.max_epochs=0"], "trainer.max_epochs"),
    "progress bar refresh true": (
        ["train", "callbacks.progress_bar.refresh_rate=true"],
        "callbacks.progress_bar.refresh_rate",
    ),
    "NaN guard every 0 steps": (
        ["train", "callbacks.finite_loss.check_every_n_steps=0"],
        "callbacks.finite_loss.check_every_n_steps",
    ),
    "lr nan": (["train", "optimizer.lr=nan"], "optimizer.lr"),
    "lr abc": (["train", "optimizer.lr=abc"], "optimizer.lr"),
    "lr empty": (["train", "optimizer.lr=''"], "optimizer.lr"),
    "lr inf": (["train", "optimizer.lr=inf"], "optimizer.lr"),
    # Refused by torch's Adam when validation builds it: the error names the group.
    "betas out of range": (["train", "optimizer.betas=[2,3]"], "optimizer: cannot be built"),
    "nesterov without momentum": (
        ["train", "optimizer=sgd", "optimizer.nesterov=true", "optimizer.momentum=0"],
        "Nesterov momentum requires a momentum",
    ),
    "sgd momentum -1": (["train", "optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum"),
    "nesterov maybe": (
        ["train", "optimizer=sgd", "optimizer.nesterov=maybe"],
        "optimizer.nesterov",
    ),
    "seed abc": (["train", "seed=abc"], "seed"),
    "seed 1e30": (["train", "seed=1e30"], "seed"),
    "seed -1": (["train", "seed=-1"], "seed"),
    "onecycle pct_start 2": (
        ["train", "scheduler=onecycle", "scheduler.pct_start=2"],
        "scheduler.pct_start",
    ),
    "plateau factor 2": (["train", "scheduler=plateau", "scheduler.factor=2"], "scheduler.factor"),
    "step step_size 0": (
        ["train", "scheduler=step", "scheduler.step_size=0"],
        "scheduler.step_size",
    ),
    "step gamma -1": (["train", "scheduler=step", "scheduler.gamma=-1"], "scheduler.gamma"),
    "accumulate 0": (["train", "trainer.accumulate_grad_batches=0"], "accumulate_grad_batches"),
    "val every 0 epochs": (["train", "trainer.check_val_every_n_epoch=0"], "check_val_every"),
    "clip -1": (["train", "trainer.gradient_clip_val=-1"], "trainer.gradient_clip_val"),
    "log every -1 steps": (["train", "trainer.log_every_n_steps=-1"], "log_every_n_steps"),
    "imagefolder without root": (["train", "data=imagefolder"], "data.source.root"),
    "run dir is a file": (["train", "hydra.run.dir={file}"], "hydra.run.dir"),
    "optimized_metric never logged": (["train", "optimized_metric=nope"], "optimized_metric"),
    "eval without ckpt_path": (["eval"], "ckpt_path"),
    "visualize without ckpt_path": (["visualize"], "ckpt_path"),
    "predict without input": (["predict", "ckpt_path={ckpt}"], "input"),
    "predict batch_size abc": (
        ["predict", "ckpt_path={ckpt}", "input={image}", "batch_size=abc"],
        "batch_size",
    ),
    "predict top_k abc": (["predict", "ckpt_path={ckpt}", "input={image}", "top_k=abc"], "top_k"),
    "predict output a folder": (
        ["predict", "ckpt_path={ckpt}", "input={image}", "output={folder}"],
        "output",
    ),
    "predict output empty": (
        ["predict", "ckpt_path={ckpt}", "input={image}", "output=''"],
        "output",
    ),
    "reproduce corrupt config": (["reproduce", "{run}"], "config.yaml"),
    "reproduce negative rtol": (["reproduce", "{run}", "--rtol=-1"], "--rtol"),
    # Hydra's own composition errors, printed by the CLI in one line too.
    "key of another option": (["train", "optimizer.nesterov=true"], "optimizer.nesterov"),
    "unknown group option": (["train", "optimizer=nope"], "optimizer/nope"),
    "malformed override": (["train", "seed=["], "seed=["),
}
# Run through the real command in the fast suite too; the rest of the table is `slow` there
# (each process costs a few seconds) and runs in-process below.
FAST_COMMAND_CASES = (
    "lr inf",
    "run dir is a file",
    "eval without ckpt_path",
    "predict output a folder",
)


def _fill(args: list[str], tmp_path: Path) -> list[str]:
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    (files / "notes.txt").write_text("not a folder\n")
    (files / "model.ckpt").write_bytes(b"validated before it is read")
    (files / "digit.png").write_bytes(b"validated before it is read")
    (files / "out").mkdir(exist_ok=True)
    run = _corrupt_run_folder(tmp_path / "old_run")
    places = {
        "file": files / "notes.txt",
        "folder": files / "out",
        "ckpt": files / "model.ckpt",
        "image": files / "digit.png",
        "run": run,
    }
    return [arg.format(**places) for arg in args]


def _corrupt_run_folder(run: Path) -> Path:
    """A finished-looking run folder whose composed config is not YAML."""
    (run / ".hydra").mkdir(parents=True, exist_ok=True)
    (run / "run.json").write_text(json.dumps({"status": "completed", "overrides": []}))
    (run / "metrics.json").write_text(json.dumps({"test/acc": 0.5}))
    (run / ".hydra" / "overrides.yaml").write_text("[]\n")
    (run / ".hydra" / "config.yaml").write_text("trainer: {max_epochs: [unclosed\n")
    return run


def _no_run_folder(outputs: Path) -> list[Path]:
    return sorted(p for p in outputs.glob("runs/*/*") if p.is_dir())


@pytest.mark.parametrize("case", sorted(LISTED))
def test_listed_bad_input_in_process(case: str, run_cli, capsys, tmp_path: Path) -> None:
    args, needle = LISTED[case]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*_fill(args, tmp_path))
    assert exit_info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert needle in err.strip().splitlines()[-1]
    assert _no_run_folder(tmp_path / "outputs") == []


def _command_params() -> list[Any]:
    return [
        pytest.param(case, marks=() if case in FAST_COMMAND_CASES else pytest.mark.slow)
        for case in sorted(LISTED)
    ]


@pytest.mark.parametrize("case", _command_params())
def test_listed_bad_input_through_the_command(case: str, run_subprocess, tmp_path: Path) -> None:
    args, needle = LISTED[case]
    result = run_subprocess(*_fill(args, tmp_path))
    assert result.returncode != 0
    assert "Traceback" not in result.stdout + result.stderr
    assert needle in result.stderr.strip().splitlines()[-1]
    assert _no_run_folder(tmp_path / "outputs") == []


def test_visualize_without_the_captum_extra(run_subprocess, tmp_path: Path) -> None:
    # A captum that fails to import, first on the path: what a missing extra looks like.
    fake = tmp_path / "no_captum" / "captum"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('No module named captum')\n")
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"validated before it is read")
    result = run_subprocess(
        "visualize",
        f"ckpt_path={ckpt}",
        "method=saliency",
        env={"PYTHONPATH": str(fake.parent)},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cnnlab visualize: error: method:")
    assert "pip install 'cnnlab[interpret]'" in last
    assert _no_run_folder(tmp_path / "outputs") == []
