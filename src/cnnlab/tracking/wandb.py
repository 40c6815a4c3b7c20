"""Weights & Biases: one run per job, offline unless the user is logged in.

The logger is made by :func:`wandb_logger` (the ``_target_`` of
``conf/logger/wandb.yaml``); :func:`finish_wandb` closes the active run at the
end of every job, failed ones included, so the next job of a multirun does not
log into it.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

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
    from pytorch_lightning.loggers import WandbLogger

    Path(save_dir).mkdir(parents=True, exist_ok=True)
    return WandbLogger(
        save_dir=save_dir,
        project=project,
        name=name,
        group=group,
        tags=list(tags),
        job_type=job_type,
        entity=entity,
        mode=resolve_mode(mode),
        log_model=log_model,
        settings=run_settings(),
    )


def run_settings() -> dict[str, Any]:
    """``wandb.init``'s settings for a run this process starts: no command line holding a secret.

    The hyperparameters a run gets are masked already (:mod:`cnnlab.tracking.loggers`), but
    wandb also reads ``sys.argv`` itself, into the run's system metadata (the ``run-*.wandb``
    file that ``wandb sync`` uploads), so ``+db_password=...`` would travel with it. When the
    command line holds a value cnnlab masks, the run records no system metadata (wandb's
    ``x_disable_meta`` setting: no command, host or Python version either); the config it
    gets already holds every value of the command line, masked.
    """
    from cnnlab.secrets.mask import scrub_text

    if all(scrub_text(arg) == arg for arg in sys.argv):
        return {}
    log.info("wandb: the command line holds a secret; the run records no system metadata")
    return {"x_disable_meta": True}


def finish_wandb(failed: bool) -> None:
    """Finish the active wandb run, if this process started one."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish(exit_code=1 if failed else 0)
