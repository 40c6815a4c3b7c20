"""Training throughput of ``cnnlab train`` against the loops a user would write instead.

Three ways to train the same network on the same in-memory data, each timed from inside
its training loop (samples/s over a fixed number of steps after a warm-up, see
:class:`benchmarks._common.StepTimer`):

- ``cnnlab``: the real ``cnnlab train`` (Hydra config, DataModule, LightningModule,
  the default callbacks and CSV logger), run in this process through ``cnnlab.cli.main``.
- ``plain``: a hand-written PyTorch loop doing the same work: the same network, uint8
  images held in memory, shuffled and sliced per batch, the same augmentation module,
  normalisation, batch size, optimizer and schedule.
- ``bare Lightning``: the plain loop's step as a ``LightningModule`` and nothing else (no
  metric, log, callback, logger or checkpoint): what Lightning's loop itself costs a step.
- ``recipe``: the usual Lightning recipe (lightning-hydra-template's ``MNISTLitModule``):
  a ``Dataset`` whose ``__getitem__`` converts, pads, crops, flips and normalises one
  sample, per-sample collation, ``num_workers = os.cpu_count()`` as Lightning's warning
  suggests, persistent workers, and torchmetrics called per step.
"""

from __future__ import annotations

import os
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from benchmarks._common import StepTimer, Table, interleaved, median, read_json, verdict

BATCH_SIZE = 64
LR = 1e-3
# Where the train split of the synthetic set ends up: 1 - test_fraction, then 1 - val_fraction.
_TRAIN_SHARE = 0.8 * 0.9


@dataclass(frozen=True)
class Case:
    """One network on one input shape.

    Args:
        label: Row label.
        model: ``conf/model`` option.
        in_channels: Image channels.
        image_size: Image side.
        overrides: Further config overrides (e.g. the norm the paper uses).
    """

    label: str
    model: str
    in_channels: int
    image_size: int
    overrides: tuple[str, ...] = field(default_factory=tuple)


LENET = Case("LeNet-5, 28x28x1", "lenet5", 1, 28)
RESNET = Case("ResNet-18, 32x32x3", "resnet18", 3, 32, ("norm=batch",))


@dataclass(frozen=True)
class Budget:
    """Steps and repeats of one measurement."""

    warmup: int
    steps: int
    repeats: int


def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def cnnlab_overrides(case: Case, augmentation: str, budget: Budget, out: Path) -> list[str]:
    """The ``cnnlab train`` overrides of one measurement (also shown in BENCHMARKS.md)."""
    steps = budget.warmup + budget.steps
    samples = int(steps * BATCH_SIZE / _TRAIN_SHARE) + 10 * BATCH_SIZE
    return [
        f"model={case.model}",
        "data=synthetic",
        f"data.in_channels={case.in_channels}",
        f"data.image_size={case.image_size}",
        f"data.source.num_samples={samples}",
        f"data.batch_size={BATCH_SIZE}",
        f"augmentation={augmentation}",
        *case.overrides,
        "trainer.max_epochs=1",
        f"trainer.limit_train_batches={steps}",
        "trainer.limit_val_batches=1",
        "test=false",
        "+callbacks.step_timer._target_=benchmarks._common.StepTimer",
        f"+callbacks.step_timer.warmup={budget.warmup}",
        f"+callbacks.step_timer.steps={budget.steps}",
        f"+callbacks.step_timer.out={out}",
    ]


def run_cnnlab(case: Case, augmentation: str, budget: Budget, workdir: Path) -> float:
    """Run the real ``cnnlab train`` in this process; return its samples/s."""
    from cnnlab import cli

    out = Path(tempfile.mkstemp(suffix=".json", dir=workdir)[1])
    out.unlink()
    run_dir = out.with_suffix("")
    cli.main(
        ["train", *cnnlab_overrides(case, augmentation, budget, out), f"hydra.run.dir={run_dir}"]
    )
    return float(read_json(out)["samples_per_s"])


def _compose(case: Case, augmentation: str) -> Any:
    from hydra import compose, initialize_config_dir

    from cnnlab.config import config_dir

    overrides = [f"model={case.model}", "data=synthetic", f"augmentation={augmentation}"]
    overrides += [f"data.in_channels={case.in_channels}", f"data.image_size={case.image_size}"]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[*overrides, *case.overrides])


def build_parts(case: Case, augmentation: str, samples: int) -> dict[str, Any]:
    """The network, augmentation and uint8 data the baselines train on (cnnlab's own builders).

    The baselines use cnnlab's model and augmentation builders so that all sides run the
    very same network and augmentation code; what differs is the training loop.
    """
    from cnnlab.config import to_dict
    from cnnlab.data.augmentation import build_augmentation
    from cnnlab.data.sources import SyntheticSource
    from cnnlab.lit.module import build_network

    cfg = _compose(case, augmentation)
    torch.manual_seed(0)
    source = SyntheticSource(
        num_samples=samples,
        image_size=case.image_size,
        in_channels=case.in_channels,
        num_classes=10,
        seed=0,
    )
    images, labels = source.load().train
    scaled = images[:4096].float().div(255)
    mean = scaled.mean(dim=(0, 2, 3)).tolist()
    std = scaled.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()
    aug_cfg = to_dict(cfg.augmentation)
    return {
        "net": build_network(to_dict(cfg.model)),
        "augment": build_augmentation(aug_cfg),
        "padding": int(aug_cfg.get("padding", 0)) if aug_cfg["name"] == "flip_crop" else 0,
        "images": images,
        "labels": labels,
        "mean": mean,
        "std": std,
    }


def run_plain(parts: dict[str, Any], budget: Budget) -> float:
    """A hand-written PyTorch loop over the in-memory uint8 set; return its samples/s."""
    device = _device()
    net: nn.Module = parts["net"].to(device).train()
    augment = parts["augment"].to(device) if parts["augment"] is not None else None
    images, labels = parts["images"].to(device), parts["labels"].to(device)
    shape = (1, -1, 1, 1)
    mean = torch.tensor(parts["mean"], device=device).view(shape)
    std = torch.tensor(parts["std"], device=device).view(shape)
    total = budget.warmup + budget.steps
    optimizer = torch.optim.Adam(net.parameters(), lr=LR)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    order = torch.randperm(len(labels), device=device)
    tic = 0.0
    for step in range(total):
        if step == budget.warmup:
            _sync(device)
            tic = time.perf_counter()
        idx = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
        x = images[idx].float().div_(255)
        if augment is not None:
            x = augment(x)
        x = (x - mean) / std
        loss = F.cross_entropy(net(x), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    _sync(device)
    return budget.steps * BATCH_SIZE / (time.perf_counter() - tic)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class BareModule(pl.LightningModule):
    """The plain loop's step (scale, augment, normalise, forward, loss) and nothing else."""

    mean: Tensor
    std: Tensor

    def __init__(self, parts: dict[str, Any], total_steps: int) -> None:
        super().__init__()
        self.net = parts["net"]
        self.augment = parts["augment"]
        self.register_buffer("mean", torch.tensor(parts["mean"]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(parts["std"]).view(1, -1, 1, 1))
        self.total_steps = total_steps

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        x = x.float().div_(255)
        if self.augment is not None:
            x = self.augment(x)
        return F.cross_entropy(self.net((x - self.mean) / self.std), y)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=LR)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class SlicedBatches:
    """The plain loop's batches (a fresh permutation, then slices of the uint8 set) as an
    iterable with a length, which Lightning fetches from as from a DataLoader."""

    def __init__(self, images: Tensor, labels: Tensor, steps: int) -> None:
        self.images, self.labels, self.steps = images, labels, steps

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Any:
        order = torch.randperm(len(self.labels), device=self.labels.device)
        for step in range(self.steps):
            idx = order[step * BATCH_SIZE : (step + 1) * BATCH_SIZE]
            yield self.images[idx], self.labels[idx]


def run_bare_lightning(parts: dict[str, Any], budget: Budget, workdir: Path) -> float:
    """The plain loop's work through Lightning's own loop alone; return its samples/s."""
    device = _device()
    total = budget.warmup + budget.steps
    batches = SlicedBatches(parts["images"].to(device), parts["labels"].to(device), total)
    out = Path(tempfile.mkstemp(suffix=".json", dir=workdir)[1])
    trainer = pl.Trainer(
        accelerator="auto",
        devices=1,
        max_epochs=1,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[StepTimer(budget.warmup, budget.steps, str(out))],
    )
    trainer.fit(BareModule(parts, total), train_dataloaders=batches)
    return float(read_json(out)["samples_per_s"])


class PerSampleImages(Dataset[tuple[Tensor, int]]):
    """The usual Dataset: one image at a time, like torchvision's ``RandomCrop(size,
    padding)``, ``RandomHorizontalFlip()``, ``ToTensor()`` and ``Normalize(mean, std)``.

    Args:
        images: uint8 ``[N, C, H, W]``.
        labels: int64 ``[N]``.
        mean: Per-channel mean.
        std: Per-channel std.
        padding: Crop padding; 0 turns crop and flip off.
    """

    def __init__(
        self, images: Tensor, labels: Tensor, mean: list[float], std: list[float], padding: int
    ) -> None:
        self.images = images
        self.labels = labels
        self.mean = torch.tensor(mean).view(-1, 1, 1)
        self.std = torch.tensor(std).view(-1, 1, 1)
        self.padding = padding

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        x = self.images[index].float().div_(255)
        if self.padding:
            side_h, side_w = x.shape[-2:]
            x = F.pad(x, [self.padding] * 4)
            top = random.randint(0, 2 * self.padding)
            left = random.randint(0, 2 * self.padding)
            x = x[:, top : top + side_h, left : left + side_w]
            if random.random() < 0.5:
                x = x.flip(-1)
        return (x - self.mean) / self.std, int(self.labels[index])


class RecipeModule(pl.LightningModule):
    """lightning-hydra-template's ``MNISTLitModule`` training step, with the same network."""

    def __init__(self, net: nn.Module, num_classes: int, total_steps: int) -> None:
        super().__init__()
        self.net = net
        self.criterion = nn.CrossEntropyLoss()
        self.train_acc = MulticlassAccuracy(num_classes, average="micro")
        self.train_loss = MeanMetric()
        self.total_steps = total_steps

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        logits = self.net(x)
        loss = self.criterion(logits, y)
        preds = torch.argmax(logits, dim=1)
        self.train_loss(loss)
        self.train_acc(preds, y)
        self.log("train/loss", self.train_loss, on_step=False, on_epoch=True, prog_bar=True)
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.parameters(), lr=LR)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def recipe_workers() -> int:
    """What Lightning's "does not have many workers" warning tells a user to set."""
    return os.cpu_count() or 1


def run_recipe(parts: dict[str, Any], budget: Budget, workdir: Path) -> float:
    """Train with the usual Lightning recipe; return its samples/s."""
    from pytorch_lightning.loggers import CSVLogger

    total = budget.warmup + budget.steps
    dataset = PerSampleImages(
        parts["images"], parts["labels"], parts["mean"], parts["std"], parts["padding"]
    )
    workers = recipe_workers()
    loader = DataLoader(
        dataset,
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
    )
    out = Path(tempfile.mkstemp(suffix=".json", dir=workdir)[1])
    trainer = pl.Trainer(
        accelerator="auto",
        devices=1,
        max_epochs=1,
        limit_train_batches=total,
        limit_val_batches=0,
        logger=CSVLogger(workdir, name="recipe"),
        enable_checkpointing=False,
        # A progress bar would slow the baseline down; leaving it out favours the baseline.
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[StepTimer(budget.warmup, budget.steps, str(out))],
    )
    trainer.fit(RecipeModule(parts["net"], 10, total), train_dataloaders=loader)
    return float(read_json(out)["samples_per_s"])


def _samples(budget: Budget) -> int:
    return int((budget.warmup + budget.steps) * BATCH_SIZE / _TRAIN_SHARE) + 10 * BATCH_SIZE


def bench_vs_plain(lenet: Budget, resnet: Budget | None, workdir: Path) -> Table:
    """Benchmark 1: ``cnnlab train`` vs the plain PyTorch loop.

    Args:
        lenet: Steps and repeats for LeNet-5 (with and without augmentation).
        resnet: Steps and repeats for ResNet-18, or None to leave it out.
        workdir: Scratch folder.
    """
    table = Table(
        title="1. Training throughput: `cnnlab train` vs a plain PyTorch loop",
        intro=(
            f"Samples/s over a fixed number of training steps after warm-up steps, batch "
            f"{BATCH_SIZE}, Adam + per-step cosine schedule, synthetic in-memory data, on "
            f"{_device().type}; median of interleaved repeats. The plain loop holds the uint8 "
            "images in memory and slices, scales, augments (the same batched module) and "
            "normalises each batch itself. Bare Lightning runs that same step as a "
            "LightningModule with nothing else (no metric, log, callback, logger, "
            "checkpoint or progress bar): what Lightning's loop with automatic optimisation "
            "costs a step by itself. Target: ratio >= 0.95."
        ),
        columns=[
            "network",
            "augmentation",
            "steps (warm-up)",
            "repeats",
            "cnnlab samples/s",
            "plain samples/s",
            "ratio",
            "bare Lightning samples/s",
            "bare Lightning ratio",
            "target",
        ],
    )
    overheads: list[float] = []
    floors: list[float] = []
    runs = [(LENET, "none", lenet), (LENET, "flip_crop", lenet)]
    if resnet is not None:
        runs.append((RESNET, "none", resnet))
    for case, augmentation, budget in runs:
        parts = build_parts(case, augmentation, _samples(budget))
        results = interleaved(
            {
                "cnnlab": lambda c=case, a=augmentation, b=budget: run_cnnlab(c, a, b, workdir),
                "plain": lambda p=parts, b=budget: run_plain(p, b),
                "bare": lambda p=parts, b=budget: run_bare_lightning(p, b, workdir),
            },
            budget.repeats,
        )
        ours, base = median(results["cnnlab"]), median(results["plain"])
        bare = median(results["bare"])
        ratio = ours / base
        overheads.append(BATCH_SIZE * (1 / ours - 1 / base) * 1e3)
        floors.append(BATCH_SIZE * (1 / bare - 1 / base) * 1e3)
        table.rows.append(
            [
                case.label,
                augmentation,
                f"{budget.steps} ({budget.warmup})",
                str(budget.repeats),
                f"{ours:,.0f}",
                f"{base:,.0f}",
                f"{ratio:.2f}",
                f"{bare:,.0f}",
                f"{bare / base:.2f}",
                verdict(ratio >= 0.95),
            ]
        )
        table.commands.append(
            "cnnlab train " + " ".join(cnnlab_overrides(case, augmentation, budget, Path("OUT")))
        )
    table.commands.append("plain loop: benchmarks/throughput.py::run_plain")
    table.commands.append("bare Lightning: benchmarks/throughput.py::run_bare_lightning")
    table.notes.append(
        "Extra time per step over the plain loop: "
        + ", ".join(f"{ms:.2f} ms" for ms in overheads)
        + " (rows in order); bare Lightning's: "
        + ", ".join(f"{ms:.2f} ms" for ms in floors)
        + ". It is a fixed cost per step, not a share of the work. Bare Lightning's part is "
        "its automatic optimisation (the closure, the optimizer and precision wrappers) and "
        "about 20 hook dispatches per step; cnnlab's run sends each of them to 9 callbacks "
        "(the 8 defaults and the step timer). cnnlab's own per-step work is small: epoch "
        "metrics are running sums (no torchmetrics call per step), the NaN guard reads its "
        "flag every 20 steps, and "
        "batches are sliced from the device-resident set without a DataLoader. A ResNet-18 "
        "step hides the rest; on a GPU, "
        "or with larger batches, the ratio rises toward 1."
    )
    short = [row for row in table.rows if float(row[-2]) < 0.95]
    if short:
        table.notes.append(
            "Where bare Lightning itself stays under 0.95 ("
            + ", ".join(f"{row[0]} {row[1]}: {row[-2]}" for row in short)
            + "), no program on Lightning's automatic optimisation reaches the target on "
            "this machine; it takes manual optimisation over several batches per step, which "
            "cnnlab does not do."
        )
    return table


def bench_vs_recipe(budget: Budget, workdir: Path) -> Table:
    """Benchmark 2: ``cnnlab train`` vs the usual Lightning recipe, LeNet-5."""
    table = Table(
        title="2. Training throughput: `cnnlab train` vs the usual Lightning recipe",
        intro=(
            "The recipe: a Dataset whose `__getitem__` scales, pads by 4, randomly crops and "
            "flips and normalises one sample, default per-sample collation, "
            f"`num_workers={recipe_workers()}` (os.cpu_count(), as Lightning's warning "
            "suggests), persistent workers, torchmetrics MeanMetric/Accuracy called every step "
            "(lightning-hydra-template's MNISTLitModule). cnnlab: `augmentation=flip_crop` "
            "(the same pad-4 crop and flip, on whole batches) or `none`. Samples/s over "
            f"{budget.steps} steps after {budget.warmup} warm-up steps, batch {BATCH_SIZE}; "
            f"median of {budget.repeats} interleaved repeats. Targets: >= 1.3x with "
            "augmentation, >= 1.0x without."
        ),
        columns=[
            "network",
            "augmentation",
            "cnnlab samples/s",
            "recipe samples/s",
            "ratio",
            "target",
        ],
    )
    for augmentation, target in (("flip_crop", 1.3), ("none", 1.0)):
        parts = build_parts(LENET, augmentation, _samples(budget))
        results = interleaved(
            {
                "cnnlab": lambda a=augmentation: run_cnnlab(LENET, a, budget, workdir),
                "recipe": lambda p=parts: run_recipe(p, budget, workdir),
            },
            budget.repeats,
        )
        ours, base = median(results["cnnlab"]), median(results["recipe"])
        ratio = ours / base
        table.rows.append(
            [
                LENET.label,
                augmentation,
                f"{ours:,.0f}",
                f"{base:,.0f}",
                f"{ratio:.2f}",
                f"{verdict(ratio >= target)} (>= {target})",
            ]
        )
        table.commands.append(
            "cnnlab train "
            + " ".join(cnnlab_overrides(LENET, augmentation, budget, Path("OUT.json")))
        )
    table.commands.append("recipe: benchmarks/throughput.py::run_recipe")
    return table
