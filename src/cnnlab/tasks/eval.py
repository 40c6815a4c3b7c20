"""``cnnlab eval ckpt_path=...``: test a checkpoint and write ``metrics.json``."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cnnlab.config import to_dict
from cnnlab.errors import CheckpointError
from cnnlab.lit.build import build_datamodule, build_loggers, build_trainer
from cnnlab.lit.checkpoint import data_config, load_classifier

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict[str, float]:
    """Evaluate ``cfg.ckpt_path`` on ``cfg.split`` of the configured (or the checkpoint's) data."""
    from cnnlab.lit.callbacks import progress_bar
    from cnnlab.records.outcome import print_train_summary
    from cnnlab.records.recorder import recorded_run
    from cnnlab.tracking import finish_trackers
    from cnnlab.tracking.loggers import log_hyperparameters

    with recorded_run(cfg, finish=finish_trackers) as recorder:
        module = load_classifier(cfg.ckpt_path)
        data_cfg = cfg.get("data") or OmegaConf.create(data_config(module.hparams))
        check_data_fits(cfg.ckpt_path, module, data_cfg)  # before any data is loaded
        datamodule = build_datamodule(data_cfg)
        trainer = build_trainer(cfg.trainer, [progress_bar()], build_loggers(cfg.get("logger")))
        # The checkpoint's hyperparameters, as Lightning logged them before they were saved
        # with logger=False (see cnnlab.tracking.loggers).
        log_hyperparameters(trainer.loggers, module.hparams)
        run_split = trainer.test if cfg.split == "test" else trainer.validate
        results = run_split(module, datamodule=datamodule, verbose=False)
        metrics = {k: float(v) for k, v in results[0].items()}
        log.info("metrics: %s", metrics)
        recorder.write_metrics(metrics)
    print_train_summary(recorder, metrics)  # where metrics.json went, and what it holds
    return metrics


def check_data_fits(ckpt_path: str, module: Any, data_cfg: DictConfig) -> None:
    """Check that the checkpoint's network takes the data, before any batch is run.

    Raises:
        CheckpointError: The data's classes or channels differ from the network's.
        ConfigError: ``data.image_size``: the network cannot take images of that size (one
            forward pass of one image finds it, instead of torch's error mid-test).
    """
    from cnnlab.models.registry import image_hw
    from cnnlab.validation.network import check_network_input

    model = module.hparams["model"]
    for key in ("num_classes", "in_channels"):
        if int(model[key]) != int(data_cfg[key]):
            raise CheckpointError(
                ckpt_path, f"the network has {key}={model[key]}, the data has {key}={data_cfg[key]}"
            )
    size = image_hw(to_dict(data_cfg.image_size))
    check_network_input(module.net, int(data_cfg.in_channels), size, "data.image_size")
