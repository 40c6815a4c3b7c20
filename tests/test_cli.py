"""The ``cnnlab`` command line: task dispatch, Hydra flags, start-up cost."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


def test_help_lists_every_task_without_importing_torch() -> None:
    result = _python(
        "import sys; from cnnlab import cli; cli.main(['--help']);"
        "print('HEAVY' if {'torch', 'pytorch_lightning'} & set(sys.modules) else 'LIGHT')"
    )
    assert result.returncode == 0, result.stderr
    for task in ("train", "eval", "predict", "reproduce"):
        assert task in result.stdout
    assert result.stdout.strip().endswith("LIGHT")


def test_cfg_job_prints_the_composed_config_without_importing_torch() -> None:
    result = _python(
        "import sys; from cnnlab import cli;"
        "cli.main(['train', '--cfg', 'job', 'model=simple_cnn']);"
        "print('HEAVY' if {'torch', 'pytorch_lightning'} & set(sys.modules) else 'LIGHT')"
    )
    assert result.returncode == 0, result.stderr
    assert "name: simple_cnn" in result.stdout
    assert "optimized_metric: ${monitor.metric}_best" in result.stdout
    assert result.stdout.strip().endswith("LIGHT")


def test_unknown_task_exits_2_with_usage(run_subprocess) -> None:
    result = run_subprocess("fly")
    assert result.returncode == 2
    assert "unknown task 'fly'" in result.stderr
    assert "usage: cnnlab" in result.stderr


def test_task_help_shows_config_groups(run_subprocess) -> None:
    result = run_subprocess("train", "--help")
    assert result.returncode == 0, result.stderr
    for group in ("model:", "norm:", "optimizer:", "scheduler:", "augmentation:", "logger:"):
        assert group in result.stdout


def test_console_script_is_installed() -> None:
    import shutil

    path = shutil.which("cnnlab") or str(
        __import__("pathlib").Path(sys.executable).with_name("cnnlab")
    )
    result = subprocess.run([path, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert "usage: cnnlab" in result.stdout


@pytest.mark.parametrize("override", ["model=resnet_nope", "norm=spectral"])
def test_unknown_group_option_is_a_one_line_error(run_subprocess, override: str) -> None:
    result = run_subprocess("train", override)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert override.split("=")[1] in result.stderr


def test_an_error_out_of_the_task_keeps_its_traceback(
    run_cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An OmegaConf error raised inside the task is a bug, not a command-line mistake.

    No task of cnnlab's raises one on purpose; a stand-in task raises it here, to check that
    the CLI tells it from Hydra's composition errors (which it turns into one line).
    """
    from omegaconf.errors import ConfigKeyError

    import cnnlab.tasks

    def broken_task(task: str, cfg: object) -> None:
        raise ConfigKeyError("a bug inside the task")

    monkeypatch.setattr(cnnlab.tasks, "run_task", broken_task)
    with pytest.raises(ConfigKeyError, match="a bug inside the task"):
        run_cli("summary")
    with pytest.raises(SystemExit) as composition:  # the same kind of error, from Hydra
        run_cli("summary", "model=resnet_nope")
    assert composition.value.code == 1


# Loaded by the interpreter at start-up (sitecustomize on PYTHONPATH): when the process ends,
# after cnnlab's own code, it prints whether the heap was frozen.
FREEZE_PROBE = """
import atexit, gc
atexit.register(lambda: print("frozen", gc.get_freeze_count() > 0, flush=True))
"""


@pytest.mark.parametrize(
    ("command", "args", "status"),
    [
        ("python -m cnnlab", ["--help"], 0),
        ("console script", ["fly"], 2),
        ("python -m cnnlab", ["train", "debug=fast_dev_run", "logger=none"], 0),
    ],
)
def test_the_cnnlab_command_freezes_the_heap_before_the_interpreter_tears_it_down(
    command: str, args: list[str], status: int, tmp_path: Path
) -> None:
    # What the command leaves to exit is freeing torch's and Lightning's modules; with the
    # objects frozen, the interpreter's last garbage collections skip them (seconds).
    (tmp_path / "sitecustomize.py").write_text(FREEZE_PROBE)
    program = (
        [sys.executable, "-m", "cnnlab"]
        if command.startswith("python")
        else [str(Path(sys.executable).with_name("cnnlab"))]
    )
    result = subprocess.run(
        [*program, *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == status, result.stderr[-2000:]
    assert result.stdout.strip().endswith("frozen True"), result.stdout[-2000:]


def test_main_in_process_leaves_the_heap_to_the_collector() -> None:
    # Tests call main() in one process again and again: nothing there may stay uncollected.
    result = _python(
        "import gc; from cnnlab import cli; cli.main(['--help']); print(gc.get_freeze_count())"
    )
    assert result.stdout.strip().endswith("\n0") or result.stdout.strip() == "0", result.stdout
