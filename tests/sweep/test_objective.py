"""The direction rule of sweeps: monitor.mode for the monitored metric, else by its name."""

from __future__ import annotations

import pytest

from cnnlab.sweep.objective import metric_directions, optimized_metrics

MONITOR_ACC = {"monitor": {"metric": "val/acc", "mode": "max"}}


@pytest.mark.parametrize(
    ("config", "names", "expected"),
    [
        (MONITOR_ACC, ["val/acc_best"], ["maximize"]),
        ({"monitor": {"metric": "val/loss", "mode": "min"}}, ["val/loss_best"], ["minimize"]),
        (MONITOR_ACC, ["test/loss", "model/params"], ["minimize", "minimize"]),
        ({}, ["val/acc_top5"], ["maximize"]),
        ({}, ["x"], [None]),
        # monitor.mode wins for the monitored metric, whatever its name says.
        ({"monitor": {"metric": "val/acc", "mode": "min"}}, ["val/acc_best"], ["minimize"]),
    ],
)
def test_metric_directions(
    config: dict[str, object], names: list[str], expected: list[str | None]
) -> None:
    assert metric_directions(config, names) == expected


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"optimized_metric": "val/acc_best"}, ["val/acc_best"]),
        ({"optimized_metric": ["val/acc_best", "model/params"]}, ["val/acc_best", "model/params"]),
        ({"optimized_metric": None}, []),
        ({}, []),
    ],
)
def test_optimized_metrics(config: dict[str, object], expected: list[str]) -> None:
    assert optimized_metrics(config) == expected
