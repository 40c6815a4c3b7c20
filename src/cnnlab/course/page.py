"""Turn the studies' trials into ``docs/experiments.md``: tables, plots, one line of verdict.

Nothing here is typed by hand: each row is the mean and standard deviation over
seeds of the trials read from a study, and names the sweep (whose command is
listed under the table) that produced it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.course.studies import Sweep, TrialResult


@dataclass(frozen=True)
class Row:
    """One option of one sweep: its accuracy over seeds."""

    sweep: str
    option: str
    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean best validation accuracy over the seeds."""
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        """Sample standard deviation over the seeds (0 with one seed)."""
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


def rows(sweep: Sweep, trials: list[TrialResult]) -> list[Row]:
    """Group a sweep's trials by every searched parameter but the seed, sorted by option.

    Each row's values are in seed order (a sampler draws the grid's points in any order).
    """
    groups: dict[str, list[float]] = {}
    for trial in sorted(trials, key=lambda t: (_seed_order(t.params.get("seed")), t.number)):
        key = ", ".join(f"{k}={v}" for k, v in sorted(trial.params.items()) if k != "seed")
        groups.setdefault(key, []).append(trial.value)
    return [Row(sweep.name, option, tuple(values)) for option, values in sorted(groups.items())]


def _seed_order(seed: object) -> tuple[int, float | str]:
    """Sort key of a seed value: numbers by value, anything else after them, by text."""
    try:
        return (0, float(seed))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return (1, str(seed))


def timing(trials: list[TrialResult]) -> str:
    """The trials' cost as the study recorded it: count, total and mean seconds."""
    total = sum(t.seconds for t in trials)
    return f"{len(trials)} trials, {total:.0f} s in all, {total / max(len(trials), 1):.1f} s each"


def verdict(table: list[Row]) -> str:
    """One generated sentence: the best option, and whether its lead exceeds the spread."""
    if len(table) < 2:
        return "Too few options to compare."
    ranked = sorted(table, key=lambda r: r.mean, reverse=True)
    best, second, worst = ranked[0], ranked[1], ranked[-1]
    gap = best.mean - second.mean
    spread = max(best.std, second.std)
    lead = (
        "a lead larger than the spread over seeds"
        if gap > spread
        else "a lead within the spread over seeds (not a clear winner)"
    )
    return (
        f"Best mean: {best.option} ({best.mean:.4f} +- {best.std:.4f}), "
        f"{gap:.4f} ahead of {second.option}: {lead} (largest std {spread:.4f}). "
        f"Worst: {worst.option} ({worst.mean:.4f})."
    )


def markdown_table(table: list[Row]) -> list[str]:
    """The rows as a markdown table (mean +- std over seeds, each seed's value, the sweep)."""
    lines = [
        "| option | best val acc (mean +- std) | seeds | per seed | sweep (command below) |",
        "|---|---|---|---|---|",
    ]
    for row in table:
        per_seed = ", ".join(f"{v:.4f}" for v in row.values)
        lines.append(
            f"| {row.option} | {row.mean:.4f} +- {row.std:.4f} | {len(row.values)} | "
            f"{per_seed} | `{row.sweep}` |"
        )
    return lines


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend: plots go to files, no display is needed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(tables: dict[str, list[Row]], title: str, path: Path) -> None:
    """Bars of mean accuracy with std error bars, one panel per sweep."""
    fig, axes = pyplot().subplots(
        1,
        len(tables),
        figsize=(max(5.0, 0.55 * max(len(t) for t in tables.values())) * len(tables), 4),
    )
    for ax, (label, table) in zip(
        [axes] if len(tables) == 1 else axes, tables.items(), strict=True
    ):
        # Values only ("adam, 0.01"): the keys are in the table.
        names = [", ".join(p.split("=", 1)[-1] for p in r.option.split(", ")) for r in table]
        ax.bar(range(len(table)), [r.mean for r in table], yerr=[r.std for r in table], capsize=3)
        ax.set_xticks(range(len(table)), names, rotation=60, ha="right", fontsize=7)
        low = min(r.mean - r.std for r in table)
        ax.set_ylim(max(0.0, low - 0.05), 1.0)
        ax.set(ylabel="best val acc (mean +- std)", title=label)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(title, fontsize=10)
    save_png(fig, path, dpi=80)


def marginal_panels(count: int, wspace: float) -> tuple[Any, list[tuple[Any, Any, Any]]]:
    """A figure of ``count`` (main, top, side) panels: the material's nine-trials picture,
    where the strips above and beside the plane show how much each axis matters."""
    fig = pyplot().figure(figsize=(4.2 * count, 4.6))
    grid = fig.add_gridspec(
        2, 2 * count, width_ratios=[4, 1] * count, height_ratios=[1, 4], wspace=wspace
    )
    panels = []
    for col in range(count):
        main = fig.add_subplot(grid[1, 2 * col])
        top = fig.add_subplot(grid[0, 2 * col], sharex=main)
        panels.append((main, top, fig.add_subplot(grid[1, 2 * col + 1], sharey=main)))
    return fig, panels


def save_png(fig: Any, path: Path, dpi: int = 90) -> None:
    """Save ``fig`` as a PNG through a temporary file beside ``path``, then close it.

    A full disk or a path that cannot hold files leaves no truncated plot behind.

    Raises:
        WriteError: ``path`` cannot be written (named in the message).
    """
    from cnnlab.files.atomic import output_errors, replacing

    try:
        with output_errors(path), replacing(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        pyplot().close(fig)


def save_text(path: Path, text: str) -> None:
    """Write a page or its ``results.json`` all or nothing; WriteError names the file."""
    from cnnlab.files.atomic import output_errors, write_text_atomic

    with output_errors(path):
        write_text_atomic(path, text)
