"""Kuzushiji-MNIST: 70,000 cursive Japanese characters (10 hiragana), 28x28 grayscale."""

from __future__ import annotations

from cnnlab.data.sources.idx import IdxSource


class KmnistSource(IdxSource):
    """KMNIST from ROIS-CODH, with the upstream md5 checksums.

    Arguments are those of :class:`~cnnlab.data.sources.idx.IdxSource`.
    """

    folder = "KMNIST"
    default_mirrors = ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)
    default_checksums = {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    }
    # Romanised names of the ten hiragana, in label order.
    class_names = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
