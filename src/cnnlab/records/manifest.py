"""The run manifest, ``run.json``: everything needed to know what a run was and to redo it.

A task writes it twice: with status ``running`` when the run starts (so a crash still leaves a
record) and with the final status at the end. Secrets are masked before anything is written
(see :mod:`cnnlab.secrets.mask`).
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import cnnlab
from cnnlab.machine import usable_cores
from cnnlab.records.git import git_state
from cnnlab.secrets.mask import scrub_secrets

__all__ = [
    "PACKAGES",
    "RunStatus",
    "build_manifest",
    "hardware_info",
    "package_versions",
    "platform_info",
]

# Distributions whose versions decide whether a run reproduces.
PACKAGES = (
    "torch",
    "pytorch-lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "optuna",
    "wandb",
    "kornia",
    "numpy",
)


class RunStatus(StrEnum):
    """Where a run stands; stored as its string value."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    PRUNED = "pruned"


def build_manifest(
    cfg: DictConfig | Mapping[str, Any],
    *,
    overrides: Sequence[str],
    command: Sequence[str],
    seed: int | None,
    start: datetime,
    end: datetime | None,
    status: str,
    timings: Mapping[str, Any],
    error: str | None,
    source_dir: str | os.PathLike[str] | None = None,
    starts: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Assemble the content of ``run.json``, with secrets masked.

    Args:
        cfg: The composed config; stored resolved as a plain dict (unresolved if an
            interpolation cannot be resolved here, with ``config_resolved: false``).
        overrides: The Hydra overrides of the run (``task`` overrides).
        end: When the run ended; ``None`` while running.
        timings: Measured times and rates, e.g. ``fit_s``, ``samples_per_s``.
        source_dir: Folder whose git repository is recorded (default: where the cnnlab package
            was imported from).
        starts: Each start of the run, oldest first (a resumed run has several): its
            ``start``, ``end``, ``status``, ``command``, ``overrides`` and ``error``. The
            top-level ``start``, ``command`` and ``overrides`` are those of the first.

    Returns:
        A JSON-serialisable dict. Secret-keyed values and the values of secret environment
        variables (``WANDB_API_KEY``) appear as ``"***"`` anywhere in it, the git diff included.

    Raises:
        ValueError: If ``status`` is not a :class:`RunStatus` value.
    """
    try:
        run_status = RunStatus(status)
    except ValueError:
        choices = [s.value for s in RunStatus]
        raise ValueError(f"run status must be one of {choices}, got {status!r}") from None
    config, resolved = _plain_config(cfg)
    manifest = {
        "cnnlab_version": cnnlab.__version__,
        "status": run_status.value,
        "seed": seed,
        "start": _iso(start),
        "end": _iso(end) if end is not None else None,
        "duration_s": (end - start).total_seconds() if end is not None else None,
        "timings": dict(timings),
        "error": error,
        "command": list(command),
        "overrides": list(overrides),
        "config_resolved": resolved,
        "config": config,
        "packages": _process_facts()[0],
        "platform": platform_info(),
        "hardware": hardware_info(),
        "git": git_state(source_dir) if source_dir is not None else _process_facts()[1],
        "starts": [dict(entry) for entry in starts or []],
    }
    return scrub_secrets(manifest)


def _process_facts() -> tuple[dict[str, str | None], dict[str, Any] | None]:
    """The package versions and the git state of cnnlab's own code, as this process sees them.

    Gathered once per process (copies returned): the code and packages a process runs are
    those it loaded, so the run records written at a run's start and end, and those of every
    trial of a sweep run in the sweep's process or in a joblib worker, share them. Asking git
    (five subprocesses) and the package metadata again for each record only cost time.
    """
    return copy.deepcopy(_facts_once())


@functools.cache
def _facts_once() -> tuple[dict[str, str | None], dict[str, Any] | None]:
    return package_versions(), git_state()


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Return the installed version of each distribution, ``None`` for one not installed."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def platform_info() -> dict[str, str]:
    """Return the Python version and implementation, the OS and the machine type."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": platform.system(),
        "os_release": platform.release(),
        "platform": platform.platform(),
        "machine": platform.machine(),
    }


def hardware_info() -> dict[str, Any]:
    """Return CPU count, usable CPUs, torch's threads, memory and the CUDA devices it sees."""
    usable = usable_cores()
    torch = sys.modules.get("torch")  # only a run that has imported torch has threads to tell
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "memory_bytes": _total_memory(),
        "cuda_devices": _cuda_devices(),
    }


def _plain_config(cfg: DictConfig | Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    node = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    try:
        return OmegaConf.to_container(node, resolve=True), True  # type: ignore[return-value]
    except OmegaConfBaseException:
        # e.g. ${hydra:...} outside a Hydra app: keep the record rather than lose the run.
        return OmegaConf.to_container(node, resolve=False), False  # type: ignore[return-value]


def _iso(moment: datetime) -> str:
    # A naive time is taken as local time and written with its UTC offset.
    return moment.astimezone().isoformat() if moment.tzinfo is None else moment.isoformat()


def _total_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _cuda_devices() -> list[str]:
    # Imported here: reading a run folder must not pay for torch.
    try:
        import torch
    except ImportError:
        return []
    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
