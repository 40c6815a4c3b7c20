"""``cnnlab summary``: the table, summary.json, overrides without data on disk, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.conftest import only_run_dir


def test_summary_writes_json_for_overridden_shapes(
    run_cli, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # CIFAR-10 is not on disk (CNNLAB_DATA is an empty tmp folder): only its numbers are read.
    run_cli(
        "summary", "model=resnet18", "data=cifar10", "data.source.download=false",
        "norm=batch", "model.num_classes=7", "data.image_size=40",
    )  # fmt: skip
    run_dir = only_run_dir(tmp_path / "outputs")
    written = json.loads((run_dir / "summary.json").read_text())
    assert written["model"] == "resnet18"
    assert written["input_shape"] == [1, 3, 40, 40]
    assert written["output_shape"] == [1, 7]
    # 11,689,512 at ImageNet size, less the FC rows of 993 classes and the 7x7 -> 3x3 stem.
    small_stem = 64 * 3 * (7 * 7 - 3 * 3)
    assert written["params"] == written["trainable_params"] == 11_689_512 - 993 * 513 - small_stem
    assert isinstance(written["macs"], int) and written["macs"] > 500_000_000
    assert written["layers"][0]["name"] == "stem.conv.conv"
    assert not list(run_dir.glob(".*.tmp"))
    out = capsys.readouterr().out
    assert "Receptive field" in out and "stem.conv.conv" in out and f"{written['params']:,}" in out


def test_in_channels_override_and_depth(run_cli, tmp_path: Path) -> None:
    run_cli("summary", "model=searchable", "model.in_channels=5", "depth=1")
    result = json.loads((only_run_dir(tmp_path / "outputs") / "summary.json").read_text())
    assert result["input_shape"] == [1, 5, 28, 28]
    assert [row["name"] for row in result["layers"]] == ["features", "head"]


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("depth=0", "depth"),
        ("data.image_size=[28]", "data.image_size"),
        ("model.stem=x", "model.stem"),
    ],
)
def test_bad_values_exit_with_the_key(
    run_cli, override: str, key: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run_cli("summary", "model=resnet18", override)
    assert exit_info.value.code == 1
    assert f"error: {key}: " in capsys.readouterr().err
