"""The csv logger keeps a run folder's rows and writes them whole, at checkpoints."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from cnnlab.errors import DataError
from cnnlab.files.background import WRITER
from cnnlab.lit.csv_logger import RunCSVLogger


def _steps(path: Path) -> list[int]:
    with path.open(newline="") as fh:
        return [int(row["step"]) for row in csv.DictReader(fh)]


def test_a_second_logger_in_the_folder_appends_to_its_rows(tmp_path: Path) -> None:
    first = RunCSVLogger(tmp_path, name="", version="")
    for step in range(3):
        first.log_metrics({"train/loss": 1.0 / (step + 1)}, step=step)
    first.finalize("success")

    # A resumed run: the rows of the first start stay, new keys widen the header.
    second = RunCSVLogger(tmp_path, name="", version="")
    second.log_metrics({"val/acc": 0.5}, step=3)
    second.finalize("success")

    assert _steps(tmp_path / "metrics.csv") == [0, 1, 2, 3]
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == ["step", "train/loss", "val/acc"]
    assert list(tmp_path.iterdir()) == [tmp_path / "metrics.csv"]


def test_rows_reach_the_file_at_checkpoints_not_every_hundred_steps(tmp_path: Path) -> None:
    logger = RunCSVLogger(tmp_path, name="", version="")
    for step in range(150):
        logger.log_metrics({"train/loss": 1.0}, step=step)
    assert not (tmp_path / "metrics.csv").exists()
    logger.after_save_checkpoint(None)
    WRITER.flush()  # the rows go through the ordered background writer, like checkpoints
    assert _steps(tmp_path / "metrics.csv") == list(range(150))


def test_hyperparameters_are_merged_into_hparams_yaml(tmp_path: Path) -> None:
    logger = RunCSVLogger(tmp_path, name="", version="")
    logger.log_hyperparams({"seed": 1, "model": {"name": "lenet5"}})
    logger.log_hyperparams({"seed": 2})
    assert yaml.safe_load((tmp_path / "hparams.yaml").read_text()) == {
        "seed": 2,
        "model": {"name": "lenet5"},
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hparams.yaml"]


def test_saves_that_add_rows_and_columns_leave_the_whole_table(tmp_path: Path) -> None:
    # Each save encodes only its new rows until a column appears; the file is always whole.
    logger = RunCSVLogger(tmp_path, name="", version="")
    logged: list[dict[str, float]] = []
    for step, metrics in enumerate(
        [{"train/loss": 1.0}, {"train/loss": 0.5}, {"val/acc": 0.25}, {"train/loss": 0.1}]
    ):
        logger.log_metrics(metrics, step=step)
        logged.append({**metrics, "step": step})
        logger.after_save_checkpoint(None)
        WRITER.flush()
        with (tmp_path / "metrics.csv").open(newline="") as fh:
            reader = csv.DictReader(fh)
            header, rows = reader.fieldnames, list(reader)
        assert header == sorted({key for row in logged for key in row})
        assert rows == [{k: str(row.get(k, "")) for k in header} for row in logged]


def test_a_linked_metrics_csv_is_refused_not_read(tmp_path: Path) -> None:
    """A run folder is data from anyone: its metrics.csv is read like its other files."""
    elsewhere = tmp_path / "elsewhere.csv"
    elsewhere.write_text("step,secret\n0,1\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.csv").symlink_to(elsewhere)
    logger = RunCSVLogger(run, name="", version="")
    logger.log_metrics({"train/loss": 1.0}, step=0)
    with pytest.raises(DataError, match=r"metrics\.csv"):
        logger.save()
    assert elsewhere.read_text() == "step,secret\n0,1\n"
