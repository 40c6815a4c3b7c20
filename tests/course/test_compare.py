"""``cnnlab compare-search``: the material's grid-vs-random point, reproduced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnnlab.course.compare import Problem, compare, grid_side, run_strategy, summarise


def test_nine_trials_three_distinct_x_for_grid_nine_for_random() -> None:
    problem = Problem(0.42, 0.7)
    grid = run_strategy("grid", problem, 9, seed=0)
    rand = run_strategy("random", problem, 9, seed=0)
    assert (grid.distinct(0), grid.distinct(1)) == (3, 3)
    assert (rand.distinct(0), rand.distinct(1)) == (9, 9)
    # The grid's best x is its closest grid value to 0.42: 0.5.
    assert grid.regret == pytest.approx(0.08**2 + 0.01 * min((v - 0.7) ** 2 for v in (0, 0.5, 1)))


def test_random_beats_grid_on_average() -> None:
    results = compare([9], repeats=12, seed=3, strategies=("grid", "random"))
    grid, rand = summarise(results["grid"][9]), summarise(results["random"][9])
    assert rand["mean_regret"] < grid["mean_regret"]


def test_grid_needs_square_budgets() -> None:
    with pytest.raises(ValueError, match="budget 10 is not a square"):
        grid_side(10)


def test_command_writes_figures_and_table(tmp_path: Path, run_cli, capsys) -> None:
    out = tmp_path / "cmp"
    with pytest.raises(SystemExit) as exit_info:
        run_cli("compare-search", "--budgets", "9", "16", "--repeats", "2", "--out", str(out))
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "directly (no training)" in printed
    assert "| grid | 9 |" in printed and "| 3.0 | 3.0 |" in printed
    for name in ("nine_trials.png", "regret.png", "report.md"):
        assert (out / name).stat().st_size > 0
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert summary["random"]["9"]["distinct_x"] == 9.0


def test_command_rejects_a_non_square_budget(run_cli, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("compare-search", "--budgets", "10")
    assert exit_info.value.code == 2
    assert "--budgets: budget 10 is not a square" in capsys.readouterr().err
