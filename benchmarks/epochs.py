"""Whole runs: ``cnnlab train`` on the digits against a plain loop doing the same epochs.

Per-step throughput (:mod:`benchmarks.throughput`) leaves out what an epoch costs besides
its steps: the validation loop, metric computation, checkpoints, early stopping, logging.
On the digits an epoch is 21 training steps, so those fixed costs weigh as much as the
steps. Two measurements, each of the real ``cnnlab train`` (the default config, run in this
process) against a hand-written loop over the same uint8 tensors with the same network,
augmentation, optimizer, schedule, validation and checkpoint files:

- a whole default run: 30 epochs, validation after each, best and last checkpoints;
- the fixed cost of an epoch: many epochs of one training and one validation batch each.

Both sides are timed over fitting alone (``fit_s`` in cnnlab's run.json; the loop's own
clock), so start-up (:mod:`benchmarks.processes`) stays out.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmarks._common import Table, interleaved, median, verdict


@dataclass(frozen=True)
class Shape:
    """How many epochs, and how many batches of each split per epoch (None: all)."""

    epochs: int
    train_batches: int | None = None
    val_batches: int | None = None

    def overrides(self) -> list[str]:
        """The ``cnnlab train`` overrides that give this shape."""
        out = [f"trainer.max_epochs={self.epochs}"]
        if self.train_batches is not None:
            out.append(f"trainer.limit_train_batches={self.train_batches}")
        if self.val_batches is not None:
            out.append(f"trainer.limit_val_batches={self.val_batches}")
        return out


# Every epoch runs: early stopping would end the default run at its own pace, the test
# after fitting is not part of fitting, and the timing reads the run's own run.json.
COMMON = ["callbacks.early_stopping=null", "test=false"]


def cnnlab_overrides(shape: Shape) -> list[str]:
    """The command-line overrides of one measurement (also shown in BENCHMARKS.md)."""
    return [*shape.overrides(), *COMMON]


def run_cnnlab(shape: Shape, workdir: Path) -> float:
    """Run the real ``cnnlab train`` in this process; return its fitting seconds."""
    from cnnlab import cli

    run_dir = Path(tempfile.mkdtemp(dir=workdir))
    cli.main(["train", *cnnlab_overrides(shape), f"hydra.run.dir={run_dir}"])
    run = json.loads((run_dir / "run.json").read_text())
    return float(run["timings"]["fit_s"])


def build_parts() -> dict[str, Any]:
    """The default run's network, augmentation, data and settings, from cnnlab's builders.

    The loop trains the very network, augmentation module and uint8 splits that
    ``cnnlab train`` builds from the default config; what differs is the loop.
    """
    from hydra import compose, initialize_config_dir

    from cnnlab.config import config_dir, to_dict
    from cnnlab.data.augmentation import build_augmentation
    from cnnlab.lit.build import build_datamodule
    from cnnlab.lit.module import build_network

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train")
    torch.manual_seed(int(cfg.seed))
    datamodule = build_datamodule(cfg.data)
    datamodule.setup("fit")
    train, val = datamodule._train, datamodule._val
    return {
        "net": build_network(to_dict(cfg.model)),
        "augment": build_augmentation(to_dict(cfg.augmentation)),
        "train": (train.images, train.labels),
        "val": (val.images, val.labels),
        "mean": datamodule.mean,
        "std": datamodule.std,
        "lr": float(cfg.optimizer.lr),
        "batch_size": int(cfg.data.batch_size),
    }


def _batches(n: int, batch_size: int, limit: int | None) -> int:
    full = -(-n // batch_size)
    return full if limit is None else min(full, limit)


def run_plain(parts: dict[str, Any], shape: Shape, workdir: Path) -> float:
    """The same epochs as a hand-written loop; return its fitting seconds.

    Each epoch: shuffled training batches (scale, augment, normalise, forward, loss,
    backward, Adam, a per-step cosine schedule), then the validation batches under
    ``no_grad`` with loss and accuracy, then ``torch.save`` of the last state and, when
    validation accuracy improved, of the best.
    """
    net: nn.Module = parts["net"]
    augment: nn.Module | None = parts["augment"]
    images, labels = parts["train"]
    val_images, val_labels = parts["val"]
    batch_size: int = parts["batch_size"]
    mean = torch.tensor(parts["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(parts["std"]).view(1, -1, 1, 1)
    steps = _batches(len(labels), batch_size, shape.train_batches)
    val_steps = _batches(len(val_labels), batch_size, shape.val_batches)
    optimizer = torch.optim.Adam(net.parameters(), lr=parts["lr"])
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps * shape.epochs)
    folder = Path(tempfile.mkdtemp(dir=workdir))
    best = -1.0

    def prepare(x: Tensor, training: bool) -> Tensor:
        x = x.float().div_(255)
        if training and augment is not None:
            x = augment(x)
        return (x - mean) / std

    tic = time.perf_counter()
    for epoch in range(shape.epochs):
        net.train()
        generator = torch.Generator().manual_seed(epoch)
        order = torch.randperm(len(labels), generator=generator)
        for step in range(steps):
            idx = order[step * batch_size : (step + 1) * batch_size]
            loss = F.cross_entropy(net(prepare(images[idx], True)), labels[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
        net.eval()
        correct = total_loss = 0.0
        seen = 0
        with torch.no_grad():
            for step in range(val_steps):
                x = val_images[step * batch_size : (step + 1) * batch_size]
                y = val_labels[step * batch_size : (step + 1) * batch_size]
                scores = net(prepare(x, False))
                total_loss += float(F.cross_entropy(scores, y, reduction="sum"))
                correct += float((scores.argmax(1) == y).sum())
                seen += len(y)
        accuracy = correct / seen
        state = {
            "epoch": epoch,
            "net": net.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
        }
        torch.save(state, folder / "last.pt")
        if accuracy > best:
            best = accuracy
            torch.save(state, folder / "best.pt")
    return time.perf_counter() - tic


class BareEpochModule(pl.LightningModule):
    """The plain loop's epoch as a LightningModule, written as Lightning's docs teach.

    Its training step is the loop's; its validation step logs loss and accuracy (``self.log``,
    averaged over the epoch by Lightning); two ``ModelCheckpoint`` callbacks save the last
    and the best state. Nothing of cnnlab's: what Lightning's loops cost an epoch.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, parts: dict[str, Any], total_steps: int) -> None:
        super().__init__()
        self.net: nn.Module = parts["net"]
        self.augment: nn.Module | None = parts["augment"]
        self.register_buffer("mean", torch.tensor(parts["mean"]).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(parts["std"]).view(1, -1, 1, 1))
        self.lr, self.total_steps = parts["lr"], total_steps

    def _prepare(self, x: Tensor, training: bool) -> Tensor:
        x = x.float().div_(255)
        if training and self.augment is not None:
            x = self.augment(x)
        return (x - self.mean) / self.std

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        x, y = batch
        return F.cross_entropy(self.net(self._prepare(x, True)), y)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        x, y = batch
        scores = self.net(self._prepare(x, False))
        self.log("val/loss", F.cross_entropy(scores, y), batch_size=len(y))
        self.log("val/acc", (scores.argmax(1) == y).float().mean(), batch_size=len(y))

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.Adam(self.net.parameters(), lr=self.lr)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class EpochBatches:
    """The loop's batches of one split: shuffled per epoch (seeded by the epoch) or in order."""

    def __init__(self, images: Tensor, labels: Tensor, batch_size: int, shuffle: bool) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.shuffle, self.epoch = batch_size, shuffle, 0

    def __len__(self) -> int:
        return _batches(len(self.labels), self.batch_size, None)

    def __iter__(self) -> Any:
        n = len(self.labels)
        order = torch.arange(n)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.epoch))
            self.epoch += 1
        for idx in order.split(self.batch_size):
            yield self.images[idx], self.labels[idx]


def run_bare_lightning(parts: dict[str, Any], shape: Shape, workdir: Path) -> float:
    """The same epochs through Lightning alone (:class:`BareEpochModule`); its fit seconds."""
    from pytorch_lightning.callbacks import ModelCheckpoint

    batch_size: int = parts["batch_size"]
    (images, labels), (val_images, val_labels) = parts["train"], parts["val"]
    train = EpochBatches(images, labels, batch_size, shuffle=True)
    val = EpochBatches(val_images, val_labels, batch_size, shuffle=False)
    steps = _batches(len(parts["train"][1]), batch_size, shape.train_batches)
    folder = Path(tempfile.mkdtemp(dir=workdir))
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=1,
        max_epochs=shape.epochs,
        limit_train_batches=shape.train_batches or 1.0,
        limit_val_batches=shape.val_batches or 1.0,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[
            ModelCheckpoint(folder, "last", monitor=None, save_on_train_epoch_end=False),
            ModelCheckpoint(folder, "best", monitor="val/acc", mode="max"),
        ],
    )
    module = BareEpochModule(parts, steps * shape.epochs)
    tic = time.perf_counter()
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    return time.perf_counter() - tic


# A whole default run, and the fixed cost of an epoch (one batch of each split).
WHOLE = Shape(epochs=30)
FIXED = Shape(epochs=40, train_batches=1, val_batches=1)


def bench_epochs(repeats: int, workdir: Path, quick: bool = False) -> Table:
    """Benchmark: the whole default digits run and the fixed cost of an epoch."""
    whole = Shape(epochs=3) if quick else WHOLE
    fixed = Shape(epochs=5, train_batches=1, val_batches=1) if quick else FIXED
    table = Table(
        title="7. Whole runs: `cnnlab train` on the digits vs a plain loop doing the same epochs",
        intro=(
            "The default run (LeNet-5 on the digits, digits augmentation, Adam with a per-step "
            "cosine schedule, batch 64: 21 training and 3 validation batches an epoch, best "
            "and last checkpoints, the CSV logger) against a hand-written loop over the same "
            "uint8 tensors with the same network, augmentation module, optimizer and schedule, "
            "validating every epoch and saving its last state (and its best) every epoch with "
            "`torch.save`. Early stopping is off so that both run every epoch. Seconds of "
            "fitting alone (cnnlab: `fit_s` of run.json, which includes Lightning's sanity "
            "check); median of interleaved repeats; ratio = plain / cnnlab (1.0: as fast as "
            "the loop). The fixed cost of an epoch is measured with one training and one "
            "validation batch per epoch. Bare Lightning is the loop's epoch written as a "
            "minimal LightningModule (its step; a validation step logging loss and accuracy; "
            "two ModelCheckpoint callbacks for last and best; no logger, progress bar or "
            "cnnlab code): what Lightning's own loops cost. Targets: whole run >= 0.90; "
            "per-epoch cost within 1.2x of the loop's (ratio >= 0.83)."
        ),
        columns=[
            "run",
            "epochs",
            "repeats",
            "cnnlab s",
            "plain s",
            "cnnlab ms/epoch",
            "plain ms/epoch",
            "ratio",
            "bare Lightning ms/epoch",
            "bare Lightning ratio",
            "target",
        ],
    )
    parts = build_parts()
    bare_misses: list[str] = []
    for label, shape, target in (
        ("whole default run", whole, 0.90),
        ("1 train + 1 val batch per epoch", fixed, 1 / 1.2),
    ):
        initial = {k: v.clone() for k, v in parts["net"].state_dict().items()}

        def plain(s: Shape = shape, initial: dict[str, Any] = initial) -> float:
            parts["net"].load_state_dict(initial)  # every repeat starts from the same weights
            return run_plain(parts, s, workdir)

        def bare(s: Shape = shape, initial: dict[str, Any] = initial) -> float:
            parts["net"].load_state_dict(initial)
            return run_bare_lightning(parts, s, workdir)

        results = interleaved(
            {"cnnlab": lambda s=shape: run_cnnlab(s, workdir), "plain": plain, "bare": bare},
            repeats,
        )
        ours, base = median(results["cnnlab"]), median(results["plain"])
        floor = median(results["bare"])
        if base / floor < target:
            bare_misses.append(f"{label}: {base / floor:.2f}")
        ratio = base / ours
        table.rows.append(
            [
                label,
                str(shape.epochs),
                str(repeats),
                f"{ours:.2f}",
                f"{base:.2f}",
                f"{1e3 * ours / shape.epochs:.1f}",
                f"{1e3 * base / shape.epochs:.1f}",
                f"{ratio:.2f}",
                f"{1e3 * floor / shape.epochs:.1f}",
                f"{base / floor:.2f}",
                f"{verdict(ratio >= target)} (>= {target:.2f})",
            ]
        )
        table.commands.append("cnnlab train " + " ".join(cnnlab_overrides(shape)))
    if bare_misses:
        table.notes.append(
            "Bare Lightning misses these targets too ("
            + ", ".join(bare_misses)
            + "): Lightning's loops, with a validation step that logs two values and two "
            "ModelCheckpoint callbacks, already cost more per epoch than the target allows on "
            "this machine. What cnnlab adds on top is the distance between the ratio and bare "
            "Lightning's ratio: its default callbacks, the CSV logger, six logged values, the "
            "best-so-far metric and checkpoints written atomically in the background."
        )
    table.commands.append("plain loop: benchmarks/epochs.py::run_plain")
    table.commands.append("bare Lightning: benchmarks/epochs.py::run_bare_lightning")
    return table
