"""Saliency maps are the input gradients of the class score, computed by captum."""

from __future__ import annotations

import sys

import pytest
import torch

from cnnlab.interpret import saliency
from cnnlab.models import build_model


def _autograd_saliency(net: torch.nn.Module, x: torch.Tensor, target: torch.Tensor):
    x = x.clone().requires_grad_(True)
    scores = net(x)
    scores[torch.arange(len(target)), target].sum().backward()
    return x.grad.abs().amax(dim=1)


@pytest.mark.parametrize(
    ("name", "kwargs", "channels"),
    [
        ("lenet5", {"image_size": 28}, 1),
        ("simple_cnn", {"image_size": 16, "widths": [4, 8], "norm": "batch"}, 3),
    ],
)
def test_saliency_equals_the_input_gradient(name: str, kwargs: dict, channels: int) -> None:
    torch.manual_seed(0)
    size = kwargs["image_size"]
    net = build_model(name, in_channels=channels, num_classes=5, **kwargs).eval()
    x = torch.randn(4, channels, size, size)
    target = torch.tensor([0, 3, 4, 1])

    maps = saliency(net, x, target)

    assert maps.shape == (4, size, size)
    torch.testing.assert_close(maps, _autograd_saliency(net, x, target))


def test_saliency_leaves_the_network_as_it_was() -> None:
    net = build_model("simple_cnn", in_channels=1, num_classes=3, widths=[4], dropout=0.5)
    net.train()
    inplace = [m for m in net.modules() if getattr(m, "inplace", False)]
    assert inplace  # the factory's ReLUs overwrite their input; saliency must not care

    saliency(net, torch.randn(2, 1, 8, 8), torch.tensor([0, 2]))

    assert net.training
    assert all(m.inplace for m in inplace)
    assert all(p.requires_grad and p.grad is None for p in net.parameters())


def test_a_missing_captum_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import captum.attr` fail, as it does where captum is absent.
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    net = build_model("lenet5", in_channels=1, num_classes=2, image_size=28)
    with pytest.raises(ImportError, match=r"pip install 'cnnlab\[interpret\]'"):
        saliency(net, torch.zeros(1, 1, 28, 28), torch.tensor([0]))
