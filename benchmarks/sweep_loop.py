"""What an expert writes by hand for ``cnnlab train -m experiment=search_lr_wd``.

One Python process: an Optuna study on SQLite and a plain PyTorch loop over the same
network (built from the experiment's model config by cnnlab's own builder), the same
uint8 digits splits, epochs and batch size, the same learning-rate and weight-decay
draws (a random sampler seeded per trial as cnnlab's sweeper seeds it), validating every
epoch; each trial returns its best validation accuracy. Run as a whole process, imports
included::

    python benchmarks/sweep_loop.py sqlite:///PATH.db STUDY_NAME N_TRIALS
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

# `python benchmarks/sweep_loop.py` puts benchmarks/ on the path; the package lives above.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import optuna
import torch
from torch.nn import functional as F

EXPERIMENT = "experiment=search_lr_wd"


def compose_experiment() -> Any:
    """The experiment's config, as ``cnnlab train`` composes it."""
    from hydra import compose, initialize_config_dir

    from cnnlab.config import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        return compose("train", overrides=[EXPERIMENT])


def load_splits(cfg: Any) -> dict[str, Any]:
    """The uint8 training and validation splits cnnlab's data module makes, with its stats."""
    from cnnlab.lit.build import build_datamodule

    datamodule = build_datamodule(cfg.data)
    datamodule.setup("fit")
    train, val = datamodule._train, datamodule._val
    return {
        "train": (train.images, train.labels),
        "val": (val.images, val.labels),
        "mean": torch.tensor(datamodule.mean).view(1, -1, 1, 1),
        "std": torch.tensor(datamodule.std).view(1, -1, 1, 1),
    }


def train_trial(cfg: Any, data: dict[str, Any], lr: float, weight_decay: float) -> float:
    """Train a fresh network for the experiment's epochs; return the best validation accuracy."""
    from cnnlab.config import to_dict
    from cnnlab.lit.module import build_network

    torch.manual_seed(int(cfg.seed))
    net = build_network(to_dict(cfg.model))
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    images, labels = data["train"]
    val_images, val_labels = data["val"]
    batch_size = int(cfg.data.batch_size)
    best = 0.0

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return (x.float().div_(255) - data["mean"]) / data["std"]

    for epoch in range(int(cfg.trainer.max_epochs)):
        net.train()
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(epoch))
        for start in range(0, len(labels), batch_size):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(net(prepare(images[index])), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        net.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(val_labels), batch_size):
                x = prepare(val_images[start : start + batch_size])
                correct += int((net(x).argmax(1) == val_labels[start : start + batch_size]).sum())
        best = max(best, correct / len(val_labels))
    return best


def main(storage: str, study_name: str, n_trials: int) -> None:
    """Run ``n_trials`` trials of the experiment's search space on a fresh study."""
    from cnnlab.sweeper.samplers import trial_seed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    cfg = compose_experiment()
    data = load_splits(cfg)
    space = {
        "optimizer.lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
        "optimizer.weight_decay": optuna.distributions.FloatDistribution(1e-6, 1e-4, log=True),
    }
    study = optuna.create_study(storage=storage, study_name=study_name, direction="maximize")
    for number in range(n_trials):
        # The draws of cnnlab's sweeper: a random sampler seeded per trial.
        study.sampler = optuna.samplers.RandomSampler(seed=trial_seed(int(cfg.seed), number))
        trial = study.ask(space)
        value = train_trial(
            cfg, data, trial.params["optimizer.lr"], trial.params["optimizer.weight_decay"]
        )
        study.tell(trial, value)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
