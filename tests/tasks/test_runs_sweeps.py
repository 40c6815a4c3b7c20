"""``cnnlab runs`` on a real sweep's trials, and ``cnnlab runs sweeps``.

One module-scoped cnnlab sweep (a grid of two learning rates, quick trials) is made through
the real ``cnnlab train -m``; every test reads it through the real ``cnnlab runs``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import cnnlab

SWEEP = [
    "hparams_search=grid",
    "data.batch_size=choice(32)",
    "optimizer.lr=choice(0.01,0.002)",
    "debug=limit",
    "trainer.max_epochs=1",
    "logger=none",
]


@dataclass
class Sweep:
    root: Path
    env: dict[str, str]
    folder: Path


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    root = tmp_path_factory.mktemp("runs_sweeps")
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "COLUMNS")}
    env.update(CNNLAB_OUTPUTS=str(root / "outputs"), WANDB_MODE="offline")
    proc = cnnlab("train", "-m", *SWEEP, env=env, cwd=root)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (folder,) = (root / "outputs" / "multiruns" / "train").iterdir()
    return Sweep(root, env, folder)


def _runs(sweep: Sweep, *args: str, columns: int | None = None) -> str:
    env = {**sweep.env, **({"COLUMNS": str(columns)} if columns else {})}
    proc = cnnlab("runs", *args, env=env, cwd=sweep.root)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_the_sweepers_own_overrides_are_no_difference(sweep: Sweep) -> None:
    listed = json.loads(_runs(sweep, "--json"))
    assert len(listed) == 2
    assert all(any(o.startswith("++sweep.") for o in r["overrides"]) for r in listed)
    assert [sorted(r["differing"]) for r in listed] == [["optimizer.lr"], ["optimizer.lr"]]
    table = _runs(sweep)
    assert "sweep." not in table and "optimizer.lr=0.01" in table


def test_the_table_fits_columns_and_cuts_no_value(sweep: Sweep) -> None:
    listed = json.loads(_runs(sweep, "--json"))
    table = _runs(sweep, columns=120)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= 120, table
    assert "…" not in table, table
    # The folder column (the last cell of each line), folded over lines if need be.
    folders = "".join(line.split("│")[-2].strip() for line in lines if line.startswith("│"))
    for run in listed:
        assert str(Path(run["folder"]).relative_to(sweep.root / "outputs")) in folders
        assert f"{run['metrics']['test/acc']:.4g}" in table


def test_top_and_last_apply_after_sort(sweep: Sweep) -> None:
    listed = json.loads(_runs(sweep, "--json"))
    by_acc = sorted(listed, key=lambda r: r["metrics"]["val/loss"])
    top = json.loads(_runs(sweep, "--sort", "val/loss", "--top", "1", "--json"))
    assert [r["folder"] for r in top] == [by_acc[-1]["folder"]]  # the highest value
    last = json.loads(_runs(sweep, "--sort", "val/loss", "--last", "1", "--json"))
    assert [r["folder"] for r in last] == [by_acc[-1]["folder"]]  # the last row once sorted
    first = json.loads(_runs(sweep, "--sort", "val/loss", "-r", "--last", "1", "--json"))
    assert [r["folder"] for r in first] == [by_acc[0]["folder"]]


def test_runs_sweeps_lists_the_study_its_trials_and_best(sweep: Sweep) -> None:
    import optuna

    info = json.loads((sweep.folder / "sweep.json").read_text())
    study = optuna.load_study(study_name=info["study_name"], storage=info["storage"])
    (row,) = json.loads(_runs(sweep, "sweeps", "--json"))
    assert row["study"] == study.study_name and row["folder"] == str(sweep.folder.resolve())
    assert row["trials"] == {"complete": 2}
    assert row["best_values"] == [study.best_value]
    table = _runs(sweep, "sweeps", columns=120)
    assert study.study_name in table.replace("│", "").replace("\n", "").replace(" ", "")
    assert "2 complete" in table and f"{study.best_value:.4g}" in table
