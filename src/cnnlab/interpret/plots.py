"""Figures of the interpretation methods, drawn with matplotlib's object API (no pyplot state)."""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Tiles per figure row for per-image panels (each panel is input, map, overlay).
PANELS_PER_ROW = 4
# Channels shown per layer in a feature-map figure.
MAX_MAPS = 16
TILE = 1.3  # inches per tile
MAP_CMAP = "jet"


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG through a temporary file, so ``path`` is never half-written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=dpi)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def save_array(array: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Write ``array`` as ``.npy`` through a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with tmp.open("wb") as fh:
            np.save(fh, array)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def to_display(image: torch.Tensor, stretch: bool = False) -> np.ndarray:
    """A (C, H, W) image on the [0, 1] scale as an (H, W) or (H, W, 3) array for imshow.

    Args:
        image: The image; values outside [0, 1] are clipped unless ``stretch``.
        stretch: Map the image's own min..max to 0..1 (for images that are not photos).
    """
    array = image.detach().float().cpu()
    if stretch:
        low, high = array.min(), array.max()
        array = (array - low) / (high - low) if high > low else torch.zeros_like(array)
    pixels = array.clamp(0, 1).numpy()
    return pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)


def normalise_map(saliency_map: torch.Tensor) -> np.ndarray:
    """Scale a map to [0, 1] by its own maximum (an all-zero map stays zero)."""
    array = saliency_map.detach().float().cpu().clamp(min=0)
    peak = float(array.max())
    return (array / peak if peak > 0 else array).numpy()


def _show(ax: Axes, array: np.ndarray, title: str = "", **kwargs: object) -> None:
    grey = array.ndim == 2 and "cmap" not in kwargs
    ax.imshow(array, cmap="gray" if grey else kwargs.pop("cmap", None), **kwargs)  # type: ignore[arg-type]
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def attribution_figure(
    images: torch.Tensor,
    maps: torch.Tensor,
    captions: Sequence[str],
    title: str,
) -> Figure:
    """Input, map and overlay for each image, in panels of three tiles.

    Args:
        images: Inputs on the [0, 1] scale, (N, C, H, W).
        maps: Non-negative maps at input size, (N, H, W); each is scaled by its own maximum.
        captions: One line per image (e.g. ``true 3 / pred 3``).
        title: The figure's title.
    """
    n = images.shape[0]
    per_row = min(n, PANELS_PER_ROW)
    rows = math.ceil(n / per_row)
    fig = Figure(figsize=(3 * per_row * TILE, rows * (TILE + 0.35) + 0.4))
    axes = fig.subplots(rows, 3 * per_row, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        row, col = divmod(i, per_row)
        image, heat = to_display(images[i]), normalise_map(maps[i])
        tiles = axes[row, 3 * col : 3 * col + 3]
        for ax in tiles:
            ax.axis("on")
        _show(tiles[0], image, captions[i])
        _show(tiles[1], heat, "map", cmap=MAP_CMAP, vmin=0, vmax=1)
        _show(tiles[2], image)
        tiles[2].imshow(heat, cmap=MAP_CMAP, alpha=0.45, vmin=0, vmax=1)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def class_model_figure(images: torch.Tensor, captions: Sequence[str], title: str) -> Figure:
    """One tile per class model image, each stretched to its own value range."""
    n = images.shape[0]
    per_row = min(n, 10)
    rows = math.ceil(n / per_row)
    fig = Figure(figsize=(per_row * TILE, rows * (TILE + 0.35) + 0.4))
    axes = fig.subplots(rows, per_row, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        ax.axis("on")
        _show(ax, to_display(images[i], stretch=True), captions[i])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def filters_figure(weights: torch.Tensor, title: str) -> Figure:
    """The kernels (out, in, k, k) of a first layer as a grid, each stretched to its range.

    Three input channels are drawn as one colour kernel; otherwise each
    (output, input) pair gets a grey tile, one row per output channel.
    """
    out_channels, in_channels = weights.shape[:2]
    colour = in_channels == 3
    cols = 1 if colour else in_channels
    per_row = max(1, min(out_channels, 16 // cols))
    rows = math.ceil(out_channels / per_row)
    fig = Figure(figsize=(per_row * cols * 0.8 + 0.4, rows * 0.8 + 0.6))
    axes = fig.subplots(rows, per_row * cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for o in range(out_channels):
        row, col = divmod(o, per_row)
        kernels = [weights[o]] if colour else [weights[o, i : i + 1] for i in range(in_channels)]
        for j, kernel in enumerate(kernels):
            ax = axes[row, col * cols + j]
            ax.axis("on")
            _show(ax, to_display(kernel, stretch=True), interpolation="nearest")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def feature_maps_figure(
    image: torch.Tensor, maps: Mapping[str, torch.Tensor], caption: str, title: str
) -> Figure:
    """The input, then one row per layer with up to :data:`MAX_MAPS` of its maps.

    Args:
        image: The input on the [0, 1] scale, (C, H, W).
        maps: Layer path -> that layer's maps for this image, (channels, h, w).
        caption: A line under the input (e.g. its class).
        title: The figure's title.
    """
    cols = 1 + min(MAX_MAPS, max(m.shape[0] for m in maps.values()))
    fig = Figure(figsize=(cols * 0.9 + 0.6, (len(maps)) * 1.0 + 0.6))
    axes = fig.subplots(len(maps), cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (name, layer_maps) in enumerate(maps.items()):
        first = axes[row, 0]
        first.axis("on")
        _show(first, to_display(image), caption if row == 0 else "")
        first.set_ylabel(name, fontsize=6, rotation=0, ha="right", va="center")
        for j in range(min(MAX_MAPS, layer_maps.shape[0])):
            ax = axes[row, 1 + j]
            ax.axis("on")
            _show(ax, to_display(layer_maps[j : j + 1], stretch=True), cmap="viridis")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
