"""Search spaces in Hydra's override grammar, turned into Optuna distributions.

The grammar is hydra-optuna-sweeper's, mapped onto Optuna's current
distributions:

========================================  ==============================================
override                                  distribution
========================================  ==============================================
``k=choice(a, b, c)``, ``k=a,b,c``        ``CategoricalDistribution([a, b, c])``
``k=range(1, 3)``                         ``IntDistribution(1, 3)``; a grid tries 1, 2
``k=range(1, 9, 2)``                      ``IntDistribution(1, 9, step=2)``; a grid: 1, 3, 5, 7
``k=range(0.5, 5.5, step=1)``             ``FloatDistribution(0.5, 5.5, step=1)``
``k=shuffle(range(...))``                 ``CategoricalDistribution`` of the range's values
``k=interval(0, 1)``                      ``FloatDistribution(0, 1)``
``k=int(interval(1, 8))``                 ``IntDistribution(1, 8)``
``k=tag(log, interval(1e-4, 1e-1))``      ``FloatDistribution(1e-4, 1e-1, log=True)``
``k=value``                               fixed: passed to every trial unchanged
========================================  ==============================================

``range`` follows hydra-optuna-sweeper: for every sampler but the grid its end
is included (``range(1, 3)`` samples 1, 2 or 3); the grid sampler tries Hydra's
own values, end excluded, as a basic multirun would (1, 2). An end that is not
on the step's grid is rounded down onto it (``range(1, 8, 2)`` ends at 7).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import (
    ChoiceSweep,
    ElementType,
    IntervalSweep,
    Override,
    RangeSweep,
    Transformer,
)
from hydra.errors import HydraException
from optuna.distributions import (
    BaseDistribution,
    CategoricalChoiceType,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from cnnlab.errors import ConfigError
from cnnlab.secrets.mask import SECRET_KEY_PATTERN

_PARSER = OverridesParser.create()


@dataclass
class SearchSpace:
    """What a sweep varies and what it keeps fixed.

    Attributes:
        distributions: Parameter name (a config key) -> Optuna distribution.
        prefixes: Parameter name -> its override prefix (``+``, ``++`` or empty).
        fixed: Overrides passed unchanged to every trial, as written.
        range_values: Parameter name -> Hydra's values of its ``range`` (end excluded),
            which a grid tries instead of the distribution's end-inclusive steps.
    """

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)
    range_values: dict[str, list[Any]] = field(default_factory=dict)

    def grid(self) -> dict[str, list[Any]]:
        """Return the values a grid search tries, per parameter.

        Raises:
            ConfigError: A parameter is continuous (an ``interval``) or its range is empty.
        """
        grid = {}
        for name, distribution in self.distributions.items():
            if name in self.range_values:
                values = self.range_values[name]
                if not values:
                    raise ConfigError(name, "this range has no values for a grid search")
            else:
                values = grid_values(name, distribution)
            grid[name] = values
        return grid

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """Return the Hydra overrides of one trial: the fixed ones, then ``params``."""
        swept = [f"{self.prefixes.get(k, '')}{k}={format_value(v)}" for k, v in params.items()]
        return list(self.fixed.values()) + swept


def parse_search_space(params: dict[str, Any] | None, arguments: list[str]) -> SearchSpace:
    """Build the search space from ``hydra.sweeper.params`` and command-line overrides.

    A key given on the command line replaces the same key of ``params``. A value that
    cannot be parsed or is not a valid search dimension is a ``ConfigError`` naming
    ``hydra.sweeper.params.<key>`` or the command line's key.
    """
    space = SearchSpace()
    entries = [(f"{k}={v}", f"hydra.sweeper.params.{k}") for k, v in (params or {}).items()]
    entries += [(line, "") for line in arguments]
    for line, where in entries:
        try:
            override = _PARSER.parse_override(line)
        except HydraException as exc:
            raise ConfigError(where or line.split("=", 1)[0], str(exc).splitlines()[0]) from None
        name = _name(override)
        key = where or name
        for table in (space.distributions, space.fixed, space.range_values):
            table.pop(name, None)
        distribution = distribution_from_override(override, key)
        if distribution is not None and SECRET_KEY_PATTERN.search(name):
            # Optuna stores every trial's parameters in the study, where no mask can reach.
            raise ConfigError(key, "looks like a secret; a secret cannot be a search dimension")
        if distribution is None:
            space.fixed[name] = override.input_line or line
            continue
        space.distributions[name] = distribution
        space.prefixes[name] = _prefix(override)
        value = override.value()
        if isinstance(value, RangeSweep) and not value.shuffle:
            values = cast("list[float]", list(override.sweep_iterator()))  # a range: numbers
            space.range_values[name] = [_round(v) for v in values]
    return space


def distribution_from_override(override: Override, key: str) -> BaseDistribution | None:
    """Return the distribution a sweep override describes, or None for a fixed value.

    Raises:
        ConfigError: Unsupported sweep (``glob``), empty choice, bad bounds, or log
            scale on a non-positive interval; the message starts with ``key``.
    """
    if not override.is_sweep_override():
        return None
    value = override.value()
    if isinstance(value, ChoiceSweep) or (isinstance(value, RangeSweep) and value.shuffle):
        choices: Sequence[ElementType] = list(
            override.sweep_iterator(transformer=Transformer.encode)
        )
        if isinstance(value, RangeSweep):  # shuffle: the order is the sampler's business
            choices = sorted(cast("list[float]", choices))  # a range yields numbers
        if not choices:
            raise ConfigError(key, "choice() needs at least one value")
        for choice in choices:
            if not isinstance(choice, str | int | float | bool):
                raise ConfigError(key, f"choices must be str, int, float or bool, got {choice!r}")
        # The loop above checked every choice's type.
        return CategoricalDistribution(cast("Sequence[CategoricalChoiceType]", choices))
    if isinstance(value, RangeSweep):
        return _range_distribution(value, key)
    if isinstance(value, IntervalSweep):
        return _interval_distribution(value, key)
    raise ConfigError(key, f"{override.input_line!r} is not supported by the Optuna sweeper")


def _range_distribution(value: RangeSweep, key: str) -> BaseDistribution:
    """``range(start, stop, step)`` with its end included, as hydra-optuna-sweeper has it."""
    start, stop = value.start, value.stop
    step = value.step if value.step is not None else 1
    if start is None or stop is None or step == 0:
        raise ConfigError(key, f"range({start}, {stop}, {step}) needs a start, a stop and a step")
    # Whole steps from start towards stop; the small slack absorbs float error (0.3 / 0.1).
    n_steps = math.floor((stop - start) / step + 1e-9)
    if n_steps < 0:
        raise ConfigError(key, f"range({start}, {stop}, {step}) is empty")
    end = start + n_steps * step
    low, high = min(start, end), max(start, end)
    if all(isinstance(v, int) for v in (start, stop, step)):
        return IntDistribution(int(low), int(high), step=abs(int(step)))
    return FloatDistribution(_round(low), _round(high), step=abs(float(step)))


def _interval_distribution(value: IntervalSweep, key: str) -> BaseDistribution:
    low, high = value.start, value.end
    if low is None or high is None or not low < high:
        raise ConfigError(key, f"interval({low}, {high}) needs start < end")
    log = "log" in value.tags
    if log and low <= 0:
        raise ConfigError(key, f"a log-scale interval needs start > 0, got {low}")
    if isinstance(low, int) and isinstance(high, int):
        return IntDistribution(low, high, log=log)
    return FloatDistribution(float(low), float(high), log=log)


def grid_values(name: str, distribution: BaseDistribution) -> list[Any]:
    """Return every value a grid search tries for one parameter.

    Raises:
        ConfigError: The distribution is continuous (an ``interval``); a grid needs
            ``choice`` or ``range``.
    """
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, IntDistribution) and not distribution.log:
        return list(range(distribution.low, distribution.high + 1, distribution.step))
    if isinstance(distribution, FloatDistribution) and distribution.step is not None:
        n = round((distribution.high - distribution.low) / distribution.step) + 1
        return [_round(distribution.low + i * distribution.step) for i in range(n)]
    raise ConfigError(
        name, "grid search needs discrete values: use choice(...) or range(...), not interval"
    )


def format_value(value: Any) -> str:
    """Write ``value`` so that Hydra's override parser reads it back unchanged."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, int):
        return str(value)
    text = str(value)
    try:
        parsed = _PARSER.parse_override(f"k={text}")
        if not parsed.is_sweep_override() and parsed.value() == text:
            return text
    except HydraException:
        pass
    escaped = text.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def create_optuna_distribution_from_override(override: Override) -> BaseDistribution | str:
    """hydra-optuna-sweeper's helper, same name and result: a distribution or the value.

    A sweep override gives its distribution; any other gives its value as written.
    """
    distribution = distribution_from_override(override, override.get_key_element())
    return override.get_value_element_as_str() if distribution is None else distribution


def create_params_from_overrides(
    arguments: list[str],
) -> tuple[dict[str, BaseDistribution], dict[str, str], list[str]]:
    """hydra-optuna-sweeper's helper, same name and result, for code written against it.

    Returns:
        The distributions and the fixed values, both keyed by the override's key as written
        (``+w`` stays ``+w``), and the deletions (``~key``) as written.
    """
    distributions: dict[str, BaseDistribution] = {}
    fixed: dict[str, str] = {}
    deletions: list[str] = []
    for line in arguments:
        override = _PARSER.parse_override(line)
        if override.is_delete():
            deletions.append(override.input_line or line)
            continue
        value = create_optuna_distribution_from_override(override)
        if isinstance(value, BaseDistribution):
            distributions[override.get_key_element()] = value
        else:
            fixed[override.get_key_element()] = value
    return distributions, fixed, deletions


def _round(value: float) -> float:
    """Round away the float error of ``start + i * step``, so 0.7 stays 0.7."""
    return round(value, 12) if isinstance(value, float) else value


def _name(override: Override) -> str:
    key = override.key_or_group
    return key if override.package is None else f"{key}@{override.package}"


def _prefix(override: Override) -> str:
    key_element = override.get_key_element()
    return key_element[: len(key_element) - len(_name(override))]
