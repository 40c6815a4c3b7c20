"""Convolutions: the output-size rule and one helper for every kind of conv the course teaches.

Kinds (``kind=``), with C_in input and C_out output channels and a k x k kernel:

- ``standard``: every output channel sees every input channel (C_in * C_out * k * k weights);
- ``grouped``: channels split into ``groups``; each output channel sees only its
  group's inputs (AlexNet's two towers, ShuffleNet's GConv);
- ``depthwise``: one k x k kernel per input channel (groups = C_in); C_out must be
  a multiple of C_in (the depth multiplier);
- ``pointwise``: a 1 x 1 conv that mixes channels only (optionally grouped);
- ``separable``: depthwise then pointwise (Chollet 2017), norm and activation once
  after both; MobileNet puts a norm and activation after each, which is two
  ``conv`` calls (``depthwise`` then ``pointwise``).

Padding is ``"valid"`` (none), ``"same"`` (output = ceil(input / stride), any
kernel, stride or dilation) or explicit pixels. Strided and dilated convs are
``stride=`` and ``dilation=`` on any kind.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.models.layers._spec import LayerSpec
from cnnlab.models.layers.act import get_act
from cnnlab.models.layers.init import WeightInit
from cnnlab.models.layers.norm import get_norm

__all__ = [
    "CONV_KINDS",
    "ConvBlock",
    "TableConv2d",
    "conv",
    "output_size",
    "same_padding",
]

CONV_KINDS = ("standard", "grouped", "depthwise", "pointwise", "separable")

IntPair = int | tuple[int, int]


def output_size(i: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """Output length of a conv or pooling along one axis: floor((i + 2p - d(k - 1) - 1) / s) + 1.

    Example:
        >>> output_size(5, 3, s=2)  # strided: 5 -> 2
        2

    Args:
        i: Input length.
        k: Kernel size.
        s: Stride.
        p: Zero padding on each side.
        d: Dilation (d - 1 gaps between kernel taps).

    Returns:
        The output length; a value below 1 means the kernel does not fit.
    """
    return (i + 2 * p - d * (k - 1) - 1) // s + 1


def same_padding(k: int, d: int = 1) -> tuple[int, int]:
    """Padding (before, after) that makes a conv's output ceil(input / stride) long.

    The dilated kernel spans d(k - 1) + 1 pixels; padding its span minus one in
    total gives ceil(i / s) for every stride (kernel k, dilation d). An even span
    needs one more pixel after than before (TensorFlow's convention).
    """
    total = d * (k - 1)
    return total // 2, total - total // 2


class TableConv2d(nn.Module):
    """A conv whose output maps each see only the input maps a connection table lists.

    LeNet-5's C3 is the classic case: 16 maps that read 3, 4 or 6 of S2's 6 maps,
    which breaks symmetry and saves weights. Only the listed kernels are
    parameters (C3 has 1,516); forward scatters them into a dense kernel and runs
    one convolution. ``table`` lists, for each output map, the input maps it reads.

    Raises:
        ValueError: If the table is empty or names an input map that does not exist.
    """

    def __init__(
        self,
        in_channels: int,
        table: Sequence[Sequence[int]],
        kernel_size: int,
        *,
        stride: int = 1,
        padding: IntPair = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        pairs = [(o, i) for o, inputs in enumerate(table) for i in inputs]
        if not pairs or any(not 0 <= i < in_channels for _, i in pairs):
            raise ValueError(f"connection table must name input maps 0..{in_channels - 1}")
        self.in_channels, self.out_channels = in_channels, len(table)
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        index = torch.tensor(pairs, dtype=torch.long)
        self.out_index: torch.Tensor
        self.in_index: torch.Tensor
        self.register_buffer("out_index", index[:, 0], persistent=False)
        self.register_buffer("in_index", index[:, 1], persistent=False)
        self.weight = nn.Parameter(torch.empty(len(pairs), kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(len(table))) if bias else None
        self.init_with(self._default_init)

    def _default_init(self, weight: torch.Tensor) -> None:
        # PyTorch's Conv2d default, with the fan-in of a full conv of the same shape.
        nn.init.kaiming_uniform_(weight, a=math.sqrt(5))

    def dense_weight(self) -> torch.Tensor:
        """The (out, in, k, k) kernel with zeros for the missing connections."""
        shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        dense = self.weight.new_zeros(shape)
        return dense.index_put((self.out_index, self.in_index), self.weight)

    def init_with(self, weight_init: WeightInit) -> None:
        """Initialise the kernels as a dense conv of the same shape would be, then keep the
        connected ones; biases start at zero."""
        with torch.no_grad():
            shape = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
            dense = self.weight.new_empty(shape)
            weight_init(dense)
            self.weight.copy_(dense[self.out_index, self.in_index])
            if self.bias is not None:
                self.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Convolve ``x`` (N, in_channels, H, W) with the table's kernels."""
        return F.conv2d(x, self.dense_weight(), self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"connections={self.weight.shape[0]}, stride={self.stride}, padding={self.padding}"
        )


class ConvBlock(nn.Sequential):
    """conv (+ norm) (+ activation) as made by :func:`conv`; children are named
    ``pad``, ``conv`` (or ``depthwise`` and ``pointwise``), ``norm`` and ``act``; it
    keeps the conv's ``in_channels``, ``out_channels`` and ``stride`` (height, width).
    """

    def __init__(
        self,
        layers: OrderedDict[str, nn.Module],
        in_channels: int,
        out_channels: int,
        stride: tuple[int, int],
    ) -> None:
        super().__init__(layers)
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride


def _pair(value: IntPair, what: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2 or any(not isinstance(v, int) or isinstance(v, bool) for v in pair):
        raise ValueError(f"{what} must be an int or a pair of ints, got {value!r}")
    return pair[0], pair[1]


def _padding(
    padding: str | IntPair, k: tuple[int, int], d: tuple[int, int]
) -> tuple[tuple[int, int], nn.Module | None]:
    """Return the conv's symmetric padding and, for an uneven 'same', a pad layer."""
    if padding == "valid":
        return (0, 0), None
    if padding == "same":
        (top, bottom), (left, right) = same_padding(k[0], d[0]), same_padding(k[1], d[1])
        if (top, left) == (bottom, right):
            return (top, left), None
        return (0, 0), nn.ZeroPad2d((left, right, top, bottom))
    if isinstance(padding, str):
        raise ValueError(f"padding must be 'same', 'valid' or pixels, got {padding!r}")
    pad = _pair(padding, "padding")
    if min(pad) < 0:
        raise ValueError(f"padding must be >= 0, got {padding!r}")
    return pad, None


def conv(
    in_channels: int,
    out_channels: int,
    kernel_size: IntPair,
    *,
    stride: IntPair = 1,
    padding: str | IntPair = "same",
    dilation: IntPair = 1,
    kind: str = "standard",
    groups: int = 1,
    norm: LayerSpec = None,
    act: LayerSpec = None,
    bias: bool | None = None,
    connections: Sequence[Sequence[int]] | None = None,
) -> ConvBlock:
    """Make a conv layer followed by an optional norm and activation.

    Example:
        >>> block = conv(16, 32, 3, stride=2, norm="batch", act="relu")
        >>> block(torch.zeros(1, 16, 15, 15)).shape  # same padding: ceil(15 / 2)
        torch.Size([1, 32, 8, 8])

    ``kernel_size``, ``stride`` and ``dilation`` are an int or (height, width).

    Args:
        padding: ``"same"`` (output = ceil(input / stride)), ``"valid"`` (none) or
            pixels per side.
        kind: One of :data:`CONV_KINDS` (see the module docstring).
        groups: Groups of a ``grouped`` or ``pointwise`` conv.
        norm: Norm spec or factory (see :func:`~cnnlab.models.layers.get_norm`);
            None for no norm.
        act: Activation spec or factory (see :func:`~cnnlab.models.layers.get_act`);
            None for no activation.
        bias: Learn a conv bias; None means "unless a norm follows" (its shift
            makes a bias redundant).
        connections: For a ``standard`` conv, a connection table (output map ->
            input maps it reads); only those kernels are parameters
            (:class:`TableConv2d`).

    Returns:
        A :class:`ConvBlock`.

    Raises:
        ValueError: For an unknown kind or padding, channels a kind cannot split,
            or a kernel other than 1 for ``pointwise``.
    """
    if kind not in CONV_KINDS:
        raise ValueError(f"unknown conv kind {kind!r}; choose from {', '.join(CONV_KINDS)}")
    k, s, d = (
        _pair(kernel_size, "kernel_size"),
        _pair(stride, "stride"),
        _pair(dilation, "dilation"),
    )
    if min(*k, *s, *d, in_channels, out_channels, groups) < 1:
        raise ValueError("channels, kernel_size, stride, dilation and groups must be >= 1")
    if kind == "standard" and groups != 1:
        raise ValueError(f"a standard conv has groups=1, got {groups}; use kind='grouped'")
    if kind == "pointwise" and k != (1, 1):
        raise ValueError(f"a pointwise conv has a 1x1 kernel, got {kernel_size!r}")
    if kind == "depthwise":
        groups = in_channels
        if out_channels % in_channels:
            raise ValueError(
                f"a depthwise conv needs out_channels ({out_channels}) to be a multiple of "
                f"in_channels ({in_channels})"
            )
    if kind in ("grouped", "pointwise") and (in_channels % groups or out_channels % groups):
        raise ValueError(
            f"groups={groups} must divide in_channels ({in_channels}) and out_channels "
            f"({out_channels})"
        )
    if connections is not None and (kind != "standard" or len(connections) != out_channels):
        raise ValueError("a connection table needs kind='standard' and one row per output map")
    pad, pad_layer = _padding(padding, k, d)
    norm_layer = get_norm(norm)(out_channels) if norm is not None else nn.Identity()
    has_norm = not isinstance(norm_layer, nn.Identity)
    bias = not has_norm if bias is None else bias

    layers: OrderedDict[str, nn.Module] = OrderedDict()
    if pad_layer is not None:
        layers["pad"] = pad_layer
    if kind == "separable":
        # The depthwise bias would pass linearly through the pointwise conv: one bias suffices.
        layers["depthwise"] = nn.Conv2d(
            in_channels, in_channels, k, s, pad, d, groups=in_channels, bias=False
        )
        layers["pointwise"] = nn.Conv2d(in_channels, out_channels, 1, bias=bias)
    elif connections is not None:
        if k[0] != k[1] or s[0] != s[1] or d != (1, 1):
            raise ValueError(
                "a connection-table conv takes a square kernel and stride, no dilation"
            )
        layers["conv"] = TableConv2d(
            in_channels, connections, k[0], stride=s[0], padding=pad, bias=bias
        )
    else:
        layers["conv"] = nn.Conv2d(in_channels, out_channels, k, s, pad, d, groups, bias)
    if has_norm:
        layers["norm"] = norm_layer
    if act is not None:
        act_layer = get_act(act)()
        if not isinstance(act_layer, nn.Identity):
            layers["act"] = act_layer
    return ConvBlock(layers, in_channels, out_channels, s)
