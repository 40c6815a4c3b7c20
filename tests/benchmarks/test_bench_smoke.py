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
    for title in ("## 1. ", "## 2. ", "## 3. ", "## 4. ", "## 5. "):
        assert title in text
    rows = [line for line in text.splitlines() if line.startswith("| LeNet-5")]
    assert len(rows) == 4  # two rows vs the plain loop, two vs the Lightning recipe
    assert "Commands:" in text
