"""A missing optional extra is one line naming the extra to install, never a traceback.

Each case runs the real ``cnnlab`` command with the extra's modules hidden: a
``sitecustomize`` on ``PYTHONPATH`` puts a finder first on ``sys.meta_path`` that
answers ``ModuleNotFoundError`` for them, as a machine without the package would.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HIDING_FINDER = """
import os, sys

_HIDDEN = tuple(name for name in os.environ["CNNLAB_TEST_HIDE"].split(",") if name)


class _Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in _HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _Hide())
"""

# (hidden modules, the command, the extra its last line must name).
CASES = [
    (
        ("tensorboard", "tensorboardX"),
        ["train", "debug=limit", "logger=tensorboard"],
        "tensorboard",
    ),
    (("mlflow",), ["train", "debug=limit", "logger=mlflow"], "mlflow"),
    (("optuna_dashboard",), ["dashboard"], "dashboard"),
    (
        ("psycopg", "psycopg2"),
        [
            "train",
            "-m",
            "hparams_search=tpe",
            "debug=fast_dev_run",
            "hydra.sweeper.storage=postgresql+psycopg://user:pw@127.0.0.1:9/db",
        ],
        "postgres",
    ),
    (("captum",), ["train", "debug=fast_dev_run", "callbacks=interpret"], "interpret"),
]


# The first three start a training run each: the fast suite keeps the cheaper two.
SLOW_EXTRAS = {"tensorboard", "mlflow", "interpret"}


@pytest.mark.parametrize(
    ("hidden", "args", "extra"),
    [
        pytest.param(*case, id=case[2], marks=[pytest.mark.slow] if case[2] in SLOW_EXTRAS else [])
        for case in CASES
    ],
)
def test_missing_extra_is_one_line_naming_it(
    run_subprocess, tmp_path: Path, hidden: tuple[str, ...], args: list[str], extra: str
) -> None:
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "sitecustomize.py").write_text(HIDING_FINDER)
    env = {"PYTHONPATH": str(shim), "CNNLAB_TEST_HIDE": ",".join(hidden)}
    result = run_subprocess(*args, env=env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert f"pip install 'cnnlab[{extra}]'" in last, last
    assert not list(tmp_path.glob("outputs/**/metrics.json"))  # nothing looks complete
