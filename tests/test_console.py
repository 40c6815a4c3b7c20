"""What a newcomer sees: a quiet console, task help that lists the task's own groups,
and data loader workers that fit the machine."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
import yaml
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from cnnlab.cli import TASKS
from cnnlab.config import config_dir
from cnnlab.console import quiet_console

# The lines every run used to print that say nothing about the run.
NOISE = (
    "will be deleted",
    "Total FLOPs",
    "litlogger",
    "Using categorical units",
    "Skipped telling trial",
    "Trainer already configured with model summary",
    "is smaller than the logging interval",
    "LeafSpec",
)


def test_plain_quick_train_prints_no_noise(run_subprocess) -> None:
    result = run_subprocess("train", "debug=limit")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Trainable params" in output  # the model summary itself is still there
    assert "run folder:" in output
    assert [line for line in output.splitlines() if any(n in line for n in NOISE)] == []


def test_matplotlib_categorical_axis_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    quiet_console()
    with caplog.at_level(logging.INFO):
        figure, axes = plt.subplots()
        axes.plot(["1", "2", "3"], [1.0, 2.0, 3.0])  # strings that parse as numbers
        plt.close(figure)
    assert "categorical units" not in caplog.text


def _defaults_groups(task: str) -> list[str]:
    conf = yaml.safe_load((config_dir() / f"{TASKS[task][1]}.yaml").read_text())
    keys = [next(iter(entry)) for entry in conf["defaults"] if isinstance(entry, dict)]
    return [key for key in keys if key not in ("hydra", "optional local")]


def test_predict_help_lists_only_its_groups(run_subprocess) -> None:
    result = run_subprocess("predict", "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    group_lines = [line for line in lines if line.startswith("  ") and ":" in line]
    assert [line.split(":")[0].strip() for line in group_lines] == ["paths"]
    for unused in ("model:", "optimizer:", "loss:", "norm:", "hparams_search:"):
        assert unused not in result.stdout
    assert "ckpt_path" in result.stdout and "input" in result.stdout


@pytest.mark.parametrize("task", [name for name, (_, config) in TASKS.items() if config])
def test_each_task_help_has_one_line_per_group_it_uses(run_subprocess, task: str) -> None:
    result = run_subprocess(task, "--help")
    assert result.returncode == 0, result.stderr
    groups = _defaults_groups(task)
    lines = result.stdout.splitlines()
    listed = [line.split(":")[0].strip() for line in lines if line.startswith("  ")]
    assert listed == groups
    all_groups = {p.name for p in config_dir().iterdir() if p.is_dir()} - {"hydra", "local"}
    for group in all_groups - set(groups):
        assert f"  {group}:" not in result.stdout


def test_imagefolder_default_workers_never_exceed_the_cores(tmp_path: Path) -> None:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose(
            "train",
            overrides=["data=imagefolder", f"data.source.root={tmp_path}", "data.num_classes=3"],
        )
    assert cfg.data.num_workers == "auto"
    data = instantiate(cfg.data)
    cores = len(os.sched_getaffinity(0))
    assert 1 <= data.num_workers <= min(4, cores)
    assert data.num_workers == min(4, cores)


def test_bad_num_workers_names_the_key(run_subprocess, tmp_path: Path) -> None:
    result = run_subprocess(
        "train",
        "data=imagefolder",
        f"data.source.root={tmp_path}",
        "data.num_classes=3",
        "data.num_workers=many",
        "logger=none",
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "data.num_workers" in result.stderr.strip().splitlines()[-1]
