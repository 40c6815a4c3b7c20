"""``cnnlab <task> [overrides]``: one console script, one Hydra app per task.

The dispatcher only picks the task; everything heavy is imported by the task
itself, so ``cnnlab --help`` and ``cnnlab train --cfg job`` stay fast.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from cnnlab.config import config_dir
from cnnlab.console import TASK_ENV, quiet_console

# Task name -> (one-line description, Hydra config name or None for a plain command).
# A Hydra task runs ``cnnlab.tasks.<name>.run(cfg)``; a plain command runs
# ``cnnlab.tasks.<name with _ for ->.main(argv)`` and returns the exit status.
TASKS: dict[str, tuple[str, str | None]] = {
    "train": ("train a network, then test its best checkpoint", "train"),
    "eval": ("evaluate a checkpoint on the test split: cnnlab eval ckpt_path=...", "eval"),
    "predict": ("classify image files: cnnlab predict ckpt_path=... input=PATH", "predict"),
    "reproduce": ("re-run a run from its folder and compare: cnnlab reproduce RUN_DIR", None),
    "report": ("write a sweep's report, plots and best.yaml: cnnlab report SWEEP_DIR", None),
    "dashboard": ("browse sweeps' studies in optuna-dashboard: cnnlab dashboard [STORAGE]", None),
    "compare-search": ("grid vs random vs TPE at equal budgets (Bergstra and Bengio 2012)", None),
    "experiments": ("run the material's comparisons, write docs/experiments.md", None),
    "summary": ("layers, parameters and mult-adds: cnnlab summary model=NAME", "summary"),
    "visualize": ("saliency, Grad-CAM, class models: cnnlab visualize ckpt_path=...", "visualize"),
    "runs": ("list runs, or compare two: cnnlab runs [FOLDER] | cnnlab runs compare A B", None),
}

FULL_ERROR_ENV = "HYDRA_FULL_ERROR"
# Set (True) on an exception that came out of the task itself, not out of Hydra's
# composition; an attribute travels with the exception, also pickled from a joblib worker.
TASK_ERROR_ATTR = "cnnlab_task_error"


def main(argv: Sequence[str] | None = None) -> Any:
    """Run ``cnnlab <task> [args]``; ``argv`` defaults to ``sys.argv[1:]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    quiet_console()  # the sweeper's own lines (Optuna, the report's plots) run in this process
    if args and args[0] in TASKS:
        task, rest = args[0], args[1:]
    elif os.environ.get(TASK_ENV) in TASKS and "LOCAL_RANK" in os.environ:
        task, rest = os.environ[TASK_ENV], args  # a DDP rank started by Lightning
    elif not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    else:
        print(f"cnnlab: unknown task {args[0]!r}\n\n{_usage()}", file=sys.stderr)
        raise SystemExit(2)

    if TASKS[task][1] is None:
        import importlib

        command = importlib.import_module(f"cnnlab.tasks.{task.replace('-', '_')}")
        raise SystemExit(command.main(rest))

    if any(arg in ("-h", "--help") for arg in rest):
        from cnnlab.task_help import task_help

        description, config_name = TASKS[task]
        print(task_help(task, description, config_dir(), str(config_name)))
        return 0
    if task == "train" and any(arg.startswith(("resume=", "ckpt_path=last")) for arg in rest):
        from cnnlab.records.resume import resume_arguments

        rest = resume_arguments(task, rest)  # `train resume=<run folder>`: that run's own folder
    os.environ[TASK_ENV] = task
    sys.argv = [sys.argv[0], *rest]
    try:
        return _run_hydra_task(task)
    except KeyboardInterrupt as exc:
        # Ctrl-C is no failure: one last line saying how to go on, no traceback.
        print(_interrupted_line(task, args[1:], exc), file=sys.stderr, flush=True)
        raise SystemExit(130) from None


def console_main() -> Any:
    """The ``cnnlab`` console script (and ``python -m cnnlab``): :func:`main`, then a quick exit.

    When :func:`main` returns, every file is written and closed and every tracker finished;
    what remains is the interpreter tearing down torch's, Lightning's and Hydra's modules,
    where its garbage collections walk millions of objects: 1-5 s on 2 cores, after the last
    line (BENCHMARKS.md, section 8). Freezing them first skips those collections; objects
    are still freed and ``atexit`` handlers still run. Not in :func:`main` itself, which
    tests call in-process, where frozen objects would never be collected.
    """
    try:
        return main()
    finally:
        gc.freeze()


def _interrupted_line(task: str, args: list[str], exc: KeyboardInterrupt) -> str:
    """The command that continues what Ctrl-C stopped: the sweep's own, or ``resume=``."""
    import shlex

    from cnnlab.errors import RunInterrupted
    from cnnlab.secrets.mask import scrub_text

    if any(arg in ("-m", "--multirun") for arg in args):
        # Re-running a sweep's command resumes its study; the interrupted trial runs again.
        command = shlex.join(["cnnlab", task, *args])
        return scrub_text(f"interrupted; continue the sweep: {command}")
    if isinstance(exc, RunInterrupted) and exc.resume:
        return f"interrupted; continue it: {exc.resume}"
    return "interrupted"


def _run_hydra_task(task: str) -> Any:
    """Run the task's Hydra app; a mistake on the command line becomes one line, exit 1.

    Hydra prints its own composition errors (an unknown key or group option, a malformed
    override) over several lines that end with a hint about HYDRA_FULL_ERROR. With
    ``HYDRA_FULL_ERROR=1`` it raises them instead, so the CLI sets it and reports them the
    way cnnlab reports every user error; whether the user wants tracebacks travels in
    ``CNNLAB_TRACEBACKS`` (to DDP ranks, too). Any other exception is a bug and keeps its
    traceback.
    """
    from cnnlab.errors import TRACEBACKS_ENV

    wanted = os.environ.get(TRACEBACKS_ENV, os.environ.get(FULL_ERROR_ENV, "0"))
    saved = {name: os.environ.get(name) for name in (TRACEBACKS_ENV, FULL_ERROR_ENV)}
    os.environ.update({TRACEBACKS_ENV: wanted, FULL_ERROR_ENV: "1"})
    try:
        return _hydra_app(task)()
    except Exception as exc:
        message = _composition_error(exc)
        if message is None or wanted == "1":
            raise
        from cnnlab.secrets.mask import scrub_text

        # The override quoted may hold a secret (`+token=a,b`): the line is masked like a log's.
        print(f"cnnlab {task}: error: {scrub_text(message)}", file=sys.stderr)
        raise SystemExit(1) from None
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _composition_error(exc: BaseException) -> str | None:
    """One line for Hydra's errors about the command line or the config tree, else None."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if _raised_in_job(exc):
        return None
    if not isinstance(exc, HydraException | OmegaConfBaseException):
        # Hydra's defaults list raises plain ValueErrors for some overrides (`logger=null`);
        # they name no override, so the line lists the command's overrides.
        if isinstance(exc, ValueError) and _raised_in_hydra(exc):
            return f"{_one_line(str(exc))} (overrides: {' '.join(sys.argv[1:])})"
        return None
    parts = [str(exc)]
    if isinstance(exc.__cause__, OmegaConfBaseException):
        parts.append(str(exc.__cause__))
    # OmegaConf appends "full_key: ..." and "object_type=..." lines; the key is in the text.
    lines = [
        line.strip()
        for part in parts
        for line in part.splitlines()
        if line.strip()
        and not line.strip().startswith(("full_key:", "object_type=", "reference_type="))
    ]
    message = _one_line(" ".join(lines)) or type(exc).__name__
    # A malformed override: the parser's message does not repeat which one it was.
    override = getattr(exc, "override", None)
    return f"{override}: cannot be parsed ({message})" if override else message


def _usage() -> str:
    width = max(map(len, TASKS))
    lines = [f"  {name:<{width}}  {help_}" for name, (help_, _) in TASKS.items()]
    return (
        "usage: cnnlab <task> [hydra overrides and flags]\n\ntasks:\n"
        + "\n".join(lines)
        + "\n\n`cnnlab <task> --help` shows a task's config groups and Hydra's flags."
    )


def _hydra_app(task: str) -> Callable[[], Any]:
    import hydra

    config_name = TASKS[task][1]

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)
    def app(cfg: Any) -> Any:
        from cnnlab.tasks import run_task

        try:
            return run_task(task, cfg)
        except Exception as exc:
            with contextlib.suppress(AttributeError, TypeError):  # a class without __dict__
                setattr(exc, TASK_ERROR_ATTR, True)
            raise

    return app


def _raised_in_job(exc: BaseException) -> bool:
    """Whether ``exc`` came out of the task itself (marked by the app), not composition.

    A config error inside a task is already one line (run_task); anything else the task
    raises, OmegaConf's errors included, is a bug and keeps its traceback.
    """
    return getattr(exc, TASK_ERROR_ATTR, False) is True


def _raised_in_hydra(exc: BaseException) -> bool:
    """Whether the innermost frame of ``exc`` is Hydra's own code (composition)."""
    tb = exc.__traceback__
    module = ""
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    return module.startswith("hydra.")


def _one_line(text: str) -> str:
    return " ".join(text.split())
