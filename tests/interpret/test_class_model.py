"""Class model visualisation: gradient ascent on the input raises the class score."""

from __future__ import annotations

import pytest
import torch

from cnnlab.errors import ConfigError
from cnnlab.interpret import class_model
from cnnlab.models import build_model


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("lenet5", in_channels=1, num_classes=4, image_size=28)


def test_ascent_raises_each_class_score_above_the_zero_image() -> None:
    net = _net()
    mean_image = torch.rand(1, 28, 28) * 0.5

    out = class_model(net, [0, 1, 2, 3], mean_image, [0.25], [0.3], steps=30, lr=0.1, l2=0.01)

    # An untrained net's gradients are small; the trained LeNet-5 test checks the size.
    assert (out.scores > out.start_scores).all()
    # The zero image is the mean image: I = 0 gives the network normalise(mean_image).
    zero = ((mean_image - 0.25) / 0.3).unsqueeze(0)
    with torch.no_grad():
        torch.testing.assert_close(out.start_scores, net(zero)[0])
    # The picture is the mean image plus the deviation, back on the pixel scale.
    torch.testing.assert_close(out.images, mean_image + out.deviations * 0.3)
    assert all(p.grad is None and p.requires_grad for p in net.parameters())


def test_a_larger_l2_keeps_the_image_closer_to_the_mean_image() -> None:
    net, mean_image = _net(), torch.full((1, 28, 28), 0.3)
    loose = class_model(net, [1], mean_image, [0.3], [0.3], steps=30, l2=0.001)
    tight = class_model(net, [1], mean_image, [0.3], [0.3], steps=30, l2=1.0)
    assert tight.deviations.norm() < loose.deviations.norm() / 2


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"steps": 0}, "class_model.steps"),
        ({"lr": 0.0}, "class_model.lr"),
        ({"l2": -1.0}, "class_model.l2"),
    ],
)
def test_unusable_settings_name_their_key(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        class_model(_net(), [0], torch.zeros(1, 28, 28), [0.0], [1.0], **kwargs)
