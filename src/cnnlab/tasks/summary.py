"""``cnnlab summary model=NAME``: a network's layers, parameters, mult-adds and receptive fields.

Builds the network from the ``model`` node alone (the data node supplies only its
numbers, so no data set is needed), runs one zero image through it, prints a
per-layer table and writes ``summary.json`` (``params``, ``trainable_params``,
``macs``, ``input_shape``, ``output_shape`` and the rows) into the run folder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

log = logging.getLogger(__name__)

SUMMARY_FILE = "summary.json"
# Table width when stdout is not a terminal: long layer paths stay on one line.
PIPED_WIDTH = 160


def run(cfg: DictConfig) -> dict[str, Any]:
    """Summarise the configured model and return ``summary.json``'s content.

    Raises:
        ConfigError: For a bad model option or ``data.image_size`` (the config's values
            were checked by :func:`cnnlab.validation.validate_config`).
    """
    from hydra.utils import instantiate
    from rich.console import Console

    from cnnlab.errors import config_errors
    from cnnlab.files.atomic import write_json_atomic
    from cnnlab.models import image_hw
    from cnnlab.models.summary import summarize

    depth = cfg.get("depth")
    model_cfg = cfg.model
    in_channels = model_cfg.get("in_channels", cfg.data.in_channels)
    with config_errors("model"):
        height, width = image_hw(model_cfg.get("image_size", cfg.data.image_size))
        network = instantiate(model_cfg, _convert_="all")
    summary = summarize(network, (1, int(in_channels), height, width), depth=depth)

    name = model_cfg.get("name", type(network).__name__)
    console = Console()
    if not console.is_terminal:
        # Piped into a file or log: no terminal width to respect, and rich would default to 80.
        console = Console(width=PIPED_WIDTH)
    console.print(summary.table(title=f"{name} on {in_channels}x{height}x{width}"))
    print(
        f"params: {summary.params:,} (trainable {summary.trainable_params:,}); "
        f"mult-adds per image: {summary.macs:,} ({summary.macs / 1e6:,.1f}M)"
    )
    result = {"model": name, **summary.to_dict()}
    path = write_json_atomic(Path(cfg.paths.run_dir) / SUMMARY_FILE, result)
    log.info("wrote %s", path)
    return result
