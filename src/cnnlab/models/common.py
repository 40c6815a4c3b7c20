"""Pieces the architecture families share: stem choice, width rounding, option checks, the head.

Every family adapts to the input size the same way: ``stem: auto`` picks the
paper's (ImageNet) stem for inputs larger than :data:`SMALL_MAX` pixels and the
small-input (CIFAR-style) stem otherwise; ``stem: imagenet`` or ``stem: small``
forces one. Option checks raise :class:`~cnnlab.errors.ConfigError` naming
``model.<option>``, so a bad value in ``conf/model/*.yaml`` or on the command line
gets a one-line error.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any, TypedDict

from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.models.layers import GlobalAvgPool
from cnnlab.models.registry import image_hw

# A layer factory made by the layer factory: norm(channels), act(), dropout().
Factory = Callable[..., nn.Module]


class NormAct(TypedDict):
    """The norm and activation factories a network passes to every conv (``conv(..., **unit)``)."""

    norm: Factory
    act: Factory


__all__ = [
    "SMALL_MAX",
    "STEMS",
    "check_bool",
    "check_choice",
    "check_positive_float",
    "check_positive_int",
    "check_scalar_or_list",
    "choose_stem",
    "classifier_head",
    "make_divisible",
]

STEMS = ("auto", "imagenet", "small")
#: Largest input side that gets the small-input stem under ``stem: auto`` (CIFAR is 32,
#: MNIST 28, Tiny ImageNet 64); the ImageNet stems divide the input by 4 before stage 1.
SMALL_MAX = 64


def choose_stem(stem: str, image_size: int | Sequence[int] | None) -> str:
    """Resolve ``model.stem`` to ``imagenet`` or ``small``.

    Args:
        stem: ``auto``, ``imagenet`` or ``small``.
        image_size: The input side or (height, width); None counts as ImageNet-sized.

    Returns:
        ``imagenet`` or ``small``.

    Raises:
        ConfigError: ``model.stem`` for another value.
    """
    check_choice("stem", stem, STEMS)
    if stem != "auto":
        return stem
    if image_size is None:
        return "imagenet"
    return "small" if max(image_hw(image_size)) <= SMALL_MAX else "imagenet"


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a scaled channel count to a multiple of ``divisor`` (MobileNet's rule).

    Never rounds down by more than 10%, and never below ``min_value`` (``divisor``
    by default), so that width multipliers keep layers usable and group/channel
    splits valid.

    Example:
        >>> make_divisible(32 * 0.75), make_divisible(3.0)
        (24, 8)
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def check_choice(option: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is in ``choices``, else raise ``ConfigError('model.<option>')``."""
    if isinstance(value, bool) or value not in choices:
        listed = ", ".join(map(str, choices))
        raise ConfigError(f"model.{option}", f"must be one of {listed}, got {value!r}")
    return value


def check_positive_int(option: str, value: Any) -> int:
    """Return ``value`` if it is an int >= 1, else raise ``ConfigError('model.<option>')``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"model.{option}", f"must be a positive int, got {value!r}")
    return value


def check_positive_float(option: str, value: Any) -> float:
    """Return ``value`` as a float if it is a number > 0, else raise ``ConfigError``."""
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"model.{option}", f"must be a number > 0, got {value!r}")
    return float(value)


def check_bool(option: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise ``ConfigError('model.<option>')``."""
    if not isinstance(value, bool):
        raise ConfigError(f"model.{option}", f"must be true or false, got {value!r}")
    return value


def check_scalar_or_list(
    option: str, value: Any, length: int, check: Callable[[str, Any], Any]
) -> list[Any]:
    """Expand a per-stage option: one value for every stage, or a list with one per stage.

    Args:
        option: The option name (for ``model.<option>`` errors).
        value: A scalar or a list.
        length: The number of stages.
        check: Validates one value, e.g. :func:`check_positive_int`.

    Returns:
        One checked value per stage.

    Raises:
        ConfigError: ``model.<option>`` for a list of the wrong length or a bad value.
    """
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != length:
            raise ConfigError(
                f"model.{option}",
                f"needs one value per stage ({length}) or a single value, got {list(value)!r}",
            )
        return [check(option, v) for v in value]
    return [check(option, value)] * length


def classifier_head(
    channels: int, num_classes: int, fc_dropout: Callable[[], nn.Module]
) -> nn.Sequential:
    """Global average pooling, dropout, then one linear layer: the modern classifier head.

    Args:
        channels: Channels of the last feature map.
        num_classes: Outputs.
        fc_dropout: Factory of the dropout layer before the linear layer.

    Returns:
        ``Sequential(pool, drop, fc)`` mapping (N, C, H, W) to (N, num_classes).
    """
    return nn.Sequential(
        OrderedDict(pool=GlobalAvgPool(), drop=fc_dropout(), fc=nn.Linear(channels, num_classes))
    )
