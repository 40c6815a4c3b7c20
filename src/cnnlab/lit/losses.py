"""Classification losses from the ``loss`` config group.

Cross-entropy applies the softmax ``f(s)_i = exp(s_i) / sum_j exp(s_j)`` to the
scores and takes ``-sum_i t_i log f(s)_i``; MSE compares the softmax output (or
the raw scores) with one-hot targets, ``(1/N) sum (y - y_hat)^2``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from cnnlab.errors import ConfigError


class OneHotMSELoss(nn.Module):
    """Mean squared error between class scores and one-hot targets (``num_classes`` wide):
    of probabilities with ``apply_softmax`` (the usual choice), else of raw scores."""

    def __init__(self, num_classes: int, apply_softmax: bool = True) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.apply_softmax = apply_softmax

    def forward(self, scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        prediction = scores.softmax(dim=1) if self.apply_softmax else scores
        one_hot = F.one_hot(target, self.num_classes).to(prediction.dtype)
        return F.mse_loss(prediction, one_hot)


def build_loss(cfg: Mapping[str, Any], num_classes: int) -> nn.Module:
    """Build the loss named by ``cfg["name"]`` (``cross_entropy`` or ``mse``)."""
    params = {k: v for k, v in cfg.items() if k != "name"}
    name = cfg.get("name")
    if name == "cross_entropy":
        smoothing = float(params.get("label_smoothing", 0.0))
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError("loss.label_smoothing", f"must be in [0, 1), got {smoothing}")
        return nn.CrossEntropyLoss(label_smoothing=smoothing)
    if name == "mse":
        return OneHotMSELoss(num_classes, apply_softmax=bool(params.get("apply_softmax", True)))
    raise ConfigError("loss.name", f"unknown loss {name!r}; choose from ['cross_entropy', 'mse']")
