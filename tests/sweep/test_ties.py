"""Trials tied on the objective: the lowest validation loss at the best epoch wins, everywhere.

The sweep below trains with a learning rate too small to change any prediction, so every
trial has the same validation accuracy; label smoothing changes only the loss. The best trial
must be the one with the lowest ``val/loss_at_best``, in the printed outcome, ``best.yaml``,
the report and ``optimization_results.yaml``, and the report and outcome say how many tie.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from omegaconf import OmegaConf
from optuna.trial import TrialState

SMOOTHING = "loss.label_smoothing=choice(0.0,0.3,0.6)"
FROZEN = ["optimizer=sgd", "optimizer.lr=1e-12"]
GRID = ["hparams_search=grid", "data.batch_size=choice(32)"]
SHORT = ["debug=limit", "trainer.max_epochs=1", "logger=none"]


def test_tied_trials_are_ranked_by_validation_loss(tmp_path: Path, run_subprocess) -> None:
    proc = run_subprocess("train", "-m", *GRID, *FROZEN, SMOOTHING, *SHORT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    info = json.loads((sweep_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=info["study_name"], storage=info["storage"])
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 3 and len({t.value for t in trials}) == 1  # all tie on val/acc_best
    # Each trial records its run's validation loss at the best epoch, as metrics.json has it.
    losses = {}
    for trial in trials:
        metrics = json.loads((Path(trial.user_attrs["run_dir"]) / "metrics.json").read_text())
        assert trial.user_attrs["val/loss_at_best"] == metrics["val/loss_at_best"]
        losses[trial.number] = metrics["val/loss_at_best"]
    assert len(set(losses.values())) == 3, losses
    best = min(trials, key=lambda t: losses[t.number])

    outcome = proc.stdout.strip().splitlines()[-3]
    assert outcome.startswith(f"best val/acc_best: {best.value:.6g} (trial {best.number} of"), (
        outcome
    )
    assert "3 trials tie at" in outcome and "lowest val/loss_at_best" in outcome, outcome
    assert proc.stdout.strip().splitlines()[-2] == (
        f"best run folder: {best.user_attrs['run_dir']}"
    )

    best_yaml = (sweep_dir / "best.yaml").read_text()
    assert f"# Best trial {best.number}: " in best_yaml and "3 trials tie" in best_yaml
    smoothing = OmegaConf.create(best_yaml).loss.label_smoothing
    assert smoothing == best.params["loss.label_smoothing"]

    report = (sweep_dir / "report.md").read_text()
    assert "3 trials tie at" in report
    first_row = report.split("## Leaderboard")[1].strip().splitlines()[2]
    assert first_row.startswith(f"| {best.number} | complete |"), first_row

    results = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    assert results.best_params == best.params


def test_the_reports_plots_name_the_metric(tmp_path: Path, run_subprocess) -> None:
    import matplotlib

    from cnnlab.sweeper.report import plot_makers

    matplotlib.use("Agg")
    proc = run_subprocess("train", "-m", *GRID, "optimizer.lr=choice(0.01,0.002)", *SHORT)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (sweep_dir,) = (tmp_path / "outputs" / "multiruns" / "train").iterdir()
    info = json.loads((sweep_dir / "sweep.json").read_text())
    study = optuna.load_study(study_name=info["study_name"], storage=info["storage"])
    assert study.metric_names == ["val/acc_best"]  # stored by the sweeper, for `cnnlab report`
    assert plot_makers(study)["history"]().get_ylabel() == "val/acc_best"
    assert (sweep_dir / "history.png").is_file()
