"""``cnnlab report``: leaderboard, seed statistics, plots and best.yaml from a real sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.sweep.conftest import load_study


def _sweep_dir(app: Path) -> Path:
    return sorted((app / "multirun").iterdir())[-1]


def test_report_of_a_seed_sweep(app: Path, run_app, run_cli) -> None:
    run_app(
        "hydra/sweeper/sampler=grid",
        "x=choice(0.1,0.3)",
        "+seed=choice(1,2)",
        "crash_x=null",
        "hydra.sweeper.n_trials=4",
    )
    sweep_dir = _sweep_dir(app)
    with pytest.raises(SystemExit) as exit_info:
        run_cli("report", str(sweep_dir))
    assert exit_info.value.code == 0
    markdown = (sweep_dir / "report.md").read_text()
    assert "complete 4, pruned 0, failed 0" in markdown
    # Best first: x=0.3 is the optimum of the app's objective.
    board = markdown.split("## Leaderboard")[1]
    assert board.index("x=0.3") < board.index("x=0.1")
    assert "Over seeds" in markdown and "| x=0.3 | 2 |" in markdown
    assert (sweep_dir / "report.html").read_text().startswith("<!doctype html>")
    assert (sweep_dir / "history.png").stat().st_size > 1000
    # The importances plot is there, and the report names the evaluator that computed it.
    assert (sweep_dir / "importances.png").stat().st_size > 1000
    assert "PED-ANOVA, Optuna's PedAnovaImportanceEvaluator" in markdown
    best = OmegaConf.load(sweep_dir / "best.yaml")
    assert best.x == 0.3 and best.crash_x is None and "sweep" not in best
    study = load_study(app)
    assert study.best_trial.params["x"] == 0.3


def test_report_of_a_folder_that_is_not_a_sweep(tmp_path: Path, run_cli, capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("report", str(tmp_path))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'sweep.json'}: not a cnnlab sweep folder" in err


def test_report_of_a_multirun_folder_without_runs(tmp_path: Path, run_cli, capsys) -> None:
    (tmp_path / "multirun.yaml").write_text("task: train\n")
    with pytest.raises(SystemExit) as exit_info:
        run_cli("report", str(tmp_path))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        f"cnnlab report: error: {tmp_path}: a multirun folder without run folders (no */run.json)"
    )
    assert not (tmp_path / "report.md").exists()
