"""``fnx.data`` (also ``fnx.utils.data``): PyTorch's ``torch.utils.data``, so
``from torch.utils.data import DataLoader, TensorDataset`` ports by renaming ``torch`` to
``fnx``; augmentations in the style of torchvision live in ``fnx.data.transforms``.

Batches are pytrees of fnx arrays. Shuffling, sampling and random transforms draw from
``fnx.Generator``s (the global one unless given), so ``fnx.manual_seed`` makes a run
reproducible; ``num_workers > 0`` prefetches in threads and yields the same batches in the
same order as ``num_workers=0`` (see ``fnx.data.dataloader`` and docs/data.md).

>>> X, y = fnx.randn(100, 3), fnx.randint(0, 2, (100,))
>>> loader = fnx.data.DataLoader(fnx.data.TensorDataset(X, y), batch_size=32, shuffle=True)
>>> [tuple(xb.shape) for xb, yb in loader]
[(32, 3), (32, 3), (32, 3), (4, 3)]
"""

from . import transforms  # noqa: F401
from .collate import default_collate, default_convert
from .dataloader import DataLoader, WorkerInfo, get_worker_info
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset,
                      TensorDataset, random_split)
from .distributed import DistributedSampler
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)

__all__ = ["BatchSampler", "ChainDataset", "ConcatDataset", "DataLoader", "Dataset",
           "DistributedSampler", "IterableDataset", "RandomSampler", "Sampler",
           "SequentialSampler", "Subset", "SubsetRandomSampler", "TensorDataset",
           "WeightedRandomSampler", "WorkerInfo", "default_collate", "default_convert",
           "get_worker_info", "random_split"]
