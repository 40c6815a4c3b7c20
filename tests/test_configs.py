"""Every option of every config group composes, and the single sources of truth hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from cnnlab.config import config_dir

CONF = config_dir()
GROUPS = sorted(
    p.name for p in CONF.iterdir() if p.is_dir() and p.name not in {"hydra", "paths", "local"}
)
OPTIONS = [(g, p.stem) for g in GROUPS for p in sorted((CONF / g).glob("*.yaml"))]
NEEDS = {"data/imagefolder": ["data.source.root=/tmp/images", "data.num_classes=3"]}


def _compose(*overrides: str, config: str = "train"):
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config, overrides=list(overrides))


def test_the_groups_the_design_names_exist() -> None:
    expected = {
        "data",
        "model",
        "norm",
        "activation",
        "init",
        "dropout",
        "optimizer",
        "scheduler",
        "augmentation",
        "loss",
        "trainer",
        "logger",
        "callbacks",
        "debug",
        "experiment",
    }
    assert expected <= set(GROUPS)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}/{o}" for g, o in OPTIONS])
def test_every_option_composes_and_resolves(group: str, option: str) -> None:
    extra = NEEDS.get(f"{group}/{option}", [])
    paths = ["paths.run_dir=/tmp/run", "paths.data_dir=/tmp/data", "paths.output_root=/tmp/out"]
    cfg = _compose(f"{group}={option}", *extra, *paths)
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert isinstance(container, dict)


def test_class_count_and_channels_flow_from_data_into_the_model() -> None:
    cfg = _compose("data=cifar100", "model=simple_cnn")
    assert cfg.model.num_classes == cfg.data.num_classes == 100
    assert cfg.model.in_channels == cfg.data.in_channels == 3
    assert cfg.model.image_size == cfg.data.image_size


def test_the_monitored_metric_is_written_once() -> None:
    cfg = _compose("monitor.metric=val/loss", "monitor.mode=min")
    callbacks = cfg.callbacks
    assert callbacks.model_checkpoint.monitor == callbacks.early_stopping.monitor == "val/loss"
    assert callbacks.model_checkpoint.mode == callbacks.early_stopping.mode == "min"
    assert cfg.optimized_metric == "val/loss_best"
    text = "\n".join(p.read_text() for p in CONF.rglob("*.yaml"))
    assert text.count("val/acc") == 1  # only conf/train.yaml names it


def test_experiments_are_short_override_lists() -> None:
    for path in (CONF / "experiment").glob("*.yaml"):
        assert path.read_text().startswith("# @package _global_")
        assert len(path.read_text().splitlines()) < 40, path


def test_eval_and_predict_configs_require_a_checkpoint() -> None:
    for name in ("eval", "predict"):
        cfg = _compose(config=name)
        assert OmegaConf.is_missing(cfg, "ckpt_path")


def test_wheel_ships_the_config_tree() -> None:
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"conf" = "cnnlab/conf"' in pyproject


def test_paths_resolve_outside_a_hydra_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """conf/paths needs no Hydra config set: the sweeper, the validation before a run and
    Hydra's own sweep folder resolve it before any job has one."""
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.delenv("CNNLAB_OUTPUTS")
    monkeypatch.delenv("CNNLAB_DATA")
    monkeypatch.chdir(tmp_path)
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert not HydraConfig.initialized()
    assert cfg.paths.output_root == f"{tmp_path}/outputs"
    assert cfg.paths.data_dir == f"{tmp_path}/data"
    assert str(cfg.hydra.sweep.dir).startswith(f"{tmp_path}/outputs/multiruns/train/")


def test_the_tasks_of_one_slurm_step_share_a_run_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    from cnnlab.config import run_stamp

    for key in ("SLURM_STEP_NUM_TASKS", "SLURM_STEP_ID", "SLURM_JOB_ID"):
        monkeypatch.delenv(key, raising=False)
    assert len(run_stamp("%Y-%m-%d_%H-%M-%S_%f")) == len("2026-01-01_00-00-00_000000")
    # One task (a trial's job, a worker of an array): its own time-stamped folder.
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "1")
    assert run_stamp("%Y").isdigit()
    # Every task of `srun --ntasks-per-node=2 cnnlab train ...`: one folder.
    monkeypatch.setenv("SLURM_STEP_NUM_TASKS", "2")
    assert run_stamp("%Y") == "slurm-41.0"
