"""The sweeper's Optuna logic: ask, launch through Hydra, tell; resume; recover.

One loop per sweep process: recover abandoned trials, then repeatedly ask for
as many trials as ``n_jobs`` and the study's remaining total allow, launch
them as one Hydra batch, and tell each result (value, FAIL with the error, or
PRUNED). Every count is read from the storage, so resumed sweeps and several
workers on one study share one ``n_trials`` total.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import math
import traceback
from pathlib import Path
from typing import Any

import optuna
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf
from optuna.trial import FrozenTrial, Trial, TrialState

from cnnlab.errors import ConfigError
from cnnlab.runs.scrub import scrub_secrets, scrub_text
from cnnlab.sweep import space as search_space
from cnnlab.sweep import storage as shared

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")
SWEEP_INFO = "sweep.json"


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its ``study.stop()`` after the last point.

    The sweeper counts trials itself; ``stop()`` outside ``optimize`` would raise
    before the last trial's result is stored.
    """

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        """Do nothing: the sweeper stops at its own count."""


def removed_motpe_sampler(**_: Any) -> None:
    """Fail loudly: MOTPESampler was removed from Optuna."""
    raise ConfigError(
        "hydra.sweeper.sampler",
        "motpe was removed from Optuna; TPE handles several objectives: "
        "hydra/sweeper/sampler=tpe (or nsgaii)",
    )


class OptunaSweeperImpl(Sweeper):
    """See :class:`hydra_plugins.cnnlab_optuna_sweeper.config.CnnlabOptunaSweeperConf`."""

    def __init__(
        self,
        sampler: DictConfig,
        pruner: DictConfig,
        direction: Any,
        storage: str | None,
        study_name: str | None,
        n_trials: int,
        n_jobs: int,
        max_failure_rate: float,
        params: DictConfig | None,
        custom_search_space: str | None = None,
        heartbeat_interval: int = 30,
        grace_period: int | None = None,
        report: bool = True,
    ) -> None:
        self.sampler_cfg = sampler
        self.pruner_cfg = pruner
        self.directions = _directions(direction)
        self.storage_template = storage
        self.study_name = study_name
        self.n_trials = _at_least("n_trials", n_trials, 1)
        self.n_jobs = _at_least("n_jobs", n_jobs, 1)
        if not 0.0 <= float(max_failure_rate) <= 1.0:
            raise ConfigError(
                "hydra.sweeper.max_failure_rate", f"must be in [0, 1], got {max_failure_rate}"
            )
        self.max_failure_rate = float(max_failure_rate)
        self.params = OmegaConf.to_container(params, resolve=True) if params else {}
        self.custom_search_space = get_method(custom_search_space) if custom_search_space else None
        self.heartbeat_interval = _at_least("heartbeat_interval", heartbeat_interval, 1)
        self.grace_period = float(grace_period or 3 * self.heartbeat_interval)
        self.report = report
        self.job_idx = 0

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the config and build the launcher that runs the trials."""
        from hydra.core.hydra_config import HydraConfig

        # Interpolations such as ${hydra:runtime.cwd} (in paths.output_root, hence in
        # hydra.sweep.dir) need the Hydra config set; the launcher sets it again per job.
        HydraConfig.instance().set_config(config)
        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.storage_url = shared.normalize_url(_storage_url(self.storage_template, config))

    def sweep(self, arguments: list[str]) -> list[FrozenTrial]:
        """Run trials until the study holds ``n_trials``; return this run's trials."""
        space = search_space.parse_search_space(self.params, arguments)  # type: ignore[arg-type]
        sampler, is_grid = self._sampler(space)
        n_trials = self.n_trials
        if is_grid:
            grid_size = math.prod(
                len(search_space.grid_values(k, d)) for k, d in space.distributions.items()
            )
            if grid_size < n_trials:
                log.info("grid of %d points: n_trials %d -> %d", grid_size, n_trials, grid_size)
                n_trials = grid_size
        pruner_cfg = OmegaConf.to_container(self.pruner_cfg, resolve=True)
        pruner = instantiate(self.pruner_cfg)
        study_name = self.study_name or derive_study_name(self.config, space, self.directions)
        # Workers starting together would race to create the schema and the study.
        with shared.ask_lock(self.storage_url):
            study = optuna.create_study(
                storage=shared.open_storage(self.storage_url),
                sampler=sampler,
                pruner=pruner,
                study_name=study_name,
                directions=list(self.directions),
                load_if_exists=True,
            )
        _check_directions(study, self.directions)
        self._write_info(study_name, n_trials, space, pruner_cfg)
        recovered = shared.recover_abandoned(study, self.grace_period)
        log.info(
            "study %s in %s: %d trials so far%s",
            study_name,
            self.storage_url or "memory",
            len(study.get_trials(deepcopy=False)),
            f", re-queued abandoned trials {recovered}" if recovered else "",
        )
        heartbeat = shared.Heartbeat(study._storage, self.heartbeat_interval).start()
        run = _Run(study, space, n_trials, pruner_cfg, heartbeat)
        try:
            self._loop(run)
        finally:
            heartbeat.stop()
            if self.report:
                _write_report(self.sweep_dir)
        return run.trials

    def _loop(self, run: _Run) -> None:
        planned: int | None = None
        while True:
            with shared.ask_lock(self.storage_url):
                counted = shared.counted_trials(run.study.get_trials(deepcopy=False))
                remaining = run.n_trials - len(counted)
                if planned is None:
                    planned = max(remaining, 0)
                if remaining <= 0:
                    break
                trials = [
                    run.study.ask(dict(run.space.distributions))
                    for _ in range(min(self.n_jobs, remaining))
                ]
            trials = self._drop_surplus(run, trials)
            if not trials:
                continue
            self._launch(run, trials)
            limit = self.max_failure_rate * max(planned, 1)
            if len(run.failures) > limit:
                raise RuntimeError(
                    f"{len(run.failures)} of the {planned} planned trials failed "
                    f"(max_failure_rate={self.max_failure_rate}); last error: {run.failures[-1]}"
                ) from run.failures[-1]

    def _drop_surplus(self, run: _Run, trials: list[Trial]) -> list[Trial]:
        """Without a shared lock (server databases) workers may ask beyond the total."""
        run.heartbeat.add([t._trial_id for t in trials])
        counted = shared.counted_trials(run.study.get_trials(deepcopy=False))
        kept = []
        for trial in trials:
            storage = run.study._storage
            storage.set_trial_system_attr(trial._trial_id, shared.WORKER_ATTR, shared.worker_id())
            rank = sum(1 for t in counted if t.number < trial.number)
            if rank < run.n_trials:
                kept.append(trial)
                continue
            storage.set_trial_system_attr(trial._trial_id, shared.SURPLUS_ATTR, True)
            run.study.tell(trial, state=TrialState.FAIL)
            run.heartbeat.discard([trial._trial_id])
        return kept

    def _launch(self, run: _Run, trials: list[Trial]) -> None:
        job_idx = max(self.job_idx, min(t.number for t in trials))
        batch = []
        for offset, trial in enumerate(trials):
            if self.custom_search_space is not None:
                self.custom_search_space(self.config, trial)
            overrides = run.space.overrides(trial.params) + self._sweep_node(run, trial)
            trial.set_user_attr("overrides", scrub_secrets(overrides))  # stored in the study
            trial.set_user_attr("job_num", job_idx + offset)
            trial.set_user_attr("sweep_dir", str(self.sweep_dir))
            run.study._storage.set_trial_system_attr(
                trial._trial_id, shared.PRUNER_ATTR, run.pruner_cfg
            )
            batch.append(tuple(overrides))
        returns = self.launcher.launch(batch, initial_job_idx=job_idx)
        self.job_idx = job_idx + len(returns)
        for trial, ret in zip(trials, returns, strict=True):
            _tell(run, trial, ret)
            run.heartbeat.discard([trial._trial_id])
            run.trials.append(run.study._storage.get_trial(trial._trial_id))

    def _sweep_node(self, run: _Run, trial: Trial) -> list[str]:
        fmt = search_space.format_value
        node = [
            f"++sweep.study_name={fmt(run.study.study_name)}",
            f"++sweep.run_name=trial-{trial.number}",
        ]
        if self.storage_url is not None:  # jobs reach their trial only through a shared storage
            node += [
                f"++sweep.storage={fmt(self.storage_url)}",
                f"++sweep.trial_number={trial.number}",
            ]
        return node

    def _sampler(self, space: search_space.SearchSpace) -> tuple[optuna.samplers.BaseSampler, bool]:
        target = str(self.sampler_cfg.get("_target_", ""))
        if target.endswith(".CmaEsSampler") and importlib.util.find_spec("cmaes") is None:
            # Optuna imports it only at the first trial; fail before any job runs.
            raise ConfigError(
                "hydra.sweeper.sampler", "cmaes needs the cmaes package: pip install cmaes"
            )
        if target.endswith(".GridSampler"):
            grid = {k: search_space.grid_values(k, d) for k, d in space.distributions.items()}
            if not grid:
                raise ConfigError(
                    "hydra.sweeper.params", "grid search needs at least one parameter"
                )
            return instantiate(self.sampler_cfg, search_space=grid), True
        return instantiate(self.sampler_cfg), False

    def _write_info(
        self, study_name: str, n_trials: int, space: search_space.SearchSpace, pruner: Any
    ) -> None:
        """Record where the study lives, so that ``cnnlab report SWEEP_DIR`` finds it."""
        from cnnlab.runs.manifest import write_json_atomic

        info = {
            "study_name": study_name,
            "storage": self.storage_url,
            "directions": list(self.directions),
            "n_trials": n_trials,
            "sampler": OmegaConf.to_container(self.sampler_cfg, resolve=True),
            "pruner": pruner,
            "params": {k: repr(d) for k, d in space.distributions.items()},
            "fixed": list(space.fixed.values()),
        }
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.sweep_dir / SWEEP_INFO, scrub_secrets(info))


class _Run:
    """State of one sweep process: its study, space, budget and results."""

    def __init__(
        self,
        study: optuna.Study,
        space: search_space.SearchSpace,
        n_trials: int,
        pruner_cfg: Any,
        heartbeat: shared.Heartbeat,
    ) -> None:
        self.study = study
        self.space = space
        self.n_trials = n_trials
        self.pruner_cfg = pruner_cfg
        self.heartbeat = heartbeat
        self.failures: list[BaseException] = []
        self.trials: list[FrozenTrial] = []


def _tell(run: _Run, trial: Trial, ret: Any) -> None:
    """Record one job's outcome: its value(s), PRUNED, or FAIL with the error."""
    study = run.study
    # Read the outcome without JobReturn.return_value's getter for a pruned job: the
    # getter logs "Error executing job", which a pruned trial is not.
    if isinstance(getattr(ret, "_return_value", None), optuna.TrialPruned):
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        log.info("trial %d pruned", trial.number)
        return
    try:
        values = _values(ret.return_value, len(study.directions))
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        log.info("trial %d pruned", trial.number)
        return
    except Exception as exc:
        if study._storage.get_trial(trial._trial_id).state == TrialState.PRUNED:
            return  # the job marked it pruned, then something else raised on the way out
        error = f"{type(exc).__name__}: {exc}"
        trial.set_user_attr("error", scrub_text(error)[:2000])
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        _append_to_job_log(ret, trial, exc)
        log.warning("trial %d failed: %s", trial.number, error)
        run.failures.append(exc)
        return
    study.tell(trial, values=values, skip_if_finished=True)


def _values(value: Any, n_objectives: int) -> list[float]:
    """Check a job's return value: one finite float per objective."""
    if value is None:
        raise ValueError("the job returned None; set optimized_metric to a logged metric")
    items = list(value) if isinstance(value, list | tuple) else [value]
    try:
        values = [float(v) for v in items]
    except (TypeError, ValueError):
        raise ValueError(f"the job returned {value!r}, not a number") from None
    if len(values) != n_objectives:
        raise ValueError(f"the job returned {len(values)} values for {n_objectives} directions")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"the job returned a non-finite objective: {values}")
    return values


def _append_to_job_log(ret: Any, trial: Trial, exc: BaseException) -> None:
    """Put the trial's traceback into its job's log file, next to its other records."""
    hydra_cfg = getattr(ret, "hydra_cfg", None)
    if hydra_cfg is None:
        return
    run_dir = Path(str(hydra_cfg.hydra.runtime.output_dir))
    text = "".join(traceback.format_exception(exc))
    with open(run_dir / f"{hydra_cfg.hydra.job.name}.log", "a", encoding="utf-8") as handle:
        handle.write(scrub_text(f"[cnnlab sweeper] trial {trial.number} failed:\n{text}"))


def derive_study_name(config: DictConfig, space: search_space.SearchSpace, directions: Any) -> str:
    """Name a study after the task, experiment, search config and search space.

    The same command gives the same name (so it resumes its study); another search
    space, fixed override, sampler or direction gives another.
    """
    choices = config.hydra.runtime.get("choices", {})
    sampler = choices.get("hydra/sweeper/sampler") or "sampler"
    content = {
        "space": {k: repr(d) for k, d in sorted(space.distributions.items())},
        "fixed": sorted(space.fixed.values()),
        "directions": list(directions),
        "sampler": sampler,
    }
    digest = hashlib.sha1(json.dumps(content, sort_keys=True).encode()).hexdigest()[:8]
    experiment = choices.get("experiment") or "default"
    search = choices.get("hparams_search") or sampler
    return f"{config.hydra.job.name}-{experiment}-{search}-{digest}".replace("/", "_")


def _directions(direction: Any) -> tuple[str, ...]:
    items = (
        list(direction)
        if isinstance(direction, list | tuple) or OmegaConf.is_list(direction)
        else [direction]
    )
    names = tuple(str(getattr(d, "name", d)).lower() for d in items)
    bad = [d for d in names if d not in DIRECTIONS]
    if not names or bad:
        raise ConfigError(
            "hydra.sweeper.direction", f"expected {' or '.join(DIRECTIONS)}, got {bad or names}"
        )
    return names


def _check_directions(study: optuna.Study, directions: tuple[str, ...]) -> None:
    existing = tuple(d.name.lower() for d in study.directions)
    if existing != directions:
        raise ConfigError(
            "hydra.sweeper.direction",
            f"study {study.study_name!r} already exists with directions {list(existing)}, "
            f"got {list(directions)}; set hydra.sweeper.study_name to start a new study",
        )


def _storage_url(template: str | None, config: DictConfig) -> str | None:
    """Fill ``{output_root}`` in the storage setting with ``paths.output_root``."""
    if template is None or "{output_root}" not in template:
        return template
    root = OmegaConf.select(config, "paths.output_root", default="outputs")
    return template.replace("{output_root}", str(root))


def _at_least(key: str, value: Any, low: int) -> int:
    if not isinstance(value, int) or value < low:
        raise ConfigError(f"hydra.sweeper.{key}", f"must be an integer >= {low}, got {value!r}")
    return value


def _write_report(sweep_dir: Path) -> None:
    """Write the sweep's report; a report that fails must not hide the sweep's result."""
    try:
        from cnnlab.sweep.report import write_report

        write_report(sweep_dir)
    except Exception:
        log.exception("could not write the report of %s", sweep_dir)
