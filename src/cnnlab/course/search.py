"""Grid vs random vs TPE on real training (``cnnlab compare-search mode=train``).

The material's nine-trial picture with LeNet-5 on the digits in place of the
analytic f(x, y): the log learning rate matters, a small weight decay barely
does. For every method and sweep seed, one study of ``trials`` trials runs
through cnnlab's Optuna sweeper (``experiment=search_lr_wd``); the summary is
read back from the studies.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cnnlab.course.compare import grid_side
from cnnlab.course.studies import Sweep, TrialResult, read_trials, run_sweep

METHODS = ("grid", "random", "tpe")
# Epochs per trial: enough for the learning rate to matter, a few seconds each.
DEFAULT_EPOCHS = 4
EXPERIMENT = "search_lr_wd"
# The ranges of conf/experiment/search_lr_wd.yaml (log scale); the grid takes cell centres.
LR_RANGE = (1e-4, 1e-1)
WD_RANGE = (1e-6, 1e-4)


def default_out() -> Path:
    """Where ``compare-search mode=train`` and ``make experiments`` keep their studies (shared,
    so that either command reuses the other's finished sweeps)."""
    import os

    return Path(os.environ.get("CNNLAB_OUTPUTS", "outputs")) / "compare_search" / "train"


def grid_values(low: float, high: float, k: int) -> list[float]:
    """``k`` values at the centres of ``k`` equal cells of [low, high] on a log scale."""
    lo, hi = math.log10(low), math.log10(high)
    return [float(f"{10 ** (lo + (i + 0.5) * (hi - lo) / k):.3g}") for i in range(k)]


def search_sweeps(
    out: Path, seeds: Sequence[int], trials: int, epochs: int, extra: Sequence[str] = ()
) -> dict[str, dict[int, Sweep]]:
    """One :class:`Sweep` per method and seed, all stored in ``out/studies.db``.

    Raises:
        ValueError: ``trials`` is not a square (the grid is k x k).
    """
    k = grid_side(trials)
    common = [f"experiment={EXPERIMENT}", f"trainer.max_epochs={epochs}", *extra]
    grid = [
        f"optimizer.lr=choice({','.join(map(str, grid_values(*LR_RANGE, k)))})",
        f"optimizer.weight_decay=choice({','.join(map(str, grid_values(*WD_RANGE, k)))})",
    ]
    per_method = {
        "grid": ["hydra/sweeper/sampler=grid", *grid],
        "random": ["hydra/sweeper/sampler=random"],
        # Optuna's default of 10 random start-up trials would leave TPE nothing to model.
        "tpe": ["hydra/sweeper/sampler=tpe", f"hydra.sweeper.sampler.n_startup_trials={k}"],
    }
    db = out / "studies.db"
    # Epochs and extra overrides name the study: another budget is another study.
    digest = hashlib.sha1(" ".join(extra).encode()).hexdigest()[:6]
    tag = f"e{epochs}" + (f"-x{digest}" if extra else "")
    return {
        method: {
            seed: Sweep(
                f"search-{method}-seed{seed}-{tag}",
                db,
                (*common, *overrides, f"seed={seed}"),
                trials,
            )
            for seed in seeds
        }
        for method, overrides in per_method.items()
    }


def summarise(trials_by_seed: dict[int, list[TrialResult]]) -> dict[str, Any]:
    """One method's numbers: distinct learning rates and best accuracy, over seeds."""
    best = [max(t.value for t in trials) for trials in trials_by_seed.values()]
    distinct = [
        len({round(t.params["optimizer.lr"], 12) for t in trials})
        for trials in trials_by_seed.values()
    ]
    return {
        "best_val_acc": dict(zip(map(str, trials_by_seed), best, strict=True)),
        "best_mean": statistics.fmean(best),
        "best_std": statistics.stdev(best) if len(best) > 1 else 0.0,
        "distinct_lr": dict(zip(map(str, trials_by_seed), distinct, strict=True)),
        "distinct_lr_mean": statistics.fmean(distinct),
        "trials": sum(len(t) for t in trials_by_seed.values()),
    }


def run_search(
    out: Path,
    seeds: Sequence[int],
    trials: int,
    epochs: int,
    extra: Sequence[str] = (),
    progress: Callable[[str], Any] = print,
) -> tuple[dict[str, dict[int, Sweep]], dict[str, dict[int, list[TrialResult]]]]:
    """Run (or resume) every method x seed study; return the sweeps and their trials."""
    sweeps = search_sweeps(out, seeds, trials, epochs, extra)
    for by_seed in sweeps.values():
        for sweep in by_seed.values():
            run_sweep(sweep, progress)
    results = {
        method: {seed: read_trials(sweep) for seed, sweep in by_seed.items()}
        for method, by_seed in sweeps.items()
    }
    return sweeps, results


def table(summary: dict[str, dict[str, Any]]) -> list[str]:
    """The markdown table of :func:`summarise`'s numbers, one row per method."""
    lines = [
        "| method | trials | distinct lr (mean) | best val acc (mean +- std over seeds) |",
        "|---|---|---|---|",
    ]
    for method, s in summary.items():
        lines.append(
            f"| {method} | {s['trials']} | {s['distinct_lr_mean']:.1f} | "
            f"{s['best_mean']:.4f} +- {s['best_std']:.4f} |"
        )
    return lines


def plot_trials(results: dict[str, dict[int, list[TrialResult]]], path: Path) -> None:
    """The material's figure from real trials: the first seed's trials on the lr x wd plane,
    with the validation accuracy along each axis above and beside it; one panel per method."""
    from cnnlab.course.page import marginal_panels, save_png

    methods = list(results)
    fig, panels = marginal_panels(len(methods), wspace=0.4)
    for col, (method, (main_ax, top, side)) in enumerate(zip(methods, panels, strict=True)):
        seed, trials = next(iter(results[method].items()))
        lr = [t.params["optimizer.lr"] for t in trials]
        wd = [t.params["optimizer.weight_decay"] for t in trials]
        acc = [t.value for t in trials]
        points = main_ax.scatter(lr, wd, c=acc, cmap="viridis", vmin=0.0, vmax=1.0, s=30)
        main_ax.set(
            xscale="log",
            yscale="log",
            xlim=LR_RANGE,
            ylim=WD_RANGE,
            xlabel="learning rate (matters)",
            ylabel="weight decay (barely matters)",
        )
        top.scatter(lr, acc, s=14, color="tab:blue")
        top.set_ylim(0.0, 1.02)
        top.tick_params(labelbottom=False, labelsize=7)
        top.set_title(
            f"{method} (seed {seed}): {len(set(lr))} distinct lr, {len(set(wd))} distinct wd",
            fontsize=9,
        )
        side.scatter(acc, wd, s=14, color="tab:blue")
        side.set_xlim(0.0, 1.02)
        side.tick_params(labelleft=False, labelsize=7)
        side.set_xlabel("val acc", fontsize=8)
        if col == len(methods) - 1:
            fig.colorbar(points, ax=side, label="best val acc")
    size = len(next(iter(results[methods[0]].values())))
    fig.suptitle(f"{size} trials on LeNet-5 / digits: val accuracy along lr (top) and wd (right)")
    save_png(fig, path)
