"""``cnnlab reproduce RUN_DIR``: re-run a training run from its folder and compare metrics.

The run's own composed config (``RUN_DIR/.hydra/config.yaml``) is trained again
in a fresh folder, so later changes to ``conf/`` do not change what is re-run.
Exit status 0 when ``metrics.json`` matches, 1 when it differs, 2 on bad input.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError, ConfigError, DataError, first_line


def main(argv: list[str]) -> int:
    """Parse ``argv`` (``RUN_DIR [--out DIR] [--rtol R] [--atol A]``) and reproduce the run."""
    parser = argparse.ArgumentParser(
        prog="cnnlab reproduce",
        description="Re-run a training run from its folder and report whether the metrics match.",
    )
    parser.add_argument("run_dir", type=Path, help="the run folder (holds run.json, .hydra/)")
    parser.add_argument("--out", type=Path, help="folder for the new run (default: beside it)")
    parser.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default 0)")
    parser.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0)")
    parser.add_argument(
        "overrides",
        nargs="*",
        help="values masked as *** in the recorded config, supplied again: db_password=...",
    )
    args = parser.parse_intermixed_args(argv)
    try:
        check_tolerances(args.rtol, args.atol)
        return reproduce(
            args.run_dir, out=args.out, rtol=args.rtol, atol=args.atol, overrides=args.overrides
        )
    except CnnlabError as exc:
        print(f"cnnlab reproduce: error: {exc}", file=sys.stderr)
        return 2


def check_tolerances(rtol: float, atol: float) -> None:
    """Raise ConfigError unless both tolerances are finite and >= 0 (checked before re-running)."""
    for flag, value in (("--rtol", rtol), ("--atol", atol)):
        if not 0 <= value < math.inf:
            raise ConfigError(flag, f"must be a finite number >= 0, got {value}")


def read_composed_config(path: Path) -> dict[str, Any]:
    """Read the run's ``.hydra/config.yaml``; DataError naming it when it is not a config."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DataError(path, f"cannot read the run's composed config ({first_line(exc)})") from exc
    if not isinstance(config, dict) or not isinstance(config.get("trainer"), dict):
        raise DataError(path, "not a composed cnnlab training config (no trainer node)")
    return config


def reproduce(
    run_dir: Path,
    *,
    out: Path | None = None,
    rtol: float = 0.0,
    atol: float = 0.0,
    overrides: Sequence[str] = (),
) -> int:
    """Train ``run_dir``'s config again into ``out`` and print what differs; 0 when nothing.

    Secrets were masked (``***``) when the run was recorded; ``overrides`` supplies them
    again (``db_password=...``), and the re-run masks them in its own files.
    """
    from cnnlab.runs.reproduce import compare_metrics, load_run

    original = load_run(run_dir)
    config_dir = original.dir / ".hydra"
    if not (config_dir / "config.yaml").is_file():
        raise DataError(config_dir / "config.yaml", "missing: the run's composed config is needed")
    read_composed_config(config_dir / "config.yaml")
    _check_masked_supplied(config_dir / "config.yaml", overrides)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    out = (out or original.dir.parent / f"{original.dir.name}-reproduce-{stamp}").resolve()
    command = [
        sys.executable,
        "-m",
        "cnnlab",
        "train",
        f"--config-path={config_dir.resolve()}",
        "--config-name=config",
        f"hydra.run.dir={out}",
        "hydra.job.name=train",
        # The recorded config has no hydra node: mask this run's secrets as cnnlab's own does.
        "+hydra.callbacks.mask_private_values._target_=cnnlab.runs.scrub_hydra.ScrubSecrets",
        *overrides,
    ]
    print(f"reproducing {original.dir} into {out}", flush=True)
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        print(f"cnnlab reproduce: the re-run failed (exit {completed.returncode}); see {out}")
        return 1
    differences = compare_metrics(original.metrics, load_run(out).metrics, rtol=rtol, atol=atol)
    if differences:
        print("metrics differ:\n  " + "\n  ".join(differences))
        return 1
    print(f"metrics match: {len(original.metrics)} values (rtol={rtol}, atol={atol})")
    return 0


def _check_masked_supplied(config_file: Path, overrides: Sequence[str]) -> None:
    """Refuse to re-run while a value masked in the recorded config is not given again."""
    import yaml

    from cnnlab.errors import DataError
    from cnnlab.runs.scrub import masked_keys

    try:
        recorded = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DataError(config_file, f"cannot read the run's composed config ({exc})") from exc
    given = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    missing = [key for key in masked_keys(recorded) if key not in given]
    if missing:
        shown = " ".join(f"{key}=..." for key in missing)
        raise DataError(
            config_file,
            f"{', '.join(missing)} {'was' if len(missing) == 1 else 'were'} masked (***) when "
            "the run was recorded: secrets are never "
            f"written to disk; supply them again: cnnlab reproduce {config_file.parent.parent} "
            f"{shown}",
        )
