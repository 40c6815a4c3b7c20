"""Issue 6 (tracebacks instead of one line): each case through the real command.

Every case exits non-zero with one line naming the key or the file, no traceback, and
leaves nothing behind: no run folder, no output, no temporary file, no trial.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import quick

Run = Callable[..., subprocess.CompletedProcess[str]]

# A bad input fails in seconds; on code that does not check it, the work starts and this
# limit ends the test instead of a run of minutes.
FAIL_FAST_S = 90


def assert_one_line(result: subprocess.CompletedProcess[str], prefix: str, *needles: str) -> str:
    """The process failed with one error line that starts with ``prefix`` and names ``needles``."""
    assert result.returncode != 0, result.stdout[-2000:]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1, result.stderr[-3000:]
    assert errors[0].startswith(prefix), errors[0]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def run_folders(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "outputs").glob("*runs/*/*") if p.is_dir())


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob(".*") if p.name.endswith(".tmp") or "probe" in p.name)


# ------------------------------------------------------------------------------------------
# The network against the data: classes, channels and image size, before any run folder.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "needles"),
    [
        (["model.num_classes=7"], "model.num_classes", ["7", "data.num_classes is 10"]),
        (["model.in_channels=3"], "model.in_channels", ["3", "data.in_channels is 1"]),
        (["model=densenet_bc", "data.image_size=2"], "data.image_size", ["2x2"]),
        (["model.image_size=32"], "model.image_size", ["32", "data.image_size is 28"]),
    ],
    ids=["num_classes", "in_channels", "image_size", "model image_size"],
)
def test_network_not_fitting_the_data(
    overrides: list[str], key: str, needles: list[str], run_subprocess: Run, tmp_path: Path
) -> None:
    result = run_subprocess("train", *quick(*overrides), timeout=FAIL_FAST_S)
    assert_one_line(result, f"cnnlab train: error: {key}: ", *needles)
    assert run_folders(tmp_path) == []


# ------------------------------------------------------------------------------------------
# What only a constructor checks (Lightning's Trainer and callbacks, cnnlab's data module):
# refused by building it, before the run folder exists, naming the argument the constructor's
# message names.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key", "needles"),
    [
        (["+trainer.strategy=nope"], "trainer.strategy", ["strategy='nope'"]),
        (["trainer.accelerator=nope"], "trainer.accelerator", ["accelerator='nope'"]),
        (["trainer.precision=7"], "trainer.precision", ["Precision 7"]),
        (["callbacks.early_stopping.mode=up"], "callbacks.early_stopping.mode", ["up"]),
        (["data.device_resident=true", "data.num_workers=2"], "data.device_resident", ["2"]),
    ],
    ids=["strategy", "accelerator", "precision", "callback mode", "data module"],
)
def test_what_a_constructor_refuses_before_the_run_folder(
    overrides: list[str], key: str, needles: list[str], run_subprocess: Run, tmp_path: Path
) -> None:
    result = run_subprocess("train", *quick(*overrides), timeout=FAIL_FAST_S)
    assert_one_line(result, f"cnnlab train: error: {key}: ", *needles)
    assert run_folders(tmp_path) == []


@pytest.fixture(scope="module")
def lenet_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint of a quick LeNet-5 run on the digits (28x28), made once for the module."""
    root = tmp_path_factory.mktemp("lenet")
    env = {"CNNLAB_OUTPUTS": str(root / "outputs"), "CNNLAB_DATA": str(root / "data")}
    args = ["train", *quick("logger=none", f"hydra.run.dir={root / 'run'}")]
    import os
    import sys

    subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=root,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=300,
    )
    return root / "run" / "checkpoints" / "last.ckpt"


def test_eval_with_images_too_small_for_the_checkpoint(
    lenet_ckpt: Path, run_subprocess: Run, tmp_path: Path
) -> None:
    result = run_subprocess(
        "eval", f"ckpt_path={lenet_ckpt}", "data=digits", "data.image_size=8", "logger=none"
    )
    assert_one_line(result, "cnnlab eval: error: data.image_size: ", "8x8")
    assert not list((tmp_path / "outputs").rglob("metrics.json"))


# ------------------------------------------------------------------------------------------
# Outputs the user names: checked before the work, and a failed write is one line too.
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("output", ["/proc/x.csv", "/proc/sub/x.csv"])
def test_predict_output_where_no_file_can_be_made(
    output: str, lenet_ckpt: Path, run_subprocess: Run, tmp_path: Path
) -> None:
    image = tmp_path / "digit.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(image)
    result = run_subprocess(
        "predict", f"ckpt_path={lenet_ckpt}", f"input={image}", f"output={output}"
    )
    assert_one_line(result, "cnnlab predict: error: output: ", "/proc")
    assert run_folders(tmp_path) == []


def test_a_failed_write_of_an_output_names_the_file(tmp_path: Path) -> None:
    from cnnlab.files.atomic import WriteError, output_errors, write_text_atomic

    (tmp_path / "a_file").write_text("in the way\n")
    for target in (Path("/proc/x.csv"), tmp_path / "a_file" / "x.csv", tmp_path):
        with pytest.raises(WriteError, match="cannot write") as info, output_errors(target):
            write_text_atomic(target, "path,label\n")
        assert str(target) in str(info.value)
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seed", "-1"], "argument --seed: must be an integer in [0, "),
        (["--seed", "abc"], "argument --seed: must be an integer in [0, "),
        (["--out", "{file}"], "--out: {file} is a file, not a folder"),
        (["--out", "/proc/cs"], "--out: /proc/cs: cannot write in /proc"),
        (["--out", "/proc"], "--out: cannot write in /proc"),
        (["--mode", "train", "--out", "/proc/cs"], "--out: /proc/cs: cannot write in /proc"),
    ],
    ids=["seed -1", "seed abc", "out a file", "out under proc", "out proc", "train out proc"],
)
def test_compare_search_bad_arguments(
    args: list[str], needle: str, run_subprocess: Run, tmp_path: Path
) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder\n")
    filled = [a.format(file=a_file) for a in args]
    if "--out" not in filled:
        filled += ["--out", str(tmp_path / "cs")]
    result = run_subprocess(
        "compare-search", "--budgets", "9", "--repeats", "2", *filled, timeout=FAIL_FAST_S
    )
    assert result.returncode == 2
    assert_one_line(result, "cnnlab compare-search: error: ", needle.format(file=a_file))
    assert not (tmp_path / "cs").exists()
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("docs", "needle"),
    [
        ("{folder}", "needs a suffix"),
        ("{folder}.md", "is a folder; give a file name"),
        ("/proc/experiments.md", "cannot write in /proc"),
    ],
    ids=["folder", "folder with a suffix", "under proc"],
)
def test_experiments_docs_that_cannot_be_written(
    docs: str, needle: str, run_subprocess: Run, tmp_path: Path
) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    (tmp_path / "adir.md").mkdir()
    result = run_subprocess(
        "experiments",
        "--quick",
        "--only",
        "search",
        "--out",
        str(tmp_path / "exp"),
        "--docs",
        docs.format(folder=folder),
        timeout=FAIL_FAST_S,
    )
    assert result.returncode == 2
    assert_one_line(result, "cnnlab experiments: error: --docs: ", needle)
    assert not (tmp_path / "exp").exists()  # no sweep ran
    assert list(folder.iterdir()) == [] and temp_files(tmp_path) == []
