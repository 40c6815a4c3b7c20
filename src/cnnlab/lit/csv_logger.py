"""The ``csv`` logger: ``metrics.csv`` and ``hparams.yaml`` that are never half-written or lost.

Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` when it starts (so a resumed run
loses its first epochs), appends rows in place and writes ``hparams.yaml`` in place (so a full
disk leaves a truncated file). :class:`RunCSVLogger` keeps the rows already in the folder,
rewrites each file through a temporary file and a rename (:mod:`cnnlab.files.atomic`).
``metrics.csv`` goes through the same ordered background writer as the checkpoints
(:mod:`cnnlab.files.background`), so files land in the order training wrote them.

When rows reach the file: Lightning's logger connector calls ``save()`` after every
``log_metrics``, so with epoch-level metrics the file is written at each validation end and
each training epoch end (and again after each checkpoint, when rows are pending). A run killed
between a validation row and the checkpoint queued right after it can show that epoch's
validation row twice once resumed.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import sys
from pathlib import Path
from typing import Any

from lightning_fabric.loggers.logger import rank_zero_experiment
from pytorch_lightning.core.saving import save_hparams_to_yaml
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.utilities.rank_zero import rank_zero_only
from typing_extensions import override

from cnnlab.files.atomic import WriteError, replacing
from cnnlab.files.background import WRITER

log = logging.getLogger(__name__)

# A step count no run reaches: `log_metrics` itself never writes (Lightning's default is every 100).
NEVER = sys.maxsize


class RunCSVWriter(ExperimentWriter):
    """Keeps every row of ``metrics.csv`` (those already on disk first) and rewrites it whole."""

    def __init__(self, log_dir: str) -> None:
        super().__init__(log_dir)
        self.rows: list[dict[str, Any]] = self._read_rows()
        for row in self.rows:
            self.metrics_keys.extend(k for k in row if k not in self.metrics_keys)
        self.metrics_keys.sort()
        # The file's text so far and its columns: a save encodes only its new rows (all of
        # them again only when a column is added), instead of every row of the run each time.
        self._text = ""
        self._text_keys: list[str] | None = None

    @override
    def _check_log_dir_exists(self) -> None:
        # Lightning deletes metrics.csv here; cnnlab appends to it (a resumed run keeps its rows).
        return

    def _read_rows(self) -> list[dict[str, Any]]:
        if not os.path.isfile(self.metrics_file_path):
            return []
        with open(self.metrics_file_path, newline="", encoding="utf-8") as fh:
            return [{k: v for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]

    @override
    def save(self) -> None:
        """Write all rows to ``metrics.csv`` at once; pending rows stay pending on failure."""
        if not self.metrics:
            return
        rows = self.rows + self.metrics
        keys = sorted(set(self.metrics_keys).union(*self.metrics))
        if keys == self._text_keys:
            text = self._text + _csv_text(keys, self.metrics)
        else:
            text = _csv_text(keys, rows, header=True)
        WRITER.write_bytes(self.metrics_file_path, text.encode("utf-8"))
        self.rows, self.metrics_keys, self.metrics = rows, keys, []
        self._text, self._text_keys = text, keys

    @override
    def log_hparams(self, params: dict[str, Any]) -> None:
        """Merge ``params`` into ``hparams.yaml``, rewritten whole."""
        self.hparams.update(params)
        with replacing(os.path.join(self.log_dir, self.NAME_HPARAMS_FILE)) as tmp:
            save_hparams_to_yaml(tmp, self.hparams)


def _csv_text(keys: list[str], rows: list[dict[str, Any]], header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


class RunCSVLogger(CSVLogger):
    """Lightning's ``CSVLogger`` with the run-safe writer :class:`RunCSVWriter`.

    Rows are written whenever Lightning saves the logger (after each logging call), after each
    checkpoint and when training ends; a resumed run appends to the rows already there.
    ``flush_logs_every_n_steps`` (default: never) adds writes inside ``log_metrics`` for
    step-level rows logged outside Lightning's logger connector.
    """

    def __init__(
        self,
        save_dir: str | Path,
        name: str | None = "lightning_logs",
        version: int | str | None = None,
        prefix: str = "",
        flush_logs_every_n_steps: int = NEVER,
    ) -> None:
        super().__init__(save_dir, name, version, prefix, flush_logs_every_n_steps)

    @property
    @override
    @rank_zero_experiment
    def experiment(self) -> RunCSVWriter:
        if self._experiment is None:
            os.makedirs(self.root_dir, exist_ok=True)
            self._experiment = RunCSVWriter(log_dir=self.log_dir)
        return self._experiment  # type: ignore[return-value]

    @override
    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        # The rows on disk follow the checkpoints: a resumed run continues right after them.
        self.save()

    @override
    @rank_zero_only
    def finalize(self, status: str) -> None:
        try:
            super().finalize(status)
            WRITER.flush()  # metrics.csv is on disk when the run ends
        except WriteError as exc:
            if status == "success":
                raise
            # The run already failed: its own error is the one to report, not this one.
            log.warning("metrics.csv not updated: %s", exc)
