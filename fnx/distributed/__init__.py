"""``fnx.distributed``: data-parallel training across processes and machines
(``torch.distributed``), on MPI (mpi4py + MPICH) for CPU arrays and NCCL (CuPy) for GPU arrays.

Launch with ``mpiexec -n 4 python train.py`` (``-f hosts`` for several machines) or
``python -m fnx.distributed.run --nproc 4 train.py``; in the script call
``init_process_group("mpi")`` (or ``"nccl"``). The collectives below have PyTorch's
signatures: they update their tensor arguments in place (fnx's in-place methods replace an
array's buffer) and return it, or a ``Work`` handle with ``async_op=True``. The functional
forms in ``fnx.distributed.functional`` return their result and work inside ``fnx.jit``,
``fnx.grad`` and ``fnx.vmap`` (they are primitives, ``fnx/distributed/ops.py``).
``fnx.nn.parallel.DistributedDataParallel`` averages gradients with them. docs/distributed.md
has the guide.

>>> import fnx.distributed as dist
>>> dist.init_process_group("mpi")       # a world of one process without mpiexec
>>> t = fnx.tensor([1.0, 2.0])
>>> dist.all_reduce(t, op=dist.ReduceOp.SUM).tolist(), dist.get_world_size()
([1.0, 2.0], 1)
>>> dist.destroy_process_group()
"""

from ..core.array import Array, wrap
from ..core.tracing import Tracer
from ..core import state as _state
from . import functional
from .process_group import (DistributedError, ReduceOp, Work, default_group,
                            destroy_process_group, init_process_group, is_initialized,
                            reduce_op)

__all__ = ["DistributedError", "ReduceOp", "Work", "init_process_group",
           "destroy_process_group", "is_initialized", "is_available", "is_mpi_available",
           "is_nccl_available", "get_rank", "get_world_size", "get_backend", "barrier",
           "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor",
           "reduce_scatter", "reduce_scatter_tensor", "gather", "scatter", "reduce",
           "all_gather_object", "broadcast_object_list", "functional"]


def is_available():
    """True: fnx.distributed is always importable (``is_mpi_available`` says whether it can
    run).

    >>> fnx.distributed.is_available()
    True
    """
    return True


def is_mpi_available():
    """Whether mpi4py (and so an MPI library) can be imported.

    >>> isinstance(fnx.distributed.is_mpi_available(), bool)
    True
    """
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


def is_nccl_available():
    """Whether CuPy's NCCL bindings can be imported (NVIDIA GPUs).

    >>> isinstance(fnx.distributed.is_nccl_available(), bool)
    True
    """
    try:
        from cupy.cuda import nccl  # noqa: F401
    except Exception:  # noqa: BLE001  (no CuPy, or CuPy without a CUDA driver)
        return False
    return True


def get_rank(group=None):
    """This process's rank, 0..world_size-1.

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.get_rank()
    0
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused: only the default group exists
    return default_group("get_rank").rank


def get_world_size(group=None):
    """The number of processes in the job.

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.get_world_size()
    1
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    return default_group("get_world_size").size


def get_backend(group=None):
    """The backend the group was initialized with: ``"mpi"`` or ``"nccl"``.

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.get_backend()
    'mpi'
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    return default_group("get_backend").backend


def barrier(group=None, async_op=False):
    """Wait until every rank has called ``barrier`` (bounded by the group's timeout); with
    ``async_op=True`` return a ``Work`` whose ``wait()`` does.

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.barrier()
    >>> fnx.distributed.barrier(async_op=True).wait()
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    work = default_group("barrier").ibarrier()
    return work if async_op else work.wait()


def _plain(x):
    """An eager array with no autograd record, or a leaf's (a parameter: PyTorch's
    collectives write ``p`` and ``p.data`` without recording anything, as ``no_grad``
    would): its collectives run straight on its buffer, non-blocking when asked. Others
    (results tracked by the tape, values staged in a compiled step) bind the primitives, so
    the tape and the program see them."""
    if type(x) is not Array:
        return False
    meta = x._autograd
    return meta is None or (meta.grad_fn is None and _state.active() is None)


def _check_array(x, what):
    if not isinstance(x, (Array, Tracer)):
        raise TypeError(f"{what}: expected an fnx array, got {type(x).__name__}")
    if isinstance(x, Tracer) and _state.active() is None:
        raise DistributedError(
            f"{what}: updates its argument in place, which traced values inside fnx.grad/vmap "
            f"cannot be; use fnx.distributed.functional.{what}, which returns the result")


def _finish_into(tensor, result, what="a collective"):
    """Write ``result`` into ``tensor`` in place and return ``tensor``. A buffer a collective
    just made for a plain array becomes its buffer (no copy); anything else goes through
    ``copy_``, which the tape and a compiled step's journal see."""
    if tuple(result.shape) != tuple(tensor.shape):
        raise DistributedError(f"{what}: the output array has shape {tuple(tensor.shape)}, "
                               f"the result {tuple(result.shape)}")
    if _plain(tensor) and type(result) is Array and result.dtype == tensor.dtype:
        tensor._set_buffer(result._buf)
    else:
        tensor.copy_(result)
    return tensor


def _returned(value, async_op):
    """What a collective that already ran returns: the value, or a finished ``Work``."""
    return Work.done(value) if async_op else value


def _then(work, fn, async_op):
    """``work`` whose result is ``fn`` of the engine's buffer; waited for unless async."""
    finish = work._finish
    work._finish = lambda: fn(finish())
    return work if async_op else work.wait()


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` over all ranks, in place (``op``: ``ReduceOp.SUM``, ``AVG``,
    ``MAX``, ``MIN`` or 'sum'/'mean'/'max'/'min'); returns ``tensor``, or a ``Work`` whose
    ``wait()`` completes it with ``async_op=True``.

    >>> fnx.distributed.init_process_group("mpi")
    >>> t = fnx.tensor([1.0, 2.0])
    >>> work = fnx.distributed.all_reduce(t, op="max", async_op=True)
    >>> work.wait().tolist()
    [1.0, 2.0]
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    _check_array(tensor, "all_reduce")
    op = reduce_op(op, "all_reduce")
    if not _plain(tensor):
        return _returned(_finish_into(tensor, functional.all_reduce(tensor, op)), async_op)
    g = default_group("all_reduce")
    if op == "mean" and tensor.dtype.kind != "f":
        functional.all_reduce(tensor, op)  # raises the designed error
    work = g.iall_reduce(tensor._buf, "sum" if op == "mean" else op)

    def done(out):
        if op == "mean":
            out /= g.size  # a buffer of our own
        return _finish_into(tensor, wrap(out))

    return _then(work, done, async_op)


def broadcast(tensor, src=0, group=None, async_op=False):
    """Overwrite ``tensor`` on every rank with rank ``src``'s, in place; returns ``tensor``
    (or a ``Work``).

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.broadcast(fnx.tensor([3.0]), src=0).tolist()
    [3.0]
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    _check_array(tensor, "broadcast")
    if not _plain(tensor):
        return _returned(_finish_into(tensor, functional.broadcast(tensor, src)), async_op)
    g = default_group("broadcast")
    work = g.ibroadcast(tensor._buf, src)
    return _then(work, lambda out: _finish_into(tensor, wrap(out), "broadcast"), async_op)


def all_gather_into_tensor(output_tensor, input_tensor, group=None, async_op=False):
    """Concatenate every rank's ``input_tensor`` along axis 0 into ``output_tensor`` (shape
    ``(world_size * n, ...)``), in place.

    >>> fnx.distributed.init_process_group("mpi")
    >>> out = fnx.zeros(2)
    >>> fnx.distributed.all_gather_into_tensor(out, fnx.tensor([1.0, 2.0])).tolist()
    [1.0, 2.0]
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    _check_array(output_tensor, "all_gather_into_tensor")
    result = functional.all_gather(input_tensor, tiled=True)
    return _returned(_finish_into(output_tensor, result, "all_gather_into_tensor"), async_op)


def all_gather(tensor_list, tensor, group=None, async_op=False):
    """Fill ``tensor_list`` (one array per rank, in rank order) with every rank's ``tensor``,
    in place, as ``torch.distributed.all_gather``.

    >>> fnx.distributed.init_process_group("mpi")
    >>> outs = [fnx.zeros(2)]
    >>> _ = fnx.distributed.all_gather(outs, fnx.tensor([1.0, 2.0])); outs[0].tolist()
    [1.0, 2.0]
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    g = default_group("all_gather")
    if len(tensor_list) != g.size:  # an error on every rank, not one left in the collective
        g.check_same("all_gather", tensor.shape, tensor.dtype, error=(
            f"rank {g.rank}'s tensor_list has {len(tensor_list)} arrays, the world {g.size} "
            f"ranks"))
    stacked = functional.all_gather(tensor)
    for r, t in enumerate(tensor_list):
        _check_array(t, "all_gather")
        _finish_into(t, stacked[r], "all_gather")
    return _returned(tensor_list, async_op)


def reduce_scatter_tensor(output, input, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``input`` (shape ``(world_size * n, ...)``) over ranks and write rank r's block
    ``r`` into ``output`` (shape ``(n, ...)``), in place; ``op`` 'sum' or 'mean'.

    >>> fnx.distributed.init_process_group("mpi")
    >>> out = fnx.zeros(2)
    >>> fnx.distributed.reduce_scatter_tensor(out, fnx.tensor([1.0, 2.0])).tolist()
    [1.0, 2.0]
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    _check_array(output, "reduce_scatter_tensor")
    result = functional.reduce_scatter(input, op, tiled=True)
    return _returned(_finish_into(output, result, "reduce_scatter_tensor"), async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``input_list[r]`` over ranks into rank r's ``output``, in place.

    >>> fnx.distributed.init_process_group("mpi")
    >>> out = fnx.zeros(2)
    >>> fnx.distributed.reduce_scatter(out, [fnx.tensor([1.0, 2.0])]).tolist()
    [1.0, 2.0]
    >>> fnx.distributed.destroy_process_group()
    """
    import fnx.numpy as fnp

    del group  # unused
    _check_array(output, "reduce_scatter")
    result = functional.reduce_scatter(fnp.stack(list(input_list)), op)
    return _returned(_finish_into(output, result, "reduce_scatter"), async_op)


def gather(tensor, gather_list=None, dst=0, group=None, async_op=False):
    """Collect every rank's ``tensor`` into ``gather_list`` on rank ``dst`` (in place; other
    ranks pass ``None``). Host arrays, outside traced code.

    >>> fnx.distributed.init_process_group("mpi")
    >>> got = [fnx.zeros(1)]
    >>> _ = fnx.distributed.gather(fnx.tensor([4.0]), got, dst=0); got[0].tolist()
    [4.0]
    >>> fnx.distributed.destroy_process_group()
    """
    del group  # unused
    g = default_group("gather")
    _check_concrete(tensor, "gather")
    error = None
    if g.rank == dst and (gather_list is None or len(gather_list) != g.size):
        error = f"rank {dst} needs a gather_list of {g.size} arrays"
    work = g.igather(tensor._buf, dst, error=error)

    def fill(out):
        if out is not None:
            for r, t in enumerate(gather_list):
                _finish_into(t, wrap(out[r]), "gather")
        return gather_list

    return _then(work, fill, async_op)


def scatter(tensor, scatter_list=None, src=0, group=None, async_op=False):
    """Give rank r ``scatter_list[r]`` of rank ``src`` (written into ``tensor`` in place;
    other ranks pass ``None``). Host arrays, outside traced code.

    >>> fnx.distributed.init_process_group("mpi")
    >>> t = fnx.zeros(1)
    >>> fnx.distributed.scatter(t, [fnx.tensor([7.0])], src=0).tolist()
    [7.0]
    >>> fnx.distributed.destroy_process_group()
    """
    import numpy as np

    del group  # unused
    g = default_group("scatter")
    _check_concrete(tensor, "scatter")
    send = None
    if g.rank == src and scatter_list is not None:
        send = [np.asarray(t) for t in scatter_list]
    work = g.iscatter(send, tensor.shape, tensor.dtype, src)
    return _then(work, lambda out: _finish_into(tensor, wrap(out), "scatter"), async_op)


def reduce(tensor, dst=0, op=ReduceOp.SUM, group=None, async_op=False):
    """Reduce ``tensor`` over all ranks into rank ``dst``'s, in place (PyTorch's
    ``dist.reduce``, often used to log a loss on rank 0). Run as an ``all_reduce``: the other
    ranks get the reduction too, where PyTorch leaves their tensors unspecified.

    >>> fnx.distributed.init_process_group("mpi")
    >>> fnx.distributed.reduce(fnx.tensor([2.0]), dst=0).tolist()
    [2.0]
    >>> fnx.distributed.destroy_process_group()
    """
    default_group("reduce")._check_root(dst, "reduce")
    return all_reduce(tensor, op, group, async_op)


def all_gather_object(object_list, obj, group=None):
    """Fill ``object_list`` (one entry per rank) with every rank's picklable ``obj``, as
    PyTorch's: metrics, predictions or file names of every rank. The pickles travel as byte
    arrays through ``all_gather`` (so the wait has the group's timeout).

    >>> fnx.distributed.init_process_group("mpi")
    >>> got = [None]
    >>> fnx.distributed.all_gather_object(got, {"loss": 0.5}); got
    [{'loss': 0.5}]
    >>> fnx.distributed.destroy_process_group()
    """
    import pickle

    import numpy as np

    del group  # unused
    g = default_group("all_gather_object")
    if len(object_list) != g.size:
        g.check_same("all_gather_object", (), np.int64, error=(
            f"rank {g.rank}'s object_list has {len(object_list)} entries, the world {g.size} "
            f"ranks"))
    data = np.frombuffer(pickle.dumps(obj), np.uint8)
    sizes = g.all_gather(np.array([data.size], np.int64), "all_gather_object")[:, 0]
    padded = np.zeros(int(sizes.max()), np.uint8)
    padded[:data.size] = data
    every = g.all_gather(padded, "all_gather_object")
    object_list[:] = [pickle.loads(every[r, :n].tobytes()) for r, n in enumerate(sizes)]


def broadcast_object_list(object_list, src=0, group=None, device=None):
    """Replace every rank's ``object_list`` entries with rank ``src``'s (picklable objects,
    as PyTorch's; the lists have the same length everywhere).

    >>> fnx.distributed.init_process_group("mpi")
    >>> objs = ["config.yaml", 3]
    >>> fnx.distributed.broadcast_object_list(objs, src=0); objs
    ['config.yaml', 3]
    >>> fnx.distributed.destroy_process_group()
    """
    import pickle

    import numpy as np

    del group, device  # unused
    g = default_group("broadcast_object_list")
    data = np.frombuffer(pickle.dumps(list(object_list)), np.uint8)
    size = g.broadcast(np.array([data.size], np.int64), src, "broadcast_object_list")
    if g.rank != src:
        data = np.zeros(int(size[0]), np.uint8)
    object_list[:] = pickle.loads(g.broadcast(data, src, "broadcast_object_list").tobytes())


def _check_concrete(x, what):
    if type(x) is not Array:
        raise DistributedError(f"{what}: runs on concrete fnx arrays outside fnx.jit/grad/"
                               f"vmap (its result exists on one rank only); got "
                               f"{type(x).__name__}")
