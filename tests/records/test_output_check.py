"""The job's log file drops a line the disk refuses without a traceback; nothing else changes."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from tests.conftest import quick

from cnnlab.config import config_dir
from cnnlab.records.output_check import QuietFileHandler


def _log_to_a_full_disk(handler: logging.FileHandler) -> None:
    handler.stream = full = open("/dev/full", "w")  # noqa: SIM115 - closed below
    try:
        handler.emit(logging.LogRecord("x", logging.INFO, __file__, 1, "a line", None, None))
    finally:
        handler.stream = None  # type: ignore[assignment]
        handler.close()
        with contextlib.suppress(OSError):  # its buffer still holds the line
            full.close()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_line_the_disk_refuses_prints_no_traceback(tmp_path: Path, capsys) -> None:
    _log_to_a_full_disk(logging.FileHandler(tmp_path / "plain.log"))
    assert "Logging error" in capsys.readouterr().err  # what the job's file used to print
    _log_to_a_full_disk(QuietFileHandler(tmp_path / "job.log"))
    assert capsys.readouterr().err == ""


def test_the_job_log_file_is_the_quiet_one() -> None:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    file_handler = OmegaConf.to_container(cfg.hydra.job_logging.handlers.file, resolve=False)
    assert isinstance(file_handler, dict)
    assert file_handler["class"] == "cnnlab.records.output_check.QuietFileHandler"
    assert file_handler["filename"].endswith("${hydra.job.name}.log")


def test_a_run_leaves_logging_settings_of_the_process_alone(run_cli) -> None:
    run_cli("train", *quick("logger=none", "test=false"))
    assert logging.raiseExceptions is True
