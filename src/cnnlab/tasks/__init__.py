"""Tasks: one module per ``cnnlab`` subcommand, each a ``run(cfg)`` function.

:func:`run_task` is the single place where a user mistake (a
:class:`~cnnlab.errors.CnnlabError`) becomes one line on stderr and a non-zero
exit instead of a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

from omegaconf import DictConfig

from cnnlab.console import exit_on_user_error


def run_task(task: str, cfg: DictConfig) -> Any:
    """Validate ``cfg`` for ``task``, import ``cnnlab.tasks.<task>`` and call its ``run(cfg)``.

    In a single run, a user error exits with status 1 and one line naming the key
    or file (the full traceback with ``HYDRA_FULL_ERROR=1``). In a multirun the
    exception propagates so that the sweeper records the failed trial and goes on.
    """
    from cnnlab.console import quiet_console
    from cnnlab.validation import validate_config

    quiet_console()  # also in joblib's worker processes, which never pass through the CLI
    with exit_on_user_error(task):
        validate_config(task, cfg)
        return importlib.import_module(f"cnnlab.tasks.{task}").run(cfg)
