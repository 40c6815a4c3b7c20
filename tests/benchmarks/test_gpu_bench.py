"""`benchmarks/gpu.py`: one line and no file without CUDA; the whole pipeline on the CPU."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from benchmarks._common import REPO, write_section
from benchmarks.gpu import SECTION

GPU = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu.py"


def _bench(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(GPU), *args],
        cwd=tmp_path,
        env={**os.environ, "WANDB_MODE": "offline", **(env or {})},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def test_without_cuda_says_so_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    proc = _bench(tmp_path, "--output", str(out), env={"CUDA_VISIBLE_DEVICES": ""})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines() == [
        "bench-gpu: no CUDA device here; nothing measured, BENCHMARKS.md unchanged"
    ]
    assert not out.exists()


def test_section_replaces_its_old_self_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "BENCH.md"
    path.write_text("# BENCHMARKS\n\n## 1. CPU\n\ntext\n")
    write_section(path, SECTION, "## GPU\n\nfirst\n")
    assert path.read_text() == "# BENCHMARKS\n\n## 1. CPU\n\ntext\n\n## GPU\n\nfirst\n"
    path.write_text(path.read_text() + "\n## 9. Later\n\nkept\n")
    write_section(path, SECTION, "## GPU\n\nsecond\n")
    text = path.read_text()
    assert "first" not in text and "second" in text
    assert text.index("## 1. CPU") < text.index("## GPU") < text.index("## 9. Later")
    assert text.endswith("kept\n") and not list(tmp_path.glob(".BENCH.md*"))


# The whole pipeline on the CPU: six real trainings (~40 s on a quiet 2-core machine).
@pytest.mark.slow
def test_quick_cpu_run_writes_the_gpu_section(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    out.write_text("# BENCHMARKS\n\n## 1. Training throughput\n\nunchanged\n")
    proc = _bench(tmp_path, "--device", "cpu", "--quick", "--output", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    text = out.read_text()
    assert "## 1. Training throughput\n\nunchanged" in text
    section = text[text.index("## GPU") :]
    assert "--device cpu --quick" in section  # the exact command is recorded
    rows = [line for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| network",
        "| LeNet-5, 28x28x1",
        "| ResNet-18, 32x32x3",
    ]
    for row in rows[1:]:
        ratio = float(row.rstrip(" |").rsplit(" | ", 1)[1])
        assert ratio > 0
    commands = [line for line in section.splitlines() if line.startswith("cnnlab train ")]
    assert len(commands) == 3
    assert all("perf=fast" in c and "trainer.accelerator=cpu" in c for c in commands)
    assert "model=lenet5" in commands[0] and "model=resnet18" in commands[1]
    assert "experiment=cifar10_speedrun" in commands[2]
    assert "### CIFAR-10 speed run" in section
    assert ">= 0.0 after epoch 1" in section  # the time to the (reachable) target


@pytest.mark.slow
def test_make_bench_keeps_the_gpu_section_it_does_not_measure(tmp_path: Path) -> None:
    out = tmp_path / "BENCH.md"
    out.write_text("# BENCHMARKS\n\n## 1. old\n\nold rows\n\n## GPU\n\n| gpu row |\n")
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--only",
            "sweep",
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text()
    assert "old rows" not in text and "## 3. Sweep overhead" in text
    assert text.rstrip().endswith("## GPU\n\n| gpu row |")
