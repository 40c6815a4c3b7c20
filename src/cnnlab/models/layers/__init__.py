"""The layer factory: the one place convs, norms, activations, init and dropout are made.

:func:`cnnlab.models.build_model` resolves the ``norm``, ``activation``, ``init`` and
``dropout`` specs of the config groups once (``get_norm``, ``get_act``, ``get_init``,
``dropout_sites``); architectures take the resulting factories and pass them to their
blocks, and :class:`cnnlab.models.common.Classifier` ends with ``init_weights(self, init)``.

Example:
    >>> norm_layer, act_layer = get_norm("batch"), get_act("relu")
    >>> block = conv(3, 8, 3, stride=2, norm=norm_layer, act=act_layer)
    >>> [name for name, _ in block.named_children()]
    ['conv', 'norm', 'act']
"""

from __future__ import annotations

from cnnlab.models.layers._spec import LayerSpec
from cnnlab.models.layers.act import act_names, get_act
from cnnlab.models.layers.conv import (
    CONV_KINDS,
    ConvBlock,
    TableConv2d,
    conv,
    output_size,
    same_padding,
)
from cnnlab.models.layers.dropout import DropoutSites, dropout_names, dropout_sites, get_dropout
from cnnlab.models.layers.init import (
    CustomInit,
    WeightInit,
    get_init,
    init_names,
    init_weights,
    nonlinearity_of,
)
from cnnlab.models.layers.norm import (
    GroupNorm2d,
    InstanceNorm2d,
    LayerNorm2d,
    get_norm,
    get_norm1d,
    norm_names,
)
from cnnlab.models.layers.pool import POOL_KINDS, ChannelShuffle, GlobalAvgPool, pool

__all__ = [
    "CONV_KINDS",
    "POOL_KINDS",
    "ChannelShuffle",
    "ConvBlock",
    "CustomInit",
    "DropoutSites",
    "GlobalAvgPool",
    "GroupNorm2d",
    "InstanceNorm2d",
    "LayerNorm2d",
    "LayerSpec",
    "TableConv2d",
    "WeightInit",
    "act_names",
    "conv",
    "dropout_names",
    "dropout_sites",
    "get_act",
    "get_dropout",
    "get_init",
    "get_norm",
    "get_norm1d",
    "init_names",
    "init_weights",
    "nonlinearity_of",
    "norm_names",
    "output_size",
    "pool",
    "same_padding",
]
