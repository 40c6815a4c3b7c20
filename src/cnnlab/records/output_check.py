"""A Hydra callback that checks the run folder can be written before the job starts.

Hydra creates the run folder, writes ``.hydra/`` and opens the job's log file before the task
runs; on a read-only or full disk each of those fails with a traceback from inside Hydra.
:class:`OutputFolderCheck` runs first (``hydra.callbacks`` in ``conf/hydra/default.yaml``): it
creates the folder and writes a small probe file, and when the disk refuses it prints one line
naming the folder and the cause and exits with status 1.

:class:`QuietFileHandler` writes the job's log file (``hydra.job_logging`` in the same file).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from typing_extensions import override

from cnnlab.files.atomic import WriteError, write_bytes_atomic

PROBE_NAME = ".cnnlab-write-check"
# Enough bytes to need a block of its own: a full disk refuses it.
PROBE_BYTES = b"cnnlab: this folder is writable\n" * 128


class OutputFolderCheck(Callback):
    """Before a single run: the run folder exists and takes a file, or one line and exit 1."""

    @override
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = Path(str(config.hydra.run.dir))
        check_writable(folder, str(config.get("task", "cnnlab")))


class QuietFileHandler(logging.FileHandler):
    """The job's log file, where a line that cannot be written is dropped without a word.

    On a disk that fills up mid-run, ``logging`` would print a traceback of its own for every
    line it cannot write; the task reports the write failure once, as one line.
    """

    @override
    def handleError(self, record: logging.LogRecord) -> None:
        return


def check_writable(folder: Path, task: str) -> None:
    """Create ``folder`` and write then remove a probe file in it; exit 1 with one line if not.

    Folders this check created are removed again when the disk refuses the probe.
    """
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(folder / PROBE_NAME, PROBE_BYTES)
        (folder / PROBE_NAME).unlink()
    except (WriteError, OSError) as exc:
        cause = exc.cause if isinstance(exc, WriteError) else exc
        for path in created:  # deepest first
            with contextlib.suppress(OSError):
                path.rmdir()
        print(f"cnnlab {task}: error: {WriteError(folder, cause)}", file=sys.stderr)
        raise SystemExit(1) from None
