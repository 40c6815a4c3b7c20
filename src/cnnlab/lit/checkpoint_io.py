"""Checkpoints written all or nothing, in their own folder.

Lightning's ``TorchCheckpointIO`` saves through fsspec, which writes to the system temp folder
and copies the file into place; on a full disk the copy stops half-way and leaves a truncated
``last.ckpt``. :class:`AtomicCheckpointIO` serialises the checkpoint in memory, writes it to a
temporary file beside the target and renames it over the target (:mod:`cnnlab.runs.atomic`):
the previous checkpoint stays intact until the new one is complete.
"""

from __future__ import annotations

import io
from typing import Any

import torch
from lightning_fabric.utilities.types import _PATH
from pytorch_lightning.plugins.io import TorchCheckpointIO
from typing_extensions import override

from cnnlab.runs.atomic import write_bytes_atomic


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save checkpoints through a temporary file in the checkpoint's folder, then rename.

    Loading and removing are Lightning's. A full or read-only disk raises
    :class:`~cnnlab.runs.atomic.WriteError` naming the checkpoint, with the previous
    version of the file kept.
    """

    @override
    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: _PATH, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None:
            raise TypeError(f"{type(self).__name__} takes no storage_options")
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes_atomic(path, buffer.getbuffer())
