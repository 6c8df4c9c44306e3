"""Samplers: iterables over dataset indices (``torch.utils.data.sampler``). Random ones draw
one seed per epoch from an ``fnx.Generator`` (the global one unless given), so
``fnx.manual_seed`` makes them reproducible and each epoch differs."""

import math
from typing import Generic, TypeVar

import numpy as np

from ._random import numpy_rng

T_co = TypeVar("T_co", covariant=True)

__all__ = ["BatchSampler", "RandomSampler", "Sampler", "SequentialSampler",
           "SubsetRandomSampler", "WeightedRandomSampler"]


class Sampler(Generic[T_co]):
    """Base class of samplers: subclasses define ``__iter__`` (yielding indices, or lists of
    indices for a batch sampler) and usually ``__len__``.

    >>> class Evens(fnx.data.Sampler):
    ...     def __init__(self, n):
    ...         self.n = n
    ...     def __iter__(self):
    ...         return iter(range(0, self.n, 2))
    ...     def __len__(self):
    ...         return (self.n + 1) // 2
    >>> list(Evens(5))
    [0, 2, 4]
    """

    def __init__(self, data_source=None):
        del data_source  # unused: PyTorch keeps the argument for backward compatibility

    def __iter__(self):
        raise NotImplementedError("Subclasses of Sampler should implement __iter__.")


def _positive_int(value, what, owner):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{owner}: {what} should be a positive integer value, but got "
                         f"{what}={value!r}")
    return int(value)


def _check_bool(value, what, owner):
    if not isinstance(value, bool):
        raise TypeError(f"{owner}: {what} should be a boolean value, but got {what}={value!r}")
    return value


class SequentialSampler(Sampler[int]):
    """Indices ``0, 1, ..., len(data_source) - 1`` in order.

    >>> list(fnx.data.SequentialSampler(range(3)))
    [0, 1, 2]
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """Random indices: a permutation of the dataset each epoch, or ``num_samples`` draws with
    ``replacement=True``. Without replacement, ``num_samples`` larger than the dataset
    concatenates permutations, as PyTorch.

    >>> g = fnx.Generator().manual_seed(0)
    >>> sorted(fnx.data.RandomSampler(range(5), generator=g))
    [0, 1, 2, 3, 4]
    >>> len(list(fnx.data.RandomSampler(range(5), replacement=True, num_samples=12)))
    12
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None):
        self.data_source = data_source
        self.replacement = _check_bool(replacement, "replacement", "RandomSampler")
        self._num_samples = num_samples
        self.generator = generator
        _positive_int(self.num_samples, "num_samples", "RandomSampler")

    @property
    def num_samples(self):
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self):
        n = len(self.data_source)
        rng = numpy_rng(self.generator)
        if self.replacement:
            return iter(rng.integers(0, n, self.num_samples).tolist())
        rounds = [rng.permutation(n) for _ in range(math.ceil(self.num_samples / n))]
        return iter(np.concatenate(rounds)[:self.num_samples].tolist())

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given ``indices`` in a random order each epoch.

    >>> sorted(fnx.data.SubsetRandomSampler([7, 3, 5]))
    [3, 5, 7]
    """

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = generator

    def __iter__(self):
        order = numpy_rng(self.generator).permutation(len(self.indices))
        return (self.indices[i] for i in order.tolist())

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """``num_samples`` indices drawn with probability proportional to ``weights`` (which
    need not sum to 1), with replacement unless ``replacement=False``.

    >>> s = fnx.data.WeightedRandomSampler([0.0, 1.0, 0.0], num_samples=4)
    >>> list(s)
    [1, 1, 1, 1]
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        weights = np.asarray(weights.tolist() if hasattr(weights, "tolist") else weights,
                             dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"WeightedRandomSampler: weights should be a 1d sequence but "
                             f"given weights have shape {weights.shape}")
        if (weights < 0).any() or not np.isfinite(weights).all() or weights.sum() <= 0:
            raise ValueError("WeightedRandomSampler: weights must be finite, non-negative and "
                             "not all zero")
        self.weights = weights
        self.num_samples = _positive_int(num_samples, "num_samples", "WeightedRandomSampler")
        self.replacement = _check_bool(replacement, "replacement", "WeightedRandomSampler")
        if not replacement and self.num_samples > np.count_nonzero(weights):
            raise ValueError(f"WeightedRandomSampler: cannot draw {self.num_samples} samples "
                             f"without replacement from {np.count_nonzero(weights)} non-zero "
                             f"weights; lower num_samples or use replacement=True")
        self.generator = generator

    def __iter__(self):
        p = self.weights / self.weights.sum()
        rng = numpy_rng(self.generator)
        picks = rng.choice(len(p), size=self.num_samples, replace=self.replacement, p=p)
        return iter(picks.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler[list]):
    """Group the indices of ``sampler`` into lists of ``batch_size``; the last, shorter list
    is dropped when ``drop_last``.

    >>> list(fnx.data.BatchSampler(range(5), batch_size=2, drop_last=False))
    [[0, 1], [2, 3], [4]]
    >>> len(fnx.data.BatchSampler(range(5), batch_size=2, drop_last=True))
    2
    """

    def __init__(self, sampler, batch_size, drop_last):
        self.sampler = sampler
        self.batch_size = _positive_int(batch_size, "batch_size", "BatchSampler")
        self.drop_last = _check_bool(drop_last, "drop_last", "BatchSampler")

    def __iter__(self):
        batch = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return math.ceil(len(self.sampler) / self.batch_size)
