"""Metric names are spelled once, and the configured monitor must be one of them."""

from __future__ import annotations

import pytest
from hydra import compose, initialize_config_dir

from cnnlab.config import config_dir
from cnnlab.errors import ConfigError
from cnnlab.lit.metrics import MetricName, Stage, best_key, check_monitor, key, logged_keys


def test_keys_are_stage_slash_name() -> None:
    assert key(Stage.VAL, MetricName.ACC) == "val/acc"
    assert best_key("val/acc") == "val/acc_best"
    assert "test/acc_top5" in logged_keys(10)
    assert "test/acc_top5" not in logged_keys(5)


def test_the_configured_monitor_is_a_logged_key() -> None:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("train")
    check_monitor(cfg.monitor.metric, cfg.monitor.mode, cfg.data.num_classes)
    assert cfg.monitor.metric in logged_keys(cfg.data.num_classes)
    assert cfg.optimized_metric == best_key(cfg.monitor.metric)


@pytest.mark.parametrize(
    ("metric", "mode", "bad_key"),
    [
        ("val/f1", "max", "monitor.metric"),
        ("train/acc", "max", "monitor.metric"),
        ("val/loss", "up", "monitor.mode"),
    ],
)
def test_bad_monitor_names_the_key(metric: str, mode: str, bad_key: str) -> None:
    with pytest.raises(ConfigError, match=bad_key):
        check_monitor(metric, mode, 10)
