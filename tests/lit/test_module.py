"""ImageClassifier details that the end-to-end runs do not isolate."""

from __future__ import annotations

import warnings

import torch

from cnnlab.lit.module import ImageClassifier


def _classifier(**model: object) -> ImageClassifier:
    return ImageClassifier(
        model={
            "_target_": "cnnlab.models.build_model",
            "in_channels": 3,
            "num_classes": 10,
            "image_size": 32,
            **model,
        },
        num_classes=10,
        loss={"name": "cross_entropy"},
        optimizer={"_target_": "torch.optim.SGD", "lr": 0.1},
    )


def test_googlenet_auxiliary_heads_get_their_weighted_loss() -> None:
    torch.manual_seed(0)
    module = _classifier(name="googlenet", aux_logits=True, width_mult=0.25)
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        loss = module.training_step((x, y), 0)
    main = module.criterion(module.net(x), y)  # a second forward: same weights, eval-free
    aux = module.net.aux_scores
    assert len(aux) == 2
    expected = main + module.net.aux_weight * sum(module.criterion(s, y) for s in aux)
    assert torch.allclose(loss, expected, rtol=1e-4)
    loss.backward()
    for head in module.net.aux.values():
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_networks_without_auxiliary_heads_add_nothing() -> None:
    module = _classifier(name="simple_cnn", widths=[8, 16])
    x, y = torch.randn(4, 3, 32, 32), torch.randint(0, 10, (4,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = module.training_step((x, y), 0)
    assert torch.allclose(loss, module.criterion(module.net(x), y))
