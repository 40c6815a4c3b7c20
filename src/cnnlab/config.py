"""Where the Hydra config tree lives, and config nodes as plain values.

Kept free of heavy imports: the CLI imports this before any task runs. :func:`to_dict` is
the one converter of config nodes into plain values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


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
