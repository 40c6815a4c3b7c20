"""Shared fixtures: run cnnlab tasks in-process or as a real subprocess, in tmp folders."""

from __future__ import annotations

import os
import subprocess
import sys
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


def only_run_dir(root: Path) -> Path:
    """Return the single run folder under ``root`` (``<root>/runs/<task>/<stamp>``)."""
    runs = sorted(p for p in root.glob("runs/*/*") if p.is_dir())
    assert len(runs) == 1, runs
    return runs[0]


def quick(*overrides: str) -> Sequence[str]:
    """The quick training overrides plus ``overrides``."""
    return [*QUICK, *overrides]
