"""``make bench``: run every benchmark and rewrite BENCHMARKS.md.

Usage::

    python benchmarks/run.py                  # the full run (tens of minutes on a laptop CPU)
    python benchmarks/run.py --quick          # a smoke run: tiny budgets, one repeat
    python benchmarks/run.py --only startup,memory --output /tmp/BENCH.md
    python benchmarks/run.py --only parallel --repeats 1 --trials 4 --update  # busy machine

Every figure is a ratio against a baseline measured in the same invocation, interleaved
with it, as the median of several repeats. The file is written to a temporary name and
moved into place when complete.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# `python benchmarks/run.py` puts benchmarks/ on the path; the package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import gpu, launchers
from benchmarks._common import REPO, Table, machine, read_section, write_section
from benchmarks.epochs import bench_epochs
from benchmarks.processes import (
    bench_memory,
    bench_parallel,
    bench_search,
    bench_startup,
    bench_sweep,
)
from benchmarks.throughput import Budget, bench_vs_plain, bench_vs_recipe

NAMES = ("plain", "recipe", "sweep", "startup", "memory", "parallel", "epochs", "search")


def _benchmarks(
    quick: bool, workdir: Path, most: int | None = None, sweep_trials: int | None = None
) -> dict[str, Callable[[], Table]]:
    if quick:
        lenet, resnet = Budget(warmup=2, steps=8, repeats=1), None
        repeats, trials, trials_parallel, trials_search = 1, 3, 2, 2
    else:
        # ResNet-18 steps cost ~100x LeNet-5's on a CPU; the ratio settles in fewer of them.
        lenet, resnet = Budget(warmup=10, steps=200, repeats=5), Budget(3, 15, 3)
        repeats, trials, trials_parallel, trials_search = 5, 20, 8, 12
    if most is not None:  # --repeats: fewer interleaved repeats of the whole-process benches
        repeats = min(repeats, most)
    if sweep_trials is not None:  # --trials: shorter real sweeps, for a busy machine
        trials_parallel = trials_search = sweep_trials
    return {
        "plain": lambda: bench_vs_plain(lenet, resnet, workdir),
        "recipe": lambda: bench_vs_recipe(lenet, workdir),
        "sweep": lambda: bench_sweep(trials, repeats, workdir),
        "startup": lambda: bench_startup(repeats, workdir),
        "memory": lambda: bench_memory(repeats, workdir),
        # Each repeat is two whole sweeps of 8 real trials: three repeats are plenty.
        "parallel": lambda: bench_parallel(trials_parallel, min(repeats, 3), workdir),
        "epochs": lambda: bench_epochs(repeats, workdir, quick=quick),
        # Each repeat is two whole 12-trial sweeps (minutes): two repeats, interleaved.
        "search": lambda: bench_search(trials_search, min(repeats, 2), workdir),
    }


def render(tables: list[Table], info: dict[str, str], command: str, seconds: float) -> str:
    """The whole BENCHMARKS.md."""
    lines = [
        "# BENCHMARKS",
        "",
        f"Written by `{command}` in {seconds:.0f} s. Every figure is a ratio against a baseline "
        "measured in the same invocation (interleaved repeats, medians). Re-run with "
        "`make bench`; `python benchmarks/run.py --quick` is a smoke run whose numbers mean "
        "little.",
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in info.items()],
        "",
    ]
    lines += [table.markdown() for table in tables]
    return "\n".join(lines).rstrip() + "\n"


def updated(old: str, tables: list[Table], command: str, seconds: float) -> str:
    """``old`` with the sections of ``tables`` replaced (matched by number), the rest kept."""
    parts = old.split("\n## ")
    numbers = {table.title.split(" ", 1)[0]: table for table in tables}
    kept = [parts[0].rstrip("\n")]
    for part in parts[1:]:
        table = numbers.pop(part.split(" ", 1)[0], None)
        kept.append((table.markdown() if table else "## " + part).rstrip("\n"))
    kept += [table.markdown().rstrip("\n") for table in numbers.values()]
    measured = [table.title.split(" ", 1)[0].rstrip(".") for table in tables]
    head = [_without_sections(line, measured) for line in kept[0].split("\n\n")]
    head.append(f"Section(s) {', '.join(measured)} re-measured by `{command}` in {seconds:.0f} s.")
    kept[0] = "\n\n".join(line for line in head if line)
    return "\n\n".join(kept) + "\n"


_REMEASURED = re.compile(r"Section\(s\) (?P<numbers>[\d, ]+) re-measured by (?P<rest>.*)", re.S)


def _without_sections(line: str, numbers: list[str]) -> str:
    """An earlier "Section(s) ... re-measured" line less ``numbers`` (empty: none left)."""
    match = _REMEASURED.fullmatch(line)
    if not match:
        return line
    left = [n for n in match["numbers"].split(", ") if n not in numbers]
    return f"Section(s) {', '.join(left)} re-measured by {match['rest']}" if left else ""


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmarks and write the Markdown report; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, one repeat")
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    parser.add_argument(
        "--only", default=",".join(NAMES), help=f"comma-separated subset of {', '.join(NAMES)}"
    )
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the measured sections in --output, keep the others",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch intra-op threads (default: torch's choice; 1 helps on a busy machine)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="at most this many interleaved repeats of the whole-process benchmarks "
        "(sweep, startup, memory, parallel, epochs, search), for a busy machine",
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trials of each real sweep in the parallel and search sections "
        "(default 8 and 12; --quick 2)",
    )
    args = parser.parse_args(argv)
    # Captured now: in-process `cnnlab train` runs rewrite sys.argv.
    command = "python benchmarks/run.py " + " ".join(sys.argv[1:] if argv is None else argv)
    selected = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(selected) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {list(NAMES)}")

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    info = machine()
    tic = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as tmp:
        workdir = Path(tmp)
        # In-process `cnnlab train` runs write their folders here, not into outputs/.
        os.environ["CNNLAB_OUTPUTS"] = str(workdir / "outputs")
        os.environ.setdefault("WANDB_MODE", "offline")
        benchmarks = _benchmarks(args.quick, workdir, args.repeats, args.trials)
        tables = []
        for name in selected:
            print(f"[bench] {name} ...", flush=True)
            tables.append(benchmarks[name]())
            # Whole-process timings stretch with the machine's load; say how busy it was.
            tables[-1].notes.append(
                f"1-minute load average when this section ended: {os.getloadavg()[0]:.1f} "
                f"on {os.cpu_count()} cores."
            )
            print(tables[-1].markdown(), flush=True)
    # Written by `make bench-gpu` (on a GPU machine) and `make bench-launchers`: kept.
    kept = {h: read_section(args.output, h) for h in (gpu.SECTION, launchers.SECTION)}
    seconds = time.perf_counter() - tic
    if args.update and args.output.is_file():
        text = updated(args.output.read_text(), tables, command.strip(), seconds)
    else:
        text = render(tables, info, command.strip(), seconds)
    write_atomic(args.output, text)
    for heading, section in kept.items():
        if section is not None:
            write_section(args.output, heading, section)
    print(f"[bench] wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
