"""Collectives as functions of arrays (``torch.distributed.nn.functional``, JAX's
``psum``/``all_gather``/``psum_scatter``): they return the result and bind the primitives of
``fnx/distributed/ops.py``, so they work eagerly, inside ``fnx.jit`` (the compiled program
calls MPI), under ``fnx.grad`` and ``fnx.vmap``.

>>> import fnx.distributed.functional as dF
>>> fnx.distributed.init_process_group("mpi")
>>> dF.all_reduce(fnx.tensor([1.0, 2.0]), "mean").tolist()
[1.0, 2.0]
>>> fnx.distributed.destroy_process_group()
"""

import fnx.numpy as fnp
from .ops import (all_gather_p, all_reduce_max_p, all_reduce_min_p, all_reduce_sum_p,
                  collective_broadcast_p, reduce_scatter_p)
from .process_group import DistributedError, default_group, reduce_op

__all__ = ["all_reduce", "all_gather", "reduce_scatter", "broadcast"]

_REDUCE = {"sum": all_reduce_sum_p, "max": all_reduce_max_p, "min": all_reduce_min_p}


def _mean_of(total, size, what):
    if fnp.asarray(total).dtype.kind != "f":
        raise DistributedError(f"{what}: op 'mean' needs a floating-point array, got "
                               f"{total.dtype}; reduce with 'sum' and divide")
    return total / size


def all_reduce(x, op="sum"):
    """The reduction of ``x`` over all ranks (``op``: 'sum', 'mean', 'max', 'min' or a
    ``ReduceOp``), the same on every rank. Differentiable: the gradient of a sum is the sum of
    the ranks' cotangents (JAX's ``psum`` transpose).

    >>> import fnx.distributed.functional as dF
    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.grad(lambda v: dF.all_reduce(v * v, "sum").sum())(fnx.tensor([3.0])).tolist()
    [6.0]
    >>> fnx.distributed.destroy_process_group()
    """
    op = reduce_op(op, "all_reduce")
    group = default_group("all_reduce")
    x = fnp.asarray(x)
    if op == "mean":
        return _mean_of(all_reduce_sum_p.bind(x), group.size, "all_reduce")
    return _REDUCE[op].bind(x)


def all_gather(x, axis=0, tiled=False):
    """Every rank's ``x`` stacked along a new ``axis`` (``(world_size, *x.shape)`` for
    ``axis=0``), or concatenated along ``axis`` with ``tiled=True``. Its transpose is
    ``reduce_scatter``.

    >>> import fnx.distributed.functional as dF
    >>> fnx.distributed.init_process_group("mpi")
    >>> dF.all_gather(fnx.tensor([1.0, 2.0])).shape
    (1, 2)
    >>> fnx.distributed.destroy_process_group()
    """
    group = default_group("all_gather")
    x = fnp.asarray(x)
    if tiled and x.ndim == 0:
        raise DistributedError("all_gather: tiled=True needs an array with at least one axis "
                               "to concatenate along")
    out = all_gather_p.bind(x, world_size=group.size)
    if not tiled:
        return fnp.moveaxis(out, 0, axis % (x.ndim + 1))
    axis %= x.ndim
    shape = list(x.shape)
    shape[axis] *= group.size
    return fnp.moveaxis(out, 0, axis).reshape(tuple(shape))


def reduce_scatter(x, op="sum", scatter_dimension=0, tiled=False):
    """Reduce ``x`` over ranks and give rank ``r`` block ``r`` along ``scatter_dimension``:
    ``x`` has the world size there (``tiled=False``: that axis is removed) or a multiple of
    it (``tiled=True``: each rank gets ``size // world_size`` entries). ``op`` is 'sum' or
    'mean'. Its transpose is ``all_gather``.

    >>> import fnx.distributed.functional as dF
    >>> fnx.distributed.init_process_group("mpi")
    >>> dF.reduce_scatter(fnx.tensor([[1.0, 2.0]])).tolist()
    [1.0, 2.0]
    >>> fnx.distributed.destroy_process_group()
    """
    op = reduce_op(op, "reduce_scatter")
    if op not in ("sum", "mean"):
        raise DistributedError(f"reduce_scatter: op {op!r} is not supported; use 'sum' or "
                               f"'mean'")
    group = default_group("reduce_scatter")
    x = fnp.moveaxis(fnp.asarray(x), scatter_dimension, 0)
    if tiled:
        if x.shape[0] % group.size:
            raise DistributedError(f"reduce_scatter: tiled=True needs the scattered axis "
                                   f"({x.shape[0]}) to be a multiple of the world size "
                                   f"{group.size}")
        x = x.reshape((group.size, x.shape[0] // group.size) + tuple(x.shape[1:]))
    out = reduce_scatter_p.bind(x, world_size=group.size)
    if tiled:
        out = fnp.moveaxis(out, 0, scatter_dimension)
    return _mean_of(out, group.size, "reduce_scatter") if op == "mean" else out


def broadcast(x, src=0):
    """Rank ``src``'s ``x`` on every rank (the arrays must have the same shape and dtype
    everywhere). Its transpose sums the cotangents onto rank ``src``.

    >>> import fnx.distributed.functional as dF
    >>> fnx.distributed.init_process_group("mpi")
    >>> dF.broadcast(fnx.tensor([5.0]), src=0).tolist()
    [5.0]
    >>> fnx.distributed.destroy_process_group()
    """
    group = default_group("broadcast")
    group._check_root(src, "broadcast")
    return collective_broadcast_p.bind(fnp.asarray(x), root=int(src))
