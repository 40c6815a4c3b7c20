"""Seeded samplers: reproducible for one sweep, never repeating across workers and resumes."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from omegaconf import OmegaConf

from cnnlab.sweep.storage import open_storage
from cnnlab.sweeper.samplers import SEED_ATTR, build_sampler, record_seed, trial_seed

SPACE = {
    "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": optuna.distributions.CategoricalDistribution([32, 64, 128]),
}
TARGETS = {"random": "optuna.samplers.RandomSampler", "tpe": "optuna.samplers.TPESampler"}


def sampler_cfg(name: str, seed: int | None = 1) -> object:
    return OmegaConf.create({"_target_": TARGETS[name], "seed": seed})


def ask_and_tell(study: optuna.Study) -> dict[str, object]:
    """Ask, record the seed and tell, as the sweeper does."""
    trial = study.ask(SPACE)
    record_seed(trial)
    study.tell(trial, float(trial.params["lr"]))
    return trial.params


def points(study: optuna.Study) -> list[tuple[object, ...]]:
    return [tuple(sorted(t.params.items())) for t in study.get_trials()]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_parallel_workers_draw_distinct_points(tmp_path: Path, name: str) -> None:
    storage = open_storage(f"sqlite:///{tmp_path}/o.db")
    workers = [
        optuna.create_study(
            storage=storage,
            study_name="s",
            sampler=build_sampler(sampler_cfg(name)),
            load_if_exists=True,
        )
        for _ in range(3)
    ]
    for _ in range(3):  # three rounds, each worker asking in turn: 9 trials
        for study in workers:
            ask_and_tell(study)
    drawn = points(workers[0])
    assert len(drawn) == 9 and len(set(drawn)) == 9


def test_one_seed_for_all_workers_repeats_points(tmp_path: Path) -> None:
    """The defect this module fixes: Optuna's sampler, seeded alike in each worker."""
    from hydra.utils import instantiate

    storage = open_storage(f"sqlite:///{tmp_path}/o.db")
    workers = [
        optuna.create_study(
            storage=storage,
            study_name="s",
            sampler=instantiate(sampler_cfg("random")),
            load_if_exists=True,
        )
        for _ in range(3)
    ]
    for study in workers:
        ask_and_tell(study)
    assert len(set(points(workers[0]))) == 1


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_an_uninterrupted_sweep_is_reproducible(name: str) -> None:
    runs = []
    for _ in range(2):
        study = optuna.create_study(sampler=build_sampler(sampler_cfg(name)))
        for _ in range(4):
            ask_and_tell(study)
        runs.append(points(study))
    assert runs[0] == runs[1] and len(set(runs[0])) == 4


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_resumed_sweep_draws_new_points(tmp_path: Path, name: str) -> None:
    url = f"sqlite:///{tmp_path}/o.db"
    first = optuna.create_study(
        storage=url, study_name="s", sampler=build_sampler(sampler_cfg(name))
    )
    for _ in range(3):
        ask_and_tell(first)
    # The same command again: a new process, a new sampler with the same seed.
    resumed = optuna.load_study(
        storage=url, study_name="s", sampler=build_sampler(sampler_cfg(name))
    )
    for _ in range(3):
        ask_and_tell(resumed)
    drawn = points(resumed)
    assert len(drawn) == 6 and len(set(drawn)) == 6


def test_each_trial_records_its_seed() -> None:
    study = optuna.create_study(sampler=build_sampler(sampler_cfg("random", seed=7)))
    for _ in range(3):
        ask_and_tell(study)
    seeds = [t.user_attrs[SEED_ATTR] for t in study.get_trials()]
    assert seeds == [trial_seed(7, n) for n in range(3)]
    assert len(set(seeds)) == 3


def test_no_seed_is_recorded_for_a_study_seeded_sampler() -> None:
    """Grid and unseeded samplers have no seed of the trial's own to record."""
    study = optuna.create_study(sampler=build_sampler(sampler_cfg("random", seed=None)))
    ask_and_tell(study)
    assert SEED_ATTR not in study.trials[0].user_attrs


def test_unseeded_and_grid_samplers_are_plain_optuna_samplers() -> None:
    assert type(build_sampler(sampler_cfg("random", seed=None))) is optuna.samplers.RandomSampler
    grid = OmegaConf.create(
        {"_target_": "optuna.samplers.GridSampler", "seed": 3, "search_space": {"x": [1, 2]}}
    )
    # The grid's seed fixes its order, which every worker must share.
    assert type(build_sampler(grid)) is optuna.samplers.GridSampler


def test_trials_asked_together_keep_their_own_seed() -> None:
    """n_jobs > 1: two trials asked, then a parameter suggested on each (custom_search_space)."""
    studies = []
    for together in (False, True):
        study = optuna.create_study(sampler=build_sampler(sampler_cfg("random")))
        if together:
            trials = [study.ask(), study.ask()]
            values = [t.suggest_float("x", 0, 1) for t in trials]
        else:
            values = []
            for _ in range(2):
                trial = study.ask()
                values.append(trial.suggest_float("x", 0, 1))
                study.tell(trial, 0.0)
        studies.append(values)
    assert studies[0] == studies[1]
