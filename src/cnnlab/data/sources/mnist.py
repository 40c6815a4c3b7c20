"""MNIST: 70,000 handwritten digits, 28x28 grayscale (LeCun, Cortes and Burges)."""

from __future__ import annotations

from cnnlab.data.sources.idx import IdxSource


class MnistSource(IdxSource):
    """MNIST from the mirror torchvision uses, with the upstream md5 checksums.

    Arguments are those of :class:`~cnnlab.data.sources.idx.IdxSource`.
    """

    folder = "MNIST"
    default_mirrors = ("https://ossci-datasets.s3.amazonaws.com/mnist/",)
    default_checksums = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }
    class_names = tuple(str(digit) for digit in range(10))
