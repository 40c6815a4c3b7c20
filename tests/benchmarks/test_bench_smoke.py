"""`benchmarks/run.py --quick` runs for real and writes its Markdown tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def _bench(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN), "--quick", "--threads", "1", *args],
        cwd=tmp_path,
        env={**os.environ, "WANDB_MODE": "offline"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.slow
def test_quick_sweep_bench_writes_its_table_and_the_machine(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    proc = _bench(tmp_path, "--only", "sweep", "--output", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = out.read_text()
    assert text.startswith("# BENCHMARKS")
    assert "| torch |" in text and "| cores |" in text
    assert "## 3. Sweep overhead" in text
    assert "| report=false |" in text and "| report=true |" in text
    assert "--only sweep" in text  # the exact command is recorded
    assert not list(tmp_path.glob(".BENCH.md.*"))  # no temporary file left behind


@pytest.mark.slow
def test_quick_search_bench_times_the_real_sweep_against_the_hand_written_loop(
    tmp_path: Path,
) -> None:
    out = tmp_path / "BENCH.md"
    proc = _bench(tmp_path, "--only", "search", "--output", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = out.read_text()
    assert "## 8. A real sweep" in text
    (row,) = [line for line in text.splitlines() if line.startswith("| 2 |")]
    cnnlab_s, loop_s, ratio = (float(cell) for cell in row.split(" | ")[1:4])
    assert cnnlab_s > 0 and loop_s > 0 and ratio == pytest.approx(cnnlab_s / loop_s, abs=0.06)
    assert "cnnlab train -m experiment=search_lr_wd hydra.sweeper.n_trials=2" in text
    assert "python benchmarks/sweep_loop.py" in text


@pytest.mark.slow
def test_unknown_benchmark_is_refused_by_name(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "--only", "speed", "--output", str(tmp_path / "B.md"))
    assert proc.returncode == 2
    assert "speed" in proc.stderr
    assert not (tmp_path / "B.md").exists()


@pytest.mark.slow
def test_quick_run_of_every_benchmark_writes_every_table(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    proc = _bench(tmp_path, "--output", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = out.read_text()
    for title in ("## 1. ", "## 2. ", "## 3. ", "## 4. ", "## 5. ", "## 6. ", "## 7. ", "## 8. "):
        assert title in text
    rows = [line for line in text.splitlines() if line.startswith("| LeNet-5")]
    assert len(rows) == 4  # two rows vs the plain loop, two vs the Lightning recipe
    for row in (line.split(" | ") for line in rows[:2]):  # vs the plain loop
        plain, bare, bare_ratio = (float(row[i].replace(",", "")) for i in (5, 7, 8))
        assert abs(bare_ratio - bare / plain) < 0.02  # bare Lightning's ratio is its own
    assert "Commands:" in text
    assert "| whole default run | 3 |" in text  # the quick whole run against the plain loop


@pytest.mark.slow
def test_quick_epochs_bench_times_both_sides_of_a_whole_run(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    proc = _bench(tmp_path, "--only", "epochs", "--output", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = out.read_text()
    rows = [
        line.split(" | ")
        for line in text.splitlines()
        if line.startswith("| whole") or line.startswith("| 1 train")
    ]
    assert len(rows) == 2
    for row in rows:
        cnnlab_s, plain_s, ratio = float(row[3]), float(row[4]), float(row[7])
        assert cnnlab_s > 0 and plain_s > 0
        assert abs(ratio - plain_s / cnnlab_s) < 0.02  # the ratio is the two timings'
        plain_ms, bare_ms, bare_ratio = float(row[6]), float(row[8]), float(row[9])
        assert bare_ms > 0 and abs(bare_ratio - plain_ms / bare_ms) < 0.02  # bare Lightning's
    assert "cnnlab train trainer.max_epochs=3 callbacks.early_stopping=null test=false" in text


def test_update_replaces_only_the_measured_sections() -> None:
    from benchmarks._common import Table
    from benchmarks.run import updated

    old = (
        "# BENCHMARKS\n\nWritten by X.\n\n## 1. a\n\nkept\n\n"
        "## 6. P\n\nstale\n\n## 7. c\n\nkept too\n"
    )
    table = Table(title="6. P", intro="fresh", columns=["s"], rows=[["1.0"]], commands=["cmd"])
    text = updated(old, [table], "python benchmarks/run.py --only parallel --update", 12.0)
    assert "stale" not in text and "fresh" in text
    assert text.count("kept") == 2 and text.index("## 1.") < text.index("## 6.") < text.index(
        "## 7."
    )
    assert "Section(s) 6 re-measured by `python benchmarks/run.py --only parallel --update`" in text
    # A later update names only what it measured; the earlier line keeps the rest, or goes.
    seven = Table(title="7. c", intro="newer", columns=["s"], rows=[["2.0"]], commands=["cmd"])
    again = updated(text, [seven, table], "python benchmarks/run.py --only epochs,parallel", 3.0)
    assert "re-measured by `python benchmarks/run.py --only parallel --update`" not in again
    assert again.count("re-measured") == 1 and "Section(s) 7, 6 re-measured" in again
    partial = updated(text, [seven], "python benchmarks/run.py --only epochs", 3.0)
    assert "Section(s) 6 re-measured by `python benchmarks/run.py --only parallel" in partial
    assert "Section(s) 7 re-measured by `python benchmarks/run.py --only epochs`" in partial
