"""A tiny real Hydra app whose objective is a known function, for sweeper tests.

The objective is the material's f(x, y) = g(x) + h(y): x matters, y barely.
Switches in its config make a trial crash, return NaN, sleep (all, or one by number), or report
intermediate values to its trial (so the pruner can stop it). At the end: a real
PostgreSQL server (pgserver) and a fresh database per test.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

APP = """
import json, math, os, sys, time
from pathlib import Path

import hydra


def f(x, y):
    return (x - 0.3) ** 2 + 0.01 * (y - 0.5) ** 2


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg):
    x, y = float(cfg.x), float(cfg.y)
    Path(cfg.marks).mkdir(parents=True, exist_ok=True)
    (Path(cfg.marks) / f"{os.getpid()}-{time.time_ns()}.json").write_text(
        json.dumps({"x": x, "y": y, "trial": cfg.get("sweep", {}).get("trial_number")})
    )
    if cfg.crash_x is not None and x == cfg.crash_x:
        raise RuntimeError("boom at x=%s" % x)
    if cfg.nan_x is not None and x == cfg.nan_x:
        return float("nan")
    time.sleep(float(cfg.sleep))
    if cfg.slow.trial is not None and cfg.get("sweep", {}).get("trial_number") == cfg.slow.trial:
        time.sleep(float(cfg.slow.sleep))
    if cfg.steps:
        from cnnlab.sweep.pruning import TrialReporter

        reporter = TrialReporter.from_config(cfg)
        for step in range(int(cfg.steps)):
            reporter.report(f(x, y) + 1.0 / (step + 1), step)
    if cfg.two:
        return [f(x, y), abs(y)]
    return f(x, y)


if __name__ == "__main__":
    main()
"""

CONFIG = """
defaults:
  - override hydra/sweeper: cnnlab_optuna
  - _self_
x: 0.0
y: 0.0
crash_x: null
nan_x: null
sleep: 0
slow:  # one trial (by number) that sleeps longer than the others
  trial: null
  sleep: 0
steps: 0
two: false
marks: ${oc.env:APP_ROOT}/marks
hydra:
  run:
    dir: ${oc.env:APP_ROOT}/run
  sweep:
    dir: ${oc.env:APP_ROOT}/multirun/${now:%H-%M-%S_%f}
    subdir: ${hydra.job.num}
  sweeper:
    storage: sqlite:///${oc.env:APP_ROOT}/optuna.db
    n_trials: 4
    report: false
    heartbeat_interval: 1
    grace_period: 3
"""


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """Write the app and its config into ``tmp_path/app``; return the folder."""
    root = tmp_path / "app"
    (root / "conf").mkdir(parents=True)
    (root / "app.py").write_text(textwrap.dedent(APP))
    (root / "conf" / "config.yaml").write_text(CONFIG)
    return root


@pytest.fixture
def run_app(app: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run ``python app.py -m ARGS`` in its folder; fails the test on a non-zero exit."""

    def _run(
        *args: str, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "APP_ROOT": str(app), "HYDRA_FULL_ERROR": "1"}
        proc = subprocess.run(
            [sys.executable, "app.py", "-m", *args],
            cwd=app,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    return _run


def marks(app: Path) -> list[dict[str, object]]:
    """The (x, y, trial) of every job the app started, in no particular order."""
    return [json.loads(p.read_text()) for p in sorted((app / "marks").glob("*.json"))]


def load_study(app: Path, name: str | None = None) -> optuna.Study:
    """Open the app's only study (or ``name``) in its SQLite file."""
    url = f"sqlite:///{app / 'optuna.db'}"
    if name is None:
        (summary,) = optuna.get_all_study_summaries(url)
        name = summary.study_name
    return optuna.load_study(study_name=name, storage=url)


# --- A real PostgreSQL 16 (the pgserver wheel), for the storage and multi-worker tests ---

# SQLAlchemy driver for the tests: psycopg 3, the `postgres` extra's driver.
POSTGRES_DRIVER = "postgresql+psycopg"


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One PostgreSQL server for the whole session, in a temporary folder.

    Skipped (with the reason) only where pgserver cannot start a server.
    """
    try:
        import pgserver

        server = pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="stop")
    except Exception as exc:
        pytest.skip(f"pgserver cannot start PostgreSQL here: {type(exc).__name__}: {exc}")
    yield server
    server.cleanup()
    # pgserver logs once more at interpreter exit, when pytest has closed its streams.
    quiet = logging.getLogger("pgserver")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """The SQLAlchemy URL of a fresh, empty database on the session's server."""
    name = f"t{uuid.uuid4().hex[:12]}"
    postgres_server.psql(f"CREATE DATABASE {name};")
    uri: str = postgres_server.get_uri(name)
    return uri.replace("postgresql://", f"{POSTGRES_DRIVER}://", 1)
