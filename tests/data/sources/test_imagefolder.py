"""Image folders: generated PNG/JPEG files decoded with Pillow, layouts and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data.sources import ImageFolderSource
from cnnlab.data.sources.imagefolder import decode_image
from cnnlab.errors import ConfigError, DataError


def _write_images(
    folder: Path, count: int, size: tuple[int, int] = (20, 14), seed: int = 0
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        suffix = ".png" if i % 2 == 0 else ".jpg"
        Image.fromarray(pixels).save(folder / f"img{i}{suffix}")


def _tree(root: Path, splits: dict[str, dict[str, int]]) -> Path:
    for split, classes in splits.items():
        for name, count in classes.items():
            _write_images(root / split / name, count, seed=count)
    return root


def test_train_val_layout_uses_val_as_test(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train": {"cat": 3, "dog": 4}, "val": {"cat": 1, "dog": 2}})
    data = ImageFolderSource(root, image_size=16, in_channels=3).load()
    assert data.classes == ["cat", "dog"]
    assert data.val is None  # carved from train by the data module
    assert data.train.labels.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert data.test.labels.tolist() == [0, 1, 1]
    image, label = data.train[5]
    assert image.shape == (3, 16, 16) and image.dtype == torch.uint8 and int(label) == 1


def test_train_val_test_layout(tmp_path: Path) -> None:
    splits = {"train": {"a": 2, "b": 2}, "val": {"a": 1, "b": 1}, "test": {"b": 1}}
    data = ImageFolderSource(_tree(tmp_path, splits), image_size=8).load()
    assert len(data.val) == 2 and data.test.labels.tolist() == [1]


def test_greyscale_conversion_and_resize(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train": {"x": 2, "y": 2}, "test": {"x": 1}})
    data = ImageFolderSource(root, image_size=10, in_channels=1).load()
    assert data.train[0][0].shape == (1, 10, 10)


def test_decode_keeps_pixels_when_size_matches(tmp_path: Path) -> None:
    pixels = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = decode_image(tmp_path / "a.png", 3, 4)
    assert torch.equal(out, torch.from_numpy(pixels).permute(2, 0, 1))


def test_subset_keeps_files_and_labels(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train": {"a": 2, "b": 3}, "val": {"a": 1}})
    train = ImageFolderSource(root, image_size=8).load().train
    part = train.subset(torch.tensor([0, 4]))
    assert part.labels.tolist() == [0, 1] and part.files == [train.files[0], train.files[4]]


def test_missing_root_names_train_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        ImageFolderSource(tmp_path / "nowhere").load()
    assert str(err.value).startswith(str(tmp_path / "nowhere" / "train"))


def test_empty_class_folder_is_named(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train": {"a": 2}, "val": {"a": 1}})
    (root / "train" / "empty").mkdir()
    with pytest.raises(DataError, match="no images") as err:
        ImageFolderSource(root).load()
    assert str(root / "train" / "empty") in str(err.value)


def test_train_without_classes(tmp_path: Path) -> None:
    (tmp_path / "train").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        ImageFolderSource(tmp_path).load()


def test_no_val_or_test_folder(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train": {"a": 2}})
    with pytest.raises(DataError, match="val/ or test/"):
        ImageFolderSource(root).load()


def test_unknown_class_in_val(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train": {"a": 2}, "val": {"zebra": 1}})
    with pytest.raises(DataError, match="not among the train/ classes") as err:
        ImageFolderSource(root).load()
    assert str(root / "val" / "zebra") in str(err.value)


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"train": {"a": 1}, "val": {"a": 1}})
    bad = root / "train" / "a" / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    dataset = ImageFolderSource(root, image_size=8).load().train
    index = dataset.files.index(bad)
    with pytest.raises(DataError, match="cannot decode") as err:
        dataset[index]
    assert str(bad) in str(err.value)


def test_unsupported_channels(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.in_channels"):
        ImageFolderSource(tmp_path, in_channels=2)


def test_train_counts_the_class_folders_itself(tmp_path: Path, run_subprocess) -> None:
    # No data.num_classes on the command line: the config counts train/'s class folders.
    root = _tree(tmp_path / "pets", {"train": {"cat": 8, "dog": 8, "owl": 8}, "test": {"cat": 2}})
    proc = run_subprocess(
        "train",
        "data=imagefolder",
        f"data.source.root={root}",
        "data.image_size=28",
        "data.num_workers=0",
        "data.val_fraction=0.25",
        "debug=limit",
        "logger=none",
        f"hydra.run.dir={tmp_path / 'run'}",
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["data"]["num_classes"] == 3
    assert record["config"]["model"]["num_classes"] == 3


def test_a_missing_train_folder_is_one_line_naming_it(tmp_path: Path, run_subprocess) -> None:
    proc = run_subprocess("train", "data=imagefolder", f"data.source.root={tmp_path / 'none'}")
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert str(tmp_path / "none" / "train") in last and "folder not found" in last, last
