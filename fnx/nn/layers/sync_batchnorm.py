"""``SyncBatchNorm`` (``torch.nn.SyncBatchNorm``): batch normalization whose statistics are
taken over the batches of every rank, with the collectives of ``fnx.distributed.functional``
(so the gradient flows through them and the layer compiles inside a step)."""

import fnx
import fnx.numpy as fnp
from fnx import distributed as dist
from fnx.distributed import functional as dF
from .normalization import BatchNorm1d, BatchNorm2d, BatchNorm3d

__all__ = ["SyncBatchNorm"]


class SyncBatchNorm(BatchNorm1d):
    """Batch normalization over ``(N, C, *)`` inputs whose training statistics are the mean and
    variance over every rank's batch (the same as one process normalizing the concatenated
    batch); running statistics, eval mode and parameters as ``BatchNorm*d``. Without an
    initialized process group, or with one rank, it is a plain batch norm.
    ``SyncBatchNorm.convert_sync_batchnorm(model)`` swaps a model's ``BatchNorm*d`` layers for
    it, keeping their parameters and statistics.

    >>> model = fnx.nn.Sequential(fnx.nn.Linear(3, 4), fnx.nn.BatchNorm1d(4))
    >>> model = fnx.nn.SyncBatchNorm.convert_sync_batchnorm(model); model[1]
    SyncBatchNorm(4, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> model(fnx.ones(5, 3)).shape
    (5, 4)
    """

    _ranks = (2, 3, 4, 5)
    _layout = "(N, C, *)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, process_group=None, device=None, dtype=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats,
                         device=device, dtype=dtype)
        del process_group  # unused: only the default group exists

    def forward(self, input):
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input, 1)
        axes = (0,) + tuple(range(2, input.ndim))
        shape = (1, -1) + (1,) * (input.ndim - 2)
        local = 1
        for a in axes:
            local *= input.shape[a]
        # two passes, as the single-process layer: the global mean (the sums and the count
        # in one all-reduce), then the global variance around it (no E[x^2] - E[x]^2
        # cancellation); ranks may hold batches of different sizes
        packed = fnp.concatenate([fnp.sum(input, axis=axes),
                                  fnp.full((1,), float(local), dtype=input.dtype)])
        packed = dF.all_reduce(packed)
        total, count = packed[:-1], packed[-1]
        mean = total / count
        centered = input - fnp.reshape(mean, shape)
        var = dF.all_reduce(fnp.sum(centered * centered, axis=axes)) / count
        out = centered / fnp.sqrt(fnp.reshape(var, shape) + self.eps)
        if self.weight is not None:
            out = out * fnp.reshape(self.weight, shape)
        if self.bias is not None:
            out = out + fnp.reshape(self.bias, shape)
        if self.track_running_stats:
            self._update_running(fnx.lax.stop_gradient(mean), fnx.lax.stop_gradient(var),
                                 count)
        return out

    def _update_running(self, mean, var, count):
        batches = self.num_batches_tracked + 1
        if self.momentum is None:  # a cumulative moving average
            factor = 1.0 / batches.astype(self.running_mean.dtype)
        else:
            factor = self.momentum
        unbiased = var * (count / (count - 1))
        new_mean = (1 - factor) * self.running_mean + factor * mean
        new_var = (1 - factor) * self.running_var + factor * unbiased
        self._store_stats(new_mean, new_var, batches)

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every ``BatchNorm1d/2d/3d`` replaced by a ``SyncBatchNorm`` holding
        the same parameters and buffers (the model itself when it is one).

        >>> net = fnx.nn.SyncBatchNorm.convert_sync_batchnorm(fnx.nn.BatchNorm2d(3))
        >>> type(net).__name__
        'SyncBatchNorm'
        """
        del process_group  # unused
        if isinstance(module, (BatchNorm1d, BatchNorm2d, BatchNorm3d)) and \
                not isinstance(module, cls):
            new = cls(module.num_features, module.eps, module.momentum, module.affine,
                      module.track_running_stats)
            for name in ("weight", "bias"):
                if getattr(module, name, None) is not None:
                    setattr(new, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                new.register_buffer(name, getattr(module, name))
            new.train(module.training)
            return new
        for name, child in list(module.named_children()):
            setattr(module, name, cls.convert_sync_batchnorm(child))
        return module

