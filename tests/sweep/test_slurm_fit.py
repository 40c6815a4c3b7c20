"""The SLURM launcher's settings fitted to the trainer and checked against the cluster's nodes.

The nodes are what ``sinfo`` lists (:func:`cnnlab.sweeper.slurm.read_nodes`); the commands
on a real cluster are in ``test_slurm_cluster.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from omegaconf import OmegaConf

pytest.importorskip("submitit", reason="pip install cnnlab[cluster]")

from cnnlab.errors import ConfigError
from cnnlab.sweeper.slurm import Node, fit_launcher, parse_node

CPU_NODE = Node("debug", True, cpus=2, memory_mb=20489, gres=())
GPU_NODE = Node("gpu", False, cpus=32, memory_mb=256000, gres=("gpu:a100:4(S:0-1)",))


def _fit(launcher: dict[str, Any], trainer: dict[str, Any], workers: Any = 0) -> dict[str, Any]:
    config = OmegaConf.create({"trainer": trainer, "data": {"num_workers": workers}})
    fitted = {"gpus_per_node": None, "cpus_per_task": None, "partition": None, **launcher}
    fit_launcher(fitted, config, [CPU_NODE, GPU_NODE])
    return fitted


def test_sinfo_lines_are_read() -> None:
    assert parse_node("debug*|2|20489|(null)") == CPU_NODE
    gpu = parse_node("gpu|32|256000|gpu:a100:4(S:0-1),shard:8")
    assert gpu.gres_count("gpu") == 4 and gpu.gres_count("shard") == 8 and not gpu.default


@pytest.mark.parametrize(
    ("partition", "trainer", "gpus"),
    [
        (None, {"accelerator": "cpu", "devices": 1}, 0),
        (None, {"accelerator": "auto", "devices": 1}, 0),  # the default partition has none
        ("gpu", {"accelerator": "auto", "devices": 1}, 1),
        ("gpu", {"accelerator": "gpu", "devices": 2}, 2),
        ("gpu", {"accelerator": "gpu", "devices": -1}, 4),
        ("gpu", {"accelerator": "cpu", "devices": 1}, 0),
    ],
)
def test_gpus_follow_the_trainer(partition: str | None, trainer: dict[str, Any], gpus: int) -> None:
    assert _fit({"partition": partition}, trainer)["gpus_per_node"] == gpus


def test_cpus_follow_what_a_trial_uses() -> None:
    cpu = {"accelerator": "cpu", "devices": 1}
    assert _fit({}, cpu)["cpus_per_task"] == 2  # the training process and a second thread
    assert _fit({}, cpu, workers=4)["cpus_per_task"] == 2  # at most the node's CPUs
    assert _fit({"partition": "gpu"}, cpu, workers=4)["cpus_per_task"] == 6
    assert _fit({"cpus_per_task": 1}, cpu)["cpus_per_task"] == 1  # a set value stays


@pytest.mark.parametrize(
    ("launcher", "message"),
    [
        ({"partition": "big"}, "hydra.launcher.partition=big: no such partition; the cluster has"),
        ({"cpus_per_task": 8}, "cpus_per_task=8: the largest node of partition debug has 2 CPUs"),
        ({"cpus_per_task": 2, "tasks_per_node": 2}, "has 2 CPUs (2 tasks per node)"),
        ({"mem_gb": 64}, "hydra.launcher.mem_gb=64: the largest node of partition debug has 20"),
        ({"gpus_per_node": 1}, "hydra.launcher.gpus_per_node=1: partition debug has no GPUs"),
        ({"partition": "gpu", "gpus_per_node": 8}, "partition gpu has at most 4 GPUs per node"),
        ({"gres": "gpu:1"}, "hydra.launcher.gres=gpu:1: partition debug offers no gpu:1"),
    ],
)
def test_settings_no_node_offers_name_the_setting(launcher: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _fit(launcher, {"accelerator": "cpu", "devices": 1})


def test_what_the_gpu_partition_offers_fits() -> None:
    fitted = _fit({"partition": "gpu", "gres": "gpu:a100:2", "mem_gb": 200}, {"accelerator": "gpu"})
    assert fitted["gpus_per_node"] == 1
