"""Weights & Biases: one run per job, offline unless the user is logged in.

The logger is made by :func:`wandb_logger` (the ``_target_`` of
``conf/logger/wandb.yaml``); :func:`finish_wandb` closes the active run at the
end of every job, failed ones included, so the next job of a multirun does not
log into it.
"""

from __future__ import annotations

import contextlib
import functools
import netrc
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

WANDB_HOST = "api.wandb.ai"


def has_wandb_credentials() -> bool:
    """True when an API key is in the environment or ``~/.netrc`` (``wandb login`` writes it)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    path = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return netrc.netrc(path).authenticators(WANDB_HOST) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def resolve_mode(mode: str | None) -> str:
    """Return the wandb mode: the given one, ``$WANDB_MODE``, else online only when logged in."""
    if mode:
        return mode
    return os.environ.get("WANDB_MODE") or ("online" if has_wandb_credentials() else "offline")


def wandb_logger(
    save_dir: str,
    project: str = "cnnlab",
    name: str | None = None,
    group: str | None = None,
    tags: Sequence[str] = (),
    job_type: str = "train",
    entity: str | None = None,
    mode: str | None = None,
    log_model: bool = False,
) -> Any:
    """Create a ``WandbLogger`` writing under ``save_dir`` (the run folder).

    Args:
        save_dir: Folder for the local ``wandb/`` files.
        project: W&B project.
        name: Run name (W&B makes one up when None).
        group: Group of runs, e.g. a sweep's study name.
        tags: Free-form tags.
        job_type: ``train``, ``eval``, ...
        entity: W&B user or team; None uses the default one.
        mode: ``online``, ``offline`` or ``disabled``; None decides from the credentials.
        log_model: Upload checkpoints as artifacts.
    """
    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return _scrubbing_logger_class()(
        save_dir=save_dir,
        project=project,
        name=name,
        group=group,
        tags=list(tags),
        job_type=job_type,
        entity=entity,
        mode=resolve_mode(mode),
        log_model=log_model,
    )


@functools.cache
def _scrubbing_logger_class() -> type[Any]:
    """``WandbLogger`` that starts its run with the command line masked.

    The hyperparameters it gets are masked already (:mod:`cnnlab.tracking.loggers`), but
    wandb also reads ``sys.argv`` itself, into the run's metadata (the ``run-*.wandb`` file
    that ``wandb sync`` uploads), so ``+db_password=...`` would travel with it. The run
    starts on the first use of ``experiment``; only that moment sees a masked ``sys.argv``
    (the process keeps the real one: DDP re-runs it for the other ranks).
    """
    from pytorch_lightning.loggers import WandbLogger

    class ScrubbedArgvWandbLogger(WandbLogger):
        @property
        def experiment(self) -> Any:
            with masked_argv():
                return super().experiment

    # A module-level name (see __getattr__ below), so ddp_spawn can pickle the logger.
    ScrubbedArgvWandbLogger.__qualname__ = ScrubbedArgvWandbLogger.__name__
    ScrubbedArgvWandbLogger.__module__ = __name__
    return ScrubbedArgvWandbLogger


def __getattr__(name: str) -> Any:
    # PEP 562: pickle finds the logger class by this name.
    if name == "ScrubbedArgvWandbLogger":
        return _scrubbing_logger_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@contextlib.contextmanager
def masked_argv() -> Iterator[None]:
    from cnnlab.secrets.mask import scrub_text

    saved = sys.argv
    sys.argv = [scrub_text(arg) for arg in saved]
    try:
        yield
    finally:
        sys.argv = saved


def finish_wandb(failed: bool) -> None:
    """Finish the active wandb run, if this process started one."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)
