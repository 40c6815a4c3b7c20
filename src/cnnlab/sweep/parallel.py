"""Trials running side by side on one machine share its cores.

Two training processes that each run torch with a thread per core make small
models many times slower: their OpenMP threads wait on each other. The sweeper
tells every job how many trials its launcher runs at once on the job's machine
(``sweep.parallel_jobs``); the job then gives torch its share of the cores.

=========================  ============================================
launcher                   trials at once on one machine
=========================  ============================================
basic                      1 (one after the other)
joblib                     the batch, at most ``hydra.launcher.n_jobs``
submitit_local             the batch
submitit_slurm             1 (each job has its own allocation)
=========================  ============================================

The batch is the sweeper's ``n_jobs`` (fewer when the sweep plans fewer trials).

The sweeper keeps ``n_jobs`` trials in flight with one launch per trial
(:func:`concurrent_launches`), except through a launcher that runs its jobs inside the
sweep's own process (basic): those launch one at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from omegaconf import OmegaConf

from cnnlab.machine import usable_cores

log = logging.getLogger(__name__)

PARALLEL_KEY = "sweep.parallel_jobs"


def jobs_at_once(launcher: Mapping[str, Any], batch: int) -> int:
    """How many trials of a batch of ``batch`` (the sweeper's ``n_jobs`` or fewer) the
    launcher (the ``hydra.launcher`` node) runs at once on one machine."""
    target = str(launcher.get("_target_", ""))
    if target.endswith(("BasicLauncher", "SlurmLauncher")):
        return 1
    if target.endswith("JoblibLauncher"):
        # joblib's n_jobs: -1 is every core, -2 all but one, and so on.
        n_jobs = int(launcher.get("n_jobs") or -1)
        workers = n_jobs if n_jobs > 0 else usable_cores() + 1 + n_jobs
        return max(1, min(batch, workers))
    return max(1, batch)  # submitit's local launcher, and any other, start the batch at once


def concurrent_launches(launcher: Mapping[str, Any], n_jobs: int) -> int:
    """How many one-trial launches the sweeper keeps in flight at once.

    Each runs in its own thread, so that a worker freed by a short trial takes the next
    one at once instead of waiting for the slowest trial of a batch. Hydra's basic
    launcher runs a job inside the sweep's process (its working folder, logging and
    Hydra's global config): two at once would share them, so it gets one.
    """
    if str(launcher.get("_target_", "")).endswith("BasicLauncher"):
        return 1
    return max(1, n_jobs)


def parallel_override(launcher: Mapping[str, Any], batch: int) -> str:
    """The override that tells a job how many trials run beside it (see :func:`share_cores`)."""
    return f"++{PARALLEL_KEY}={jobs_at_once(launcher, batch)}"


def share_cores(cfg: Any) -> int | None:
    """Give torch this job's share of the cores when trials run side by side.

    Reads ``sweep.parallel_jobs`` (set by cnnlab's sweeper) from the job's config ``cfg``.
    Returns the number of torch threads set, or None when the job runs alone and torch
    keeps its own choice.
    """
    parallel = OmegaConf.select(cfg, PARALLEL_KEY, default=None)
    if parallel is None or int(parallel) <= 1:
        return None
    import torch

    threads = max(1, usable_cores() // int(parallel))
    torch.set_num_threads(threads)
    log.info("torch threads: %d (%d trials at once on %d cores)", threads, parallel, usable_cores())
    return threads
