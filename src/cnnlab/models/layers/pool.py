"""Pooling (max, average, global average) and channel shuffle."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["POOL_KINDS", "ChannelShuffle", "GlobalAvgPool", "pool"]

POOL_KINDS = ("max", "avg")


def pool(
    kind: str,
    kernel_size: int,
    *,
    stride: int | None = None,
    padding: int = 0,
    ceil_mode: bool = False,
) -> nn.Module:
    """Make a max or average pooling layer (``kind`` ``max`` or ``avg``).

    Args:
        stride: Step between windows; None means the window size (no overlap).
        padding: Padding on each side (ignored by max, zeros for avg, which does not
            count them in the mean).
        ceil_mode: Round the output size up, so a last partial window is kept
            (Caffe's convention, used by GoogLeNet).

    Returns:
        :class:`torch.nn.MaxPool2d` or :class:`torch.nn.AvgPool2d`.

    Raises:
        ValueError: For an unknown kind.
    """
    if kind == "max":
        return nn.MaxPool2d(kernel_size, stride, padding, ceil_mode=ceil_mode)
    if kind == "avg":
        return nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad=False)
    raise ValueError(f"unknown pooling {kind!r}; choose from {', '.join(POOL_KINDS)}")


class GlobalAvgPool(nn.Module):
    """Average each feature map to one value: (N, C, H, W) -> (N, C), or (N, C, 1, 1)
    with ``flatten`` false."""

    def __init__(self, flatten: bool = True) -> None:
        super().__init__()
        self.flatten = flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pool ``x`` over its spatial dimensions."""
        return x.mean(dim=(2, 3), keepdim=not self.flatten)

    def extra_repr(self) -> str:
        return f"flatten={self.flatten}"


class ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups so the next grouped conv mixes them.

    With g groups of n channels, channel j of group i moves to position j * g + i
    (Zhang et al. 2017, ShuffleNet): reshape to (g, n), transpose, flatten.

    Raises:
        ValueError: If ``groups`` < 1, or (in forward) does not divide the channels.
    """

    def __init__(self, groups: int) -> None:
        super().__init__()
        if groups < 1:
            raise ValueError(f"groups must be >= 1, got {groups}")
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Shuffle the channels of ``x`` (N, C, H, W)."""
        n, c, h, w = x.shape
        if c % self.groups:
            raise ValueError(f"{self.groups} groups do not divide {c} channels")
        return x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
