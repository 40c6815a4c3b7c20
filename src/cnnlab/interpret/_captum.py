"""captum is an optional extra: import it on first use, with an install hint."""

from __future__ import annotations

from types import ModuleType

from cnnlab.errors import MissingExtraError


def captum_attr() -> ModuleType:
    """Return :mod:`captum.attr`.

    Raises:
        MissingExtraError: captum is not installed; the message names the extra.
    """
    try:
        import captum.attr
    except ImportError:
        raise MissingExtraError(
            "saliency maps and Grad-CAM use captum, which is not installed: "
            "pip install 'cnnlab[interpret]'"
        ) from None
    return captum.attr
