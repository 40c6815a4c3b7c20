"""The params grammar -> Optuna distribution table, grid values and value formatting.

``range`` follows hydra-optuna-sweeper: its end is part of the distribution every
sampler but the grid draws from; the grid tries Hydra's values (end excluded).
"""

from __future__ import annotations

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from cnnlab.errors import ConfigError
from cnnlab.sweep.space import (
    create_optuna_distribution_from_override,
    create_params_from_overrides,
    format_value,
    grid_values,
    parse_search_space,
)

INT = IntDistribution
FLOAT = FloatDistribution
CAT = CategoricalDistribution


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("k=choice(1, 2, 3)", CAT([1, 2, 3])),
        ("k=1,2,3", CAT([1, 2, 3])),
        ("k=choice(a, b)", CAT(["a", "b"])),
        ("k=choice(true, false)", CAT([True, False])),
        ("k=choice(0.1, x, 3)", CAT([0.1, "x", 3])),
        ("k=range(1, 3)", INT(1, 3)),
        ("k=range(1, 9, 2)", INT(1, 9, step=2)),
        ("k=range(1, 8, 2)", INT(1, 7, step=2)),
        ("k=range(5, 1, -2)", INT(1, 5, step=2)),
        ("k=range(0, 1, 0.25)", FLOAT(0.0, 1.0, step=0.25)),
        ("k=range(0.5, 5.5, step=1)", FLOAT(0.5, 5.5, step=1)),
        ("k=range(0, 1, 0.3)", FLOAT(0.0, 0.9, step=0.3)),
        ("k=shuffle(range(1, 4))", CAT([1, 2, 3])),
        ("k=interval(0, 1)", FLOAT(0.0, 1.0)),
        ("k=interval(0.5, 2.5)", FLOAT(0.5, 2.5)),
        ("k=int(interval(1, 8))", INT(1, 8)),
        ("k=tag(log, interval(1e-4, 1e-1))", FLOAT(1e-4, 1e-1, log=True)),
        ("k=tag(log, int(interval(1, 1024)))", INT(1, 1024, log=True)),
    ],
)
def test_override_to_distribution(override: str, expected: object) -> None:
    space = parse_search_space(None, [override])
    assert space.distributions == {"k": expected}
    assert space.fixed == {}


def test_fixed_values_pass_through_and_cli_wins() -> None:
    space = parse_search_space(
        {"optimizer.lr": "interval(0.001, 0.1)", "data.batch_size": "choice(32, 64)"},
        ["optimizer.lr=0.01", "+extra.key=[1,2]", "norm=batch", "~callbacks.early_stopping"],
    )
    assert list(space.distributions) == ["data.batch_size"]
    assert space.fixed == {
        "optimizer.lr": "optimizer.lr=0.01",
        "extra.key": "+extra.key=[1,2]",
        "norm": "norm=batch",
        "callbacks.early_stopping": "~callbacks.early_stopping",
    }


def test_prefixes_survive_into_trial_overrides() -> None:
    space = parse_search_space(None, ["+model.extra=choice(a, b)", "trainer.max_epochs=3"])
    assert space.overrides({"model.extra": "a"}) == ["trainer.max_epochs=3", "+model.extra=a"]


@pytest.mark.parametrize(
    ("params", "arguments", "key", "needle"),
    [
        ({"a": "interval(2, 1)"}, [], "hydra.sweeper.params.a", "start < end"),
        ({"a": "tag(log, interval(0, 1))"}, [], "hydra.sweeper.params.a", "start > 0"),
        ({}, ["a=range(3, 1)"], "a", "empty"),
        ({}, ["a=glob(*)"], "a", "not supported"),
        ({}, ["a=choice(1,"], "a", ""),
    ],
)
def test_bad_search_space_names_the_key(params, arguments, key, needle) -> None:
    with pytest.raises(ConfigError) as info:
        parse_search_space(params, arguments)
    assert str(info.value).startswith(f"{key}: ")
    assert needle in str(info.value)


@pytest.mark.parametrize(
    ("distribution", "values"),
    [
        (CAT(["a", "b"]), ["a", "b"]),
        (INT(1, 7, step=2), [1, 3, 5, 7]),
        (FLOAT(0.0, 0.75, step=0.25), [0.0, 0.25, 0.5, 0.75]),
        (FLOAT(0.1, 0.3, step=0.1), [0.1, 0.2, 0.3]),
    ],
)
def test_grid_values_are_hydras_range(distribution: object, values: list[object]) -> None:
    assert grid_values("k", distribution) == values  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("override", "values"),
    [
        ("k=range(1, 3)", [1, 2]),
        ("k=range(1, 8, 2)", [1, 3, 5, 7]),
        ("k=range(5, 1, -2)", [5, 3]),
        ("k=range(0, 1, 0.1)", [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]),
        ("k=range(-1.0, 1.0, step=1)", [-1.0, 0.0]),
        ("k=int(interval(1, 3))", [1, 2, 3]),
        ("k=choice(b, a)", ["b", "a"]),
    ],
)
def test_a_grid_tries_hydras_range_values(override: str, values: list[object]) -> None:
    space = parse_search_space(None, [override])
    assert space.grid() == {"k": values}
    # Every grid value lies in the distribution the trial is asked with.
    distribution = space.distributions["k"]
    if isinstance(distribution, CAT):
        assert set(values) <= set(distribution.choices)
    else:
        assert all(distribution.low <= v <= distribution.high for v in values)  # type: ignore[attr-defined]


def test_a_grid_rejects_a_range_without_values() -> None:
    space = parse_search_space(None, ["a=range(3, 3)"])
    assert space.distributions == {"a": INT(3, 3)}
    with pytest.raises(ConfigError, match=r"^a: this range has no values"):
        space.grid()


def test_grid_rejects_continuous_dimensions() -> None:
    with pytest.raises(ConfigError, match=r"^optimizer\.lr: grid search needs discrete"):
        grid_values("optimizer.lr", FLOAT(1e-4, 1e-1, log=True))


@pytest.mark.parametrize(
    "value",
    [None, True, False, 3, -2, 0.1, 1e-05, "batch", "a b", "it's", "1", "null", "x,y", "a=b"],
)
def test_format_value_round_trips_through_hydra(value: object) -> None:
    parsed = OverridesParser.create().parse_override(f"k={format_value(value)}")
    assert not parsed.is_sweep_override()
    assert parsed.value() == value
    assert type(parsed.value()) is type(value)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("k=range(1,3)", INT(1, 3)),
        ("k=choice('x', 'y')", CAT(["x", "y"])),
        ("k=5", "5"),
        ("+k=abc", "abc"),
    ],
)
def test_official_helper_gives_a_distribution_or_the_value(line: str, expected: object) -> None:
    override = OverridesParser.create().parse_override(line)
    assert create_optuna_distribution_from_override(override) == expected


def test_official_helper_splits_space_fixed_values_and_deletions() -> None:
    distributions, fixed, deletions = create_params_from_overrides(
        ["a=choice(1,2)", "b=5", "+c=range(1,3)", "~d", "~e=1"]
    )
    assert distributions == {"a": CAT([1, 2]), "+c": INT(1, 3)}
    assert fixed == {"b": "5"}
    assert deletions == ["~d", "~e=1"]
