"""``cnnlab reproduce RUN_DIR``: re-run a training run from its folder and compare metrics.

The run's own composed config (``RUN_DIR/.hydra/config.yaml``) is trained again
in a fresh folder, so later changes to ``conf/`` do not change what is re-run.
Exit status 0 when ``metrics.json`` matches, 1 when it differs, 2 on bad input.

The run folder is data from anyone: its config is checked against cnnlab's allow-list
(:mod:`cnnlab.records.run_config`) and validated like a fresh run's before anything runs, and
the re-run composes that checked config from a fresh temporary folder, so nothing else in
the run folder (a ``hydra:`` node, other files beside ``config.yaml``) takes part.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.console import OneLineParser
from cnnlab.errors import CnnlabError, ConfigError, DataError, first_line, printable

if TYPE_CHECKING:
    from cnnlab.records.reproduce import RunRecord


def main(argv: list[str]) -> int:
    """Parse ``argv`` (``RUN_DIR [--out DIR] [--rtol R] [--atol A]``) and reproduce the run."""
    parser = OneLineParser(
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
        print(f"cnnlab reproduce: error: {printable(exc)}", file=sys.stderr)
        return 2


def check_tolerances(rtol: float, atol: float) -> None:
    """Raise ConfigError unless both tolerances are finite and >= 0 (checked before re-running)."""
    for flag, value in (("--rtol", rtol), ("--atol", atol)):
        if not 0 <= value < math.inf:
            raise ConfigError(flag, f"must be a finite number >= 0, got {value}")


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
    import yaml

    from cnnlab.records.reproduce import load_run
    from cnnlab.records.run_config import CONFIG_FILE, read_run_config

    original = load_run(run_dir)
    config_file = original.dir / CONFIG_FILE
    if not os.path.lexists(config_file):
        raise DataError(config_file, "missing: the run's composed config is needed")
    config = read_run_config(original.dir)
    _check_masked_supplied(config_file, config, overrides)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S_%f")
    out = (out or original.dir.parent / f"{original.dir.name}-reproduce-{stamp}").resolve()
    with tempfile.TemporaryDirectory(prefix="cnnlab-reproduce-") as checked:
        # The checked config, as the only file of a fresh config folder.
        config_dir = Path(checked)
        text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        (config_dir / "config.yaml").write_text(text, encoding="utf-8")
        _validate(config_dir, config_file, out, overrides)
        _create(out)
        return _rerun(original, config_dir, out, overrides, rtol=rtol, atol=atol)


def _rerun(
    original: RunRecord,
    config_dir: Path,
    out: Path,
    overrides: Sequence[str],
    *,
    rtol: float,
    atol: float,
) -> int:
    """Train the checked config in ``config_dir`` into ``out`` and compare the metrics."""
    from cnnlab.records.reproduce import compare_metrics, load_run

    command = [
        sys.executable,
        "-m",
        "cnnlab",
        "train",
        f"--config-path={config_dir}",
        "--config-name=config",
        f"hydra.run.dir={out}",
        "hydra.job.name=train",
        # The recorded config has no hydra node: mask this run's secrets as cnnlab's own does.
        "+hydra.callbacks.mask_private_values._target_=cnnlab.secrets.callback.ScrubSecrets",
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


def _validate(config_dir: Path, config_file: Path, out: Path, overrides: Sequence[str]) -> None:
    """Compose the checked config as the re-run will and run a fresh run's checks on it.

    Raises:
        ConfigError: An override cannot be applied, or ``--out`` cannot be a run folder.
        DataError: Naming the run's config and the key a fresh ``cnnlab train`` refuses.
    """
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from cnnlab.validation import task_config, validate_config

    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            composed = compose(
                "config", [*overrides, f"hydra.run.dir={out}"], return_hydra_config=True
            )
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError("overrides", f"cannot be applied ({first_line(exc)})") from None
    try:
        validate_config("train", task_config(composed, str(out)), str(out))
    except ConfigError as exc:
        if exc.key == "hydra.run.dir":
            raise ConfigError("--out", exc.message) from None
        raise DataError(config_file, str(exc)) from None


def _create(out: Path) -> None:
    """Create the re-run's folder now, so that one that cannot be is one line (exit 2)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("--out", f"cannot create {out} ({exc.strerror or exc})") from None


def _check_masked_supplied(
    config_file: Path, recorded: dict[str, Any], overrides: Sequence[str]
) -> None:
    """Refuse to re-run while a value masked in the recorded config is not given again."""
    from cnnlab.secrets.mask import masked_keys

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
