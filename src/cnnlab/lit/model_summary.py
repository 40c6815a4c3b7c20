"""The model summary at the start of fit: layers, parameters and modes, and no FLOPs.

Lightning's own summaries (``ModelSummary``, ``RichModelSummary``) always print a FLOPs
column and a FLOPs total, which Lightning counts only with an ``example_input_array``:
without one, on every cnnlab run, a column of zeros and "Total FLOPs: 0". ``cnnlab summary``
gives the real mult-adds. This callback prints its own table from the public attributes of
Lightning's :func:`pytorch_lightning.utilities.model_summary.summarize`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.utilities.model_summary import (
    get_formatted_model_size,
    get_human_readable_count,
    summarize,
)
from typing_extensions import override

if TYPE_CHECKING:
    import pytorch_lightning as pl
    from pytorch_lightning.utilities.model_summary import ModelSummary as Summary
    from rich.table import Table


class ModelSummaryWithoutFlops(ModelSummary):
    """Prints the LightningModule's layers and parameter totals when fit starts.

    It is a Lightning ``ModelSummary`` so that Lightning adds no default summary of its own
    (it adds one when ``enable_model_summary`` is true and the callbacks have none); it
    overrides the public ``on_fit_start`` hook and renders the table itself.
    """

    def __init__(self, max_depth: int = 1) -> None:
        super().__init__(max_depth=max_depth)
        self.depth = max_depth

    @override
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.depth or not trainer.is_global_zero:
            return
        from rich import get_console

        summary = summarize(pl_module, max_depth=self.depth)
        console = get_console()
        console.print(layer_table(summary))
        console.print(totals_grid(summary))


def layer_table(summary: Summary) -> Table:
    """One row per summarised module: index, name, type, parameters and train/eval mode."""
    from rich.table import Table

    table = Table(header_style="bold magenta")
    table.add_column(" ", style="dim")
    table.add_column("Name", no_wrap=True)
    table.add_column("Type")
    table.add_column("Params", justify="right")
    table.add_column("Mode")
    rows = zip(
        summary.layer_names,
        summary.layer_types,
        summary.param_nums,
        summary.training_modes,
        strict=True,
    )
    for index, (name, kind, params, training) in enumerate(rows):
        mode = "train" if training else "eval"
        table.add_row(str(index), name, kind, get_human_readable_count(params), mode)
    return table


def totals_grid(summary: Summary) -> Table:
    """The parameter counts, their size in MB and how many modules are in train/eval mode."""
    from rich.table import Table

    trainable = summary.trainable_parameters
    modes = summary.total_training_modes
    grid = Table.grid(expand=True)
    grid.add_column()
    for label, value in (
        ("Trainable params", get_human_readable_count(trainable)),
        ("Non-trainable params", get_human_readable_count(summary.total_parameters - trainable)),
        ("Total params", get_human_readable_count(summary.total_parameters)),
        ("Total estimated model params size (MB)", get_formatted_model_size(summary.model_size)),
        ("Modules in train mode", modes["train"]),
        ("Modules in eval mode", modes["eval"]),
    ):
        grid.add_row(f"[bold]{label}[/]: {value}")
    return grid


def model_summary(enabled: bool = True, max_depth: int = 1) -> ModelSummaryWithoutFlops:
    """The summary callback; ``enabled=False`` (``trainer.enable_model_summary``) prints none.

    A summary callback in the list makes Lightning ignore ``enable_model_summary``; depth 0
    is Lightning's own way to switch one off.
    """
    return ModelSummaryWithoutFlops(max_depth=max_depth if enabled else 0)
