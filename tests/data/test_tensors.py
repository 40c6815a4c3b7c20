"""TensorImageDataset: whole batches sliced by index through a plain DataLoader."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from cnnlab.data.tensors import TensorImageDataset, passthrough_collate


def _dataset(n: int = 10) -> TensorImageDataset:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 3, 3).contiguous()
    return TensorImageDataset(images, torch.arange(n) % 3)


class _NoSingleItems(TensorImageDataset):
    """Fails if anything fetches one sample at a time."""

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        raise AssertionError("per-sample __getitem__ was called")


def test_getitems_slices_by_index() -> None:
    x, y = _dataset().__getitems__([7, 2, 7])
    assert x.shape == (3, 1, 3, 3) and x[:, 0, 0, 0].tolist() == [7, 2, 7]
    assert y.tolist() == [1, 2, 1]


def test_getitem_single_sample() -> None:
    x, y = _dataset()[4]
    assert x.shape == (1, 3, 3) and int(y) == 1


def test_dataloader_fetches_whole_batches_via_getitems() -> None:
    base = _dataset(10)
    ds = _NoSingleItems(base.images, base.labels)
    gen = torch.Generator().manual_seed(0)
    loader = DataLoader(
        ds, batch_size=4, shuffle=True, generator=gen, collate_fn=passthrough_collate
    )
    batches = list(loader)
    assert [b[0].shape[0] for b in batches] == [4, 4, 2]  # drop_last=False keeps the tail
    seen = torch.cat([b[0][:, 0, 0, 0] for b in batches])
    assert sorted(seen.tolist()) == list(range(10))
    for x, y in batches:  # labels stay aligned with their images
        assert torch.equal(y, x[:, 0, 0, 0].long() % 3)


def test_subset_copies_selected_rows() -> None:
    sub = _dataset().subset(torch.tensor([9, 0]))
    assert len(sub) == 2 and sub.images[:, 0, 0, 0].tolist() == [9, 0]


@pytest.mark.parametrize(
    ("images", "labels"),
    [
        (torch.zeros(2, 1, 3, 3), torch.zeros(2, dtype=torch.int64)),
        (torch.zeros(2, 3, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64)),
        (torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64)),
        (torch.zeros(2, 1, 3, 3, dtype=torch.uint8), torch.zeros(2, dtype=torch.int32)),
    ],
    ids=["float-images", "3d-images", "label-count", "int32-labels"],
)
def test_rejects_wrong_layout(images: torch.Tensor, labels: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="must be"):
        TensorImageDataset(images, labels)
