"""``cnnlab runs`` and ``cnnlab runs compare`` on the folders of real quick training runs.

One module-scoped set of three runs is made once through the real ``cnnlab train``: a
single run that stops early (``runs/``) and a two-job plain multirun that differs in the
learning rate (``multiruns/``). Every test reads those folders through the real command.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import cnnlab, quick

# The single run stops early: nothing improves val/acc by 1.0, and patience 0 stops at once.
EARLY_STOP = [
    "trainer.max_epochs=3",
    "callbacks.early_stopping.patience=0",
    "callbacks.early_stopping.min_delta=1.0",
]


@dataclass
class Runs:
    """The three runs: where they are and what ``cnnlab train`` printed."""

    outputs: Path
    env: dict[str, str]
    single: Path
    jobs: list[Path]
    single_stdout: str
    multirun_stdout: str

    @property
    def all(self) -> list[Path]:
        return [self.single, *self.jobs]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("runs_cmd")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(
        CNNLAB_OUTPUTS=str(root / "outputs"),
        CNNLAB_DATA=str(root / "data"),
        WANDB_DIR=str(root / "wandb"),
        WANDB_MODE="offline",
    )
    single = cnnlab("train", *quick("logger=none", *EARLY_STOP), env=env, cwd=root)
    assert single.returncode == 0, single.stderr[-2000:]
    multirun = cnnlab(
        "train", "-m", *quick("logger=none", "optimizer.lr=0.01,0.002"), env=env, cwd=root
    )
    assert multirun.returncode == 0, multirun.stderr[-2000:]
    outputs = root / "outputs"
    (single_dir,) = outputs.glob("runs/train/*")
    jobs = sorted(outputs.glob("multiruns/train/*/[0-9]"))
    assert len(jobs) == 2, jobs
    return Runs(outputs, env, single_dir, jobs, single.stdout, multirun.stdout)


def _list(runs: Runs, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return cnnlab("runs", *args, env=runs.env, cwd=cwd or runs.outputs.parent)


def _json(runs: Runs, *args: str) -> list[dict]:
    result = _list(runs, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _metrics(folder: Path) -> dict[str, float]:
    return json.loads((folder / "metrics.json").read_text())


def test_train_ends_with_its_folder_metrics_and_why_it_stopped(runs: Runs) -> None:
    tail = runs.single_stdout.splitlines()[-7:]
    assert tail[0] == f"run folder: {runs.single}"
    assert tail[1].startswith("stopped: early stopping at epoch 2 (")
    assert "val/acc" in tail[1]
    test_acc = _metrics(runs.single)["test/acc"]
    assert f"acc={test_acc:.4g}" in next(line for line in tail if line.startswith("  test "))
    assert "  model  params=61706" in tail
    timings = json.loads((runs.single / "run.json").read_text())["timings"]
    assert timings["epochs"] == 2 and timings["stopped"] == tail[1].removeprefix("stopped: ")
    # Each job of the multirun ends the same way, having run its max_epochs.
    assert runs.multirun_stdout.count("stopped: max_epochs=2 reached") == 2
    for job in runs.jobs:
        assert f"run folder: {job}" in runs.multirun_stdout


def test_table_lists_every_run_with_the_overrides_that_differ(runs: Runs) -> None:
    result = _list(runs)  # the outputs folder from $CNNLAB_OUTPUTS
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for folder in runs.all:
        row = next(
            line for line in out.splitlines() if str(folder.relative_to(runs.outputs)) in line
        )
        assert "completed" in row and "train" in row
        assert f"{_metrics(folder)['test/acc']:.4g}" in row
    assert "3 runs in" in out
    for override in ("optimizer.lr=0.01", "optimizer.lr=0.002", "trainer.max_epochs=3"):
        assert override in out
    # Shared by all three runs, so not a difference worth a column.
    assert "debug=limit" not in out and "logger=none" not in out
    assert "val/acc_best" in out and "test/acc" in out


def test_default_folder_is_outputs_and_a_folder_argument_narrows_it(runs: Runs) -> None:
    env = {k: v for k, v in runs.env.items() if k != "CNNLAB_OUTPUTS"}
    default = cnnlab("runs", "--json", env=env, cwd=runs.outputs.parent)  # ./outputs
    assert default.returncode == 0, default.stderr
    assert {Path(r["folder"]) for r in json.loads(default.stdout)} == set(runs.all)
    only_multiruns = _json(runs, str(runs.outputs / "multiruns"))
    assert [Path(r["folder"]) for r in only_multiruns] == runs.jobs
    # Between the two jobs only the learning rate differs.
    assert [r["differing"] for r in only_multiruns] == [
        {"optimizer.lr": "0.01"},
        {"optimizer.lr": "0.002"},
    ]


def test_json_carries_status_overrides_and_all_metrics(runs: Runs) -> None:
    listed = _json(runs)
    assert [Path(r["folder"]) for r in listed] == runs.all  # oldest first
    for row, folder in zip(listed, runs.all, strict=True):
        assert row["status"] == "completed" and row["task"] == "train"
        assert row["metrics"] == _metrics(folder)
        assert row["overrides"] == json.loads((folder / "run.json").read_text())["overrides"]
    assert listed[0]["stopped"].startswith("early stopping at epoch 2")
    assert listed[0]["differing"] == {
        "callbacks.early_stopping.min_delta": "1.0",
        "callbacks.early_stopping.patience": "0",
        "trainer.max_epochs": "3",
    }


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["optimizer.lr=0.002"], [2]),
        (["optimizer.lr=2e-3"], [2]),  # the same number, written as Hydra accepts it
        (["trainer.max_epochs=2", "status=completed"], [1, 2]),
        (["model=lenet5", "task=train"], [0, 1, 2]),  # a group choice, and the task
        (["callbacks.early_stopping.patience=0"], [0]),
        (["status=failed"], []),
    ],
)
def test_filter_keeps_the_runs_with_every_value(
    runs: Runs, filters: list[str], expected: list[int]
) -> None:
    args = [arg for f in filters for arg in ("--filter", f)]
    assert [Path(r["folder"]) for r in _json(runs, *args)] == [runs.all[i] for i in expected]


def test_sort_and_last(runs: Runs) -> None:
    by_acc = sorted(runs.all, key=lambda folder: _metrics(folder)["test/acc"])
    assert [Path(r["folder"]) for r in _json(runs, "--sort", "test/acc")] == by_acc
    assert [Path(r["folder"]) for r in _json(runs, "--sort", "test/acc", "-r")] == by_acc[::-1]
    by_lr = [Path(r["folder"]) for r in _json(runs, "--sort", "optimizer.lr")]
    assert by_lr == [runs.single, runs.jobs[1], runs.jobs[0]]  # 0.001 (default), 0.002, 0.01
    assert [Path(r["folder"]) for r in _json(runs, "--last", "2")] == runs.jobs
    # --last keeps the last rows once sorted: here the highest test accuracy.
    highest = _json(runs, "--last", "1", "--sort", "test/acc")
    assert [Path(r["folder"]) for r in highest] == by_acc[-1:]
    # One run alone: the table shows all its overrides.
    alone = _list(runs, "--last", "1").stdout
    assert "debug=limit logger=none optimizer.lr=0.002" in alone and "1 run in" in alone


def test_compare_shows_the_differing_config_keys_and_the_metrics(runs: Runs) -> None:
    a, b = runs.single, runs.jobs[1]
    # Folders as the table prints them: relative to the outputs folder.
    shown = [str(p.relative_to(runs.outputs)) for p in (a, b)]
    text = _list(runs, "compare", *shown, cwd=runs.outputs.parent.parent)
    assert text.returncode == 0, text.stderr
    for key in ("optimizer.lr", "trainer.max_epochs", "callbacks.early_stopping.patience"):
        assert key in text.stdout
    # Checkpoint folders live in each run folder: the same place, not a difference.
    assert "dirpath" not in text.stdout and "model.name" not in text.stdout
    delta = _metrics(b)["test/acc"] - _metrics(a)["test/acc"]
    assert f"{delta:+.4g}" in text.stdout

    result = _list(runs, "compare", str(a), str(b), "--json")
    assert result.returncode == 0, result.stderr
    comparison = json.loads(result.stdout)
    assert {row["key"]: (row["a"], row["b"]) for row in comparison["config"]} == {
        "callbacks.early_stopping.min_delta": (1.0, 0.0),
        "callbacks.early_stopping.patience": (0, 10),
        "optimizer.lr": (0.001, 0.002),
        "trainer.max_epochs": (3, 2),
    }
    metrics = {row["key"]: row for row in comparison["metrics"]}
    assert set(metrics) == set(_metrics(a))
    assert metrics["test/acc"]["difference"] == pytest.approx(delta)


def _hostile_outputs(runs: Runs, root: Path) -> dict[str, Path]:
    """Copies of real run folders, made unreadable or left as a killed run leaves them."""
    source = runs.jobs[0]
    folders = {}
    skipped = ("truncated", "not_an_object", "not_utf8", "too_deep", "huge_number")
    for name in ("good", "killed", "partial", *skipped):
        folder = root / "runs" / "train" / name
        folder.mkdir(parents=True)
        for file in ("run.json", "metrics.json"):
            shutil.copy(source / file, folder / file)
        folders[name] = folder
    manifest = json.loads((source / "run.json").read_text())
    # A killed run: run.json still says running, and it never wrote metrics.json.
    # Its override looks like rich markup: it must be printed as text.
    overrides = [*manifest["overrides"], "+note=[/]"]
    killed = {**manifest, "status": "running", "end": None, "overrides": overrides}
    killed["config"] = {**manifest["config"], "seed": 10**400}  # beyond a float's range
    (folders["killed"] / "run.json").write_text(json.dumps(killed))
    (folders["killed"] / "metrics.json").unlink()
    # Valid JSON, wrong shapes everywhere, a start the platform cannot place, and metrics
    # that are not numbers or do not fit a float.
    partial = {"status": 5, "config": [], "overrides": "lr=1", "start": "0001-01-01T00:00:00"}
    (folders["partial"] / "run.json").write_text(json.dumps(partial))
    (folders["partial"] / "metrics.json").write_text(f'{{"a": "high", "b": 1{"0" * 400}}}')
    text = (source / "run.json").read_text()
    (folders["truncated"] / "run.json").write_text(text[: len(text) // 2])
    (folders["not_an_object"] / "run.json").write_text("[1, 2]")
    (folders["not_utf8"] / "run.json").write_bytes(b'{"status": "\xff\xfe"}')
    # Valid JSON that Python's json refuses: nesting past the recursion limit, a huge integer.
    (folders["too_deep"] / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    (folders["huge_number"] / "run.json").write_text('{"seed": ' + "1" * 5000 + "}")
    return folders


def test_corrupt_and_partial_run_json_are_listed_or_skipped_with_one_warning(
    runs: Runs, tmp_path: Path
) -> None:
    folders = _hostile_outputs(runs, tmp_path / "hostile")
    result = _list(runs, str(tmp_path / "hostile"))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    warnings = result.stderr.splitlines()
    assert len(warnings) == 5, warnings
    for name in ("truncated", "not_an_object", "not_utf8", "too_deep", "huge_number"):
        line = next(w for w in warnings if str(folders[name]) in w)
        assert line.startswith("cnnlab runs: warning: skipped ") and "run.json" in line
    rows = {line.split("│")[-2].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "running" in rows["runs/train/killed"] and "note=[/]" in rows["runs/train/killed"]
    assert "unknown" in rows["runs/train/partial"]
    assert "completed" in rows["runs/train/good"]
    assert set(rows) == {"runs/train/good", "runs/train/killed", "runs/train/partial"}

    listed = _json(runs, str(tmp_path / "hostile"), "--sort", "status")
    assert [r["status"] for r in listed] == ["completed", "running", "unknown"]
    by_seed = _json(runs, str(tmp_path / "hostile"), "--sort", "seed")  # 42, 10**400, none
    assert [r["status"] for r in by_seed] == ["completed", "running", "unknown"]
    assert listed[1]["metrics"] == {} and listed[2]["metrics"] == {}

    # A run named on purpose must be readable: one line naming its run.json.
    bad = _list(runs, "compare", str(folders["good"]), str(folders["truncated"]))
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [bad.stderr.strip()]
    assert str(folders["truncated"] / "run.json") in bad.stderr
    assert "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["{missing}"], "{missing}"),
        (["--last", "0"], "--last"),
        (["--last", "two"], "--last"),
        (["--filter", "optimizer.lr"], "--filter"),
        (["--filter", "optimizer.lrr=0.1"], "optimizer.lrr"),
        (["--sort", "test/f1"], "test/f1"),
        (["--bogus"], "--bogus"),
        (["compare", "{single}"], "B"),
        (["compare", "{single}", "{missing}"], "{missing}"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_1(
    runs: Runs, tmp_path: Path, args: list[str], named: str
) -> None:
    values = {"missing": str(tmp_path / "no-such-folder"), "single": str(runs.single)}
    args = [arg.format(**values) for arg in args]
    before = sorted(runs.outputs.rglob("*"))
    result = _list(runs, *args)
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert named.format(**values) in lines[0] and "error" in lines[0]
    assert sorted(runs.outputs.rglob("*")) == before  # it only reads


@pytest.mark.parametrize(
    ("overrides", "stopped"),
    [
        (["debug=fast_dev_run"], "fast_dev_run (1 batch)"),
        (quick("+trainer.max_steps=3"), "max_steps=3 reached at epoch 1"),
    ],
)
def test_train_says_why_it_stopped_short(
    run_cli, capsys, tmp_path: Path, overrides: list[str], stopped: str
) -> None:
    run_cli("train", "logger=none", "test=false", *overrides)
    assert f"stopped: {stopped}" in capsys.readouterr().out.splitlines()
    (run_json,) = (tmp_path / "outputs").glob("runs/train/*/run.json")
    assert json.loads(run_json.read_text())["timings"]["stopped"] == stopped


def test_an_error_line_masks_a_secret_and_full_error_keeps_the_traceback(
    run_subprocess, tmp_path: Path
) -> None:
    # `cnnlab runs` reports through exit_on_user_error, like the Hydra tasks.
    missing = tmp_path / "api_token=hunter22"
    proc = run_subprocess("runs", str(missing))
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"cnnlab runs: error: {tmp_path}/api_token=*** no such folder"
    ]
    assert "hunter22" not in proc.stdout + proc.stderr

    traced = run_subprocess("runs", str(tmp_path / "nope"), env={"HYDRA_FULL_ERROR": "1"})
    assert traced.returncode == 1
    assert "Traceback" in traced.stderr and "DataError" in traced.stderr
