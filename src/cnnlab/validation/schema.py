"""The schema: which values each config key accepts, per task, and the objects built to check.

One table per config group, ``key -> rule``, for what no constructor checks (or checks only
later, or after a type coercion, or with an error that names no key): a rule applies when its
key is in the composed config (an optimizer without ``momentum`` has nothing to check there).
What a constructor checks is checked by building it (see ``Dry builds`` below), whose errors
name the argument when the constructor's message does, else the group (see
:func:`cnnlab.errors.config_errors`). Most Trainer, callback, optimizer and data entries stay
for the types: Lightning and torch compare a string with a number and fail with a message
that names nothing (``'<=' not supported between instances of 'int' and 'str'``). Checks
across keys follow the tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cnnlab.errors import ConfigError, show
from cnnlab.validation.network import check_model_matches_data, probe_network
from cnnlab.validation.rules import (
    Bool,
    Choice,
    Either,
    Float,
    Folder,
    Int,
    ListOf,
    NewFile,
    Null,
    Nullable,
    ReadableFile,
    ReadablePath,
    Rule,
    Str,
    Text,
)

Table = Mapping[str, Rule]

# numpy (and so Lightning's seed_everything) takes seeds in [0, 2**32 - 1].
SEED = Int(0, 2**32 - 1)
# Sizes with a ceiling far above any real data set, so that a typo such as 99999999 stops
# here and not in torch's allocator: image side, channels, classes, batch.
SIDE = Int(1, 65_536)
CHANNELS = Int(1, 4_096)
CLASSES = Int(2, 1_000_000)
BATCH = Int(1, 1_048_576)
# A side, or (height, width).
IMAGE_SIZE = Either(SIDE, ListOf(SIDE, length=2))
FRACTION_OPEN = Float(0.0, 1.0, open_low=True, open_high=True)
PROBABILITY = Float(0.0, 1.0)
POSITIVE = Float(0.0, open_low=True)
NON_NEGATIVE = Float(0.0)
# Lightning's limit_*_batches and friends: a share of the batches, or a count of them.
SOME_BATCHES = Either(Float(0.0, 1.0, open_low=True), Int(1))

TOP: Table = {
    "seed": SEED,
    "tags": ListOf(Text()),
    "task": Text(),
    "paths.data_dir": Folder(),
    "paths.output_root": Folder(),
}

# Checked after the run folder itself (hydra.run.dir), which it names by default.
RUN_DIR: Table = {"paths.run_dir": Folder()}

TRAIN_TOP: Table = {
    "ckpt_path": Nullable(Either(Choice("last"), ReadableFile())),
    "test": Bool(),
    "monitor.metric": Text(),
    "monitor.mode": Choice("min", "max"),
    "optimized_metric": Nullable(Either(Text(), ListOf(Text()))),
}

# Lightning's Trainer checks accelerator, devices, precision and strategy when built.
TRAINER: Table = {
    "trainer.default_root_dir": Folder(),
    "trainer.num_nodes": Int(1),
    "trainer.strategy": Text(),
    "trainer.deterministic": Either(Bool(), Choice("warn")),
    "trainer.benchmark": Nullable(Bool()),
    "trainer.max_epochs": Nullable(Either(Int(1), Choice(-1))),
    "trainer.min_epochs": Nullable(Int(0)),
    "trainer.max_steps": Either(Int(1), Choice(-1)),
    "trainer.min_steps": Nullable(Int(0)),
    "trainer.check_val_every_n_epoch": Nullable(Int(1)),
    "trainer.val_check_interval": Nullable(SOME_BATCHES),
    "trainer.limit_train_batches": SOME_BATCHES,
    "trainer.limit_val_batches": SOME_BATCHES,
    "trainer.limit_test_batches": SOME_BATCHES,
    "trainer.overfit_batches": Either(Float(0.0, 1.0), Int(0)),
    "trainer.num_sanity_val_steps": Int(-1),
    "trainer.fast_dev_run": Either(Bool(), Int(1)),
    "trainer.log_every_n_steps": Int(1),
    "trainer.gradient_clip_val": Nullable(NON_NEGATIVE),
    "trainer.gradient_clip_algorithm": Nullable(Choice("norm", "value")),
    "trainer.accumulate_grad_batches": Int(1),
    "trainer.sync_batchnorm": Bool(),
    "trainer.enable_model_summary": Bool(),
    "trainer.enable_progress_bar": Bool(),
    "trainer.enable_checkpointing": Bool(),
    "trainer.profiler": Nullable(Choice("simple", "advanced", "pytorch")),
}

OPTIMIZER: Table = {
    "optimizer._partial_": Bool(),
    "optimizer.eps": POSITIVE,
    "optimizer.momentum": Float(0.0, 1.0, open_high=True),
    "optimizer.dampening": Float(0.0, 1.0, open_high=True),
    "optimizer.nesterov": Bool(),
    "optimizer.alpha": PROBABILITY,
    "optimizer.centered": Bool(),
    "optimizer.amsgrad": Bool(),
    "optimizer.maximize": Bool(),
}

SCHEDULER: Table = {
    "scheduler.warmup_epochs": Int(0),
    "scheduler.eta_min": NON_NEGATIVE,
    "scheduler.step_size": Int(1),
    "scheduler.gamma": POSITIVE,
    "scheduler.pct_start": FRACTION_OPEN,
    "scheduler.div_factor": POSITIVE,
    "scheduler.final_div_factor": POSITIVE,
    "scheduler.anneal_strategy": Choice("cos", "linear"),
    "scheduler.three_phase": Bool(),
    "scheduler.factor": FRACTION_OPEN,
    "scheduler.patience": Int(0),
    "scheduler.threshold": NON_NEGATIVE,
    "scheduler.cooldown": Int(0),
    "scheduler.min_lr": NON_NEGATIVE,
}

DATA: Table = {
    "data.name": Text(),
    "data.in_channels": CHANNELS,
    "data.val_fraction": FRACTION_OPEN,
    "data.source.num_classes": CLASSES,
    "data.source.test_fraction": FRACTION_OPEN,
    "data.num_classes": CLASSES,
    "data.image_size": IMAGE_SIZE,
    "data.batch_size": BATCH,
    "data.num_workers": Either(Int(0), Choice("auto")),  # auto: min(4, usable cores)
    "data.pin_memory": Bool(),
    "data.device_resident": Either(Bool(), Choice("auto")),
    "data.seed": SEED,
    "data.mean": Nullable(Either(Float(), ListOf(Float()))),
    "data.std": Nullable(Either(POSITIVE, ListOf(POSITIVE))),
    "data.source.root": Folder(),
    "data.source.download": Bool(),
    "data.source.image_size": IMAGE_SIZE,
    "data.source.in_channels": CHANNELS,
    "data.source.num_samples": Int(1, 100_000_000),
    "data.source.noise": NON_NEGATIVE,
    "data.source.seed": SEED,
    "data.source.mirrors": Nullable(ListOf(Text())),
}

# The norm, activation, init and dropout groups are checked by their layer factories
# (cnnlab.models.layers), which probe_network runs; their errors name the key.
MODEL: Table = {
    "model.num_classes": CLASSES,
    "model.name": Text(),
    "model.in_channels": CHANNELS,
    "model.image_size": IMAGE_SIZE,
}

# Its values are checked by building the policy (train); the name is checked everywhere.
AUGMENTATION: Table = {"augmentation.name": Text()}

LOSS: Table = {
    "loss.label_smoothing": Float(0.0, 1.0, open_high=True),
    "loss.apply_softmax": Bool(),
}

# Every callback of the group (``*``); the keys are Lightning's and cnnlab's own. Their
# constructors check ``mode`` and ``logging_interval`` (and save_top_k < -1, ...) when built.
CALLBACKS: Table = {
    "callbacks.*.dirpath": Folder(),
    "callbacks.*.filename": Text(),
    "callbacks.*.monitor": Nullable(Text()),
    "callbacks.*.save_top_k": Int(-1),
    "callbacks.*.save_last": Nullable(Either(Bool(), Choice("link"))),
    "callbacks.*.auto_insert_metric_name": Bool(),
    "callbacks.*.enable_version_counter": Bool(),
    "callbacks.*.save_on_train_epoch_end": Nullable(Bool()),
    "callbacks.*.every_n_epochs": Nullable(Int(0)),
    "callbacks.*.patience": Int(0),
    "callbacks.*.min_delta": NON_NEGATIVE,
    "callbacks.*.check_on_train_epoch_end": Nullable(Bool()),
    "callbacks.*.check_finite": Bool(),
    "callbacks.*.stopping_threshold": Nullable(Float()),
    "callbacks.*.log_momentum": Bool(),
    "callbacks.*.per_class": Int(1),
    # The progress bar's redraw interval (0 hides it) and the NaN guard's read interval.
    "callbacks.*.refresh_rate": Int(0),
    "callbacks.*.check_every_n_steps": Int(1),
    "callbacks.*.methods": ListOf(
        Choice("saliency", "gradcam", "class_model", "filters", "feature_maps")
    ),
    "callbacks.*.target_layer": Nullable(Text()),
    "callbacks.*.class_model.steps": Int(1),
    "callbacks.*.class_model.lr": POSITIVE,
    "callbacks.*.class_model.l2": NON_NEGATIVE,
}

# Every logger of the group; wandb's own keys after the common ones.
LOGGER: Table = {
    "logger.*.save_dir": Folder(),
    "logger.*.name": Nullable(Str()),
    "logger.*.version": Nullable(Either(Str(), Int(0))),
    "logger.*.prefix": Str(),
    "logger.*.default_hp_metric": Bool(),
    "logger.*.log_graph": Bool(),
    "logger.*.project": Text(),
    "logger.*.entity": Nullable(Text()),
    "logger.*.group": Nullable(Text()),
    "logger.*.job_type": Nullable(Text()),
    "logger.*.tags": Nullable(ListOf(Text())),
    "logger.*.mode": Nullable(Choice("online", "offline", "disabled")),
    "logger.*.log_model": Either(Bool(), Choice("all")),
}

EVAL: Table = {"ckpt_path": ReadableFile(), "split": Choice("test", "val")}

PREDICT: Table = {
    "ckpt_path": ReadableFile(),
    "input": ReadablePath(),
    "batch_size": BATCH,
    "top_k": Int(1),
    "output": NewFile(),
}

VISUALIZE: Table = {
    "ckpt_path": ReadableFile(),
    "method": Choice("saliency", "gradcam", "class_model", "filters", "feature_maps"),
    "input": Nullable(ReadablePath()),
    "per_class": Int(1),
    "target_class": Nullable(Either(Int(0), Text())),
    "target_layer": Nullable(Text()),
    "layers": Nullable(Either(Text(), ListOf(Text()))),
    "device": Choice("auto", "cpu", "cuda"),
    "class_model.steps": Int(1),
    "class_model.lr": POSITIVE,
    "class_model.l2": NON_NEGATIVE,
}

SUMMARY: Table = {"depth": Either(Null(), Int(1))}

# The tables each task's config is checked against; the groups a task does not compose
# are simply absent from its config. TOP comes first: the run folder is built from it.
TABLES: dict[str, tuple[Table, ...]] = {
    "train": (
        TOP,
        RUN_DIR,
        TRAIN_TOP,
        TRAINER,
        OPTIMIZER,
        SCHEDULER,
        DATA,
        MODEL,
        LOSS,
        CALLBACKS,
        LOGGER,
    ),
    "eval": (TOP, RUN_DIR, EVAL, TRAINER, DATA, AUGMENTATION, LOGGER),
    "predict": (TOP, RUN_DIR, PREDICT),
    "visualize": (TOP, RUN_DIR, VISUALIZE),
    "summary": (TOP, RUN_DIR, SUMMARY, DATA, AUGMENTATION, MODEL),
}


# ----------------------------------------------------------------------------------------
# Checks across keys, on the resolved config (plain dicts). Each raises ConfigError.
# ----------------------------------------------------------------------------------------


def check_epochs(cfg: Mapping[str, Any]) -> None:
    """Epoch counts that make Lightning skip validation (or stop early) are mistakes."""
    trainer = cfg.get("trainer") or {}
    max_epochs, min_epochs = trainer.get("max_epochs"), trainer.get("min_epochs")
    if trainer.get("fast_dev_run") or not isinstance(max_epochs, int) or max_epochs < 1:
        return
    if isinstance(min_epochs, int) and min_epochs > max_epochs:
        raise ConfigError(
            "trainer.min_epochs", f"{min_epochs} is more than trainer.max_epochs={max_epochs}"
        )
    every = trainer.get("check_val_every_n_epoch")
    if cfg.get("task") == "train" and isinstance(every, int) and every > max_epochs:
        raise ConfigError(
            "trainer.check_val_every_n_epoch",
            f"{every} is more than trainer.max_epochs={max_epochs}: the run would never validate, "
            "so the monitored metric would never be logged",
        )


def check_metrics(cfg: Mapping[str, Any]) -> None:
    """``monitor.metric`` is a validation key that is logged; ``optimized_metric`` keys too."""
    from cnnlab.lit.metrics import PARAMS_KEY, Stage, best_key, check_monitor, logged_keys

    num_classes: Any = (cfg.get("data") or {}).get("num_classes")
    monitor: Any = cfg.get("monitor") or {}
    check_monitor(monitor.get("metric"), monitor.get("mode"), num_classes)
    name = cfg.get("optimized_metric")
    if name is None:
        return
    stages = [Stage.TRAIN, Stage.VAL] + ([Stage.TEST] if cfg.get("test", True) else [])
    allowed = [k for k in logged_keys(num_classes) if k.split("/")[0] in stages]
    allowed += [best_key(monitor["metric"]), PARAMS_KEY]
    for metric in [name] if isinstance(name, str) else name:
        if metric not in allowed:
            raise ConfigError(
                "optimized_metric", f"{show(metric)} is never logged; choose from {allowed}"
            )


def check_visualize_extra(cfg: Mapping[str, Any]) -> None:
    """Saliency and Grad-CAM need captum, an optional extra; say so before loading anything."""
    method = cfg.get("method")
    if method not in ("saliency", "gradcam"):
        return
    try:
        import captum.attr  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "method",
            f"{method} needs captum, which is not installed ({exc}): "
            "pip install 'cnnlab[interpret]'",
        ) from exc


# ----------------------------------------------------------------------------------------
# Dry builds: objects that are cheap to build are built once from the config, so that what
# the builders (and torch) refuse is refused before any data is loaded or file written.
# ----------------------------------------------------------------------------------------


def build_optimizer_and_scheduler(cfg: Mapping[str, Any]) -> None:
    """Build the optimizer and scheduler for one dummy parameter."""
    import torch

    from cnnlab.lit.optim import build_optimizer, build_scheduler

    optimizer = build_optimizer(cfg["optimizer"], [torch.nn.Parameter(torch.zeros(1))])
    build_scheduler(
        cfg.get("scheduler"),
        optimizer,
        steps_per_epoch=10,
        total_steps=100,
        monitor=(cfg.get("monitor") or {}).get("metric", "val/acc"),
        mode=(cfg.get("monitor") or {}).get("mode", "max"),
    )


def build_data_callbacks_and_trainer(cfg: Mapping[str, Any]) -> None:
    """Build the data module (not loaded), the callbacks and the Trainer, as the task will.

    Their constructors check their arguments (a Trainer's accelerator, devices, precision and
    strategy; a callback's mode; the data module's sizes and fractions), and building them
    here refuses a mistake before the run folder exists. None of them writes a file when
    built. Loggers are not built here: W&B's creates its folder and MLflow's its database.
    """
    from hydra.utils import instantiate

    from cnnlab.errors import config_errors
    from cnnlab.lit.build import build_callbacks, build_trainer

    if cfg.get("data") is not None:
        with config_errors("data"):
            instantiate(cfg["data"])
    callbacks = build_callbacks(cfg.get("callbacks"), with_logger=True)
    if cfg.get("trainer") is not None:
        build_trainer(cfg["trainer"], callbacks, [])


def build_loss_and_augmentation(cfg: Mapping[str, Any]) -> None:
    """Build the loss, the augmentation policy and the perf switches."""
    from cnnlab.data.augmentation import build_augmentation
    from cnnlab.errors import config_errors
    from cnnlab.lit.losses import build_loss
    from cnnlab.lit.perf import perf_settings

    with config_errors("loss"):
        build_loss(cfg["loss"], int((cfg.get("data") or {}).get("num_classes", 2)))
    with config_errors("augmentation"):
        build_augmentation(cfg.get("augmentation"))
    perf_settings(cfg.get("perf"))


Check = Callable[[Mapping[str, Any]], None]

CHECKS: dict[str, tuple[Check, ...]] = {
    "train": (
        check_epochs,
        check_metrics,
        check_model_matches_data,
        build_optimizer_and_scheduler,
        build_loss_and_augmentation,
        probe_network,  # it builds the network (on the meta device)
        build_data_callbacks_and_trainer,  # last: it imports Lightning (seconds)
    ),
    "eval": (check_epochs, build_data_callbacks_and_trainer),
    "visualize": (check_visualize_extra,),
    "summary": (probe_network,),
}
