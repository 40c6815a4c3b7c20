"""Parity with hydra-optuna-sweeper: what a user switching from it gets from cnnlab_optuna.

The official plugin's sweep returns None, writes ``optimization_results.yaml`` into the
sweep folder (the best trial, or the Pareto front of several objectives) and names the
removed ``motpe`` sampler in its error. The search-space grammar is in test_space.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest
from omegaconf import OmegaConf
from optuna.distributions import IntDistribution

from cnnlab.config import config_dir
from cnnlab.sweeper.results import RESULTS_FILE, optimization_results
from tests.conftest import QUICK

QUIET = [*QUICK, "logger=none", "test=false"]


def _study(outputs: Path) -> optuna.Study:
    storage = f"sqlite:///{outputs / 'optuna.db'}"
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _sweep_dir(outputs: Path) -> Path:
    (sweep_dir,) = (outputs / "multiruns" / "train").iterdir()
    return sweep_dir


def test_sweep_returns_none_and_writes_the_best_trial(tmp_path: Path) -> None:
    """Hydra's own multirun entry point, on cnnlab's config tree and its train task.

    ``seed=range(1,3)`` is drawn from IntDistribution(1, 3), the end included.
    """
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from cnnlab.tasks import run_task

    with initialize_config_dir(str(config_dir()), job_name="train", version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        assert hydra is not None
        try:
            returned = hydra.multirun(
                config_name="train",
                task_function=lambda cfg: run_task("train", cfg),
                overrides=[
                    "hparams_search=random",
                    "hydra.sweeper.n_trials=2",
                    "hydra.sweeper.report=false",
                    "optimizer.lr=choice(0.001, 0.003)",
                    "seed=range(1,3)",
                    *QUIET,
                ],
                with_log_configuration=False,
            )
        finally:
            # The multirun leaves its config in Hydra's global state; later tests expect none.
            HydraConfig.instance().cfg = None
    assert returned is None
    outputs = tmp_path / "outputs"
    study = _study(outputs)
    best = study.best_trial
    results = OmegaConf.to_container(OmegaConf.load(_sweep_dir(outputs) / RESULTS_FILE))
    assert results == {"name": "optuna", "best_params": best.params, "best_value": best.value}
    assert set(best.params) == {"optimizer.lr", "optimizer.weight_decay", "data.batch_size", "seed"}
    for trial in study.trials:
        assert trial.distributions["seed"] == IntDistribution(1, 3)
        assert trial.params["seed"] in (1, 2, 3)


@pytest.mark.slow
def test_multi_objective_sweep_writes_the_pareto_front(tmp_path: Path, run_subprocess) -> None:
    proc = run_subprocess(
        "train",
        "-m",
        "hparams_search=multiobjective",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.report=false",
        *QUIET,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = tmp_path / "outputs"
    study = _study(outputs)
    results: Any = OmegaConf.to_container(OmegaConf.load(_sweep_dir(outputs) / RESULTS_FILE))
    assert results["name"] == "optuna" and set(results) == {"name", "solutions"}
    front = sorted((s["values"], s["params"]) for s in results["solutions"])
    assert front == sorted((t.values, t.params) for t in study.best_trials)
    assert 1 <= len(front) <= 2
    # The front's members do not dominate each other (accuracy up, parameters down).
    for (acc_a, size_a), _ in front:
        assert not any(acc_b >= acc_a and size_b < size_a for (acc_b, size_b), _ in front)


def test_no_results_file_before_a_trial_completes() -> None:
    study = optuna.create_study()
    study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    assert optimization_results(study) is None


def test_removed_motpe_sampler_gets_the_official_message(tmp_path: Path, run_subprocess) -> None:
    # hparams_search=multiobjective sets TPE options on the sampler node; they must not
    # turn into a "key not in config" error that hides the real message.
    proc = run_subprocess(
        "train", "-m", "hparams_search=multiobjective", "hydra/sweeper/sampler=motpe", *QUIET
    )
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (
        "hydra.sweeper.sampler: The 'motpe' sampler was removed in Optuna 4.0; "
        "TPE handles several objectives: hydra/sweeper/sampler=tpe"
    ) in proc.stderr
    assert not (tmp_path / "outputs" / "multiruns").exists()


@pytest.mark.slow
def test_a_grid_tries_hydras_range_values(tmp_path: Path, run_subprocess) -> None:
    """``range(1,3)`` in a grid: Hydra's 1 and 2, as a plain multirun would try."""
    proc = run_subprocess(
        "train",
        "-m",
        "hparams_search=grid",
        "hydra.sweeper.params=null",
        "hydra.sweeper.report=false",
        "seed=range(1,3)",
        *QUIET,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study = _study(tmp_path / "outputs")
    assert sorted(t.params["seed"] for t in study.trials) == [1, 2]
