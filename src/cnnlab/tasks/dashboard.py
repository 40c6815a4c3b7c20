"""``cnnlab dashboard [STORAGE]``: browse a sweep's study in optuna-dashboard.

Each trial's user attributes hold its run folder (``run_dir``) and its W&B run
(``wandb_url`` online, ``wandb_offline_run`` offline), so the dashboard leads from a
trial to its files.

optuna-dashboard's API can create, rename and delete studies without any login.
Listening on 127.0.0.1 keeps other machines out, but not a web page on another
site: through DNS rebinding its name resolves to 127.0.0.1, and the browser then
sends that page's requests here with the page's own host name in ``Host``; so
:func:`loopback_only` answers 403 to every request that names another host.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cnnlab.console import OneLineParser, exit_on_user_error
from cnnlab.errors import CnnlabError, ConfigError, DataError

HOST = "127.0.0.1"
DEFAULT_PORT = 8080
MAX_PORT = 65535
MISSING_EXTRA = "optuna-dashboard is not installed: pip install 'cnnlab[dashboard]'"
# Seconds a PostgreSQL server has to complete a new connection. SQLAlchemy passes the URL's
# ``connect_timeout`` to the driver; psycopg and psycopg2 (libpq) bound the whole handshake
# with it. Other drivers name it otherwise (pg8000: ``timeout``), so they get none.
CONNECT_TIMEOUT = 10
CONNECT_TIMEOUT_DRIVERS = ("postgresql", "postgresql+psycopg", "postgresql+psycopg2")
# The names a browser on this machine uses for the server; anything else is another site.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
FORBIDDEN = b"403 Forbidden: this dashboard answers only http://127.0.0.1:PORT/\n"


def default_storage() -> str:
    """The storage a sweep uses by default: ``sqlite:///<output root>/optuna.db``."""
    root = Path(os.environ.get("CNNLAB_OUTPUTS") or "outputs")
    return f"sqlite:///{(root / 'optuna.db').resolve()}"


def main(argv: list[str]) -> int:
    """Parse ``[STORAGE] [--port N]``, check the storage and serve the dashboard.

    Returns:
        0 once the server is stopped (Ctrl-C); 1 with one line on stderr when the
        extra is missing, the storage is missing, not a study storage or does not
        answer, or the port is taken. A bad option (``--port 70000``) is one line, exit 2.
    """
    parser = OneLineParser(
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
        "--port",
        type=_port,
        default=DEFAULT_PORT,
        help=f"port, 0 to {MAX_PORT} (default {DEFAULT_PORT}; 0: a free one, printed)",
    )
    args = parser.parse_args(argv)
    with exit_on_user_error("dashboard", log_it=False):
        server = make_server(args.storage or default_storage(), args.port)
    print(f"optuna-dashboard: http://{HOST}:{server.server_port}/ (Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def _port(text: str) -> int:
    """A TCP port for ``--port``: 0 (any free port) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"must be a port, 0 to {MAX_PORT}: got {text!r}")
    return port


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def loopback_only(app: WSGIApp, port: int) -> WSGIApp:
    """Wrap the WSGI ``app`` so that it answers only requests for ``127.0.0.1:port``.

    A request whose ``Host`` header is not one of :data:`LOOPBACK_NAMES` with ``port``
    (a DNS-rebinding page, a missing header) gets 403 and never reaches ``app``,
    whatever its method. Only port 80 may be left out, as browsers do.
    """
    allowed = {f"{name}:{port}" for name in LOOPBACK_NAMES}
    if port == 80:
        allowed.update(LOOPBACK_NAMES)

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("HTTP_HOST", "").lower() in allowed:
            return app(environ, start_response)
        start_response(
            "403 Forbidden",
            [("Content-Type", "text/plain"), ("Content-Length", str(len(FORBIDDEN)))],
        )
        return [FORBIDDEN]

    return guarded


def with_connect_timeout(url: str) -> str:
    """``url`` with ``connect_timeout`` set for a PostgreSQL server, unless it sets one.

    Without it a server that accepts the connection and never answers (a wrong port,
    a stuck proxy) hangs the command before it prints anything.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # not an SQLAlchemy URL: opening it says so
    if parsed.drivername not in CONNECT_TIMEOUT_DRIVERS or "connect_timeout" in parsed.query:
        return url
    # Appended as text: rendering the parsed URL again would re-quote its other parts (a
    # masked password ``***`` from sweep.json would become a literal ``%2A%2A%2A``).
    return f"{url}{'&' if '?' in url else '?'}connect_timeout={CONNECT_TIMEOUT}"


def make_server(storage: str, port: int) -> Any:
    """Open ``storage`` and bind optuna-dashboard's WSGI app to ``127.0.0.1:port``.

    The app answers only requests that name ``127.0.0.1:<port>`` (:func:`loopback_only`).

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
        backend = open_storage(with_connect_timeout(url))
    except ConfigError as exc:  # its key names the sweeper's setting; here it is the argument
        raise CnnlabError(exc.message) from None

    class QuietHandler(WSGIRequestHandler):
        """No line per request on the console."""

        def log_message(self, format: str, *args: Any) -> None:
            pass

    app = optuna_dashboard.wsgi(backend)
    try:
        server = wsgi_server(HOST, port, app, WSGIServer, handler_class=QuietHandler)
    except OSError as exc:
        raise CnnlabError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
    server.set_app(loopback_only(app, server.server_port))  # the port bound, also for --port 0
    return server


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
