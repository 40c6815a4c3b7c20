"""The sweeper's Optuna logic: ask, launch through Hydra, tell; resume; recover.

One loop per sweep process: recover abandoned trials, then keep up to ``n_jobs``
trials in flight, each worker asking for one trial, launching it through Hydra's
launcher and telling its result (value, FAIL with the error, or PRUNED) before it
asks for the next. Every count is read from the storage, so resumed sweeps and several
workers on one study share one ``n_trials`` total.

Optuna and Hydra through their public APIs only: the sweeper opens the study's storage
object itself (:func:`cnnlab.sweep.storage.open_storage`) and keeps it for what ``Study``
does not offer (system attributes of a running trial, heartbeats, a trial's stored state),
finding each trial's storage id from its number; a job's outcome is read through
``JobReturn.return_value``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import importlib.util
import io
import json
import logging
import math
import os
import sys
import threading
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import optuna
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from hydra.utils import get_method, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from optuna.trial import FrozenTrial, Trial, TrialState

from cnnlab.console import TASK_ENV
from cnnlab.errors import CnnlabError, ConfigError, DataError, find_user_error, tracebacks_wanted
from cnnlab.secrets.mask import scrub_secrets, scrub_text
from cnnlab.sweep import space as search_space
from cnnlab.sweep import storage as shared
from cnnlab.sweep.objective import (
    metric_directions,
    optimized_metrics,
    ranked_trials,
    record_tie_break,
    tie_line,
)
from cnnlab.sweep.parallel import concurrent_launches, parallel_override

# hydra-optuna-sweeper's helpers under their names there, for code written against its _impl.
from cnnlab.sweep.space import (  # noqa: F401
    create_optuna_distribution_from_override,
    create_params_from_overrides,
)
from cnnlab.sweeper import samplers
from cnnlab.sweeper.report import SWEEP_INFO
from cnnlab.sweeper.results import write_optimization_results
from cnnlab.sweeper.wandb_sweep import log_sweep_summary

log = logging.getLogger(__name__)

DIRECTIONS = ("minimize", "maximize")

_Method = TypeVar("_Method", bound=Callable[..., Any])


class TooManyFailedTrials(CnnlabError):
    """More trials failed than ``hydra.sweeper.max_failure_rate`` allows."""


def exit_on_user_error(method: _Method) -> _Method:
    """Turn a :class:`CnnlabError` raised by the sweeper itself into one line and exit 1.

    Hydra prints a traceback for any exception out of a sweeper; a wrong setting
    deserves one line naming its key (the traceback with ``HYDRA_FULL_ERROR=1``).
    ``SystemExit`` also passes through Hydra's ``instantiate``, which would otherwise
    wrap an error of ``__init__`` in an ``InstantiationException``.
    """

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except CnnlabError as exc:
            if tracebacks_wanted():  # the user's HYDRA_FULL_ERROR=1
                raise
            print(f"cnnlab {os.environ.get(TASK_ENV, 'sweep')}: error: {exc}", file=sys.stderr)
            raise SystemExit(1) from None

    return wrapper  # type: ignore[return-value]


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
        "The 'motpe' sampler was removed in Optuna 4.0; TPE handles several objectives: "
        "hydra/sweeper/sampler=tpe (or nsgaii)",
    )


class OptunaSweeperImpl(Sweeper):
    """See :class:`hydra_plugins.cnnlab_optuna_sweeper.config.CnnlabOptunaSweeperConf`."""

    @exit_on_user_error
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
        # None: follow the optimized metric, known only once setup() has the config.
        self.explicit_directions = None if direction is None else _directions(direction)
        self.directions: tuple[str, ...] = self.explicit_directions or ("minimize",)
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

    @exit_on_user_error
    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        """Keep the config and build the launcher that runs the trials."""
        self.config = config
        self.hydra_context = hydra_context
        _fit_slurm_launcher(config)  # before the launcher is built from it
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )
        self.sweep_dir = Path(str(config.hydra.sweep.dir))
        self.storage_url = shared.normalize_url(_storage_url(self.storage_template, config))
        # Resolved with the whole config: hydra.job.name may be ${task}, which the job's
        # returned Hydra node alone cannot resolve.
        self.job_name = str(OmegaConf.select(config, "hydra.job.name", default=None) or "job")
        self.metric_names = optimized_metrics(config)
        expected = metric_directions(config, self.metric_names) or [None]
        if self.explicit_directions is None:
            self.directions = tuple(d or "minimize" for d in expected)
        else:
            _warn_on_contradiction(config, self.metric_names, self.explicit_directions, expected)

    @exit_on_user_error
    def sweep(self, arguments: list[str]) -> list[FrozenTrial]:
        """Run trials until the study holds ``n_trials``; return this run's trials.

        The report is written however the sweep ends; a sweep that ends normally or
        stops on failures prints its best trial and the report's path as its last lines.
        """
        space = search_space.parse_search_space(self.params, arguments)  # type: ignore[arg-type]
        sampler, grid = self._sampler(space)
        n_trials = self.n_trials
        if grid:
            grid_size = math.prod(len(values) for values in grid.values())
            if grid_size < n_trials:
                log.info("grid of %d points: n_trials %d -> %d", grid_size, n_trials, grid_size)
                n_trials = grid_size
        # A storage that stops taking writes (a full disk) ends the sweep with one line.
        with shared.storage_write_errors(self.storage_url):
            return self._sweep(space, sampler, n_trials)

    def _sweep(
        self, space: search_space.SearchSpace, sampler: optuna.samplers.BaseSampler, n_trials: int
    ) -> list[FrozenTrial]:
        """Open (or resume) the study, recover abandoned trials, run the loop, sum up."""
        pruner_cfg = OmegaConf.to_container(self.pruner_cfg, resolve=True)
        pruner = instantiate(self.pruner_cfg)  # a bad one fails before the storage is made
        study_name = self.study_name or derive_study_name(self.config, space, self.directions)
        # Workers starting together would race to create the schema and the study.
        with shared.ask_lock(self.storage_url):
            # Kept: what Study does not offer goes through the storage's public methods.
            storage = (
                shared.open_storage(self.storage_url, self.heartbeat_interval, self.grace_period)
                if self.storage_url is not None
                else optuna.storages.InMemoryStorage()
            )
            study = optuna.create_study(
                storage=storage,
                sampler=sampler,
                pruner=pruner,
                study_name=study_name,
                directions=list(self.directions),
                load_if_exists=True,
            )
        _check_directions(study, self.directions)
        _name_metrics(study, self.metric_names)
        self._write_info(study_name, n_trials, space, pruner_cfg)
        recovered = _recover_abandoned(study, storage, self.grace_period)
        log.info(
            "study %s in %s: %d trials so far%s",
            study_name,
            self.storage_url or "memory",
            len(study.get_trials(deepcopy=False)),
            f", re-queued abandoned trials {recovered}" if recovered else "",
        )
        earlier = _earlier_sweep_dirs(study, self.sweep_dir)
        if earlier:
            # A resumed study's folders: the report of this one ranks all of their trials.
            log.info("earlier trials of study %s are in: %s", study_name, ", ".join(earlier))
        heartbeat = shared.Heartbeat(storage, self.heartbeat_interval).start()
        run = _Run(study, storage, space, n_trials, pruner_cfg, heartbeat)
        tell_outcome = False  # not after Ctrl-C or a bug: their traceback comes last
        try:
            self._loop(run)
            tell_outcome = True
        except TooManyFailedTrials:
            tell_outcome = True
            raise
        except KeyboardInterrupt:
            _interrupt_own_trials(run)
            raise
        except Exception as exc:
            if shared.storage_cause(exc) is not None:
                _fail_own_trials(run)
            raise
        finally:
            heartbeat.stop()
            write_optimization_results(study, self.sweep_dir)
            # Files that sum the sweep up are written however it ends.
            report = _write_report(self.sweep_dir) if self.report else None
            log_sweep_summary(self.config, run.study, self.sweep_dir, self.metric_names)
            if tell_outcome:
                self._print_outcome(run, report)
        return run.trials

    def _loop(self, run: _Run) -> None:
        """Keep up to ``n_jobs`` trials in flight until the study holds ``n_trials``.

        Each worker (a thread) asks for one trial, launches it alone and tells its result,
        then asks for the next: a worker freed by a short trial never waits for a long one.
        The first error of a worker (too many failures, a storage error) stops the others
        from asking; the trials they run are told before it is raised.
        """
        workers = concurrent_launches(self.config.hydra.launcher, self.n_jobs)
        if workers == 1:
            self._work(run)  # in this thread: Ctrl-C and tracebacks as without workers
            return
        errors: list[BaseException] = []

        def work() -> None:
            try:
                self._work(run)
            except BaseException as exc:
                errors.append(exc)
                run.stop.set()

        threads = [
            threading.Thread(target=work, name=f"cnnlab-trials-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():  # a timed join lets Ctrl-C through
                    thread.join(0.5)
        except BaseException:
            run.stop.set()
            raise
        if errors:
            raise errors[0]

    def _work(self, run: _Run) -> None:
        """One worker: ask, launch, tell, until the study is full or the sweep stops."""
        while not run.stop.is_set():
            trial = self._next_trial(run)
            if trial is None:
                return
            self._launch(run, trial)
            self._check_failures(run)

    def _next_trial(self, run: _Run) -> Trial | None:
        """Ask the study for this worker's next trial; None once it holds ``n_trials``."""
        while not run.stop.is_set():
            with run.lock, shared.ask_lock(self.storage_url):
                # A worker killed meanwhile: fail its trial and queue it again, now.
                _recover_abandoned(run.study, run.storage, self.grace_period)
                counted = shared.counted_trials(run.study.get_trials(deepcopy=False))
                remaining = run.n_trials - len(counted)
                if run.planned is None:
                    run.planned = max(remaining, 0)
                if remaining <= 0:
                    return None
                trial = run.study.ask(dict(run.space.distributions))
                samplers.record_seed(trial)
                # Numbered in the order asked: trial N's folder is job N on a fresh study.
                run.job_nums[trial.number] = max(self.job_idx, trial.number)
                self.job_idx = run.job_nums[trial.number] + 1
            if self._keep_within_total(run, trial):
                return trial
        return None

    def _check_failures(self, run: _Run) -> None:
        """Stop the sweep once more trials failed than ``max_failure_rate`` allows."""
        planned = run.planned or 0
        limit = self.max_failure_rate * max(planned, 1)
        failures = list(run.failures)
        if len(failures) > limit:
            logs = ", ".join(str(f.log_path) for f in failures)
            raise TooManyFailedTrials(
                f"{len(failures)} of the {planned} planned trials failed "
                f"(max_failure_rate={self.max_failure_rate}); last error: "
                f"{failures[-1].error}; their logs: {logs}"
            )

    def _keep_within_total(self, run: _Run, trial: Trial) -> bool:
        """Whether ``trial`` is within ``n_trials``; a surplus one is told FAIL and dropped.

        Without a shared lock (server databases) workers may ask beyond the total.
        """
        run.heartbeat.add([run.trial_id(trial)])
        counted = shared.counted_trials(run.study.get_trials(deepcopy=False))
        run.set_system_attr(trial, shared.WORKER_ATTR, shared.worker_id())
        if sum(1 for t in counted if t.number < trial.number) < run.n_trials:
            return True
        run.set_system_attr(trial, shared.SURPLUS_ATTR, True)
        run.study.tell(trial, state=TrialState.FAIL)
        run.heartbeat.discard([run.trial_id(trial)])
        return False

    def _launch(self, run: _Run, trial: Trial) -> None:
        """Launch ``trial`` alone through Hydra's launcher, as its job, and tell its outcome."""
        job_num = run.job_nums.pop(trial.number)
        # Trials side by side on one machine split its cores (cnnlab.sweep.parallel): as
        # many as the workers keep in flight.
        at_once = min(self.n_jobs, max(run.planned or 1, 1))
        if self.custom_search_space is not None:
            self.custom_search_space(self.config, trial)
        overrides = run.space.overrides(trial.params) + self._sweep_node(run, trial)
        overrides.append(parallel_override(self.config.hydra.launcher, at_once))
        continuation = _continue_lost_run(run, trial)  # before run_dir names this job's folder
        overrides += continuation
        if continuation:  # not part of the point: best.yaml leaves it out
            trial.set_user_attr(shared.CONTINUATION_ATTR, scrub_secrets(continuation)[0])
        trial.set_user_attr("overrides", scrub_secrets(overrides))  # stored in the study
        trial.set_user_attr("job_num", job_num)
        trial.set_user_attr("sweep_dir", str(self.sweep_dir))
        # Set now: a job that prunes its trial finishes it, and then it is read-only.
        trial.set_user_attr("run_dir", str(self._job_dir(None, job_num)))
        run.set_system_attr(trial, shared.PRUNER_ATTR, run.pruner_cfg)
        try:
            (ret,) = self.launcher.launch([tuple(overrides)], initial_job_idx=job_num)
        except Exception as exc:
            # A job process that died (SIGKILL, out of memory); joblib's executor then
            # loses the jobs running beside it too. The sweep goes on without them.
            log.warning("the launcher lost trial %d: %s", trial.number, exc)
            ret = LostJob(exc)
        run_dir = self._job_dir(ret, job_num)
        running = run.stored(trial).state == TrialState.RUNNING
        if str(run_dir) != trial.user_attrs["run_dir"] and running:
            trial.set_user_attr("run_dir", str(run_dir))
        failure = _tell(run, trial, ret, run_dir / f"{self.job_name}.log")
        if failure is not None:
            run.failures.append(failure)
        run.heartbeat.discard([run.trial_id(trial)])
        run.trials.append(run.stored(trial))

    def _job_dir(self, ret: Any, job_num: int) -> Path:
        """The job's folder: from its own config, or as Hydra would name it (a lost job)."""
        hydra_cfg = getattr(ret, "hydra_cfg", None)
        if hydra_cfg is not None:
            return Path(str(hydra_cfg.hydra.runtime.output_dir))
        config = copy.deepcopy(self.config)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.job.num = job_num
        return self.sweep_dir / str(config.hydra.sweep.subdir)

    def _print_outcome(self, run: _Run, report: Path | None) -> None:
        """Print, as the sweep's last lines, its best trial and where its report is."""
        lines = outcome_lines(run.study, self.metric_names)
        lines.append(
            f"report: {report}" if report else f"report: cnnlab report {self.sweep_dir.resolve()}"
        )
        # Printed, not logged: plain lines, last on the screen, free of logging's prefix.
        print("\n".join(lines), flush=True)

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

    def _sampler(
        self, space: search_space.SearchSpace
    ) -> tuple[optuna.samplers.BaseSampler, dict[str, list[Any]] | None]:
        """The sampler, and for a grid search the grid it walks."""
        target = str(self.sampler_cfg.get("_target_", ""))
        if target.endswith(".CmaEsSampler") and importlib.util.find_spec("cmaes") is None:
            # Optuna imports it only at the first trial; fail before any job runs.
            raise ConfigError(
                "hydra.sweeper.sampler", "cmaes needs the cmaes package: pip install cmaes"
            )
        if target.endswith(".GridSampler"):
            grid = space.grid()
            if not grid:
                raise ConfigError(
                    "hydra.sweeper.params", "grid search needs at least one parameter"
                )
            return instantiate(self.sampler_cfg, search_space=grid), grid
        # Seeded per trial, so that workers and resumed sweeps never repeat a point.
        return samplers.build_sampler(self.sampler_cfg), None

    def _write_info(
        self, study_name: str, n_trials: int, space: search_space.SearchSpace, pruner: Any
    ) -> None:
        """Record where the study lives, so that ``cnnlab report SWEEP_DIR`` finds it."""
        from cnnlab.files.atomic import write_json_atomic

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


@dataclass
class _Run:
    """State of one sweep process: its study, space, budget and results."""

    study: optuna.Study
    storage: optuna.storages.BaseStorage  # the object the study was created with
    space: search_space.SearchSpace
    n_trials: int
    pruner_cfg: Any
    heartbeat: shared.Heartbeat
    failures: list[Failure] = field(default_factory=list)
    trials: list[FrozenTrial] = field(default_factory=list)
    # Shared by the workers of _loop: asking is one at a time, in this process too.
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    planned: int | None = None  # trials left to run when the first worker asked
    job_nums: dict[int, int] = field(default_factory=dict)  # trial number -> Hydra job number
    _ids: dict[int, int] = field(default_factory=dict)  # trial number -> storage id

    def trial_id(self, trial: Trial) -> int:
        """The storage's id of ``trial`` (looked up once, from its number)."""
        if trial.number not in self._ids:
            self._ids[trial.number] = shared.trial_id(
                self.storage, self.study.study_name, trial.number
            )
        return self._ids[trial.number]

    def set_system_attr(self, trial: Trial, key: str, value: Any) -> None:
        """Set a system attribute of ``trial`` (``Trial`` sets only user attributes)."""
        self.storage.set_trial_system_attr(self.trial_id(trial), key, value)

    def stored(self, trial: Trial) -> FrozenTrial:
        """``trial`` as the storage holds it now (a job may have finished it: pruned)."""
        return self.storage.get_trial(self.trial_id(trial))


@dataclass(frozen=True)
class LostJob:
    """Stands for the result of a job the launcher lost (its process died)."""

    error: BaseException


@dataclass(frozen=True)
class Failure:
    """A failed trial of this sweep process: its number, error line and log file."""

    number: int
    error: str
    log_path: Path


def _tell(run: _Run, trial: Trial, ret: Any, log_path: Path) -> Failure | None:
    """Record one job's outcome: its value(s), PRUNED, or FAIL with the error.

    A failed trial returns its :class:`Failure` (its traceback is appended to ``log_path``).
    """
    study = run.study
    if isinstance(ret, LostJob):
        exc: BaseException = ret.error
        # joblib says which signal ended the process on a later line: keep every line.
        error = f"the job's process was lost: {type(exc).__name__}: {_one_line(exc)}"
        _mark_run_lost(log_path.parent, error)
        failure = _fail(run, trial, error, exc, log_path)
        # A point queued again has not failed yet: only its copy's end counts.
        return None if _queue_lost_point(run, trial) else failure
    try:
        values = _values(_job_value(ret), len(study.directions))
    except optuna.TrialPruned:
        # The job's pruning hook marked it PRUNED already; telling it again would warn.
        if run.stored(trial).state == TrialState.RUNNING:
            study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        log.info("trial %d pruned", trial.number)
        return None
    except Exception as exc:
        if run.stored(trial).state == TrialState.PRUNED:
            return None  # the job marked it pruned, then something else raised on the way out
        # The user's mistake, not the wrapper Hydra's instantiate or Lightning put around it.
        shown = find_user_error(exc) or exc
        return _fail(run, trial, f"{type(shown).__name__}: {shown}", exc, log_path)
    record_tie_break(trial, log_path.parent)  # the job's run folder
    study.tell(trial, values=values, skip_if_finished=True)
    return None


def _queue_lost_point(run: _Run, trial: Trial) -> bool:
    """Queue the point of a trial whose job was lost (cancelled, killed) to be run again.

    The job's end says nothing about the point, so it is tried once more: the copy replaces
    the failed trial in the study's count (:func:`cnnlab.sweep.storage.requeue`). A copy
    that is lost in turn stays FAIL (returns False), so a point that always kills its job ends.
    """
    stored = run.stored(trial)
    if shared.RETRY_ATTR in stored.system_attrs:
        return False
    shared.requeue(run.study, stored)
    log.warning("trial %d: its point is queued to run again", trial.number)
    return True


def _continue_lost_run(run: _Run, trial: Trial) -> list[str]:
    """``ckpt_path=`` the last checkpoint of the lost trial that ``trial`` runs again, if any.

    A re-queued copy (:func:`_queue_lost_point`, :func:`cnnlab.sweep.storage.recover_abandoned`)
    names the lost trial it replaces. Where that trial's run folder has
    ``checkpoints/last.ckpt`` the copy continues from it (model, optimizer, epoch), in its own
    job folder, instead of training again from epoch 1; otherwise it starts fresh.
    """
    found = _lost_checkpoint(run.study, run.stored(trial))
    if found is None:
        return []
    lost, last = found
    log.info("trial %d continues lost trial %d from %s", trial.number, lost, last)
    return [f"++ckpt_path={search_space.format_value(str(last))}"]


def _lost_checkpoint(study: optuna.Study, copy: FrozenTrial) -> tuple[int, Path] | None:
    """The newest ``last.ckpt`` of the lost runs ``copy`` replaces, and whose it is.

    A copy lost in turn (Ctrl-C, a killed sweep) before its own first checkpoint holds no
    progress of its own: the run it continued from, one link further, does.
    """
    from cnnlab.records.resume import LAST_CHECKPOINT

    trials = study.get_trials(deepcopy=False)
    current, seen = copy, set()
    while True:
        number = current.system_attrs.get(shared.RETRY_ATTR)
        if type(number) is not int or not 0 <= number < len(trials) or number in seen:
            return None
        seen.add(number)
        current = trials[number]
        folder = current.user_attrs.get("run_dir")
        if isinstance(folder, str) and folder and (Path(folder) / LAST_CHECKPOINT).is_file():
            return number, Path(folder) / LAST_CHECKPOINT


def _job_value(ret: Any) -> Any:
    """What the job returned, through Hydra's ``JobReturn.return_value``; raises what it raised.

    For a failed job the property first writes "Error executing job with overrides: ..." to
    stderr. A pruned trial is no error: that line is held back for it, and written for any
    other failure.
    """
    from hydra.core.utils import JobStatus

    if ret.status == JobStatus.COMPLETED:
        return ret.return_value
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            return ret.return_value
    except optuna.TrialPruned:
        raise
    except Exception:
        sys.stderr.write(held.getvalue())
        raise


def _fail(run: _Run, trial: Trial, error: str, exc: BaseException, log_path: Path) -> Failure:
    """Mark ``trial`` FAIL with ``error`` and put the traceback into its job's log."""
    trial.set_user_attr("error", scrub_text(error)[:2000])
    run.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    _append_to_job_log(log_path, trial, error, exc)
    log.warning("trial %d failed: %s (log: %s)", trial.number, _first_line(error), log_path)
    return Failure(trial.number, _first_line(error), log_path)


def _fail_own_trials(run: _Run) -> None:
    """After a storage error, mark this process's running trials FAIL where the storage lets us.

    Where it does not (the storage is on the full disk), they stay RUNNING until the next sweep
    on this study re-queues them (:func:`cnnlab.sweep.storage.recover_abandoned`).
    """
    running = run.heartbeat.running()
    left = shared.fail_trials(run.storage, running)
    run.heartbeat.discard(running)
    if left:
        log.warning(
            "trials with storage ids %s stay RUNNING (the storage refuses writes); the next "
            "sweep on this study re-queues them",
            left,
        )


def _interrupt_own_trials(run: _Run) -> None:
    """After Ctrl-C, end this process's running trials and queue each again.

    Optuna has no INTERRUPTED state: a trial is FAIL with the user attribute ``interrupted``
    (no ``error``: its settings did not fail) and a copy of it is queued, so that re-running
    the sweep's command trains the same point again and the interrupted one does not count
    toward ``n_trials``.
    """
    running = run.heartbeat.running()
    for trial_id in running:
        if run.storage.get_trial(trial_id).state != TrialState.RUNNING:
            continue
        run.storage.set_trial_user_attr(trial_id, "interrupted", True)
        shared.fail_trials(run.storage, [trial_id])
        shared.requeue(run.study, run.storage.get_trial(trial_id))
    run.heartbeat.discard(running)


def _fit_slurm_launcher(config: DictConfig) -> None:
    """With ``hydra/launcher=slurm``: settings that fit the cluster, checked before any trial.

    A job the cluster rejects or can never start would cost its trial (or hang the sweep);
    :mod:`cnnlab.sweeper.slurm` says which setting does not fit, in one line.
    """
    if not str(config.hydra.launcher.get("_target_", "")).endswith(".SlurmLauncher"):
        return  # submitit (the cluster extra) is imported only for SLURM
    from cnnlab.sweeper import slurm

    with read_write(config.hydra), open_dict(config.hydra):
        slurm.fit_launcher(config.hydra.launcher, config, slurm.read_nodes())
    slurm.install_job_states()


def _earlier_sweep_dirs(study: optuna.Study, sweep_dir: Path) -> list[str]:
    """The sweep folders of the study's earlier trials (a resumed sweep gets a new one)."""
    folders = {t.user_attrs.get("sweep_dir") for t in study.get_trials(deepcopy=False)}
    return sorted(f for f in folders if isinstance(f, str) and f != str(sweep_dir))


def _first_line(error: object) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _one_line(error: object) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


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


def _append_to_job_log(log_path: Path, trial: Trial, error: str, exc: BaseException) -> None:
    """Put the trial's error and traceback into its job's log file, after its own records."""
    text = "".join(traceback.format_exception(exc))
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a", encoding="utf-8") as handle:
            handle.write(
                scrub_text(f"[cnnlab sweeper] trial {trial.number} failed: {error}\n{text}")
            )
    except OSError as err:  # the trial is recorded FAIL anyway; its error is in the study
        log.warning("could not write %s: %s", log_path, err)


def _recover_abandoned(
    study: optuna.Study, storage: optuna.storages.BaseStorage, grace_period: float
) -> list[int]:
    """Fail and re-queue the trials of sweeps that died (:func:`shared.recover_abandoned`).

    Their jobs died with them, leaving ``run.json`` saying "running": each says how it ended.
    """
    recovered = shared.recover_abandoned(study, storage, grace_period)
    trials = study.get_trials(deepcopy=False)
    for number in recovered:
        run_dir = trials[number].user_attrs.get("run_dir")
        if isinstance(run_dir, str) and run_dir:
            _mark_run_lost(Path(run_dir), "the sweep running this trial was lost (killed)")
    return recovered


def _mark_run_lost(run_dir: Path, error: str) -> None:
    """A job killed mid-run left ``run.json`` saying "running": record how it ended."""
    from cnnlab.files.atomic import write_json_atomic
    from cnnlab.files.read import read_json_object

    path = run_dir / "run.json"
    try:
        # The job's folder: read as any run folder is (a regular file, bounded).
        manifest = read_json_object("run.json", inside=run_dir)
    except DataError:
        return
    if manifest.get("status") != "running":
        return
    try:
        write_json_atomic(path, {**manifest, "status": "failed", "error": error})
    except DataError as exc:  # another user's folder, a full disk: the study records it anyway
        log.warning("could not record the lost run in %s: %s", path, exc)


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


def _name_metrics(study: optuna.Study, names: list[str]) -> None:
    """Store the objectives' names in the study: plots and dataframes then name the metric
    (``val/acc_best``), not "Objective 0"."""
    if names and len(names) == len(study.directions) and study.metric_names != names:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)


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


def _write_report(sweep_dir: Path) -> Path | None:
    """Write the sweep's report and return report.md's path (None if it failed).

    A report that fails must not hide the sweep's result.
    """
    try:
        from cnnlab.sweeper.report import write_report

        return write_report(sweep_dir).markdown
    except Exception:
        log.exception("could not write the report of %s", sweep_dir)
        return None


def _warn_on_contradiction(
    config: DictConfig,
    names: list[str],
    directions: tuple[str, ...],
    expected: list[str | None],
) -> None:
    """Warn (one line) when an explicit direction goes against its metric."""
    mode = OmegaConf.select(config, "monitor.mode", default=None)
    for name, given, wanted in zip(names, directions, expected, strict=False):
        if wanted is not None and given != wanted:
            log.warning(
                "hydra.sweeper.direction: %s contradicts optimized_metric %s, which is "
                "better when %s (monitor.mode=%s); the sweep will %s it as told",
                given,
                name,
                "higher" if wanted == "maximize" else "lower",
                mode,
                given,
            )


def outcome_lines(study: optuna.Study, metric_names: list[str]) -> list[str]:
    """What a sweep found: the best value, its trial and its run folder."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = sum(t.state == TrialState.FAIL for t in trials)
    counts = f"{len(complete)} complete, {failed} failed"
    if not complete:
        return [f"no trial of study {study.study_name} completed ({counts})"]
    names = metric_names or [f"objective {i + 1}" for i in range(len(study.directions))]
    if len(study.directions) > 1:
        front = sorted(study.best_trials, key=lambda t: t.number)
        lines = [f"Pareto front of study {study.study_name} ({counts}): {len(front)} trials"]
        for trial in front:
            values = ", ".join(f"{n}={v:.6g}" for n, v in zip(names, trial.values, strict=False))
            lines.append(f"trial {trial.number}: {values}; run folder: {_run_dir_of(trial)}")
        return lines
    # Trials tied on the objective: the one with the lowest validation loss at its best epoch.
    ranked = ranked_trials(study, complete)
    best = ranked[0]
    ties = tie_line(ranked)
    return [
        f"best {names[0]}: {best.value:.6g} (trial {best.number} of study "
        f"{study.study_name}; {counts}{'; ' + ties if ties else ''})",
        f"best run folder: {_run_dir_of(best)}",
    ]


def _run_dir_of(trial: FrozenTrial) -> str:
    attrs = trial.user_attrs
    if "run_dir" in attrs:
        return str(attrs["run_dir"])
    if "sweep_dir" in attrs and "job_num" in attrs:
        return f"{attrs['sweep_dir']}/{attrs['job_num']}"
    return "?"
