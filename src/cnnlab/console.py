"""The console: one line per user error, and none of the lines that tell a user nothing.

:func:`exit_on_user_error` and :class:`OneLineParser` are where a user mistake becomes one
line on stderr and a non-zero exit. :func:`quiet_console` drops what every run prints
whatever its config:

Each entry is a message that appears on every run whatever the config (an advert, a
false alarm on a folder cnnlab just made, a column of zeros); anything that depends on
the run, a real warning included, still reaches the console and ``train.log``.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

from cnnlab.errors import find_user_error, printable, tracebacks_wanted
from cnnlab.secrets.mask import scrub_text

log = logging.getLogger(__name__)

# Names the running `cnnlab <task>` for processes started without the CLI's arguments (a DDP
# rank re-run by Lightning, the sweeper's one-line errors).
TASK_ENV = "CNNLAB_TASK"

# Logger name -> message fragments dropped from it.
NOISY_LOG_LINES: dict[str, tuple[str, ...]] = {
    # Lightning's advert for its cloud logger, and its note that it takes cnnlab's summary.
    "pytorch_lightning.utilities.rank_zero": (
        "try installing [litlogger]",
        "Trainer already configured with model summary callbacks",
    ),
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


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block) and a non-zero exit.

    Args:
        exit_status: The status of a bad argument (2, as argparse's own).
    """

    def __init__(self, *args: Any, exit_status: int = 2, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.exit_status = exit_status

    def error(self, message: str) -> NoReturn:
        self.exit(self.exit_status, f"{self.prog}: error: {printable(message)}\n")


@contextmanager
def exit_on_user_error(task: str, *, log_it: bool = True) -> Iterator[None]:
    """Turn a user error raised inside the block into one line on stderr and exit status 1.

    ``log_it`` also writes it to the job's log (not before Hydra has set logging up).
    Other exceptions (bugs) keep their traceback; so does everything with
    ``HYDRA_FULL_ERROR=1`` and, in a multirun, everything (the sweeper records it).
    """
    try:
        yield
    except Exception as exc:
        user_error = find_user_error(exc)
        if user_error is None or tracebacks_wanted() or _is_multirun():
            raise
        if log_it:
            log.error("%s", user_error)
        # Masked like the log line above (a value quoted in the message may be a secret).
        print(f"cnnlab {task}: error: {printable(scrub_text(str(user_error)))}", file=sys.stderr)
        raise SystemExit(1) from None


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
