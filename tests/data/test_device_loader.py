"""The device-resident loader: the DataLoader path's batches, sliced from tensors on the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from cnnlab.data.datamodule import ImageDataModule
from cnnlab.data.device_loader import DeviceBatchLoader, EpochShuffleSampler
from cnnlab.data.sources import SyntheticSource
from cnnlab.data.tensors import TensorImageDataset
from cnnlab.errors import ConfigError


def _dm(**overrides: Any) -> ImageDataModule:
    kwargs: dict[str, Any] = {
        "source": SyntheticSource(num_samples=230, image_size=6, num_classes=3, seed=1),
        "name": "synthetic",
        "num_classes": 3,
        "in_channels": 1,
        "image_size": 6,
        "batch_size": 16,
        "val_fraction": 0.2,
        "seed": 5,
        "mean": [0.5],
        "std": [0.25],
    }
    kwargs.update(overrides)
    dm = ImageDataModule(**kwargs)
    dm.setup("fit")
    return dm


def _epoch(loader: Any, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    # What Lightning does before each epoch: set the sampler's epoch, then iterate.
    sampler = getattr(loader, "sampler", None)
    if isinstance(sampler, EpochShuffleSampler):
        sampler.set_epoch(epoch)
    return list(loader)


def test_batches_and_order_equal_the_dataloader_path() -> None:
    device_dm, plain_dm = _dm(device_resident=True), _dm(device_resident=False)
    for split in ("train", "val", "test"):
        device_loader = getattr(device_dm, f"{split}_dataloader")()
        plain_loader = getattr(plain_dm, f"{split}_dataloader")()
        assert isinstance(device_loader, DeviceBatchLoader)
        assert isinstance(plain_loader, DataLoader)
        assert len(device_loader) == len(plain_loader)
        for epoch in (0, 1, 0):  # epoch 0 again: a resumed run replays the same order
            device_batches = _epoch(device_loader, epoch)
            plain_batches = _epoch(plain_loader, epoch)
            assert len(device_batches) == len(plain_batches) == len(plain_loader)
            for (x, y), (px, py) in zip(device_batches, plain_batches, strict=True):
                assert x.dtype == torch.uint8 and torch.equal(x, px) and torch.equal(y, py)
    # The training order is shuffled, and differs between epochs.
    train = device_dm.train_dataloader()
    first, second = _epoch(train, 0)[0][1], _epoch(train, 1)[0][1]
    assert not torch.equal(first, second)


def test_last_smaller_batch_is_kept() -> None:
    images = torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1)
    loader = DeviceBatchLoader(TensorImageDataset(images, torch.arange(10)), 4)
    assert len(loader) == 3
    assert [y.tolist() for _, y in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_set_is_moved_to_the_device_once() -> None:
    dataset = TensorImageDataset(
        torch.zeros(10, 1, 2, 2, dtype=torch.uint8), torch.arange(10, dtype=torch.int64)
    )
    loader = DeviceBatchLoader(dataset, 4, EpochShuffleSampler(10, seed=0), device="meta")
    assert loader.images.device.type == "meta" and loader.labels.device.type == "meta"
    assert loader.images.dtype == torch.uint8  # moved as uint8, scaled on the device later
    batches = list(loader)
    assert [x.shape[0] for x, _ in batches] == [4, 4, 2]
    assert all(x.device.type == "meta" and y.device.type == "meta" for x, y in batches)
    # The data module keeps one copy per split and device: a new loader copies nothing.
    dm = _dm(device_resident=True)
    assert dm.train_dataloader().images is dm.train_dataloader().images
    assert dm.train_dataloader().images.device == torch.device("cpu")


def test_auto_chooses_by_data_workers_and_processes(tmp_path: Path) -> None:
    assert isinstance(_dm().train_dataloader(), DeviceBatchLoader)  # auto, in memory, 0 workers
    assert isinstance(_dm(num_workers=1).train_dataloader(), DataLoader)
    assert isinstance(_dm(device_resident=False).val_dataloader(), DataLoader)
    # DDP: Lightning's DistributedSampler must give each rank its shard, so a DataLoader.
    dm = _dm()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    dm.trainer = trainer
    assert trainer.world_size == 2
    assert isinstance(dm.train_dataloader(), DataLoader)


def test_true_with_workers_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"data\.device_resident") as caught:
        _dm(device_resident=True, num_workers=2)
    assert "num_workers" in str(caught.value)
    with pytest.raises(ConfigError, match=r"data\.device_resident"):
        _dm(device_resident="yes")


# Two short deterministic trainings (~10 s): the whole run, metrics.json byte for byte.
def test_training_metrics_are_identical_to_the_dataloader_path(run_cli, tmp_path: Path) -> None:
    run = [
        "model=lenet5",
        "data=synthetic",
        "data.source.num_samples=600",
        "augmentation=flip_crop",
        "trainer.deterministic=true",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=4",
        "trainer.limit_val_batches=2",
        "trainer.limit_test_batches=2",
        "logger=none",
    ]
    texts = {}
    for mode in ("false", "true"):
        out = tmp_path / mode
        run_cli("train", *run, f"data.device_resident={mode}", f"hydra.run.dir={out}")
        texts[mode] = (out / "metrics.json").read_bytes()
    assert texts["true"] == texts["false"]
    assert b"test/acc" in texts["true"]


# Slow: the same case runs in process in tests/tasks/test_bad_input.py.
@pytest.mark.slow
def test_bad_device_resident_is_one_line(run_subprocess, tmp_path: Path) -> None:
    result = run_subprocess(
        "train", "data=synthetic", "data.device_resident=true", "data.num_workers=1"
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Traceback" not in output
    assert "data.device_resident" in output.strip().splitlines()[-1]
    assert not list((tmp_path / "outputs").glob("runs/*/*/metrics.json"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fit_slices_batches_on_the_gpu(tmp_path: Path) -> None:
    seen: list[torch.device] = []

    class _Probe(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(36, 3)

        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            x, y = batch
            seen.append(x.device)
            return torch.nn.functional.cross_entropy(self.fc(x.flatten(1)), y)

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = _dm()
    trainer = pl.Trainer(
        accelerator="gpu",
        devices=1,
        max_epochs=1,
        limit_train_batches=3,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(_Probe(), datamodule=dm)
    assert [d.type for d in seen] == ["cuda"] * 3
    assert dm._device_copies[("train", trainer.strategy.root_device)].images.is_cuda
