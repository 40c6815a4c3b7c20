"""Lightning's rich model summary without the FLOPs column when nothing was counted.

Lightning counts FLOPs only with an ``example_input_array``; without one it prints a
column of zeros and "Total FLOPs: 0". ``cnnlab summary`` gives the real mult-adds.
"""

from __future__ import annotations

from typing import Any

from pytorch_lightning.callbacks import RichModelSummary
from pytorch_lightning.utilities.model_summary import get_formatted_model_size
from pytorch_lightning.utilities.model_summary import get_human_readable_count as count
from typing_extensions import override


class ModelSummaryWithoutZeroFlops(RichModelSummary):
    """:class:`RichModelSummary`, leaving out FLOPs when their total is 0."""

    @staticmethod
    @override
    def summarize(
        summary_data: list[tuple[str, list[str]]],
        total_parameters: int,
        trainable_parameters: int,
        model_size: float,
        total_training_modes: dict[str, int],
        total_flops: int,
        **summarize_kwargs: Any,
    ) -> None:
        if total_flops:
            RichModelSummary.summarize(
                summary_data,
                total_parameters,
                trainable_parameters,
                model_size,
                total_training_modes,
                total_flops,
                **summarize_kwargs,
            )
            return
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            style = "dim" if name == " " else None
            left = name in (" ", "Name", "Type", "Mode")
            table.add_column(
                name, justify="left" if left else "right", style=style, no_wrap=name == "Name"
            )
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        grid = Table.grid(expand=True)
        grid.add_column()
        for label, value in (
            ("Trainable params", count(trainable_parameters)),
            ("Non-trainable params", count(total_parameters - trainable_parameters)),
            ("Total params", count(total_parameters)),
            ("Total estimated model params size (MB)", get_formatted_model_size(model_size)),
            ("Modules in train mode", total_training_modes["train"]),
            ("Modules in eval mode", total_training_modes["eval"]),
        ):
            grid.add_row(f"[bold]{label}[/]: {value}")
        console = get_console()
        console.print(table)
        console.print(grid)


def model_summary(enabled: bool = True, max_depth: int = 1) -> ModelSummaryWithoutZeroFlops:
    """The summary callback; ``enabled=False`` (``trainer.enable_model_summary``) prints none.

    A summary callback in the list makes Lightning ignore ``enable_model_summary``; depth 0
    is Lightning's own way to switch one off.
    """
    return ModelSummaryWithoutZeroFlops(max_depth=max_depth if enabled else 0)
