"""Class model visualisation (Simonyan, Vedaldi and Zisserman 2014, arXiv:1312.6034, sec. 2).

For a class ``c`` find the L2-regularised image ``I`` that maximises
``S_c(I) - lambda ||I||_2^2`` by gradient ascent on ``I`` with the weights
fixed, starting from the zero image; then add the training-set mean image.

The paper's network takes zero-centred images (the mean image subtracted), so
``I`` lives in that space and ``I = 0`` is the mean image. A cnnlab network
takes ``(x - mean_c) / std_c`` per channel; here ``I`` is the zero-centred
image in units of ``std_c``: the network sees ``normalise(mean_image) + I``
and the picture is ``mean_image + I * std_c``, exactly the image it scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cnnlab.errors import ConfigError
from cnnlab.interpret.layers import attribution_mode


@dataclass(frozen=True)
class ClassModels:
    """The result of :func:`class_model`, one row per class.

    Attributes:
        classes: The class indices, (K,).
        images: The class model images on the [0, 1] pixel scale (mean image
            added, not clipped), (K, C, H, W).
        deviations: The optimised zero-centred images ``I`` (network units), (K, C, H, W).
        start_scores: ``S_c`` of the zero image ``I = 0`` (the mean image), (K,).
        scores: ``S_c`` of the final image, (K,).
        predicted: The network's top class for each final image, (K,).
    """

    classes: torch.Tensor
    images: torch.Tensor
    deviations: torch.Tensor
    start_scores: torch.Tensor
    scores: torch.Tensor
    predicted: torch.Tensor


def check_settings(steps: int, lr: float, l2: float) -> None:
    """Raise :class:`ConfigError` (``class_model.steps``/``lr``/``l2``) for unusable values."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError("class_model.steps", f"must be a positive int, got {steps!r}")
    if not lr > 0:
        raise ConfigError("class_model.lr", f"must be > 0, got {lr!r}")
    if not l2 >= 0:
        raise ConfigError("class_model.l2", f"must be >= 0, got {l2!r}")


def class_model(
    model: nn.Module,
    classes: Sequence[int],
    mean_image: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    *,
    steps: int = 100,
    lr: float = 0.5,
    l2: float = 0.03,
) -> ClassModels:
    """Class model images by gradient ascent on the input, one per class, all at once.

    Example:
        >>> from cnnlab.models import build_model
        >>> net = build_model("lenet5", in_channels=1, num_classes=10, image_size=28)
        >>> out = class_model(net, [0, 1], torch.full((1, 28, 28), 0.3), [0.3], [0.3], steps=5)
        >>> tuple(out.images.shape), bool((out.scores > out.start_scores).all())
        ((2, 1, 28, 28), True)

    Args:
        model: A network returning pre-softmax class scores.
        classes: The classes to visualise.
        mean_image: The training-set mean image on the [0, 1] scale, (C, H, W).
        mean: Per-channel normalisation mean of the network's input.
        std: Per-channel normalisation std.
        steps: Gradient ascent steps.
        lr: Step size (plain gradient ascent, as in the paper).
        l2: ``lambda``, the weight of ``||I||_2^2``.

    Returns:
        A :class:`ClassModels`.

    Raises:
        ConfigError: For unusable ``steps``, ``lr`` or ``l2``.
    """
    check_settings(steps, lr, l2)
    device = mean_image.device
    shape = (1, -1, 1, 1)
    mean_t = torch.tensor(list(mean), device=device, dtype=torch.float32).view(shape)
    std_t = torch.tensor(list(std), device=device, dtype=torch.float32).view(shape)
    base = ((mean_image.float().unsqueeze(0) - mean_t) / std_t).expand(len(classes), -1, -1, -1)
    target = torch.as_tensor(list(classes), dtype=torch.long, device=device)
    rows = torch.arange(len(classes), device=device)

    with attribution_mode(model):
        deviation = torch.zeros_like(base, requires_grad=True)
        with torch.no_grad():
            start = model(base)[rows, target]
        # The images are independent (eval mode), so one summed objective ascends all at once.
        optimizer = torch.optim.SGD([deviation], lr=lr)
        for _ in range(steps):
            optimizer.zero_grad()
            scores = model(base + deviation)[rows, target]
            objective = scores - l2 * deviation.square().sum(dim=(1, 2, 3))
            (-objective.sum()).backward()
            optimizer.step()
        with torch.no_grad():
            final = model(base + deviation)
    deviation = deviation.detach()
    return ClassModels(
        classes=target,
        images=mean_image.float().unsqueeze(0) + deviation * std_t,
        deviations=deviation,
        start_scores=start.detach(),
        scores=final[rows, target].detach(),
        predicted=final.argmax(dim=1).detach(),
    )
