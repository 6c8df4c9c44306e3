"""``fnx.nn.parallel`` (``torch.nn.parallel``): ``DistributedDataParallel`` over
``fnx.distributed``'s process group, and ``DataParallel`` for one process.

>>> fnx.nn.parallel.DataParallel(fnx.nn.Linear(2, 1)).module
Linear(in_features=2, out_features=1, bias=True)
"""

from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]
