"""``fnx.datasets``: small data sets and readers for standard ones, in the style of
``torchvision.datasets``.

* ``digits()``: scikit-learn's bundled 8x8 digits as a ``TensorDataset`` (no download);
* ``MNIST``, ``FashionMNIST`` (IDX files, gzipped or not) and ``CIFAR10`` (the "python version"
  batches, read without unpickling arbitrary objects) from a directory you give: fnx
  downloads nothing, and a missing or corrupted file is a ``DatasetError`` that says which
  files to put where; official files are checked against their published MD5s
  (``verify=False`` reads files you made in the same format);
* ``read_idx``, ``read_cifar_batch``: the file readers on their own.

>>> x, y = fnx.datasets.digits(flatten=True).tensors
>>> x.shape, sorted(set(y.tolist())) == list(range(10))
((1797, 64), True)
"""

from ..core.errors import DatasetError
from ._cifar import CIFAR10, read_cifar_batch
from ._digits import digits
from ._mnist import MNIST, FashionMNIST, read_idx

__all__ = ["CIFAR10", "DatasetError", "FashionMNIST", "MNIST", "digits", "read_cifar_batch",
           "read_idx"]
