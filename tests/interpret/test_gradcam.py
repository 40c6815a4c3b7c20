"""Grad-CAM finds the object that decides the class, and only in a trained network."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.interpret import default_gradcam_layer, find_layer, gradcam
from cnnlab.models import build_model
from cnnlab.models.layers import conv, pool

SIZE, BOX = 24, 6
QUADRANT = SIZE // 2


def _quadrant_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Class q in 1..4: a bright filled square in quadrant q - 1; class 0: no square.

    Every image has hollow squares of the same size in some of the other
    quadrants, so brightness or edges alone do not find the object, and the
    square-free class 0 means a class cannot be told from empty quadrants: the
    square itself is the evidence. Returns images, labels and each square's
    top-left corner.
    """
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 1, SIZE, SIZE, generator=g) * 0.3
    labels = torch.randint(0, 5, (n,), generator=g)
    corners = torch.zeros(n, 2, dtype=torch.long)

    def corner(quadrant: int) -> tuple[int, int]:
        qr, qc = divmod(quadrant, 2)
        dr, dc = torch.randint(0, QUADRANT - BOX + 1, (2,), generator=g).tolist()
        return qr * QUADRANT + dr, qc * QUADRANT + dc

    for i in range(n):
        for q in range(4):
            if q != labels[i] - 1 and torch.rand(1, generator=g) < 0.5:
                r, c = corner(q)
                images[i, 0, r : r + BOX, c : c + BOX] = 1.0
                images[i, 0, r + 2 : r + BOX - 2, c + 2 : c + BOX - 2] = 0.15
        if labels[i] > 0:
            r, c = corner(int(labels[i]) - 1)
            images[i, 0, r : r + BOX, c : c + BOX] = 1.0
            corners[i] = torch.tensor([r, c])
    return images, labels, corners


def _small_cnn() -> nn.Sequential:
    return nn.Sequential(
        conv(1, 8, 3, act="relu"),
        pool("max", 2),
        conv(8, 16, 3, act="relu"),
        pool("max", 2),
        nn.Flatten(),
        nn.Linear(16 * (SIZE // 4) ** 2, 32),
        nn.ReLU(),
        nn.Linear(32, 5),
    )


def _peak_in_box_rate(maps: torch.Tensor, corners: torch.Tensor) -> float:
    flat = maps.flatten(1)
    rows, cols = flat.argmax(dim=1) // SIZE, flat.argmax(dim=1) % SIZE
    inside = (
        (rows >= corners[:, 0])
        & (rows < corners[:, 0] + BOX)
        & (cols >= corners[:, 1])
        & (cols < corners[:, 1] + BOX)
        & (flat.amax(dim=1) > 0)  # an all-zero map points nowhere
    )
    return inside.float().mean().item()


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    """The small CNN, trained for a few seconds to full test accuracy."""
    torch.manual_seed(0)
    x, y, _ = _quadrant_images(640, seed=0)
    net = _small_cnn()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(8):
        for idx in torch.randperm(len(y)).split(32):
            loss = nn.functional.cross_entropy(net(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return net.eval()


def test_gradcam_peaks_on_the_object_of_a_trained_net_and_not_of_a_random_one(
    trained: nn.Module,
) -> None:
    x, y, corners = _quadrant_images(200, seed=1)
    keep = y > 0  # images whose class is decided by a square
    x, y, corners = x[keep], y[keep], corners[keep]
    with torch.no_grad():
        assert (trained(x).argmax(1) == y).float().mean() >= 0.95
    layer_path = default_gradcam_layer(trained, x)
    assert layer_path == "2.conv"  # the last conv; its 12x12 maps keep the layout

    maps, coarse = gradcam(trained, x, y, find_layer(trained, layer_path))
    assert maps.shape == (len(y), SIZE, SIZE) and coarse.shape == (len(y), 12, 12)
    assert (maps >= 0).all()
    trained_rate = _peak_in_box_rate(maps, corners)

    # Adebayo et al. 2018: the same method on randomised weights must give other maps.
    randomised = copy.deepcopy(trained)
    torch.manual_seed(1)
    for module in randomised.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    random_maps, _ = gradcam(randomised, x, y, find_layer(randomised, layer_path))
    random_rate = _peak_in_box_rate(random_maps, corners)

    assert trained_rate >= 0.9, trained_rate
    assert random_rate < 0.6 and random_rate < trained_rate - 0.3, (random_rate, trained_rate)


def test_the_default_layer_skips_convs_with_1x1_outputs() -> None:
    # LeNet-5's C5 is a fully connected layer in conv form: 1x1 maps at 28x28 input.
    net = build_model("lenet5", in_channels=1, num_classes=10, image_size=28)
    assert default_gradcam_layer(net, torch.zeros(1, 1, 28, 28)) == "features.c3.conv"


def test_a_layer_path_may_carry_the_lightning_modules_net_prefix() -> None:
    net = build_model("lenet5", in_channels=1, num_classes=10, image_size=28)
    assert find_layer(net, "net.features.c1.conv") is net.features.c1.conv


def test_an_unknown_layer_is_a_config_error_listing_the_conv_layers() -> None:
    net = build_model("lenet5", in_channels=1, num_classes=10, image_size=28)
    with pytest.raises(ConfigError, match=r"^target_layer: ") as info:
        find_layer(net, "net.c9.conv")
    assert "features.c1.conv" in str(info.value) and "features.c5.conv" in str(info.value)
