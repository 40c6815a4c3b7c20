"""Run folders from anyone: ``train resume=`` and ``reproduce`` read them as data.

One real run folder is trained per module; each test copies it and tampers with the copy
the way an attacker (or a broken disk) would, runs the real command, and checks that it
exits non-zero with one line naming the file and key, before anything ran: the marker
file a crafted target would write does not exist, files outside the folder keep their
bytes, and ``run.json`` is not left "running".
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import quick

CONFIG = Path(".hydra") / "config.yaml"
SECRET = "root:$6$hunter2-very-secret$:19000:0:99999:7:::"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run (2 epochs, no schedule, so resuming it for 3 epochs is allowed)."""
    root = tmp_path_factory.mktemp("trained")
    env = {**os.environ, "CNNLAB_OUTPUTS": str(root / "outputs"), "CNNLAB_DATA": str(root)}
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", *quick("scheduler=none"), "hydra.run.dir=run"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "run"


@pytest.fixture
def run_dir(trained: Path, tmp_path: Path) -> Path:
    """A fresh copy of the trained run to tamper with."""
    copy = tmp_path / "run"
    shutil.copytree(trained, copy, symlinks=True)
    return copy


def _edit_config(run_dir: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = run_dir / CONFIG
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def _command(kind: str, run_dir: Path, tmp_path: Path) -> list[str]:
    if kind == "resume":
        return ["train", f"resume={run_dir}", "trainer.max_epochs=3"]
    return ["reproduce", str(run_dir), "--out", str(tmp_path / "again")]


def _assert_one_error_line(result: subprocess.CompletedProcess[str], *names: str) -> str:
    """The command failed with one ``error:`` line, last, naming ``names``; no traceback."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-3000:]
    for name in names:
        assert name in errors[0], (name, errors[0])
    return errors[0]


def _savetxt(marker: Path) -> dict[str, Any]:
    return {"_target_": "numpy.savetxt", "fname": str(marker), "X": [[6.0]]}


# Where a crafted target hides, and the key the error names.
PLACES: dict[str, tuple[Callable[[dict[str, Any], Path], None], str]] = {
    "callbacks": (
        lambda c, m: c["callbacks"].__setitem__("evil", _savetxt(m)),
        "callbacks.evil._target_",
    ),
    "logger": (lambda c, m: c["logger"].__setitem__("evil", _savetxt(m)), "logger.evil._target_"),
    "data.source": (
        lambda c, m: c["data"].__setitem__("source", _savetxt(m)),
        "data.source._target_",
    ),
    "trainer": (lambda c, m: c.__setitem__("trainer", _savetxt(m)), "trainer._target_"),
    "_args_": (
        lambda c, m: c["callbacks"]["lr_monitor"].__setitem__("_args_", [str(m)]),
        "callbacks.lr_monitor._args_",
    ),
}


# Every place through resume; through reproduce (the same check) the first two in the fast suite.
_PLACE_CASES = [
    pytest.param(
        place,
        command,
        marks=() if command == "resume" or place in ("callbacks", "trainer") else pytest.mark.slow,
    )
    for place in PLACES
    for command in ("resume", "reproduce")
]


@pytest.mark.parametrize(("place", "command"), _PLACE_CASES)
def test_a_crafted_target_in_the_config_is_refused_before_it_runs(
    command, place, run_dir, run_subprocess, tmp_path
) -> None:
    marker = tmp_path / "pwned.txt"
    tamper, key = PLACES[place]
    _edit_config(run_dir, lambda config: tamper(config, marker))
    run_json = (run_dir / "run.json").read_bytes()

    result = run_subprocess(*_command(command, run_dir, tmp_path))

    _assert_one_error_line(result, str(run_dir / CONFIG), key)
    assert not marker.exists()
    assert (run_dir / "run.json").read_bytes() == run_json
    assert not (tmp_path / "again").exists()


@pytest.mark.parametrize("command", ["resume", "reproduce"])
def test_builtins_open_in_the_config_truncates_nothing(
    command, run_dir, run_subprocess, tmp_path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    evil = {"_target_": "builtins.open", "file": str(victim), "mode": "w"}
    _edit_config(run_dir, lambda config: config["callbacks"].__setitem__("evil", evil))

    result = run_subprocess(*_command(command, run_dir, tmp_path))

    _assert_one_error_line(result, "callbacks.evil._target_", "builtins.open")
    assert victim.read_text() == "precious\n"


def test_reproduce_refuses_a_hydra_node_in_the_config(run_dir, run_subprocess, tmp_path) -> None:
    """Hydra ran a ``hydra.callbacks`` node of the saved config silently, exit 0."""
    marker = tmp_path / "pwned.txt"
    _edit_config(
        run_dir, lambda config: config.update(hydra={"callbacks": {"evil": _savetxt(marker)}})
    )

    result = run_subprocess(*_command("reproduce", run_dir, tmp_path))

    assert result.returncode == 2
    _assert_one_error_line(result, str(run_dir / CONFIG), "hydra")
    assert not marker.exists()


def test_an_environment_secret_cannot_be_interpolated(run_dir, run_subprocess, tmp_path) -> None:
    """``${oc.env:...}`` of any variable but cnnlab's folders would copy it into run.json."""
    _edit_config(run_dir, lambda config: config.update(tags=["${oc.env:CNNLAB_TEST_TOKEN}"]))

    result = run_subprocess(
        *_command("resume", run_dir, tmp_path), env={"CNNLAB_TEST_TOKEN": SECRET}
    )

    line = _assert_one_error_line(result, "tags[0]", "oc.env")
    assert SECRET not in result.stdout + result.stderr + line
    assert SECRET not in (run_dir / "run.json").read_text()


# Allowed targets whose arguments would place files outside the run folder.
ELSEWHERE: dict[str, tuple[Callable[[dict[str, Any], Path], None], str]] = {
    "dirpath": (
        lambda c, o: c["callbacks"]["model_checkpoint"].__setitem__("dirpath", str(o)),
        "callbacks.model_checkpoint.dirpath",
    ),
    "filename": (
        lambda c, o: c["callbacks"]["model_checkpoint"].__setitem__("filename", f"../../{o.name}"),
        "callbacks.model_checkpoint.filename",
    ),
    "save_dir": (
        lambda c, o: c["logger"]["csv"].__setitem__("save_dir", str(o)),
        "logger.csv.save_dir",
    ),
    "output_root": (
        lambda c, o: c["paths"].__setitem__("output_root", str(o)),
        "paths.output_root",
    ),
}


@pytest.mark.parametrize("place", ELSEWHERE)
def test_an_allowed_target_cannot_write_outside_the_run_folder(
    place, run_dir, run_subprocess, tmp_path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tamper, key = ELSEWHERE[place]
    _edit_config(run_dir, lambda config: tamper(config, outside))

    result = run_subprocess(*_command("resume", run_dir, tmp_path))

    _assert_one_error_line(result, str(run_dir / CONFIG), key)
    assert list(outside.iterdir()) == []


def test_a_folder_config_never_downloads(run_dir) -> None:
    from cnnlab.records.run_config import read_run_config

    def mnist(config: dict[str, Any]) -> None:
        config["data"]["source"] = {
            "_target_": "cnnlab.data.sources.MnistSource",
            "root": "${paths.data_dir}",
            "download": True,
            "mirrors": ["http://127.0.0.1:9/"],
        }

    _edit_config(run_dir, mnist)

    assert read_run_config(run_dir)["data"]["source"]["download"] is False


@pytest.mark.parametrize("command", ["resume", "reproduce"])
def test_the_config_is_validated_like_a_fresh_run(
    command, run_dir, run_subprocess, tmp_path
) -> None:
    _edit_config(run_dir, lambda config: config["trainer"].__setitem__("max_epochs", "abc"))

    result = run_subprocess(*_command(command, run_dir, tmp_path))

    _assert_one_error_line(result, str(run_dir / CONFIG), "trainer.max_epochs")


@pytest.mark.parametrize("command", ["resume", "reproduce"])
def test_an_alias_bomb_config_is_one_line_quickly(
    command, run_dir, run_subprocess, tmp_path
) -> None:
    """About 400 bytes that expand to 10**5 values: 66 s and 414 MB before."""
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for name, previous in zip("bcde", "abcd", strict=True):
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{previous}"] * 10) + "]")
    (run_dir / CONFIG).write_text("\n".join([*levels, "trainer: {max_epochs: 1}", ""]))

    result = run_subprocess(*_command(command, run_dir, tmp_path), timeout=30)

    _assert_one_error_line(result, str(run_dir / CONFIG))


def test_resume_refuses_a_linked_job_log(run_dir, run_subprocess, tmp_path) -> None:
    """Hydra appends the job log: a link made a shell line land in a stand-in ~/.bashrc."""
    bashrc = tmp_path / "bashrc"
    bashrc.write_bytes(b"export PATH=$HOME/bin:$PATH\n")
    (run_dir / "train.log").unlink()
    (run_dir / "train.log").symlink_to(bashrc)

    result = run_subprocess(*_command("resume", run_dir, tmp_path))

    _assert_one_error_line(result, str(run_dir / "train.log"), "link")
    assert bashrc.read_bytes() == b"export PATH=$HOME/bin:$PATH\n"


def test_resume_refuses_a_linked_checkpoints_folder(run_dir, run_subprocess, tmp_path) -> None:
    elsewhere = tmp_path / "elsewhere"
    shutil.move(run_dir / "checkpoints", elsewhere)
    (run_dir / "checkpoints").symlink_to(elsewhere, target_is_directory=True)
    before = {p.name: p.read_bytes() for p in elsewhere.iterdir()}

    result = run_subprocess(*_command("resume", run_dir, tmp_path))

    _assert_one_error_line(result, str(run_dir / "checkpoints"), "link")
    assert {p.name: p.read_bytes() for p in elsewhere.iterdir()} == before


def test_resume_of_a_fifo_run_json_is_one_line_quickly(run_dir, run_subprocess, tmp_path) -> None:
    (run_dir / "run.json").unlink()
    os.mkfifo(run_dir / "run.json")

    result = run_subprocess(*_command("resume", run_dir, tmp_path), timeout=30)

    _assert_one_error_line(result, str(run_dir / "run.json"))


@pytest.mark.parametrize(
    ("field", "value"),
    [("starts", 5), ("command", 5), ("start", "2026-01-02T03:04:05")],  # naive: no UTC offset
)
def test_bad_run_json_fields_are_one_line_before_training(
    field, value, run_dir, run_subprocess, tmp_path
) -> None:
    """They failed the final record after all epochs and left run.json "running"."""
    record = json.loads((run_dir / "run.json").read_text())
    record[field] = value
    (run_dir / "run.json").write_text(json.dumps(record))
    before = {name: (run_dir / name).read_bytes() for name in ("run.json", "metrics.csv")}

    result = run_subprocess(*_command("resume", run_dir, tmp_path))

    _assert_one_error_line(result, str(run_dir / "run.json"), field)
    assert {name: (run_dir / name).read_bytes() for name in before} == before


@pytest.mark.parametrize(("command", "status"), [("reproduce", 2), ("resume", 1)])
@pytest.mark.parametrize("linked", [True, False])
def test_reproduce_does_not_print_a_bad_overrides_file(
    linked, command, status, run_dir, run_subprocess, tmp_path
) -> None:
    """An overrides.yaml linked to /etc/shadow was printed, parsed, in the error; resume reads
    the file with the same reader."""
    overrides = run_dir / ".hydra" / "overrides.yaml"
    overrides.unlink()
    if linked:
        shadow = tmp_path / "shadow"
        shadow.write_text(SECRET + "\n")
        overrides.symlink_to(shadow)
    else:
        overrides.write_text(SECRET + "\n")

    result = run_subprocess(*_command(command, run_dir, tmp_path))

    assert result.returncode == status
    _assert_one_error_line(result, str(overrides))
    assert "hunter2" not in result.stdout + result.stderr


def test_reproduce_into_an_impossible_folder_is_one_line(run_dir, run_subprocess) -> None:
    result = run_subprocess("reproduce", str(run_dir), "--out=/proc/cnnlab-no-such/x")

    assert result.returncode == 2
    _assert_one_error_line(result, "--out", "/proc/cnnlab-no-such/x")


def _groups(name: str) -> list[str]:
    from cnnlab.config import config_dir

    return sorted(p.stem for p in (config_dir() / name).glob("*.yaml"))


@pytest.mark.parametrize(
    "overrides",
    [[f"experiment={name}"] for name in _groups("experiment")]
    + [[f"logger={name}"] for name in _groups("logger")]
    + [[f"callbacks={name}"] for name in _groups("callbacks")]
    + [[f"data={name}"] for name in _groups("data")],
)
def test_every_config_cnnlab_composes_passes_the_check(overrides, tmp_path) -> None:
    """The positive control: the allow-list refuses crafted configs, not cnnlab's own."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from cnnlab.config import config_dir
    from cnnlab.records.run_config import read_run_config

    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose("train", overrides)
    (tmp_path / ".hydra").mkdir()
    (tmp_path / CONFIG).write_text(OmegaConf.to_yaml(cfg))
    assert read_run_config(tmp_path)["task"] == "train"
