"""What every benchmark shares: result tables, repeats and medians, the machine, a step timer.

A figure is always a ratio against a baseline measured in the same invocation; the
measurements of the two sides are interleaved (A, B, A, B, ...) so that a slow patch of a
shared machine hits both, and the median of the repeats is reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from typing_extensions import override

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Table:
    """One benchmark's section of BENCHMARKS.md.

    Args:
        title: Section heading.
        intro: What is measured and against which baseline (Markdown).
        columns: Column headings.
        rows: One list of cells per row, already formatted.
        notes: Lines after the table: targets met or missed, and why.
        commands: The exact commands (or code) that produced the figures.
    """

    title: str
    intro: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        """Render the section as Markdown."""
        lines = [f"## {self.title}", "", self.intro, ""]
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "|".join("---" for _ in self.columns) + "|")
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        lines.append("")
        lines += [f"- {note}" for note in self.notes]
        if self.notes:
            lines.append("")
        if self.commands:
            lines += ["Commands:", "", "```", *self.commands, "```", ""]
        return "\n".join(lines)


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return float(statistics.median(values))


def interleaved(measures: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Run each measurement ``repeats`` times, taking turns, and return the values by name."""
    results: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            results[name].append(measure())
    return results


def verdict(ok: bool) -> str:
    """The cell text of a target check."""
    return "met" if ok else "**missed**"


def machine() -> dict[str, str]:
    """The machine the figures come from: CPU model, cores, memory, GPU, library versions."""
    import torch

    info = {
        "cpu": _cpu_model(),
        "cores": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "memory": _memory(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "python": platform.python_version(),
        "torch": torch.__version__,
        "pytorch_lightning": pl.__version__,
        "os": platform.platform(),
    }
    with contextlib.suppress(OSError):  # not available on every platform
        info["load average (1 min) at start"] = f"{os.getloadavg()[0]:.2f}"
    return info


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _memory() -> str:
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


class StepTimer(pl.Callback):
    """Time ``steps`` training steps after ``warmup`` steps, from inside the training loop.

    The clock starts when training step ``warmup - 1`` ends and stops when step
    ``warmup + steps - 1`` ends, so the window holds ``steps`` whole iterations: fetching
    the batch, moving and augmenting it, forward, backward, the optimizer and every hook.
    Start-up, sanity checks, validation and checkpointing stay outside. The result is
    written as JSON to ``out``.

    Args:
        warmup: Steps before the clock starts (at least 1).
        steps: Steps timed.
        out: JSON file for ``{"samples": ..., "seconds": ..., "samples_per_s": ...}``.
    """

    def __init__(self, warmup: int, steps: int, out: str) -> None:
        self.warmup = max(int(warmup), 1)
        self.steps = int(steps)
        self.out = Path(out)
        self._tic = 0.0
        self._samples = 0
        self._step = 0

    @override
    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        self._step += 1
        if self._step == self.warmup:
            _sync(pl_module.device)
            self._tic = time.perf_counter()
        elif self.warmup < self._step <= self.warmup + self.steps:
            self._samples += len(batch[-1])
            if self._step == self.warmup + self.steps:
                _sync(pl_module.device)
                seconds = time.perf_counter() - self._tic
                result = {
                    "samples": self._samples,
                    "seconds": seconds,
                    "samples_per_s": self._samples / seconds,
                }
                self.out.write_text(json.dumps(result))


def _sync(device: Any) -> None:
    import torch

    if getattr(device, "type", "cpu") == "cuda":
        torch.cuda.synchronize(device)


def read_json(path: Path) -> dict[str, Any]:
    """Read a JSON result file, with a clear error when the run did not write it."""
    if not path.is_file():
        raise RuntimeError(f"{path} was not written: the run ended before the timed steps")
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _section_bounds(lines: list[str], heading: str) -> tuple[int, int] | None:
    """First and past-last line of the section titled ``heading`` in ``lines``, or None."""
    start = next((i for i, line in enumerate(lines) if line.strip() == heading), None)
    if start is None:
        return None
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return start, end


def read_section(path: Path, heading: str) -> str | None:
    """The section of ``path`` titled ``heading``, or None.

    ``make bench`` rewrites BENCHMARKS.md whole; the sections other targets write (the GPU
    section, the launchers) are read first and put back.
    """
    lines = path.read_text().splitlines() if path.is_file() else []
    bounds = _section_bounds(lines, heading)
    return None if bounds is None else "\n".join(lines[bounds[0] : bounds[1]]) + "\n"


def write_section(path: Path, heading: str, section: str) -> None:
    """Put ``section`` in place of the one titled ``heading`` (or append it), atomically."""
    from cnnlab.files.atomic import write_text_atomic

    text = path.read_text() if path.is_file() else ""
    lines = text.splitlines()
    bounds = _section_bounds(lines, heading)
    if bounds is None:
        new = text.rstrip("\n") + ("\n\n" if text else "") + section
    else:
        new = "\n".join([*lines[: bounds[0]], section.rstrip("\n"), *lines[bounds[1] :]])
    write_text_atomic(path, new.rstrip("\n") + "\n")
