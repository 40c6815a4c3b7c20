"""Resume a run in its own folder: ``cnnlab train resume=<run folder>``.

A resumed run is the same run, continued. It uses the config the run was composed with
(``.hydra/config.yaml``), not a new composition of today's defaults, and its ``last.ckpt``.
Hydra writes nothing new into ``.hydra/`` (the original overrides stay), the job log and
``metrics.csv`` are appended to, and ``run.json`` keeps every start in ``starts``.

Further overrides are accepted only when they change nothing, or for the keys of
:data:`SAFE_CHANGES` within their rule (``trainer.max_epochs`` upward, when the learning-rate
schedule does not depend on the number of epochs). The older form
``cnnlab train ckpt_path=last hydra.run.dir=<run folder>`` means the same.

The folder is data from anyone (see :mod:`cnnlab.records.run_config`): before anything is
built or written, its config is checked against cnnlab's allow-list of targets and
validated like a fresh run's, ``run.json`` is type-checked, and a folder whose files or
subfolders the run writes are links (or fifos, devices) is refused, since appending to
``train.log`` or saving ``checkpoints/`` would write wherever they point.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from cnnlab.config import to_dict
from cnnlab.errors import CnnlabError, ConfigError, DataError
from cnnlab.records.recorder import previous_record
from cnnlab.records.reproduce import read_overrides
from cnnlab.records.run_config import CONFIG_FILE, read_run_config, validate_run_config

__all__ = ["SAFE_CHANGES", "Resume", "resume_arguments", "resume_run"]

RESUME_KEY = "resume"
LAST_CHECKPOINT = Path("checkpoints") / "last.ckpt"
# Folders of a run whose entries a resumed start writes or appends to ("." is the run folder:
# the job log, metrics.csv, run.json, hparams.yaml, plots).
WRITTEN_FOLDERS = (".", ".hydra", "checkpoints", "tensorboard")

# Keys a resumed run may change, and why each is safe.
SAFE_CHANGES = {
    "trainer.max_epochs": "train longer: upward only, with a schedule that ignores the length",
    "test": "whether to test the best checkpoint at the end",
}
# Schedules whose shape is fixed by the number of epochs when training starts: a longer
# resumed run would restart them (a cosine that reached 0 climbs back up).
LENGTH_BOUND_SCHEDULES = ("cosine", "onecycle")


@dataclass
class Resume:
    """What a resumed start continues from.

    Attributes:
        folder: The run folder.
        config: The run's own composed config, with the accepted changes applied.
        checkpoint: ``checkpoints/last.ckpt`` of the run.
        original_overrides: The overrides the run was started with.
        record: The run's ``run.json`` (type-checked; empty when it had none).
        overrides: The overrides of this resume command (besides ``resume=``).
        changes: ``{key: [old, new]}`` for each value this resume changed.
    """

    folder: Path
    config: DictConfig
    checkpoint: Path
    original_overrides: list[str]
    record: dict[str, Any] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    changes: dict[str, list[Any]] = field(default_factory=dict)


def resume_arguments(task: str, args: Sequence[str]) -> list[str]:
    """Turn ``resume=<folder>`` (or ``ckpt_path=last hydra.run.dir=<folder>``) into Hydra's args.

    The run folder becomes Hydra's run folder, with ``hydra.output_subdir=null`` so that its
    ``.hydra/`` files stay those of the run. Other arguments are kept for
    :func:`resume_run` to check. Exits with one line when the folder cannot be resumed.
    """
    args = list(args)
    if task != "train":
        return args
    values = dict(arg.split("=", 1) for arg in args if "=" in arg)
    if RESUME_KEY in values:
        folder = values[RESUME_KEY]
    elif values.get("ckpt_path") == "last" and "hydra.run.dir" in values:
        folder = values["hydra.run.dir"]
    else:
        return args
    try:
        run_dir = check_resumable(Path(folder), multirun=bool({"-m", "--multirun"} & set(args)))
    except CnnlabError as exc:
        print(f"cnnlab train: error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    dropped = (f"{RESUME_KEY}=", "ckpt_path=last", "hydra.run.dir=", "hydra.output_subdir=")
    kept = [arg for arg in args if not arg.startswith(dropped)]
    return [
        *kept,
        f"{RESUME_KEY}={run_dir}",
        f"hydra.run.dir={run_dir}",
        "hydra.output_subdir=null",
    ]


def check_resumable(folder: Path, *, multirun: bool = False) -> Path:
    """Return ``folder`` made absolute if it is a run folder that can be resumed safely.

    Called before Hydra starts (which appends to the folder's job log), and again by
    :func:`resume_run`: the folder's files are checked, not trusted.

    Raises:
        ConfigError: With ``-m``.
        DataError: Naming the file: no run folder, no last checkpoint, a link among the
            files it writes, or a config, ``overrides.yaml`` or ``run.json`` it refuses.
    """
    if multirun:
        raise ConfigError(RESUME_KEY, "resumes one run folder; it does not combine with -m")
    folder = _check_folder(folder)
    _read_folder(folder)
    return folder


def _check_folder(folder: Path) -> Path:
    """``folder`` made absolute: a run folder with a last checkpoint and no links."""
    if not folder.is_dir():
        raise DataError(folder, "resume: no such run folder")
    folder = folder.resolve()
    _refuse_links(folder)
    if not os.path.lexists(folder / CONFIG_FILE):
        raise DataError(folder, f"resume: not a run folder (no {CONFIG_FILE})")
    if not os.path.lexists(folder / LAST_CHECKPOINT):
        raise DataError(
            folder / LAST_CHECKPOINT, "resume: the run saved no checkpoint yet; start it anew"
        )
    return folder


def _refuse_links(folder: Path) -> None:
    """Refuse a run folder where an entry a resumed start writes is not a file or a folder.

    A link would be followed: ``train.log`` appended into ``~/.bashrc``, checkpoints saved
    into a linked ``checkpoints/``. A fifo would block. A job log with other hard links
    would be appended to wherever they are.
    """
    for name in WRITTEN_FOLDERS:
        base = folder / name
        if name != "." and not base.is_dir():
            continue  # a link here was refused when the run folder's entries were checked
        with os.scandir(base) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                path = Path(entry.path)
                if stat.S_ISLNK(info.st_mode):
                    raise DataError(
                        path,
                        "resume: a symbolic link in the run folder; a resumed run writes "
                        "here and follows no links (nothing was written)",
                    )
                if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                    raise DataError(path, "resume: a fifo, socket or device, not a run file")
                if name == "." and path.suffix == ".log" and info.st_nlink > 1:
                    raise DataError(
                        path, "resume: the job log has other hard links; it would be appended"
                    )


def _read_folder(folder: Path) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """The folder's checked config, original overrides and ``run.json``."""
    return read_run_config(folder), read_overrides(folder), previous_record(folder)


def resume_run(cfg: DictConfig) -> Resume | None:
    """The run's own config and checkpoint when ``cfg.resume`` names a run folder, else None.

    The folder's config is checked against cnnlab's allow-list and validated like a fresh
    run's config before anything is built from it.

    Raises:
        ConfigError: For an override that would change the run (naming its key).
        DataError: Naming the run folder's file (and key) that cannot be used.
    """
    from omegaconf.errors import OmegaConfBaseException

    if cfg.get(RESUME_KEY) is None:
        return None
    folder = _check_folder(Path(str(cfg[RESUME_KEY])))
    data, original, record = _read_folder(folder)
    try:
        config = OmegaConf.create(data)
    except OmegaConfBaseException as exc:
        raise DataError(folder / CONFIG_FILE, f"resume: not a config ({exc})") from None
    validate_run_config(folder / CONFIG_FILE, config)
    resume = Resume(folder, config, folder / LAST_CHECKPOINT, original, record)
    for key, text in _own_overrides():
        resume.overrides.append(text)
        _apply(resume, key, cfg)
    if record.get("status") == "completed" and "trainer.max_epochs" not in resume.changes:
        raise DataError(
            folder,
            "resume: the run completed; resume it with a higher trainer.max_epochs to train longer",
        )
    with open_dict(config):
        # The resumed run records what it was started with; this start is in run.json's starts.
        config[RESUME_KEY] = None
    return resume


def _apply(resume: Resume, key: str, composed: DictConfig) -> None:
    new = to_dict(OmegaConf.select(composed, key))
    old = to_dict(OmegaConf.select(resume.config, key))
    if new == old:
        return
    if key not in SAFE_CHANGES:
        allowed = ", ".join(SAFE_CHANGES)
        raise ConfigError(
            key,
            f"resuming {resume.folder} cannot change it (the run has {old!r}); "
            f"a resumed run may change only: {allowed}",
        )
    if key == "trainer.max_epochs":
        _check_more_epochs(resume.config, old, new)
    OmegaConf.update(resume.config, key, new, merge=False)
    resume.changes[key] = [old, new]


def _check_more_epochs(config: DictConfig, old: Any, new: Any) -> None:
    if not isinstance(new, int) or isinstance(new, bool) or (new < old and new != -1):
        raise ConfigError("trainer.max_epochs", f"a resumed run only trains longer: {old} -> {new}")
    schedule = OmegaConf.select(config, "scheduler.name")
    if schedule in LENGTH_BOUND_SCHEDULES:
        raise ConfigError(
            "trainer.max_epochs",
            f"the run's {schedule} schedule was made for {old} epochs and would restart "
            f"if resumed for {new}; resume with the same max_epochs",
        )


def _own_overrides() -> list[tuple[str, str]]:
    """This command's task overrides other than ``resume=``, as ``(key, text)``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser

    if not HydraConfig.initialized():
        return []
    texts = [t for t in HydraConfig.get().overrides.task if not t.startswith(f"{RESUME_KEY}=")]
    pairs = []
    for text, override in zip(texts, OverridesParser.create().parse_overrides(texts), strict=True):
        if override.is_delete() or override.package is not None:
            raise ConfigError(override.key_or_group, "cannot be deleted or moved on resume")
        pairs.append((override.key_or_group, text))
    return pairs
