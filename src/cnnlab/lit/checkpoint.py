"""Reading checkpoints, which may come from anyone, without running anything they name.

``torch.load(weights_only=True)`` refuses pickled code, but a cnnlab checkpoint also
holds its hyperparameters: config nodes whose ``_target_`` strings Hydra's
``instantiate`` would import and call. A crafted file naming ``numpy.savetxt`` or
``builtins.open`` would run it. So a checkpoint is checked before anything is built
from it: the only targets it may name are cnnlab's own model builder (with a
registered model name), cnnlab's data module and data sources, and ``torch.optim``
optimizers, each in its own place; no interpolation (``${...}``) and no other Hydra
instruction (``_args_``, ``_recursive_``, ...) is accepted anywhere. The network is
then built from those checked values and the weights are loaded after their names
and shapes are compared, so every failure is one line naming the file and the key.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cnnlab.errors import CheckpointError, CnnlabError, ConfigError

if TYPE_CHECKING:
    from torch import nn

    from cnnlab.lit.module import ImageClassifier

__all__ = [
    "check_callback_paths",
    "check_checkpoint_matches",
    "check_hyperparameters",
    "checkpoint_path",
    "data_config",
    "load_classifier",
    "read_checkpoint",
]

# Keys Hydra's instantiate acts on; a checkpoint may use only _target_ (and an
# optimizer's _partial_) in the places listed in _allowed_targets.
_HYDRA_KEYS = ("_target_", "_args_", "_recursive_", "_convert_", "_partial_")
_HPARAMS = "hyper_parameters"


def checkpoint_path(value: Any) -> Path:
    """Return ``ckpt_path`` as a path; an empty value is a :class:`ConfigError`."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise ConfigError("ckpt_path", "is empty; give the path of a .ckpt file")
    return Path(text)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint safely and check that it names nothing but cnnlab's own builders.

    Args:
        path: The checkpoint file.

    Returns:
        The checkpoint dictionary (``state_dict``, ``hyper_parameters``, ...).

    Raises:
        ConfigError: ``ckpt_path`` is empty.
        CheckpointError: The file is missing, a folder, unreadable, not a checkpoint,
            not a cnnlab checkpoint, or its hyperparameters name something cnnlab does
            not build (the message names the file and the key).
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
        raise CheckpointError(path, f"not a loadable checkpoint ({_first_line(exc)})") from exc
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), dict):
        raise CheckpointError(path, "not a Lightning checkpoint (no state_dict)")
    hparams = checkpoint.get(_HPARAMS)
    if not isinstance(hparams, dict) or not isinstance(hparams.get("model"), dict):
        raise CheckpointError(path, "not a cnnlab checkpoint (no model hyperparameters)")
    check_hyperparameters(path, hparams)
    check_callback_paths(path, checkpoint.get("callbacks"))
    return checkpoint


def check_hyperparameters(path: str | Path, hparams: Mapping[str, Any]) -> None:
    """Refuse hyperparameters that would make cnnlab import or call anything of theirs.

    Raises:
        CheckpointError: Naming the file and the first offending key, e.g.
            ``hyper_parameters.model._target_``.
    """
    from cnnlab.lit.module import ImageClassifier
    from cnnlab.models import list_models

    known = [p for p in inspect.signature(ImageClassifier.__init__).parameters if p != "self"]
    for key in hparams:
        if key not in known:
            raise CheckpointError(path, f"{_HPARAMS}.{key}: not an ImageClassifier argument")
    _check_node(path, _HPARAMS, hparams, _allowed_targets())
    name = hparams["model"].get("name")
    if name not in list_models():
        raise CheckpointError(
            path, f"{_HPARAMS}.model.name: {name!r} is not a registered cnnlab model"
        )


# Paths a ModelCheckpoint state holds; Lightning reloads them on resume and may load
# (best_model_path, for the final test) or delete (older top-k) the files they name.
_CHECKPOINT_PATHS = ("best_model_path", "last_model_path", "kth_best_model_path")


def check_callback_paths(path: str | Path, callbacks: Any) -> None:
    """Refuse checkpoint-callback states that name files outside their own folder.

    Raises:
        CheckpointError: Naming the file and the ``callbacks`` key.
    """
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


def _allowed_targets() -> dict[str, frozenset[str]]:
    """Where a checkpoint may name a target, and which: cnnlab's own classes and builders."""
    import torch

    from cnnlab.data import sources

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
    return {
        f"{_HPARAMS}.model": frozenset(
            {"cnnlab.models.build_model", "cnnlab.models.registry.build_model"}
        ),
        f"{_HPARAMS}.data": frozenset(
            {"cnnlab.data.ImageDataModule", "cnnlab.data.datamodule.ImageDataModule"}
        ),
        # Configs name sources by their package; Source.config() by their module.
        f"{_HPARAMS}.data.source": frozenset(
            {f"cnnlab.data.sources.{c.__name__}" for c in source_classes}
            | {f"{c.__module__}.{c.__qualname__}" for c in source_classes}
        ),
        f"{_HPARAMS}.optimizer": frozenset(f"torch.optim.{name}" for name in optimizers),
    }


def _check_node(path: str | Path, key: str, node: Any, allowed: dict[str, frozenset[str]]) -> None:
    """Walk one hyperparameter node; raise on a target out of place or an interpolation."""
    if isinstance(node, str):
        if "${" in node:
            raise CheckpointError(path, f"{key}: interpolations (${{...}}) are not accepted")
        return
    if isinstance(node, list | tuple):
        for i, item in enumerate(node):
            _check_node(path, f"{key}[{i}]", item, allowed)
        return
    if not isinstance(node, Mapping):
        return
    for name, value in node.items():
        child = f"{key}.{name}"
        if not isinstance(name, str):
            raise CheckpointError(path, f"{child}: keys must be strings")
        if name == "_target_":
            if key not in allowed:
                raise CheckpointError(path, f"{child}: a checkpoint cannot name a target here")
            if value not in allowed[key]:
                raise CheckpointError(
                    path,
                    f"{child}: {value!r} is not one of cnnlab's own builders here "
                    f"({', '.join(sorted(allowed[key])[:4])}, ...); nothing was run",
                )
        elif name == "_partial_" and key == f"{_HPARAMS}.optimizer":
            if value is not True:
                raise CheckpointError(path, f"{child}: must be true, got {value!r}")
        elif name in _HYDRA_KEYS:
            raise CheckpointError(path, f"{child}: not accepted in a checkpoint")
        else:
            _check_node(path, child, value, allowed)


def check_checkpoint_matches(path: str | Path, checkpoint: Mapping[str, Any], model: Any) -> None:
    """Raise :class:`CheckpointError` when ``checkpoint`` was made for another network.

    Args:
        path: The checkpoint file (for the message).
        checkpoint: What :func:`read_checkpoint` returned.
        model: The resolved ``model`` node of this run's config (trusted: the user's own).
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
    _check_weights(path, checkpoint["state_dict"], network, prefix="net.", only_prefixed=True)


def load_classifier(path: str | Path) -> ImageClassifier:
    """Rebuild an :class:`ImageClassifier` from a checkpoint (no code runs from the file).

    The file is read once; the network is built from its checked hyperparameters and
    its weights are loaded after every name and shape was compared.

    Raises:
        CheckpointError: As :func:`read_checkpoint`, or when the network cannot be built
            or the weights do not fit it (the message names the tensor).
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
            path, f"cannot rebuild the network from {_HPARAMS}: {_first_line(exc)}"
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
    path: str | Path,
    state: Mapping[str, Any],
    network: nn.Module,
    *,
    prefix: str = "",
    only_prefixed: bool = False,
) -> None:
    """Compare the checkpoint's tensors with ``network``'s, by name and shape."""
    import torch

    expected = {prefix + k: v for k, v in network.state_dict().items()}
    given = {k: v for k, v in state.items() if not only_prefixed or str(k).startswith(prefix)}
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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__
