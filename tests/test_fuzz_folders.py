"""Fuzzing run and sweep folders from elsewhere: every file in them is data, never code.

A real run folder (``cnnlab train``) and a real sweep folder (``cnnlab train -m``) are made
once. Hypothesis then draws a hostile change to one file or folder in a copy of them (a link
to a file or folder outside, a fifo, ``/dev/zero``, a huge sparse file, JSON nested 100,000
deep, a YAML alias bomb, bytes that are not UTF-8, control characters in strings, a value
of the wrong type, a ``_target_`` that would write a marker file, an interpolation of a
secret environment variable) and runs a command that reads the copy, as a real process:
``cnnlab runs``, ``runs compare``, ``report``, ``reproduce`` or ``train resume=``.

Every case must end within 30 s with exit status 0, 1 or 2 and no traceback; the marker
file must not exist; nothing outside the copy may change (a snapshot of the folder of
victims is compared byte for byte); and the secret must reach no file and no output.
``CNNLAB_FUZZ_FOLDERS=N`` sets the number of cases (default 40);
``CNNLAB_FUZZ_REPORT=path`` writes the counts as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.slow

CASES = int(os.environ.get("CNNLAB_FUZZ_FOLDERS", "40"))
TIMEOUT_S = 30
SECRET = "fuzz-secret-4f1c9e"
MARKER = "CODE_RAN"

# Files and folders of a run folder, and of a sweep folder, that the commands read or write.
RUN_PATHS = (
    "run.json", "metrics.json", ".hydra/config.yaml", ".hydra/overrides.yaml",
    ".hydra/hydra.yaml", ".hydra", "train.log", "metrics.csv", "checkpoints",
    "checkpoints/last.ckpt",
)  # fmt: skip
SWEEP_PATHS = (
    "sweep.json", "0/run.json", "0/metrics.json", "0/.hydra/config.yaml", "0",
    "report.md", "best.yaml", "multirun.yaml",
)  # fmt: skip
KINDS = (
    "link_file", "link_folder", "fifo", "dev_zero", "huge", "deep_json", "alias_bomb",
    "non_utf8", "control_chars", "wrong_type", "code_target", "secret_interpolation",
)  # fmt: skip
RUN_COMMANDS = ("runs", "runs_compare", "reproduce", "resume")
SWEEP_COMMANDS = ("report", "runs")


@dataclass(frozen=True)
class Case:
    """One hostile change and the command that reads the changed folder."""

    folder: str  # "run" or "sweep"
    path: str
    kind: str
    command: str
    value: Any  # the wrong-typed value, for kind == "wrong_type"

    def __str__(self) -> str:
        return f"{self.command} on {self.folder}/{self.path} <- {self.kind}"


@dataclass(frozen=True)
class Made:
    """The folders made once: the outputs root, its run folder and its sweep folder."""

    outputs: Path
    run: Path
    sweep: Path


COUNTS: Counter[str] = Counter()


def _cnnlab(
    args: list[str], cwd: Path, env: dict[str, str], timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cnnlab", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def _env(outputs: Path, data: Path) -> dict[str, str]:
    env = {**os.environ, "CNNLAB_OUTPUTS": str(outputs), "CNNLAB_DATA": str(data)}
    env["FUZZ_SECRET"] = SECRET
    env.pop("HYDRA_FULL_ERROR", None)
    return env


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Made]:
    base = tmp_path_factory.mktemp("made")
    outputs = base / "outputs"
    env = _env(outputs, base / "data")
    train = _cnnlab(["train", "debug=limit"], base, env)
    assert train.returncode == 0, train.stderr
    sweep = _cnnlab(
        ["train", "-m", "hparams_search=random", "hydra.sweeper.n_trials=2", "debug=limit",
         f"hydra.sweeper.storage=sqlite:///{base}/optuna.db"],
        base, env,
    )  # fmt: skip
    assert sweep.returncode == 0, sweep.stderr
    (run,) = [p for p in (outputs / "runs" / "train").iterdir() if p.is_dir()]
    (sweep_dir,) = [p for p in (outputs / "multiruns" / "train").iterdir() if p.is_dir()]
    yield Made(outputs, run, sweep_dir)
    if CASES and os.environ.get("CNNLAB_FUZZ_REPORT"):
        Path(os.environ["CNNLAB_FUZZ_REPORT"]).write_text(json.dumps(dict(COUNTS), indent=2))


def _cases() -> st.SearchStrategy[Case]:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
        max_leaves=6,
    )

    def build(folder: str) -> st.SearchStrategy[Case]:
        paths = RUN_PATHS if folder == "run" else SWEEP_PATHS
        commands = RUN_COMMANDS if folder == "run" else SWEEP_COMMANDS
        return st.builds(
            Case,
            folder=st.just(folder),
            path=st.sampled_from(paths),
            kind=st.sampled_from(KINDS),
            command=st.sampled_from(commands),
            value=json_values,
        )

    return build("run") | build("sweep")


def _victims(root: Path) -> Path:
    """Files and a folder outside the run folder that a hostile folder may point at."""
    victims = root / "victims"
    (victims / "folder").mkdir(parents=True)
    (victims / "bashrc").write_text("# the user's shell start-up\n")
    (victims / "shadow").write_text("root:$6$secret-hash:19000:0:99999:7:::\n")
    (victims / "foreign.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    (victims / "folder" / "keep.txt").write_text("keep")
    return victims


def _snapshot(folder: Path) -> dict[str, bytes | str]:
    shot: dict[str, bytes | str] = {}
    for path in sorted(folder.rglob("*")):
        rel = str(path.relative_to(folder))
        shot[rel] = "<dir>" if path.is_dir() and not path.is_symlink() else path.read_bytes()
    return shot


def _replace(target: Path) -> None:
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)


def _plant(case: Case, target: Path, victims: Path, marker: Path) -> None:
    """Apply the hostile change of ``case`` at ``target``."""
    kind = case.kind
    if kind == "link_file":
        _replace(target)
        target.symlink_to(victims / ("shadow" if target.suffix in (".yaml", ".json") else "bashrc"))
    elif kind == "link_folder":
        _replace(target)
        target.symlink_to(victims / "folder")
    elif kind == "fifo":
        _replace(target)
        os.mkfifo(target)
    elif kind == "dev_zero":
        _replace(target)
        target.symlink_to("/dev/zero")
    elif kind == "huge":
        _replace(target)
        with target.open("wb") as fh:
            fh.truncate(200 * 1024 * 1024)
    elif kind == "deep_json":
        _replace(target)
        target.write_text("[" * 100_000 + "]" * 100_000)
    elif kind == "alias_bomb":
        _replace(target)
        lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
        for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
            lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
        target.write_text("\n".join(lines) + "\n")
    elif kind == "non_utf8":
        _replace(target)
        target.write_bytes(b"\xff\xfe\x00status: \xe9\x80\n")
    else:
        _edit(case, target, marker)


def _edit(case: Case, target: Path, marker: Path) -> None:
    """Change the content of a JSON or YAML file (other files get the text appended)."""
    import yaml

    if not target.is_file():
        return  # a folder: nothing to edit, the command runs on the unchanged copy
    text = target.read_text(encoding="utf-8", errors="replace")
    json_file = target.suffix == ".json"
    try:
        data = json.loads(text) if json_file else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError):  # a log, a CSV: the text is appended to
        data = None
    evil: Any
    if case.kind == "control_chars":
        evil = "\x1b[2J\x1b]0;pwned\x07\x1b[31mFAKE ROW\x1b[0m\r"
    elif case.kind == "wrong_type":
        evil = case.value
    elif case.kind == "code_target":
        evil = {"_target_": "numpy.savetxt", "fname": str(marker), "X": [1.0]}
    else:  # secret_interpolation
        evil = "${oc.env:FUZZ_SECRET}"
    if isinstance(data, dict):
        for key in list(data)[:3] or ["x"]:
            data[key] = evil if case.kind != "code_target" else {**_as_dict(data[key]), **evil}
        if case.kind == "code_target":
            data["callbacks"] = {"evil": evil}
            data.setdefault("hydra", {})
            if isinstance(data["hydra"], dict):
                data["hydra"]["callbacks"] = {"evil": evil}
        new = json.dumps(data) if json_file else yaml.safe_dump(data)
    elif isinstance(data, list):
        new = json.dumps([evil, *data]) if json_file else yaml.safe_dump([str(evil), *data])
    else:
        new = text + ("\n" + json.dumps(evil) if not isinstance(evil, str) else evil)
    target.write_text(new, encoding="utf-8")


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _command(case: Case, copy: Path, other: Path, outputs: Path, work: Path) -> list[str]:
    if case.command == "runs":
        return ["runs", str(outputs)]
    if case.command == "runs_compare":
        return ["runs", "compare", str(copy), str(other)]
    if case.command == "reproduce":
        return ["reproduce", str(copy), "--out", str(work / "reproduced")]
    if case.command == "resume":
        return ["train", f"resume={copy}"]
    return ["report", str(copy)]


def _all_bytes(folder: Path) -> Iterator[bytes]:
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with path.open("rb") as fh:
                yield fh.read(64 * 1024 * 1024)


@settings(
    max_examples=CASES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=_cases())
def test_a_hostile_folder_is_data_never_code(made: Made, case: Case) -> None:
    work = Path(tempfile.mkdtemp(prefix="fuzz-", dir=made.outputs.parent))
    try:
        victims = _victims(work)
        before = _snapshot(victims)
        study_before = (made.outputs.parent / "optuna.db").read_bytes()
        outputs = work / "outputs"
        source = made.run if case.folder == "run" else made.sweep
        kind_dir = "runs" if case.folder == "run" else "multiruns"
        copy = outputs / kind_dir / "train" / source.name
        shutil.copytree(source, copy, symlinks=True)
        other = outputs / "runs" / "train" / "other"
        shutil.copytree(made.run, other, symlinks=True)
        marker = work / MARKER
        _plant(case, copy / case.path, victims, marker)
        env = _env(outputs, work / "data")
        command = _command(case, copy, other, outputs, work)
        tic = time.monotonic()
        try:
            done = _cnnlab(command, work, env, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            COUNTS["hang"] += 1
            pytest.fail(f"{case}: no answer within {TIMEOUT_S} s")
        seconds = time.monotonic() - tic
        COUNTS["cases"] += 1
        COUNTS[f"exit {done.returncode}"] += 1
        COUNTS["max_seconds"] = max(COUNTS["max_seconds"], round(seconds))
        output = done.stdout + done.stderr
        assert "Traceback" not in output, f"{case}: traceback\n{output[-3000:]}"
        assert done.returncode in (0, 1, 2), f"{case}: exit {done.returncode}\n{output[-2000:]}"
        assert not marker.exists(), f"{case}: code from the folder ran"
        assert _snapshot(victims) == before, f"{case}: a file outside the folder changed"
        study_after = (made.outputs.parent / "optuna.db").read_bytes()
        assert study_after == study_before, f"{case}: the sweep's study was written to"
        assert SECRET not in output, f"{case}: the secret reached the console"
        for data in _all_bytes(work):
            assert SECRET.encode() not in data, f"{case}: the secret reached a file"
        assert "\x1b" not in done.stdout, f"{case}: a control character reached the terminal"
    finally:
        for path in work.rglob("*"):
            if path.is_fifo() or path.is_symlink():
                path.unlink()
        shutil.rmtree(work, ignore_errors=True)
