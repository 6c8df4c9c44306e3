"""scikit-learn's bundled 8x8 handwritten digits: real data that needs no download."""

import numpy as np

_NO_SKLEARN = (
    "fnx.datasets.digits needs scikit-learn, which bundles the data set: "
    "pip install scikit-learn (or pip install 'fnx[examples]')"
)


def digits(train=None, *, test_fraction=0.2, seed=0, flatten=False):
    """scikit-learn's 8x8 handwritten digits (1797 images of 0-9 from UCI's optdigits, bundled
    with scikit-learn: no download) as an ``fnx.data.TensorDataset`` of ``(images, labels)``.

    Images are float32 in [0, 1] (the 0-16 pixel counts divided by 16) of shape
    ``(N, 1, 8, 8)``, or ``(N, 64)`` with ``flatten=True``; labels are int64. ``train=None``
    gives all 1797; ``train=True``/``False`` the two parts of a fixed split that holds out
    ``test_fraction`` of every class, drawn with ``numpy.random.default_rng(seed)`` (the same
    ``seed`` gives the same split everywhere; samples keep their original order). The arrays
    are ``dataset.tensors``.

    >>> train, test = fnx.datasets.digits(train=True), fnx.datasets.digits(train=False)
    >>> len(train), len(test), train.tensors[0].shape, train.tensors[1].dtype
    (1438, 359, (1438, 1, 8, 8), dtype('int64'))
    >>> x, y = test[0]
    >>> x.shape, float(x.max()) <= 1.0, 0 <= int(y) < 10
    ((1, 8, 8), True, True)
    """
    try:
        from sklearn.datasets import load_digits  # noqa: PLC0415 (optional dependency)
    except ImportError as err:
        raise ImportError(_NO_SKLEARN) from err
    from .. import numpy as fnp  # noqa: PLC0415
    from ..data import TensorDataset  # noqa: PLC0415

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"digits: test_fraction must be in (0, 1), got {test_fraction}")
    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32)
    labels = bunch.target.astype(np.int64)
    if train is not None:
        keep = _split(labels, test_fraction, seed) == bool(train)
        images, labels = images[keep], labels[keep]
    images = images if flatten else images.reshape(-1, 1, 8, 8)
    return TensorDataset(fnp.asarray(images), fnp.asarray(labels))


def _split(labels, test_fraction, seed):
    """A boolean mask, True for training samples: ``round(test_fraction * n)`` of each class's
    ``n`` samples, drawn at random, are held out."""
    rng = np.random.default_rng(seed)
    is_train = np.ones(len(labels), bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        is_train[members[:round(test_fraction * len(members))]] = False
    return is_train
