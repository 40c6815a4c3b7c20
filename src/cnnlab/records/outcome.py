"""How a training run ended: why fit stopped, and the lines ``cnnlab train`` ends with.

Hand tuning is run, look, change a value, run again: the end of each run says where its
folder is, what it scored and why it stopped, so the next change can be decided there.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import groupby
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pytorch_lightning as pl

    from cnnlab.records.recorder import RunRecorder

__all__ = ["print_train_summary", "stop_info"]


def stop_info(trainer: pl.Trainer) -> dict[str, Any]:
    """Why ``trainer.fit`` returned, for ``run.json``'s timings.

    Returns:
        ``epochs``: the epochs completed; ``stopped``: the reason in words, e.g.
        ``early stopping at epoch 3 (val/acc did not improve ...)`` or ``max_epochs=2 reached``.
    """
    from pytorch_lightning.callbacks import EarlyStopping, Timer

    from cnnlab.lit.callbacks import early_stopping_stopped

    epochs = int(trainer.current_epoch)
    # Set on the trainer at setup; its stubs do not declare it.
    fast_dev_run = getattr(trainer, "fast_dev_run", False)
    if fast_dev_run:
        return {"epochs": epochs, "stopped": f"fast_dev_run ({int(fast_dev_run)} batch)"}
    for callback in trainer.callbacks:  # type: ignore[attr-defined]
        if isinstance(callback, EarlyStopping) and early_stopping_stopped(callback):
            why = callback.stopping_reason_message or f"{callback.monitor} stopped improving"
            # Lightning's message, without its framing ("Monitored metric ... to stop.").
            why = why.replace(" Signaling Trainer to stop.", "").removeprefix("Monitored metric ")
            why = why.rstrip(".")
            reason = f"early stopping at epoch {callback.stopped_epoch + 1} ({why})"
            return {"epochs": epochs, "stopped": reason}
        if isinstance(callback, Timer) and callback.time_remaining() == 0:
            return {"epochs": epochs, "stopped": f"max_time reached at epoch {epochs}"}
    max_steps = trainer.max_steps
    if max_steps is not None and max_steps >= 0 and trainer.global_step >= max_steps:
        return {"epochs": epochs, "stopped": f"max_steps={max_steps} reached at epoch {epochs}"}
    if trainer.max_epochs is not None and 0 <= trainer.max_epochs <= epochs:
        return {"epochs": epochs, "stopped": f"max_epochs={trainer.max_epochs} reached"}
    return {"epochs": epochs, "stopped": f"stopped at epoch {epochs}"}


def print_train_summary(recorder: RunRecorder, metrics: Mapping[str, float]) -> None:
    """Print the run folder, why training stopped and the final metrics, grouped by stage.

    ``cnnlab eval`` ends the same way: its run folder holds its ``metrics.json``.
    """
    from cnnlab.records.listing import format_value

    if not recorder.is_zero:
        return
    lines = [f"run folder: {recorder.run_dir}"]
    if "stopped" in recorder.timings:
        lines.append(f"stopped: {recorder.timings['stopped']}")
    lines.append("final metrics:")
    for stage, names in groupby(sorted(metrics), key=lambda name: name.partition("/")[0]):
        values = "  ".join(
            f"{name.partition('/')[2]}={format_value(metrics[name])}" for name in names
        )
        lines.append(f"  {stage:<6} {values}")
    print("\n".join(lines), flush=True)
