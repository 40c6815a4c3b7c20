"""Grid versus random versus TPE at equal budgets (Bergstra and Bengio 2012).

The objective is the material's f(x, y) = g(x) + h(y) on the unit square, to
be minimised: g matters (its optimum x0 is drawn anew for every repeat), h
barely (a hundredth of g's scale). A k x k grid spends its budget on only k
values of x; random search tries a new x every trial. Every strategy runs
through Optuna (GridSampler, RandomSampler, TPESampler) on the analytic
function directly: no network is trained.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

STRATEGIES = ("grid", "random", "tpe")
# h's weight relative to g: the "unimportant" dimension.
H_SCALE = 0.01


@dataclass(frozen=True)
class Problem:
    """One draw of the synthetic objective: optima ``x0`` (important) and ``y0``."""

    x0: float
    y0: float

    def g(self, x: float) -> float:
        """The important part."""
        return (x - self.x0) ** 2

    def h(self, y: float) -> float:
        """The unimportant part."""
        return H_SCALE * (y - self.y0) ** 2

    def __call__(self, x: float, y: float) -> float:
        return self.g(x) + self.h(y)


@dataclass
class Outcome:
    """One strategy's run on one problem: the points tried and the best value (= regret)."""

    problem: Problem
    points: list[tuple[float, float]] = field(default_factory=list)
    regret: float = math.inf

    def distinct(self, axis: int) -> int:
        """How many distinct values of x (axis 0) or y (axis 1) were tried."""
        return len({round(p[axis], 12) for p in self.points})


def grid_side(budget: int) -> int:
    """Return k with k * k == budget.

    Raises:
        ValueError: ``budget`` is not a square (a k x k grid needs one).
    """
    side = math.isqrt(budget)
    if side * side != budget or side < 2:
        raise ValueError(f"budget {budget} is not a square >= 4; a k x k grid needs one")
    return side


def run_strategy(strategy: str, problem: Problem, budget: int, seed: int) -> Outcome:
    """Minimise ``problem`` with ``budget`` Optuna trials of ``strategy``."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if strategy == "grid":
        k = grid_side(budget)
        values = [i / (k - 1) for i in range(k)]
        sampler: optuna.samplers.BaseSampler = optuna.samplers.GridSampler(
            {"x": values, "y": values}, seed=seed
        )
    elif strategy == "random":
        sampler = optuna.samplers.RandomSampler(seed=seed)
    elif strategy == "tpe":
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, budget // 3))
    else:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    study = optuna.create_study(sampler=sampler)
    outcome = Outcome(problem)

    def objective(trial: optuna.Trial) -> float:
        x, y = trial.suggest_float("x", 0.0, 1.0), trial.suggest_float("y", 0.0, 1.0)
        outcome.points.append((x, y))
        return problem(x, y)

    study.optimize(objective, n_trials=budget)
    outcome.regret = study.best_value  # the minimum of f is 0
    return outcome


def compare(
    budgets: Sequence[int],
    repeats: int,
    seed: int = 0,
    strategies: Sequence[str] = STRATEGIES,
    progress: Callable[[str], Any] | None = None,
) -> dict[str, dict[int, list[Outcome]]]:
    """Run every strategy at every budget on ``repeats`` random problems.

    Returns:
        strategy -> budget -> one :class:`Outcome` per repeat (the same problems
        for every strategy).
    """
    import random

    rng = random.Random(seed)
    problems = [Problem(rng.random(), rng.random()) for _ in range(repeats)]
    results: dict[str, dict[int, list[Outcome]]] = {s: {} for s in strategies}
    for budget in budgets:
        for strategy in strategies:
            results[strategy][budget] = [
                run_strategy(strategy, problem, budget, seed=seed * 100_003 + i)
                for i, problem in enumerate(problems)
            ]
            if progress is not None:
                progress(f"{strategy:>6} budget {budget:>3}: done")
    return results


def summarise(outcomes: list[Outcome]) -> dict[str, float]:
    """Mean regret with a 95% confidence half-width, and mean distinct x and y values."""
    regrets = [o.regret for o in outcomes]
    mean = statistics.fmean(regrets)
    half = 1.96 * statistics.stdev(regrets) / math.sqrt(len(regrets)) if len(regrets) > 1 else 0.0
    return {
        "mean_regret": mean,
        "ci95": half,
        "median_regret": statistics.median(regrets),
        "distinct_x": statistics.fmean(o.distinct(0) for o in outcomes),
        "distinct_y": statistics.fmean(o.distinct(1) for o in outcomes),
    }
