"""A full or read-only disk loses nothing: the real ``cnnlab`` command on real small file systems.

Each test mounts a small tmpfs of its own (we run as root in CI; elsewhere the tests skip and
say why). Root ignores permission bits, so "read-only" is a tmpfs mounted read-only.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from PIL import Image
from tests.conftest import quick

# Left free once the disk "fills" mid-run: room for run.json, none for a 0.75 MB checkpoint.
RESERVE_BYTES = 100 * 1024


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str, str], Path]]:
    """Mount tmpfs file systems under ``tmp_path``: ``tmpfs(name, options)``; unmounted after."""
    mounted: list[Path] = []

    def mount(name: str, options: str) -> Path:
        where = tmp_path / name
        _mount_tmpfs(where, options)
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def _free_bytes(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def _fill(folder: Path, leave: int) -> None:
    """Take the free space of ``folder``'s file system but ``leave`` bytes, as a program would."""
    filler = folder / "filler"
    with filler.open("ab") as fh:
        try:
            fh.write(b"\0" * max(_free_bytes(folder) - leave, 0))
            fh.flush()
        except OSError:
            pass  # full already: the run wrote meanwhile
    # Give back what a concurrent write of the run took from the reserve.
    missing = leave - _free_bytes(folder)
    if missing > 0:
        os.truncate(filler, max(filler.stat().st_size - missing, 0))


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def _assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert " error: " in last
    for needle in needles:
        assert needle in last, last


def _cnnlab(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_train_on_a_disk_that_fills_mid_run_keeps_the_last_good_files(
    tmpfs, tmp_path: Path
) -> None:
    import torch

    disk = tmpfs("disk", "size=4m")
    run_dir = disk / "run"
    # Many short epochs: the disk fills after the first checkpoints, long before the end.
    process = _cnnlab(
        "train", *quick("trainer.max_epochs=300", f"hydra.run.dir={run_dir}"), cwd=tmp_path
    )
    # Both checkpoints of the first epoch, whichever is written first.
    first = [run_dir / "checkpoints" / "best.ckpt", run_dir / "checkpoints" / "last.ckpt"]
    deadline = time.monotonic() + 240
    while process.poll() is None and time.monotonic() < deadline:
        if all(path.exists() for path in first):
            break
        time.sleep(0.01)
    _fill(disk, leave=RESERVE_BYTES)
    stdout, stderr = process.communicate(timeout=300)
    done = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)

    _assert_one_line_error(done, str(run_dir / "checkpoints"), "No space left on device")
    # The last good checkpoints are whole; nothing half-written is left anywhere.
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    for name in ("best.ckpt", "last.ckpt"):
        checkpoint = torch.load(run_dir / "checkpoints" / name, weights_only=True)
        assert checkpoint["epoch"] >= 0 and checkpoint["state_dict"]
    assert _leftovers(run_dir) == []
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["status"] == "failed"
    assert "No space left on device" in manifest["error"]
    assert yaml.safe_load((run_dir / "hparams.yaml").read_text())["model"]["name"] == "lenet5"
    assert "val/acc" in (run_dir / "metrics.csv").read_text().splitlines()[0]
    assert not (run_dir / "metrics.json").exists()


@pytest.mark.slow
def test_predict_on_a_full_disk_leaves_no_partial_csv(
    tmpfs, run_cli, run_subprocess, tmp_path: Path
) -> None:
    trained = tmp_path / "trained"
    run_cli("train", *quick("logger=none", "test=false", f"hydra.run.dir={trained}"))
    image = tmp_path / "digit.png"
    Image.new("L", (8, 8), color=128).save(image)
    disk = tmpfs("disk", "size=64k")
    _fill(disk, leave=0)
    output = disk / "p.csv"

    done = run_subprocess(
        "predict",
        f"ckpt_path={trained / 'checkpoints' / 'best.ckpt'}",
        f"input={image}",
        f"output={output}",
    )

    _assert_one_line_error(done, str(output), "No space left on device")
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


@pytest.mark.parametrize(
    "task",
    [
        ["train", "debug=limit"],
        ["eval", "ckpt_path={ckpt}"],
        ["predict", "ckpt_path={ckpt}", "input={ckpt}"],
        ["summary"],
    ],
    ids=lambda task: task[0],
)
def test_read_only_outputs_folder_gets_one_line(
    task: list[str], tmpfs, run_subprocess, tmp_path: Path
) -> None:
    outputs = tmpfs("outputs", "ro,size=64k")
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"never read: the run folder is refused first")
    args = [arg.format(ckpt=ckpt) for arg in task]

    done = run_subprocess(*args, env={"CNNLAB_OUTPUTS": str(outputs)})

    _assert_one_line_error(done, str(outputs), "Read-only file system")
    assert list(outputs.iterdir()) == []


def test_full_outputs_folder_gets_one_line_and_no_empty_run_folder(
    tmpfs, run_subprocess, tmp_path: Path
) -> None:
    outputs = tmpfs("outputs", "size=64k")
    _fill(outputs, leave=0)

    done = run_subprocess("summary", env={"CNNLAB_OUTPUTS": str(outputs)})

    _assert_one_line_error(done, str(outputs / "runs" / "summary"), "No space left on device")
    assert sorted(p.name for p in outputs.iterdir()) == ["filler"]
