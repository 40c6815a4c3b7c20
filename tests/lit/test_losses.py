"""Cross-entropy and MSE follow the material's formulas."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.lit.losses import build_loss


def test_cross_entropy_is_minus_log_softmax_of_the_target() -> None:
    scores = torch.tensor([[2.0, 0.5, -1.0], [0.0, 0.0, 3.0]])
    target = torch.tensor([0, 2])
    expected = -(scores.softmax(1)[torch.arange(2), target].log()).mean()
    loss = build_loss({"name": "cross_entropy", "label_smoothing": 0.0}, 3)
    assert torch.allclose(loss(scores, target), expected)


def test_label_smoothing_raises_the_loss_of_a_confident_correct_prediction() -> None:
    scores, target = torch.tensor([[10.0, -10.0]]), torch.tensor([0])
    plain = build_loss({"name": "cross_entropy"}, 2)(scores, target)
    smooth = build_loss({"name": "cross_entropy", "label_smoothing": 0.2}, 2)(scores, target)
    assert smooth > plain


def test_mse_compares_softmax_with_one_hot() -> None:
    scores, target = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([1])
    p = scores.softmax(1)
    expected = ((p - torch.tensor([[0.0, 1.0, 0.0]])) ** 2).mean()
    loss = build_loss({"name": "mse", "apply_softmax": True}, 3)
    assert torch.allclose(loss(scores, target), expected)
    raw = build_loss({"name": "mse", "apply_softmax": False}, 3)(scores, target)
    assert torch.allclose(raw, torch.tensor((1.0 + 1.0 + 9.0) / 3))


@pytest.mark.parametrize(
    ("cfg", "bad_key"),
    [
        ({"name": "hinge"}, "loss.name"),
        ({"name": "cross_entropy", "label_smoothing": 1.5}, "loss.label_smoothing"),
    ],
)
def test_bad_loss_config_names_the_key(cfg: dict, bad_key: str) -> None:
    with pytest.raises(ConfigError, match=bad_key):
        build_loss(cfg, 10)
