"""What a sweep optimises: the names of the returned metrics and their directions.

One place for the rule "accuracy is maximised, loss minimised", shared by the
sweeper (its default direction) and the report (the order of a plain multirun).
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf


def optimized_metrics(config: Any) -> list[str]:
    """The names of what each job returns: ``optimized_metric`` (one or a list), or []."""
    names = OmegaConf.select(_as_config(config), "optimized_metric", default=None)
    if names is None:
        return []
    if OmegaConf.is_list(names) or isinstance(names, list | tuple):
        return [str(n) for n in names]
    return [str(names)]


def metric_directions(config: Any, names: list[str]) -> list[str | None]:
    """The direction (``maximize``/``minimize``) each metric of ``names`` is better in.

    A metric derived from ``monitor.metric`` (``val/acc_best`` from ``val/acc``)
    follows ``monitor.mode``; otherwise accuracies are maximised, and losses and
    parameter counts minimised. None where the config does not tell.
    """
    config = _as_config(config)
    metric = OmegaConf.select(config, "monitor.metric", default=None)
    mode = OmegaConf.select(config, "monitor.mode", default=None)
    directions: list[str | None] = []
    for name in names:
        leaf = name.rsplit("/", 1)[-1]
        if metric and mode in ("min", "max") and name.startswith(str(metric)):
            directions.append(f"{mode}imize")
        elif leaf.startswith("acc"):
            directions.append("maximize")
        elif leaf.startswith("loss") or leaf == "params":
            directions.append("minimize")
        else:
            directions.append(None)
    return directions


def _as_config(config: Any) -> Any:
    return config if OmegaConf.is_config(config) else OmegaConf.create(config or {})
