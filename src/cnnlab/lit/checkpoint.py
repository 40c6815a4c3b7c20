"""Reading checkpoints, which may come from anyone, without running anything they name.

``torch.load(weights_only=True)`` refuses pickled code, but a cnnlab checkpoint also
holds its hyperparameters: config nodes whose ``_target_`` strings Hydra's
``instantiate`` would import and call. A crafted file naming ``numpy.savetxt`` or
``builtins.open`` would run it. So a checkpoint is checked before anything is built
from it: the only targets it may name are cnnlab's own model builder (with a
registered model name), cnnlab's data module and data sources, ``torch.optim``
optimizers, and the model builders and data sources that installed packages register in
the entry point groups ``cnnlab.models`` and ``cnnlab.data_sources``, each in its own
place; no interpolation (``${...}``) and no other Hydra instruction (``_args_``,
``_recursive_``, ...) is accepted anywhere. The same allow-list (:func:`allowed_targets`,
derived from cnnlab's own config tree) checks the composed config of a run folder before
``resume=`` or ``cnnlab reproduce`` builds it. The network is then built from those
checked values and the weights are loaded after their names and shapes are compared, so
every failure is one line naming the file and the key.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CheckpointError, CnnlabError, ConfigError, DataError, first_line, show

if TYPE_CHECKING:
    from torch import nn

    from cnnlab.lit.module import ImageClassifier

__all__ = [
    "ENTRY_POINT_GROUPS",
    "RENAMED_TARGETS",
    "Allowed",
    "allowed_targets",
    "check_callback_paths",
    "check_checkpoint_matches",
    "check_hyperparameters",
    "check_targets",
    "checkpoint_path",
    "data_config",
    "load_classifier",
    "read_checkpoint",
    "registered_targets",
    "rename_targets",
]

# Keys Hydra's instantiate acts on; a checkpoint or a run folder's config may use them only
# where cnnlab's own config tree does (allowed_targets).
_HYDRA_KEYS = ("_target_", "_args_", "_recursive_", "_convert_", "_partial_")
_HPARAMS = "hyper_parameters"
# Entry point groups in which an installed package registers its own builders, by the place
# of the config node that names them: a user's model or data source (registered_targets).
ENTRY_POINT_GROUPS = {"model": "cnnlab.models", "data.source": "cnnlab.data_sources"}
# cnnlab's own model builder, which builds the registered model ``name``.
_OWN_BUILDERS = ("cnnlab.models.build_model", "cnnlab.models.registry.build_model")
# Targets cnnlab's config tree once named and names differently now, old -> new: a run folder
# written before still resumes and reproduces (its config is rewritten before it is checked).
RENAMED_TARGETS = {
    # Lightning's own callbacks replaced these subclasses; their checkpoint state keys are the
    # same (built from the class name and settings).
    "cnnlab.lit.monitors.ModelCheckpoint": "pytorch_lightning.callbacks.ModelCheckpoint",
    "cnnlab.lit.monitors.EarlyStopping": "pytorch_lightning.callbacks.EarlyStopping",
}


def checkpoint_path(value: Any) -> Path:
    """Return ``ckpt_path`` as a path; an empty value is a :class:`ConfigError`."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise ConfigError("ckpt_path", "is empty; give the path of a .ckpt file")
    return Path(text)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint (``state_dict``, ``hyper_parameters``, ...) without running code, and
    check that it names nothing but cnnlab's own builders.

    Raises:
        ConfigError: ``ckpt_path`` is empty.
        CheckpointError: Naming the file (and the key): missing, a folder, unreadable, not a
            cnnlab checkpoint, or hyperparameters naming something cnnlab does not build.
    """
    import torch

    path = checkpoint_path(path)
    if path.is_dir():
        raise CheckpointError(path, "ckpt_path names a folder, not a checkpoint file")
    if not path.exists():
        raise CheckpointError(path, "no such checkpoint file")
    if not path.is_file():  # a pipe or device would block or never end
        raise CheckpointError(path, "not a regular file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as exc:
        raise CheckpointError(path, f"cannot read the checkpoint ({exc.strerror or exc})") from exc
    except Exception as exc:  # any parse failure of a corrupt file: IndexError, KeyError, ...
        raise CheckpointError(path, f"not a loadable checkpoint ({first_line(exc)})") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(path, "not a Lightning checkpoint (no state_dict)")
    hparams = checkpoint.get(_HPARAMS)
    if not isinstance(hparams, dict) or not isinstance(hparams.get("model"), dict):
        raise CheckpointError(path, "not a cnnlab checkpoint (no model hyperparameters)")
    check_hyperparameters(path, hparams)
    check_callback_paths(path, checkpoint.get("callbacks"))
    return checkpoint


def check_hyperparameters(path: str | Path, hparams: Mapping[str, Any]) -> None:
    """Refuse hyperparameters that would make cnnlab import or call anything of theirs: a
    :class:`CheckpointError` naming the first offending key (``hyper_parameters.model._target_``).
    """
    from cnnlab.lit.module import ImageClassifier
    from cnnlab.models import list_models

    known = [p for p in inspect.signature(ImageClassifier.__init__).parameters if p != "self"]
    for key in hparams:
        if key not in known:
            raise CheckpointError(path, f"{_HPARAMS}.{key}: not an ImageClassifier argument")
    check_targets(path, hparams, prefix=_HPARAMS)
    name = hparams["model"].get("name")
    target = hparams["model"].get("_target_")
    # Past check_targets, another target is a builder a package registered (registered_targets),
    # which takes arguments of its own.
    users = isinstance(target, str) and target not in _OWN_BUILDERS
    if not users and name not in list_models():
        raise CheckpointError(
            path, f"{_HPARAMS}.model.name: {name!r} is not a registered cnnlab model"
        )


# Paths a ModelCheckpoint state holds; Lightning reloads them on resume and may load
# (best_model_path, for the final test) or delete (older top-k) the files they name.
_CHECKPOINT_PATHS = ("best_model_path", "last_model_path", "kth_best_model_path")


def check_callback_paths(path: str | Path, callbacks: Any) -> None:
    """Refuse checkpoint-callback states that name files outside their own folder."""
    if not isinstance(callbacks, Mapping):
        return
    for name, state in callbacks.items():
        if not isinstance(state, Mapping) or "dirpath" not in state:
            continue
        folder = Path(str(state["dirpath"]))
        named = [(f"{key}", state.get(key)) for key in _CHECKPOINT_PATHS]
        named += [("best_k_models", k) for k in state.get("best_k_models") or {}]
        for key, value in named:
            if value and not _inside(Path(str(value)), folder):
                raise CheckpointError(
                    path,
                    f"callbacks[{name!r}].{key}: {str(value)!r} lies outside the checkpoint "
                    f"folder {str(folder)!r}",
                )


def _inside(path: Path, folder: Path) -> bool:
    # Lexical on purpose: the files need not exist here, and ".." must not count as inside.
    return ".." not in path.parts and path.is_relative_to(folder)


# Config nodes that hold several named objects of one kind: a target allowed for one
# callback (``callbacks.model_checkpoint``) is allowed for any (``callbacks.*``).
_COLLECTIONS = ("callbacks", "logger", "hydra.callbacks")


@dataclass(frozen=True)
class Allowed:
    """What a config from elsewhere may ask Hydra's ``instantiate`` to do, and where.

    Attributes:
        targets: Place (``model``, ``data.source``, ``callbacks.*``, ...) to the targets
            cnnlab's own configs name there.
        instructions: Place to the other Hydra keys used there (``_partial_``) and their
            accepted values.
    """

    targets: Mapping[str, frozenset[str]]
    instructions: Mapping[str, Mapping[str, frozenset[Any]]]


@functools.cache
def allowed_targets() -> Allowed:
    """The one allow-list for checkpoints and run folders' configs.

    Derived from the shipped config tree (every ``_target_`` of ``conf/**.yaml``, keyed by
    where it appears), plus what cnnlab builds that a config may name without the tree
    listing it: every registered data source and every ``torch.optim`` optimizer, by
    package and by module path (``Source.config()`` writes the module path).
    """
    import torch

    from cnnlab.data import sources

    targets, instructions = _shipped_targets()
    source_classes = [
        cls
        for cls in vars(sources).values()
        if inspect.isclass(cls) and issubclass(cls, sources.Source) and not inspect.isabstract(cls)
    ]
    optimizers = [
        name
        for name in torch.optim.__all__
        if inspect.isclass(cls := getattr(torch.optim, name, None))
        and issubclass(cls, torch.optim.Optimizer)
        and cls is not torch.optim.Optimizer
    ]
    extra = {
        "model": set(_OWN_BUILDERS),
        "data": {"cnnlab.data.ImageDataModule", "cnnlab.data.datamodule.ImageDataModule"},
        "data.source": {f"cnnlab.data.sources.{c.__name__}" for c in source_classes}
        | {f"{c.__module__}.{c.__qualname__}" for c in source_classes},
        "optimizer": {f"torch.optim.{name}" for name in optimizers},
    }
    for place, names in [*extra.items(), *registered_targets().items()]:
        targets.setdefault(place, set()).update(names)
    return Allowed(
        {place: frozenset(names) for place, names in targets.items()},
        {
            place: {key: frozenset(values) for key, values in keys.items()}
            for place, keys in instructions.items()
        },
    )


def registered_targets() -> dict[str, set[str]]:
    """The builders installed packages register for their users' configs, by place.

    A package lists a model builder in the entry point group ``cnnlab.models`` and a data
    source class in ``cnnlab.data_sources`` (``ENTRY_POINT_GROUPS``); the entry point's object
    reference (``mynet:build``) becomes the target a config names (``mynet.build``). Only the
    installed packages' metadata is read: nothing is imported until a config that names the
    target is built.
    """
    from importlib.metadata import entry_points

    found: dict[str, set[str]] = {}
    for place, group in ENTRY_POINT_GROUPS.items():
        for entry in entry_points(group=group):
            # "pkg.mod:attr.sub [extra]" -> "pkg.mod.attr.sub"
            reference = entry.value.split("[", 1)[0].strip()
            found.setdefault(place, set()).add(reference.replace(":", "."))
    return found


def _shipped_targets() -> tuple[dict[str, set[str]], dict[str, dict[str, set[Any]]]]:
    """Every Hydra key of ``conf/**.yaml`` by the place of its node in a composed config."""
    import yaml

    from cnnlab.config import config_dir

    root = config_dir()
    targets: dict[str, set[str]] = {}
    instructions: dict[str, dict[str, set[Any]]] = {}
    for file in sorted(root.rglob("*.yaml")):
        text = file.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            continue
        stack: list[tuple[str, Any]] = [(_package(file, root, text), data)]
        while stack:
            key, node = stack.pop()
            if not isinstance(node, dict):
                continue
            for name, value in node.items():
                if name == "defaults" and not key:
                    continue
                if name == "_target_":
                    targets.setdefault(_place(key), set()).add(value)
                elif name in _HYDRA_KEYS:
                    instructions.setdefault(_place(key), {}).setdefault(name, set()).add(value)
                else:
                    stack.append((f"{key}.{name}" if key else str(name), value))
    return targets, instructions


def _package(file: Path, root: Path, text: str) -> str:
    """Where Hydra puts a config file's content: its ``# @package`` or its group's path."""
    for line in text.splitlines():
        if line.startswith("# @package"):
            package = line.split(maxsplit=2)[2].strip()
            return "" if package == "_global_" else package
    return ".".join(file.relative_to(root).parent.parts)


def _place(key: str) -> str:
    """The allow-list's key for the node at dotted ``key``: ``callbacks.x`` -> ``callbacks.*``."""
    for collection in _COLLECTIONS:
        rest = key.removeprefix(f"{collection}.")
        if rest != key and "." not in rest:
            return f"{collection}.*"
    return key


def rename_targets(node: Any) -> None:
    """Give each ``_target_`` in ``node`` (plain containers) its new name (``RENAMED_TARGETS``)."""
    stack = [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            target = value.get("_target_")
            if isinstance(target, str) and target in RENAMED_TARGETS:
                value["_target_"] = RENAMED_TARGETS[target]
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def check_targets(
    path: str | Path,
    node: Any,
    *,
    prefix: str = "",
    what: str = "a checkpoint",
    interpolation: Callable[[str, str], str | None] | None = None,
    error: type[DataError] = CheckpointError,
) -> None:
    """Raise ``error`` naming ``path`` and the key where ``node`` (plain containers, read from
    ``path``, a file of kind ``what``) goes beyond the allow-list.

    Args:
        prefix: The dotted key of ``node`` in the file (``hyper_parameters``), not part of
            the place a target is looked up by.
        interpolation: ``(key, text) -> problem or None`` for a string holding ``${``;
            without it every interpolation is refused.
    """
    stack: list[tuple[tuple[str, ...], Any]] = [((), node)]
    while stack:
        parts, value = stack.pop()
        key = ".".join(filter(None, (prefix, *parts)))
        if isinstance(value, str):
            if "${" in value:
                problem = (
                    interpolation(key, value)
                    if interpolation is not None
                    else "interpolations (${...}) are not accepted"
                )
                if problem is not None:
                    raise error(path, f"{key}: {problem}")
        elif isinstance(value, list | tuple):
            last = parts[-1] if parts else ""
            stack.extend(((*parts[:-1], f"{last}[{i}]"), v) for i, v in enumerate(value))
        elif isinstance(value, Mapping):
            place = _place(".".join(parts))
            for name, child in value.items():
                if not isinstance(name, str):
                    raise error(path, f"{key}.{name}: keys must be strings")
                if name in _HYDRA_KEYS:
                    _check_instruction(path, f"{key}.{name}", place, name, child, what, error)
                else:
                    stack.append(((*parts, name), child))


def _check_instruction(
    path: str | Path,
    key: str,
    place: str,
    name: str,
    value: Any,
    what: str,
    error: type[DataError],
) -> None:
    allowed = allowed_targets()
    if name == "_target_":
        if place not in allowed.targets:
            raise error(path, f"{key}: {what} cannot name a target here; nothing was run")
        if not isinstance(value, str) or value not in allowed.targets[place]:
            group = ENTRY_POINT_GROUPS.get(place)
            registered = f" nor registered in the entry point group {group}" if group else ""
            raise error(
                path,
                f"{key}: {show(value)} is not one of cnnlab's own targets{registered}; "
                "nothing was run",
            )
        return
    accepted = allowed.instructions.get(place, {}).get(name)
    if accepted is None:
        raise error(path, f"{key}: not accepted in {what}")
    if not any(value is v or (type(value) is type(v) and value == v) for v in accepted):
        shown = " or ".join(show(v) for v in accepted)
        raise error(path, f"{key}: must be {shown}, got {show(value)}")


def check_checkpoint_matches(path: str | Path, checkpoint: Mapping[str, Any], model: Any) -> None:
    """Raise :class:`CheckpointError` when ``checkpoint`` (from :func:`read_checkpoint`) was made
    for another network than ``model``, the resolved (trusted: the user's own) ``model`` node.
    """
    from cnnlab.lit.module import build_network

    saved_model = checkpoint[_HPARAMS]["model"]
    for field in ("name", "in_channels", "num_classes"):
        want, have = model.get(field), saved_model.get(field)
        if want != have:
            raise CheckpointError(
                path,
                f"checkpoint is for {field}={have!r}, but this config has model.{field}={want!r}",
            )
    network = build_network(model)
    _check_weights(path, checkpoint["state_dict"], network, prefix="net.")


def load_classifier(path: str | Path) -> ImageClassifier:
    """Rebuild an :class:`ImageClassifier` from a checkpoint (no code runs from the file).

    The network is built from the checked hyperparameters; the weights are loaded after every
    name and shape was compared (a :class:`CheckpointError` names the tensor that does not fit).
    """
    from cnnlab.lit.module import ImageClassifier

    checkpoint = read_checkpoint(path)
    hparams = checkpoint[_HPARAMS]
    try:
        module = ImageClassifier(**hparams)
    except CnnlabError as exc:
        raise CheckpointError(path, f"{_HPARAMS}: {exc}") from exc
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            path, f"cannot rebuild the network from {_HPARAMS}: {first_line(exc)}"
        ) from exc
    _check_weights(path, checkpoint["state_dict"], module)
    module.load_state_dict(checkpoint["state_dict"], strict=True)
    return module


def data_config(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """The checkpoint's ``data`` node, with downloads switched off.

    A checkpoint's data node could name any folder and mirror; reading data it names is
    fine, fetching files into a folder it names is not. ``data=<name>`` on the command
    line downloads as usual.
    """
    data = dict(hparams["data"])
    source = data.get("source")
    if isinstance(source, Mapping) and "download" in source:
        data["source"] = {**source, "download": False}
    return data


def _check_weights(
    path: str | Path, state: Mapping[str, Any], network: nn.Module, *, prefix: str = ""
) -> None:
    """Compare the checkpoint's tensors named ``prefix...`` with ``network``'s, by name, shape."""
    import torch

    expected = {prefix + k: v for k, v in network.state_dict().items()}
    given = {k: v for k, v in state.items() if str(k).startswith(prefix)}
    missing = [k for k in expected if k not in given]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise CheckpointError(path, f"state_dict.{missing[0]}: missing{more}")
    for name, tensor in given.items():
        if name not in expected:
            raise CheckpointError(path, f"state_dict.{name}: not a tensor of this network")
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(path, f"state_dict.{name}: not a tensor")
        if tensor.shape != expected[name].shape:
            raise CheckpointError(
                path,
                f"state_dict.{name}: shape {list(tensor.shape)}, "
                f"but the network needs {list(expected[name].shape)}",
            )
