"""``callbacks=interpret`` draws the figures at the end of training and logs them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import quick


def test_the_callback_saves_figures_and_logs_them_to_tensorboard(run_cli, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir = tmp_path / "run"
    run_cli(
        "train",
        *quick(
            "callbacks=interpret",
            "callbacks.interpret.methods=[saliency,gradcam,class_model,filters]",
            "callbacks.interpret.class_model.steps=5",
            "logger=tensorboard",
            f"hydra.run.dir={run_dir}",
        ),
    )

    folder = run_dir / "interpret"
    names = ["saliency", "gradcam", "class_model", "filters"]
    assert all((folder / f"{name}.png").stat().st_size > 1000 for name in names)
    index = json.loads((folder / "index.json").read_text())
    assert [entry["method"] for entry in index["methods"]] == names
    assert index["methods"][1]["target_layer"] == "features.c3.conv"

    logged = set()
    for events in (run_dir / "tensorboard").rglob("events.out.tfevents.*"):
        accumulator = EventAccumulator(str(events), size_guidance={"images": 0}).Reload()
        logged |= set(accumulator.Tags()["images"])
    assert {f"interpret/{name}" for name in names} <= logged
    # The default callbacks are still there: checkpoints and the confusion matrix.
    assert (run_dir / "checkpoints" / "best.ckpt").is_file()
    assert (run_dir / "confusion_matrix.png").is_file()
