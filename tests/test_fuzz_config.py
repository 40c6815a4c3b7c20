"""Fuzzing the command line: every bad override gets one clean line naming the key or file.

Hypothesis draws overrides across every task, config group option and key (wrong types,
out of range, NaN/inf, empty, huge, unicode, paths that are folders, missing, unreadable
or corrupt files). Each one is

* run in-process (fast suite: 100 fresh draws a run; slow: 1,000): the task's config is
  composed with Hydra's compose API (one composition per task and group option, cached;
  the drawn value override is applied by Hydra's own override machinery), then validated
  and the cheap objects built
  (:func:`cnnlab.validation.validate_run`, network, trainer, loggers, callbacks, data
  module), as ``cnnlab`` does before any work;
* run through the real ``cnnlab`` command for a sample (slow; a handful in the fast suite).

The outcome is either success or a clean error (a :class:`~cnnlab.errors.CnnlabError`, or
one of Hydra's composition errors that the CLI prints in one line) whose message names the
key or the file. A traceback fails the test, and so does a value that is bad by
construction (a string or NaN for a number, anything but true/false for a flag, a folder
for a checkpoint) when it is accepted. ``CNNLAB_FUZZ_REPORT=path`` writes the counts.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from cnnlab.config import config_dir

# Groups each task composes that the fuzz varies (hparams_search and experiment belong to
# sweeps and to the sweeper's tests; debug only shrinks a run).
GROUPS: dict[str, tuple[str, ...]] = {
    "train": (
        "data", "augmentation", "model", "norm", "activation", "init", "dropout", "loss",
        "optimizer", "scheduler", "trainer", "perf", "logger", "callbacks",
    ),
    "eval": ("data", "trainer", "logger"),
    "predict": (),
    "visualize": (),
    "summary": ("data", "model", "norm", "activation", "init", "dropout"),
}  # fmt: skip
# The train task is the one with the most keys; it gets most draws.
TASK_WEIGHTS = {"train": 6, "eval": 1, "predict": 1, "visualize": 1, "summary": 1}
# Group options that need a GPU, several processes or downloads to build anything.
SKIP_OPTIONS = {("trainer", "gpu"), ("trainer", "ddp"), ("trainer", "ddp_cpu")}
# Keys whose value names a folder to write into, and keys naming an existing file.
FOLDER_KEYS = ("root", "dir", "save_dir", "dirpath", "output_root", "data_dir")
FILE_KEYS = ("ckpt_path",)


@dataclass(frozen=True)
class Case:
    """One fuzzed command line: the task, a group option for context and the override."""

    task: str
    context: tuple[str, ...]
    key: str
    value: str
    # True: bad by construction, must be refused. None: either outcome may be right.
    bad: bool | None

    @property
    def override(self) -> str:
        return f"{self.key}={self.value}"

    def __str__(self) -> str:
        shown = self.value if len(self.value) < 60 else self.value[:57] + "..."
        return f"cnnlab {self.task} {' '.join(self.context)} {self.key}={shown} (bad={self.bad})"


@dataclass
class Outcome:
    """What became of a case: ``accepted``, ``clean`` (one line naming the key) or ``crash``."""

    kind: str
    message: str = ""


# ------------------------------------------------------------------------------------------
# The files a path override may point at.
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Paths:
    folder: Path
    missing: Path
    empty: Path
    corrupt: Path
    unreadable: Path | None
    checkpoint_stub: Path
    image_stub: Path


def make_paths(root: Path) -> Paths:
    root.mkdir(parents=True, exist_ok=True)
    (root / "folder").mkdir(exist_ok=True)
    (root / "empty.ckpt").write_bytes(b"")
    (root / "corrupt.ckpt").write_bytes(bytes(range(256)) * 4)
    (root / "stub.ckpt").write_bytes(b"stub")
    (root / "stub.png").write_bytes(b"stub")
    unreadable: Path | None = root / "unreadable.ckpt"
    assert unreadable is not None
    unreadable.write_bytes(b"secret")
    unreadable.chmod(0)
    if os.access(unreadable, os.R_OK):  # root reads everything: no such file here
        unreadable = None
    return Paths(
        folder=root / "folder",
        missing=root / "no" / "such" / "thing",
        empty=root / "empty.ckpt",
        corrupt=root / "corrupt.ckpt",
        unreadable=unreadable,
        checkpoint_stub=root / "stub.ckpt",
        image_stub=root / "stub.png",
    )


# ------------------------------------------------------------------------------------------
# Composition: one compose per (task, group option), cached.
# ------------------------------------------------------------------------------------------


def group_options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


@functools.cache
def composed(task: str, context: tuple[str, ...]) -> DictConfig:
    """The task's config with its hydra node, composed once by Hydra's compose API."""
    from hydra import compose

    overrides = [*required_for(task), *with_extras(context)]
    return compose(task, overrides=overrides, return_hydra_config=True)


def with_extras(context: tuple[str, ...]) -> tuple[str, ...]:
    """``context`` plus the values its group option requires (imagefolder needs a root)."""
    extras = []
    if "data=imagefolder" in context:
        extras = [f"data.source.root={_PATHS['paths'].folder}", "data.num_classes=2"]
    return (*context, *extras)


@functools.cache
def required_for(task: str) -> tuple[str, ...]:
    """Overrides the task cannot run without (a checkpoint file, an input image)."""
    paths = _PATHS["paths"]
    if task in ("eval", "visualize"):
        return (f"ckpt_path={paths.checkpoint_stub}",)
    if task == "predict":
        return (f"ckpt_path={paths.checkpoint_stub}", f"input={paths.image_stub}")
    return ()


# Filled by the fixture that owns the temporary folder (hypothesis strategies are global).
_PATHS: dict[str, Paths] = {}


def leaf_keys(cfg: DictConfig) -> list[tuple[str, Any]]:
    """Every leaf key of the task's part of ``cfg`` with its unresolved value."""
    container = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    return list(_walk(container, ""))


def _walk(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from _walk(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


# ------------------------------------------------------------------------------------------
# Strategies.
# ------------------------------------------------------------------------------------------

WRONG_TYPES = ["abc", "''", "true", "false", "null", "[1,2]", "[]", "{a: 1}", "'1'"]
NUMBERS = ["-1", "0", "1", "2", "1.5", "-0.5", "0.999", "1e30", "99999999999999999999", "1e-30"]
NON_FINITE = ["nan", "inf", "-inf"]
ODD_TEXT = ["'日本語'", "'ü'", "'🙂'", "' '", "'x" + "x" * 2000 + "'", "'a b'", "'$HOME'"]


def path_values(paths: Paths) -> list[str]:
    values = [paths.folder, paths.missing, paths.empty, paths.corrupt]
    if paths.unreadable is not None:
        values.append(paths.unreadable)
    return [f"'{v}'" for v in values]


def expected_bad(key: str, default: Any, value: str, paths: Paths) -> bool | None:
    """True when ``value`` is wrong for ``key`` by construction; None when it may be right."""
    leaf = key.rsplit(".", 1)[-1]
    if value in NON_FINITE and isinstance(default, int | float):
        return True
    if isinstance(default, bool):  # null may mean "decide for me" (Lightning's flags)
        return None if value == "null" else value not in ("true", "false")
    not_a_number = ("abc", "''", "true", "false", "{a: 1}", "'1'", *ODD_TEXT)
    if isinstance(default, int | float) and key != "trainer.devices" and value in not_a_number:
        return True
    if leaf in FILE_KEYS and value in (f"'{paths.folder}'", f"'{paths.missing}'"):
        return True
    if leaf in FOLDER_KEYS and value in (f"'{paths.empty}'", f"'{paths.corrupt}'"):
        return True
    return None


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """A task, a group option for context, and one override of a key of that config."""
    paths = _PATHS["paths"]
    task = draw(st.sampled_from([t for t, w in TASK_WEIGHTS.items() for _ in range(w)]))
    context: tuple[str, ...] = ()
    groups = GROUPS[task]
    if groups and draw(st.booleans()):
        group = draw(st.sampled_from(groups))
        options = [o for o in group_options(group) if (group, o) not in SKIP_OPTIONS]
        context = (f"{group}={draw(st.sampled_from(options))}",)
    kind = draw(st.sampled_from(["key"] * 8 + ["group", "unknown"]))
    if kind == "group" and groups:
        group = draw(st.sampled_from(groups))
        return Case(task, (), group, draw(st.sampled_from(["nope", "''", "'日本'"])), True)
    if kind == "unknown":
        key = draw(st.sampled_from(["+nope", "+optimizer.nope", "nope", "trainer.nope"]))
        # Only train has an optimizer; elsewhere +optimizer.nope adds a node nothing reads.
        adds_unused = key == "+nope" or (key == "+optimizer.nope" and task != "train")
        return Case(task, context, key, "1", None if adds_unused else True)
    # The run folder is the one hydra key a single run's user sets.
    keys = [*leaf_keys(composed(task, context)), ("hydra.run.dir", "")]
    key, default = draw(st.sampled_from(keys))
    if key == "task":  # names the run folder; the CLI picks the task, not this key
        key, default = "seed", 42
    values = WRONG_TYPES + NUMBERS + NON_FINITE + ODD_TEXT
    if any(part in key for part in (*FOLDER_KEYS, *FILE_KEYS, "input", "output")):
        values = values + path_values(paths) * 3
    value = draw(st.sampled_from(values))
    return Case(task, context, key, value, expected_bad(key, default, value, paths))


# ------------------------------------------------------------------------------------------
# Running a case in-process.
# ------------------------------------------------------------------------------------------


def run_in_process(case: Case) -> Outcome:
    """Compose, apply the override as Hydra does, validate and build; classify the result."""
    from hydra import compose
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        if case.key in GROUPS[case.task] or case.key.startswith(("+", "~")):
            config = compose(
                case.task,
                overrides=[*required_for(case.task), *with_extras(case.context), case.override],
                return_hydra_config=True,
            )
        else:
            config = copy.deepcopy(composed(case.task, case.context))
            overrides = OverridesParser.create().parse_overrides([case.override])
            with read_write(config), open_dict(config.hydra):
                ConfigLoaderImpl._apply_overrides_to_config(overrides, config)
                config.hydra.overrides.task.append(case.override)
        validate_and_build(case.task, config, case.key)
    except Exception as exc:  # classifying every outcome is the point
        # The CLI quotes the command line in some of Hydra's errors: give it this one.
        argv, sys.argv = sys.argv, ["cnnlab", *case.context, case.override]
        try:
            return classify(exc)
        finally:
            sys.argv = argv
    return Outcome("accepted")


# The config groups whose values reach each object built after validation: the fuzz builds
# an object only when the drawn key can change it (a network per case would cost seconds).
REACHES = {
    "model": ("model", "norm", "activation", "init", "dropout", "data"),
    "data": ("data", "augmentation", "paths", "seed"),
    "trainer": ("trainer", "logger", "callbacks", "paths", "monitor", "hydra", "tags", "task"),
}


def validate_and_build(task: str, config: DictConfig, key: str = "") -> None:
    """What ``cnnlab <task>`` does before any work: validate, then build the objects."""
    from hydra.utils import instantiate

    from cnnlab.config import to_dict
    from cnnlab.errors import config_errors
    from cnnlab.lit.build import build_callbacks, build_loggers, build_trainer
    from cnnlab.lit.module import build_network
    from cnnlab.validation import run_dir_of, task_config, validate_run

    validate_run(config)
    cfg = task_config(config, run_dir_of(config))
    group = key.lstrip("+~").split(".", 1)[0]
    if "model" in cfg and group in REACHES["model"]:
        with config_errors("model"):
            build_network(to_dict(cfg.model))
    if cfg.get("data") is not None and group in REACHES["data"]:
        with config_errors("data"):
            instantiate(cfg.data)
    if "trainer" in cfg and group in REACHES["trainer"]:
        loggers = build_loggers(cfg.get("logger"))
        callbacks = build_callbacks(cfg.get("callbacks"), with_logger=bool(loggers))
        build_trainer(cfg.trainer, callbacks, loggers)


def classify(exc: BaseException) -> Outcome:
    from cnnlab.cli import _composition_error
    from cnnlab.errors import find_user_error

    user_error = find_user_error(exc)
    if user_error is not None:
        return Outcome("clean", str(user_error))
    message = _composition_error(exc)
    if message is not None:
        return Outcome("clean", message)
    return Outcome("crash", "".join(traceback.format_exception(exc)))


def names_key_or_file(case: Case, message: str) -> bool:
    """Whether a one-line error names the drawn key (or its group) or the file."""
    if "\n" in message.strip():
        return False
    key = case.key.lstrip("+~").lower()
    message = message.lower()
    named = message.split(":", 1)[0]
    return (
        key in message
        or key.split(".", 1)[0] == named.split(".", 1)[0]
        # model.norm interpolates the norm group: the error names that group (norm.name)
        or key.rsplit(".", 1)[-1] == named.split(".", 1)[0]
        or case.value.strip("'").lower() in message
    )


# ------------------------------------------------------------------------------------------
# The tests.
# ------------------------------------------------------------------------------------------


@pytest.fixture
def fuzz_paths(tmp_path: Path) -> Iterator[Paths]:
    from hydra import initialize_config_dir

    paths = make_paths(tmp_path / "fuzz")
    _PATHS["paths"] = paths
    composed.cache_clear()
    required_for.cache_clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        yield paths
    if paths.unreadable is not None:
        paths.unreadable.chmod(0o600)
    composed.cache_clear()


def fuzz(examples: int, run: Any, seed: int | None = None) -> dict[str, Any]:
    """Draw ``examples`` cases, run each with ``run`` and assert; return the counts."""
    counts: Counter[str] = Counter()
    failures: list[str] = []
    start = time.perf_counter()

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=seed is not None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases())
    def check(case: Case) -> None:
        outcome = run(case)
        counts["cases"] += 1
        if outcome.kind == "crash":
            counts["tracebacks"] += 1
            failures.append(f"traceback for {case}:\n{outcome.message[-3000:]}")
        elif outcome.kind == "accepted":
            counts["accepted"] += 1
            if case.bad:
                counts["wrongly accepted"] += 1
                failures.append(f"wrongly accepted: {case}")
        else:
            counts["clean errors"] += 1
            if not names_key_or_file(case, outcome.message):
                counts["unclear"] += 1
                failures.append(f"unclear message for {case}: {outcome.message}")

    check()
    report: dict[str, Any] = {**counts, "seconds": round(time.perf_counter() - start, 1)}
    if os.environ.get("CNNLAB_FUZZ_REPORT"):
        full = {**report, "failures": failures}
        Path(os.environ["CNNLAB_FUZZ_REPORT"]).write_text(json.dumps(full, indent=2))
    print(f"fuzz: {report}")
    assert not failures, f"{len(failures)} failures of {counts['cases']}:\n" + "\n".join(
        failures[:10]
    )
    return report


def test_fuzzed_overrides_in_process(fuzz_paths: Paths) -> None:
    # Fresh draws on every run (no seed), so runs add up; the slow test below draws more.
    examples = int(os.environ.get("CNNLAB_FUZZ_EXAMPLES", "100"))
    report = fuzz(examples, run_in_process)
    assert report["cases"] >= examples


@pytest.mark.slow
def test_many_fuzzed_overrides_in_process(fuzz_paths: Paths) -> None:
    examples = int(os.environ.get("CNNLAB_FUZZ_MANY_EXAMPLES", "1000"))
    report = fuzz(examples, run_in_process)
    assert report["cases"] >= examples


def test_fuzz_oracle_catches_a_wrongly_accepted_value(fuzz_paths: Paths) -> None:
    # The oracle itself: a flag set to a string is bad by construction and refused.
    case = Case("train", (), "test", "maybe", expected_bad("test", True, "maybe", fuzz_paths))
    assert case.bad is True
    outcome = run_in_process(case)
    assert outcome.kind == "clean" and names_key_or_file(case, outcome.message)


# ------------------------------------------------------------------------------------------
# Through the real command.
# ------------------------------------------------------------------------------------------

# Small and quick wherever the drawn override leaves the choice to us.
QUICK = {
    "train": ("debug=fast_dev_run", "logger=none"),
    "eval": ("logger=none", "trainer.limit_test_batches=1"),
    "summary": (),
    "predict": (),
    "visualize": ("method=filters",),
}


def run_command(case: Case, run_subprocess: Any) -> Outcome:
    """Run ``cnnlab <task> ...`` in a subprocess; classify its exit status and stderr."""
    args = [*QUICK[case.task], *required_for(case.task), *with_extras(case.context)]
    result = run_subprocess(case.task, *args, case.override, timeout=600)
    output = result.stdout + result.stderr
    if "Traceback" in output:
        return Outcome("crash", output[-3000:])
    if result.returncode == 0:
        return Outcome("accepted")
    lines = result.stderr.strip().splitlines()
    last = lines[-1] if lines else ""
    if not last.startswith(f"cnnlab {case.task}: error: "):
        return Outcome("crash", f"exit {result.returncode}, last line {last!r}")
    message = last.removeprefix(f"cnnlab {case.task}: error: ")
    # A clean refusal of the task's own files (a stub checkpoint) names that file.
    if any(str(p).split("=", 1)[-1] in message for p in required_for(case.task)):
        return Outcome("clean", f"{case.key}: {message}")
    return Outcome("clean", message)


@pytest.fixture
def real_files(request: pytest.FixtureRequest, run_cli: Any, tmp_path: Path) -> Paths:
    """Replace the stub checkpoint and image with a real checkpoint of a quick run."""
    from PIL import Image

    run_dir = tmp_path / "trained"
    run_cli("train", "debug=limit", "logger=none", f"hydra.run.dir={run_dir}")
    # Only now: fuzz_paths holds Hydra's global state for the compose API.
    fuzz_paths: Paths = request.getfixturevalue("fuzz_paths")
    (run_dir / "checkpoints" / "best.ckpt").replace(fuzz_paths.checkpoint_stub)
    Image.new("L", (28, 28), 128).save(fuzz_paths.image_stub, format="PNG")
    return fuzz_paths


@pytest.mark.slow
def test_fuzzed_overrides_through_the_command(real_files: Paths, run_subprocess: Any) -> None:
    examples = int(os.environ.get("CNNLAB_FUZZ_COMMAND_EXAMPLES", "40"))
    report = fuzz(examples, lambda case: run_command(case, run_subprocess))
    assert report["cases"] >= examples


@settings(max_examples=3, deadline=None, database=None, derandomize=True)
@given(case=cases().filter(lambda c: c.bad is True))
def _bad_cases_through_the_command(case: Case) -> None:
    outcome = run_command(case, _RUN["run_subprocess"])
    assert outcome.kind == "clean", f"{case}: {outcome}"
    assert names_key_or_file(case, outcome.message), f"{case}: {outcome.message}"


_RUN: dict[str, Any] = {}


def test_a_few_bad_overrides_through_the_command(fuzz_paths: Paths, run_subprocess: Any) -> None:
    # The fast suite's share of the command-line fuzz: values bad by construction, refused
    # before any work, so each process ends in about a second.
    _RUN["run_subprocess"] = run_subprocess
    _bad_cases_through_the_command()
