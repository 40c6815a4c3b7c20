"""``cnnlab visualize`` on a LeNet-5 trained on the bundled digits, and its bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from tests.conftest import only_run_dir

from cnnlab import cli
from cnnlab.interpret import class_model
from cnnlab.interpret.inputs import mean_image
from cnnlab.lit.build import build_datamodule
from cnnlab.lit.checkpoint import load_classifier


@pytest.fixture(scope="module")
def digits_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """best.ckpt of LeNet-5 trained for a few epochs on digits (about 10 s on a laptop CPU)."""
    run_dir = tmp_path_factory.mktemp("lenet5_digits")
    args = ["train", "logger=none", "trainer.max_epochs=6", f"hydra.run.dir={run_dir}"]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("sys.argv", ["cnnlab", *args])
        mp.delenv(cli.TASK_ENV, raising=False)
        cli.main(args)
    return run_dir / "checkpoints" / "best.ckpt"


def test_class_models_of_a_trained_lenet5_are_recognised(digits_ckpt: Path) -> None:
    module = load_classifier(digits_ckpt)
    datamodule = build_datamodule(OmegaConf.create(module.hparams["data"]))
    average = mean_image(datamodule.train_dataloader())

    out = class_model(module.net, range(10), average, datamodule.mean, datamodule.std)

    assert (out.scores > out.start_scores + 0.5).all(), (out.start_scores, out.scores)
    # The saved pictures are what the network scored: it favours its own class models,
    # where the zero image (the mean image) is nobody's.
    mean, std = (torch.tensor(v).view(1, -1, 1, 1) for v in (datamodule.mean, datamodule.std))
    with torch.no_grad():
        probs = module.net((out.images - mean) / std).softmax(dim=1).diagonal()
        start = module.net((average[None] - mean) / std).softmax(dim=1)[0]
    assert probs.median() > 0.5 and start.max() < 0.5, (probs, start)
    assert int((out.predicted == out.classes).sum()) >= 9, out.predicted


@pytest.mark.parametrize("method", ["saliency", "gradcam", "class_model", "filters"])
def test_each_method_writes_its_figure_maps_and_index(
    run_cli, digits_ckpt: Path, tmp_path: Path, method: str
) -> None:
    run_cli("visualize", f"ckpt_path={digits_ckpt}", f"method={method}", "per_class=1")

    run_dir = only_run_dir(tmp_path / "outputs")
    index = json.loads((run_dir / "index.json").read_text())
    assert index["method"] == method and index["figures"] == [f"{method}.png"]
    with Image.open(run_dir / f"{method}.png") as png:
        assert png.format == "PNG" and png.width > 100
    array = np.load(run_dir / f"{method}.npy")
    if method in ("saliency", "gradcam"):
        assert array.shape == (10, 28, 28)  # one test image per class
        assert [image["label"] for image in index["images"]] == list(range(10))
    if method == "gradcam":
        assert index["target_layer"] == "features.c3.conv"
    if method == "class_model":
        assert array.shape == (10, 1, 28, 28) and len(index["classes"]) == 10
    if method == "filters":
        assert array.shape == (6, 1, 5, 5)  # LeNet-5's C1
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert not list(run_dir.glob(".*.tmp"))


def test_user_images_a_chosen_class_and_layer(run_cli, digits_ckpt: Path, tmp_path: Path) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")

    run_cli(
        "visualize",
        f"ckpt_path={digits_ckpt}",
        "method=gradcam",
        f"input={folder}",
        "target_class=7",
        "target_layer=net.features.c1.conv",
    )

    index = json.loads((only_run_dir(tmp_path / "outputs") / "index.json").read_text())
    assert index["target_layer"] == "net.features.c1.conv"
    assert [image["target"] for image in index["images"]] == [7, 7, 7]
    assert [image["label"] for image in index["images"]] == [None, None, None]
    assert index["images"][0]["source"] == str(folder / "0.png")


def test_feature_maps_of_chosen_layers(run_cli, digits_ckpt: Path, tmp_path: Path) -> None:
    run_cli(
        "visualize",
        f"ckpt_path={digits_ckpt}",
        "method=feature_maps",
        "per_class=1",
        "layers=[features.c1,features.c3]",
    )
    run_dir = only_run_dir(tmp_path / "outputs")
    index = json.loads((run_dir / "index.json").read_text())
    assert index["layers"] == ["features.c1", "features.c3"]
    assert np.load(run_dir / "feature_maps.features.c1.npy").shape == (4, 6, 28, 28)
    assert np.load(run_dir / "feature_maps.features.c3.npy").shape == (4, 16, 10, 10)
    assert len(index["figures"]) == 4


@pytest.mark.parametrize(
    ("method", "override", "named"),
    [
        ("deepdream", "per_class=1", "method: "),
        ("gradcam", "target_layer=features.c9", "target_layer: "),
        ("gradcam", "target_class=12", "target_class: "),
        ("saliency", "target_class=cat", "target_class: "),
        ("saliency", "per_class=0", "per_class: "),
        ("class_model", "class_model.steps=0", "class_model.steps: "),
        ("feature_maps", "layers=[features.nope]", "layers: "),
        ("saliency", "device=tpu", "device: "),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_key(
    run_cli, digits_ckpt: Path, capsys, method: str, override: str, named: str
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("visualize", f"ckpt_path={digits_ckpt}", f"method={method}", override)
    assert exit_info.value.code == 1
    assert f"error: {named}" in capsys.readouterr().err


@pytest.mark.parametrize("target", ["missing.ckpt", "images"])
def test_missing_files_are_named(run_cli, digits_ckpt: Path, tmp_path: Path, capsys, target):
    ckpt = tmp_path / "missing.ckpt" if target == "missing.ckpt" else digits_ckpt
    with pytest.raises(SystemExit):
        run_cli("visualize", f"ckpt_path={ckpt}", f"input={tmp_path / 'images'}")
    assert str(tmp_path / target) in capsys.readouterr().err
