"""``cnnlab dashboard [STORAGE]``: browse a sweep's study in optuna-dashboard.

The storage defaults to the one a sweep writes (``$CNNLAB_OUTPUTS/optuna.db``,
else ``./outputs/optuna.db``). The server listens on 127.0.0.1 only and prints
its URL first; Ctrl-C stops it. Each trial's user attributes hold its run
folder (``run_dir``) and its W&B run (``wandb_url`` online, ``wandb_offline_run``
offline), so the dashboard leads from a trial to its files.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError, ConfigError, DataError

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MISSING_EXTRA = "optuna-dashboard is not installed: pip install 'cnnlab[dashboard]'"


def default_storage() -> str:
    """The storage a sweep uses by default: ``sqlite:///<output root>/optuna.db``."""
    root = Path(os.environ.get("CNNLAB_OUTPUTS") or "outputs")
    return f"sqlite:///{(root / 'optuna.db').resolve()}"


def main(argv: list[str]) -> int:
    """Parse ``[STORAGE] [--port N]``, check the storage and serve the dashboard.

    Returns:
        0 once the server is stopped (Ctrl-C); 1 with one line on stderr when the
        extra is missing, the storage is missing or not a study storage, or the
        port is taken.
    """
    parser = argparse.ArgumentParser(
        prog="cnnlab dashboard",
        description="Serve optuna-dashboard on 127.0.0.1 for a study storage.",
    )
    parser.add_argument(
        "storage",
        nargs="?",
        help="a storage URL (sqlite:///..., journal:..., postgresql://...) or a SQLite file "
        "(default: the sweeps' outputs/optuna.db under $CNNLAB_OUTPUTS)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any)"
    )
    args = parser.parse_args(argv)
    try:
        server = make_server(args.storage or default_storage(), args.port)
    except CnnlabError as exc:
        print(f"cnnlab dashboard: error: {exc}", file=sys.stderr)
        return 1
    print(f"optuna-dashboard: http://{HOST}:{server.server_port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def make_server(storage: str, port: int) -> Any:
    """Open ``storage`` and bind optuna-dashboard's WSGI app to ``127.0.0.1:port``.

    Raises:
        CnnlabError: The extra is missing, the storage cannot be opened, or the port is taken.
    """
    try:
        import optuna_dashboard
    except ImportError:
        raise CnnlabError(MISSING_EXTRA) from None
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
    from wsgiref.simple_server import make_server as wsgi_server

    from cnnlab.sweep.storage import open_storage

    url = _storage_url(storage)
    try:
        backend = open_storage(url)
    except ConfigError as exc:  # its key names the sweeper's setting; here it is the argument
        raise CnnlabError(exc.message) from None

    class QuietHandler(WSGIRequestHandler):
        """No line per request on the console."""

        def log_message(self, format: str, *args: Any) -> None:
            pass

    try:
        return wsgi_server(
            HOST, port, optuna_dashboard.wsgi(backend), WSGIServer, handler_class=QuietHandler
        )
    except OSError as exc:
        raise CnnlabError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None


def _storage_url(storage: str) -> str:
    """Turn a path into a ``sqlite:///`` URL and check that a file storage holds studies.

    Opening a missing or foreign SQLite file would create Optuna's tables in it, so
    the file is checked read-only first.
    """
    from cnnlab.sweep.storage import file_path, normalize_url

    url = storage if "://" in storage or storage.startswith("journal:") else f"sqlite:///{storage}"
    url = str(normalize_url(url))
    path = file_path(url)
    if path is None:
        return url  # a database server: optuna says what is wrong with it
    if not path.is_file():
        raise DataError(path, "no such study storage; a sweep (cnnlab train -m ...) creates it")
    if url.startswith("sqlite:") and not _is_optuna_sqlite(path):
        raise DataError(path, "not an Optuna study storage (no studies table)")
    return url


def _is_optuna_sqlite(path: Path) -> bool:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
            found = connection.execute(
                "SELECT 1 FROM sqlite_master WHERE type='table' AND name='studies'"
            ).fetchone()
    except sqlite3.DatabaseError:  # not a SQLite file at all
        return False
    return found is not None
