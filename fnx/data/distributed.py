"""``DistributedSampler`` (``torch.utils.data.distributed``): each of ``num_replicas``
processes reads its own slice of every epoch's permutation."""

import math

from .._torch_api import Generator
from ._random import numpy_rng
from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """The share of the dataset that replica ``rank`` of ``num_replicas`` reads, as PyTorch:
    every replica draws the same permutation (seeded by ``seed + epoch``: call
    ``set_epoch(epoch)`` before each epoch to reshuffle), pads it by repeating its first
    indices to a multiple of ``num_replicas`` (or, with ``drop_last``, truncates it), and
    takes every ``num_replicas``-th index starting at ``rank``. The shares are disjoint
    and together cover the dataset.

    ``num_replicas`` and ``rank`` default to the world size and rank of ``fnx.distributed``'s
    process group when it is initialized, else to 1 and 0.

    >>> shares = [list(fnx.data.DistributedSampler(range(5), num_replicas=2, rank=r,
    ...                                            shuffle=False)) for r in range(2)]
    >>> shares
    [[0, 2, 4], [1, 3, 0]]
    """

    def __init__(self, dataset, num_replicas=None, rank=None, shuffle=True, seed=0,
                 drop_last=False):
        if num_replicas is None or rank is None:
            from .. import distributed

            up = distributed.is_initialized()
            if num_replicas is None:
                num_replicas = distributed.get_world_size() if up else 1
            if rank is None:
                rank = distributed.get_rank() if up else 0
        if not 0 <= rank < num_replicas:
            raise ValueError(f"DistributedSampler: invalid rank {rank}, rank should be in the "
                             f"interval [0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            # drop the tail so every replica gets the same number of samples
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            # a generator of its own: every replica must draw the same permutation
            rng = numpy_rng(Generator().manual_seed(self.seed + self.epoch))
            indices = rng.permutation(n).tolist()
        else:
            indices = list(range(n))
        if self.drop_last:
            indices = indices[:self.total_size]
        else:
            padding = self.total_size - len(indices)
            indices += (indices * math.ceil(padding / max(len(indices), 1)))[:padding]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self):
        return self.num_samples

    def set_epoch(self, epoch):
        """Set the epoch, which seeds the next shuffle (the same on every replica).

        >>> s = fnx.data.DistributedSampler(range(6), num_replicas=2, rank=0)
        >>> s.set_epoch(0); a = list(s); s.set_epoch(1); b = list(s)
        >>> len(a) == len(b) == 3
        True
        """
        self.epoch = epoch
