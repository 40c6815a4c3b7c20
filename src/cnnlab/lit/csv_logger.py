"""The ``csv`` logger: ``metrics.csv`` and ``hparams.yaml`` that are never half-written or lost.

A small logger on Lightning's public ``Logger`` API, writing the files Lightning's
``CSVLogger`` writes (one row per logging call, a ``step`` column, columns sorted by name)
with three differences a run folder needs:

* a resumed run keeps the rows already in ``metrics.csv`` (Lightning's deletes the file);
* each file is rewritten whole through a temporary file and a rename
  (:mod:`cnnlab.files.atomic`), so a full disk never leaves a truncated one;
* ``metrics.csv`` goes through the same ordered background writer as the checkpoints
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
from argparse import Namespace
from pathlib import Path
from typing import Any

from pytorch_lightning.core.saving import save_hparams_to_yaml
from pytorch_lightning.loggers import Logger
from pytorch_lightning.utilities import rank_zero_only
from torch import Tensor
from typing_extensions import override

from cnnlab.files.atomic import WriteError, replacing
from cnnlab.files.background import WRITER
from cnnlab.files.read import read_text

__all__ = ["RunCSVLogger"]

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.csv"
HPARAMS_FILE = "hparams.yaml"
# A long run that logs every step can pass read_text's default bound (32 MB) in metrics.csv.
METRICS_LIMIT = 1 << 30


class RunCSVLogger(Logger):
    """``metrics.csv`` and ``hparams.yaml`` in ``save_dir/name/version`` (the run folder, then
    sub-folders, "" for none), written whole when the module docstring says."""

    def __init__(self, save_dir: str | Path, name: str = "", version: int | str = "") -> None:
        super().__init__()
        self._save_dir = os.fspath(save_dir)
        self._name = name
        self._version = version
        self.hparams: dict[str, Any] = {}
        self.rows: list[dict[str, Any]] | None = None  # read from the file at the first use
        self.pending: list[dict[str, Any]] = []
        # The file's text so far and its columns: a save encodes only its new rows (all of
        # them again only when a column is added), instead of every row of the run each time.
        self._text = ""
        self._keys: list[str] | None = None

    @property
    @override
    def name(self) -> str:
        return self._name

    @property
    @override
    def version(self) -> int | str:
        return self._version

    @property
    @override
    def save_dir(self) -> str:
        return self._save_dir

    @property
    @override
    def root_dir(self) -> str:
        return os.path.join(self._save_dir, self._name)

    @property
    @override
    def log_dir(self) -> str:
        return os.path.join(self.root_dir, str(self._version))

    @property
    def metrics_file(self) -> str:
        return os.path.join(self.log_dir, METRICS_FILE)

    @override
    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        """Queue one row: the metrics (tensors as numbers) and the step."""
        row = {k: v.item() if isinstance(v, Tensor) else v for k, v in metrics.items()}
        row["step"] = len(self.pending) if step is None else step
        self.pending.append(row)

    @override
    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *_: Any, **__: Any) -> None:
        """Merge ``params`` into ``hparams.yaml``, rewritten whole."""
        self.hparams.update(vars(params) if isinstance(params, Namespace) else params)
        os.makedirs(self.log_dir, exist_ok=True)
        with replacing(os.path.join(self.log_dir, HPARAMS_FILE)) as tmp:
            save_hparams_to_yaml(tmp, self.hparams)

    @override
    @rank_zero_only
    def save(self) -> None:
        """Write all rows to ``metrics.csv`` at once; pending rows stay pending on failure."""
        if not self.pending:
            return
        before = self._rows_on_disk()
        rows = before + self.pending
        keys = sorted(set().union(*rows))
        if keys == self._keys:
            text = self._text + _csv_text(keys, self.pending)
        else:
            text = _csv_text(keys, rows, header=True)
        os.makedirs(self.log_dir, exist_ok=True)
        WRITER.write_bytes(self.metrics_file, text.encode("utf-8"))
        self.rows, self.pending = rows, []
        self._text, self._keys = text, keys

    @override
    @rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        # The rows on disk follow the checkpoints: a resumed run continues right after them.
        self.save()

    @override
    @rank_zero_only
    def finalize(self, status: str) -> None:
        try:
            self.save()
            WRITER.flush()  # metrics.csv is on disk when the run ends
        except WriteError as exc:
            if status == "success":
                raise
            # The run already failed: its own error is the one to report, not this one.
            log.warning("%s not updated: %s", METRICS_FILE, exc)

    def _rows_on_disk(self) -> list[dict[str, Any]]:
        """The rows saved so far: read from the file once (a resumed run's), then kept.

        Read as any run folder's file (:mod:`cnnlab.files.read`): a link or fifo in its
        place is refused, naming it, rather than followed.
        """
        if self.rows is None:
            text = ""
            if os.path.lexists(self.metrics_file):
                text = read_text(METRICS_FILE, inside=self.log_dir, limit=METRICS_LIMIT)
            rows = csv.DictReader(io.StringIO(text, newline=""))
            self.rows = [{k: v for k, v in row.items() if v != ""} for row in rows]
        return self.rows


def _csv_text(keys: list[str], rows: list[dict[str, Any]], header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=keys)
    if header:
        writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()
