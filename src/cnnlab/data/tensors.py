"""In-memory image sets that hand out whole batches by index.

PyTorch's map-style fetcher calls ``dataset.__getitems__(indices)`` when it
exists and passes the result to ``collate_fn``. :class:`TensorImageDataset`
answers with one fancy-indexing slice of the stored tensors, and
:func:`passthrough_collate` returns it as is: no per-sample Python and no
stacking, while any sampler (shuffling, or the ``DistributedSampler`` that
Lightning injects) still chooses the indices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset


class TensorImageDataset(Dataset[tuple[Tensor, Tensor]]):
    """uint8 images ``[N, C, H, W]`` and int64 labels ``[N]`` held once as tensors.

    Raises:
        ValueError: When the shapes or dtypes do not match that layout.

    Example:
        >>> ds = TensorImageDataset(torch.zeros(5, 1, 4, 4, dtype=torch.uint8), torch.arange(5))
        >>> x, y = ds.__getitems__([4, 0])
        >>> tuple(x.shape), y.tolist()
        ((2, 1, 4, 4), [4, 0])
    """

    def __init__(self, images: Tensor, labels: Tensor) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"images must be uint8 [N, C, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        if labels.dtype != torch.int64 or labels.shape != (images.shape[0],):
            raise ValueError(
                f"labels must be int64 [{images.shape[0]}], got {labels.dtype} "
                f"{tuple(labels.shape)}"
            )
        self.images = images
        self.labels = labels

    def __len__(self) -> int:
        return self.labels.shape[0]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        return self.images[index], self.labels[index]

    def __getitems__(self, indices: Sequence[int]) -> tuple[Tensor, Tensor]:
        """Return the batch ``(images[indices], labels[indices])`` in one slice."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.labels[idx]

    def subset(self, indices: Tensor) -> TensorImageDataset:
        """Return a new dataset holding only ``indices`` (copied, so the parent can be freed)."""
        return TensorImageDataset(self.images[indices], self.labels[indices])


def passthrough_collate(batch: Any) -> Any:
    """Collate function for :class:`TensorImageDataset`: the batch is already stacked.

    The fetcher hands over whatever ``__getitems__`` returned, here the
    ``(images, labels)`` pair, so there is nothing left to do.
    """
    return batch
