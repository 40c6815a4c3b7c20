"""The model registry: each variant is data (a family and the arguments it fixes).

``conf/model/<name>.yaml`` targets :func:`build_model` with ``name:`` and the
variant's options, so Hydra never imports an architecture by path and every
model is listed in one place (``list_models()``), which the tests iterate. A
family class's signature is the single declaration of its options; a variant
fixes some of them (ResNet-18 fixes ``block`` and ``depths``) and may change the
defaults of others. A family is a :class:`~cnnlab.models.common.Classifier`:
:func:`build_model` checks the arguments every model takes, resolves the ``norm``,
``activation``, ``init`` and ``dropout`` specs once over the family's
``default_layers``, and hands both over as one :class:`~cnnlab.models.common.NetArgs`.
A plain function also works; it gets ``in_channels``, ``num_classes`` and
``image_size`` as keywords, and no layer specs.

Errors are plain ``ValueError``/``TypeError`` whose message starts with the config
key (``model.stem: ...``); :func:`cnnlab.errors.config_errors` names that key.
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from torch import nn

from cnnlab.config import plain
from cnnlab.models.common import Classifier, Layers, NetArgs, check_positive_int, image_hw
from cnnlab.models.layers import LayerSpec, dropout_sites, get_act, get_init, get_norm
from cnnlab.models.layers._spec import keyed

__all__ = ["ModelVariant", "build_model", "image_hw", "list_models", "register_model"]

Family = TypeVar("Family", bound=Callable[..., nn.Module])

# What build_model passes a plain function itself; its options are its other keywords.
_COMMON = ("in_channels", "num_classes", "image_size")
REFERENCE_NORM = "reference"


@dataclass(frozen=True)
class ModelVariant:
    """A registered model: a family (class or function) and what the variant sets.

    Attributes:
        family: Builds the network; its keyword-only parameters are the options.
        paper: The paper the variant follows (title, authors, year, arXiv id).
        fixed: Arguments the variant fixes (not options: ``block``, ``depths``...).
        defaults: Option defaults that differ from the family's; ``image_size`` here
            is the size built for when the data gives none.
    """

    family: Callable[..., nn.Module]
    paper: str = ""
    fixed: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_classifier(self) -> bool:
        """True for a :class:`Classifier` family (it takes layers and :class:`NetArgs`)."""
        return isinstance(self.family, type) and issubclass(self.family, Classifier)

    def options(self) -> list[str]:
        """The options a config may set (besides the common ones)."""
        parameters = inspect.signature(self.family).parameters.values()
        return [
            p.name
            for p in parameters
            if p.kind is p.KEYWORD_ONLY and p.name not in _COMMON and p.name not in self.fixed
        ]


_MODELS: dict[str, ModelVariant] = {}


def register_model(
    family: Family,
    name: str | None = None,
    paper: str = "",
    *,
    defaults: Mapping[str, Any] | None = None,
    **fixed: Any,
) -> Family:
    """Register ``family`` as model ``name`` (its ``__name__`` by default), fixing ``fixed``.

    Example:
        >>> from cnnlab.models.resnet import ResNet
        >>> "depths" in _MODELS["resnet18"].fixed, "base_width" in _MODELS["resnet18"].options()
        (True, True)

    Returns:
        ``family``, unchanged (so this works as a decorator on a function).

    Raises:
        ValueError: If a model of that name is already registered.
    """
    name = name or family.__name__
    if name in _MODELS:
        raise ValueError(
            f"model {name!r} is already registered by {_MODELS[name].family.__module__}; "
            f"rename it in {family.__module__}"
        )
    _MODELS[name] = ModelVariant(family, paper, fixed, dict(defaults or {}))
    return family


def list_models(pattern: str = "*") -> list[str]:
    """Return the sorted names of registered models matching a shell-style pattern.

    Example:
        >>> "lenet5" in list_models("lenet*")
        True
    """
    return sorted(fnmatch.filter(_MODELS, pattern))


def _names_reference(spec: LayerSpec) -> bool:
    """True for the ``reference`` norm option (a name or ``{name: reference}``)."""
    name = spec.get("name") if isinstance(spec, Mapping) else spec
    return isinstance(name, str) and name.lower() == REFERENCE_NORM


def _layers(
    variant: ModelVariant, norm: LayerSpec, activation: LayerSpec, init: LayerSpec, dropout: Any
) -> Layers:
    """Resolve the layer specs once over the family's :attr:`Classifier.default_layers`."""
    if not variant.is_classifier:  # a plain function: it builds its own layers
        given = {"norm": norm, "activation": activation, "init": init, "dropout": dropout}
        for key, spec in given.items():
            if spec is not None:
                raise keyed(f"model.{key}", f"{variant.family.__name__} takes none", TypeError)
        return Layers()
    base: Layers = variant.family.default_layers  # type: ignore[attr-defined]
    if _names_reference(norm):
        norm = None  # the family's default is its paper's normalisation
    act = get_act(activation) if activation is not None else base.act
    return Layers(
        norm=get_norm(norm) if norm is not None else base.norm,
        act=act,
        init=get_init(init, activation=act) if init is not None else base.init,
        dropout=dropout_sites(dropout) if dropout is not None else base.dropout,
    )


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
    **options: Any,
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
        image_size: Input side or [height, width]; None keeps the model's default.
        norm: Norm spec (the ``norm`` group); None or ``reference`` for the model's own
            (batch norm where its paper has it, none otherwise).
        activation: Activation spec (the ``activation`` group); None for the model's own.
        init: Init spec (the ``init`` group).
        dropout: Dropout spec (the ``dropout`` group).
        **options: The model's own options (e.g. ``c3_table`` for ``lenet5``).

    Returns:
        The model.

    Raises:
        ValueError: ``model.name`` for an unknown name (the message lists the models),
            ``model.in_channels``/``model.num_classes`` unless positive ints,
            ``data.image_size`` for a malformed size; the family raises others.
        TypeError: ``model.<option>`` for an option the model does not take.
    """
    if name not in _MODELS:
        raise keyed("model.name", f"unknown model {name!r}; choose from {', '.join(list_models())}")
    variant = _MODELS[name]
    allowed = variant.options()
    for key in options:
        if key not in allowed:
            raise keyed(
                f"model.{key}",
                f"is not an option of model {name!r} (its options: {', '.join(allowed) or 'none'})",
                TypeError,
            )
    args: dict[str, Any] = {**variant.defaults, **plain(options), **variant.fixed}
    default_size = args.pop("image_size", None)
    size = default_size if image_size is None else image_size
    common = NetArgs(
        in_channels=check_positive_int("in_channels", plain(in_channels)),
        num_classes=check_positive_int("num_classes", plain(num_classes)),
        image_size=None if size is None else image_hw(size),
        layers=_layers(variant, plain(norm), plain(activation), plain(init), plain(dropout)),
    )
    if variant.is_classifier:
        return variant.family(common, **args)
    sizes = {} if common.image_size is None else {"image_size": common.image_size}
    return variant.family(in_channels=common.in_channels, num_classes=common.num_classes,
                          **sizes, **args)  # fmt: skip
