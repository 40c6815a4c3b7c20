"""Where the Hydra config tree lives.

Kept free of heavy imports: the CLI imports this before any task runs.
"""

from __future__ import annotations

from pathlib import Path


def config_dir() -> Path:
    """Return the folder holding ``train.yaml`` and the config groups.

    A wheel ships the tree inside the package (``cnnlab/conf``); a source checkout
    (editable install) keeps it at the repository's top level.
    """
    packaged = Path(__file__).resolve().parent / "conf"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "conf"
