"""``cnnlab report``, ``cnnlab runs`` and ``runs compare`` on sweep and run folders from anyone.

A sweep folder may be a colleague's, an unpacked archive or a shared outputs folder. One real
two-trial sweep is made once (``cnnlab train -m hparams_search=random``); each test copies it
(with its study, whose trials are pointed at the copy), tampers with the copy and runs the
real command: it must write nothing outside the folder, open the study read-only, resolve no
interpolation it read, never hang on a fifo nor read a huge file whole, print no escape
sequence it read, and say what is wrong in one line (or skip a bad run folder with a warning).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import quick
from tests.records.test_disk_full import _fill, tmpfs  # noqa: F401 - tmpfs is a fixture

# A command that waits on a fifo never ends; one that reads its data ends in seconds.
QUICK_TIMEOUT = 30
# The peak memory of `cnnlab runs` and `cnnlab report` here is 100 to 250 MB; reading a
# 200 MB file whole takes it past 450 MB.
MAX_RSS_MB = 400
# Escape sequences in data: clear the screen, set the window title, paint red.
ESCAPES = "\x1b[2J\x1b]0;owned\x07\x1b[31m"

CommandRunner = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Sweep:
    """The real sweep: its folder and its study's SQLite file."""

    folder: Path
    storage: Path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    root = tmp_path_factory.mktemp("hostile")
    env = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    env.update(
        CNNLAB_OUTPUTS=str(root / "outputs"),
        CNNLAB_DATA=str(root / "data"),
        WANDB_DIR=str(root / "wandb"),
        WANDB_MODE="offline",
    )
    args = ["train", "-m", "hparams_search=random", "hydra.sweeper.n_trials=2"]
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab", *args, *quick("logger=none")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (folder,) = (root / "outputs").glob("multiruns/train/*")
    return Sweep(folder, root / "outputs" / "optuna.db")


def copy_sweep(sweep: Sweep, dest: Path) -> Path:
    """Copy the sweep folder (less checkpoints) and its study into ``dest``; return the folder.

    The copied study's trials name the copied job folders, as the original's name its own.
    """
    folder = dest / "sweep"
    shutil.copytree(sweep.folder, folder, ignore=shutil.ignore_patterns("*.ckpt"))
    storage = dest / "optuna.db"
    shutil.copyfile(sweep.storage, storage)
    with contextlib.closing(sqlite3.connect(storage)) as db, db:
        db.execute(
            "UPDATE trial_user_attributes SET value_json = replace(value_json, ?, ?)",
            (str(sweep.folder), str(folder)),
        )
    edit_json(folder / "sweep.json", storage=f"sqlite:///{storage}")
    return folder


def as_plain_multirun(folder: Path) -> Path:
    """Make the sweep folder a plain Hydra multirun (no study): reported from run.json files."""
    (folder / "sweep.json").unlink()
    (folder / "multirun.yaml").write_text("hydra: {}\n")
    return folder


def edit_json(path: Path, **fields: object) -> None:
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr[-3000:]
    for needle in needles:
        assert needle in lines[0], lines[0]


def assert_warned(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    """The command succeeded and one warning line names each of ``needles``."""
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    warnings = [line for line in done.stderr.splitlines() if ": warning: " in line]
    for needle in needles:
        assert any(needle in line for line in warnings), done.stderr[-3000:]


# Runs the command and writes its peak resident memory (KB) to a file. A process started
# from pytest inherits pytest's own high-water mark (Linux keeps it across fork and exec),
# which is a gigabyte late in the suite; this small parent starts the command afresh.
PEAK_WRAPPER = """
import resource, subprocess, sys
try:
    code = subprocess.call(sys.argv[2:], timeout=float(sys.argv[1]))
except subprocess.TimeoutExpired:
    code = -9
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open("peak_kb.txt", "w") as fh:
    fh.write(str(peak))
sys.exit(code)
"""


def measured(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``cnnlab ARGS``; return its result and its peak resident memory in MB."""
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with out.open("w") as stdout, err.open("w") as stderr:
        code = subprocess.call(
            [sys.executable, "-c", PEAK_WRAPPER, str(QUICK_TIMEOUT), sys.executable, "-m",
             "cnnlab", *args],
            cwd=cwd, stdout=stdout, stderr=stderr,
        )  # fmt: skip
    done = subprocess.CompletedProcess(args, code, out.read_text(), err.read_text())
    return done, int((cwd / "peak_kb.txt").read_text()) / 1024


def sparse_file(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space (a hole)."""
    path.unlink(missing_ok=True)
    with path.open("wb") as fh:
        fh.truncate(size)


# --- cnnlab report: writes stay inside the folder -------------------------------------------


def test_report_replaces_links_planted_in_the_folder_and_follows_none(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    # At the files the report writes, and at the temporary names it used to write through.
    names = ["report.md", "report.html", "best.yaml", "history.png", ".report.md.tmp"]
    names.append(".best.yaml.tmp")
    for name in names:
        (folder / name).unlink(missing_ok=True)
        (folder / name).symlink_to(victim)

    done = run_subprocess("report", str(folder), timeout=120)

    assert done.returncode == 0, done.stderr[-3000:]
    assert victim.read_text() == "precious\n"
    for name in ["report.md", "report.html", "best.yaml", "history.png"]:
        assert not (folder / name).is_symlink() and (folder / name).stat().st_size > 100, name
    assert "# Sweep report" in (folder / "report.md").read_text()
    # Only the stale links remain of temporary names: nothing of this run was left behind.
    assert sorted(p.name for p in folder.glob(".*.tmp")) == [".best.yaml.tmp", ".report.md.tmp"]


def test_report_leaves_a_foreign_sqlite_database_as_it_was(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    foreign = tmp_path / "accounts.db"
    with contextlib.closing(sqlite3.connect(foreign)) as db, db:
        db.execute("CREATE TABLE accounts (name TEXT, balance INTEGER)")
        db.execute("INSERT INTO accounts VALUES ('alice', 100)")
    before = foreign.read_bytes()
    edit_json(folder / "sweep.json", storage=f"sqlite:///{foreign}")

    done = run_subprocess("report", str(folder), timeout=QUICK_TIMEOUT)

    assert_one_line_error(done, f"{folder / 'sweep.json'}: storage", "holds no Optuna study")
    assert foreign.read_bytes() == before
    with contextlib.closing(sqlite3.connect(f"file:{foreign}?mode=ro", uri=True)) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master")]
    assert tables == ["accounts"]


@pytest.mark.parametrize("scheme", ["sqlite:///", "journal:"])
def test_report_creates_no_storage_nor_folder_where_sweep_json_points(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner, scheme: str
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    nowhere = tmp_path / "nowhere" / "deeper" / "optuna.db"
    edit_json(folder / "sweep.json", storage=f"{scheme}{nowhere}")

    done = run_subprocess("report", str(folder), timeout=QUICK_TIMEOUT)

    assert_one_line_error(done, f"{folder / 'sweep.json'}: storage", "does not exist")
    assert not (tmp_path / "nowhere").exists()


def test_report_of_a_study_missing_from_its_storage_is_one_line(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    edit_json(folder / "sweep.json", study_name="no-such-study")
    before = (tmp_path / "optuna.db").read_bytes()

    done = run_subprocess("report", str(folder), timeout=QUICK_TIMEOUT)

    assert_one_line_error(done, "sweep.json: storage", "holds no study 'no-such-study'")
    assert (tmp_path / "optuna.db").read_bytes() == before


def test_report_resolves_no_interpolation_found_in_run_json(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = as_plain_multirun(copy_sweep(sweep, tmp_path))
    secret = "s3cret-4f1d9a-value"
    for job in ("0", "1"):
        path = folder / job / "run.json"
        config = json.loads(path.read_text())["config"]
        config["optimized_metric"] = "${oc.env:CNNLAB_TEST_SECRET}"
        config["monitor"]["metric"] = "${oc.env:CNNLAB_TEST_SECRET}"
        edit_json(path, config=config)

    done = run_subprocess("report", str(folder), env={"CNNLAB_TEST_SECRET": secret}, timeout=120)

    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("report.md", "report.html"):
        assert secret not in (folder / name).read_text(), name
    assert secret not in done.stdout + done.stderr


def test_report_that_cannot_be_written_leaves_no_temporary_file(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    for png in folder.glob("*.png"):
        png.unlink()
    (folder / "report.html").unlink()
    (folder / "report.html").mkdir()  # report.html cannot be replaced: a folder is there

    done = run_subprocess("report", str(folder), timeout=120)

    assert_one_line_error(done, f"{folder / 'report.html'}: cannot write")
    assert [p.name for p in folder.rglob("*.tmp")] == []


def test_report_on_a_full_disk_is_one_line_and_leaves_no_temporary_file(
    sweep: Sweep,
    tmp_path: Path,
    run_subprocess: CommandRunner,
    tmpfs: Callable[..., Path],  # noqa: F811 - the fixture imported above
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    disk = tmpfs("disk", "size=2m")
    shutil.copytree(folder, disk / "sweep")
    for old in (disk / "sweep").glob("*.png"):
        old.unlink()
    _fill(disk, 4096)  # room for report.md, none for a 20 KB plot

    done = run_subprocess("report", str(disk / "sweep"), timeout=120)

    assert_one_line_error(done, "cannot write: No space left on device")
    assert [p.name for p in (disk / "sweep").rglob("*.tmp")] == []
    assert list((disk / "sweep").glob("*.png")) == []


# --- cnnlab report: fifos, devices, huge and malformed files ----------------------------------


def test_report_of_a_fifo_sweep_json_is_one_line(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    (folder / "sweep.json").unlink()
    os.mkfifo(folder / "sweep.json")

    done = run_subprocess("report", str(folder), timeout=QUICK_TIMEOUT)

    assert_one_line_error(done, f"{folder / 'sweep.json'}: not a cnnlab sweep folder", "fifo")


def test_report_skips_a_fifo_metrics_json_with_a_warning(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    (folder / "0" / "metrics.json").unlink()
    os.mkfifo(folder / "0" / "metrics.json")

    done = run_subprocess("report", str(folder), timeout=QUICK_TIMEOUT * 2)

    assert_warned(done, f"{folder / '0' / 'metrics.json'}: is a fifo")
    assert (folder / "report.md").read_text().count("| complete |") == 2


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("[1, 2]", id="a-list"),
        pytest.param('{"storage": "sqlite:///x.db"}', id="no-study_name"),
        pytest.param('{"study_name": 5, "storage": "sqlite:///x.db"}', id="study_name-a-number"),
        pytest.param('{"study_name": "s", "storage": "x", "sampler": "tpe"}', id="sampler-text"),
        pytest.param("[" * 100_000 + "]" * 100_000, id="100000-deep"),
    ],
)
def test_report_of_a_malformed_sweep_json_is_one_line(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner, content: str
) -> None:
    folder = copy_sweep(sweep, tmp_path)
    (folder / "sweep.json").write_text(content)

    done = run_subprocess("report", str(folder), timeout=QUICK_TIMEOUT)

    assert_one_line_error(done, f"{folder / 'sweep.json'}:")
    assert not (tmp_path / "x.db").exists()


def test_report_of_a_multirun_with_bad_run_folders_skips_them_with_warnings(
    sweep: Sweep, tmp_path: Path, run_subprocess: CommandRunner
) -> None:
    folder = as_plain_multirun(copy_sweep(sweep, tmp_path))
    # Job 1 is renamed "²" (a digit to str.isdigit, not to int) and gets fields of the wrong
    # type; more jobs hold a huge, an endless and a 100,000-deep run.json.
    (folder / "1").rename(folder / "²")
    overrides = ["optimizer.lr=0.5", "optimizer.lr.x=1", 7, None]
    edit_json(folder / "²" / "run.json", overrides=overrides, duration_s="long", error={"a": 1})
    edit_json(folder / "²" / "metrics.json", **{"val/acc_best": 1.0})  # the best: best.yaml
    for job in ("2", "3", "4"):
        (folder / job).mkdir()
    sparse_file(folder / "2" / "run.json", 200 * 1024 * 1024)
    (folder / "3" / "run.json").symlink_to("/dev/zero")
    (folder / "4" / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    (folder / "0" / "metrics.json").unlink()
    (folder / "0" / "metrics.json").symlink_to("/dev/zero")

    done, rss = measured(["report", str(folder)], tmp_path)

    assert_warned(
        done,
        f"skipped {folder / '2' / 'run.json'}: is 209,715,200 bytes",
        f"skipped {folder / '3' / 'run.json'}: is (or lies under) a symbolic link",
        f"skipped {folder / '4' / 'run.json'}: nests deeper than",
        f"{folder / '0' / 'metrics.json'}: is (or lies under) a symbolic link",
    )
    assert rss < MAX_RSS_MB, rss
    report = (folder / "report.md").read_text()
    assert "| ² |" in report and "2 runs" in report
    assert "lr:\n    x: 1\n" in (folder / "best.yaml").read_text()


# --- cnnlab runs and runs compare ------------------------------------------------------------


@pytest.fixture
def outputs(sweep: Sweep, tmp_path: Path) -> Path:
    """An outputs folder holding the sweep's two job folders as runs ``a`` and ``b``."""
    root = tmp_path / "outputs"
    for job, name in (("0", "a"), ("1", "b")):
        shutil.copytree(sweep.folder / job, root / name, ignore=shutil.ignore_patterns("*.ckpt"))
    return root


@pytest.mark.parametrize("options", [[], ["--sort", "model"]], ids=["plain", "sorted"])
@pytest.mark.parametrize("name", ["metrics.json", ".hydra/hydra.yaml"])
def test_runs_warns_of_a_fifo_in_a_run_folder(
    outputs: Path, run_subprocess: CommandRunner, name: str, options: list[str]
) -> None:
    (outputs / "a" / name).unlink()
    os.mkfifo(outputs / "a" / name)

    done = run_subprocess("runs", str(outputs), *options, timeout=QUICK_TIMEOUT)

    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert "2 runs" in done.stdout
    if name == "metrics.json" or options:  # hydra.yaml is read for --sort and --filter only
        assert_warned(done, f"{outputs / 'a' / name}: is a fifo")


def test_runs_compare_warns_of_a_fifo_metrics_json(
    outputs: Path, run_subprocess: CommandRunner
) -> None:
    (outputs / "b" / "metrics.json").unlink()
    os.mkfifo(outputs / "b" / "metrics.json")

    done = run_subprocess("runs", "compare", str(outputs / "a"), str(outputs / "b"), timeout=30)

    assert_warned(done, f"{outputs / 'b' / 'metrics.json'}: is a fifo")
    assert "config:" in done.stdout


def test_runs_compare_of_a_fifo_run_json_is_one_line(
    outputs: Path, run_subprocess: CommandRunner
) -> None:
    (outputs / "b" / "run.json").unlink()
    os.mkfifo(outputs / "b" / "run.json")

    done = run_subprocess("runs", "compare", str(outputs / "a"), str(outputs / "b"), timeout=30)

    assert_one_line_error(done, f"{outputs / 'b' / 'run.json'}: is a fifo")


@pytest.mark.parametrize("what", ["run.json", "metrics.json"])
def test_runs_reads_neither_a_huge_file_nor_dev_zero(
    outputs: Path, tmp_path: Path, what: str
) -> None:
    sparse_file(outputs / "a" / what, 200 * 1024 * 1024)
    (outputs / "b" / what).unlink()
    (outputs / "b" / what).symlink_to("/dev/zero")

    done, rss = measured(["runs", str(outputs)], tmp_path)

    skipped = "skipped " if what == "run.json" else ""
    assert_warned(
        done,
        f"{skipped}{outputs / 'a' / what}: is 209,715,200 bytes",
        f"{skipped}{outputs / 'b' / what}: is (or lies under) a symbolic link",
    )
    assert rss < MAX_RSS_MB, rss


def test_runs_prints_escape_sequences_of_run_folders_escaped(
    outputs: Path, run_subprocess: CommandRunner
) -> None:
    evil = outputs / f"evil{ESCAPES}"
    (outputs / "b").rename(evil)
    manifest = json.loads((evil / "run.json").read_text())
    manifest["config"]["task"] = f"train{ESCAPES}"
    edit_json(
        evil / "run.json",
        status=f"completed{ESCAPES}",
        overrides=[f"optimizer.lr=0.1{ESCAPES}", "fake\nrow"],
        config=manifest["config"],
    )
    metrics = json.loads((evil / "metrics.json").read_text())
    (evil / "metrics.json").write_text(json.dumps({**metrics, f"test/x{ESCAPES}": 1.0}))

    listing = run_subprocess("runs", str(outputs), timeout=QUICK_TIMEOUT)
    compared = run_subprocess("runs", "compare", str(outputs / "a"), str(evil), timeout=30)

    for done in (listing, compared):
        assert done.returncode == 0, done.stderr[-3000:]
        assert "\x1b" not in done.stdout and "\x07" not in done.stdout, done.stdout
        assert r"\x1b[2J\x1b]0;owned\x07" in done.stdout
    assert r"evil\x1b[2J" in listing.stdout and r"train\x1b[2J" in listing.stdout
    assert "fake\\x0arow" in compared.stdout
