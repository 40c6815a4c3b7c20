"""Checkpoints and images from anyone: refused with one line, and nothing they name runs.

The crafted checkpoints are what an attacker would write: a real cnnlab checkpoint whose
hyperparameters name another callable. Each test checks the attack's effect (a file
written, a file truncated, a marker touched) did not happen, and that the command
exited non-zero with one error line naming the file and the key.
"""

from __future__ import annotations

import copy
import functools
import os
import pickle
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch

from cnnlab.config import config_dir
from cnnlab.errors import CheckpointError

TASKS = ("eval", "predict", "visualize")
PRECIOUS = "precious data\n"


def _real_hparams() -> dict[str, Any]:
    """The hyperparameters ``cnnlab train`` saves for LeNet-5 on digits (a fresh copy)."""
    return copy.deepcopy(_composed_hparams())


@functools.cache
def _composed_hparams() -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train")

    def plain(key: str) -> Any:
        return OmegaConf.to_container(cfg[key], resolve=True)

    data = plain("data")
    return {
        "model": plain("model"),
        "num_classes": data["num_classes"],
        "loss": plain("loss"),
        "optimizer": plain("optimizer"),
        "scheduler": plain("scheduler"),
        "monitor": plain("monitor"),
        "data": data,
        "classes": [str(i) for i in range(data["num_classes"])],
    }


def _save_checkpoint(path: Path, hparams: dict[str, Any], state: dict[str, Any] | None = None):
    from cnnlab.lit.module import ImageClassifier

    if state is None:
        state = ImageClassifier(**_real_hparams()).state_dict()
    # What Lightning itself writes besides, so that its own loader would accept the file too.
    lightning = {"pytorch-lightning_version": pl.__version__, "hparams_name": "kwargs"}
    torch.save({"state_dict": state, "hyper_parameters": hparams, **lightning}, path)
    return path


class _RunsShell:
    """Pickled, it makes ``torch.load(weights_only=False)`` run a shell command."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return os.system, (self.command,)


def _craft(kind: str, tmp_path: Path) -> tuple[Path, str, Callable[[], bool]]:
    """Write a crafted checkpoint; return it, the key it abuses and "did the attack work?"."""
    hparams = _real_hparams()
    if kind == "savetxt":
        written = tmp_path / "pwned.txt"
        hparams["model"] = {"_target_": "numpy.savetxt", "fname": str(written), "X": [[6.0]]}
        key, attack_worked = "hyper_parameters.model._target_", written.exists
    elif kind == "open":
        victim = tmp_path / "victim.txt"
        victim.write_text(PRECIOUS)
        hparams["data"] = {"_target_": "builtins.open", "file": str(victim), "mode": "w"}
        key, attack_worked = (
            "hyper_parameters.data._target_",
            lambda: victim.read_text() != PRECIOUS,
        )
    else:  # torch.load of a second file that runs a shell command
        marker = tmp_path / "marker"
        second = tmp_path / "second.pt"
        second.write_bytes(pickle.dumps(_RunsShell(f"touch {marker}")))
        hparams["model"] = {"_target_": "torch.load", "f": str(second), "weights_only": False}
        key, attack_worked = "hyper_parameters.model._target_", marker.exists
    return _save_checkpoint(tmp_path / f"{kind}.ckpt", hparams), key, attack_worked


CRAFTED = ("savetxt", "open", "torch_load")


def _task_args(task: str, ckpt: Path, tmp_path: Path) -> list[str]:
    args = [task, f"ckpt_path={ckpt}"]
    if task == "predict":
        image = tmp_path / "digit.png"
        if not image.exists():
            from PIL import Image

            Image.new("L", (28, 28), 128).save(image)
        args += [f"input={image}", f"output={tmp_path / 'p.csv'}"]
    if task == "eval":
        args += ["logger=none"]
    return args


def _assert_one_error_line(stderr: str, *names: str) -> None:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1, stderr
    assert lines[-1] == errors[0]
    for name in names:
        assert name in errors[0], (name, errors[0])


@pytest.mark.parametrize("kind", CRAFTED)
@pytest.mark.parametrize("task", TASKS)
def test_crafted_checkpoint_is_refused_in_process(task, kind, run_cli, capsys, tmp_path) -> None:
    ckpt, key, attack_worked = _craft(kind, tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*_task_args(task, ckpt, tmp_path))
    assert exit_info.value.code == 1
    _assert_one_error_line(capsys.readouterr().err, str(ckpt), key)
    assert not attack_worked()


# The real command on the worst file in the fast suite (all pairs are checked in process
# above); every pair when slow tests run.
_SUBPROCESS_CASES = [
    pytest.param(
        task, kind, marks=() if (task, kind) == ("predict", "torch_load") else pytest.mark.slow
    )
    for kind in CRAFTED
    for task in TASKS
]


@pytest.mark.parametrize(("task", "kind"), _SUBPROCESS_CASES)
def test_crafted_checkpoint_is_refused_by_the_command(task, kind, run_subprocess, tmp_path):
    ckpt, key, attack_worked = _craft(kind, tmp_path)
    result = run_subprocess(*_task_args(task, ckpt, tmp_path))
    assert result.returncode == 1
    _assert_one_error_line(result.stderr, str(ckpt), key)
    assert not attack_worked()
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("kind", CRAFTED)
def test_train_resume_refuses_crafted_checkpoints(kind, run_cli, capsys, tmp_path) -> None:
    ckpt, key, attack_worked = _craft(kind, tmp_path)
    with pytest.raises(SystemExit):
        run_cli("train", "debug=limit", "logger=none", f"ckpt_path={ckpt}")
    _assert_one_error_line(capsys.readouterr().err, str(ckpt), key)
    assert not attack_worked()


@pytest.mark.parametrize(
    ("where", "value", "key"),
    [
        ("model.norm", {"_target_": "os.system", "command": "true"}, "model.norm._target_"),
        ("data.source", {"_target_": "os.remove", "path": "x"}, "data.source._target_"),
        ("optimizer", {"_target_": "subprocess.run", "_partial_": True}, "optimizer._target_"),
        ("model._args_", ["lenet5"], "model._args_"),
        ("data.root", "${oc.env:HOME}", "data.root"),
        ("model.name", "no_such_net", "model.name"),
        ("extra", 1, "hyper_parameters.extra"),
    ],
)
def test_every_place_a_target_could_hide_is_checked(where, value, key, tmp_path) -> None:
    from cnnlab.lit.checkpoint import read_checkpoint

    hparams = _real_hparams()
    *parents, last = where.split(".")
    node = hparams
    for part in parents:
        node = node[part]
    node[last] = value
    ckpt = _save_checkpoint(tmp_path / "x.ckpt", hparams)
    with pytest.raises(CheckpointError, match=key.replace("$", r"\$")) as info:
        read_checkpoint(ckpt)
    assert str(ckpt) in str(info.value)


def test_checkpoint_callback_paths_must_stay_in_their_folder(tmp_path: Path) -> None:
    """Lightning reloads these paths on resume; one elsewhere could be loaded or deleted."""
    from cnnlab.lit.checkpoint import read_checkpoint

    ckpt = _save_checkpoint(tmp_path / "x.ckpt", _real_hparams())
    content = torch.load(ckpt, weights_only=True)
    folder = str(tmp_path / "checkpoints")
    state = {"dirpath": folder, "best_model_path": f"{folder}/best.ckpt", "best_k_models": {}}
    content["callbacks"] = {"ModelCheckpoint": state}
    torch.save(content, ckpt)
    read_checkpoint(ckpt)  # inside its folder: accepted
    state["best_k_models"] = {str(tmp_path / "precious.txt"): torch.tensor(1.0)}
    torch.save(content, ckpt)
    with pytest.raises(CheckpointError, match=r"best_k_models: .*precious.txt.* lies outside"):
        read_checkpoint(ckpt)


def test_a_real_checkpoint_still_loads_and_predicts(run_cli, tmp_path: Path) -> None:
    """The positive control: the checks refuse crafted files, not cnnlab's own."""
    ckpt = _save_checkpoint(tmp_path / "good.ckpt", _real_hparams())
    run_cli(*_task_args("predict", ckpt, tmp_path))
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith(str(tmp_path / "digit.png"))


# ---- Checkpoint files that are broken rather than hostile (issue 10, section 6) ----


def _text_renamed(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "notes.ckpt"
    path.write_text("these are my notes, not a checkpoint\n" * 3)
    return path, "not a loadable checkpoint"


def _wrong_shapes(tmp_path: Path) -> tuple[Path, str]:
    from cnnlab.lit.module import ImageClassifier

    state = ImageClassifier(**_real_hparams()).state_dict()
    name = next(k for k in state if k.endswith("weight") and state[k].dim() == 4)
    state[name] = torch.zeros(3, 3)
    return _save_checkpoint(tmp_path / "shapes.ckpt", _real_hparams(), state), f"{name}: shape"


def _a_folder(tmp_path: Path) -> tuple[Path, str]:
    (tmp_path / "folder.ckpt").mkdir()
    return tmp_path / "folder.ckpt", "folder"


def _a_pipe(tmp_path: Path) -> tuple[Path, str]:
    os.mkfifo(tmp_path / "pipe.ckpt")  # reading it would wait forever
    return tmp_path / "pipe.ckpt", "not a regular file"


# Every task reads checkpoints through read_checkpoint; folders and pipes are checked once.
_BROKEN = [(t, m) for t in (*TASKS, "train") for m in (_text_renamed, _wrong_shapes)]
_BROKEN += [("eval", _a_folder), ("eval", _a_pipe)]


@pytest.mark.parametrize(("task", "make"), _BROKEN)
def test_broken_checkpoint_files(task, make, run_cli, capsys, tmp_path: Path) -> None:
    ckpt, reason = make(tmp_path)
    args = _task_args(task, ckpt, tmp_path) if task != "train" else [task, f"ckpt_path={ckpt}"]
    with pytest.raises(SystemExit):
        run_cli(*args, *(["debug=limit", "logger=none"] if task == "train" else []))
    _assert_one_error_line(capsys.readouterr().err, str(ckpt), reason)


@pytest.mark.parametrize("task", [*TASKS, "train"])
def test_empty_ckpt_path_names_the_key(task, run_cli, capsys, tmp_path: Path) -> None:
    args = _task_args(task, Path(), tmp_path)
    args[1] = "ckpt_path="
    with pytest.raises(SystemExit):
        run_cli(*args, *(["debug=limit", "logger=none"] if task == "train" else []))
    err = capsys.readouterr().err
    # The config check or the checkpoint reader says it first; either names the key, not ".".
    _assert_one_error_line(err, "ckpt_path:")
    assert "`.`" not in err


@pytest.mark.slow
@pytest.mark.parametrize("make", [_text_renamed, _wrong_shapes])
def test_broken_checkpoint_through_the_command(make, run_subprocess, tmp_path: Path) -> None:
    ckpt, reason = make(tmp_path)
    result = run_subprocess("eval", f"ckpt_path={ckpt}", "logger=none")
    assert result.returncode == 1
    _assert_one_error_line(result.stderr, str(ckpt), reason)


def test_unreadable_checkpoint_through_the_command(run_subprocess, tmp_path: Path) -> None:
    ckpt = _save_checkpoint(tmp_path / "locked.ckpt", _real_hparams())
    ckpt.chmod(0)
    command: list[str] = []
    if os.access(ckpt, os.R_OK):  # root reads anything: drop the capabilities that allow it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root and setpriv is missing: cannot make a file unreadable")
        command = [setpriv, "--bounding-set", "-dac_override,-dac_read_search"]
    import subprocess
    import sys

    result = subprocess.run(
        [*command, sys.executable, "-m", "cnnlab", "eval", f"ckpt_path={ckpt}", "logger=none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 1
    # The config check meets it first: ckpt_path must be a readable file.
    _assert_one_error_line(result.stderr, str(ckpt), "not readable")


# ---- Hostile images (issue 10, section 6) ----


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG header announcing ``width`` x ``height`` grey pixels, with one row of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = zlib.compress(b"\x00" + b"\x80" * min(width, 64))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", row) + chunk(b"IEND", b"")


def _bomb(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "huge.png"
    path.write_bytes(_png_claiming(20000, 20000))
    return path, "too large"


def _truncated(tmp_path: Path) -> tuple[Path, str]:
    from PIL import Image

    path = tmp_path / "cut.png"
    Image.effect_noise((64, 64), 40).save(path)
    path.write_bytes(path.read_bytes()[:200])
    return path, "cannot decode image"


def _not_an_image(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "fake.png"
    path.write_text("hello, I am text")
    return path, "cannot decode image"


@pytest.mark.parametrize("make", [_bomb, _truncated, _not_an_image])
@pytest.mark.parametrize("task", ["predict", "visualize"])
def test_hostile_images(task, make, run_cli, capsys, tmp_path: Path) -> None:
    ckpt = _save_checkpoint(tmp_path / "good.ckpt", _real_hparams())
    image, reason = make(tmp_path)
    output = tmp_path / "p.csv"
    extra = [f"output={output}"] if task == "predict" else []
    with pytest.raises(SystemExit):
        run_cli(task, f"ckpt_path={ckpt}", f"input={image}", *extra)
    _assert_one_error_line(capsys.readouterr().err, str(image), reason)
    assert not output.exists() and not output.with_name("p.csv.tmp").exists()


@pytest.mark.slow
def test_decompression_bomb_through_the_command(run_subprocess, tmp_path: Path) -> None:
    ckpt = _save_checkpoint(tmp_path / "good.ckpt", _real_hparams())
    image, reason = _bomb(tmp_path)
    result = run_subprocess("predict", f"ckpt_path={ckpt}", f"input={image}")
    assert result.returncode == 1
    _assert_one_error_line(result.stderr, str(image), reason)
