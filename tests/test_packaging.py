"""Packaging tells the truth: constraints.txt locks every installed package, and the wheel
alone (no repository, no borrowed site-packages) trains, sweeps and serves the dashboard."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
CONSTRAINTS = ROOT / "constraints.txt"
# The extras `make install` installs (and `make lock` pins), read from the Makefile.
EXTRAS = re.search(r"^EXTRAS := (\S+)$", (ROOT / "Makefile").read_text(), re.M)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    """constraints.txt as ``{normalised name: version}``."""
    pins = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: not an exact pin: {line!r}"
            pins[_normal(name)] = version.strip()
    return pins


def _without_local_label(version: str) -> str:
    return version.split("+")[0]  # torch 2.13.0+cpu satisfies the pin torch==2.13.0


def test_make_install_and_make_lock_name_the_same_extras() -> None:
    assert EXTRAS is not None
    extras = set(EXTRAS.group(1).split(","))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert extras == set(project["optional-dependencies"])
    assert "$(EXTRAS)" in (ROOT / "Makefile").read_text().split("lock:")[1]


def test_every_installed_package_is_locked_at_its_version() -> None:
    """This environment is `make install`'s: each of its packages has its exact pin."""
    pins = locked()
    unpinned, moved = [], []
    for dist in metadata.distributions():
        name = _normal(dist.metadata["Name"])
        if name in ("cnnlab", "pip", "setuptools", "wheel"):
            continue
        if name not in pins:
            unpinned.append(f"{name}=={dist.version}")
        elif _without_local_label(dist.version) != pins[name]:
            moved.append(f"{name}: installed {dist.version}, locked {pins[name]}")
    assert unpinned == [], "not in constraints.txt (run `make lock`)"
    assert moved == []


def _venv_run(args: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    # As on a user's machine: outputs land in the current folder (no CNNLAB_OUTPUTS).
    dropped = ("PYTHONPATH", "VIRTUAL_ENV", "CNNLAB_OUTPUTS")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, check=False, **kwargs
    )  # type: ignore[call-overload]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_wheel_in_a_fresh_venv_installs_the_lock_and_runs_from_another_folder(
    tmp_path: Path,
) -> None:
    dist = tmp_path / "dist"
    built = _venv_run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT])
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(dist.glob("cnnlab-*.whl"))
    venv = tmp_path / "venv"
    # A venv of its own: no --system-site-packages, nothing borrowed from this environment.
    assert _venv_run([sys.executable, "-m", "venv", venv]).returncode == 0
    python = venv / "bin" / "python"
    assert EXTRAS is not None
    installed = _venv_run(
        [python, "-m", "pip", "install", "-q", "-c", CONSTRAINTS, f"{wheel}[{EXTRAS.group(1)}]"],
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]

    # The lock is exact: the fresh install holds exactly the pinned packages and versions.
    freeze = _venv_run([python, "-m", "pip", "freeze"]).stdout.splitlines()
    got = {}
    for line in freeze:
        name, _, version = line.partition("==")
        if version and _normal(name) != "cnnlab":
            got[_normal(name)] = _without_local_label(version)
    assert got == locked()

    work = tmp_path / "elsewhere"  # no repository, no conf/ in sight
    work.mkdir()
    cnnlab = venv / "bin" / "cnnlab"
    env_run = {"cwd": work, "timeout": 600}
    where = _venv_run([python, "-c", "import cnnlab.config as c; print(c.config_dir())"], **env_run)
    assert where.stdout.strip().startswith(str(venv)), where.stdout

    train = _venv_run([cnnlab, "train", "debug=limit"], **env_run)
    assert train.returncode == 0, train.stderr[-3000:]
    assert list(work.glob("outputs/runs/train/*/metrics.json"))

    dashboard = _venv_run([cnnlab, "dashboard", "--help"], **env_run)
    assert dashboard.returncode == 0, dashboard.stderr[-3000:]
    assert "--port" in dashboard.stdout

    sweep = _venv_run(
        [cnnlab, "train", "-m", "hparams_search=tpe", "debug=limit", "hydra.sweeper.n_trials=2"],
        **env_run,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    results = list(work.glob("outputs/multiruns/train/*/optimization_results.yaml"))
    assert len(results) == 1
    assert "best_value" in results[0].read_text()
    assert "Traceback" not in train.stderr + sweep.stderr
