"""``logger=mlflow``: runs in a real local MLflow store, read back with ``MlflowClient``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import only_run_dir, quick


def _client(outputs: Path):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{outputs / 'mlflow.db'}")


def _runs(outputs: Path) -> list:
    client = _client(outputs)
    experiment = client.get_experiment_by_name("cnnlab")
    assert experiment is not None
    return client.search_runs([experiment.experiment_id], order_by=["attributes.start_time"])


def _artefact(outputs: Path, run_id: str, name: str, into: Path) -> Path:
    return Path(_client(outputs).download_artifacts(run_id, name, str(into)))


@pytest.mark.slow  # creating MLflow's SQLite schema alone takes seconds
def test_a_run_logs_params_metrics_and_its_files(run_cli, tmp_path: Path) -> None:
    run_cli("train", *quick("logger=mlflow", "tags=[digits]"))
    outputs = tmp_path / "outputs"
    run_dir = only_run_dir(outputs)
    (run,) = _runs(outputs)
    assert run.info.status == "FINISHED"
    assert run.data.params["model/name"] == "lenet5"
    assert run.data.params["optimizer/lr"] == str(
        json.loads((run_dir / "run.json").read_text())["config"]["optimizer"]["lr"]
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test/acc", "val/acc_best", "model/params"):
        assert run.data.metrics[key] == pytest.approx(metrics[key])
    assert run.data.tags["digits"] == "true"
    assert "study" not in run.data.tags
    names = {f.path for f in _client(outputs).list_artifacts(run.info.run_id)}
    assert names == {"run.json", "metrics.json"}
    copied = _artefact(outputs, run.info.run_id, "run.json", tmp_path / "copy")
    assert json.loads(copied.read_text()) == json.loads((run_dir / "run.json").read_text())


@pytest.mark.slow
def test_an_unused_logger_starts_no_run(run_cli, tmp_path: Path) -> None:
    # fast_dev_run swaps the logger for Lightning's DummyLogger: the MLflow logger is never
    # used, and ending the job must not start a run just to end it.
    run_cli("train", "logger=mlflow", "debug=fast_dev_run")
    outputs = tmp_path / "outputs"
    manifest = json.loads((only_run_dir(outputs) / "run.json").read_text())
    assert manifest["status"] == "completed"
    if (outputs / "mlflow.db").exists():
        experiment = _client(outputs).get_experiment_by_name("cnnlab")
        assert experiment is None or _runs(outputs) == []


@pytest.mark.slow
def test_missing_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    # The real CLI with mlflow made unimportable, as on a machine without the extra.
    code = (
        "import sys; sys.modules['mlflow'] = None\n"
        "from cnnlab.cli import main\n"
        "sys.argv = ['cnnlab', 'train', 'logger=mlflow', 'debug=limit']\n"
        "main(sys.argv[1:])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "Traceback" not in output
    last = proc.stderr.strip().splitlines()[-1]
    assert "logger.mlflow" in last and "pip install 'cnnlab[mlflow]'" in last, last
    assert not (tmp_path / "outputs" / "mlflow.db").exists()
    manifest = json.loads((only_run_dir(tmp_path / "outputs") / "run.json").read_text())
    assert manifest["status"] == "failed"


@pytest.mark.slow
def test_sweep_trials_are_tagged_with_study_and_trial(tmp_path: Path, run_subprocess) -> None:
    import optuna

    proc = run_subprocess(
        "train",
        "-m",
        "hparams_search=random",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.report=false",
        "debug=limit",
        "trainer.max_epochs=1",
        "test=false",
        "logger=mlflow",
        "logger.mlflow.log_checkpoints=true",
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    outputs = tmp_path / "outputs"
    study = optuna.load_study(study_name=None, storage=f"sqlite:///{outputs / 'optuna.db'}")
    runs = _runs(outputs)
    assert len(runs) == 2
    for run, trial in zip(runs, sorted(study.trials, key=lambda t: t.number), strict=True):
        assert run.data.tags["study"] == study.study_name
        assert run.data.tags["trial"] == str(trial.number)
        assert run.info.run_name == f"trial-{trial.number}"
        assert run.data.metrics["val/acc_best"] == pytest.approx(trial.value)
        names = {f.path for f in _client(outputs).list_artifacts(run.info.run_id)}
        assert {"run.json", "metrics.json"} <= names
        # The kept checkpoints, under the folder Lightning's MLFlowLogger logs them to.
        kept = [
            f.path
            for folder in names - {"run.json", "metrics.json"}
            for f in _client(outputs).list_artifacts(run.info.run_id, folder)
        ]
        assert any(path.endswith(".ckpt") for path in kept), names
