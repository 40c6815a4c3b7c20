"""``cnnlab experiments`` and ``cnnlab compare-search mode=train``: real sweeps, real studies.

The fast tests check the catalogue against the config tree, the page's arithmetic
and the one-line errors of the real command; the slow ones run tiny real sweeps
and compare every number written with the numbers in the Optuna studies.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from pathlib import Path

import optuna
import pytest

from cnnlab.config import config_dir
from cnnlab.course import page, search
from cnnlab.course.catalogue import COMPARISONS, FULL, QUICK
from cnnlab.course.studies import Sweep, TrialResult


def _complete_trials(db: Path) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Every study in ``db`` with its complete trials."""
    storage = f"sqlite:///{db}"
    out = {}
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out[summary.study_name] = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    return out


# --- fast: the catalogue, the arithmetic, the errors ---------------------------------------


def test_catalogue_names_existing_configs_and_options() -> None:
    conf = Path(config_dir())
    names = set()
    for comparison in COMPARISONS:
        for part, sweep in comparison.sweeps(Path("db.sqlite"), FULL):
            names.add(sweep.name)
            experiment = next(o for o in part.overrides if o.startswith("experiment="))
            assert (conf / "experiment" / f"{experiment.split('=')[1]}.yaml").is_file()
            for key, values in part.axes.items():
                if "." not in key:  # a config group: every choice is one of its files
                    for value in values:
                        assert (conf / key / f"{value}.yaml").is_file(), (key, value)
            expected = FULL.seeds
            for values in part.axes.values():
                expected *= len(values)
            assert sweep.n_trials == expected
            assert "seed=choice(1,2,3)" in sweep.overrides
    # One study per sweep: names never collide, and the quick budget has its own.
    assert len(names) == sum(len(c.parts) for c in COMPARISONS)
    quick = {s.name for c in COMPARISONS for _, s in c.sweeps(Path("db"), QUICK)}
    assert not names & quick


def test_rows_group_by_option_over_seeds_and_verdict_compares_gap_with_std() -> None:
    sweep = Sweep("s", Path("db"), (), 4)
    # A sampler may draw the grid's points in any order: each row lists its values by seed.
    trials = [
        TrialResult(0, {"norm": "batch", "seed": 2}, 0.8),
        TrialResult(1, {"norm": "batch", "seed": 1}, 0.9),
        TrialResult(2, {"norm": "none", "seed": 1}, 0.5),
        TrialResult(3, {"norm": "none", "seed": 2}, 0.6),
    ]
    rows = page.rows(sweep, trials)
    assert [(r.option, r.values) for r in rows] == [
        ("norm=batch", (0.9, 0.8)),
        ("norm=none", (0.5, 0.6)),
    ]
    assert rows[0].mean == pytest.approx(0.85)
    assert rows[0].std == pytest.approx(statistics.stdev([0.9, 0.8]))
    line = page.verdict(rows)
    assert line.startswith("Best mean: norm=batch (0.8500")
    assert "larger than the spread" in line
    close = page.verdict([page.Row("s", "a", (0.9, 0.7)), page.Row("s", "b", (0.8, 0.75))])
    assert "within the spread" in close


def test_grid_takes_log_cell_centres() -> None:
    assert search.grid_values(1e-4, 1e-1, 3) == [
        pytest.approx(10**-3.5, rel=1e-2),
        pytest.approx(10**-2.5, rel=1e-2),
        pytest.approx(10**-1.5, rel=1e-2),
    ]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (("compare-search", "mode=train", "--trials", "5"), "--trials"),
        (("compare-search", "mode=train", "--seeds", "0"), "--seeds"),
        (("compare-search", "mode=nope"), "--mode"),
        (("experiments", "--only", "nope"), "--only"),
    ],
)
def test_bad_flags_are_one_line_and_exit_2(
    run_subprocess, tmp_path: Path, args: tuple[str, ...], names: str
) -> None:
    proc = run_subprocess(*args, timeout=60)
    assert proc.returncode == 2
    output = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1 and names in output
    assert not (tmp_path / "outputs").exists()  # nothing half-written


@pytest.mark.parametrize("task", ["compare-search mode=train", "experiments --quick"])
def test_an_output_folder_that_cannot_be_made_is_one_line(
    run_subprocess, tmp_path: Path, task: str
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = run_subprocess(*task.split(), "--out", str(blocker / "out"), timeout=60)
    assert proc.returncode == 2  # refused with the flags, before any work
    output = (proc.stdout + proc.stderr).strip()
    assert "Traceback" not in output
    last = output.splitlines()[-1]
    assert len(output.splitlines()) == 1 and f"--out: cannot create {blocker / 'out'}" in last
    assert blocker.read_text() == "not a folder"


def test_make_experiments_calls_the_command() -> None:
    root = Path(__file__).parents[2]
    for extra, flag in (((), ""), (("QUICK=1",), " --quick")):
        proc = subprocess.run(
            ["make", "-s", "-n", "-C", str(root), "experiments", "STAMP=/dev/null", *extra],
            capture_output=True,
            text=True,
            check=True,
        )
        assert proc.stdout.strip().splitlines()[-1].endswith(f"cnnlab experiments{flag}")


# --- slow: tiny real sweeps --------------------------------------------------------------


@pytest.mark.slow
def test_compare_search_train_reads_its_numbers_from_the_studies(
    run_subprocess, tmp_path: Path
) -> None:
    out = tmp_path / "cs"
    args = ("compare-search", "mode=train", "--seeds", "2", "--trials", "4", "--epochs", "1")
    args += ("--limit-batches", "2", "--out", str(out))
    proc = run_subprocess(*args, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    studies = _complete_trials(out / "studies.db")
    assert len(studies) == 3 * 2 and all(len(t) == 4 for t in studies.values())
    summary = json.loads((out / "results.json").read_text())["summary"]
    for method in search.METHODS:
        for seed in ("1", "2"):
            (trials,) = [
                t for n, t in studies.items() if n.startswith(f"search-{method}-seed{seed}-")
            ]
            assert summary[method]["best_val_acc"][seed] == max(t.value for t in trials)
            lrs = {t.params["optimizer.lr"] for t in trials}
            assert summary[method]["distinct_lr"][seed] == len(lrs)
        best = list(summary[method]["best_val_acc"].values())
        assert summary[method]["best_mean"] == pytest.approx(statistics.fmean(best))
        assert f"| {method} | 8 |" in (out / "report.md").read_text()
    # A 2x2 grid tries two learning rates; random search a new one every trial.
    assert summary["grid"]["distinct_lr_mean"] == 2.0
    assert summary["random"]["distinct_lr_mean"] == 4.0
    assert (out / "nine_trials.png").stat().st_size > 10_000

    # Resumed: every study is complete, so no trial runs again and no sweep starts.
    before = {n: [t.datetime_complete for t in ts] for n, ts in studies.items()}
    again = run_subprocess(*args, timeout=300)
    assert again.returncode == 0
    assert again.stdout.count("already done, skipped") == 6
    after = _complete_trials(out / "studies.db")
    assert {n: [t.datetime_complete for t in ts] for n, ts in after.items()} == before


@pytest.mark.slow
def test_quick_page_rows_come_from_the_studies_and_name_their_command(
    run_subprocess, tmp_path: Path
) -> None:
    out, docs = tmp_path / "exp", tmp_path / "docs" / "experiments.md"
    args = ("experiments", "--quick", "--only", "augmentation", "--out", str(out))
    args += ("--docs", str(docs))
    proc = run_subprocess(*args, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    text = docs.read_text()
    studies = _complete_trials(out / "studies.db")
    (name,) = studies
    assert len(studies[name]) == 5 * QUICK.seeds

    row = re.compile(r"^\| (\S+) \| ([\d.]+) \+- ([\d.]+) \| (\d+) \| ([\d., ]+) \| `(\S+)` \|$")
    rows = [m for line in text.splitlines() if (m := row.match(line))]
    assert len(rows) == 5
    for match in rows:
        option, mean, std, n, per_seed, sweep = match.groups()
        value = option.split("=", 1)[1]
        trials = [t for t in studies[sweep] if t.params["augmentation"] == value]
        values = [t.value for t in sorted(trials, key=lambda t: t.params["seed"])]  # seed order
        assert int(n) == len(values) == QUICK.seeds
        assert float(mean) == pytest.approx(statistics.fmean(values), abs=1e-4)
        assert float(std) == pytest.approx(statistics.stdev(values), abs=1e-4)
        assert [float(v) for v in per_seed.split(", ")] == pytest.approx(values, abs=1e-4)
        # The row's sweep is listed with the exact command that ran it.
        assert re.search(
            rf"^- `{sweep}` \(.*\): `cnnlab train -m .*study_name={sweep}\b", text, re.M
        )
    assert "What the runs say (lenet5): Best mean:" in text
    assert (docs.parent / "experiments" / "augmentation.png").stat().st_size > 5_000

    again = run_subprocess(*args, timeout=300)
    assert again.returncode == 0 and "already done, skipped" in again.stdout
    after = _complete_trials(out / "studies.db")
    assert [t.number for t in after[name]] == [t.number for t in studies[name]]
