"""``callbacks=interpret``: draw the interpretation figures when training ends."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback
from typing_extensions import override

from cnnlab.interpret.render import Settings, check_method

log = logging.getLogger(__name__)


class InterpretFigures(Callback):
    """At the end of training, explain the network on a fixed sample of test images.

    Each method's PNG goes into ``dirpath`` (with the raw maps and an
    ``index.json``) and to every logger that takes images (wandb, TensorBoard)
    under ``interpret/<method>``.

    Args:
        dirpath: Folder for the figures (``<run folder>/interpret`` by default).
        methods: Any of ``saliency``, ``gradcam``, ``class_model``, ``filters``,
            ``feature_maps``.
        per_class: Test images per class.
        target_layer: Grad-CAM's layer path; None takes the last conv layer with
            a spatial output.
        class_model: ``steps``, ``lr`` and ``l2`` of the class model ascent.

    Raises:
        ConfigError: ``method`` for an unknown method name.
    """

    def __init__(
        self,
        dirpath: str | Path,
        methods: Sequence[str] = ("saliency", "gradcam", "class_model", "filters"),
        per_class: int = 1,
        target_layer: str | None = None,
        class_model: Mapping[str, Any] | None = None,
    ) -> None:
        self.dirpath = Path(dirpath)
        self.methods = [check_method(str(m)) for m in methods]
        self.per_class = per_class
        self.settings = Settings(target_layer=target_layer, class_model=dict(class_model or {}))
        self.written: list[Path] = []

    @override
    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        datamodule = getattr(trainer, "datamodule", None)
        if datamodule is None or not hasattr(datamodule, "test_dataloader"):
            log.warning("interpret: no data module with a test split; no figures drawn")
            return
        self._draw(trainer, pl_module, datamodule)

    def _draw(self, trainer: pl.Trainer, pl_module: pl.LightningModule, datamodule: Any) -> None:
        from cnnlab.files.atomic import write_json_atomic
        from cnnlab.interpret.inputs import mean_image, sample_per_class
        from cnnlab.interpret.render import Interpreter
        from cnnlab.lit.callbacks import log_image

        classes = list(datamodule.classes)
        batch = sample_per_class(datamodule.test_dataloader(), len(classes), self.per_class)
        average = (
            mean_image(datamodule.train_dataloader()) if "class_model" in self.methods else None
        )
        network = getattr(pl_module, "net", pl_module)
        interpreter = Interpreter(
            network, classes, datamodule.mean, datamodule.std, mean_image=average
        )
        entries = []
        for method in self.methods:
            entry = interpreter.run(method, batch, self.dirpath, self.settings)
            entries.append(entry)
            for name in entry["figures"]:
                path = self.dirpath / name
                self.written.append(path)
                log_image(trainer, f"interpret/{Path(name).stem}", path)
        write_json_atomic(
            self.dirpath / "index.json", {"epoch": trainer.current_epoch, "methods": entries}
        )
        log.info("interpret: %d figures in %s", len(self.written), self.dirpath)
