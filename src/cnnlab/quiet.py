"""A quiet console: drop the lines every run prints that tell a user nothing about it.

Each entry is a message that appears on every run whatever the config (an advert, a
false alarm on a folder cnnlab just made, a column of zeros); anything that depends on
the run, a real warning included, still reaches the console and ``train.log``.
"""

from __future__ import annotations

import logging
import warnings

# Logger name -> message fragments dropped from it.
NOISY_LOG_LINES: dict[str, tuple[str, ...]] = {
    # Lightning's advert for its cloud logger, and its note that it takes cnnlab's summary.
    "pytorch_lightning.utilities.rank_zero": (
        "try installing [litlogger]",
        "Trainer already configured with model summary callbacks",
    ),
    # The sweeper tells a pruned trial again with skip_if_finished=True, on purpose.
    "optuna.study._tell": ("Skipped telling trial",),
    # Categorical parameters in the report's plots: one line per axis.
    "matplotlib.category": ("Using categorical units",),
}

# Warning messages (regular expressions, matched at the start) that are false alarms here.
NOISY_WARNINGS: tuple[str, ...] = (
    # Hydra made the run folder (with .hydra/) just before the logger looks at it.
    r"Experiment logs directory .* exists and is not empty",
    # Inside Lightning's own code, about torch's pytree API; nothing a user can change.
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)


class _DropMessages(logging.Filter):
    """Reject records whose message contains one of ``fragments``."""

    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(fragment in message for fragment in self.fragments)


def quiet_console() -> None:
    """Install the filters once per process (idempotent)."""
    for name, fragments in NOISY_LOG_LINES.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(fragments))
    for message in NOISY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
