"""Run one interpretation method on a network and write its figures, raw maps and index entry.

Shared by ``cnnlab visualize`` and the end-of-training callback, so both draw
the same figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.interpret.class_model import class_model
from cnnlab.interpret.filters import feature_maps, first_layer_filters
from cnnlab.interpret.gradcam import gradcam
from cnnlab.interpret.inputs import ImageBatch, as_unit
from cnnlab.interpret.layers import default_gradcam_layer, find_layer
from cnnlab.interpret.plots import (
    attribution_figure,
    class_model_figure,
    feature_maps_figure,
    filters_figure,
    save_array,
    save_figure,
)
from cnnlab.interpret.saliency import saliency

METHODS = ("saliency", "gradcam", "class_model", "filters", "feature_maps")
# Feature-map figures are one per image: the first few images only.
MAX_FEATURE_IMAGES = 4


@dataclass
class Settings:
    """What to explain, beyond the images.

    Attributes:
        target_class: Explain this class for every image (index or name); None
            explains each image's predicted class. For ``class_model``, only this
            class; None draws every class.
        target_layer: Grad-CAM's layer path; None takes the last conv layer with
            a spatial output.
        layers: Feature-map layer paths; None takes every conv layer.
        class_model: ``steps``, ``lr`` and ``l2`` of the gradient ascent.
    """

    target_class: int | str | None = None
    target_layer: str | None = None
    layers: list[str] | None = None
    class_model: dict[str, Any] = field(default_factory=dict)


def check_method(method: str) -> str:
    """Return ``method`` or raise :class:`ConfigError` (``method``) listing the choices."""
    if method not in METHODS:
        raise ConfigError("method", f"must be one of {', '.join(METHODS)}; got {method!r}")
    return method


def resolve_class(value: int | str, classes: Sequence[str]) -> int:
    """Turn a class index or name into an index.

    Raises:
        ConfigError: ``target_class`` for an index out of range or an unknown name.
    """
    if isinstance(value, bool):
        raise ConfigError("target_class", f"must be a class index or name, got {value!r}")
    if isinstance(value, str) and value in classes:
        return list(classes).index(value)
    try:
        index = int(value)
    except (TypeError, ValueError):
        shown = ", ".join(classes[:20]) + (", ..." if len(classes) > 20 else "")
        raise ConfigError("target_class", f"unknown class {value!r}; classes: {shown}") from None
    if not 0 <= index < len(classes):
        raise ConfigError("target_class", f"index {index} is out of range: 0..{len(classes) - 1}")
    return index


class Interpreter:
    """Explains one trained network: holds it with its classes and input normalisation.

    Args:
        model: The network (or the Lightning module around it); scores come
            from ``model(x)``.
        classes: Class names, in label order.
        mean: Per-channel normalisation mean of the network's input.
        std: Per-channel normalisation std.
        mean_image: The training-set mean image on [0, 1], (C, H, W); needed by
            ``class_model`` only.
    """

    def __init__(
        self,
        model: nn.Module,
        classes: Sequence[str],
        mean: Sequence[float],
        std: Sequence[float],
        mean_image: torch.Tensor | None = None,
    ) -> None:
        self.model = model
        self.classes = list(classes)
        self.mean = [float(v) for v in mean]
        self.std = [float(v) for v in std]
        self.mean_image = mean_image
        self.device = next(model.parameters()).device

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (or [0, 1]) images -> the network's input on its device."""
        x = as_unit(images).to(self.device)
        mean = torch.tensor(self.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=self.device).view(1, -1, 1, 1)
        return (x - mean) / std

    def run(
        self, method: str, batch: ImageBatch, out_dir: str | Path, settings: Settings
    ) -> dict[str, Any]:
        """Compute ``method`` and write its PNG(s) and raw arrays into ``out_dir``.

        Returns:
            The index entry: method, files written (relative to ``out_dir``) and
            per-image details.

        Raises:
            ConfigError: For an unknown method, class or layer.
        """
        check_method(method)
        out_dir = Path(out_dir)
        handler = getattr(self, f"_{method}")
        entry: dict[str, Any] = {"method": method, "figures": [], "arrays": []}
        entry.update(handler(batch, out_dir, settings, entry))
        return entry

    # ---------------------------------------------------------------- per-image attributions

    def _targets(
        self, batch: ImageBatch, settings: Settings
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.normalise(batch.images)
        with torch.no_grad():
            predicted = self.model(x).argmax(dim=1)
        if settings.target_class is None:
            target = predicted.clone()
        else:
            index = resolve_class(settings.target_class, self.classes)
            target = torch.full_like(predicted, index)
        return x, predicted, target

    def _images_info(
        self, batch: ImageBatch, predicted: torch.Tensor, target: torch.Tensor
    ) -> tuple[list[dict[str, Any]], list[str]]:
        info, captions = [], []
        for i, source in enumerate(batch.sources):
            label, pred, tgt = batch.labels[i], int(predicted[i]), int(target[i])
            info.append(
                {
                    "source": source,
                    "label": label,
                    "predicted": pred,
                    "predicted_class": self.classes[pred],
                    "target": tgt,
                }
            )
            true = "?" if label is None else self.classes[label]
            caption = f"true {true} / pred {self.classes[pred]}"
            captions.append(caption if tgt == pred else f"{caption}\nmap of {self.classes[tgt]}")
        return info, captions

    def _write_maps(
        self,
        name: str,
        maps: torch.Tensor,
        batch: ImageBatch,
        captions: list[str],
        title: str,
        out_dir: Path,
        entry: dict[str, Any],
    ) -> None:
        fig = attribution_figure(as_unit(batch.images), maps.cpu(), captions, title)
        save_figure(fig, out_dir / f"{name}.png")
        save_array(maps.cpu().numpy().astype(np.float32), out_dir / f"{name}.npy")
        entry["figures"].append(f"{name}.png")
        entry["arrays"].append(f"{name}.npy")

    def _saliency(
        self, batch: ImageBatch, out_dir: Path, settings: Settings, entry: dict[str, Any]
    ) -> dict[str, Any]:
        x, predicted, target = self._targets(batch, settings)
        maps = saliency(self.model, x, target)
        info, captions = self._images_info(batch, predicted, target)
        title = "saliency: max over channels of |d score / d input|"
        self._write_maps("saliency", maps, batch, captions, title, out_dir, entry)
        return {"images": info}

    def _gradcam(
        self, batch: ImageBatch, out_dir: Path, settings: Settings, entry: dict[str, Any]
    ) -> dict[str, Any]:
        x, predicted, target = self._targets(batch, settings)
        path = settings.target_layer or default_gradcam_layer(self.model, x)
        layer = find_layer(self.model, path)
        maps, coarse = gradcam(self.model, x, target, layer)
        info, captions = self._images_info(batch, predicted, target)
        title = f"Grad-CAM of {path} ({coarse.shape[-2]}x{coarse.shape[-1]} maps)"
        self._write_maps("gradcam", maps, batch, captions, title, out_dir, entry)
        return {"images": info, "target_layer": path}

    # ---------------------------------------------------------------- whole-network views

    def _class_model(
        self, batch: ImageBatch, out_dir: Path, settings: Settings, entry: dict[str, Any]
    ) -> dict[str, Any]:
        if self.mean_image is None:
            raise ValueError("class_model needs the training-set mean image")
        if settings.target_class is None:
            wanted = list(range(len(self.classes)))
        else:
            wanted = [resolve_class(settings.target_class, self.classes)]
        opts = dict(settings.class_model)
        result = class_model(
            self.model,
            wanted,
            self.mean_image.to(self.device),
            self.mean,
            self.std,
            steps=opts.get("steps", 100),
            lr=float(opts.get("lr", 0.5)),
            l2=float(opts.get("l2", 0.03)),
        )
        captions = [
            f"{self.classes[c]}" + ("" if p == c else f" (pred {self.classes[p]})")
            for c, p in zip(result.classes.tolist(), result.predicted.tolist(), strict=True)
        ]
        title = "class models: argmax S_c(I) - l2 ||I||^2, mean image added (contrast stretched)"
        save_figure(
            class_model_figure(result.images.cpu(), captions, title), out_dir / "class_model.png"
        )
        save_array(result.images.cpu().numpy().astype(np.float32), out_dir / "class_model.npy")
        entry["figures"].append("class_model.png")
        entry["arrays"].append("class_model.npy")
        return {
            "classes": [
                {
                    "class": self.classes[c],
                    "score_at_zero": round(float(s0), 4),
                    "score": round(float(s), 4),
                    "predicted": self.classes[p],
                }
                for c, s0, s, p in zip(
                    result.classes.tolist(),
                    result.start_scores.tolist(),
                    result.scores.tolist(),
                    result.predicted.tolist(),
                    strict=True,
                )
            ]
        }

    def _filters(
        self, batch: ImageBatch, out_dir: Path, settings: Settings, entry: dict[str, Any]
    ) -> dict[str, Any]:
        path, weights = first_layer_filters(self.model)
        title = f"first-layer kernels: {path} {tuple(weights.shape)}"
        save_figure(filters_figure(weights, title), out_dir / "filters.png")
        save_array(weights.numpy().astype(np.float32), out_dir / "filters.npy")
        entry["figures"].append("filters.png")
        entry["arrays"].append("filters.npy")
        return {"layer": path}

    def _feature_maps(
        self, batch: ImageBatch, out_dir: Path, settings: Settings, entry: dict[str, Any]
    ) -> dict[str, Any]:
        shown = min(len(batch.sources), MAX_FEATURE_IMAGES)
        x = self.normalise(batch.images[:shown])
        maps = feature_maps(self.model, x, settings.layers)
        images = as_unit(batch.images[:shown])
        for i in range(shown):
            label = batch.labels[i]
            caption = batch.sources[i] if label is None else f"class {self.classes[label]}"
            fig = feature_maps_figure(
                images[i], {k: v[i] for k, v in maps.items()}, caption, "feature maps"
            )
            save_figure(fig, out_dir / f"feature_maps_{i}.png")
            entry["figures"].append(f"feature_maps_{i}.png")
        for name, value in maps.items():
            save_array(value.numpy().astype(np.float32), out_dir / f"feature_maps.{name}.npy")
            entry["arrays"].append(f"feature_maps.{name}.npy")
        return {"layers": list(maps), "images": batch.sources[:shown]}
