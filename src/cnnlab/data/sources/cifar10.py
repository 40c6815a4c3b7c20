"""CIFAR-10: 60,000 32x32 colour images in 10 classes (Krizhevsky, 2009)."""

from __future__ import annotations

from cnnlab.data.sources.cifar import CifarSource


class Cifar10Source(CifarSource):
    """CIFAR-10 from the University of Toronto, with the upstream md5 checksum.

    Arguments are those of :class:`~cnnlab.data.sources.cifar.CifarSource`.
    """

    archive = "cifar-10-python.tar.gz"
    folder = "cifar-10-batches-py"
    default_checksums = {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"}
    train_batches = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_batches = ("test_batch",)
    meta_file = "batches.meta"
    meta_key = "label_names"
    label_key = "labels"
