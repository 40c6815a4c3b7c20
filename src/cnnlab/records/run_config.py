"""A run folder's composed config (``.hydra/config.yaml``), read as data from anyone.

``cnnlab train resume=<folder>`` and ``cnnlab reproduce <folder>`` build a run from the
config saved in the folder, which may be a colleague's, an unpacked archive or a shared
outputs folder. Building it means handing its ``_target_`` strings to Hydra's
``instantiate``, so the file is checked first, the same way a checkpoint is
(:func:`cnnlab.lit.checkpoint.allowed_targets`, one allow-list for both):

- read through :mod:`cnnlab.files.read` (a regular file, no links, bounded; no alias bomb);
- every ``_target_`` (and ``_partial_``) only where cnnlab's own config tree has one, and
  only one of cnnlab's own; no other Hydra instruction (``_args_``, ``_recursive_``, ...);
- interpolations only between the config's own keys and through the resolvers Hydra and
  cnnlab's tree use (``hydra``, ``cnnlab.cwd``, ``cnnlab.class_folders``, ``oc.select``, and
  ``oc.env`` of cnnlab's own folders: any other variable could be a secret, written into
  ``run.json`` by the run);
- no ``hydra`` or ``defaults`` node: a composed task config has neither, and Hydra would act
  on them when the file is composed again (``cnnlab reproduce``).

Then :func:`validate_run_config` runs the checks a fresh ``cnnlab train`` runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

from cnnlab.errors import ConfigError, DataError

__all__ = [
    "CONFIG_FILE",
    "ENV_VARIABLES",
    "RESOLVERS",
    "interpolation_problem",
    "read_run_config",
    "validate_run_config",
]

CONFIG_FILE = Path(".hydra") / "config.yaml"
# The resolvers cnnlab's config tree uses in a task's config; Hydra's `now` only names folders.
# cnnlab.class_folders only counts the sub-folders of the data's train/ (imagefolder).
RESOLVERS = ("hydra", "cnnlab.cwd", "cnnlab.class_folders", "oc.select", "oc.env")
# The environment variables cnnlab's tree reads (paths.data_dir, paths.output_root).
ENV_VARIABLES = ("CNNLAB_DATA", "CNNLAB_OUTPUTS")
# Top-level keys Hydra acts on when a file is composed; never in a saved task config.
FOREIGN_KEYS = ("hydra", "defaults")
# A composed config holds a few hundred values; what cnnlab.files.read accepts (a million,
# aliases expanded) would take OmegaConf minutes to build.
MAX_VALUES = 20_000
WHAT = "a run's config"
# Arguments of the allowed targets that name the folder they write in (a checkpoint's
# `filename` must then be a plain name), and the places they may name.
WRITE_KEYS = ("dirpath", "save_dir", "default_root_dir", "artifact_location", "tracking_uri")
WRITE_PLACES = ("${paths.run_dir}", "${paths.output_root}", "sqlite:///${paths.output_root}")
# Where runs write: Hydra's job folder and $CNNLAB_OUTPUTS, as cnnlab's tree composes them
# (conf/paths/default.yaml), resolved on this machine. paths.data_dir is only read.
WRITE_ROOTS = ("run_dir", "output_root")
# Values earlier releases of conf/paths/default.yaml shipped: their run folders still resume.
EARLIER_PATHS = {"output_root": ("${oc.env:CNNLAB_OUTPUTS,${hydra:runtime.cwd}/outputs}",)}


def read_run_config(folder: Path) -> dict[str, Any]:
    """Read and check ``folder/.hydra/config.yaml``; plain containers, nothing resolved.

    Raises:
        DataError: Naming the file (and the key): unreadable, a link, not a training
            config, or beyond the allow-list.
    """
    from cnnlab.files.read import read_yaml
    from cnnlab.lit.checkpoint import check_targets, rename_targets

    path = folder / CONFIG_FILE
    data = read_yaml(CONFIG_FILE, inside=folder)
    if not isinstance(data, dict) or not isinstance(data.get("trainer"), dict):
        raise DataError(path, "not a composed cnnlab training config (no trainer node)")
    if next(islice(_nodes(data), MAX_VALUES, None), None) is not None:
        raise DataError(path, f"holds more than {MAX_VALUES:,} values; not a composed config")
    for key in FOREIGN_KEYS:
        if key in data:
            raise DataError(
                path, f"{key}: a run's composed config has no {key!r} node; nothing was run"
            )
    rename_targets(data)  # a folder written by an older cnnlab
    check_targets(path, data, what=WHAT, interpolation=interpolation_problem, error=DataError)
    _check_write_places(path, data)
    _no_downloads(data)
    return data


def _check_write_places(path: Path, data: dict[str, Any]) -> None:
    """Refuse a config that would write anywhere but the run folder and cnnlab's outputs.

    The allowed targets write where their arguments say (a checkpoint callback's
    ``dirpath`` and ``filename``, a logger's ``save_dir``, MLflow's store); in cnnlab's tree
    each of those is an interpolation of ``paths.run_dir`` or ``paths.output_root``, and
    those two are Hydra's job folder and ``$CNNLAB_OUTPUTS``.
    """
    from cnnlab.config import config_dir
    from cnnlab.files.read import read_yaml

    shipped_paths = read_yaml(config_dir() / "paths" / "default.yaml")
    paths = data.get("paths")
    for key in WRITE_ROOTS:
        value, shipped = paths.get(key) if isinstance(paths, dict) else None, shipped_paths[key]
        if value != shipped and value not in EARLIER_PATHS.get(key, ()):
            raise DataError(
                path, f"paths.{key}: {value!r} is not cnnlab's own ({shipped!r}); nothing was run"
            )
    for key, value in _nodes(data):
        if not isinstance(value, str):
            continue
        name = key.rsplit(".", 1)[-1]
        if name in WRITE_KEYS and (not value.startswith(WRITE_PLACES) or ".." in value):
            raise DataError(
                path,
                f"{key}: {value!r} would write outside the run folder and cnnlab's outputs "
                f"(it must start with {' or '.join(WRITE_PLACES[:2])}); nothing was run",
            )
        if name == "filename" and ("/" in value or "\\" in value or value.startswith(".")):
            raise DataError(path, f"{key}: {value!r} is not a plain file name; nothing was run")


def _no_downloads(data: dict[str, Any]) -> None:
    """A folder's data node reads data but never downloads it (its mirrors could be anyone's).

    ``cnnlab reproduce RUN data.source.download=true`` downloads again, by the user's choice.
    """
    source = data.get("data", {}).get("source") if isinstance(data.get("data"), dict) else None
    if isinstance(source, dict) and source.get("download"):
        source["download"] = False


def _nodes(data: Any) -> Iterator[tuple[str, Any]]:
    """``(dotted key, value)`` of every value in a plain config, parents first, in file order.

    Lazy, so that counting can stop early: an alias-expanded file may hold a million values.
    """
    stack: list[tuple[str, Any, Any]] = [("", "", data)]
    while stack:
        parent, name, value = stack.pop()
        key = f"{parent}.{name}" if parent else str(name)
        yield key, value
        if isinstance(value, dict | list):
            items = value.items() if isinstance(value, dict) else enumerate(value)
            stack.extend(reversed([(key, child, v) for child, v in items]))


def interpolation_problem(key: str, text: str) -> str | None:
    """Why the interpolations in ``text`` are not accepted in a run's config; None if they are."""
    from omegaconf import grammar_parser
    from omegaconf.errors import GrammarParseError

    try:
        tree = grammar_parser.parse(text)
    except GrammarParseError:
        return "not a valid interpolation"
    for name, arguments in _resolvers(tree):
        if name not in RESOLVERS:
            return (
                f"the resolver {name!r} is not accepted in {WHAT} "
                f"(only {', '.join(RESOLVERS)}); nothing was run"
            )
        if name == "oc.env" and (not arguments or arguments[0] not in ENV_VARIABLES):
            variable = arguments[0] if arguments else ""
            return (
                f"oc.env may read only {' or '.join(ENV_VARIABLES)} in {WHAT}, "
                f"not {variable!r}; nothing was run"
            )
    return None


def _resolvers(tree: Any) -> list[tuple[str, list[str]]]:
    """``(resolver name, argument texts)`` of every resolver call in a parsed value."""
    from omegaconf.grammar.gen.OmegaConfGrammarParser import OmegaConfGrammarParser as Parser

    found, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, Parser.InterpolationResolverContext):
            sequence = node.sequence()
            arguments = [e.getText() for e in sequence.element()] if sequence else []
            found.append((node.resolverName().getText(), arguments))
        stack.extend(node.getChildren() if hasattr(node, "getChildren") else ())
    return found


def validate_run_config(path: Path, cfg: Any) -> None:
    """Run the checks of a fresh ``cnnlab train`` on a run folder's config.

    Raises:
        DataError: Naming the file and the key, e.g. ``.../config.yaml: trainer.max_epochs:
            must be ...``.
    """
    from cnnlab.validation import validate_config

    try:
        validate_config("train", cfg)
    except ConfigError as exc:
        raise DataError(path, str(exc)) from exc
