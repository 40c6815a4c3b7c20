"""The Lightning data module every data config builds.

One class serves every data set: a *source* object (built by Hydra from the
nested ``source`` node) reads the splits; the module validates them against
the config, carves a stratified validation split when the data set has none,
computes normalisation statistics when asked, and hands out loaders.

Batches leave the loaders as uint8 and are turned into normalised floats in
:meth:`ImageDataModule.on_after_batch_transfer`, i.e. on the training device,
where the augmentation also runs (training batches only).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from cnnlab.config import plain
from cnnlab.data.device_loader import DeviceBatchLoader, EpochShuffleSampler
from cnnlab.data.sources.base import (
    Source,
    SourceData,
    check_fraction,
    check_positive_int,
    resize_uint8,
    stratified_split,
)
from cnnlab.data.tensors import TensorImageDataset, passthrough_collate
from cnnlab.errors import ConfigError
from cnnlab.machine import usable_cores

log = logging.getLogger(__name__)

# Disk-backed training sets compute their statistics from at most this many images.
_STATS_MAX_FILES = 1024
_STATS_CHUNK = 4096


# data.num_workers=auto: enough decoding processes to keep a small GPU fed from disk.
AUTO_WORKERS = 4


def _check_stats(key: str, values: Any, in_channels: int) -> list[float] | None:
    if values is None:
        return None
    if isinstance(values, int | float) and not isinstance(values, bool):
        values = [values]
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(key, f"must be a list of {in_channels} numbers or null, got {values!r}")
    try:
        floats = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(key, f"must be a list of numbers, got {list(values)!r}") from None
    if len(floats) == 1 and in_channels > 1:
        floats *= in_channels
    if len(floats) != in_channels:
        raise ConfigError(key, f"has {len(floats)} values but data.in_channels is {in_channels}")
    return floats


def _tensor_stats(images: Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of uint8 images ``[N, C, H, W]`` scaled to [0, 1]."""
    total = torch.zeros(images.shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    for chunk in images.split(_STATS_CHUNK):
        x = chunk.to(torch.float64).div_(255)
        total += x.sum(dim=(0, 2, 3))
        squares += x.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    # Constant images have zero spread; a tiny floor keeps normalisation finite.
    std = (squares / count - mean.square()).clamp_(min=0).sqrt_().clamp_(min=1e-6)
    return mean.tolist(), std.tolist()


class ImageDataModule(pl.LightningDataModule):
    """Loaders for one image-classification data set, configured by ``conf/data/<name>.yaml``.

    Args:
        source: The data set reader (``cnnlab.data.sources``), built by Hydra.
        name: Data set name, for logs and run folders.
        num_classes: Number of classes; must match the data.
        in_channels: Channels per image; must match the data.
        image_size: Side of the square images; must match the data.
        batch_size: Samples per batch for every loader.
        val_fraction: Share of the training split held out (stratified) for
            validation when the data set ships no validation split.
        num_workers: Loader worker processes (0 loads in the main process); ``"auto"``
            takes up to :data:`AUTO_WORKERS`, never more than the usable cores.
        seed: Seed of the validation split and the shuffling.
        mean: Per-channel mean of the [0, 1] images; ``null`` computes it from
            the training split at setup (together with ``std``).
        std: Per-channel standard deviation; ``null`` computes it.
        augmentation: The ``augmentation`` config node (or an already built
            module); applied to training batches on the device.
        pin_memory: Pin loader memory for faster host-to-GPU copies.
        device_resident: Copy an in-memory set to the training device once (uint8) and
            slice batches there (:class:`DeviceBatchLoader`) instead of using a
            DataLoader: ``true``, ``false`` or ``"auto"`` (an in-memory set with
            ``num_workers=0`` on one device). DDP runs always take the DataLoader path,
            whose distributed sampler gives each rank its shard. Both paths yield the
            same batches in the same order.

    Raises:
        ConfigError: Naming the ``data.*`` key of an invalid value.

    Example:
        >>> from cnnlab.data.sources import SyntheticSource
        >>> dm = ImageDataModule(
        ...     source=SyntheticSource(num_samples=100, image_size=8, num_classes=4),
        ...     name="synthetic", num_classes=4, in_channels=1, image_size=8,
        ...     batch_size=16, val_fraction=0.2, seed=0, mean=[0.5], std=[0.25])
        >>> dm.setup("fit")
        >>> dm.num_train, dm.classes[:2]
        (64, ['class_0', 'class_1'])
    """

    def __init__(
        self,
        source: Source,
        name: str,
        num_classes: int,
        in_channels: int,
        image_size: int,
        batch_size: int = 64,
        val_fraction: float = 0.1,
        num_workers: int | str = 0,
        seed: int = 0,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        augmentation: Mapping[str, Any] | nn.Module | None = None,
        pin_memory: bool = False,
        device_resident: bool | str = "auto",
    ) -> None:
        super().__init__()
        if not isinstance(source, Source):
            raise ConfigError("data.source", f"must be a cnnlab data source, got {source!r}")
        if not isinstance(name, str) or not name:
            raise ConfigError("data.name", f"must be a non-empty string, got {name!r}")
        self.source = source
        self.name = name
        self.num_classes = check_positive_int("data.num_classes", num_classes, minimum=2)
        self.in_channels = check_positive_int("data.in_channels", in_channels)
        self.image_size = check_positive_int("data.image_size", image_size)
        self.batch_size = check_positive_int("data.batch_size", batch_size)
        self.val_fraction = check_fraction("data.val_fraction", val_fraction)
        if num_workers == "auto":
            # More workers than cores would only queue for them.
            num_workers = min(AUTO_WORKERS, usable_cores())
        self.num_workers = check_positive_int("data.num_workers", num_workers, minimum=0)
        self.seed = int(seed)
        self.pin_memory = bool(pin_memory)
        if device_resident not in (True, False, "auto"):
            raise ConfigError(
                "data.device_resident", f"must be true, false or auto, got {device_resident!r}"
            )
        if device_resident is True and self.num_workers > 0:
            raise ConfigError(
                "data.device_resident",
                f"is true but data.num_workers is {self.num_workers}: batches sliced on the "
                "device need no loader processes; set data.num_workers=0",
            )
        self.device_resident = device_resident
        self.mean = _check_stats("data.mean", mean, self.in_channels)
        self.std = _check_stats("data.std", std, self.in_channels)
        if (self.mean is None) != (self.std is None):
            raise ConfigError("data.std", "set both data.mean and data.std, or both to null")
        if self.std is not None and min(self.std) <= 0:
            raise ConfigError("data.std", f"must be > 0, got {self.std}")
        self._augment = self._build_augmentation(augmentation)
        self.save_hyperparameters(
            {
                "name": name,
                "num_classes": self.num_classes,
                "in_channels": self.in_channels,
                "image_size": self.image_size,
                "batch_size": self.batch_size,
                "val_fraction": self.val_fraction,
                "num_workers": self.num_workers,
                "seed": self.seed,
                "mean": self.mean,
                "std": self.std,
                # Plain values only: checkpoints load with ``weights_only=True``.
                "augmentation": (
                    repr(augmentation)
                    if isinstance(augmentation, nn.Module)
                    else plain(augmentation)
                ),
                "pin_memory": self.pin_memory,
                "device_resident": self.device_resident,
                "source": source.config(),
            },
            # The run's resolved config is logged as a whole; logging these too would make
            # Lightning compare them with the model's hparams and fail on shared names.
            logger=False,
        )
        self._train: Dataset[Any] | None = None
        self._val: Dataset[Any] | None = None
        self._test: Dataset[Any] | None = None
        self._classes: list[str] | None = None
        self._stats_cache: dict[torch.device, tuple[Tensor, Tensor]] = {}
        # (split, device) -> that split's tensors on that device, copied once.
        self._device_copies: dict[tuple[str, torch.device], TensorImageDataset] = {}

    @staticmethod
    def _build_augmentation(augmentation: Any) -> nn.Module | None:
        if augmentation is None or isinstance(augmentation, nn.Module):
            return augmentation
        if not isinstance(augmentation, Mapping):
            raise ConfigError("data.augmentation", f"must be a config node, got {augmentation!r}")
        # Imported here: kornia is only needed once augmentation is configured.
        from cnnlab.data.augmentation import build_augmentation

        return build_augmentation(augmentation)

    # ----------------------------------------------------------------- Lightning hooks

    def prepare_data(self) -> None:
        """Download the data set when its source allows it (rank 0 only)."""
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Load the splits once, validate them, carve validation, compute statistics.

        Every stage gets all splits; later calls return at once.

        Raises:
            ConfigError: When the data contradicts ``data.num_classes``,
                ``data.in_channels`` or ``data.image_size``, or ``data.val_fraction``
                leaves an empty split.
            DataError: When the source's files are missing or corrupt.
        """
        if self._train is not None:
            return
        data = self.source.load()
        self._check(data)
        train = self._as_dataset(data.train)
        test = self._as_dataset(data.test)
        if data.val is not None:
            val = self._as_dataset(data.val)
        else:
            labels = train.labels  # type: ignore[attr-defined]
            keep, held = stratified_split(labels, self.val_fraction, self.seed, "data.val_fraction")
            val, train = train.subset(held), train.subset(keep)  # type: ignore[attr-defined]
        if self.mean is None:
            self.mean, self.std = self._compute_stats(train)
            # Checkpoints then carry the statistics the network was trained with.
            self.hparams["mean"], self.hparams["std"] = self.mean, self.std
        self._train, self._val, self._test = train, val, test
        self._classes = list(data.classes)

    def train_dataloader(self) -> DataLoader[Any] | DeviceBatchLoader:
        """Shuffled batches of the training split (the last batch may be smaller)."""
        train = self._require(self._train)
        return self._loader("train", train, EpochShuffleSampler(len(train), self.seed))  # type: ignore[arg-type]

    def val_dataloader(self) -> DataLoader[Any] | DeviceBatchLoader:
        """Batches of the validation split, in order."""
        return self._loader("val", self._require(self._val), None)

    def test_dataloader(self) -> DataLoader[Any] | DeviceBatchLoader:
        """Batches of the test split, in order."""
        return self._loader("test", self._require(self._test), None)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Scale uint8 images to [0, 1], augment while training, then normalise.

        Runs on the batch's device after Lightning moved it there, so the
        augmentation works on whole batches on the accelerator.
        """
        x, y = batch
        x = x.float().div_(255) if x.dtype == torch.uint8 else x
        trainer = self.trainer
        if self._augment is not None and trainer is not None and trainer.training:
            self._augment = self._augment.to(x.device)
            x = self._augment(x)
        return self._normalize(x), y

    # ----------------------------------------------------------------- public helpers

    def preprocess(self, images: Tensor) -> Tensor:
        """Turn uint8 images ``[N, C, H, W]`` or ``[C, H, W]`` into normalised network input.

        The eval/predict path, without augmentation: images of another size are resized
        bilinearly to ``[N, C, image_size, image_size]``, on the input's device.

        Raises:
            ValueError: For a wrong dtype, rank or channel count.
            RuntimeError: When statistics are computed from data and setup has not run.
        """
        if images.ndim == 3:
            images = images.unsqueeze(0)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(
                f"expected uint8 images [N, C, H, W], got {images.dtype} {tuple(images.shape)}"
            )
        if images.shape[1] != self.in_channels:
            raise ValueError(
                f"images have {images.shape[1]} channels but data.in_channels is {self.in_channels}"
            )
        images = resize_uint8(images, self.image_size)
        return self._normalize(images.float().div_(255))

    @property
    def classes(self) -> list[str]:
        """Class names, index ``i`` naming label ``i`` (after :meth:`setup`)."""
        if self._classes is None:
            raise RuntimeError("classes are known after setup(); call datamodule.setup() first")
        return self._classes

    @property
    def num_train(self) -> int:
        """Number of training samples, after the validation split (after :meth:`setup`)."""
        return len(self._require(self._train))  # type: ignore[arg-type]

    # ----------------------------------------------------------------- internals

    def _require(self, dataset: Dataset[Any] | None) -> Dataset[Any]:
        if dataset is None:
            raise RuntimeError("the data is loaded by setup(); call datamodule.setup() first")
        return dataset

    @staticmethod
    def _as_dataset(split: Any) -> Dataset[Any]:
        if isinstance(split, tuple):
            return TensorImageDataset(*split)
        return split

    def _check(self, data: SourceData) -> None:
        """Compare what the source delivered with the config; raise ConfigError on mismatch."""
        if len(data.classes) != self.num_classes:
            shown = ", ".join(data.classes[:10]) + (", ..." if len(data.classes) > 10 else "")
            raise ConfigError(
                "data.num_classes",
                f"is {self.num_classes} but the {self.name} data has "
                f"{len(data.classes)} classes ({shown})",
            )
        for split_name in ("train", "val", "test"):
            split = getattr(data, split_name)
            if split is None:
                continue
            labels = split[1] if isinstance(split, tuple) else split.labels
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ConfigError(
                    "data.num_classes",
                    f"is {self.num_classes} but the {split_name} labels contain "
                    f"{int(labels.min())}..{int(labels.max())} "
                    f"({labels.unique().numel()} distinct values)",
                )
            if isinstance(split, tuple):
                self._check_shape(split[0], split_name)

    def _check_shape(self, images: Tensor, split_name: str) -> None:
        channels, height, width = images.shape[1:]
        if channels != self.in_channels:
            raise ConfigError(
                "data.in_channels",
                f"is {self.in_channels} but the {self.name} {split_name} images have "
                f"{channels} channels",
            )
        if (height, width) != (self.image_size, self.image_size):
            raise ConfigError(
                "data.image_size",
                f"is {self.image_size} but the {self.name} {split_name} images are "
                f"{height}x{width}",
            )

    @staticmethod
    def _compute_stats(train: Dataset[Any]) -> tuple[list[float], list[float]]:
        if isinstance(train, TensorImageDataset):
            return _tensor_stats(train.images)
        # Disk-backed: decode an evenly spaced, deterministic subset instead of every file.
        n = len(train)  # type: ignore[arg-type]
        step = max(1, n // _STATS_MAX_FILES)
        images = torch.stack([train[i][0] for i in range(0, n, step)])
        return _tensor_stats(images)

    def _device(self) -> tuple[torch.device, int]:
        """The training device and the number of processes (CPU and 1 without a trainer)."""
        trainer = self.trainer
        if trainer is None:
            return torch.device("cpu"), 1
        return trainer.strategy.root_device, trainer.world_size

    def uses_device_loader(self, dataset: Dataset[Any]) -> bool:
        """Whether ``dataset``'s batches are sliced on the device (see ``device_resident``).

        Raises:
            ConfigError: ``data.device_resident=true`` with a data set read from disk.
        """
        if self.device_resident is False:
            return False
        if not isinstance(dataset, TensorImageDataset):
            if self.device_resident is True:
                raise ConfigError(
                    "data.device_resident",
                    f"is true but the {self.name} data is read from disk, not held in "
                    "memory; set data.device_resident=auto",
                )
            return False
        _, world_size = self._device()
        if world_size > 1:
            # DDP: Lightning gives a DataLoader its DistributedSampler (each rank its shard).
            if self.device_resident is True:
                log.info("data.device_resident=true: %d processes use the DataLoader", world_size)
            return False
        return self.num_workers == 0

    def _loader(
        self, split: str, dataset: Dataset[Any], sampler: EpochShuffleSampler | None
    ) -> DataLoader[Any] | DeviceBatchLoader:
        if self.uses_device_loader(dataset):
            device, _ = self._device()
            key = (split, device)
            if key not in self._device_copies:
                log.info("data: %s split held on %s, batches sliced there", split, device)
                on_host = cast(TensorImageDataset, dataset)
                self._device_copies[key] = TensorImageDataset(
                    on_host.images.to(device), on_host.labels.to(device)
                )
            return DeviceBatchLoader(self._device_copies[key], self.batch_size, sampler, device)
        in_memory = isinstance(dataset, TensorImageDataset)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=False,
            # In-memory sets come back from __getitems__ already batched.
            collate_fn=passthrough_collate if in_memory else None,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
            # Worker seeds come from this generator, not torch's global one, so iterating a
            # loader does not shift the random stream that augmentation and dropout use.
            generator=torch.Generator().manual_seed(self.seed),
        )

    def _normalize(self, x: Tensor) -> Tensor:
        if self.mean is None or self.std is None:
            raise RuntimeError(
                "data.mean/std are computed from the training split; call setup() first"
            )
        if x.device not in self._stats_cache:
            shape = (1, self.in_channels, 1, 1)
            mean = torch.tensor(self.mean, device=x.device).view(shape)
            std = torch.tensor(self.std, device=x.device).view(shape)
            self._stats_cache[x.device] = (mean, std)
        mean, std = self._stats_cache[x.device]
        return (x - mean.to(x.dtype)) / std.to(x.dtype)
