"""captum is an optional extra: import it on first use, with an install hint."""

from __future__ import annotations

from types import ModuleType


def captum_attr() -> ModuleType:
    """Return :mod:`captum.attr`.

    Raises:
        ImportError: captum is not installed; the message says how to install it.
    """
    try:
        import captum.attr
    except ImportError as exc:
        raise ImportError(
            "saliency maps and Grad-CAM use captum, which is not installed: "
            "pip install 'cnnlab[interpret]'"
        ) from exc
    return captum.attr
