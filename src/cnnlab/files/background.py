"""Run files written by one background thread, in order, while training goes on.

A checkpoint and the ``metrics.csv`` that follows it are written every epoch, each through
a temporary file, ``fsync`` and a rename (:mod:`cnnlab.files.atomic`). The ``fsync`` waits
for the disk: a few milliseconds a file, which on a small network is a good part of an
epoch. Here the caller hands over the finished bytes (serialised on its own thread, so they
are a snapshot) and goes on; one worker thread writes them in the order they came.

Order is what keeps the run folder consistent: ``metrics.csv`` lands after the checkpoint
it follows, so after a crash the rows on disk never run ahead of the last checkpoint. After
the first failed write (a full disk) later writes are dropped, and the error is raised to
the caller at its next write or at :meth:`OrderedWriter.flush`, which waits for every write.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from cnnlab.files.atomic import write_bytes_atomic


class OrderedWriter:
    """Atomic file writes done in submission order by one background thread."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def write_bytes(self, path: str | Path, data: bytes) -> None:
        """Queue ``data`` to replace ``path`` atomically; raise an earlier write's error.

        Raises:
            WriteError: An earlier queued write found the disk full or read-only.
        """
        if self._error is not None:
            self.flush()
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="cnnlab-writer")
            self._pending = [f for f in self._pending if not f.done()]
            self._pending.append(self._executor.submit(self._write, Path(path), data))

    def _write(self, path: Path, data: bytes) -> None:
        if self._error is not None:
            return  # after a failure nothing later lands: the folder stays consistent
        try:
            write_bytes_atomic(path, data)
        except BaseException as exc:
            self._error = exc

    def flush(self) -> None:
        """Wait until every queued write is on disk; raise the first failure, if any."""
        error = self._wait()
        if error is not None:
            raise error

    def discard_errors(self) -> None:
        """Wait until the queue is empty, forgetting failures (the run failed already)."""
        self._wait()

    def _wait(self) -> BaseException | None:
        with self._lock:
            pending, self._pending = self._pending, []
        for future in pending:
            future.result()
        error, self._error = self._error, None
        return error


# One writer for every file written during training, so that order holds across writers:
# a checkpoint, then the metrics rows that follow it.
WRITER = OrderedWriter()
