"""compare_metrics and load_run on real run folders in tmp_path."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from cnnlab.errors import DataError
from cnnlab.files.atomic import write_json_atomic
from cnnlab.records.manifest import build_manifest
from cnnlab.records.reproduce import RunRecord, compare_metrics, load_run

METRICS = {"test/acc": 0.9712, "test/loss": 0.0931, "val/acc_best": 0.98}


# --- compare_metrics -----------------------------------------------------------------------
def test_identical_metrics_have_no_differences() -> None:
    assert compare_metrics(METRICS, dict(METRICS)) == []


def test_every_kind_of_difference_is_reported_in_name_order() -> None:
    actual = {"test/acc": 0.9705, "val/acc_best": 0.98, "test/acc_top5": 1.0}
    assert compare_metrics(METRICS, actual) == [
        "test/acc: expected 0.9712, got 0.9705 (difference -0.0007)",
        "test/acc_top5: not in the original run (got 1.0)",
        "test/loss: missing (expected 0.0931)",
    ]


def test_smallest_float_difference_is_caught_by_default() -> None:
    value = 0.1 + 0.2
    [line] = compare_metrics({"m": 0.3}, {"m": value})
    assert line.startswith("m: expected 0.3, got 0.30000000000000004")


@pytest.mark.parametrize(
    ("rtol", "atol", "same"),
    [(0.0, 0.0, False), (0.0, 0.002, True), (0.0, 0.0005, False), (0.01, 0.0, True)],
)
def test_tolerances(rtol: float, atol: float, same: bool) -> None:
    result = compare_metrics({"acc": 0.970}, {"acc": 0.971}, rtol=rtol, atol=atol)
    assert (result == []) is same


def test_nan_and_infinity() -> None:
    nan, inf = math.nan, math.inf
    assert compare_metrics({"a": nan, "b": inf}, {"a": nan, "b": inf}) == []
    assert compare_metrics({"a": 1.0}, {"a": nan}) == ["a: expected 1.0, got nan"]
    assert compare_metrics({"b": inf}, {"b": -inf}) == ["b: expected inf, got -inf"]


@pytest.mark.parametrize("kwargs", [{"rtol": -1e-3}, {"atol": -1.0}, {"atol": math.nan}])
def test_bad_tolerance_is_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        compare_metrics({}, {}, **kwargs)


# --- load_run ------------------------------------------------------------------------------
def _write_run(folder: Path, *, status: str = "completed", hydra: bool = True) -> Path:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    manifest = build_manifest(
        OmegaConf.create({"seed": 3, "model": {"name": "lenet5"}}),
        overrides=["model=lenet5", "seed=3"],
        command=["cnnlab", "train", "model=lenet5", "seed=3"],
        seed=3,
        start=start,
        end=start,
        status=status,
        timings={"fit_s": 1.0},
        error=None,
    )
    write_json_atomic(folder / "run.json", manifest)
    if status == "completed":
        write_json_atomic(folder / "metrics.json", METRICS)
    if hydra:
        (folder / ".hydra").mkdir()
        (folder / ".hydra" / "overrides.yaml").write_text("- model=lenet5\n- seed=3\n- +x=1\n")
    return folder


def test_load_run_reads_the_folder(tmp_path: Path) -> None:
    record = load_run(_write_run(tmp_path))
    assert isinstance(record, RunRecord)
    assert record.dir == tmp_path
    assert record.manifest["seed"] == 3
    assert record.manifest["config"]["model"] == {"name": "lenet5"}
    assert record.metrics == METRICS
    assert record.overrides == ["model=lenet5", "seed=3", "+x=1"]


def test_overrides_fall_back_to_the_manifest(tmp_path: Path) -> None:
    record = load_run(_write_run(tmp_path, hydra=False))
    assert record.overrides == ["model=lenet5", "seed=3"]


def test_empty_overrides_file_means_no_overrides(tmp_path: Path) -> None:
    _write_run(tmp_path)
    (tmp_path / ".hydra" / "overrides.yaml").write_text("[]\n")
    assert load_run(tmp_path).overrides == []


def test_string_path_is_accepted(tmp_path: Path) -> None:
    assert load_run(str(_write_run(tmp_path))).dir == tmp_path


def _expect_data_error(path: Path, folder: Path, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        load_run(folder)
    assert info.value.path == str(path)
    assert str(info.value).startswith(f"{path}: ")


def test_missing_folder(tmp_path: Path) -> None:
    _expect_data_error(tmp_path / "nope", tmp_path / "nope", "does not exist")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    file = tmp_path / "run.json"
    file.write_text("{}")
    _expect_data_error(file, file, "not a folder")


def test_missing_run_json(tmp_path: Path) -> None:
    _expect_data_error(tmp_path / "run.json", tmp_path, "missing; is this a cnnlab run folder")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"status": "completed", "seed"', "not valid JSON.*corrupt or truncated"),
        ("", "not valid JSON"),
        ("[1, 2]", "expected a JSON object, found a list"),
    ],
)
def test_corrupt_run_json(tmp_path: Path, content: str, match: str) -> None:
    _write_run(tmp_path)
    (tmp_path / "run.json").write_text(content)
    _expect_data_error(tmp_path / "run.json", tmp_path, match)


def test_undecodable_run_json(tmp_path: Path) -> None:
    _write_run(tmp_path)
    (tmp_path / "run.json").write_bytes(b"\xff\xfe\x00garbage")
    _expect_data_error(tmp_path / "run.json", tmp_path, "not UTF-8")


def test_missing_metrics_of_a_failed_run_says_so(tmp_path: Path) -> None:
    _write_run(tmp_path, status="failed")
    _expect_data_error(tmp_path / "metrics.json", tmp_path, "status is 'failed'")


def test_missing_metrics_of_a_completed_run(tmp_path: Path) -> None:
    _write_run(tmp_path)
    (tmp_path / "metrics.json").unlink()
    _expect_data_error(tmp_path / "metrics.json", tmp_path, "no final metrics")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"test/acc": 0.9', "not valid JSON"),
        ('{"test/acc": "high"}', "metric 'test/acc' is not a number: 'high'"),
        ('{"test/acc": true}', "metric 'test/acc' is not a number"),
        ('{"test/acc": null}', "metric 'test/acc' is not a number"),
        ("0.97", "expected a JSON object, found a number"),
    ],
)
def test_bad_metrics_json(tmp_path: Path, content: str, match: str) -> None:
    _write_run(tmp_path)
    (tmp_path / "metrics.json").write_text(content)
    _expect_data_error(tmp_path / "metrics.json", tmp_path, match)


@pytest.mark.parametrize(
    ("content", "match"),
    [("- a\n  b: [\n", "not valid YAML"), ("model: lenet5\n", "must be a list of strings")],
)
def test_bad_hydra_overrides(tmp_path: Path, content: str, match: str) -> None:
    _write_run(tmp_path)
    path = tmp_path / ".hydra" / "overrides.yaml"
    path.write_text(content)
    _expect_data_error(path, tmp_path, match)


def test_a_linked_overrides_file_is_refused_and_not_shown(tmp_path: Path) -> None:
    """Linked to /etc/shadow, it was parsed and printed in the error."""
    _write_run(tmp_path)
    secret = tmp_path.parent / f"{tmp_path.name}-shadow"
    secret.write_text("root:$6$hunter2:19000:0:99999:7:::\n")
    path = tmp_path / ".hydra" / "overrides.yaml"
    path.unlink()
    path.symlink_to(secret)
    with pytest.raises(DataError, match="link") as info:
        load_run(tmp_path)
    assert "hunter2" not in str(info.value)


def test_bad_manifest_overrides(tmp_path: Path) -> None:
    _write_run(tmp_path, hydra=False)
    manifest = json.loads((tmp_path / "run.json").read_text())
    manifest["overrides"] = "model=lenet5"
    (tmp_path / "run.json").write_text(json.dumps(manifest))
    _expect_data_error(tmp_path / "run.json", tmp_path, "must be a list of strings")
