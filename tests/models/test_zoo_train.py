"""``cnnlab train`` runs every zoo model on the bundled digits (one batch per split)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import only_run_dir

from cnnlab.models import list_models

FAST_DEV_RUN = ["debug=fast_dev_run", "logger=none", "trainer.accelerator=cpu"]
ZOO = sorted(set(list_models()) - {"lenet5", "simple_cnn", "airbench94"})


def _test_metrics(tmp_path: Path) -> dict[str, float]:
    return json.loads((only_run_dir(tmp_path / "outputs") / "metrics.json").read_text())


@pytest.mark.parametrize("model", ["resnet18", "shufflenet_v1"])
def test_digits_experiment_trains(run_cli, tmp_path: Path, model: str) -> None:
    run_cli("train", f"experiment=digits_{model}", *FAST_DEV_RUN)
    metrics = _test_metrics(tmp_path)
    assert 0.0 <= metrics["test/acc"] <= 1.0
    assert metrics["model/params"] > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("model", ZOO)
def test_every_model_trains_on_digits_at_full_width(run_cli, tmp_path: Path, model: str) -> None:
    run_cli("train", f"model={model}", *FAST_DEV_RUN)
    assert 0.0 <= _test_metrics(tmp_path)["test/acc"] <= 1.0


@pytest.mark.slow
@pytest.mark.parametrize("model", ZOO)
def test_every_digits_experiment_trains(run_cli, tmp_path: Path, model: str) -> None:
    run_cli("train", f"experiment=digits_{model}", *FAST_DEV_RUN)
    assert 0.0 <= _test_metrics(tmp_path)["test/acc"] <= 1.0
