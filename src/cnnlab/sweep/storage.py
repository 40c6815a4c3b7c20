"""Where studies live, and how a sweep shares its study with other workers.

:func:`open_storage` opens the ``storage`` setting; :func:`ask_lock` serialises "count the
trials, then ask" between the processes sharing a study, so that they never overshoot
``n_trials`` nor take one grid point twice; :class:`Heartbeat` and :func:`recover_abandoned`
find the trials a killed sweep left RUNNING, fail them and queue them again.

Only Optuna's public API: the sweeper opens the storage object itself (:func:`open_storage`),
hands it to ``optuna.create_study`` and keeps it, and finds a trial's storage id from its
number with :func:`trial_id`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sqlite3
import stat
import threading
import time
import urllib.parse
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CnnlabError, ConfigError, DataError, first_line
from cnnlab.secrets.mask import scrub_text

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage
    from optuna.trial import FrozenTrial

STORAGE_KEY = "hydra.sweeper.storage"
JOURNAL_PREFIX = "journal:"
# Our lock file is "<storage file>" + this suffix. Not ".lock": Optuna's journal file
# backend locks "<journal>.lock" itself, and waits 30 s then breaks a lock it did not take.
LOCK_SUFFIX = ".cnnlab-lock"
# PostgreSQL advisory lock keys (any 64-bit integers, the same in every worker).
ASK_LOCK_KEY = 0x636E6E6C6162  # "cnnlab"
SCHEMA_LOCK_KEY = ASK_LOCK_KEY + 1
# System attributes the sweeper keeps on each trial (hidden from user attributes).
HEARTBEAT_ATTR = "cnnlab:heartbeat"
WORKER_ATTR = "cnnlab:worker"
SURPLUS_ATTR = "cnnlab:surplus"
PRUNER_ATTR = "cnnlab:pruner"
# Set by the re-queued copy of an abandoned trial: the number of the trial it replaces
# (the key Optuna's RetryHeartbeatStaleTrialCallback uses too).
RETRY_ATTR = "failed_trial"
# User attribute of a copy that continues its lost trial's run: the override that does it
# (``++ckpt_path=<lost run>/checkpoints/last.ckpt``), which re-running the point leaves out.
CONTINUATION_ATTR = "continuation"
# User attributes that say how a lost trial's own run went, not what its point is: its copy
# starts without them (a copy that completes is neither "interrupted" nor in "error").
RUN_OUTCOME_ATTRS = ("error", "interrupted", CONTINUATION_ATTR)
POSTGRES_HINT = "for PostgreSQL: pip install 'cnnlab[postgres]' (psycopg 3)"


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


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL database (any driver: ``postgresql+psycopg://``...)."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def lock_file(path: Path) -> Path:
    """The file :func:`ask_lock` locks for the storage file ``path``."""
    return path.with_name(path.name + LOCK_SUFFIX)


@contextmanager
def _storage_errors(url: str) -> Iterator[None]:
    """Turn the errors of a storage that cannot be opened into one ``ConfigError`` line."""
    try:
        yield
    except Exception as exc:  # besides these, SQLAlchemy's ArgumentError, OperationalError, ...
        if not isinstance(exc, OSError | ImportError | ValueError) and not _from(exc, "sqlalchemy"):
            raise
        hint = f"; {POSTGRES_HINT}" if isinstance(exc, ImportError) and is_postgres(url) else ""
        raise ConfigError(STORAGE_KEY, scrub_text(f"cannot open {url!r}: {exc}{hint}")) from None


def _from(exc: BaseException, *packages: str) -> bool:
    """Whether ``exc`` is an error class of one of ``packages`` (a database layer's own)."""
    return type(exc).__module__.split(".")[0] in packages


def open_storage(
    url: str, heartbeat_interval: int | None = None, grace_period: float | None = None
) -> BaseStorage:
    """Open the storage named by ``url``: an SQLAlchemy URL or ``journal:PATH``.

    Args:
        heartbeat_interval: For RDB storages, turn on Optuna's heartbeat: running trials
            are stamped this often (seconds) and :func:`recover_abandoned` fails and
            re-queues those silent for ``grace_period`` seconds. None: no heartbeat
            (readers such as ``cnnlab report`` and the jobs' pruning hook).
        grace_period: Seconds of silence after which a running trial is abandoned
            (default: twice the interval, as in Optuna).

    Raises:
        ConfigError: ``hydra.sweeper.storage`` cannot be opened (bad URL, missing driver,
            unwritable folder).
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from cnnlab.secrets.mask import restore_url

    # sweep.json records the URL with its password masked; this gets it back when known.
    url = restore_url(url)

    path = file_path(url)
    with _storage_errors(url):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        if url.startswith(JOURNAL_PREFIX):
            return JournalStorage(JournalFileBackend(str(path)))
        kwargs: dict[str, Any] = {}
        if heartbeat_interval is not None:
            kwargs = {
                "heartbeat_interval": int(heartbeat_interval),
                "grace_period": int(grace_period) if grace_period else None,
                "heartbeat_stale_trial_callback": requeue,
            }
            # study.ask() warns that the heartbeat is meant for Study.optimize, whose
            # loop stamps its trials; the sweeper's Heartbeat stamps those it asks for.
            warnings.filterwarnings(
                "ignore", message="Heartbeat of storage is supposed to be used with Study"
            )
        # Workers on one SQLite file wait for each other's writes instead of failing.
        engine_kwargs = {"connect_args": {"timeout": 60}} if path is not None else None
        # On PostgreSQL one process at a time creates Optuna's tables: workers starting
        # together on a fresh database otherwise fail with ``UniqueViolation ... CREATE TYPE``.
        schema_lock = (
            _advisory_lock(url, SCHEMA_LOCK_KEY) if is_postgres(url) else contextlib.nullcontext()
        )
        with schema_lock, warnings.catch_warnings():
            # The heartbeat arguments are marked experimental; they are what we want.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)


def load_existing_study(url: str, study_name: str, source: str | os.PathLike[str]) -> optuna.Study:
    """Open the study ``study_name`` read-only, only where it already exists.

    For readers of a sweep folder (``cnnlab report``): ``url`` comes from its ``sweep.json``,
    which anyone may have written, so nothing is created or changed, wherever it points. A
    SQLite file must exist as a regular file and is opened with ``mode=ro``; a journal file
    must exist and is never appended to; a database server must already hold Optuna's tables
    (a PostgreSQL session is also made read-only). No folder, file or table is made.

    A masked password in ``url`` is restored when this process knows it. Every problem is a
    ``DataError`` naming ``source``, the file that named the storage.
    """
    import optuna

    from cnnlab.secrets.mask import restore_url

    shown = scrub_text(url)
    full = restore_url(url)
    problem = f"storage {shown!r}"
    try:
        if full.startswith(JOURNAL_PREFIX):
            storage: Any = _read_only_journal(_existing_file(full))
        else:
            storage = _read_only_rdb(full, study_name)
        study = optuna.load_study(study_name=study_name, storage=storage)
        study.get_trials(deepcopy=False)  # read it all now, where its errors are caught
        return study
    except _NotThere as exc:
        raise DataError(source, f"{problem}: {exc}") from None
    except KeyError:
        raise DataError(source, f"{problem}: holds no study {study_name!r}") from None
    except Exception as exc:  # besides these, SQLAlchemy's and sqlite3's errors
        readable = (OSError, ImportError, ValueError, TypeError, RuntimeError, AttributeError)
        if not isinstance(exc, readable) and not _from(exc, "sqlalchemy", "sqlite3"):
            raise
        raise DataError(
            source, f"{problem}: cannot be read ({scrub_text(first_line(exc))})"
        ) from None


class _NotThere(Exception):
    """The storage named by a sweep folder does not exist or lacks the study."""


def _existing_file(url: str) -> Path:
    """The file behind a ``sqlite:///`` or ``journal:`` URL, which must be a regular file."""
    path = file_path(url)
    if path is None:
        raise _NotThere("only sqlite:///FILE, journal:FILE or a database server is read")
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise _NotThere(f"{path} does not exist ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise _NotThere(f"{path} is not a regular file")
    return path


def _read_only_journal(path: Path) -> BaseStorage:
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    class ReadOnlyJournal(JournalFileBackend):
        """Optuna's journal file, read and never appended to."""

        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            raise RuntimeError(f"{path} is opened read-only")

    return JournalStorage(ReadOnlyJournal(str(path)))


def _read_only_rdb(url: str, study_name: str) -> BaseStorage:
    """An Optuna RDB storage on a database that already holds ``study_name``, read-only."""
    import sqlalchemy

    engine_kwargs: dict[str, Any] = {"poolclass": sqlalchemy.pool.NullPool}
    if url.split(":", 1)[0].split("+", 1)[0] == "sqlite":
        path = _existing_file(url)
        # sqlite3 itself, not the URL: only its URI form can say mode=ro (never create).
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
        engine_kwargs["creator"] = lambda: sqlite3.connect(
            uri, uri=True, timeout=60, check_same_thread=False
        )
    elif is_postgres(url):
        engine_kwargs["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    engine = sqlalchemy.create_engine(url, **engine_kwargs)
    try:
        inspector = sqlalchemy.inspect(engine)
        missing = [t for t in _OPTUNA_TABLES if not inspector.has_table(t)]
        if missing:
            raise _NotThere(f"holds no Optuna study (no table {missing[0]!r})")
        with engine.connect() as connection:
            found = connection.execute(
                sqlalchemy.text("SELECT 1 FROM studies WHERE study_name = :name"),
                {"name": study_name},
            ).first()
            versions = [
                connection.execute(sqlalchemy.text(f"SELECT COUNT(*) FROM {t}")).scalar()
                for t in ("version_info", "alembic_version")
            ]
    finally:
        engine.dispose()
    if found is None:
        raise _NotThere(f"holds no study {study_name!r}")
    if not all(versions):
        raise _NotThere("holds no Optuna schema version")
    from optuna.storages import RDBStorage

    # Tables exist and are versioned: Optuna writes nothing while it opens the storage.
    return RDBStorage(url, engine_kwargs=engine_kwargs, skip_table_creation=True)


# Optuna's tables that opening a storage would otherwise create or fill.
_OPTUNA_TABLES = ("studies", "version_info", "alembic_version")


_lock_engines: dict[str, Any] = {}


@contextmanager
def _advisory_lock(url: str, key: int) -> Iterator[None]:
    """Hold PostgreSQL's session advisory lock ``key`` on the database of ``url``.

    The server releases it when the connection closes, so a killed worker never
    leaves it held.
    """
    import sqlalchemy

    if url not in _lock_engines:
        _lock_engines[url] = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    with _lock_engines[url].connect() as connection:
        connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})


@contextmanager
def ask_lock(url: str | None) -> Iterator[None]:
    """Hold the study's shared lock: a lock file next to a file-based storage, an
    advisory lock on PostgreSQL (no-op for other servers and for memory).

    A lock file that cannot be created, or a database that cannot be reached, is a
    ``ConfigError``.
    """
    path = None if url is None else file_path(url)
    if path is None:  # memory or a server: only PostgreSQL has a lock to take
        with contextlib.ExitStack() as stack:
            if url is not None and is_postgres(url):
                with _storage_errors(url):
                    stack.enter_context(_advisory_lock(url, ASK_LOCK_KEY))
            yield
        return
    lock_path = lock_file(path)
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


# Where the errors of a storage's database layer come from (besides Optuna's own).
DRIVER_MODULES = ("sqlalchemy", "sqlite3", "psycopg", "psycopg2", "MySQLdb", "pymysql")


class StorageWriteError(DataError):
    """The study's storage stopped taking writes (a full disk, a lost database server)."""


def storage_cause(exc: BaseException) -> str | None:
    """``Type: message`` of the storage's own failure inside ``exc``, or None if it is not one.

    Optuna wraps a failed commit in ``StorageInternalError`` ("typically ... invalid data"),
    SQLAlchemy the driver's error in its own; the user needs the innermost one, e.g.
    ``sqlite3.OperationalError: database or disk is full``.
    """
    from optuna.exceptions import StorageInternalError

    seen: set[int] = set()
    current: BaseException | None = exc
    found = False
    innermost = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, StorageInternalError) or _from(current, *DRIVER_MODULES):
            found = True
            innermost = current
        # `raise ... from None` (an error cnnlab already put in one line) ends the chain.
        context = None if current.__suppress_context__ else current.__context__
        current = current.__cause__ or context
    if not found:
        return None
    inner = getattr(innermost, "orig", None) or innermost  # SQLAlchemy keeps the driver's
    name = f"{type(inner).__module__.split('.')[0]}.{type(inner).__name__}"
    lines = str(inner).strip().splitlines()
    return f"{name}: {lines[0]}" if lines else name


@contextmanager
def storage_write_errors(url: str | None) -> Iterator[None]:
    """Turn a storage that fails mid-sweep into one :class:`StorageWriteError` line naming it.

    A disk that fills while a sweep runs made every later write raise Optuna's
    ``StorageInternalError``, printed as a chain of tracebacks.
    """
    try:
        yield
    except CnnlabError:
        raise  # already one line naming its key or file (a storage that cannot be opened)
    except Exception as exc:
        cause = storage_cause(exc)
        if cause is None or url is None:
            raise
        raise StorageWriteError(scrub_text(url), f"the study cannot be written: {cause}") from exc


def fail_trials(storage: BaseStorage, trial_ids: Sequence[int]) -> list[int]:
    """Mark the RUNNING trials ``trial_ids`` FAIL, as far as the storage lets us.

    Returns the ids left RUNNING because the storage refused the write (a full disk holding the
    storage itself); the next sweep on this study re-queues them (:func:`recover_abandoned`).
    """
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    left = []
    for trial_id in trial_ids:
        try:
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue
        except Exception as exc:
            if storage_cause(exc) is None:
                raise
            left.append(trial_id)
    return left


def worker_id() -> dict[str, Any]:
    """This sweep process, as recorded on the trials it runs."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def uses_optuna_heartbeat(storage: BaseStorage) -> bool:
    """Whether ``storage`` runs Optuna's own heartbeat (an RDB storage opened with one)."""
    get_interval = getattr(storage, "get_heartbeat_interval", None)
    return get_interval is not None and get_interval() is not None


class Heartbeat:
    """Stamps the trials this process runs with the time, every ``interval`` seconds.

    A trial whose stamp is older than the grace period belongs to a sweep that
    died; :func:`recover_abandoned` then re-queues it. On a storage with Optuna's
    heartbeat the stamp is Optuna's (``record_heartbeat``), else a system attribute.
    """

    def __init__(self, storage: BaseStorage, interval: float) -> None:
        self.storage = storage
        self.interval = interval
        self._optuna_heartbeat = uses_optuna_heartbeat(storage)
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

    def running(self) -> list[int]:
        """The trials being stamped (started and not yet finished)."""
        with self._lock:
            return sorted(self._trial_ids)

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
            try:
                self._beat(ids)
            except Exception as exc:
                # A storage that stopped taking writes: the sweep's own next write reports it
                # in one line; a thread's traceback would only interleave with it.
                if storage_cause(exc) is None:
                    raise

    def _beat(self, trial_ids: Sequence[int]) -> None:
        from optuna.exceptions import UpdateFinishedTrialError

        now = time.time()
        for trial_id in trial_ids:
            # A job may finish its trial (pruned) while we stamp it.
            with contextlib.suppress(UpdateFinishedTrialError):
                if self._optuna_heartbeat:
                    self.storage.record_heartbeat(trial_id)  # type: ignore[attr-defined]
                else:
                    self.storage.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, now)


def requeue(study: optuna.Study, trial: FrozenTrial) -> None:
    """Queue a copy of the failed ``trial``: same parameters (and grid point), run again.

    Optuna's stale-trial callback on RDB storages, and used for dead workers too. Unlike
    Optuna's ``RetryHeartbeatStaleTrialCallback`` the copy names the trial it replaces
    (not the first of a chain), which is what :func:`counted_trials` needs, and drops the
    dead worker's own attributes so that the copy is not taken for abandoned in turn, and
    those of how the lost run ended (:data:`RUN_OUTCOME_ATTRS`).
    """
    import optuna
    from optuna.trial import TrialState

    system_attrs = {k: v for k, v in trial.system_attrs.items() if not k.startswith("cnnlab:")}
    system_attrs[RETRY_ATTR] = trial.number
    # Its run folder (``run_dir``) stays: the copy continues from its last checkpoint.
    user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in RUN_OUTCOME_ATTRS}
    study.add_trial(
        optuna.trial.create_trial(
            state=TrialState.WAITING,
            params=trial.params,
            distributions=trial.distributions,
            user_attrs=user_attrs,
            system_attrs=system_attrs,
        )
    )


def trial_id(storage: BaseStorage, study_name: str, number: int) -> int:
    """The storage's id of trial ``number`` of study ``study_name``.

    Storage methods take this id; Optuna's trial objects keep it in a private attribute,
    so it is looked up through the storage's public methods instead.
    """
    study_id = storage.get_study_id_from_name(study_name)
    return storage.get_trial_id_from_study_id_trial_number(study_id, number)


def recover_abandoned(study: optuna.Study, storage: BaseStorage, grace_period: float) -> list[int]:
    """Fail the study's abandoned RUNNING trials and queue a copy of each.

    A trial is abandoned when the sweep process that ran it is gone: its process
    no longer exists on this host, or its heartbeat is older than ``grace_period``
    seconds (Optuna's ``fail_stale_trials`` on a storage with Optuna's heartbeat).
    The copy keeps the parameters (and a grid sampler's grid point). ``storage`` is the
    storage object the study was created with (:func:`open_storage`). Returns the numbers of
    the trials that were failed and re-queued.
    """
    import optuna
    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    optuna_heartbeat = uses_optuna_heartbeat(storage)
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    recovered = []
    if optuna_heartbeat:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # Fails the silent trials; the storage's callback (requeue) queues their copies.
            optuna.storages.fail_stale_trials(study)
        states = {t.number: t.state for t in study.get_trials(deepcopy=False)}
        recovered = [t.number for t in running if states[t.number] == TrialState.FAIL]
        running = [t for t in running if states[t.number] == TrialState.RUNNING]
    for trial in running:
        if not _is_abandoned(trial, grace_period, heartbeat_expired=not optuna_heartbeat):
            continue
        try:
            storage.set_trial_state_values(
                trial_id(storage, study.study_name, trial.number), state=TrialState.FAIL
            )
        except UpdateFinishedTrialError:
            continue  # another worker recovered it first
        requeue(study, trial)
        recovered.append(trial.number)
    return sorted(recovered)


def _is_abandoned(trial: FrozenTrial, grace_period: float, heartbeat_expired: bool) -> bool:
    """Whether ``trial``'s worker is gone: a dead process on this host, or (with
    ``heartbeat_expired``) a heartbeat attribute older than ``grace_period``."""
    worker = trial.system_attrs.get(WORKER_ATTR) or {}
    if worker.get("host") == socket.gethostname() and not _alive(int(worker.get("pid", -1))):
        return True
    if not heartbeat_expired:
        return False
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
        pass  # alive, another user's
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
