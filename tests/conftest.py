"""Shared fixtures: run cnnlab tasks in-process or as a real subprocess, in tmp folders."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

# Small, fast and offline for every test; a test that needs otherwise overrides it.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# A quick training run: a few batches, two epochs, on the bundled digits.
QUICK = ["debug=limit"]


@pytest.fixture(autouse=True)
def _isolated_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep data, outputs and wandb files of each test inside its tmp_path.

    Hydra keeps the config of the last in-process run in a global; it is cleared after each
    test so that no test sees another's ``${hydra:...}`` values.
    """
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    monkeypatch.setenv("CNNLAB_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("CNNLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path / "wandb"))
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    yield
    HydraConfig.instance().cfg = None  # type: ignore[assignment]
    GlobalHydra.instance().clear()


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run ``cnnlab <args>`` in this process (fast: imports are shared) and return its result.

    A user error surfaces as ``SystemExit``, as it does for the console script.
    """
    from cnnlab import cli

    def _run(*args: str) -> Any:
        monkeypatch.setattr(sys, "argv", ["cnnlab", *args])
        monkeypatch.delenv(cli.TASK_ENV, raising=False)
        return cli.main(list(args))

    return _run


@pytest.fixture
def run_subprocess(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python -m cnnlab <args>`` as a real process in ``tmp_path``."""

    def _run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return cnnlab(
            *args, env={**os.environ, **(env or {})}, cwd=cwd or tmp_path, timeout=timeout
        )

    return _run


def cnnlab(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run the real ``cnnlab`` command (``python -m cnnlab``) with exactly ``env``.

    For module-scoped fixtures, which cannot use :func:`run_subprocess`.
    """
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ctrl_c_when(
    marker: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> tuple[int, list[str]]:
    """Run ``cnnlab <args>`` and press Ctrl-C once a line of its output holds ``marker``.

    Returns its exit code and its output lines. SIGINT is restored to its default in the
    child, as from a terminal: a test run in the background ignores it, and so would the child.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.append(line.rstrip("\n"))
            if marker in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout=240), "\n".join(lines[-30:])
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(timeout=10)
    return code, lines


def only_run_dir(root: Path) -> Path:
    """Return the single run folder under ``root`` (``<root>/runs/<task>/<stamp>``)."""
    runs = sorted(p for p in root.glob("runs/*/*") if p.is_dir())
    assert len(runs) == 1, runs
    return runs[0]


def quick(*overrides: str) -> Sequence[str]:
    """The quick training overrides plus ``overrides``."""
    return [*QUICK, *overrides]
