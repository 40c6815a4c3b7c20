"""ImageDataModule: loaders, validation split, statistics, device-side preprocessing, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image
from torch import nn

from cnnlab.data import ImageDataModule
from cnnlab.data.datamodule import EpochShuffleSampler
from cnnlab.data.sources import ImageFolderSource, SyntheticSource
from cnnlab.data.sources.base import Source, SourceData
from cnnlab.errors import ConfigError


class _IdSource(Source):
    """Images whose pixels encode their own index, so splits can be compared exactly."""

    def __init__(
        self,
        n: int = 200,
        num_classes: int = 4,
        channels: int = 1,
        size: int = 4,
        label_offset: int = 0,
        class_count: int | None = None,
    ) -> None:
        self.n, self.k, self.c, self.size = n, num_classes, channels, size
        self.label_offset = label_offset
        self.class_count = num_classes if class_count is None else class_count
        self._settings = {"n": n}

    def load(self) -> SourceData:
        ids = torch.arange(self.n)
        images = torch.zeros(self.n, self.c, self.size, self.size, dtype=torch.uint8)
        images[:, 0, 0, 0] = (ids // 256).to(torch.uint8)
        images[:, 0, 0, 1] = (ids % 256).to(torch.uint8)
        labels = ids % self.k + self.label_offset
        test = (images[:20].clone(), labels[:20].clone())
        classes = [f"k{i}" for i in range(self.class_count)]
        return SourceData(train=(images, labels), test=test, val=None, classes=classes)


def _ids(images: torch.Tensor) -> torch.Tensor:
    return images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()


def _dm(source: Source | None = None, **overrides: Any) -> ImageDataModule:
    kwargs: dict[str, Any] = {
        "source": source or _IdSource(),
        "name": "ids",
        "num_classes": 4,
        "in_channels": 1,
        "image_size": 4,
        "batch_size": 32,
        "val_fraction": 0.2,
        "seed": 0,
        "mean": [0.5],
        "std": [0.25],
    }
    kwargs.update(overrides)
    return ImageDataModule(**kwargs)


def test_batches_are_sliced_uint8_and_cover_train() -> None:
    dm = _dm()
    dm.prepare_data()
    dm.setup("fit")
    assert dm.num_train == 160
    batches = list(dm.train_dataloader())
    assert [b[0].shape for b in batches[:1]] == [torch.Size([32, 1, 4, 4])]
    assert batches[-1][0].shape[0] == 160 - 32 * 4  # the smaller last batch is kept
    assert all(b[0].dtype == torch.uint8 and b[1].dtype == torch.int64 for b in batches)
    seen = torch.cat([_ids(b[0]) for b in batches])
    assert len(seen.unique()) == 160
    assert all(torch.equal(y, _ids(x) % 4) for x, y in batches)


def test_val_split_is_stratified_disjoint_and_seeded() -> None:
    dm = _dm(batch_size=1000)  # each split in one batch
    dm.setup()
    train_ids = _ids(next(iter(dm.train_dataloader()))[0])
    val_x, val_y = next(iter(dm.val_dataloader()))
    val_ids = _ids(val_x)
    assert len(train_ids) == 160 and len(val_ids) == 40
    assert set(train_ids.tolist()).isdisjoint(val_ids.tolist())
    assert val_y.bincount().tolist() == [10, 10, 10, 10]
    again = _dm()
    again.setup()
    assert torch.equal(_ids(next(iter(again.val_dataloader()))[0]), val_ids[:32])
    other = _dm(seed=1)
    other.setup()
    assert not torch.equal(_ids(next(iter(other.val_dataloader()))[0]), val_ids[:32])


def test_setup_is_idempotent() -> None:
    dm = _dm()
    dm.setup("fit")
    train = dm._train
    dm.setup("test")
    assert dm._train is train and dm.classes == ["k0", "k1", "k2", "k3"]


def test_shuffle_order_depends_on_epoch_only() -> None:
    sampler = EpochShuffleSampler(50, seed=3)
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(50)) and first != second
    sampler.set_epoch(0)
    assert list(sampler) == first  # a resumed run replays the same epoch order
    assert list(EpochShuffleSampler(50, seed=4)) != first


def test_after_batch_transfer_scales_and_normalises() -> None:
    dm = _dm()
    x = torch.full((2, 1, 4, 4), 255, dtype=torch.uint8)
    out, y = dm.on_after_batch_transfer((x, torch.tensor([0, 1])), 0)
    assert out.dtype == torch.float32 and torch.allclose(out, torch.full_like(out, 2.0))
    assert y.tolist() == [0, 1]


class _Invert(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 1 - x


def test_augmentation_only_while_training() -> None:
    dm = _dm(augmentation=_Invert(), mean=[0.0], std=[1.0])
    trainer = pl.Trainer(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    dm.trainer = trainer
    batch = (torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64))
    trainer.training = True
    assert torch.all(dm.on_after_batch_transfer(batch, 0)[0] == 1.0)
    trainer.validating = True
    assert torch.all(dm.on_after_batch_transfer(batch, 0)[0] == 0.0)
    assert torch.all(dm.preprocess(batch[0]) == 0.0)


def test_augmentation_config_node_is_built() -> None:
    dm = _dm(augmentation={"name": "none"})
    assert dm._augment is None
    assert dm.hparams["augmentation"] == {"name": "none"}


def test_preprocess_resizes_and_checks_channels() -> None:
    dm = _dm()
    out = dm.preprocess(torch.full((1, 8, 8), 128, dtype=torch.uint8))
    assert out.shape == (1, 1, 4, 4)
    assert torch.allclose(out, torch.full_like(out, (128 / 255 - 0.5) / 0.25), atol=1e-6)
    with pytest.raises(ValueError, match="channels"):
        dm.preprocess(torch.zeros(1, 3, 4, 4, dtype=torch.uint8))


def test_null_stats_are_computed_from_train_split() -> None:
    source = SyntheticSource(num_samples=100, image_size=6, in_channels=2, num_classes=4, seed=1)
    dm = _dm(source, num_classes=4, in_channels=2, image_size=6, mean=None, std=None)
    with pytest.raises(RuntimeError, match="setup"):
        dm.preprocess(torch.zeros(1, 2, 6, 6, dtype=torch.uint8))
    dm.setup()
    x = dm._train.images.double() / 255
    assert np.allclose(dm.mean, x.mean(dim=(0, 2, 3)).tolist())
    assert np.allclose(dm.std, x.std(dim=(0, 2, 3), unbiased=False).tolist())
    assert dm.hparams["mean"] == dm.mean
    batch = next(iter(dm.train_dataloader()))
    normed = dm.on_after_batch_transfer(batch, 0)[0]
    assert normed.shape == (32, 2, 6, 6)


def test_hparams_are_plain_and_load_weights_only(tmp_path: Path) -> None:
    dm = _dm(augmentation={"name": "none"})
    path = tmp_path / "hp.pt"
    torch.save(dict(dm.hparams), path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["batch_size"] == 32 and loaded["source"]["n"] == 200
    assert loaded["source"]["_target_"].endswith("_IdSource")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"batch_size": 0}, "data.batch_size"),
        ({"batch_size": -8}, "data.batch_size"),
        ({"val_fraction": 0.0}, "data.val_fraction"),
        ({"val_fraction": 1.0}, "data.val_fraction"),
        ({"image_size": 0}, "data.image_size"),
        ({"num_classes": 1}, "data.num_classes"),
        ({"in_channels": 0}, "data.in_channels"),
        ({"num_workers": -1}, "data.num_workers"),
        ({"mean": [0.5, 0.5]}, "data.mean"),
        ({"mean": [0.5], "std": None}, "data.std"),
        ({"std": [0.0]}, "data.std"),
        ({"name": ""}, "data.name"),
        ({"source": "digits"}, "data.source"),
        ({"augmentation": 3}, "data.augmentation"),
    ],
)
def test_bad_config_at_construction(overrides: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _dm(**overrides)
    assert str(err.value).startswith(key + ":")


@pytest.mark.parametrize(
    ("source", "overrides", "key", "detail"),
    [
        (_IdSource(class_count=10), {}, "data.num_classes", "has 10 classes"),
        (_IdSource(label_offset=2), {}, "data.num_classes", "labels contain 2..5"),
        (_IdSource(channels=3), {}, "data.in_channels", "have 3 channels"),
        (_IdSource(size=5), {}, "data.image_size", "are 5x5"),
        (_IdSource(n=200), {"val_fraction": 0.001}, "data.val_fraction", "empty split"),
    ],
    ids=["class-count", "label-range", "channels", "size", "empty-val"],
)
def test_data_contradicting_config_at_setup(
    source: Source, overrides: dict[str, Any], key: str, detail: str
) -> None:
    dm = _dm(source, **overrides)
    with pytest.raises(ConfigError) as err:
        dm.setup("fit")
    assert str(err.value).startswith(key + ":") and detail in str(err.value)


def test_image_folder_through_the_datamodule(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", 6), ("val", 2)):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            for i in range(count):
                pixels = rng.integers(0, 256, (9, 9, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / split / name / f"{i}.png")
    source = ImageFolderSource(tmp_path, image_size=8, in_channels=3)
    dm = _dm(
        source,
        name="folder",
        num_classes=2,
        in_channels=3,
        image_size=8,
        batch_size=4,
        val_fraction=0.25,
        mean=None,
        std=None,
    )
    dm.setup()
    assert dm.num_train == 9 and len(dm.mean) == 3
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 8, 8) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert sum(len(b[1]) for b in dm.test_dataloader()) == 4


class _Tiny(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
        self.seen: list[torch.Tensor] = []

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        self.seen.append(x)
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)


def test_lightning_fit_receives_normalised_float_batches() -> None:
    dm = _dm(augmentation=_Invert())
    model = _Tiny()
    trainer = pl.Trainer(
        max_epochs=1,
        limit_train_batches=2,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    trainer.fit(model, datamodule=dm)
    assert len(model.seen) == 2
    # Zero-valued pixels became 1 - 0 = 1 by augmentation, then (1 - 0.5) / 0.25 = 2.
    assert all(x.dtype == torch.float32 and x.shape == (32, 1, 4, 4) for x in model.seen)
    assert float(model.seen[0][0, 0, 3, 3]) == pytest.approx(2.0)
