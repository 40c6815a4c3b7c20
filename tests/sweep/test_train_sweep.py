"""Sweeps of the real ``cnnlab train`` on digits: configs compose, trials prune and report."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from optuna.trial import TrialState

from cnnlab.config import config_dir

SEARCHES = sorted(p.stem for p in (config_dir() / "hparams_search").glob("*.yaml"))
EXPERIMENTS = [
    "norm_comparison",
    "dropout_sweep",
    "init_comparison",
    "augmentation_comparison",
    "optimizer_lr",
]


def _compose(override: str) -> OmegaConf:
    if (
        "model: searchable" in _text(override)
        and not (config_dir() / "model/searchable.yaml").exists()
    ):
        pytest.skip("conf/model/searchable.yaml is not in the tree yet")
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[override], return_hydra_config=True)


def _text(override: str) -> str:
    group, name = override.split("=")
    return (config_dir() / group / f"{name}.yaml").read_text()


@pytest.mark.parametrize(
    "override", [f"hparams_search={n}" for n in SEARCHES] + [f"experiment={n}" for n in EXPERIMENTS]
)
def test_search_configs_compose_into_a_valid_space(override: str) -> None:
    from cnnlab.sweep.space import grid_values, parse_search_space

    cfg = _compose(override)
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("CnnlabOptunaSweeper")
    params = OmegaConf.to_container(sweeper.params, resolve=True)
    space = parse_search_space(params, [])
    assert space.distributions and not space.fixed
    directions = (
        OmegaConf.to_container(sweeper.direction, resolve=True)
        if OmegaConf.is_list(sweeper.direction)
        else [sweeper.direction]
    )
    assert set(directions) <= {"maximize", "minimize"}
    if sweeper.sampler._target_.endswith("GridSampler"):
        for name, dist in space.distributions.items():
            assert grid_values(name, dist)


@pytest.mark.slow
def test_tpe_hyperband_sweep_of_cnnlab_train(tmp_path: Path, run_subprocess) -> None:
    proc = run_subprocess(
        "train",
        "-m",
        "hparams_search=tpe_hyperband",
        "logger=none",
        "trainer.max_epochs=3",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=2",
        "test=false",
        "hydra.sweeper.n_trials=5",
        "hydra.sweeper.sampler.n_startup_trials=2",
        "callbacks.early_stopping=null",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = tmp_path / "outputs"
    (sweep_dir,) = (outputs / "multiruns" / "train").iterdir()
    info = json.loads((sweep_dir / "sweep.json").read_text())
    assert info["storage"] == f"sqlite:///{outputs / 'optuna.db'}"
    study = optuna.load_study(study_name=info["study_name"], storage=info["storage"])
    assert len(study.trials) == 5
    states = {t.state for t in study.trials}
    assert states <= {TrialState.COMPLETE, TrialState.PRUNED}
    for trial in study.trials:
        run = json.loads((sweep_dir / str(trial.user_attrs["job_num"]) / "run.json").read_text())
        assert run["status"] == ("pruned" if trial.state == TrialState.PRUNED else "completed")
        if trial.state == TrialState.COMPLETE:
            assert trial.value == pytest.approx(max(trial.intermediate_values.values()))
            assert len(trial.intermediate_values) == 3
        else:
            assert len(trial.intermediate_values) < 3
    assert (sweep_dir / "report.md").exists() and (sweep_dir / "best.yaml").exists()


@pytest.mark.slow
def test_pruning_message_quotes_the_epoch_and_value_as_the_epoch_line(
    tmp_path: Path, run_subprocess
) -> None:
    # bootstrap_count above the trials run: successive halving prunes at its first rung
    # (step 1, the second epoch), so the one trial is pruned there.
    proc = run_subprocess(
        "train",
        "-m",
        "hparams_search=tpe",
        "debug=limit",
        "logger=none",
        "test=false",
        "trainer.max_epochs=3",
        "callbacks.early_stopping=null",
        "hydra.sweeper.n_trials=1",
        "hydra/sweeper/pruner=successive_halving",
        "hydra.sweeper.pruner.min_resource=1",
        "hydra.sweeper.pruner.bootstrap_count=5",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    info = json.loads((sweep_dir / "sweep.json").read_text())
    (trial,) = optuna.load_study(study_name=info["study_name"], storage=info["storage"]).trials
    assert trial.state == TrialState.PRUNED
    step = max(trial.intermediate_values)
    value = trial.intermediate_values[step]
    # The epoch line's wording: "epoch 2/3  ... val/acc=0.1016 ..." (1-based, 4 digits).
    shown = proc.stdout + proc.stderr
    assert f"trial 0 pruned after epoch {step + 1}/3: val/acc={value:.4g}\n" in shown
    earlier = [line for line in shown.splitlines() if f"epoch {step}/3  " in line]
    assert earlier and f"val/acc={trial.intermediate_values[step - 1]:.4g}" in earlier[0]
