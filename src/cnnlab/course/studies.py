"""Run one sweep through the real ``cnnlab train -m`` and read its study back.

Every comparison of ``cnnlab experiments`` and ``cnnlab compare-search mode=train``
is a set of :class:`Sweep` objects: a study name in a SQLite file, and the
overrides of one ``cnnlab train -m`` command. :func:`run_sweep` launches that
command in a subprocess unless the study already holds its trials (studies are
resumable, so a re-run skips finished sweeps and completes unfinished ones), and
:func:`read_trials` reads the finished trials with Optuna's API: every number a
page or report shows comes from there.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CnnlabError

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial


@dataclass(frozen=True)
class Sweep:
    """One ``cnnlab train -m`` sweep, stored as study ``name`` in ``db``.

    Attributes:
        name: The study name (and the sweep folder's name).
        db: The SQLite file holding the study.
        overrides: The sweep's overrides (``experiment=...``, search space, budget).
        n_trials: How many finished trials the study must hold (a grid's size).
    """

    name: str
    db: Path
    overrides: tuple[str, ...]
    n_trials: int

    @property
    def storage(self) -> str:
        """The SQLAlchemy URL of the study's database (relative to the working folder)."""
        return f"sqlite:///{_shown(self.db)}"

    def argv(self) -> list[str]:
        """The full command line, with the storage, study name and sweep folder."""
        sweep_dir = _shown(self.db.parent / "sweeps" / self.name)
        return [
            "cnnlab",
            "train",
            "-m",
            *self.overrides,
            f"hydra.sweeper.n_trials={self.n_trials}",
            f"hydra.sweeper.storage={self.storage}",
            f"hydra.sweeper.study_name={self.name}",
            f"hydra.sweep.dir={sweep_dir}",
            # The page is the report: no per-sweep plots (they cost seconds each).
            "hydra.sweeper.report=false",
        ]

    def command(self) -> str:
        """The command as a reader would type it (shell-quoted)."""
        return shlex.join(self.argv())


def _shown(path: Path) -> Path:
    """``path`` relative to the working folder when inside it (commands a reader can rerun
    from the repository), else absolute."""
    absolute = path.resolve()
    try:
        return absolute.relative_to(Path.cwd())
    except ValueError:
        return absolute


@dataclass(frozen=True)
class TrialResult:
    """One finished trial: its searched parameters and its value (best val accuracy)."""

    number: int
    params: dict[str, Any]
    value: float
    # Wall-clock seconds from the trial's start to its end, as the study recorded them.
    seconds: float = 0.0


def create_folders(*folders: Path) -> None:
    """Create ``folders`` (and parents) before any sweep runs.

    Raises:
        CnnlabError: A folder cannot be made (a file in the way, no permission); names it.
    """
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CnnlabError(f"{folder}: cannot create: {exc}") from None


def _complete_trials(sweep: Sweep) -> list[FrozenTrial]:
    """The complete trials of ``sweep``'s study (none while there is no study yet)."""
    if not sweep.db.exists():
        return []
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=sweep.name, storage=sweep.storage)
    except KeyError:  # no study of that name in the file yet
        return []
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))


def run_sweep(sweep: Sweep, progress: Callable[[str], Any] = print) -> bool:
    """Run ``sweep`` unless its study already holds its trials; True when it ran.

    Raises:
        CnnlabError: The sweep's command failed (its last output lines are in the message).
    """
    done = len(_complete_trials(sweep))
    if done >= sweep.n_trials:
        progress(f"{sweep.name}: {done} trials already done, skipped")
        return False
    progress(f"{sweep.name}: running {sweep.n_trials - done} trials: {sweep.command()}")
    sweep.db.parent.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "cnnlab", *sweep.argv()[1:]]
    env = {**os.environ, "WANDB_MODE": os.environ.get("WANDB_MODE", "offline")}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or ["no output"]
        raise CnnlabError(f"sweep {sweep.name} failed (exit {proc.returncode}): {tail[0]}")
    return True


def read_trials(sweep: Sweep) -> list[TrialResult]:
    """The complete trials of ``sweep``'s study, in trial order."""
    results = []
    for t in sorted(_complete_trials(sweep), key=lambda t: t.number):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds()  # type: ignore[operator]
        results.append(TrialResult(t.number, dict(t.params), float(t.value), seconds))  # type: ignore[arg-type]
    return results
