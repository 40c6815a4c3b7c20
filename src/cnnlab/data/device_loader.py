"""Batches sliced from an in-memory data set that lives on the training device.

A :class:`~torch.utils.data.DataLoader` over :class:`TensorImageDataset` already
fetches whole batches with one indexing op, but every batch still starts on the
host and is copied to the device (and, on a GPU, waits for that copy). When the
whole set fits in memory it can instead be copied to the device once, as uint8
(a quarter of float32's size: CIFAR-10's 50,000 training images are 150 MB), and
each batch becomes one index op on the device. Scaling, augmentation and
normalisation then run there too, in the data module's ``on_after_batch_transfer``.

:class:`DeviceBatchLoader` is the small iterable Lightning accepts in place of a
DataLoader: it has ``__len__`` and a ``sampler`` attribute whose ``set_epoch``
Lightning calls before each epoch. With an :class:`EpochShuffleSampler` it yields
the same batches, in the same order, as the DataLoader path (the same
permutation, cut into the same batches, the smaller last batch kept), so runs,
resumed runs and their metrics are identical whichever path a run takes.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from cnnlab.data.tensors import TensorImageDataset


class EpochShuffleSampler(torch.utils.data.Sampler[int]):
    """Shuffles ``range(n)`` with a permutation that depends only on ``(seed, epoch)``.

    A generator that carries state across epochs would restart after resuming
    from a checkpoint; deriving each epoch's order from the epoch number makes
    a resumed run see the same batches as an uninterrupted one. Lightning calls
    :meth:`set_epoch` before each epoch; iterating without it advances the
    epoch by one per pass.
    """

    def __init__(self, num_samples: int, seed: int) -> None:
        self.num_samples = num_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the permutation of ``epoch``."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples

    def next_permutation(self) -> Tensor:
        """This epoch's order as an int64 tensor (on the CPU); advances the epoch by one."""
        # Spread seeds apart so (seed, epoch) pairs of nearby seeds do not collide.
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) % 2**63)
        order = torch.randperm(self.num_samples, generator=gen)
        self.epoch += 1
        return order

    def __iter__(self) -> Iterator[int]:
        return iter(self.next_permutation().tolist())


class DeviceBatchLoader:
    """Batches ``(uint8 images, int64 labels)`` indexed out of a set held on ``device``.

    Args:
        dataset: The in-memory set; it is copied to ``device`` once, here (a no-op
            when it is already there).
        batch_size: Samples per batch; the last batch may be smaller.
        sampler: The shuffling order (its ``set_epoch`` is called by Lightning), or
            None for the stored order (validation, test).
        device: Where the set and every batch live.

    Example:
        >>> images = torch.arange(5, dtype=torch.uint8).view(5, 1, 1, 1)
        >>> loader = DeviceBatchLoader(TensorImageDataset(images, torch.arange(5)), 2)
        >>> len(loader), [y.tolist() for _, y in loader]
        (3, [[0, 1], [2, 3], [4]])
    """

    def __init__(
        self,
        dataset: TensorImageDataset,
        batch_size: int,
        sampler: EpochShuffleSampler | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device)
        self.images = dataset.images.to(self.device)
        self.labels = dataset.labels.to(self.device)
        self.batch_size = batch_size
        # Named `sampler` so that Lightning's per-epoch `set_epoch` call finds it; Lightning
        # reads `batch_sampler` next to it (None: the batches are cut here).
        self.sampler = sampler
        self.batch_sampler = None

    def __len__(self) -> int:
        """Batches per pass (``ceil(n / batch_size)``: the smaller last batch is kept)."""
        return -(-self.labels.shape[0] // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        if self.sampler is None:
            # Contiguous slices are views: no copy at all for validation and test.
            for start in range(0, self.labels.shape[0], self.batch_size):
                stop = start + self.batch_size
                yield self.images[start:stop], self.labels[start:stop]
            return
        # One host-to-device copy of the permutation per epoch, then device-side gathers.
        order = self.sampler.next_permutation().to(self.device)
        for idx in order.split(self.batch_size):
            yield self.images[idx], self.labels[idx]
