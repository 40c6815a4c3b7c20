"""The ordered background writer: files land in submission order; a failure stops the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnnlab.files.background import OrderedWriter


def test_writes_land_in_order_and_flush_waits_for_them(tmp_path: Path) -> None:
    writer = OrderedWriter()
    for i in range(50):
        writer.write_bytes(tmp_path / "log.txt", str(i).encode())
    writer.flush()
    assert (tmp_path / "log.txt").read_text() == "49"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.txt"]  # no temporary file left


def test_a_failed_write_drops_the_later_ones_and_is_raised_once(tmp_path: Path) -> None:
    (tmp_path / "not_a_folder").write_text("a file")
    writer = OrderedWriter()
    with pytest.raises(OSError):
        writer.write_bytes(tmp_path / "not_a_folder" / "best.ckpt", b"checkpoint")
        # Raised here when the failure came first, else queued and dropped by the writer.
        writer.write_bytes(tmp_path / "metrics.csv", b"rows after the checkpoint")
        writer.flush()
    # The rows that follow a checkpoint that was not written are not written either.
    assert not (tmp_path / "metrics.csv").exists()
    writer.flush()  # raised once: the writer is usable again
    writer.write_bytes(tmp_path / "metrics.csv", b"later")
    writer.flush()
    assert (tmp_path / "metrics.csv").read_bytes() == b"later"


def test_the_next_write_raises_an_earlier_failure(tmp_path: Path) -> None:
    (tmp_path / "not_a_folder").write_text("a file")
    writer = OrderedWriter()
    writer.write_bytes(tmp_path / "not_a_folder" / "last.ckpt", b"checkpoint")
    writer.discard_errors()  # waits for the queue, then forgets the failure
    writer.write_bytes(tmp_path / "not_a_folder" / "last.ckpt", b"checkpoint")
    with pytest.raises(OSError):
        for _ in range(100):  # the failure is raised by a later write or the flush
            writer.write_bytes(tmp_path / "ok.txt", b"x")
        writer.flush()
