"""Checkpoints written all or nothing, in their own folder, without stopping training.

Lightning's ``TorchCheckpointIO`` saves through fsspec, which writes to the system temp folder
and copies the file into place; on a full disk the copy stops half-way and leaves a truncated
``last.ckpt``. :class:`AtomicCheckpointIO` serialises the checkpoint in memory (a snapshot of
the weights at that moment), then hands the bytes to cnnlab's ordered background writer
(:mod:`cnnlab.files.background`), which writes them to a temporary file beside the target,
syncs it to disk and renames it over the target: the previous checkpoint stays intact until
the new one is complete, and training does not wait for the disk.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import torch
from pytorch_lightning.plugins.io import TorchCheckpointIO
from typing_extensions import override

from cnnlab.files.background import WRITER


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save checkpoints atomically, in the background; load and remove them after the queue.

    A full or read-only disk raises :class:`~cnnlab.files.atomic.WriteError` naming the
    checkpoint, at the next save or when training ends, with the previous version of the
    file kept.
    """

    @override
    def save_checkpoint(
        self,
        checkpoint: dict[str, Any],
        path: str | Path,
        storage_options: Any | None = None,
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        WRITER.write_bytes(path, buffer.getvalue())

    @override
    def load_checkpoint(self, path: str | Path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        WRITER.flush()  # the file may still be in the queue
        return super().load_checkpoint(path, *args, **kwargs)

    @override
    def remove_checkpoint(self, path: str | Path) -> None:
        WRITER.flush()  # a queued write of this file would bring it back
        super().remove_checkpoint(path)

    @override
    def teardown(self) -> None:
        if sys.exc_info()[0] is None:
            WRITER.flush()
        else:
            WRITER.discard_errors()  # the run failed already: report that error, not this one
        super().teardown()
