"""Check a task's composed config before anything is built or written.

:func:`validate_config` is the one entry point: required values (``???``) are set,
interpolations resolve, every key listed in :mod:`cnnlab.validation.schema` has an accepted
value, the checks across keys pass, and the cheap objects (optimizer, scheduler, loss,
augmentation) build. It raises :class:`~cnnlab.errors.ConfigError` naming the key.

It runs twice on purpose: in :class:`ValidateConfig`, a Hydra callback that sees the config
before Hydra creates the run folder (so a mistake leaves nothing behind), and in
:func:`cnnlab.tasks.run_task` for every job (multirun trials, ``cnnlab reproduce`` and tests,
which compose without the callback).
"""

from __future__ import annotations

import copy
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from cnnlab.errors import ConfigError, first_line
from cnnlab.validation.rules import creatable_problem
from cnnlab.validation.schema import CHECKS, TABLES, Table

__all__ = ["ValidateConfig", "run_dir_of", "task_config", "validate_config", "validate_run"]


def validate_config(task: str, cfg: DictConfig, run_dir: str | None = None) -> None:
    """Raise :class:`ConfigError` naming the first key of ``cfg`` that ``task`` cannot use.

    Args:
        task: The ``cnnlab`` task (``train``, ``eval``, ...); unknown tasks are not checked.
        cfg: The task's composed config (without the ``hydra`` node).
        run_dir: The run folder about to be created, checked right after the top-level keys
            it is built from (``paths.*``) and before the keys built from it, so that the
            error names the key the user set.
    """
    missing = list(missing_keys(OmegaConf.to_container(cfg, resolve=False)))
    if missing:
        raise ConfigError(missing[0], f"is required; set it on the command line: {missing[0]}=...")
    resolved = resolve(cfg)
    top, *groups = TABLES.get(task, ({},))
    check_tables(resolved, [top])
    if run_dir is not None:
        problem = creatable_problem(Path(run_dir))
        if problem is not None:
            raise ConfigError("hydra.run.dir", problem)
    check_tables(resolved, groups)
    for check in CHECKS.get(task, ()):
        check(resolved)


def check_tables(resolved: dict[str, Any], tables: Iterable[Table]) -> None:
    """Raise ConfigError for the first key of ``resolved`` that a rule of ``tables`` refuses."""
    for table in tables:
        for pattern, rule in table.items():
            for key, value in lookup(resolved, pattern):
                problem = rule.problem(value)
                if problem is not None:
                    raise ConfigError(key, problem)


def missing_keys(node: Any, prefix: str = "") -> Iterator[str]:
    """The dotted keys whose value is ``???`` (required, not set), in config order.

    Walks the unresolved containers: OmegaConf's own ``missing_keys`` resolves
    interpolations on the way and fails on the first one that points at a missing value.
    """
    items = node.items() if isinstance(node, dict) else enumerate(node or [])
    for key, value in items:
        full = f"{prefix}{key}"
        if value == "???":
            yield full
        elif isinstance(value, dict | list):
            yield from missing_keys(value, full + ".")


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """``cfg`` as plain containers, interpolations resolved; ConfigError naming a bad one."""
    try:
        container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError(key, f"cannot be resolved ({first_line(exc)})") from exc
    return cast("dict[str, Any]", container)  # a DictConfig gives a dict with str keys


def lookup(node: Any, pattern: str, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """The ``(key, value)`` pairs at dotted ``pattern``; ``*`` matches any one key.

    ``callbacks.*.mode`` finds the ``mode`` of every callback; a path that is absent
    yields nothing (an optimizer without ``momentum`` has nothing to check there).
    """
    part, _, rest = pattern.partition(".")
    if not isinstance(node, dict):
        return
    names = [str(k) for k in node] if part == "*" else [part] if part in node else []
    for name in names:
        if rest:
            yield from lookup(node[name], rest, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", node[name]


def run_dir_of(config: DictConfig) -> str:
    """The run folder Hydra is about to create (``hydra.run.dir``), resolved."""
    try:
        run_dir = str(OmegaConf.select(config, "hydra.run.dir", throw_on_missing=True))
    except OmegaConfBaseException as exc:
        raise ConfigError("hydra.run.dir", f"cannot be resolved ({first_line(exc)})") from exc
    if not run_dir.strip():
        raise ConfigError("hydra.run.dir", "must be the path of a folder, got ''")
    return run_dir


class ValidateConfig(Callback):
    """Hydra callback: validate a run's config before its run folder exists.

    Registered in ``conf/hydra/default.yaml``. A mistake prints one line and exits 1, as
    :func:`cnnlab.tasks.run_task` does. A multirun is validated at its start, before the
    sweeper creates its folder or its study: the base config and every swept value (see
    :mod:`cnnlab.validation.multirun`).
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from cnnlab.console import exit_on_user_error

        with exit_on_user_error(str(config.get("task", "")), log_it=False):
            validate_run(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        from cnnlab.errors import find_user_error, tracebacks_wanted
        from cnnlab.validation.multirun import validate_multirun

        # Not exit_on_user_error: in a multirun it lets errors through, for the sweeper to
        # record a failed trial; here no trial exists yet.
        before = HydraConfig.instance().cfg
        try:
            validate_multirun(config)
        except Exception as exc:
            user_error = find_user_error(exc)
            if user_error is None or tracebacks_wanted():
                raise
            print(f"cnnlab {config.get('task', '')}: error: {user_error}", file=sys.stderr)
            raise SystemExit(1) from None
        finally:
            HydraConfig.instance().cfg = before  # the probe jobs set theirs (task_config)


def validate_run(config: DictConfig) -> None:
    """Validate a single run's config as Hydra composed it (with its ``hydra`` node).

    Runs :func:`validate_config` on the task's part of the config, resolved as the job will
    see it, with the run folder that Hydra is about to create.
    """
    run_dir = run_dir_of(config)
    validate_config(str(config.get("task", "")), task_config(config, run_dir), run_dir)


def task_config(config: DictConfig, run_dir: str) -> DictConfig:
    """The job's config as the task will see it: ``hydra`` removed, run folder known.

    ``paths.run_dir`` interpolates ``hydra:runtime.output_dir``, which Hydra sets only when
    the job starts; set it the same way now so the task's config resolves.
    """
    from hydra.core.hydra_config import HydraConfig

    with read_write(config.hydra.runtime), open_dict(config.hydra.runtime):
        config.hydra.runtime.output_dir = os.path.abspath(run_dir)
    HydraConfig.instance().set_config(config)
    task_cfg = copy.deepcopy(config)
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    return task_cfg
