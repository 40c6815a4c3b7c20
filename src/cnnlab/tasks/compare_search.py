"""``cnnlab compare-search``: grid vs random vs TPE with equal budgets, as in the material.

Reproduces Bergstra and Bengio (2012) on f(x, y) = g(x) + h(y), where only x
matters: with nine trials a 3x3 grid tries three values of x, random search
nine. Writes ``nine_trials.png``, ``regret.png``, ``results.json`` and
``report.md`` into ``--out``.

``cnnlab compare-search mode=train`` does the same on real training: grid,
random and TPE sweeps of LeNet-5 on the digits through ``cnnlab train -m``
(:mod:`cnnlab.course.search`), one resumable study per method and seed.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from cnnlab.console import OneLineParser, exit_on_user_error
from cnnlab.tasks.runs import outputs_root

NOTE = (
    "objective=synthetic: Optuna's grid, random and TPE samplers minimise the analytic "
    "f(x, y) = g(x) + h(y) directly (no training); g(x) = (x - x0)^2, "
    "h(y) = 0.01 (y - y0)^2, with (x0, y0) drawn anew for every repeat."
)


# Each repeat seeds Optuna's samplers with ``seed * 100_003 + repeat`` (cnnlab.course.compare),
# and numpy takes seeds below 2**32 only.
SEED_MAX = (2**32 - 1) // 100_003 - 1


def _seed(text: str) -> int:
    """``--seed``: an integer in [0, SEED_MAX] (argparse turns the error into exit 2)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, {SEED_MAX}], got {text!r}")
    return value


def check_out_folder(parser: argparse.ArgumentParser, flag: str, out: Path) -> None:
    """Refuse an output folder that cannot be made or written, before any work (exit 2).

    A file in its place, a folder under ``/proc`` or a read-only disk would otherwise be
    found only when the results are written, after minutes of sweeps.
    """
    from cnnlab.validation.rules import Folder

    problem = Folder().problem(str(out))
    if problem is not None:
        parser.error(f"{flag}: {problem}")


def main(argv: list[str]) -> int:
    """Run the comparison; print the table; write the plots and the report."""
    from cnnlab.course.page import save_text
    from cnnlab.course.search import DEFAULT_EPOCHS

    parser = OneLineParser(prog="cnnlab compare-search", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mode",
        choices=["synthetic", "train"],
        default="synthetic",
        help="synthetic: the analytic f(x, y); train: real LeNet-5 sweeps (also `mode=train`)",
    )
    parser.add_argument("--objective", choices=["synthetic"], default="synthetic")
    parser.add_argument("--budgets", type=int, nargs="+", default=[9, 16, 25, 64])
    parser.add_argument("--repeats", type=int, default=30, help="random problems per budget")
    parser.add_argument("--seed", type=_seed, default=0, help=f"in [0, {SEED_MAX}] (0)")
    parser.add_argument("--out", type=Path, default=None, help="(outputs/compare_search/<time>)")
    train = parser.add_argument_group("mode=train")
    train.add_argument("--seeds", type=int, default=3, help="sweep seeds per method (3)")
    train.add_argument("--trials", type=int, default=9, help="trials per sweep, a square (9)")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help="epochs per trial (4)")
    train.add_argument(
        "--limit-batches", type=int, default=None, help="batches per epoch (all): smoke tests"
    )
    # `mode=train`, Hydra-style like the other tasks, is the same as `--mode train`.
    args = parser.parse_args([f"--{a}" if a.startswith("mode=") else a for a in argv])
    check, run = (_check_train, _train) if args.mode == "train" else (_check_synthetic, _synthetic)
    out = check(args, parser)
    check_out_folder(parser, "--out", out)
    # A file that cannot be written (named) is one line and exit 1, in either mode.
    with exit_on_user_error("compare-search", log_it=False):
        results, report = run(args, out)
        save_text(out / "results.json", json.dumps(results, indent=2))
        save_text(out / "report.md", "\n".join(report))
    print(f"wrote {out}")
    return 0


def _check_synthetic(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """Refuse a budget that is no square or too few repeats (exit 2); return the folder."""
    from cnnlab.course.compare import grid_side

    for budget in args.budgets:
        try:
            grid_side(budget)
        except ValueError as exc:
            parser.error(f"--budgets: {exc}")
    if args.repeats < 2:
        parser.error("--repeats: needs at least 2")
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
    return args.out or outputs_root() / "compare_search" / stamp


def _synthetic(args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], list[str]]:
    """The samplers on the analytic f(x, y), many random problems per budget."""
    from cnnlab.course.compare import compare, summarise
    from cnnlab.files.atomic import output_errors

    print(NOTE)
    results = compare(args.budgets, args.repeats, args.seed, progress=print)
    table = {
        s: {b: summarise(outcomes) for b, outcomes in by_budget.items()}
        for s, by_budget in results.items()
    }
    lines = _table(table, args.budgets)
    print("\n".join(lines))
    with output_errors(out):
        out.mkdir(parents=True, exist_ok=True)
    _plot_nine(results, args.budgets, out / "nine_trials.png")
    _plot_regret(table, args.budgets, out / "regret.png")
    summary = {"note": NOTE, "repeats": args.repeats, "seed": args.seed, "summary": table}
    report = ["# Grid vs random vs TPE", "", NOTE, "", *lines, ""]
    return summary, [*report, "![nine trials](nine_trials.png)", "", "![regret](regret.png)", ""]


def _check_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Path:
    """Refuse counts below 1 or a trial count that is no square (exit 2); return the folder."""
    from cnnlab.course import search
    from cnnlab.course.compare import grid_side

    for flag, value in (
        ("--seeds", args.seeds),
        ("--epochs", args.epochs),
        ("--limit-batches", args.limit_batches),
    ):
        if value is not None and value < 1:
            parser.error(f"{flag}: needs at least 1, got {value}")
    try:
        grid_side(args.trials)
    except ValueError as exc:
        parser.error(f"--trials: {exc}")
    # A fixed default folder: re-running the same command resumes its studies.
    return args.out or search.default_out()


def _train(args: argparse.Namespace, out: Path) -> tuple[dict[str, Any], list[str]]:
    """Grid, random and TPE sweeps of real LeNet-5 training, several seeds each."""
    from cnnlab.course import search
    from cnnlab.course.studies import create_folders

    extra = []
    if args.limit_batches is not None:
        n = args.limit_batches
        extra = [f"trainer.limit_train_batches={n}", f"trainer.limit_val_batches={n}"]
    seeds = list(range(1, args.seeds + 1))
    create_folders(out)
    sweeps, results = search.run_search(out, seeds, args.trials, args.epochs, extra)
    summary = {method: search.summarise(by_seed) for method, by_seed in results.items()}
    lines = search.table(summary)
    print("\n".join(lines))
    search.plot_trials(results, out / "nine_trials.png")
    commands = {
        method: {str(seed): sweep.command() for seed, sweep in by_seed.items()}
        for method, by_seed in sweeps.items()
    }
    note = (
        f"mode=train: LeNet-5 on the digits, {args.trials} trials per sweep, {args.epochs} "
        f"epochs per trial, seeds {seeds}; log learning rate in {search.LR_RANGE}, weight "
        f"decay in {search.WD_RANGE}; the value is each trial's best validation accuracy, "
        f"read from the studies in {out / 'studies.db'}."
    )
    report = ["# Grid vs random vs TPE on real training", "", note, "", *lines, ""]
    report += ["![trials](nine_trials.png)", "", "Commands (one study each):", ""]
    report += [f"- `{c}`" for by_seed in commands.values() for c in by_seed.values()]
    return {"note": note, "summary": summary, "commands": commands}, [*report, ""]


def _table(table: dict[str, dict[int, dict[str, float]]], budgets: list[int]) -> list[str]:
    lines = [
        "| strategy | budget | mean regret | 95% CI | median regret | distinct x | distinct y |",
        "|---|---|---|---|---|---|---|",
    ]
    for budget in budgets:
        for strategy, by_budget in table.items():
            s = by_budget[budget]
            lines.append(
                f"| {strategy} | {budget} | {s['mean_regret']:.2e} | {s['ci95']:.1e} | "
                f"{s['median_regret']:.2e} | {s['distinct_x']:.1f} | {s['distinct_y']:.1f} |"
            )
    return lines


def _plot_nine(results: dict[str, Any], budgets: list[int], path: Path) -> None:
    """The first problem's trials on the plane, with g along x and h along y."""
    from cnnlab.course.page import marginal_panels, save_png

    budget = min(budgets)
    fig, panels = marginal_panels(len(results), wspace=0.35)
    xs = [i / 200 for i in range(201)]
    for strategy, (main_ax, top, side) in zip(results, panels, strict=True):
        outcome = results[strategy][budget][0]
        px, py = zip(*outcome.points, strict=True)
        main_ax.scatter(px, py, s=28, color="tab:blue")
        problem = outcome.problem
        main_ax.axvline(problem.x0, color="tab:red", lw=0.8, ls="--")
        main_ax.set(
            xlim=(-0.03, 1.03), ylim=(-0.03, 1.03), xlabel="x (important)", ylabel="y (unimportant)"
        )
        top.plot(xs, [-problem.g(x) for x in xs], color="tab:green")
        for x in px:
            top.axvline(x, color="tab:blue", lw=0.6, alpha=0.6)
        top.set_title(
            f"{strategy}: {outcome.distinct(0)} distinct x, {outcome.distinct(1)} distinct y",
            fontsize=9,
        )
        top.text(0.0, 0.0, "g(x)", fontsize=8, transform=top.transAxes)
        top.axis("off")
        side.plot([-problem.h(y) for y in xs], xs, color="tab:green")
        # h on g's scale: a near-flat line is the point (y barely matters).
        side.set_xlim(-max(problem.g(0.0), problem.g(1.0)), 0.0)
        side.set_title("h(y)", fontsize=8)
        side.axis("off")
    fig.suptitle(
        f"{budget} trials on f(x, y) = g(x) + h(y): g (top) matters, h (right) barely", fontsize=10
    )
    save_png(fig, path)


def _plot_regret(
    table: dict[str, dict[int, dict[str, float]]], budgets: list[int], path: Path
) -> None:
    from cnnlab.course.page import pyplot, save_png

    fig, ax = pyplot().subplots(figsize=(6, 4))
    for strategy, by_budget in table.items():
        mean = [by_budget[b]["mean_regret"] for b in budgets]
        half = [by_budget[b]["ci95"] for b in budgets]
        ax.plot(budgets, mean, marker="o", label=strategy)
        ax.fill_between(
            budgets,
            [max(m - h, 1e-12) for m, h in zip(mean, half, strict=True)],
            [m + h for m, h in zip(mean, half, strict=True)],
            alpha=0.2,
        )
    ax.set(xscale="log", yscale="log", xlabel="trials (budget)", ylabel="regret (mean, 95% CI)")
    ax.set_xticks(budgets, [str(b) for b in budgets])
    ax.legend()
    ax.grid(alpha=0.3)
    save_png(fig, path)
