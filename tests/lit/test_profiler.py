"""A Trainer profiles nothing unless the config asks; a configured profiler is Lightning's own."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from pytorch_lightning.profilers import PassThroughProfiler, SimpleProfiler

from cnnlab.config import config_dir
from cnnlab.lit.build import build_trainer


def _trainer(*overrides: str):  # type: ignore[no-untyped-def]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        # default_root_dir names the run folder, which only a running Hydra app knows.
        cfg = compose("train", overrides=["trainer.default_root_dir=.", *overrides])
    return build_trainer(cfg.trainer, [], [])


def test_no_profiler_configured_records_nothing() -> None:
    trainer = _trainer()
    assert isinstance(trainer.profiler, PassThroughProfiler)
    with trainer.profiler.profile("a hook"), trainer.profiler.profile("nested"):
        pass
    assert trainer.profiler.summary() == ""


def test_debug_profiler_keeps_lightnings_simple_profiler() -> None:
    assert isinstance(_trainer("debug=profiler").profiler, SimpleProfiler)
