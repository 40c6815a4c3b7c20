"""``cnnlab eval`` and ``cnnlab predict`` on a checkpoint of a quick digits run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import only_run_dir, quick


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder of a short LeNet-5 training on digits, trained once for this module.

    The tests only read it: each writes its own results under its own tmp_path.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    from cnnlab import cli

    root = tmp_path_factory.mktemp("trained")
    run_dir = root / "run"
    args = ["train", *quick("logger=none", f"hydra.run.dir={run_dir}")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CNNLAB_OUTPUTS", str(root / "outputs"))
        mp.setenv("CNNLAB_DATA", str(root / "data"))
        mp.setattr("sys.argv", ["cnnlab", *args])
        mp.delenv(cli.TASK_ENV, raising=False)
        cli.main(args)
    HydraConfig.instance().cfg = None  # type: ignore[assignment]
    GlobalHydra.instance().clear()
    return run_dir


def test_eval_reproduces_the_test_metrics_of_training(run_cli, trained: Path, tmp_path) -> None:
    ckpt = trained / "checkpoints" / "best.ckpt"
    run_cli("eval", f"ckpt_path={ckpt}", "logger=none", "trainer.limit_test_batches=2")
    run_dir = only_run_dir(tmp_path / "outputs")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    trained_metrics = json.loads((trained / "metrics.json").read_text())
    # The same checkpoint on the same two test batches gives the same numbers.
    assert metrics == {k: v for k, v in trained_metrics.items() if k.startswith("test/")}
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"


def test_eval_on_the_validation_split(run_cli, trained: Path, tmp_path: Path) -> None:
    run_cli(
        "eval", f"ckpt_path={trained / 'checkpoints' / 'best.ckpt'}", "split=val", "logger=none"
    )
    metrics = json.loads((only_run_dir(tmp_path / "outputs") / "metrics.json").read_text())
    assert set(metrics) == {"val/acc", "val/acc_top5", "val/loss"}


def test_eval_rejects_data_with_other_classes(run_cli, trained: Path, capsys) -> None:
    ckpt = trained / "checkpoints" / "best.ckpt"
    with pytest.raises(SystemExit):
        run_cli(
            "eval",
            f"ckpt_path={ckpt}",
            "data=synthetic",
            "data.num_classes=3",
            "data.in_channels=1",
            "data.image_size=28",
        )
    err = capsys.readouterr().err
    assert str(ckpt) in err and "num_classes" in err


def _write_digit_images(folder: Path) -> list[Path]:
    """Write test images of the digits set as PNG files (grey on black, as in training)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True)
    paths = []
    for i in range(12):
        pixels = (digits.images[i] * (255 / 16)).astype(np.uint8)
        path = folder / f"digit_{i:02d}_label{digits.target[i]}.png"
        Image.fromarray(pixels, mode="L").resize((28, 28), Image.Resampling.BILINEAR).save(path)
        paths.append(path)
    return paths


def test_predict_writes_one_row_per_image(run_cli, trained: Path, tmp_path: Path) -> None:
    paths = _write_digit_images(tmp_path / "images")
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    output = tmp_path / "predictions.csv"
    run_cli(
        "predict",
        f"ckpt_path={trained / 'checkpoints' / 'best.ckpt'}",
        f"input={tmp_path / 'images'}",
        "top_k=3",
        f"output={output}",
    )
    with output.open() as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["path"]).name for r in rows] == [p.name for p in paths]
    for row in rows:
        assert row["class"] in [str(d) for d in range(10)]
        assert 0.0 < float(row["probability"]) <= 1.0
        assert len(row["top3"].split(";")) == 3


def test_predict_on_one_file_and_on_a_missing_path(run_cli, trained, tmp_path, capsys) -> None:
    image = _write_digit_images(tmp_path / "images")[0]
    ckpt = trained / "checkpoints" / "best.ckpt"
    run_cli("predict", f"ckpt_path={ckpt}", f"input={image}")
    output = only_run_dir(tmp_path / "outputs") / "predictions.csv"
    assert len(output.read_text().splitlines()) == 2
    with pytest.raises(SystemExit):
        run_cli("predict", f"ckpt_path={ckpt}", f"input={tmp_path / 'nowhere'}")
    assert str(tmp_path / "nowhere") in capsys.readouterr().err


def test_predict_names_a_corrupt_image(run_cli, trained, tmp_path, capsys) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing")
    with pytest.raises(SystemExit):
        run_cli("predict", f"ckpt_path={trained / 'checkpoints' / 'best.ckpt'}", f"input={broken}")
    assert str(broken) in capsys.readouterr().err


def test_reproduce_reports_matching_metrics(run_subprocess, tmp_path: Path) -> None:
    original = tmp_path / "original"
    result = run_subprocess(
        "train", *quick("trainer.deterministic=true", "logger=none"), f"hydra.run.dir={original}"
    )
    assert result.returncode == 0, result.stderr
    result = run_subprocess("reproduce", str(original), "--out", str(tmp_path / "again"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "metrics match" in result.stdout
    assert (tmp_path / "again" / "metrics.json").read_text() == (
        original / "metrics.json"
    ).read_text()


@pytest.mark.slow
def test_reproduce_says_what_differs(run_subprocess, tmp_path: Path) -> None:
    original = tmp_path / "original"
    run_subprocess("train", *quick("logger=none"), f"hydra.run.dir={original}")
    metrics = json.loads((original / "metrics.json").read_text())
    metrics["test/acc"] = -1.0
    (original / "metrics.json").write_text(json.dumps(metrics))
    result = run_subprocess("reproduce", str(original), "--out", str(tmp_path / "again"))
    assert result.returncode == 1
    assert "test/acc" in result.stdout and "-1.0" in result.stdout


def test_reproduce_of_a_folder_that_is_not_a_run(run_subprocess, tmp_path: Path) -> None:
    result = run_subprocess("reproduce", str(tmp_path))
    assert result.returncode == 2
    assert str(tmp_path) in result.stderr
