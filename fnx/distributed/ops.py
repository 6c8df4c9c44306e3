"""Collectives as primitives: every rule side by side, as in ``fnx/core/ops/`` (R1).

``all_reduce_sum`` (JAX's ``psum``), ``all_reduce_max`` / ``all_reduce_min`` (``pmax`` /
``pmin``), ``all_gather``, ``reduce_scatter`` (``psum_scatter``) and ``collective_broadcast``
run over the default process group. Their impls call MPI (or NCCL) on the operands' buffers,
eagerly and from jit's orchestrator (``call_kind = "impl"``: a compiled program calls the
engine at that point of its schedule). The derivative rules are JAX's: ``psum`` is linear and
its transpose is ``psum`` (a program replicated over ranks differentiates the sum of the
ranks' outputs), ``all_gather`` and ``reduce_scatter`` transpose into each other; under vmap
the batch dimension rides along (every rank maps the same axis).

Every rank must bind the same collectives in the same order; programs are the same on every
rank (the rules never branch on the rank around a collective), so traced, differentiated and
batched code keeps that order.
"""

from ..core.abstract import ShapedArray
from ..core.ad_util import Zero
from ..core.errors import DTypeError, ShapeError
from ..core.ops.family import deflinear
from ..core.ops.shape import move_axis
from ..core.primitive import Primitive
from .process_group import DistributedError, default_group

__all__ = ["all_reduce_sum_p", "all_reduce_max_p", "all_reduce_min_p", "all_gather_p",
           "reduce_scatter_p", "collective_broadcast_p", "process_rank_p"]


def _group(name, world_size=None):
    group = default_group(name)
    if world_size is not None and world_size != group.size:
        raise DistributedError(f"{name}: the program was traced for a world of {world_size} "
                               f"ranks but runs in one of {group.size}; trace it again")
    return group


def _collective(name, impl, abstract_eval, batch):
    prim = Primitive(name)
    prim.impl = impl
    prim.abstract_eval = abstract_eval
    prim.batch = batch
    # jit runs it from its orchestrator with the eager impl: a call into MPI/NCCL
    prim.call_kind = "impl"
    # The default rule (weak iff the operand is), stated: a primitive without a rule may take
    # eval_impl's fast path, which runs an impl that raised a second time on the general path;
    # for a collective that second run is another MPI call on this rank alone (a rank whose
    # arguments were wrong would wait there while its peers have moved on)
    prim.weak_type_rule = lambda weak, **params: weak[0]
    return prim


def _numeric_aval(name, x, kinds="biufc"):
    """The aval of a reduction's result: bool, integer, floating-point and (for sums, as the
    eager call) complex arrays; max and min pass ``kinds="biuf"`` (complex has no order)."""
    if x.dtype.kind not in kinds:
        raise DTypeError(f"{name}: dtype {x.dtype} is not supported (MPI and NCCL reduce "
                         f"bool, integer and floating-point arrays, and sum complex ones)")
    return ShapedArray(x.shape, x.dtype)


# --- all_reduce: sum (psum), max, min -----------------------------------------------------------


def _all_reduce(op):
    name = f"all_reduce_{op}"

    def impl(x, **params):
        del params  # unused
        return _group(name).all_reduce(x, op, name)

    def abstract_eval(x):
        return _numeric_aval(name, x, "biufc" if op == "sum" else "biuf")

    def batch(axis_size, args, dims):
        del axis_size  # unused
        return prim.bind(args[0]), dims[0]  # elementwise over ranks: the batch axis rides along

    prim = _collective(name, impl, abstract_eval, batch)
    return prim


all_reduce_sum_p = _all_reduce("sum")
deflinear(all_reduce_sum_p, lambda ct, x: [all_reduce_sum_p.bind(ct)])

all_reduce_max_p = _all_reduce("max")
all_reduce_min_p = _all_reduce("min")


def _extremum_jvp(prim):
    # the tangent of the rank(s) holding the extremum, averaged over ties (the convention of
    # reduce_max): psum(t * at) / psum(at), with at = (x == result)
    def jvp(primals, tangents):
        (x,), (x_dot,) = primals, tangents
        ans = prim.bind(x)
        if type(x_dot) is Zero:
            return ans, Zero(ShapedArray(ans.shape, ans.dtype))
        at = (x == ans).astype(x_dot.dtype)
        return ans, all_reduce_sum_p.bind(x_dot * at) / all_reduce_sum_p.bind(at)

    prim.jvp = jvp


_extremum_jvp(all_reduce_max_p)
_extremum_jvp(all_reduce_min_p)


# --- all_gather / reduce_scatter ----------------------------------------------------------------


def _all_gather_impl(x, *, world_size):
    return _group("all_gather", world_size).all_gather(x)


def _all_gather_abstract_eval(x, *, world_size):
    return ShapedArray((world_size,) + tuple(x.shape), x.dtype)


def _all_gather_batch(axis_size, args, dims, *, world_size):
    del axis_size  # unused
    return all_gather_p.bind(args[0], world_size=world_size), dims[0] + 1


all_gather_p = _collective("all_gather", _all_gather_impl, _all_gather_abstract_eval,
                           _all_gather_batch)


def _reduce_scatter_impl(x, *, world_size):
    return _group("reduce_scatter", world_size).reduce_scatter(x, "sum")


def _reduce_scatter_abstract_eval(x, *, world_size):
    if x.ndim == 0 or x.shape[0] != world_size:
        raise ShapeError(f"reduce_scatter: the input's leading axis must have the world size "
                         f"{world_size} (one block per rank), got shape {tuple(x.shape)}")
    return _numeric_aval("reduce_scatter", ShapedArray(x.shape[1:], x.dtype))


def _reduce_scatter_batch(axis_size, args, dims, *, world_size):
    del axis_size  # unused
    x, d = args[0], dims[0]
    if d == 0:  # the scattered axis stays in front, the batch axis behind it
        return reduce_scatter_p.bind(move_axis(x, 0, 1), world_size=world_size), 0
    return reduce_scatter_p.bind(x, world_size=world_size), d - 1


reduce_scatter_p = _collective("reduce_scatter", _reduce_scatter_impl,
                               _reduce_scatter_abstract_eval, _reduce_scatter_batch)

deflinear(all_gather_p, lambda ct, x, *, world_size: [
    reduce_scatter_p.bind(ct, world_size=world_size)])
deflinear(reduce_scatter_p, lambda ct, x, *, world_size: [
    all_gather_p.bind(ct, world_size=world_size)])


# --- broadcast from one rank --------------------------------------------------------------------


def _broadcast_impl(x, *, root):
    return _group("broadcast").broadcast(x, root)


def _broadcast_abstract_eval(x, *, root):
    del root  # unused
    return ShapedArray(x.shape, x.dtype)


def _broadcast_batch(axis_size, args, dims, *, root):
    del axis_size  # unused
    return collective_broadcast_p.bind(args[0], root=root), dims[0]


collective_broadcast_p = _collective("collective_broadcast", _broadcast_impl,
                                     _broadcast_abstract_eval, _broadcast_batch)


def _broadcast_transpose(ct, x, *, root):
    # every rank's output came from the root's input: the root's cotangent is the sum of all
    # of them, the others' zero. The choice is made at run time (process_rank_p), so every
    # rank's program is the same: a rank-dependent program could drop the psum as dead code
    # on the ranks that do not use it, and the others would wait for them forever.
    import fnx.numpy as fnp

    del x  # unused
    total = all_reduce_sum_p.bind(ct)
    is_root = process_rank_p.bind() == root
    return [fnp.where(is_root, total, fnp.zeros_like(total))]


deflinear(collective_broadcast_p, _broadcast_transpose)


# --- the rank, as a run-time value (JAX's axis_index) ------------------------------------------


def _process_rank_impl():
    import numpy as np

    return np.asarray(_group("process_rank").rank, np.int32)


def _process_rank_abstract_eval():
    import numpy as np

    return ShapedArray((), np.dtype(np.int32))


process_rank_p = Primitive("process_rank")
process_rank_p.impl = _process_rank_impl
process_rank_p.abstract_eval = _process_rank_abstract_eval
process_rank_p.differentiable = False
process_rank_p.no_batch_reason = "has no operands, so vmap never sees it with a batched argument"
process_rank_p.call_kind = "impl"
