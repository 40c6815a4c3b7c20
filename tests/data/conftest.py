"""Shared fixtures for the data tests: a real HTTP server on loopback and generated data files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import pickle
import socket
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnlab.data.sources.idx import write_idx


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output clean."""


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serve a fresh folder over HTTP on 127.0.0.1; yields ``(base_url, folder)``."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    # A short poll interval keeps shutdown() quick at teardown.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", folder
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """A loopback URL where nothing listens, so connecting fails at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


@pytest.fixture
def make_idx_set() -> Callable[..., dict[str, Any]]:
    """Write the four MNIST-style ``.gz`` IDX files (random 28x28 images) into a folder.

    Returns a factory ``(folder, n_train=50, n_test=20, seed=0)`` giving a dict with
    ``checksums`` (filename -> md5) and the arrays written.
    """

    def make(folder: Path, n_train: int = 50, n_test: int = 20, seed: int = 0) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        arrays = {
            "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train-labels-idx1-ubyte.gz": (np.arange(n_train) % 10).astype(np.uint8),
            "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) % 10).astype(np.uint8),
        }
        checksums = {name: md5(write_idx(folder / name, a)) for name, a in arrays.items()}
        return {"checksums": checksums, "arrays": arrays}

    return make


def _pickle_bytes(obj: Any) -> bytes:
    # Protocol 2, like the original Python 2 batches.
    return pickle.dumps(obj, protocol=2)


def _add_bytes(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


@pytest.fixture
def make_cifar_archive() -> Callable[..., dict[str, Any]]:
    """Build a tiny CIFAR-10 or CIFAR-100 python-version ``.tar.gz`` in a folder.

    Returns a factory ``(folder, kind="cifar10", per_batch=12, extra=None)``; ``extra``
    maps additional member names to bytes. The result holds ``path``, ``md5``,
    ``train``/``test`` label arrays and ``classes``.
    """

    def make(
        folder: Path,
        kind: str = "cifar10",
        per_batch: int = 12,
        extra: dict[str, bytes] | None = None,
    ) -> dict[str, Any]:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(1)
        if kind == "cifar10":
            top, archive = "cifar-10-batches-py", "cifar-10-python.tar.gz"
            classes = [f"c{i}" for i in range(10)]
            train_names, test_names, label_key = (
                [f"data_batch_{i}" for i in range(1, 6)],
                ["test_batch"],
                "labels",
            )
            meta = {"label_names": classes, "num_cases_per_batch": per_batch}
            meta_name = "batches.meta"
        else:
            top, archive = "cifar-100-python", "cifar-100-python.tar.gz"
            classes = [f"fine{i}" for i in range(100)]
            train_names, test_names, label_key = ["train"], ["test"], "fine_labels"
            meta = {"fine_label_names": classes, "coarse_label_names": [f"k{i}" for i in range(20)]}
            meta_name = "meta"
        labels: dict[str, list[int]] = {"train": [], "test": []}
        path = folder / archive
        with tarfile.open(path, "w:gz") as tar:
            for split, names in (("train", train_names), ("test", test_names)):
                for name in names:
                    ys = [int(v) for v in rng.integers(0, len(classes), per_batch)]
                    labels[split] += ys
                    batch = {
                        "data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                        label_key: ys,
                        "coarse_labels": [y // 5 for y in ys],
                        "batch_label": name,
                    }
                    _add_bytes(tar, f"{top}/{name}", _pickle_bytes(batch))
            _add_bytes(tar, f"{top}/{meta_name}", _pickle_bytes(meta))
            for name, payload in (extra or {}).items():
                _add_bytes(tar, name, payload)
        return {"path": path, "md5": md5(path), "classes": classes, **labels}

    return make
