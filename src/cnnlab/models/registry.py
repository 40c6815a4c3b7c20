"""The model registry: builders register by function name; configs build by name.

``conf/model/<name>.yaml`` targets :func:`build_model` with ``name:`` and the
builder's options, so Hydra never imports an architecture by path and every
model is listed in one place (``list_models()``), which the tests iterate.
"""

from __future__ import annotations

import fnmatch
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import LayerSpec
from cnnlab.models.layers._spec import plain

__all__ = ["build_model", "image_hw", "list_models", "register_model", "variant_of"]

Builder = TypeVar("Builder", bound=Callable[..., nn.Module])
M = TypeVar("M", bound=nn.Module)

_MODELS: dict[str, Callable[..., nn.Module]] = {}

# Arguments build_model passes itself; a model's own options are the rest.
_COMMON = ("in_channels", "num_classes", "image_size", "norm", "activation", "init", "dropout")


def register_model(builder: Builder) -> Builder:
    """Register a model builder under its function name.

    Args:
        builder: A function taking the keyword arguments ``in_channels``,
            ``num_classes``, ``image_size``, ``norm``, ``activation``, ``init`` and
            ``dropout`` plus its own options, and returning the model.

    Returns:
        The builder, unchanged (so this works as a decorator).

    Raises:
        ValueError: If a model of that name is already registered.
    """
    name = builder.__name__
    if name in _MODELS:
        raise ValueError(
            f"model {name!r} is already registered by {_MODELS[name].__module__}; "
            f"rename the builder in {builder.__module__}"
        )
    _MODELS[name] = builder
    return builder


def variant_of(
    reference: Callable[..., nn.Module],
) -> Callable[[Callable[..., M]], Callable[..., M]]:
    """Give a variant builder written as ``def name(**options)`` the options of ``reference``.

    A family's variants differ only in what they fix inside (VGG's configuration, ResNet's
    depths); their options, defaults and checks are the reference builder's, so they are
    written once. The registry and ``help()`` see the reference's signature.

    Example:
        >>> from cnnlab.models.vgg import VGG, _vgg, vgg11
        >>> @variant_of(vgg11)
        ... def vgg_example(**options: object) -> VGG:
        ...     return _vgg("A", **options)
        >>> list(inspect.signature(vgg_example).parameters)[:2]
        ['in_channels', 'num_classes']
    """
    signature = inspect.signature(reference)

    def decorate(builder: Callable[..., M]) -> Callable[..., M]:
        @functools.wraps(builder)
        def with_reference_options(**options: Any) -> M:
            bound = signature.bind(**options)  # TypeError for an option the family lacks
            bound.apply_defaults()
            return builder(**bound.arguments)

        with_reference_options.__signature__ = signature  # type: ignore[attr-defined]
        return with_reference_options

    return decorate


def list_models(pattern: str = "*") -> list[str]:
    """Return the sorted names of registered models matching a shell-style pattern.

    Example:
        >>> "lenet5" in list_models("lenet*")
        True
    """
    return sorted(fnmatch.filter(_MODELS, pattern))


def image_hw(image_size: int | Sequence[int]) -> tuple[int, int]:
    """Read ``data.image_size`` (one side, or [height, width]) as (height, width).

    Raises:
        ConfigError: ``data.image_size`` unless it is one or two positive ints.
    """
    size = plain(image_size)
    pair = [size, size] if isinstance(size, int) else size
    if (
        not isinstance(pair, Sequence)
        or len(pair) != 2
        or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in pair)
    ):
        raise ConfigError(
            "data.image_size", f"must be a positive int or [height, width], got {image_size!r}"
        )
    return pair[0], pair[1]


def _positive_int(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(key, f"must be a positive int, got {value!r}")
    return value


def build_model(
    name: str,
    *,
    in_channels: int,
    num_classes: int,
    image_size: int | Sequence[int] | None = None,
    norm: LayerSpec = None,
    activation: LayerSpec = None,
    init: LayerSpec = None,
    dropout: LayerSpec | float = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a registered model by name.

    Example:
        >>> net = build_model("lenet5", in_channels=1, num_classes=10, image_size=28)
        >>> sum(p.numel() for p in net.parameters())
        61706

    Args:
        name: A name from :func:`list_models`.
        in_channels: Channels of the input images.
        num_classes: Number of classes (outputs).
        image_size: Input side or [height, width]; None keeps the builder's default.
        norm: Norm spec (the ``norm`` group); None or ``reference`` for the model's own
            (batch norm where its paper has it, none otherwise).
        activation: Activation spec (the ``activation`` group).
        init: Init spec (the ``init`` group).
        dropout: Dropout spec (the ``dropout`` group).
        **kwargs: The model's own options (e.g. ``c3_table`` for ``lenet5``).

    Returns:
        The model.

    Raises:
        ConfigError: ``model.name`` for an unknown name (the message lists the
            models), ``model.<option>`` for an option the model does not take,
            ``model.in_channels``/``model.num_classes`` unless positive ints,
            ``data.image_size`` for a malformed size; the builder raises others.
    """
    if name not in _MODELS:
        raise ConfigError(
            "model.name", f"unknown model {name!r}; choose from {', '.join(list_models())}"
        )
    builder = _MODELS[name]
    options = [p for p in inspect.signature(builder).parameters if p not in _COMMON]
    for key in kwargs:
        if key not in options:
            raise ConfigError(
                f"model.{key}",
                f"is not an option of model {name!r} (its options: {', '.join(options) or 'none'})",
            )
    args: dict[str, Any] = {key: plain(value) for key, value in kwargs.items()}
    args["in_channels"] = _positive_int("model.in_channels", plain(in_channels))
    args["num_classes"] = _positive_int("model.num_classes", plain(num_classes))
    if image_size is not None:
        args["image_size"] = image_hw(image_size)
    if _names_reference(norm):
        norm = None  # each builder's default is its paper's normalisation
    specs = {"norm": norm, "activation": activation, "init": init, "dropout": dropout}
    args.update({key: plain(spec) for key, spec in specs.items() if spec is not None})
    return builder(**args)


REFERENCE_NORM = "reference"


def _names_reference(spec: LayerSpec) -> bool:
    """True for the ``reference`` norm option (a name or ``{name: reference}``)."""
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    return isinstance(name, str) and name.lower() == REFERENCE_NORM
