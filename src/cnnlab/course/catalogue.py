"""The material's comparisons as sweeps: which experiment config, which choices, how long.

Each :class:`Comparison` is one section of ``docs/experiments.md``: one or more
grid sweeps over (option x seed) through ``cnnlab train -m``. A :class:`Budget`
sets epochs, seeds and batches; :data:`FULL` is ``make experiments``,
:data:`QUICK` its smoke-test version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from cnnlab.course.studies import Sweep

# Every trial: no logger, no checkpoints or early stopping, no test pass, no summary table;
# the sweep needs only the best validation accuracy, which the LightningModule logs itself.
LEAN = (
    "logger=none",
    "callbacks=none",
    "test=false",
    "trainer.enable_model_summary=false",
)


@dataclass(frozen=True)
class Budget:
    """How long each trial trains and how many seeds each option gets."""

    name: str
    # Epochs of a LeNet-5-sized trial; each comparison scales it (epoch_factor).
    epochs: int
    seeds: int
    # Batches per epoch (train and val), or None for all of them.
    limit_batches: int | None = None
    search_trials: int = 9

    def overrides(self) -> tuple[str, ...]:
        """The batch limits as overrides (none for a full budget)."""
        if self.limit_batches is None:
            return ()
        n = self.limit_batches
        return (f"trainer.limit_train_batches={n}", f"trainer.limit_val_batches={n}")


FULL = Budget("full", epochs=8, seeds=3)
QUICK = Budget("quick", epochs=1, seeds=2, limit_batches=3, search_trials=4)


@dataclass(frozen=True)
class Part:
    """One grid sweep of a comparison: a label (e.g. the model), fixed overrides, the axes."""

    label: str
    overrides: tuple[str, ...]
    # Searched axes (key -> choices) besides the seed, in the sweep's override grammar.
    axes: dict[str, tuple[str, ...]]
    # Epochs relative to the budget's (ResNet trials are costlier, augmentation needs more).
    epoch_factor: float = 1.0


@dataclass(frozen=True)
class Comparison:
    """One section of the page: what the material says, and the sweeps that test it."""

    key: str
    title: str
    claim: str
    parts: tuple[Part, ...]
    why: str = ""

    def sweeps(self, db: Path, budget: Budget) -> list[tuple[Part, Sweep]]:
        """The comparison's sweeps under ``budget``, stored in ``db``."""
        seeds = ",".join(str(s) for s in range(1, budget.seeds + 1))
        out = []
        for part in self.parts:
            # A smoke budget keeps its one epoch; a full one scales it per model.
            factor = 1.0 if budget.limit_batches else part.epoch_factor
            epochs = max(1, round(budget.epochs * factor))
            axes = [f"{key}=choice({','.join(values)})" for key, values in part.axes.items()]
            size = budget.seeds * math.prod(len(values) for values in part.axes.values())
            overrides = (
                *part.overrides,
                *LEAN,
                f"trainer.max_epochs={epochs}",
                *budget.overrides(),
                *axes,
                f"seed=choice({seeds})",
            )
            name = f"{self.key}-{part.label}-{budget.name}-e{epochs}-s{budget.seeds}"
            out.append((part, Sweep(name, db, overrides, size)))
        return out


NORMS = ("batch", "layer", "instance", "group", "none")

COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "norm",
        "Batch vs layer vs instance vs group norm (and none)",
        "All share y = gamma (x - mu) / sigma + beta and differ in the set over which mu and "
        "sigma are computed; batch norm is the usual default for CNNs.",
        (
            Part("lenet5", ("experiment=norm_comparison", "model=lenet5"), {"norm": NORMS}),
            Part(
                "resnet18-w8-imagenet-stem",
                (
                    "experiment=norm_comparison",
                    "model=resnet18",
                    "model.base_width=8",
                    "model.stem=imagenet",
                ),
                {"norm": NORMS},
            ),
        ),
        why=(
            "The small ResNet: resnet18 with base_width=8 (stages 8-16-32-64, 177k parameters) "
            "and the ImageNet stem (7x7/2 conv + 3x3/2 max pool). With the small 3x3/1 stem "
            "stage 1 works on 28x28 maps: 7.2M mult-adds per image against 0.6M (`cnnlab "
            "summary`), about 10x the time per epoch; that ResNet would not fit the hour with "
            "the other comparisons. The trial times under each table come from the studies."
        ),
    ),
    Comparison(
        "dropout",
        "Dropout rates",
        "Dropout regularises: some rate above zero should help a network that can overfit.",
        (
            # LeNet-5 rather than the config's simple_cnn (18M mult-adds per image, 44x).
            # Its dropout sits before the fully connected F6 and output, where spatial dropout
            # is standard dropout (no feature maps to drop): the rate is the one axis.
            Part(
                "lenet5-standard",
                ("experiment=dropout_sweep", "model=lenet5", "dropout=standard"),
                {"dropout.rate": ("0.0", "0.1", "0.25", "0.5")},
            ),
        ),
    ),
    Comparison(
        "init",
        "The seven weight initialisations",
        "Initialisation matters, most in a deep network without normalisation.",
        (
            Part(
                "simple_cnn-9conv-nonorm",
                ("experiment=init_comparison",),
                {
                    "init": (
                        "default",
                        "kaiming_normal",
                        "kaiming_uniform",
                        "xavier_normal",
                        "xavier_uniform",
                        "orthogonal",
                        "normal",
                    )
                },
            ),
        ),
    ),
    Comparison(
        "augmentation",
        "Data augmentation",
        "Augmentation helps on a small data set, if it keeps the label (a mirrored digit is "
        "not a digit).",
        (
            Part(
                "lenet5",
                ("experiment=augmentation_comparison",),
                {"augmentation": ("none", "digits", "erasing", "flip_crop", "color")},
                epoch_factor=1.5,
            ),
        ),
    ),
    Comparison(
        "optimizer",
        "Optimizers and learning rates",
        "The learning rate matters more than most other choices, and each optimizer has its "
        "own good range.",
        (
            Part(
                "lenet5",
                ("experiment=optimizer_comparison",),
                {
                    "optimizer": ("sgd", "adam", "adamw", "rmsprop"),
                    "optimizer.lr": ("0.001", "0.01", "0.1"),
                },
            ),
        ),
    ),
)
