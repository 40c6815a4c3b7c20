"""``cnnlab predict ckpt_path=... input=PATH``: classify image files into a CSV."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig

from cnnlab.data.sources.imagefolder import find_images
from cnnlab.files.atomic import write_text_atomic

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> Path:
    """Write ``cfg.output`` with one row per image: predicted class and top-k probabilities."""
    import torch

    from cnnlab.data.sources.imagefolder import decode_image
    from cnnlab.files.atomic import output_errors
    from cnnlab.lit.checkpoint import load_classifier

    files = find_images(Path(str(cfg.input)))
    module = load_classifier(cfg.ckpt_path).eval()
    data = module.hparams["data"]
    classes = module.hparams.get("classes") or [
        str(i) for i in range(module.hparams["num_classes"])
    ]
    top_k = min(int(cfg.top_k), len(classes))
    mean = torch.tensor(data["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(data["std"]).view(1, -1, 1, 1)

    rows = []
    for start in range(0, len(files), int(cfg.batch_size)):
        chunk = files[start : start + int(cfg.batch_size)]
        images = torch.stack(
            [decode_image(f, int(data["in_channels"]), int(data["image_size"])) for f in chunk]
        )
        with torch.inference_mode():
            probs = module((images.float() / 255 - mean) / std).softmax(dim=1)
        top_p, top_i = probs.topk(top_k, dim=1)
        for path, p, i in zip(chunk, top_p.tolist(), top_i.tolist(), strict=True):
            ranked = ";".join(f"{classes[c]}:{q:.4f}" for c, q in zip(i, p, strict=True))
            rows.append([str(path), i[0], classes[i[0]], f"{p[0]:.6f}", ranked])

    output = Path(str(cfg.output))
    with output_errors(output):  # /proc, a file in the path: one line, as a full disk
        write_csv_atomic(output, ["path", "label", "class", "probability", f"top{top_k}"], rows)
    log.info("%d predictions written to %s", len(rows), output)
    return output


def write_csv_atomic(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Write a CSV through a temporary file so a reader never sees half of it.

    Raises:
        WriteError: When the disk is full, read-only or not writable (nothing is left behind).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    write_text_atomic(path, buffer.getvalue())
