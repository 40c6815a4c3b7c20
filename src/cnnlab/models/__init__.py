"""Networks, all built from the layer factory in :mod:`cnnlab.models.layers`.

One module per architecture family; each registers its variants (a family class and
the arguments the variant fixes) with :func:`register_model`, and configs build them by
name through :func:`build_model`. Importing this package imports every family so that
the registry is complete.
"""

from __future__ import annotations

from cnnlab.models import (  # noqa: F401 - importing a family registers its variants
    alexnet,
    densenet,
    googlenet,
    lenet,
    mobilenet,
    resnet,
    searchable,
    shufflenet,
    simple_cnn,
    speedrun,
    vgg,
)
from cnnlab.models.registry import build_model, image_hw, list_models, register_model

__all__ = ["build_model", "image_hw", "list_models", "register_model"]
