"""A user's own model, registered in the entry point group ``cnnlab.models``, trains and evals.

The user's package is installed as Python sees an installed package: a module and a
``*.dist-info`` folder with ``entry_points.txt`` on the path (``importlib.metadata`` reads it).
An unregistered ``_target_`` trains (the user's own config runs the user's own code) but its
checkpoint stays refused by ``cnnlab eval``, before its code is imported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

NET = """
from pathlib import Path

from torch import nn

Path("{marker}").touch()  # shows whether this module was imported


def build(in_channels: int, num_classes: int, image_size: int, width: int = 8) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )
"""

MODEL_CONFIG = """
_target_: {module}.build
in_channels: ${{data.in_channels}}
num_classes: ${{data.num_classes}}
image_size: ${{data.image_size}}
width: 8
"""


def _user_install(root: Path, module: str, *, registered: bool) -> Path:
    """Write ``module`` (and, if ``registered``, its dist-info entry point) under ``root``."""
    site = root / "site"
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(NET.format(marker=root / f"{module}.imported"))
    if registered:
        info = site / f"{module}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[cnnlab.models]\n{module} = {module}:build\n")
    conf = root / "my_conf" / "model"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / f"{module}.yaml").write_text(MODEL_CONFIG.format(module=module))
    return site


def _env(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def _train(run_subprocess, root: Path, module: str, env: dict[str, str]) -> Path:
    proc = run_subprocess(
        "train",
        "--config-dir",
        str(root / "my_conf"),
        f"model={module}",
        "debug=limit",
        "logger=none",
        f"hydra.run.dir={root / 'run'}",
        env=env,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    return root / "run" / "checkpoints" / "best.ckpt"


def test_a_registered_user_model_trains_and_its_checkpoint_evaluates(
    tmp_path: Path, run_subprocess
) -> None:
    site = _user_install(tmp_path, "mynet", registered=True)
    checkpoint = _train(run_subprocess, tmp_path, "mynet", _env(site))
    out = tmp_path / "eval"
    proc = run_subprocess(
        "eval", f"ckpt_path={checkpoint}", f"hydra.run.dir={out}", "logger=none", env=_env(site)
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.0 <= metrics["test/acc"] <= 1.0
    # eval says where it wrote (its run folder, with metrics.json) and the metrics.
    assert f"run folder: {out}" in proc.stdout.splitlines()
    assert f"acc={metrics['test/acc']:.4g}" in proc.stdout


def test_an_unregistered_user_model_is_refused_by_eval_before_its_code_runs(
    tmp_path: Path, run_subprocess
) -> None:
    site = _user_install(tmp_path, "othernet", registered=False)
    checkpoint = _train(run_subprocess, tmp_path, "othernet", _env(site))
    marker = tmp_path / "othernet.imported"
    marker.unlink()  # training imported it, as the user's own config asked
    proc = run_subprocess(
        "eval", f"ckpt_path={checkpoint}", f"hydra.run.dir={tmp_path / 'eval'}", env=_env(site)
    )
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .endswith(
            "hyper_parameters.model._target_: 'othernet.build' is not one of cnnlab's own targets "
            "nor registered in the entry point group cnnlab.models; nothing was run"
        )
    ), proc.stderr[-2000:]
    assert not marker.exists()
