"""Where the Hydra config tree lives, its own resolver, and config nodes as plain values.

Kept free of heavy imports: the CLI imports this before any task runs. :func:`to_dict` is
the one converter of config nodes into plain values, :func:`plain` the one for values
that may hold config nodes anywhere inside. Importing it registers
``${cnnlab.cwd:}`` (``cnnlab/__init__.py`` imports it, so every process that runs cnnlab's
code has it: the CLI, joblib's workers, tests).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# `${cnnlab.cwd:}` in conf/paths/default.yaml: the folder the command was started in.
CWD_RESOLVER = "cnnlab.cwd"
# `${cnnlab.class_folders:ROOT}` in conf/data/imagefolder.yaml: the classes under ROOT/train.
CLASS_FOLDERS_RESOLVER = "cnnlab.class_folders"
# `${cnnlab.run_stamp:FORMAT}` in conf/hydra/default.yaml: the run folder's name.
STAMP_RESOLVER = "cnnlab.run_stamp"


def config_dir() -> Path:
    """Return the folder holding ``train.yaml`` and the config groups.

    A wheel ships the tree inside the package (``cnnlab/conf``); a source checkout
    (editable install) keeps it at the repository's top level.
    """
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"


def to_dict(node: Any) -> Any:
    """Resolve a config node into plain Python containers (anything else is returned as is)."""
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def plain(value: Any) -> Any:
    """``value`` with mappings and sequences (OmegaConf's too) as plain dicts and lists.

    Example:
        >>> plain((1, {"a": [2]}))
        [1, {'a': [2]}]
    """
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(item) for item in value]
    return value


def launch_folder() -> str:
    """The folder the command was started in (``${cnnlab.cwd:}``).

    Unlike ``${hydra:runtime.cwd}`` it resolves without Hydra's config: the sweeper, the
    validation before a run and Hydra's own sweep folder read it before any job sets that
    config. Inside a job it is Hydra's ``runtime.cwd``, which stays the launch folder even
    where a job changes folder (``hydra.job.chdir=true``).
    """
    from hydra.core.hydra_config import HydraConfig

    if HydraConfig.initialized():
        cwd = HydraConfig.get().runtime.cwd
        if cwd:
            return str(cwd)
    return os.getcwd()


def class_folders(root: str) -> int:
    """The number of class folders in ``root/train`` (``${cnnlab.class_folders:ROOT}``).

    An image folder data set names its classes by its folders: ``data.num_classes`` (which
    the model reads before any image is) counts them instead of asking the user to.
    Counted as :class:`cnnlab.data.sources.ImageFolderSource` lists them (every sub-folder),
    which checks them again when it loads.

    Raises:
        DataError: ``root/train`` is not a folder.
    """
    from cnnlab.errors import DataError

    train = Path(root).expanduser() / "train"
    if not train.is_dir():
        raise DataError(train, "folder not found; expected root/train/<class>/<images>")
    return sum(1 for p in train.iterdir() if p.is_dir())


def run_stamp(pattern: str) -> str:
    """The run folder's name: the start time in ``pattern``; one name for a SLURM step's tasks.

    ``srun`` starts every task of a multi-task step (DDP launched by SLURM) at once, and each
    composes its own config: start times would give each task its own folder. Those tasks
    share ``slurm-<job id>.<step id>`` instead (Lightning's own DDP launcher passes its ranks
    the run folder instead).
    """
    from datetime import datetime

    tasks = os.environ.get("SLURM_STEP_NUM_TASKS", "1")
    if tasks.isdigit() and int(tasks) > 1 and "SLURM_STEP_ID" in os.environ:
        return f"slurm-{os.environ.get('SLURM_JOB_ID', 'job')}.{os.environ['SLURM_STEP_ID']}"
    return datetime.now().strftime(pattern)


def register_resolvers() -> None:
    """Register cnnlab's resolvers with OmegaConf, once per process."""
    if not OmegaConf.has_resolver(CWD_RESOLVER):
        OmegaConf.register_new_resolver(CWD_RESOLVER, launch_folder)
    if not OmegaConf.has_resolver(CLASS_FOLDERS_RESOLVER):
        OmegaConf.register_new_resolver(CLASS_FOLDERS_RESOLVER, class_folders)
    if not OmegaConf.has_resolver(STAMP_RESOLVER):
        # Cached, as Hydra's ${now:}: one name however often the run folder is resolved.
        OmegaConf.register_new_resolver(STAMP_RESOLVER, run_stamp, use_cache=True)


register_resolvers()
