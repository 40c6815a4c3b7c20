"""The classifier logs its epoch metrics once per epoch, and the values are right."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from cnnlab.data import ImageDataModule
from cnnlab.data.sources import SyntheticSource
from cnnlab.lit.module import ImageClassifier

MODEL = {
    "_target_": "cnnlab.models.build_model",
    "name": "lenet5",
    "in_channels": 1,
    "num_classes": 4,
    "image_size": 28,
}


def test_epoch_metrics_cover_every_batch_of_every_epoch() -> None:
    torch.manual_seed(0)
    datamodule = ImageDataModule(
        source=SyntheticSource(num_samples=200, image_size=28, num_classes=4, seed=0),
        name="synthetic",
        num_classes=4,
        in_channels=1,
        image_size=28,
        batch_size=16,
        val_fraction=0.2,
        seed=0,
        mean=[0.5],
        std=[0.25],
    )
    # A learning rate of ~0 keeps the network fixed, so every epoch's accuracy is known.
    module = ImageClassifier(
        model=MODEL,
        num_classes=4,
        loss={"name": "cross_entropy"},
        optimizer={"_target_": "torch.optim.SGD", "_partial_": True, "lr": 1e-12},
    )
    trainer = pl.Trainer(
        max_epochs=2,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, datamodule=datamodule)

    datamodule.setup()
    module.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for batch in datamodule.val_dataloader():
            x, y = datamodule.on_after_batch_transfer(batch, 0)
            correct += int((module(x).argmax(1) == y).sum())
            total += len(y)
    metrics = trainer.callback_metrics
    assert float(metrics["val/acc"]) == correct / total
    assert {"train/acc", "train/loss", "val/loss"} <= set(metrics)
    # Each epoch's sums were logged and cleared at its end: nothing is left over.
    assert all(sums.sums is None for sums in module.epoch_sums.values())


def test_epoch_sums_agree_with_torchmetrics_over_uneven_batches() -> None:
    from torchmetrics import MeanMetric
    from torchmetrics.classification import MulticlassAccuracy

    from cnnlab.lit.metrics import EpochSums, MetricName, Stage, metric_names

    torch.manual_seed(0)
    sums = EpochSums(metric_names(10, Stage.VAL))
    top1 = MulticlassAccuracy(10, top_k=1, average="micro")
    top5 = MulticlassAccuracy(10, top_k=5, average="micro")
    mean_loss = MeanMetric()
    for n in (64, 64, 7):  # the last batch is smaller: a weighted mean, not a mean of means
        scores, target = torch.randn(n, 10), torch.randint(0, 10, (n,))
        loss = torch.nn.functional.cross_entropy(scores, target)
        sums.update(loss, scores, target)
        top1.update(scores, target)
        top5.update(scores, target)
        mean_loss.update(loss, weight=n)
    values = sums.compute()
    assert float(values[MetricName.ACC]) == float(top1.compute())
    assert float(values[MetricName.ACC_TOP5]) == float(top5.compute())
    assert abs(float(values[MetricName.LOSS]) - float(mean_loss.compute())) < 1e-6
    sums.reset()
    assert sums.compute() == {}
