"""``make bench-launchers``: per launcher, the time from a trial's submission to its first step.

Usage::

    python benchmarks/launchers.py                      # basic, joblib, submitit_local, slurm
    python benchmarks/launchers.py --launchers basic,slurm --trials 3 --output /tmp/B.md

Each launcher runs the same small sweep (``n_trials`` trials one at a time, LeNet-5 on the
digits, ``debug=limit``). A trial's submission is its ``datetime_start`` in the study (set when
the sweeper asks for it, right before it launches it); its first step is the wall time the
:class:`FirstStep` callback writes at the first training batch. What lies between: the
launcher's own hand-over, a new process's imports (joblib, submitit, SLURM), the scheduler
(SLURM), and building the data, network and Trainer. ``slurm`` needs a cluster (``make
cluster-up``); without one its row says so. The section is rewritten in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

# `python benchmarks/launchers.py` puts benchmarks/ on the path; the package lives one level up.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import REPO, Table, median, write_section

SECTION = "## 9. Launchers: from a trial's submission to its first training step"
LAUNCHERS = {
    "basic": [],
    "joblib": ["hydra/launcher=joblib"],
    "submitit_local": ["hydra/launcher=submitit_local"],
    "slurm": ["hydra/launcher=slurm"],
}
SWEEP = [
    "hparams_search=random",
    "debug=limit",
    "logger=none",
    "test=false",
    "trainer=cpu",
    "hydra.sweeper.report=false",
    "+callbacks.first_step._target_=benchmarks.launchers.FirstStep",
]
MARK = "first_step.json"


class FirstStep(pl.Callback):
    """Write the wall time of the first training batch into the run folder."""

    def __init__(self) -> None:
        self.done = False

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self.done or not trainer.is_global_zero:
            return
        self.done = True
        Path(trainer.default_root_dir, MARK).write_text(json.dumps({"time": time.time()}))


def measure(name: str, n_trials: int, workdir: Path) -> list[float]:
    """Seconds from submission to first step of each trial of one sweep through ``name``."""
    import optuna

    root = workdir / name
    root.mkdir(parents=True)
    env = {
        **os.environ,
        "CNNLAB_OUTPUTS": str(root / "outputs"),
        "WANDB_MODE": "offline",
        # The jobs import the callback from this folder (SLURM jobs get this environment).
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    args = [*SWEEP, *LAUNCHERS[name], f"hydra.sweeper.n_trials={n_trials}"]
    proc = subprocess.run(
        [sys.executable, "-m", "cnnlab", "train", "-m", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: exit {proc.returncode}: {proc.stderr[-1500:]}")
    url = f"sqlite:///{root / 'outputs' / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(url)
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    seconds = []
    for trial in sorted(study.trials, key=lambda t: t.number):
        mark = Path(trial.user_attrs["run_dir"]) / MARK
        assert trial.datetime_start is not None
        first = json.loads(mark.read_text())["time"]
        seconds.append(first - trial.datetime_start.timestamp())
    return seconds


def cluster_answers() -> bool:
    """Whether a SLURM controller answers (``sinfo``)."""
    if shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo"], capture_output=True, check=False).returncode == 0


def table(names: list[str], n_trials: int, workdir: Path) -> Table:
    """The section: one row per launcher."""
    result = Table(
        title=SECTION.removeprefix("## "),
        intro=(
            f"A sweep of {n_trials} trials, one at a time, through each launcher (LeNet-5 on "
            "the digits, `debug=limit`, CPU). Seconds from a trial's submission (its "
            "`datetime_start` in the study, set right before the launch) to its first "
            "training batch (a callback's wall time). The first trial and the median of the "
            "others are shown apart: the basic launcher runs trials in the sweep's own "
            "process, so after the first its trials pay no imports (as each trial after the "
            "first of an array-of-workers job, where each SLURM job is one `cnnlab train -m` "
            "worker running many trials). The other launchers start a new process per trial "
            "(joblib keeps its worker processes between batches); SLURM adds its scheduling."
        ),
        columns=["launcher", "first trial s", "later trials s (median)", "trials"],
    )
    for name in names:
        if name == "slurm" and not cluster_answers():
            result.rows.append([name, "no cluster (make cluster-up)", "", "0"])
            continue
        seconds = measure(name, n_trials, workdir)
        later = f"{median(seconds[1:]):.1f}" if len(seconds) > 1 else ""
        result.rows.append([f"`{name}`", f"{seconds[0]:.1f}", later, str(len(seconds))])
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    result.notes.append(f"Load average at the end (1, 5, 15 min): {load}; {os.cpu_count()} cores.")
    result.commands = [
        f"cnnlab train -m {' '.join(SWEEP)} {' '.join(LAUNCHERS[n] or ['(basic)'])} "
        f"hydra.sweeper.n_trials={n_trials}"
        for n in names
    ]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launchers", default=",".join(LAUNCHERS))
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--output", type=Path, default=REPO / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    names = [n for n in args.launchers.split(",") if n]
    unknown = sorted(set(names) - set(LAUNCHERS))
    if unknown:
        parser.error(f"unknown launchers {unknown}; known: {', '.join(LAUNCHERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        section = table(names, args.trials, Path(tmp)).markdown()
    write_section(args.output, SECTION, section)
    print(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
