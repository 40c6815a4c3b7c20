"""Checkpoints keep loading: every model's state_dict keys and shapes are pinned.

A refactor that renames a module (``head.fc`` -> ``classifier.fc``) or reorders a
``Sequential`` changes the keys, and ``load_state_dict`` then refuses every
checkpoint saved before it. Each row fingerprints the sorted (key, shape) pairs of
one build; the expected values were computed from the code as of commit 7ca58cc
(the layout checkpoints in the wild have). Models are built on the ``meta`` device,
so the ImageNet-size builds cost no memory.

To re-pin after an intended, announced format change: run this module's
``fingerprint`` for each row and paste the result.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import torch

from cnnlab.models import build_model, list_models

GROUP = {"name": "group", "groups": 2}
# The builds every model gets: each stem (None size: ImageNet, 32: small) and norm
# (the model's own, none, group).
BUILDS: tuple[dict[str, Any], ...] = (
    {},
    {"image_size": 32},
    {"image_size": 32, "norm": "none"},
    {"image_size": 32, "norm": GROUP},
)
# model -> fingerprint of each of BUILDS.
PINNED: dict[str, tuple[str, ...]] = {
    "airbench94": ("39:f9a4952999", "39:f9a4952999", "9:12771beadf", "21:9c1cc064b3"),
    "alexnet": ("16:7f9edeb48b", "16:ec8039ef39", "16:ec8039ef39", "21:8b440130cb"),
    "densenet121": ("727:6b8e67c9dd", "722:ed651363aa", "242:be565b6dee", "362:106c18f8eb"),
    "densenet169": ("1015:ffe6ccab80", "1010:812f58029d", "338:3427df9d90", "506:c41d3872d4"),
    "densenet_bc": ("596:5217dc85d7", "596:5217dc85d7", "200:c11b629e8e", "299:854301abe8"),
    "googlenet": ("344:02564e89be", "344:859a480024", "116:b5ced04c5e", "173:50145c6106"),
    "lenet5": ("10:fa71bb9eec", "10:fa71bb9eec", "10:fa71bb9eec", "12:0987548387"),
    "mobilenet_v1": ("164:c2ca13badd", "164:c2ca13badd", "56:3916532206", "83:acc74bb992"),
    "mobilenet_v2": ("314:ce39368dad", "314:ce39368dad", "106:ba49b95181", "158:6e4267c829"),
    "resnet18": ("122:a105935495", "122:b70f2d7cbd", "42:ca49f32f35", "62:cd2fadb192"),
    "resnet34": ("218:ba2a4ee33a", "218:92117ed450", "74:f5b434baf5", "110:aec467e947"),
    "resnet50": ("320:b2b1b070b9", "320:f8596af5bb", "108:8e756bcaa5", "161:3edee8a24e"),
    "searchable": ("56:a983f13e7b", "56:1e3af61195", "20:92e2ab8746", "29:97c7ee11a5"),
    "shufflenet_v1": ("296:26384347d1", "296:26384347d1", "100:bb8b1e6166", "149:eb533295e6"),
    "simple_cnn": ("10:98e4721a84", "10:98e4721a84", "10:98e4721a84", "14:e8815ed944"),
    "vgg11": ("22:95d0b5f9a7", "22:0631f1da2d", "22:0631f1da2d", "30:b543b7d11b"),
    "vgg13": ("26:0e133e2eb8", "26:fcc8e48ffc", "26:fcc8e48ffc", "36:4a56a98688"),
    "vgg16": ("32:d77a22cb45", "32:83e670d0ed", "32:83e670d0ed", "45:3566e66b29"),
    "vgg19": ("38:6e7106c12c", "38:fbeb2770b3", "38:fbeb2770b3", "54:c28f4c68e6"),
}  # fmt: skip
# (model, options, fingerprint): the options that add, drop or reshape modules.
OPTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("alexnet", {"towers": 2, "lrn": False, "fc_width": 64}, "16:c80f94b0c4"),
    ("vgg11", {"image_size": 64, "width": 32, "fc_width": 64}, "22:fe6c79592a"),
    ("lenet5", {"c3_table": "lecun", "subsampling": "trainable"}, "14:9deaccaf45"),
    ("simple_cnn", {"widths": [8, 16, 32], "convs_per_stage": 3}, "20:06fbf44626"),
    ("googlenet", {"aux_logits": True, "branch5_kernel": 3}, "364:1df58a03cf"),
    ("googlenet", {"image_size": 32, "aux_logits": True, "width_mult": 0.5}, "364:5d5b389109"),
    ("densenet_bc", {"depth": 40, "growth_rate": 4, "compression": 1.0}, "236:ab11236716"),
    ("densenet121", {"image_size": 32, "growth_rate": 8, "init_features": 12}, "722:4bbea6b945"),
    ("mobilenet_v1", {"width_mult": 0.5}, "164:b82e6fa89a"),
    ("mobilenet_v2", {"width_mult": 1.4}, "314:8547cf62fe"),
    ("shufflenet_v1", {"groups": 8, "scale": 0.5}, "296:61afb0bea9"),
    ("shufflenet_v1", {"image_size": 32, "groups": 1}, "296:38e8c47a6f"),
    ("resnet50", {"image_size": 32, "base_width": 16}, "320:da6d430d15"),
    ("searchable", {"depth": [1, 2, 3], "conv": ["plain", "separable", "dilated"],
                    "skip": [True, False, True], "kernel_size": 5}, "52:96fde34bb1"),
    ("searchable", {"num_stages": 2, "widths": [8, 8], "skip": True}, "38:f2e07f90cb"),
    ("airbench94", {"widths": [8, 16], "logit_scale": 0.5, "dirac_init": False}, "27:46d3d49f93"),
]  # fmt: skip


def fingerprint(model: str, options: dict[str, Any]) -> str:
    """The number of state_dict entries and a short hash of the sorted (key, shape) pairs."""
    with torch.device("meta"):
        net = build_model(model, **{"in_channels": 3, "num_classes": 10, **options})
    entries = sorted((key, tuple(value.shape)) for key, value in net.state_dict().items())
    digest = hashlib.sha256(repr(entries).encode()).hexdigest()[:10]
    return f"{len(entries)}:{digest}"


def test_every_model_is_pinned() -> None:
    assert set(PINNED) == set(list_models())


@pytest.mark.parametrize("model", sorted(PINNED))
def test_keys_and_shapes_of_every_stem_and_norm_are_unchanged(model: str) -> None:
    assert tuple(fingerprint(model, build) for build in BUILDS) == PINNED[model]


@pytest.mark.parametrize(("model", "options", "expected"), OPTIONS,
                         ids=[f"{row[0]}-{i}" for i, row in enumerate(OPTIONS)])  # fmt: skip
def test_keys_and_shapes_with_options_are_unchanged(
    model: str, options: dict[str, Any], expected: str
) -> None:
    assert fingerprint(model, options) == expected
