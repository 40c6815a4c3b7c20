"""Tasks: one module per ``cnnlab`` subcommand, each a ``run(cfg)`` function.

:func:`run_task` is the single place where a user mistake (a
:class:`~cnnlab.errors.CnnlabError`) becomes one line on stderr and a non-zero
exit instead of a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from omegaconf import DictConfig

from cnnlab.errors import CnnlabError, tracebacks_wanted

log = logging.getLogger(__name__)


def run_task(task: str, cfg: DictConfig) -> Any:
    """Validate ``cfg`` for ``task``, import ``cnnlab.tasks.<task>`` and call its ``run(cfg)``.

    In a single run, a user error exits with status 1 and one line naming the key
    or file (the full traceback with ``HYDRA_FULL_ERROR=1``). In a multirun the
    exception propagates so that the sweeper records the failed trial and goes on.
    """
    from cnnlab.quiet import quiet_console
    from cnnlab.validation import validate_config

    quiet_console()  # also in joblib's worker processes, which never pass through the CLI
    with exit_on_user_error(task):
        validate_config(task, cfg)
        return importlib.import_module(f"cnnlab.tasks.{task}").run(cfg)


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
        from cnnlab.secrets.mask import scrub_text

        # Masked like the log line above (a value quoted in the message may be a secret).
        print(f"cnnlab {task}: error: {scrub_text(str(user_error))}", file=sys.stderr)
        raise SystemExit(1) from None


def find_user_error(exc: BaseException) -> CnnlabError | None:
    """Return the :class:`CnnlabError` in ``exc``'s cause chain, if any.

    Hydra's ``instantiate`` and Lightning wrap exceptions raised in user code; the
    original error is kept as ``__cause__`` or ``__context__``.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, CnnlabError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _is_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
