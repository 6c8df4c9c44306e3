"""MNIST and Fashion-MNIST from their IDX files (gzipped or not), as ``torchvision.datasets``."""

import math
import os
import struct

import numpy as np

from ..core.errors import DatasetError
from ._common import LabelledImages, check_md5s, find_files, read_maybe_gzipped

# the IDX type byte -> big-endian NumPy dtype (http://yann.lecun.com/exdb/mnist/, bottom)
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path):
    """The array in an IDX file (the format of MNIST, Fashion-MNIST, EMNIST, KMNIST), gzipped
    or not, as a NumPy array in native byte order.

    >>> import gzip, os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "labels-idx1-ubyte.gz")
    >>> with gzip.open(path, "wb") as f:
    ...     _ = f.write(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]))
    >>> fnx.datasets.read_idx(path)
    array([7, 2, 1], dtype=uint8)
    """
    path = os.fspath(path)
    data = read_maybe_gzipped("read_idx", path)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"read_idx: {path} is not an IDX file: it does not start with the "
                           "magic bytes 00 00 <type> <rank>")
    ndim, dtype = data[3], np.dtype(_IDX_DTYPES[data[2]])
    start = 4 + 4 * ndim
    if len(data) < start:
        raise DatasetError(f"read_idx: {path} is truncated: it ends inside its header")
    shape = struct.unpack(f">{ndim}I", data[4:start])
    size = start + math.prod(shape) * dtype.itemsize
    if len(data) != size:
        raise DatasetError(f"read_idx: {path} is truncated or corrupted: its header describes "
                           f"a {dtype.name} array of shape {shape} ({size} bytes with the "
                           f"header), the file has {len(data)} bytes")
    return np.frombuffer(data, dtype, offset=start).reshape(shape).astype(dtype.newbyteorder("="))


class MNIST(LabelledImages):
    """The MNIST handwritten digits from the IDX files in ``root``, as
    ``torchvision.datasets.MNIST``: sample ``i`` is ``(image, label)``, the image a uint8
    NumPy array of shape ``(28, 28)`` (what ``fnx.data.transforms.ToTensor`` takes), the label
    an int; ``transform``/``target_transform`` are applied to them.

    ``root`` holds ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``) or not,
    directly or in ``root/MNIST/raw`` (torchvision's layout). With ``verify=True`` the number
    of images must be the official one and a ``.gz`` file must have its published MD5; pass
    ``verify=False`` for files you made in the same format. ``download`` is accepted for
    PyTorch compatibility: fnx downloads nothing, and a missing file's error says where to get
    it. ``data`` (uint8, ``(N, 28, 28)``) and ``targets`` (int64, ``(N,)``) hold everything.

    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> for name, body in [("t10k-images-idx3-ubyte", [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28,
    ...                                                 0, 0, 0, 28] + [255] * 784),
    ...                    ("t10k-labels-idx1-ubyte", [0, 0, 8, 1, 0, 0, 0, 1, 7])]:
    ...     with open(os.path.join(root, name), "wb") as f:
    ...         _ = f.write(bytes(body))
    >>> test = fnx.datasets.MNIST(root, train=False, verify=False)
    >>> image, label = test[0]
    >>> len(test), image.shape, image.dtype, label
    (1, (28, 28), dtype('uint8'), 7)
    """

    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five",
               "6 - six", "7 - seven", "8 - eight", "9 - nine"]
    _folder = "MNIST"
    _official_sizes = {True: 60000, False: 10000}
    _source = ("Get the four files from https://ossci-datasets.s3.amazonaws.com/mnist/ "
               "(or http://yann.lecun.com/exdb/mnist/) and put them, gzipped or not, in the "
               "root directory or root/MNIST/raw.")
    # published MD5s of the gzipped files (torchvision's resource list)
    _md5 = {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }

    def __init__(self, root, train=True, transform=None, target_transform=None,
                 download=False, *, verify=True):
        super().__init__(root, train, transform, target_transform, download)
        split = "train" if train else "t10k"
        stems = {"images": f"{split}-images-idx3-ubyte", "labels": f"{split}-labels-idx1-ubyte"}
        name = type(self).__name__
        paths = find_files(name, root, {k: (s + ".gz", s) for k, s in stems.items()},
                           [os.path.join(self._folder, "raw"), self._folder], self._source)
        if verify:
            check_md5s(name, paths.values(), self._md5, self._source)
        images, labels = read_idx(paths["images"]), read_idx(paths["labels"])
        if images.dtype != np.uint8 or images.ndim != 3 or labels.dtype != np.uint8 \
                or labels.ndim != 1:
            raise DatasetError(f"{name}: expected uint8 images of shape (N, rows, cols) and "
                               f"uint8 labels of shape (N,), got {images.dtype}{images.shape} "
                               f"in {paths['images']} and {labels.dtype}{labels.shape} in "
                               f"{paths['labels']}")
        if len(images) != len(labels):
            raise DatasetError(f"{name}: {paths['images']} has {len(images)} images but "
                               f"{paths['labels']} has {len(labels)} labels")
        if labels.size and labels.max() >= len(self.classes):
            raise DatasetError(f"{name}: {paths['labels']} has label {labels.max()}; the "
                               f"{len(self.classes)} classes are numbered from 0")
        official = self._official_sizes[bool(train)]
        if verify and len(images) != official:
            raise DatasetError(f"{name}: {paths['images']} has {len(images)} images, the "
                               f"official file {official}; pass verify=False to read a file "
                               "you made yourself")
        self.data, self.targets = images, labels.astype(np.int64)


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (28x28 grayscale clothing images, 10 classes) from its IDX
    files, with MNIST's file names and API (see ``MNIST``); the files may also sit in
    ``root/FashionMNIST/raw``.

    >>> fnx.datasets.FashionMNIST.classes[:3]
    ['T-shirt/top', 'Trouser', 'Pullover']
    """

    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    _folder = "FashionMNIST"
    _source = ("Get the four files from http://fashion-mnist.s3-website.eu-central-1."
               "amazonaws.com/ (or https://github.com/zalandoresearch/fashion-mnist, "
               "data/fashion) and put them, gzipped or not, in the root directory or "
               "root/FashionMNIST/raw.")
    _md5 = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
