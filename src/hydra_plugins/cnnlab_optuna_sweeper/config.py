"""Structured configs of the sweeper, its samplers and its pruners (no optuna import).

No ``from __future__ import annotations`` here: Hydra loads plugin modules without
registering them in ``sys.modules``, where dataclasses look up string annotations.

Hydra imports this module while it discovers plugins, so it holds only
dataclasses and ConfigStore calls. Samplers are chosen with
``hydra/sweeper/sampler=NAME`` and pruners with ``hydra/sweeper/pruner=NAME``.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

PROVIDER = "cnnlab_optuna_sweeper"


@dataclass
class SamplerConfig:
    """Base of the sampler nodes: a target and a seed (null: a fresh draw each sweep)."""

    _target_: str = MISSING
    seed: int | None = None


@dataclass
class TPESamplerConfig(SamplerConfig):
    """https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.TPESampler.html"""

    _target_: str = "optuna.samplers.TPESampler"
    n_startup_trials: int = 10
    n_ei_candidates: int = 24
    multivariate: bool = False
    group: bool = False
    # Running trials count as bad so that parallel workers spread out (Optuna 5's default).
    constant_liar: bool = True


@dataclass
class RandomSamplerConfig(SamplerConfig):
    """https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.RandomSampler.html"""

    _target_: str = "optuna.samplers.RandomSampler"


@dataclass
class GridSamplerConfig(SamplerConfig):
    """https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.GridSampler.html

    The grid is built from ``params`` (every parameter must be discrete).
    """

    _target_: str = "hydra_plugins.cnnlab_optuna_sweeper._impl.GridSampler"


@dataclass
class CmaEsSamplerConfig(SamplerConfig):
    """https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.CmaEsSampler.html"""

    _target_: str = "optuna.samplers.CmaEsSampler"
    x0: dict[str, Any] | None = None
    sigma0: float | None = None
    n_startup_trials: int = 1
    consider_pruned_trials: bool = False
    restart_strategy: str | None = None
    popsize: int | None = None
    inc_popsize: int = -1
    use_separable_cma: bool = False
    with_margin: bool = False
    lr_adapt: bool = False


@dataclass
class QMCSamplerConfig(SamplerConfig):
    """https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.QMCSampler.html"""

    _target_: str = "optuna.samplers.QMCSampler"
    # sobol or halton.
    qmc_type: str = "sobol"
    scramble: bool = False


@dataclass
class NSGAIISamplerConfig(SamplerConfig):
    """https://optuna.readthedocs.io/en/stable/reference/samplers/generated/optuna.samplers.NSGAIISampler.html"""

    _target_: str = "optuna.samplers.NSGAIISampler"
    population_size: int = 50
    mutation_prob: float | None = None
    crossover_prob: float = 0.9
    swapping_prob: float = 0.5


@dataclass
class MOTPESamplerConfig(SamplerConfig):
    """Removed from Optuna: TPE handles several objectives (``hydra/sweeper/sampler=tpe``)."""

    _target_: str = "hydra_plugins.cnnlab_optuna_sweeper._impl.removed_motpe_sampler"


@dataclass
class NopPrunerConfig:
    """https://optuna.readthedocs.io/en/stable/reference/generated/optuna.pruners.NopPruner.html"""

    _target_: str = "optuna.pruners.NopPruner"


@dataclass
class MedianPrunerConfig:
    """https://optuna.readthedocs.io/en/stable/reference/generated/optuna.pruners.MedianPruner.html"""

    _target_: str = "optuna.pruners.MedianPruner"
    n_startup_trials: int = 5
    n_warmup_steps: int = 0
    interval_steps: int = 1
    n_min_trials: int = 1


@dataclass
class PercentilePrunerConfig(MedianPrunerConfig):
    """https://optuna.readthedocs.io/en/stable/reference/generated/optuna.pruners.PercentilePruner.html

    The median pruner's settings plus ``percentile`` (the median pruner is its 50th).
    """

    _target_: str = "optuna.pruners.PercentilePruner"
    percentile: float = 25.0


@dataclass
class SuccessiveHalvingPrunerConfig:
    """https://optuna.readthedocs.io/en/stable/reference/generated/optuna.pruners.SuccessiveHalvingPruner.html"""

    _target_: str = "optuna.pruners.SuccessiveHalvingPruner"
    # Steps are validation epochs; "auto" estimates it from the first trials.
    min_resource: Any = "auto"
    reduction_factor: int = 4
    min_early_stopping_rate: int = 0
    bootstrap_count: int = 0


@dataclass
class HyperbandPrunerConfig:
    """https://optuna.readthedocs.io/en/stable/reference/generated/optuna.pruners.HyperbandPruner.html"""

    _target_: str = "optuna.pruners.HyperbandPruner"
    min_resource: int = 1
    # The most validation epochs a trial runs (trainer.max_epochs), or "auto".
    max_resource: Any = "auto"
    reduction_factor: int = 3
    bootstrap_count: int = 0


@dataclass
class CnnlabOptunaSweeperConf:
    """The sweeper node, ``hydra.sweeper`` (keys as in hydra-optuna-sweeper, plus a few)."""

    _target_: str = "hydra_plugins.cnnlab_optuna_sweeper.sweeper.CnnlabOptunaSweeper"
    # Samplers and pruners arrive as configs: the sweeper builds them once the search
    # space is known (the grid) and hands the pruner's config to every job.
    _recursive_: bool = False
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])

    sampler: Any = MISSING
    pruner: Any = MISSING
    # minimize or maximize, or a list of them for several objectives. null: follow the
    # optimized metric (monitor.mode for val/acc_best; else minimize, as Optuna does).
    direction: Any = None
    # An SQLAlchemy URL (sqlite:///..., postgresql://...), journal:PATH for Optuna's
    # journal file, or null for memory only. The default keeps every study in one file;
    # {output_root} stands for paths.output_root (./outputs without one). Not an
    # interpolation: Hydra resolves the sweeper node before ${hydra:...} can be.
    storage: str | None = "sqlite:///{output_root}/optuna.db"
    # null: derived from the task, experiment, search config and search space.
    study_name: str | None = None
    # Total trials of the study, across resumed runs and parallel workers.
    n_trials: int = 20
    # Trials launched at a time through hydra/launcher (this process's share).
    n_jobs: int = 1
    # The sweep stops once more than this fraction of the trials it planned has failed
    # (0.0: at the first failure; 1.0: never).
    max_failure_rate: float = 0.25
    # The search space in Hydra's override grammar: choice, range, interval, tag(log, ...).
    params: dict[str, Any] | None = None
    # Optional function (cfg, trial) -> None that suggests more parameters in Python.
    custom_search_space: str | None = None
    # Seconds between heartbeats of running trials; a trial silent for grace_period is
    # treated as abandoned (failed and re-queued) by the next sweep on the study.
    heartbeat_interval: int = 30
    grace_period: int | None = None
    # Write report.md/html, plots and best.yaml into the sweep folder at the end.
    report: bool = True


def register_configs() -> None:
    """Store the sweeper, sampler and pruner nodes in Hydra's ConfigStore."""
    cs = ConfigStore.instance()
    cs.store(
        group="hydra/sweeper", name="cnnlab_optuna", node=CnnlabOptunaSweeperConf, provider=PROVIDER
    )
    samplers: dict[str, type] = {
        "tpe": TPESamplerConfig,
        "random": RandomSamplerConfig,
        "grid": GridSamplerConfig,
        "cmaes": CmaEsSamplerConfig,
        "qmc": QMCSamplerConfig,
        "nsgaii": NSGAIISamplerConfig,
    }
    for name, node in samplers.items():
        cs.store(group="hydra/sweeper/sampler", name=name, node=node, provider=PROVIDER)
    # A plain node takes any key: a config written for the old MOTPESampler (with its
    # n_startup_trials, n_ehvi_candidates, ...) gets the "removed" message, not a key error.
    motpe = {"_target_": MOTPESamplerConfig._target_, "seed": None}
    cs.store(group="hydra/sweeper/sampler", name="motpe", node=motpe, provider=PROVIDER)
    pruners: dict[str, type] = {
        "none": NopPrunerConfig,
        "median": MedianPrunerConfig,
        "percentile": PercentilePrunerConfig,
        "successive_halving": SuccessiveHalvingPrunerConfig,
        "hyperband": HyperbandPrunerConfig,
    }
    for name, node in pruners.items():
        cs.store(group="hydra/sweeper/pruner", name=name, node=node, provider=PROVIDER)


# Hydra finds a sweeper's configs by importing its module during plugin discovery;
# registration here is what makes `hydra/sweeper=cnnlab_optuna` resolvable.
register_configs()
