"""Where studies live, and how a sweep shares its study with other workers.

- :func:`open_storage` turns the ``storage`` setting into an Optuna storage:
  an SQLAlchemy URL, ``journal:PATH`` for Optuna's journal file, or None.
- :func:`ask_lock` serialises "count the trials, then ask" between processes
  that share a file-based storage, so workers never overshoot ``n_trials``.
- :class:`Heartbeat` and :func:`recover_abandoned` find trials left RUNNING
  by a sweep that was killed, mark them FAIL and queue them again.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload

from cnnlab.errors import ConfigError

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

STORAGE_KEY = "hydra.sweeper.storage"
JOURNAL_PREFIX = "journal:"
# System attributes the sweeper keeps on each trial (hidden from user attributes).
HEARTBEAT_ATTR = "cnnlab:heartbeat"
WORKER_ATTR = "cnnlab:worker"
SURPLUS_ATTR = "cnnlab:surplus"
PRUNER_ATTR = "cnnlab:pruner"
# Set by the re-queued copy of an abandoned trial: the number of the trial it replaces.
RETRY_ATTR = "failed_trial"


def normalize_url(url: str | None) -> str | None:
    """Return ``url`` with a relative SQLite or journal path made absolute.

    Jobs and later ``cnnlab report`` calls may run from another folder; an absolute
    path keeps pointing at the same file.
    """
    if url is None:
        return None
    path = file_path(url)
    if path is None:
        return url
    if url.startswith(JOURNAL_PREFIX):
        return f"{JOURNAL_PREFIX}{path.resolve()}"
    return f"sqlite:///{path.resolve()}"


def file_path(url: str) -> Path | None:
    """Return the file behind a ``sqlite:///`` or ``journal:`` URL (None for servers)."""
    if url.startswith(JOURNAL_PREFIX):
        rest = url[len(JOURNAL_PREFIX) :]
        return Path(rest[2:] if rest.startswith("//") else rest)
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url[len("sqlite:///") :].split("?", 1)[0])
    return None


@overload
def open_storage(url: str) -> BaseStorage: ...


@overload
def open_storage(url: None) -> None: ...


@overload
def open_storage(url: str | None) -> BaseStorage | None: ...


def open_storage(url: str | None) -> BaseStorage | None:
    """Open the storage named by ``url`` (None: the study lives in memory only).

    Raises:
        ConfigError: ``hydra.sweeper.storage`` cannot be opened (bad URL, missing driver,
            unwritable folder).
    """
    if url is None:
        return None
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from cnnlab.runs.scrub import restore_url, scrub_text

    # sweep.json records the URL with its password masked; this gets it back when known.
    url = restore_url(url)

    path = file_path(url)
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if url.startswith(JOURNAL_PREFIX):
            return JournalStorage(JournalFileBackend(str(path)))
        # Workers on one SQLite file wait for each other's writes instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}} if path is not None else None
        return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs)
    except (OSError, ImportError, ValueError) as exc:
        raise ConfigError(STORAGE_KEY, scrub_text(f"cannot open {url!r}: {exc}")) from None
    except Exception as exc:  # SQLAlchemy's ArgumentError, OperationalError, ...
        if type(exc).__module__.startswith("sqlalchemy"):
            raise ConfigError(STORAGE_KEY, scrub_text(f"cannot open {url!r}: {exc}")) from None
        raise


@contextmanager
def ask_lock(url: str | None) -> Iterator[None]:
    """Hold an exclusive lock next to a file-based storage (no-op for servers).

    Raises:
        ConfigError: The lock file cannot be created.
    """
    path = file_path(url) if url else None
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a")  # noqa: SIM115 - closed in finally
    except OSError as exc:
        raise ConfigError(STORAGE_KEY, f"cannot create lock file {lock_path}: {exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def worker_id() -> dict[str, Any]:
    """This sweep process, as recorded on the trials it runs."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


class Heartbeat:
    """Stamps the trials this process runs with the time, every ``interval`` seconds.

    A trial whose stamp is older than the grace period belongs to a sweep that
    died; :func:`recover_abandoned` then re-queues it.
    """

    def __init__(self, storage: BaseStorage, interval: float) -> None:
        self.storage = storage
        self.interval = interval
        self._trial_ids: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cnnlab-heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        """Start the background thread; returns self."""
        self._thread.start()
        return self

    def add(self, trial_ids: Sequence[int]) -> None:
        """Stamp ``trial_ids`` now and keep stamping them."""
        with self._lock:
            self._trial_ids.update(trial_ids)
        self._beat(trial_ids)

    def discard(self, trial_ids: Sequence[int]) -> None:
        """Stop stamping ``trial_ids`` (they have finished)."""
        with self._lock:
            self._trial_ids.difference_update(trial_ids)

    def stop(self) -> None:
        """Stop the thread."""
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with self._lock:
                ids = list(self._trial_ids)
            self._beat(ids)

    def _beat(self, trial_ids: Sequence[int]) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        now = time.time()
        for trial_id in trial_ids:
            # A job may finish its trial (pruned) while we stamp it.
            with contextlib.suppress(UpdateFinishedTrialError):
                self.storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, now)


def recover_abandoned(study: optuna.Study, grace_period: float) -> list[int]:
    """Fail the study's abandoned RUNNING trials and queue a copy of each.

    A trial is abandoned when the sweep process that ran it is gone: its process
    no longer exists on this host, or its heartbeat is older than ``grace_period``
    seconds. The copy keeps the parameters (and a grid sampler's grid point).

    Returns:
        The numbers of the trials that were failed and re-queued.
    """
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    storage = study._storage  # the study's own storage object; Optuna has no public getter
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not _is_abandoned(trial, grace_period):
            continue
        try:
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker recovered it first
        system_attrs = {k: v for k, v in trial.system_attrs.items() if not k.startswith("cnnlab:")}
        system_attrs[RETRY_ATTR] = trial.number
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=trial.params,
                distributions=trial.distributions,
                user_attrs=trial.user_attrs,
                system_attrs=system_attrs,
            )
        )
        recovered.append(trial.number)
    return recovered


def _is_abandoned(trial: FrozenTrial, grace_period: float) -> bool:
    worker = trial.system_attrs.get(WORKER_ATTR) or {}
    if worker.get("host") == socket.gethostname() and not _alive(int(worker.get("pid", -1))):
        return True
    start = trial.datetime_start.timestamp() if trial.datetime_start else time.time()
    last = max(float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)), start)
    return time.time() - last > grace_period


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def counted_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    """Return the trials that count toward ``n_trials``: running or finished ones.

    Left out: waiting trials, abandoned trials that were re-queued (their copy
    counts instead), and surplus trials a worker asked for beyond the total.
    """
    from optuna.trial import TrialState

    replaced = {t.system_attrs[RETRY_ATTR] for t in trials if RETRY_ATTR in t.system_attrs}
    return [
        t
        for t in trials
        if t.state != TrialState.WAITING
        and t.number not in replaced
        and not t.system_attrs.get(SURPLUS_ATTR)
    ]
