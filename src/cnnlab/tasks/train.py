"""``cnnlab train``: fit, test the best checkpoint, and record the run.

The run folder gets ``run.json`` and ``metrics.json`` (see
:mod:`cnnlab.records.recorder`), checkpoints, logs and plots. Returns
``cfg.optimized_metric`` for the sweeper.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from omegaconf import DictConfig

from cnnlab.config import to_dict
from cnnlab.errors import CheckpointError, ConfigError, config_errors
from cnnlab.lit.build import build_callbacks, build_datamodule, build_loggers, build_trainer
from cnnlab.lit.checkpoint import check_checkpoint_matches, checkpoint_path, read_checkpoint
from cnnlab.lit.metrics import PARAMS_KEY, Stage
from cnnlab.sweep import sweep_callbacks

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from pytorch_lightning.callbacks import ModelCheckpoint

    from cnnlab.data.datamodule import ImageDataModule

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float | list[float] | None:
    """Train as configured by ``cfg`` and return the value of ``cfg.optimized_metric``."""
    from cnnlab.records.outcome import print_train_summary
    from cnnlab.records.recorder import recorded_run
    from cnnlab.records.resume import resume_run
    from cnnlab.sweep.parallel import share_cores
    from cnnlab.tracking import finish_trackers

    share_cores(cfg)  # before anything starts torch's thread pool
    # `resume=<run folder>`: that run's own config and last checkpoint (see cnnlab.records.resume).
    resume = resume_run(cfg)
    if resume is not None:
        cfg = resume.config
    with recorded_run(cfg, resume=resume, finish=finish_trackers) as recorder:
        ckpt_path = str(resume.checkpoint) if resume else None
        metrics = _fit_and_test(cfg, recorder.run_dir, recorder.timings, ckpt_path)
        recorder.write_metrics(metrics)
    print_train_summary(recorder, metrics)
    return objective(metrics, cfg.optimized_metric)


def _fit_and_test(
    cfg: DictConfig, run_dir: Path, timings: dict[str, Any], resume_from: str | None
) -> dict[str, float]:
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import WandbLogger

    from cnnlab.lit.callbacks import KeepBestAcrossFolders, KeepStopped
    from cnnlab.lit.module import ImageClassifier
    from cnnlab.lit.perf import apply_perf
    from cnnlab.records.outcome import stop_info
    from cnnlab.tracking.loggers import log_hyperparameters

    pl.seed_everything(int(cfg.seed), workers=True)
    # The data group builds cnnlab's ImageDataModule (statistics and class names).
    datamodule = cast("ImageDataModule", build_datamodule(cfg.data))
    model_cfg = to_dict(cfg.model)
    # The statistics actually used (computed at setup when the config says null), for predict.
    data_cfg = {**to_dict(cfg.data), "mean": datamodule.mean, "std": datamodule.std}
    ckpt_path = _resume_path(resume_from or cfg.get("ckpt_path"), run_dir, model_cfg)
    # The network is built here from model + norm/activation/init/dropout; name the group.
    with config_errors("model"):
        module = ImageClassifier(
            model=model_cfg,
            num_classes=int(cfg.data.num_classes),
            loss=to_dict(cfg.loss),
            optimizer=to_dict(cfg.optimizer),
            scheduler=to_dict(cfg.scheduler),
            monitor=to_dict(cfg.monitor),
            data=data_cfg,
            classes=list(datamodule.classes),
        )
    apply_perf(cfg, module.net)
    loggers = build_loggers(cfg.logger)
    callbacks = build_callbacks(cfg.callbacks, with_logger=bool(loggers))
    callbacks += sweep_callbacks(cfg)
    if ckpt_path:  # what Lightning does not carry over from a checkpoint
        callbacks += [KeepStopped(), KeepBestAcrossFolders()]
    trainer = build_trainer(cfg.trainer, callbacks, loggers)
    log_hyperparameters(trainer.loggers, to_dict(cfg))

    tic = time.perf_counter()
    with _ctrl_c_is_no_failure(trainer):
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    timings["fit_s"] = round(time.perf_counter() - tic, 3)
    timings["train_samples"] = module.train_samples
    timings["samples_per_s"] = round(module.train_samples / max(timings["fit_s"], 1e-9), 1)
    timings.update(stop_info(trainer))  # epochs run and why fit stopped
    if trainer.interrupted:
        raise KeyboardInterrupt
    if ckpt_path and module.train_samples == 0:
        # The checkpoint had ended its fit (a sweep's lost trial killed after its last
        # epoch): its weights' validation and its best-so-far are the result.
        log.info("the checkpoint's fit had ended: nothing left to train; validating it")
        # Unlogged: the fit logged this epoch's validation, and another row (metrics.csv)
        # would add an epoch the fit never had.
        loggers, trainer.loggers = trainer.loggers, []
        try:
            trainer.validate(module, datamodule=datamodule, verbose=False)
        finally:
            trainer.loggers = loggers
        trainer.callback_metrics.update(module.best_so_far())
    metrics = _scalars(trainer.callback_metrics)
    metrics[PARAMS_KEY] = float(sum(p.numel() for p in module.net.parameters()))

    if cfg.get("test", True):
        # cnnlab checkpoints only with a ModelCheckpoint (see build_trainer).
        checkpoint = cast("ModelCheckpoint | None", trainer.checkpoint_callback)
        best = checkpoint.best_model_path if checkpoint else ""
        tic = time.perf_counter()
        with _ctrl_c_is_no_failure(trainer):
            results = trainer.test(
                module,
                datamodule=datamodule,
                ckpt_path=best or None,
                weights_only=True,
                verbose=False,
            )
        timings["test_s"] = round(time.perf_counter() - tic, 3)
        metrics.update({k: float(v) for k, v in (results[0] if results else {}).items()})
    for logger in trainer.loggers:
        # By type: under fast_dev_run Lightning swaps loggers for a DummyLogger whose
        # `experiment` answers every attribute with a no-op function.
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(metrics)
    log.info("metrics: %s", json.dumps(metrics, sort_keys=True))
    return dict(sorted(metrics.items()))


@contextmanager
def _ctrl_c_is_no_failure(trainer: pl.Trainer) -> Iterator[None]:
    """Turn Lightning's answer to Ctrl-C (``sys.exit(1)`` inside fit) back into Ctrl-C.

    Lightning catches the KeyboardInterrupt, tears down and exits with status 1; the run
    would be recorded ``failed`` with ``SystemExit: 1``. Its trainer says it was interrupted.
    """
    try:
        yield
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise


def _resume_path(wanted: Any, run_dir: Path, model_cfg: dict[str, Any]) -> str | None:
    """Check the checkpoint to continue from (``ckpt_path``, or a resumed run's last) fits."""
    if wanted is None:
        return None
    if str(wanted) == "last":
        raise CheckpointError(
            run_dir / "checkpoints" / "last.ckpt",
            "ckpt_path=last: resume a run with `cnnlab train resume=<its run folder>`",
        )
    path = checkpoint_path(wanted)  # ConfigError for ckpt_path=''
    check_checkpoint_matches(path, read_checkpoint(path), model_cfg)
    return str(path)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    """The stage metrics (``train/``, ``val/``, ``test/``), without the LR monitor's values."""
    prefixes = tuple(f"{stage}/" for stage in Stage)
    return {k: float(v) for k, v in metrics.items() if k.startswith(prefixes)}


def objective(metrics: dict[str, float], name: Any) -> float | list[float] | None:
    """Return the value(s) of ``optimized_metric`` for the sweeper.

    ``name`` is a metric key, a list of keys (multi-objective sweeps), or None.
    """
    if name is None:
        return None
    if not isinstance(name, str):
        return [_value(metrics, str(n)) for n in name]
    return _value(metrics, name)


def _value(metrics: dict[str, float], name: str) -> float:
    if name not in metrics:
        raise ConfigError(
            "optimized_metric", f"{name!r} was not logged; logged keys are {sorted(metrics)}"
        )
    if math.isnan(metrics[name]):
        log.warning("%s is NaN", name)
    return metrics[name]
