"""The hostile-folder reader: links, fifos, devices, huge, deep and alias-bomb files."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cnnlab.errors import DataError
from cnnlab.files.read import (
    MAX_DEPTH,
    field,
    read_bytes,
    read_json,
    read_json_object,
    read_text,
    read_yaml,
)


def test_reads_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text('{"x": [1, 2.5, "s", null, true]}')
    assert read_json(tmp_path / "a.json") == {"x": [1, 2.5, "s", None, True]}
    assert read_json_object("a.json", inside=tmp_path) == {"x": [1, 2.5, "s", None, True]}


def test_a_link_is_refused_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    (tmp_path / "run.json").symlink_to(secret)
    with pytest.raises(DataError, match=r"run\.json: .*symbolic link"):
        read_text(tmp_path / "run.json")


def test_a_linked_folder_below_the_run_folder_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "config.yaml").write_text("a: 1\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / ".hydra").symlink_to(elsewhere)
    with pytest.raises(DataError, match=r"\.hydra/config\.yaml: .*link"):
        read_yaml(".hydra/config.yaml", inside=run)
    with pytest.raises(DataError, match="outside its folder"):
        read_yaml("../elsewhere/config.yaml", inside=run)


def test_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "metrics.json")
    tic = time.monotonic()
    with pytest.raises(DataError, match="fifo, socket or device"):
        read_json(tmp_path / "metrics.json")
    assert time.monotonic() - tic < 5


def test_a_device_and_a_folder_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fifo, socket or device"):
        read_bytes("/dev/zero")
    with pytest.raises(DataError, match="a folder"):
        read_bytes(tmp_path)


def test_missing_huge_and_non_utf8_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nothing\.json: missing"):
        read_json(tmp_path / "nothing.json")
    big = tmp_path / "big.json"
    with big.open("wb") as fh:
        fh.truncate(2_000_000)
    with pytest.raises(DataError, match=r"big\.json: is 2,000,000 bytes; at most 1,000 are read"):
        read_bytes(big, limit=1000)
    (tmp_path / "latin.yaml").write_bytes(b"a: caf\xe9\n")
    with pytest.raises(DataError, match=r"latin\.yaml: is not UTF-8"):
        read_yaml(tmp_path / "latin.yaml")


def test_deep_json_is_refused(tmp_path: Path) -> None:
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(DataError, match="nests deeper"):
        read_json(tmp_path / "deep.json")
    (tmp_path / "deepish.json").write_text("[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5))
    with pytest.raises(DataError, match="nests deeper"):
        read_json(tmp_path / "deepish.json")
    (tmp_path / "bad.json").write_text('{"a": ')
    with pytest.raises(DataError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")


def test_a_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [{', '.join(['*' + prev] * 9)}]")
    (tmp_path / "config.yaml").write_text("\n".join(lines) + "\n")
    tic = time.monotonic()
    with pytest.raises(DataError, match="more than 1,000,000 values"):
        read_yaml(tmp_path / "config.yaml")
    many = "a: &a 1\nb: [" + ", ".join(["*a"] * 101) + "]\n"
    (tmp_path / "many.yaml").write_text(many)
    with pytest.raises(DataError, match="more than 100 YAML aliases"):
        read_yaml(tmp_path / "many.yaml")
    assert time.monotonic() - tic < 5
    few = "a: &a [1, 2]\nb: [*a, *a]\n"
    (tmp_path / "few.yaml").write_text(few)
    assert read_yaml(tmp_path / "few.yaml") == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


def test_yaml_builds_no_objects(tmp_path: Path) -> None:
    (tmp_path / "x.yaml").write_text("a: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(DataError, match="not valid YAML"):
        read_yaml(tmp_path / "x.yaml")


def test_field_checks_types(tmp_path: Path) -> None:
    data = {"status": "completed", "starts": 5, "flag": True, "gone": None}
    assert field("run.json", data, "status", str) == "completed"
    assert field("run.json", data, "missing", list, default=[]) == []
    assert field("run.json", data, "gone", list, default=[]) == []
    with pytest.raises(DataError, match=r"run\.json: starts: expected a list, found an integer"):
        field("run.json", data, "starts", list)
    with pytest.raises(DataError, match="flag: expected an integer, found true or false"):
        field("run.json", data, "flag", int)
