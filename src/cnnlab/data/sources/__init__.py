"""Data set readers. Each returns :class:`~cnnlab.data.sources.base.SourceData`.

One module per data set; ``base`` holds what they share, ``idx`` and ``cifar``
the file formats of the MNIST and CIFAR families.
"""

from __future__ import annotations

from cnnlab.data.sources.base import Source, SourceData
from cnnlab.data.sources.cifar10 import Cifar10Source
from cnnlab.data.sources.cifar100 import Cifar100Source
from cnnlab.data.sources.digits import DigitsSource
from cnnlab.data.sources.fashion_mnist import FashionMnistSource
from cnnlab.data.sources.imagefolder import ImageFolderSource
from cnnlab.data.sources.kmnist import KmnistSource
from cnnlab.data.sources.mnist import MnistSource
from cnnlab.data.sources.synthetic import SyntheticSource

__all__ = [
    "Cifar10Source",
    "Cifar100Source",
    "DigitsSource",
    "FashionMnistSource",
    "ImageFolderSource",
    "KmnistSource",
    "MnistSource",
    "Source",
    "SourceData",
    "SyntheticSource",
]
