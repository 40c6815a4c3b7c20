"""CIFAR-100: 60,000 32x32 colour images in 100 fine classes (Krizhevsky, 2009)."""

from __future__ import annotations

from cnnlab.data.sources.cifar import CifarSource


class Cifar100Source(CifarSource):
    """CIFAR-100 (fine labels) from the University of Toronto, with the upstream md5 checksum.

    Arguments are those of :class:`~cnnlab.data.sources.cifar.CifarSource`.
    """

    archive = "cifar-100-python.tar.gz"
    folder = "cifar-100-python"
    default_checksums = {"cifar-100-python.tar.gz": "eb9058c3a382ffc7106e4002c42a8d85"}
    train_batches = ("train",)
    test_batches = ("test",)
    meta_file = "meta"
    # The 100 fine classes; the 20 coarse superclasses are not used.
    meta_key = "fine_label_names"
    label_key = "fine_labels"
