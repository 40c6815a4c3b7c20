"""Validate a multirun before its first job: the base config and every swept value.

A single run is checked before its folder exists (:class:`~cnnlab.validation.ValidateConfig`).
A multirun's jobs are composed one by one by the sweeper, so a mistake in the base config or
in one swept value used to surface as a failed job (a traceback, a FAIL trial, a job folder)
only once the sweep had started. Here, at the multirun's start, the jobs that the sweep will
compose are composed first and given the same validation as a single run:

- the first job: every swept key at its first value (the base config with it);
- then each further value of each swept key, the other keys at their first value.

So every swept value is checked once against the base config, in ``1 + sum(values - 1)``
compositions rather than the sweep's product. For the basic sweeper these are jobs the sweep
would run; for cnnlab's Optuna sweeper the values are each ``choice``, and the two bounds of
each ``range`` and ``interval``. A job that varies a number only is the first job's config
with that number set, not composed again. A value that fails only together with another
key's value that is not the first is still found by its job (a failed trial).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from cnnlab.errors import ConfigError, first_line

__all__ = ["Job", "probe_jobs", "validate_multirun"]

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
CNNLAB_SWEEPER = "hydra_plugins.cnnlab_optuna_sweeper"


@dataclass(frozen=True)
class Job:
    """One job to compose: its overrides and, for all but the first, the value it varies."""

    overrides: list[str]
    varied: str | None = None  # e.g. "optimizer.lr=abc"
    swept: list[str] = field(default_factory=list)  # the swept keys


def validate_multirun(config: DictConfig) -> None:
    """Compose and validate the jobs of :func:`probe_jobs` for the multirun of ``config``.

    Leaves Hydra's config set to one of the probe jobs; the caller sets it back.

    Raises:
        ConfigError: The first problem, naming the key (and the swept value when the key is
            another one), or the override that cannot be composed.
    """
    from cnnlab.validation import task_config, validate_config
    from cnnlab.validation.schema import TABLES

    task = str(config.get("task", ""))
    jobs = probe_jobs(config) if task in TABLES else None
    if jobs is None:
        return
    sweep_dir = _sweep_dir(config)
    hydra_overrides = list(OmegaConf.to_container(config.hydra.overrides.hydra) or [])
    first: DictConfig | None = None
    for job in jobs:
        composed = _with_number(first, job) if first is not None else None
        if composed is None:
            composed = _compose(config, [*map(str, hydra_overrides), *job.overrides], job)
        first = first or composed
        try:
            validate_config(task, task_config(composed, sweep_dir), None)
        except ConfigError as exc:
            if job.varied is None or job.varied.split("=", 1)[0].lstrip("+~") == exc.key:
                raise
            raise ConfigError(exc.key, f"{exc.message} (the job with {job.varied})") from exc


def probe_jobs(config: DictConfig) -> list[Job] | None:
    """The jobs to check for ``config``'s sweeper (None for a sweeper cnnlab does not know)."""
    target = str(OmegaConf.select(config, "hydra.sweeper._target_", default=""))
    arguments = [str(a) for a in OmegaConf.to_container(config.hydra.overrides.task) or []]
    node = OmegaConf.select(config, "hydra.sweeper.params", default=None)
    params = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else {}
    params = cast("dict[str, Any]", params)  # a DictConfig gives a dict with str keys
    if target.startswith(CNNLAB_SWEEPER):
        fixed, dimensions = _optuna_dimensions(params, arguments)
    elif target == BASIC_SWEEPER:
        fixed, dimensions = _basic_dimensions(params, arguments)
    else:
        return None
    return list(_jobs(fixed, dimensions))


def _jobs(fixed: list[str], dimensions: dict[str, list[str]]) -> Iterator[Job]:
    first = {key: values[0] for key, values in dimensions.items()}
    swept = list(dimensions)
    yield Job([*fixed, *first.values()], None, swept)
    for key, values in dimensions.items():
        for value in values[1:]:
            yield Job([*fixed, *{**first, key: value}.values()], value, swept)


def _basic_dimensions(
    params: dict[str, Any], arguments: list[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """Hydra's basic sweeper: a job per combination of the discrete sweeps' values.

    Mirrors ``BasicSweeper.split_arguments``: ``hydra.sweeper.params`` first, then the
    command line; a later override of a key replaces an earlier one.
    """
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    lines = [f"{k}={v}" for k, v in (params or {}).items()] + arguments
    by_key: dict[str, list[str]] = {}
    for line in lines:
        try:
            override = OverridesParser.create().parse_override(line)
        except HydraException as exc:
            raise ConfigError(line.split("=", 1)[0], _one_line(exc)) from None
        key = override.get_key_element()
        if not override.is_sweep_override():
            by_key[key] = [f"{key}={override.get_value_element_as_str()}"]
        elif override.is_discrete_sweep():
            values = [f"{key}={value}" for value in override.sweep_string_iterator()]
            if not values:
                raise ConfigError(key, f"{line!r} sweeps over no values")
            by_key[key] = values
        else:
            raise ConfigError(
                key, f"{line!r}: the basic sweeper takes lists, choice() and range() only"
            )
    fixed = [values[0] for values in by_key.values() if len(values) == 1]
    return fixed, {key: values for key, values in by_key.items() if len(values) > 1}


def _optuna_dimensions(
    params: dict[str, Any], arguments: list[str]
) -> tuple[list[str], dict[str, list[str]]]:
    """cnnlab's Optuna sweeper: each choice, and the two ends of each range or interval."""
    from cnnlab.sweep.space import parse_search_space

    space = parse_search_space(params, arguments)  # ConfigError naming a malformed entry
    dimensions = {}
    for name, distribution in space.distributions.items():
        values = _distribution_values(distribution)
        dimensions[name] = [space.overrides({name: v})[-1] for v in values]
    return list(space.fixed.values()), dimensions


def _distribution_values(distribution: Any) -> list[Any]:
    """The values of an Optuna distribution that a sweep may try at its edges."""
    from optuna.distributions import CategoricalDistribution

    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    values = [distribution.low, distribution.high]
    return values[:1] if values[0] == values[1] else values


def _with_number(first: DictConfig, job: Job) -> DictConfig | None:
    """The first job's config with ``job``'s one number set, or None where Hydra must compose.

    A number swept over a key that holds a number (the ends of every ``range`` and
    ``interval``) changes that value only; composing again (Hydra's defaults list, a third of
    a second a job on 2 cores) is needed for a group option, an added or removed key, or a
    value of another type.
    """
    key, _, text = (job.varied or "").partition("=")
    held = OmegaConf.select(first, key, default=None) if key[:1].isalpha() else None
    if isinstance(held, bool) or not isinstance(held, int | float):
        return None
    number = _number(text)
    if number is None:
        return None  # a word, a list, null: as Hydra composes it
    varied = copy.deepcopy(first)
    with read_write(varied), open_dict(varied):
        OmegaConf.update(varied, key, number, merge=False)
    return varied


def _number(text: str) -> int | float | None:
    """``text`` as Hydra reads a number in an override (``3`` an int, ``0.1``/``1e-3`` a float)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return None


def _sweep_dir(config: DictConfig) -> str:
    """The multirun's folder (``hydra.sweep.dir``), resolved; it must be creatable."""
    from cnnlab.validation.rules import creatable_problem

    try:
        sweep_dir = str(OmegaConf.select(config, "hydra.sweep.dir", throw_on_missing=True))
    except OmegaConfBaseException as exc:
        raise ConfigError("hydra.sweep.dir", f"cannot be resolved ({first_line(exc)})") from exc
    problem = creatable_problem(Path(sweep_dir))
    if problem is not None:
        raise ConfigError("hydra.sweep.dir", problem)
    return sweep_dir


def _compose(config: DictConfig, overrides: list[str], job: Job) -> DictConfig:
    """Compose one job as the launcher will (Hydra's overrides, then the job's).

    Raises:
        ConfigError: The job cannot be composed (an unknown option or key); names the
            varied override, or the key of the first job's override that Hydra names.
    """
    from hydra import compose
    from hydra.errors import HydraException

    try:
        composed = compose(
            config_name=str(config.hydra.job.config_name),
            overrides=overrides,
            return_hydra_config=True,
        )
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        # The first job: the swept keys at their first values (the rest composed already).
        where = job.varied or " ".join(job.overrides[len(job.overrides) - len(job.swept) :])
        key = job.varied.split("=", 1)[0] if job.varied else ", ".join(job.swept)
        raise ConfigError(key, f"cannot compose the job with {where}: {_one_line(exc)}") from None
    with read_write(composed.hydra), open_dict(composed.hydra):
        composed.hydra.job.num = 0  # what the launcher sets; ${hydra.job.num} may be used
    return composed


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
