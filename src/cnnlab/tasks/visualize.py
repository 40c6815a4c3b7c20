"""``cnnlab visualize ckpt_path=... method=M``: look inside a trained network.

Writes ``<method>.png`` (and raw maps as ``.npy``) plus ``index.json`` into the
run folder. See :mod:`cnnlab.interpret` for the methods.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from cnnlab.errors import ConfigError

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Path:
    """Run ``cfg.method`` on ``cfg.ckpt_path`` and return the path of ``index.json``."""
    import torch

    from cnnlab.files.atomic import write_json_atomic
    from cnnlab.interpret.render import Interpreter, Settings, check_method
    from cnnlab.lit.checkpoint import data_config, load_classifier
    from cnnlab.records.recorder import recorded_run
    from cnnlab.tracking import finish_trackers

    method = check_method(str(cfg.method))
    device = _device(str(cfg.get("device", "auto")))
    settings = Settings(
        target_class=cfg.get("target_class"),
        target_layer=cfg.get("target_layer"),
        layers=_layers(cfg.get("layers")),
        class_model={str(k): v for k, v in cfg.get("class_model", {}).items()},
    )
    with recorded_run(cfg, finish=finish_trackers) as recorder:
        torch.manual_seed(int(cfg.get("seed", 0)))
        module = load_classifier(cfg.ckpt_path)
        hparams = module.hparams
        classes = hparams.get("classes") or [str(i) for i in range(int(hparams["num_classes"]))]
        data = data_config(hparams)  # downloads off: the file does not choose folders
        datamodule = _datamodule_if_needed(cfg, method, data)
        mean, std = (datamodule.mean, datamodule.std) if datamodule else (data["mean"], data["std"])
        batch = _inputs(cfg, data, datamodule, len(classes))
        mean_image = None
        if method == "class_model":
            from cnnlab.interpret.inputs import mean_image as average

            mean_image = average(datamodule.train_dataloader())
        net = module.net.to(device)
        interpreter = Interpreter(net, classes, mean, std, mean_image=mean_image)
        out_dir = recorder.run_dir
        entry = interpreter.run(method, batch, out_dir, settings)
        index = {"checkpoint": str(cfg.ckpt_path), "data": data.get("name"), **entry}
        path = write_json_atomic(out_dir / "index.json", index)
        log.info("%s: %s in %s", method, ", ".join(entry["figures"]), out_dir)
    return path


def _device(name: str) -> Any:
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", "'cuda' asks for a GPU but this machine has none")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def _layers(value: Any) -> list[str] | None:
    """``layers``: a path or a list of them (as validated), as a list."""
    if value is None:
        return None
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _datamodule_if_needed(cfg: DictConfig, method: str, data: dict[str, Any]) -> Any:
    """The checkpoint's data module, unless the user's files and stored statistics suffice."""
    needs_data = cfg.get("input") is None or method == "class_model" or data.get("mean") is None
    if not needs_data:
        return None
    from cnnlab.lit.build import build_datamodule

    return build_datamodule(OmegaConf.create(data))


def _inputs(cfg: DictConfig, data: dict[str, Any], datamodule: Any, num_classes: int) -> Any:
    from cnnlab.interpret.inputs import load_files, sample_per_class

    if cfg.get("input") is not None:
        return load_files(str(cfg.input), int(data["in_channels"]), int(data["image_size"]))
    return sample_per_class(datamodule.test_dataloader(), num_classes, cfg.per_class)
