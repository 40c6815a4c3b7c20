"""Fashion-MNIST: 70,000 Zalando article images, 28x28 grayscale, a harder drop-in for MNIST."""

from __future__ import annotations

from cnnlab.data.sources.idx import IdxSource


class FashionMnistSource(IdxSource):
    """Fashion-MNIST from Zalando's mirror, with the upstream md5 checksums.

    Arguments are those of :class:`~cnnlab.data.sources.idx.IdxSource`.
    """

    folder = "FashionMNIST"
    default_mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    default_checksums = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    class_names = (
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    )
