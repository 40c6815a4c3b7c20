"""Trials as SLURM jobs: settings that fit the cluster, checked before any trial is asked.

``hydra/launcher=slurm`` (hydra-submitit-launcher) submits each trial with ``sbatch``. What a
small cluster does with a request it cannot meet is silent or costly: a GPU request on a
cluster without GPUs is rejected at submission (after the trial was asked, so it counts), and
more CPUs or memory than any node has leaves the job ``PD (PartitionConfig)`` for ever. So,
before the sweep asks its first trial, :func:`fit_launcher`

- fills the settings left ``null``: ``gpus_per_node`` follows the trainer (0 for a CPU
  trainer; ``trainer.devices`` for a GPU one; ``accelerator: auto`` takes the partition's
  GPUs if it has any), ``cpus_per_task`` what a trial uses (its loader workers, plus the
  training process and a second torch thread, at most the partition's largest node);
- checks partition, ``gres``, GPUs, CPUs and memory against ``sinfo`` and raises a
  :class:`~cnnlab.errors.ConfigError` naming the launcher setting;
- installs :class:`JobStates`, which reads job states every 30 s at most (submitit's own
  waits up to 10 min between reads) and, where ``sacct`` fails (a cluster without
  accounting), warns once and reads them from ``squeue`` instead, so a cancelled job ends
  its trial instead of being waited on for ever.
"""

from __future__ import annotations

import logging
import re
import subprocess
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf
from submitit.slurm.slurm import SlurmInfoWatcher

from cnnlab.errors import ConfigError

log = logging.getLogger(__name__)

KEY = "hydra.launcher"
# How long a job may be missing from squeue (sacct failing) before it counts as lost.
LOST_AFTER_S = 30.0
# At most this long between two reads of the jobs' states.
POLL_S = 30


@dataclass(frozen=True)
class Node:
    """One node of one partition, as ``sinfo -N`` lists it."""

    partition: str
    default: bool
    cpus: int
    memory_mb: int
    gres: tuple[str, ...]

    def gres_count(self, name: str) -> int:
        """How many of the generic resource ``name`` (e.g. ``gpu``) the node has."""
        total = 0
        for item in self.gres:
            parts = item.split("(")[0].split(":")
            if parts[0] == name:
                total += int(parts[-1]) if len(parts) > 1 and parts[-1].isdigit() else 1
        return total


def read_nodes() -> list[Node]:
    """The cluster's nodes per partition, from ``sinfo``.

    Raises:
        ConfigError: ``sinfo`` is missing or the controller does not answer.
    """
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--Node", "--format=%P|%c|%m|%G"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError("hydra/launcher=slurm", f"cannot run sinfo: {exc}") from None
    if proc.returncode != 0:
        error = proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]
        raise ConfigError("hydra/launcher=slurm", f"sinfo failed: {error[0]}")
    return [parse_node(line) for line in proc.stdout.splitlines() if line.strip()]


def parse_node(line: str) -> Node:
    """One line of ``sinfo --Node --format=%P|%c|%m|%G`` (the default partition has a ``*``)."""
    partition, cpus, memory, gres = [*line.split("|"), "", "", ""][:4]
    items = tuple(g for g in re.split(r",(?![^(]*\))", gres) if g and g != "(null)")
    return Node(
        partition=partition.rstrip("*"),
        default=partition.endswith("*"),
        cpus=int(cpus or 0),
        memory_mb=int(re.sub(r"\D", "", memory) or 0),
        gres=items,
    )


def fit_launcher(launcher: MutableMapping[str, Any], config: Any, nodes: list[Node]) -> None:
    """Fill the launcher's ``null`` settings from the trainer and check all against ``nodes``.

    ``launcher`` (the ``hydra.launcher`` node) is changed in place, before the launcher is
    built from it; ``config`` is the whole composed config (its trainer and data nodes). A
    setting no node of the partition can meet is a ``ConfigError`` naming it.
    """
    partition, members = _partition(launcher.get("partition"), nodes)
    if launcher.get("gpus_per_node") is None:
        launcher["gpus_per_node"] = trial_gpus(config, max(n.gres_count("gpu") for n in members))
    if launcher.get("cpus_per_task") is None:
        launcher["cpus_per_task"] = trial_cpus(config, max(n.cpus for n in members))
    _check_fits(launcher, partition, members)


def _partition(name: Any, nodes: list[Node]) -> tuple[str, list[Node]]:
    """The partition a job goes to (the default one where ``name`` is null) and its nodes."""
    names = sorted({n.partition for n in nodes})
    if name is None:
        defaults = [n.partition for n in nodes if n.default]
        if not defaults:
            raise ConfigError(
                f"{KEY}.partition", f"null, and the cluster has no default partition: {names}"
            )
        name = defaults[0]
    members = [n for n in nodes if n.partition == str(name)]
    if not members:
        raise ConfigError(
            f"{KEY}.partition={name}", f"no such partition; the cluster has {', '.join(names)}"
        )
    return str(name), members


def trial_gpus(config: Any, partition_gpus: int) -> int:
    """GPUs per trial from the trainer: 0 on the CPU, ``trainer.devices`` on GPUs."""
    accelerator = str(OmegaConf.select(config, "trainer.accelerator", default="auto"))
    devices = OmegaConf.select(config, "trainer.devices", default=1)
    if accelerator == "cpu":
        return 0
    if accelerator == "auto" and partition_gpus == 0:
        return 0
    if isinstance(devices, int) and devices > 0:
        return devices
    if OmegaConf.is_list(devices) or isinstance(devices, list | tuple):
        return len(devices)
    return max(partition_gpus, 1)  # -1 or "auto": every GPU of a node


def trial_cpus(config: Any, largest_node: int) -> int:
    """CPUs per trial: the loader workers, the training process and a second torch thread."""
    workers = OmegaConf.select(config, "data.num_workers", default=0)
    workers = workers if isinstance(workers, int) else 2  # "auto": a couple
    return max(1, min(largest_node, workers + 2))


def _check_fits(launcher: Mapping[str, Any], partition: str, nodes: list[Node]) -> None:
    """Raise where no node of the partition offers what one trial's job asks for."""
    tasks = int(launcher.get("tasks_per_node") or 1)
    cpus = launcher.get("cpus_per_task")
    largest = max(n.cpus for n in nodes)
    if cpus is not None and int(cpus) * tasks > largest:
        raise ConfigError(
            f"{KEY}.cpus_per_task={cpus}",
            f"the largest node of partition {partition} has {largest} CPUs"
            + (f" ({tasks} tasks per node)" if tasks > 1 else ""),
        )
    mem_gb = launcher.get("mem_gb")
    memory = max(n.memory_mb for n in nodes)
    if mem_gb is not None and float(mem_gb) * 1024 > memory:
        raise ConfigError(
            f"{KEY}.mem_gb={mem_gb}",
            f"the largest node of partition {partition} has {memory / 1024:.1f} GB",
        )
    gpus = launcher.get("gpus_per_node")
    most = max(n.gres_count("gpu") for n in nodes)
    if gpus and int(gpus) > most:
        raise ConfigError(
            f"{KEY}.gpus_per_node={gpus}",
            f"partition {partition} has {f'at most {most} GPUs per node' if most else 'no GPUs'}"
            " (trainer=cpu, or hydra.launcher.gpus_per_node=0, trains on CPUs)",
        )
    gres = launcher.get("gres")
    for item in str(gres).split(",") if gres else []:
        name, _, count = item.partition(":")
        wanted = int(count.split(":")[-1]) if count.split(":")[-1].isdigit() else 1
        if max(n.gres_count(name) for n in nodes) < wanted:
            offered = sorted({g for n in nodes for g in n.gres}) or ["none"]
            raise ConfigError(
                f"{KEY}.gres={gres}",
                f"partition {partition} offers no {item} (its gres: {', '.join(offered)})",
            )


def install_job_states() -> None:
    """Make submitit read SLURM job states through :class:`JobStates` (once per process).

    submitit keeps one shared state reader as the ``watcher`` attribute of its ``SlurmJob``
    class; the launcher offers no setting for it.
    """
    from submitit.slurm.slurm import SlurmJob

    if not isinstance(SlurmJob.watcher, JobStates):
        SlurmJob.watcher = JobStates()


class JobStates(SlurmInfoWatcher):
    """submitit's SLURM state reader, read every ``POLL_S`` at most, with a fallback to squeue.

    Without accounting (no slurmdbd) every ``sacct`` fails and submitit would keep a
    cancelled job's last state (RUNNING) for ever. After the first failure this reader warns
    once and asks ``squeue --states=all`` instead: it shows a cancelled job as CANCELLED for
    the controller's ``MinJobAge``; a job missing from it for ``LOST_AFTER_S`` is LOST.
    Either state ends the wait, and the trial is recorded FAIL.
    """

    def __init__(self) -> None:
        super().__init__(delay_s=POLL_S)
        self.accounting = True
        self._missing_since: dict[str, float] = {}
        self._listed: set[str] = set()

    def _make_command(self) -> list[str] | None:
        command = super()._make_command()
        if command is None or self.accounting:
            return command
        ids = sorted({x.split("_")[0] for x in self._registered - self._finished})
        jobs = ",".join(ids)
        return ["squeue", "--noheader", "--states=all", "--format=%i|%T|%N", f"--jobs={jobs}"]

    def update(self) -> None:
        """Read the states; switch to squeue (one warning) the first time sacct fails."""
        command = self._make_command()
        if command is None:
            return
        self._num_calls += 1
        try:
            output = subprocess.run(command, capture_output=True, timeout=60, check=True).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            if self.accounting:
                self.accounting = False
                log.warning(
                    "sacct fails (%s): no SLURM accounting? Job states now come from squeue; "
                    "a job that leaves the queue without a result ends its trial as FAIL",
                    _first_line(exc),
                )
                return self.update()
            output = b""
        else:
            if not self.accounting:
                output = b"JobID|State|NodeList\n" + output
        self._info_dict.update(self.read_info(output))
        if not self.accounting:
            self._mark_lost()
        self._last_status_check = time.time()
        for job_id in self._registered - self._finished:
            if self.is_done(job_id, mode="cache"):
                self._finished.add(job_id)

    def _mark_lost(self) -> None:
        """A job squeue no longer lists (past MinJobAge, or purged) for a while is LOST."""
        now = time.time()
        for job_id in self._registered - self._finished:
            state = self._info_dict.get(job_id, {}).get("State")
            if state in (None, "RUNNING", "PENDING", "COMPLETING") and job_id not in self._listed:
                since = self._missing_since.setdefault(job_id, now)
                if now - since >= LOST_AFTER_S:
                    self._info_dict[job_id] = {"State": "LOST", "NodeList": ""}
            else:
                self._missing_since.pop(job_id, None)

    def read_info(self, string: bytes | str) -> dict[str, dict[str, str]]:
        """Parse sacct's (or the relabelled squeue's) table; remember which jobs it listed."""
        info: dict[str, dict[str, str]] = super().read_info(string)
        self._listed = set(info)
        return info


def _first_line(exc: BaseException) -> str:
    """The last line of a failed command's stderr (sacct's own reason), else the error."""
    stderr = getattr(exc, "stderr", None)
    text = stderr.decode(errors="replace") if isinstance(stderr, bytes) else ""
    return (text.strip().splitlines() or [str(exc)])[-1]
