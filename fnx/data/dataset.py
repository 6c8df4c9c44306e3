"""Datasets with ``torch.utils.data.dataset``'s contract: a map-style ``Dataset`` has
``__getitem__`` (and usually ``__len__``), an ``IterableDataset`` has ``__iter__``."""

import bisect
import itertools
import math
import warnings
from typing import Generic, TypeVar

import numpy as np

from ._random import numpy_rng

T_co = TypeVar("T_co", covariant=True)

__all__ = ["ChainDataset", "ConcatDataset", "Dataset", "IterableDataset", "Subset",
           "TensorDataset", "random_split"]


class Dataset(Generic[T_co]):
    """A map-style dataset: subclasses define ``__getitem__(index)`` and ``__len__``.

    A subclass may also define ``__getitems__(indices)`` returning the list of samples for a
    batch of indices; the DataLoader then fetches each batch with one call (TensorDataset and
    Subset do, so a batch is one gather instead of one indexing per sample).

    >>> class Squares(fnx.data.Dataset):
    ...     def __len__(self):
    ...         return 4
    ...     def __getitem__(self, i):
    ...         return i * i
    >>> [b.tolist() for b in fnx.data.DataLoader(Squares(), batch_size=2)]
    [[0, 1], [4, 9]]
    """

    def __getitem__(self, index):
        raise NotImplementedError("Subclasses of Dataset should implement __getitem__.")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset[T_co]):
    """A dataset that is a stream: subclasses define ``__iter__``.

    With ``num_workers > 0`` every worker thread iterates its own shallow copy of the dataset;
    use ``fnx.data.get_worker_info()`` in ``__iter__`` (or in ``worker_init_fn``) to give each
    worker its own shard, as with PyTorch.

    >>> class Count(fnx.data.IterableDataset):
    ...     def __iter__(self):
    ...         return iter(range(5))
    >>> [b.tolist() for b in fnx.data.DataLoader(Count(), batch_size=2)]
    [[0, 1], [2, 3], [4]]
    """

    def __iter__(self):
        raise NotImplementedError("Subclasses of IterableDataset should implement __iter__.")

    def __add__(self, other):
        return ChainDataset([self, other])


def _first_dim(t):
    return t.shape[0] if hasattr(t, "shape") else len(t)


def _host_gather(t, indices):
    """``t[indices]`` on the host for an fnx array (or NumPy array) that no autograd tracks and
    that lives in host memory; None when ``t`` needs fnx indexing (tracked, or on a GPU)."""
    from ..core.array import Array

    if isinstance(t, np.ndarray):
        return t[indices]
    if type(t) is Array and not t.requires_grad and t.device.type == "cpu":
        return t.numpy()[indices]
    return None


class TensorDataset(Dataset):
    """A dataset of arrays that share their first dimension: sample ``i`` is the tuple
    ``(t[i] for t in tensors)``.

    >>> ds = fnx.data.TensorDataset(fnx.arange(6).reshape(3, 2), fnx.tensor([0, 1, 0]))
    >>> x, y = ds[1]
    >>> x.tolist(), y.item(), len(ds)
    ([2, 3], 1, 3)
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset: give at least one array")
        sizes = [_first_dim(t) for t in tensors]
        if any(s != sizes[0] for s in sizes):
            raise ValueError(f"TensorDataset: size mismatch between tensors: first dimensions "
                             f"{sizes}; every array needs one row per sample")
        self.tensors = tensors

    def __getitem__(self, index):
        return tuple(t[index] for t in self.tensors)

    def __getitems__(self, indices):
        # One host gather per array instead of one fnx indexing per sample (tens of
        # microseconds each); rows of untracked host arrays are then wrapped without checks
        # (their dtype is an fnx dtype already).
        from ..core.array import wrap

        idx = np.asarray(indices, dtype=np.int64)
        columns = []
        for t in self.tensors:
            rows = _host_gather(t, idx)
            if rows is None:
                columns.append([t[int(i)] for i in idx])
            elif isinstance(t, np.ndarray):
                columns.append(list(rows))
            else:
                columns.append([wrap(r) for r in rows])
        return list(zip(*columns))

    def __len__(self):
        return _first_dim(self.tensors[0])


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order.

    >>> sub = fnx.data.Subset(fnx.data.TensorDataset(fnx.arange(5)), [4, 0])
    >>> [sub[i][0].item() for i in range(len(sub))]
    [4, 0]
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = indices

    def __getitem__(self, idx):
        if isinstance(idx, list):
            return self.dataset[[self.indices[i] for i in idx]]
        return self.dataset[self.indices[idx]]

    def __getitems__(self, indices):
        inner = [self.indices[i] for i in indices]
        if callable(getattr(self.dataset, "__getitems__", None)):
            return self.dataset.__getitems__(inner)
        return [self.dataset[i] for i in inner]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """Map-style datasets one after the other (``ds1 + ds2`` builds one).

    >>> a = fnx.data.TensorDataset(fnx.arange(2)); b = fnx.data.TensorDataset(fnx.arange(10, 13))
    >>> ab = fnx.data.ConcatDataset([a, b])
    >>> len(ab), ab[2][0].item(), ab[-1][0].item(), ab.cumulative_sizes
    (5, 10, 12, [2, 5])
    """

    @staticmethod
    def cumsum(sequence):
        return list(itertools.accumulate(len(d) for d in sequence))

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("ConcatDataset: datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset; chain "
                                "iterable datasets with ChainDataset (or `a + b`)")
        self.cumulative_sizes = self.cumsum(self.datasets)

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx):
        if idx < 0:
            if -idx > len(self):
                raise IndexError(f"ConcatDataset: index {idx} is out of range for a dataset of "
                                 f"length {len(self)}")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        start = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets one after the other (``it1 + it2`` builds one).

    >>> class Range(fnx.data.IterableDataset):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         return iter(range(self.n))
    >>> list(fnx.data.ChainDataset([Range(2), Range(3)]))
    [0, 1, 0, 1, 2]
    """

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for d in self.datasets:
            if not isinstance(d, IterableDataset):
                raise TypeError(f"ChainDataset only supports IterableDataset, got "
                                f"{type(d).__name__}")
            yield from d

    def __len__(self):
        return sum(len(d) for d in self.datasets)


def _lengths_from_fractions(n, fractions):
    lengths = []
    for i, frac in enumerate(fractions):
        if not 0 <= frac <= 1:
            raise ValueError(f"random_split: fraction at index {i} is {frac}, not between 0 "
                             f"and 1")
        lengths.append(math.floor(n * frac))
    # as PyTorch: the rounding remainder goes one item at a time to the splits, in order
    for i in range(n - sum(lengths)):
        lengths[i % len(lengths)] += 1
    for i, length in enumerate(lengths):
        if length == 0:
            warnings.warn(f"random_split: length of split at index {i} is 0. This might "
                          f"result in an empty dataset.", stacklevel=3)
    return lengths


def random_split(dataset, lengths, generator=None):
    """Split ``dataset`` into non-overlapping random ``Subset``s of the given lengths, or of
    the given fractions (summing to 1; the rounding remainder is dealt out one item at a time
    from the first split, as PyTorch). The permutation comes from ``generator``, the global
    generator if None, so ``fnx.manual_seed`` fixes it.

    >>> ds = fnx.data.TensorDataset(fnx.arange(10))
    >>> train, val = fnx.data.random_split(ds, [0.8, 0.2], generator=fnx.Generator().manual_seed(0))
    >>> len(train), len(val), sorted(train.indices + val.indices) == list(range(10))
    (8, 2, True)
    """
    lengths = list(lengths)
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        lengths = _lengths_from_fractions(n, lengths)
    if sum(lengths) != n:
        raise ValueError(f"random_split: the lengths {lengths} sum to {sum(lengths)}, not to "
                         f"the dataset's length {n}; give lengths that sum to {n} or "
                         f"fractions that sum to 1")
    indices = numpy_rng(generator).permutation(n).tolist()
    ends = itertools.accumulate(lengths)
    return [Subset(dataset, indices[end - length:end])
            for end, length in zip(ends, lengths, strict=True)]
