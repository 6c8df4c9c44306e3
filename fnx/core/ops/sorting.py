"""Sorting and cumulative primitives: sort (stable, several operands keyed by the first),
cumsum, cumprod, cummax, cummin.

``sort`` with an ``iota`` operand is argsort; descending order is a wrapper-level flip (see
``fnx.numpy.sort``), so the primitive has a single, stable, ascending order. NaNs sort last,
as NumPy.

Cumulative JVP rules:

* cumsum is linear; its transpose is the cumsum in the other direction;
* cumprod's tangent is a prefix scan over dual numbers ``(a, da) * (b, db) = (ab, a db + da b)``
  (Hillis-Steele, ``log2(n)`` shifted products in primitives), exact also at zeros, where the
  common ``cumprod(x) * cumsum(t / x)`` is not;
* cummax / cummin average the tangents of the elements attaining the running extremum (its
  ties), as reduce_max: segmented prefix sums over the runs where the extremum is constant.
"""

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero
from ..errors import AxisError, DTypeError, ShapeError
from ..primitive import Primitive
from .family import errstate
from .indexing import checked
from .shape import broadcast_batched, iota_p, move_axis, rev_p


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


# --- sort ------------------------------------------------------------------------------------


def _sort_abstract_eval(*operands, dimension):
    if not operands:
        raise ValueError("sort: needs at least one operand")
    first = operands[0]
    for op in operands[1:]:
        if op.shape != first.shape:
            raise ShapeError(f"sort: all operands must have the key's shape {first.shape}, got "
                             f"{[o.shape for o in operands]}")
    if not 0 <= dimension < first.ndim:
        raise AxisError(f"sort: dimension {dimension} is out of range for an operand of rank "
                        f"{first.ndim}")
    if first.dtype.kind == "c":
        raise DTypeError("sort: complex keys are not supported (sort by real/imag parts)")
    return tuple(ShapedArray(o.shape, o.dtype) for o in operands)


def _sort_impl(*operands, dimension):
    from ..devices import array_module

    xp = array_module(operands[0])
    perm = xp.argsort(operands[0], axis=dimension, kind="stable")
    return tuple(xp.take_along_axis(op, perm, axis=dimension) for op in operands)


def _sort_jvp(primals, tangents, *, dimension):
    # Sort an iota along with the operands to learn the permutation, then permute tangents.
    from .indexing import take_along_axis

    aval = _aval(primals[0])
    iota = iota_p.bind(dtype=np.dtype(np.int64), shape=aval.shape, dimension=dimension)
    *outs, perm = sort_p.bind(*primals, iota, dimension=dimension)
    t_outs = [Zero(_aval(o)) if type(t) is Zero else take_along_axis(t, perm, dimension)
              for o, t in zip(outs, tangents, strict=True)]
    return outs, t_outs


def _sort_batch(axis_size, args, dims, *, dimension):
    aligned = [broadcast_batched(x, axis_size) if d is None else move_axis(x, d, 0)
               for x, d in zip(args, dims, strict=True)]
    outs = sort_p.bind(*aligned, dimension=dimension + 1)
    return outs, [0] * len(outs)


sort_p = Primitive("sort", multiple_results=True)
sort_p.impl = checked(_sort_abstract_eval, _sort_impl)
sort_p.abstract_eval = _sort_abstract_eval
sort_p.jvp = _sort_jvp
sort_p.batch = _sort_batch
sort_p.call_kind = "impl"


def sort(operands, dimension):
    """Sort ``operands`` (a sequence) along ``dimension`` by the first one, stably."""
    return sort_p.bind(*operands, dimension=int(dimension))


def argsort(x, dimension, index_dtype=np.int64):
    """The stable ascending permutation of ``x`` along ``dimension``."""
    aval = _aval(x)
    iota = iota_p.bind(dtype=np.dtype(index_dtype), shape=aval.shape, dimension=dimension)
    return sort_p.bind(x, iota, dimension=dimension)[1]


# --- cumulative ops --------------------------------------------------------------------------


def _cumulative(name, accumulate, kinds):
    prim = Primitive(name)

    def abstract_eval(x, *, axis, reverse):
        if not 0 <= axis < x.ndim:
            raise AxisError(f"{name}: axis {axis} is out of range for an array of rank {x.ndim}")
        if x.dtype.kind not in kinds:
            raise DTypeError(f"{name}: dtype {x.dtype} is not supported; convert with .astype()")
        return ShapedArray(x.shape, x.dtype)

    @errstate
    def impl(x, *, axis, reverse):
        from ..devices import array_module

        xp = array_module(x)
        if reverse:
            x = xp.flip(x, axis)
        out = accumulate(xp, x, axis)
        out = out.astype(x.dtype, copy=False)
        return xp.ascontiguousarray(xp.flip(out, axis) if reverse else out)

    def batch(axis_size, args, dims, *, axis, reverse):
        x = move_axis(args[0], dims[0], 0)
        return prim.bind(x, axis=axis + 1, reverse=reverse), 0

    prim.impl = checked(abstract_eval, impl)
    prim.abstract_eval = abstract_eval
    prim.batch = batch
    prim.call_kind = "impl"
    return prim


cumsum_p = _cumulative("cumsum", lambda xp, x, a: xp.cumsum(x, axis=a, dtype=x.dtype), "iufc")
cumprod_p = _cumulative("cumprod", lambda xp, x, a: xp.cumprod(x, axis=a, dtype=x.dtype), "iufc")
cummax_p = _cumulative("cummax", lambda xp, x, a: xp.maximum.accumulate(x, axis=a), "biuf")
cummin_p = _cumulative("cummin", lambda xp, x, a: xp.minimum.accumulate(x, axis=a), "biuf")


def _cumsum_jvp(primals, tangents, *, axis, reverse):
    (x,), (t,) = primals, tangents
    ans = cumsum_p.bind(x, axis=axis, reverse=reverse)
    if type(t) is Zero:
        return ans, Zero(_aval(ans))
    return ans, cumsum_p.bind(t, axis=axis, reverse=reverse)


def _cumsum_transpose(ct, x, *, axis, reverse):
    del x  # unused
    return [cumsum_p.bind(ct, axis=axis, reverse=not reverse)]


cumsum_p.jvp = _cumsum_jvp
cumsum_p.linear = True
cumsum_p.transpose = _cumsum_transpose


def _shift(x, axis, k, fill):
    """``x`` shifted by ``k`` along ``axis`` (toward higher indices), ``fill`` in the gap."""
    from .elementwise import full
    from .shape import pad_p, slice_p

    shape = _aval(x).shape
    n = shape[axis]
    k = min(k, n)
    limits = tuple(n - k if d == axis else s for d, s in enumerate(shape))
    kept = slice_p.bind(x, start_indices=(0,) * len(shape), limit_indices=limits, strides=None)
    config = tuple((k, 0, 0) if d == axis else (0, 0, 0) for d in range(len(shape)))
    return pad_p.bind(kept, full((), fill, _aval(x).dtype), padding_config=config)


def _cumprod_jvp(primals, tangents, *, axis, reverse):
    (x,), (t,) = primals, tangents
    ans = cumprod_p.bind(x, axis=axis, reverse=reverse)
    if type(t) is Zero:
        return ans, Zero(_aval(ans))
    if reverse:
        x, t = rev_p.bind(x, dimensions=(axis,)), rev_p.bind(t, dimensions=(axis,))
    # inclusive prefix scan of dual numbers (a, da): after the step with shift k, position i
    # holds the product over (i - 2k, i]
    a, da = x, t
    n, k = _aval(x).shape[axis], 1
    while k < n:
        a_prev, da_prev = _shift(a, axis, k, 1), _shift(da, axis, k, 0)
        a, da = a_prev * a, a_prev * da + da_prev * a
        k *= 2
    if reverse:
        da = rev_p.bind(da, dimensions=(axis,))
    return ans, da


cumprod_p.jvp = _cumprod_jvp


def _segmented_cumsums(starts, values, axis):
    """Inclusive prefix sums of each array in ``values`` along ``axis``, restarting where
    ``starts`` is true: log2(n) Hillis-Steele steps of shifted adds (after the step with shift
    ``k`` a position holds the sum over (i - 2k, i] within its segment). Exact where one
    cumsum minus its value at the segment start would cancel."""
    from .elementwise import or_p, select_p

    n, k = _aval(starts).shape[axis], 1
    while k < n:
        values = [select_p.bind(starts, v, _shift(v, axis, k, 0) + v) for v in values]
        starts = or_p.bind(starts, _shift(starts, axis, k, False))
        k *= 2
    return values


def _cum_extremum_jvp_for(prim):
    # The tangent is the mean of the tangents of the elements attaining the running extremum
    # (all of its ties), as reduce_max's rule, so cummax(x)[-1] and max(x) agree and a tie of
    # two gets the central difference. The running extremum is constant over runs; the
    # elements attaining it are those equal to it inside the run so far.
    def jvp(primals, tangents, *, axis, reverse):
        (x,), (t,) = primals, tangents
        ans = prim.bind(x, axis=axis, reverse=reverse)
        if type(t) is Zero:
            return ans, Zero(_aval(ans))
        from .elementwise import convert_element_type, eq_p, full, ne_p, select_p

        run = ans
        if reverse:
            x, run, t = (rev_p.bind(v, dimensions=(axis,)) for v in (x, ans, t))
        hit = eq_p.bind(x, run)
        # position 0 needs no start: nothing before it is summed
        starts = ne_p.bind(run, _shift(run, axis, 1, 0))
        total, count = _segmented_cumsums(
            starts, [select_p.bind(hit, t, full(_aval(t).shape, 0, _aval(t).dtype)),
                     convert_element_type(hit, _aval(t).dtype)], axis)
        t_out = total / count
        return ans, rev_p.bind(t_out, dimensions=(axis,)) if reverse else t_out

    prim.jvp = jvp


_cum_extremum_jvp_for(cummax_p)
_cum_extremum_jvp_for(cummin_p)


def cumulative(prim, x, axis, reverse=False):
    return prim.bind(x, axis=int(axis), reverse=bool(reverse))

