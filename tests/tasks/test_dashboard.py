"""``cnnlab dashboard``: optuna-dashboard on a real sweep's study, seen in a real browser.

The browser test runs a real 4-trial ``cnnlab train -m`` sweep, serves its
study with ``cnnlab dashboard`` in a subprocess and opens it in Debian's
chromium through playwright (which cannot download its own browsers here).
Set ``CNNLAB_DOCS_SCREENSHOT=1`` to also refresh ``docs/dashboard.png``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import optuna
import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium")
DOCS_SCREENSHOT = os.environ.get("CNNLAB_DOCS_SCREENSHOT") == "1"
# A short sweep: 4 trials of one epoch of 3 batches; the report is not needed here. The
# README's screenshot trains a little longer, so that its trials differ.
SWEEP = [
    "train",
    "-m",
    "hparams_search=random",
    "debug=limit",
    "logger=none",
    "trainer.max_epochs=1",
    f"trainer.limit_train_batches={12 if DOCS_SCREENSHOT else 3}",
    "test=false",
    "hydra.sweeper.n_trials=4",
    "hydra.sweeper.report=false",
]


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start_dashboard(*args: str, stderr: IO[str]) -> tuple[subprocess.Popen[str], str]:
    """Start ``cnnlab dashboard --port 0`` and return the process and the URL it printed.

    Its stderr goes to a file: a pipe nobody reads could fill and block the server.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", "dashboard", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        # As from a terminal: a test run started in the background (`cmd &` in a script)
        # ignores SIGINT, and the child would inherit that and never see the Ctrl-C below.
        preexec_fn=_default_sigint,
    )
    first_line: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: first_line.append(stdout.readline()))
    reader.start()
    reader.join(timeout=60)
    assert first_line and "http://127.0.0.1:" in first_line[0], (first_line, proc.poll())
    url = first_line[0].split()[1]
    return proc, url


# Slow (about 20 s: a sweep, the server, a browser); the one-line failures below stay fast.
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: apt-get install chromium")
def test_dashboard_shows_the_sweeps_study_in_a_browser(tmp_path: Path, run_subprocess) -> None:
    from playwright.sync_api import sync_playwright

    sweep = run_subprocess(*SWEEP)
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    storage = f"sqlite:///{tmp_path / 'outputs' / 'optuna.db'}"
    study = optuna.load_study(study_name=None, storage=storage)
    assert len(study.trials) == 4
    best = study.best_trial
    assert Path(best.user_attrs["run_dir"]).is_dir()

    stderr = (tmp_path / "dashboard.err").open("w+")
    proc, url = _start_dashboard(stderr=stderr)  # the default storage: $CNNLAB_OUTPUTS/optuna.db
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{url}dashboard/studies/{study._study_id}")
            page.get_by_text(f"Best Trial (number={best.number})").wait_for(timeout=60_000)
            body = page.inner_text("body")
            assert study.study_name in body
            # As the page writes a number (JavaScript): 1 for 1.0, else the shortest repr.
            value = best.value
            assert (str(int(value)) if value.is_integer() else repr(value)) in body
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)

            page.goto(f"{url}dashboard/studies/{study._study_id}/trials")
            page.get_by_text("4 Trials").wait_for(timeout=60_000)
            trials_page = page.inner_text("body")
            browser.close()
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        returncode = proc.wait(timeout=30)
    stderr.seek(0)
    assert returncode == 0, stderr.read()[-3000:]
    # The trial leads to its files: the first trial's run folder is on the trials page.
    assert f"run_dir {study.trials[0].user_attrs['run_dir']}" in trials_page
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if DOCS_SCREENSHOT:
        shutil.copyfile(shot, REPO / "docs" / "dashboard.png")


def _assert_one_line_error(proc: subprocess.CompletedProcess[str], *names: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("cnnlab dashboard: error:"), last
    for name in names:
        assert name in last, last


def test_missing_storage_is_one_line_and_creates_nothing(tmp_path: Path, run_subprocess) -> None:
    proc = run_subprocess("dashboard", "--port", "0")
    _assert_one_line_error(proc, str(tmp_path / "outputs" / "optuna.db"), "cnnlab train -m")
    assert not (tmp_path / "outputs").exists()


def test_a_file_that_is_not_a_study_storage_is_left_alone(tmp_path: Path, run_subprocess) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    foreign = tmp_path / "other.db"
    with sqlite3.connect(foreign) as connection:
        connection.execute("CREATE TABLE things (x INTEGER)")
    connection.close()
    before = foreign.read_bytes()
    for path in (text, foreign):
        _assert_one_line_error(
            run_subprocess("dashboard", str(path), "--port", "0"), str(path), "not an Optuna"
        )
    assert text.read_text() == "not a database\n"
    assert foreign.read_bytes() == before


def test_missing_extra_names_it(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=storage, study_name="s")
    # The real CLI with optuna_dashboard made unimportable, as on a machine without the extra.
    code = (
        "import sys; sys.modules['optuna_dashboard'] = None\n"
        "from cnnlab.cli import main\n"
        f"main(['dashboard', {storage!r}, '--port', '0'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    _assert_one_line_error(proc, "cnnlab[dashboard]")


def test_a_taken_port_is_one_line(tmp_path: Path, run_subprocess) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=storage, study_name="s")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        _assert_one_line_error(run_subprocess("dashboard", storage, "--port", port), port)


@contextlib.contextmanager
def _served(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """Serve a study storage holding study ``s`` with ``cnnlab dashboard --port 0``.

    Yields the storage URL and the port the server printed; stops it with Ctrl-C.
    """
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=storage, study_name="s")
    stderr = (tmp_path / "dashboard.err").open("w+")
    proc, url = _start_dashboard(storage, stderr=stderr)
    try:
        yield storage, int(url.rstrip("/").rsplit(":", 1)[1])
    finally:
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=30)
        stderr.seek(0)
        assert returncode == 0, stderr.read()[-3000:]


def _request(
    port: int, method: str, path: str, host: str | None, body: dict[str, object] | None = None
) -> tuple[int, bytes]:
    """One HTTP request to 127.0.0.1:``port`` with the Host header ``host`` (None: none)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host)
        data = json.dumps(body).encode() if body is not None else b""
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(len(data)))
        connection.endheaders(data)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _studies(storage: str) -> list[tuple[int, str]]:
    """The studies in ``storage`` as (id, name), read with Optuna (public storage API)."""
    backend = optuna.storages.RDBStorage(storage)
    try:
        names = optuna.get_all_study_names(storage=backend)
        return sorted((backend.get_study_id_from_name(name), name) for name in names)
    finally:
        backend.remove_session()


def test_a_foreign_host_header_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    """A page on another origin (DNS rebinding) reaches 127.0.0.1 with its own Host header."""
    with _served(tmp_path) as (storage, port):
        before = _studies(storage)
        [(study_id, _)] = before
        foreign = [
            f"evil.example:{port}",
            f"127.0.0.1.evil.example:{port}",
            f"evil.example:{port}, 127.0.0.1:{port}",
            f"localhost:{port + 1 if port < 65535 else port - 1}",
            "127.0.0.1",  # no port: a browser sends one for any port but 80
            "",
            None,  # no Host header at all (HTTP/1.0)
        ]
        for host in foreign:
            for method, path, body in (
                ("GET", "/api/studies", None),
                ("POST", "/api/studies", {"study_name": "evil", "directions": ["minimize"]}),
                ("DELETE", f"/api/studies/{study_id}", {}),
                ("POST", f"/api/studies/{study_id}/rename", {"study_name": "renamed"}),
                ("GET", "/", None),
            ):
                status, content = _request(port, method, path, host, body)
                assert status == 403, (host, method, path, status, content)
                assert b"study_summaries" not in content and b"evil" not in content
        assert _studies(storage) == before


def test_the_loopback_host_headers_are_served(tmp_path: Path) -> None:
    with _served(tmp_path) as (storage, port):
        for name in ("127.0.0.1", "localhost", "LocalHost", "[::1]"):
            host = f"{name}:{port}"
            status, content = _request(port, "GET", "/api/studies", host)
            assert status == 200, (host, status, content)
            names = [s["study_name"] for s in json.loads(content)["study_summaries"]]
            assert names == ["s"]
        body = {"study_name": "new", "directions": ["maximize"]}
        status, content = _request(port, "POST", "/api/studies", f"127.0.0.1:{port}", body)
        assert status == 201, content
        assert [name for _, name in _studies(storage)] == ["s", "new"]
        [new_id] = [i for i, name in _studies(storage) if name == "new"]
        delete = f"/api/studies/{new_id}"
        status, content = _request(port, "DELETE", delete, f"localhost:{port}", {})
        assert status == 204, content
        assert [name for _, name in _studies(storage)] == ["s"]


@pytest.mark.parametrize("port", ["70000", "-1", "65536", "http", ""])
def test_a_bad_port_is_one_line_exit_2(tmp_path: Path, run_subprocess, port: str) -> None:
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(storage=storage, study_name="s")
    proc = run_subprocess("dashboard", storage, f"--port={port}", timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("cnnlab dashboard: error: argument --port:"), lines
    assert "0 to 65535" in lines[0] and repr(port) in lines[0], lines


def test_a_database_that_never_answers_is_one_line_within_bounds(run_subprocess) -> None:
    """A PostgreSQL URL whose port accepts connections and never answers: no hang."""
    pytest.importorskip("psycopg")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        url = f"postgresql+psycopg://u@127.0.0.1:{port}/db"
        start = time.monotonic()
        proc = run_subprocess("dashboard", url, "--port", "0", timeout=60)
        elapsed = time.monotonic() - start
    _assert_one_line_error(proc, url, "connect_timeout=10", "timeout expired")
    assert elapsed < 25, elapsed  # the 10 s connect timeout plus the start of Python


def test_control_characters_in_a_path_are_escaped(tmp_path: Path, run_subprocess) -> None:
    path = tmp_path / "a\x1b[31mred\nline\rx\u202e.db"
    proc = run_subprocess("dashboard", str(path), "--port", "0")
    _assert_one_line_error(proc, "no such study storage")
    assert "\x1b" not in proc.stderr and "\r" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "a\\x1b[31mred\\x0aline\\x0dx\\u202e.db" in proc.stderr, proc.stderr
