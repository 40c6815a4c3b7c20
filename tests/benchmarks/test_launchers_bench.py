"""`benchmarks/launchers.py` measures a real sweep and rewrites only its own section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "launchers.py"


@pytest.mark.slow
def test_basic_launcher_row_replaces_the_section_and_keeps_the_rest(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    output.write_text(
        "# Benchmarks\n\n## 9. Launchers: from a trial's submission to its first "
        "training step\n\nold figures\n\n## 9. Later\n\nkept\n"
    )
    proc = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--launchers",
            "basic",
            "--trials",
            "2",
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = output.read_text()
    assert "old figures" not in text and text.endswith("## 9. Later\n\nkept\n")
    (row,) = [line for line in text.splitlines() if line.startswith("| `basic` |")]
    first, later = (float(cell) for cell in row.split("|")[2:4])
    assert 0 < first < 120 and 0 < later < 120
