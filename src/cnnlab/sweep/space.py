"""Search spaces in Hydra's override grammar, turned into Optuna distributions.

The grammar is hydra-optuna-sweeper's, mapped onto Optuna's current
distributions:

========================================  ==============================================
override                                  distribution
========================================  ==============================================
``k=choice(a, b, c)``, ``k=a,b,c``        ``CategoricalDistribution([a, b, c])``
``k=range(1, 9, 2)``                      ``IntDistribution(1, 7, step=2)`` (Hydra's values)
``k=range(0, 1, 0.25)``                   ``FloatDistribution(0, 0.75, step=0.25)``
``k=shuffle(range(...))``                 ``CategoricalDistribution`` of the range's values
``k=interval(0, 1)``                      ``FloatDistribution(0, 1)``
``k=int(interval(1, 8))``                 ``IntDistribution(1, 8)``
``k=tag(log, interval(1e-4, 1e-1))``      ``FloatDistribution(1e-4, 1e-1, log=True)``
``k=value``                               fixed: passed to every trial unchanged
========================================  ==============================================

``range`` stops before its end, as everywhere in Hydra, so every sampler tries
exactly the values a basic multirun would.
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
from cnnlab.runs.scrub import SECRET_KEY_PATTERN

_PARSER = OverridesParser.create()


@dataclass
class SearchSpace:
    """What a sweep varies and what it keeps fixed.

    Attributes:
        distributions: Parameter name (a config key) -> Optuna distribution.
        prefixes: Parameter name -> its override prefix (``+``, ``++`` or empty).
        fixed: Overrides passed unchanged to every trial, as written.
    """

    distributions: dict[str, BaseDistribution] = field(default_factory=dict)
    prefixes: dict[str, str] = field(default_factory=dict)
    fixed: dict[str, str] = field(default_factory=dict)

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """Return the Hydra overrides of one trial: the fixed ones, then ``params``."""
        lines = list(self.fixed.values())
        for name, value in params.items():
            lines.append(f"{self.prefixes.get(name, '')}{name}={format_value(value)}")
        return lines


def parse_search_space(params: dict[str, Any] | None, arguments: list[str]) -> SearchSpace:
    """Build the search space from ``hydra.sweeper.params`` and command-line overrides.

    A key given on the command line replaces the same key of ``params``.

    Args:
        params: The ``hydra.sweeper.params`` mapping (key -> override value), or None.
        arguments: The command line's overrides (sweeps and fixed values).

    Raises:
        ConfigError: A value cannot be parsed or is not a valid search dimension; the
            key is ``hydra.sweeper.params.<key>`` or the command line's key.
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
        space.distributions.pop(name, None)
        space.fixed.pop(name, None)
        distribution = distribution_from_override(override, key)
        if distribution is not None and SECRET_KEY_PATTERN.search(name):
            # Optuna stores every trial's parameters in the study, where no mask can reach.
            raise ConfigError(key, "looks like a secret; a secret cannot be a search dimension")
        if distribution is None:
            space.fixed[name] = override.input_line or line
        else:
            space.distributions[name] = distribution
            space.prefixes[name] = _prefix(override)
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
        return _range_distribution(override, value, key)
    if isinstance(value, IntervalSweep):
        return _interval_distribution(value, key)
    raise ConfigError(key, f"{override.input_line!r} is not supported by the Optuna sweeper")


def _range_distribution(override: Override, value: RangeSweep, key: str) -> BaseDistribution:
    values = cast("list[float]", list(override.sweep_iterator()))  # a range yields numbers
    if not values:
        raise ConfigError(key, f"range({value.start}, {value.stop}, {value.step}) is empty")
    low, high = min(values), max(values)
    step = abs(value.step) if value.step is not None else 1
    if all(isinstance(v, int) for v in (value.start, value.stop, step)):
        return IntDistribution(int(low), int(high), step=int(step))
    return FloatDistribution(float(low), float(high), step=float(step))


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
        # Round away the float error of low + i * step so values match Hydra's range.
        return [round(distribution.low + i * distribution.step, 12) for i in range(n)]
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


def _name(override: Override) -> str:
    key = override.key_or_group
    return key if override.package is None else f"{key}@{override.package}"


def _prefix(override: Override) -> str:
    key_element = override.get_key_element()
    return key_element[: len(key_element) - len(_name(override))]
