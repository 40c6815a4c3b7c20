"""The ``cnnlab`` command line: task dispatch, Hydra flags, start-up cost."""

from __future__ import annotations

import subprocess
import sys

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


@pytest.mark.parametrize("args", [["--help"], ["fly"]])
def test_the_console_script_freezes_the_heap_before_the_interpreter_tears_it_down(
    args: list[str],
) -> None:
    # What the console script leaves to exit is freeing torch's and Lightning's modules; with
    # the objects frozen, the interpreter's last garbage collections skip them (seconds).
    # atexit handlers run after console_main, also when it exits with an error.
    result = _python(
        "import atexit, gc, sys; from cnnlab import cli;"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count() > 0));"
        f"sys.argv = ['cnnlab', *{args!r}]; sys.exit(cli.console_main())"
    )
    assert result.stdout.strip().endswith("frozen True"), result.stdout + result.stderr
    assert result.returncode == (0 if args == ["--help"] else 2)


def test_main_in_process_leaves_the_heap_to_the_collector() -> None:
    # Tests call main() in one process again and again: nothing there may stay uncollected.
    result = _python(
        "import gc; from cnnlab import cli; cli.main(['--help']); print(gc.get_freeze_count())"
    )
    assert result.stdout.strip().endswith("\n0") or result.stdout.strip() == "0", result.stdout
