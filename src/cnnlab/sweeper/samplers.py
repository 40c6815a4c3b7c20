"""Seeded samplers that are reproducible yet never repeat themselves.

A sampler built once with ``seed=${seed}`` draws the same sequence in every
process: parallel workers on one study, and a sweep resumed after a crash,
draw the points already drawn. :func:`build_sampler` instead gives every trial
its own seed, derived from the configured seed and the trial's number in the
study. Trial numbers are unique in a study, so workers and resumed sweeps draw
new points; an uninterrupted sweep numbers its trials 0, 1, 2, ... and so draws
the same points each time it is run on a fresh study. The sweeper stores the seed
used on the trial as the user attribute ``sampler_seed`` (:func:`record_seed`).

The grid and QMC samplers keep one seed for the whole study: it fixes the order
of the grid and the scrambling of the QMC sequence, which every worker must share
(they never repeat a point: the study records which ones were taken).

The seed is recorded by whoever asked for the trial, through ``Trial.set_user_attr``: a
sampler only sees a ``FrozenTrial``, which Optuna's public API cannot write to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from optuna.samplers import BaseSampler

if TYPE_CHECKING:
    from omegaconf import DictConfig
    from optuna import Study, Trial
    from optuna.distributions import BaseDistribution
    from optuna.trial import FrozenTrial, TrialState

SEED_ATTR = "sampler_seed"
# Samplers whose seed is state shared by all workers of a study (class names).
STUDY_SEEDED = ("GridSampler", "QMCSampler")


def trial_seed(sweep_seed: int, trial_number: int) -> int:
    """The seed of trial ``trial_number`` in a sweep seeded with ``sweep_seed`` (32 bits)."""
    digest = hashlib.sha256(f"cnnlab:{sweep_seed}:{trial_number}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


def build_sampler(cfg: DictConfig) -> BaseSampler:
    """Instantiate the sampler node ``cfg`` (``hydra.sweeper.sampler``).

    With a ``seed``, a sampler other than grid and QMC is made per trial with
    :func:`trial_seed`; without one, Optuna seeds it at random.
    """
    from hydra.utils import instantiate

    seed = cfg.get("seed")
    name = str(cfg.get("_target_", "")).rsplit(".", 1)[-1]
    if seed is None or name in STUDY_SEEDED:
        return instantiate(cfg)
    return PerTrialSeedSampler(lambda s: instantiate(cfg, seed=s), int(seed))


def record_seed(trial: Trial) -> None:
    """Store the seed ``trial`` was sampled with (``sampler_seed``), when it has its own.

    Called by the sweeper on each trial it asks for: the sampler itself only sees a
    ``FrozenTrial``.
    """
    sampler = trial.study.sampler
    if isinstance(sampler, PerTrialSeedSampler):
        trial.set_user_attr(SEED_ATTR, sampler.seed_of(trial.number))


class PerTrialSeedSampler(BaseSampler):
    """Runs each trial with a fresh sampler (``make(seed)``) seeded from the sweep seed and
    the trial number; every sampling call is delegated to the trial's own sampler.

    Trials asked together (``n_jobs`` > 1) each keep their own sampler until they are told,
    so parameters suggested later (``custom_search_space``) use the trial's own seed too.
    """

    def __init__(self, make: Callable[[int], BaseSampler], sweep_seed: int) -> None:
        self._make = make
        self.sweep_seed = sweep_seed
        # Built now so that a bad sampler config fails before any trial starts; it also
        # serves trials this process did not ask for (none in a sweep).
        self._default = make(sweep_seed)
        self._samplers: dict[int, BaseSampler] = {}

    def __str__(self) -> str:
        return f"{self._default} (seeded per trial)"

    def seed_of(self, number: int) -> int:
        """The seed of the study's trial ``number``."""
        return trial_seed(self.sweep_seed, number)

    def _sampler(self, trial: FrozenTrial) -> BaseSampler:
        return self._samplers.get(trial.number, self._default)

    def before_trial(self, study: Study, trial: FrozenTrial) -> None:
        """Build this trial's sampler (:func:`record_seed` records its seed on the trial)."""
        self._samplers[trial.number] = self._make(self.seed_of(trial.number))
        self._sampler(trial).before_trial(study, trial)

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return self._sampler(trial).infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return self._sampler(trial).sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._sampler(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Study, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        """Delegate to the trial's sampler, then let it go."""
        self._sampler(trial).after_trial(study, trial, state, values)
        self._samplers.pop(trial.number, None)

    def reseed_rng(self) -> None:
        """Nothing to do: every trial gets its own derived seed."""
