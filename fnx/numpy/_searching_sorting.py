"""Sorting, searching and cumulative functions: sort, argsort, searchsorted, nonzero, take,
take_along_axis, cumsum, cumprod, cumulative_sum, cumulative_prod, cummax, cummin,
count_nonzero. All are compositions of primitives (sort_p, cum*_p, gather_p, ...)."""

import numpy as np

from ..core import dtypes
from ..core.errors import ConcretizationError, FnxError, FnxIndexError, normalize_axis
from ..core.ops import elementwise as ew
from ..core.ops import indexing as ix
from ..core.ops import shape as sh
from ..core.ops import sorting as so
from ..core.tracing import get_aval
from ._core import broadcast_shapes, broadcast_to_shape, to_array
from ._ufunc import check_out

_I64 = np.dtype(np.int64)

__all__ = [
    "sort", "argsort", "partition", "argpartition", "searchsorted", "nonzero", "take",
    "take_along_axis", "cumsum", "cumprod", "cumulative_sum", "cumulative_prod", "cummax",
    "cummin", "count_nonzero",
]


def _flip(x, axis):
    return sh.rev_p.bind(x, dimensions=(axis,))


def _sort_pair(x, axis, descending):
    """(sorted x, permutation) along ``axis``; stable in both directions."""
    iota = sh.iota_p.bind(dtype=_I64, shape=x.shape, dimension=axis)
    if not descending:
        return so.sort_p.bind(x, iota, dimension=axis)
    # stable descending: sort the reversed array ascending and reverse back, so equal keys
    # keep their original order
    values, perm = so.sort_p.bind(_flip(x, axis), _flip(iota, axis), dimension=axis)
    return _flip(values, axis), _flip(perm, axis)


_KINDS = (None, "quicksort", "mergesort", "heapsort", "stable")


def _sort_args(op, a, axis, kind, order):
    """``a`` as an array and ``axis`` normalized (None sorts the flattened array), after
    checking NumPy's ``kind`` (every kind gives the same stable sort here) and ``order``."""
    if kind not in _KINDS:
        raise ValueError(f"{op}: kind must be one of {_KINDS}, got {kind!r}")
    if order is not None:
        raise ValueError(f"{op}: order= names fields of structured arrays, which fnx does not "
                         f"have")
    x = to_array(a)
    if axis is None:
        x, axis = sh.reshape(x, (x.size,)), 0
    return x, normalize_axis(axis, x.ndim, op)


def sort(a, axis=-1, kind=None, order=None, *, stable=None, descending=False):
    """Sorted copy of ``a`` along ``axis`` (the flattened array when None); always stable,
    whatever ``kind``/``stable`` say; NaNs last when ascending.

    >>> fnx.numpy.sort(fnx.numpy.asarray([3, 1, 2])).tolist()
    [1, 2, 3]
    """
    del stable  # unused: the sort is always stable
    x, axis = _sort_args("sort", a, axis, kind, order)
    if x.shape[axis] <= 1:
        return x
    if not descending:
        return so.sort_p.bind(x, dimension=axis)[0]
    return _sort_pair(x, axis, True)[0]


def argsort(a, axis=-1, kind=None, order=None, *, stable=None, descending=False):
    """Indices that sort ``a`` along ``axis`` (int64, always stable; the flattened array when
    ``axis`` is None).

    >>> fnx.numpy.argsort(fnx.numpy.asarray([3, 1, 2])).tolist()
    [1, 2, 0]
    """
    del stable  # unused: the sort is always stable
    x, axis = _sort_args("argsort", a, axis, kind, order)
    return _sort_pair(x, axis, descending)[1]


def _check_kth(op, kth, n):
    for k in np.atleast_1d(np.asarray(kth)).reshape(-1):
        if not -n <= int(k) < n:
            raise ValueError(f"{op}: kth={int(k)} is out of bounds for an axis of size {n}")


def partition(a, kth, axis=-1, kind="introselect", order=None):
    """``a`` rearranged along ``axis`` so that the element at each ``kth`` position is the
    one a sort would put there, smaller ones before it and larger ones after. fnx returns
    the fully sorted array, one valid partition (NumPy leaves the order within each side
    unspecified), so it differentiates like ``sort``.

    >>> fnp.partition(fnp.asarray([3, 4, 2, 1]), 2)[2].item()
    3
    """
    if kind != "introselect":
        raise ValueError(f"partition: kind must be 'introselect', got {kind!r}")
    x, ax = _sort_args("partition", a, axis, None, order)
    _check_kth("partition", kth, x.shape[ax])
    return sort(x, axis=ax)


def argpartition(a, kth, axis=-1, kind="introselect", order=None):
    """Indices that ``partition`` ``a`` along ``axis`` (the stable sorting permutation, one
    valid answer; NumPy leaves the order within each side unspecified).

    >>> x = fnp.asarray([3, 4, 2, 1])
    >>> x[fnp.argpartition(x, 1)][1].item()
    2
    """
    if kind != "introselect":
        raise ValueError(f"argpartition: kind must be 'introselect', got {kind!r}")
    x, ax = _sort_args("argpartition", a, axis, None, order)
    _check_kth("argpartition", kth, x.shape[ax])
    return argsort(x, axis=ax)


def searchsorted(a, v, side="left", sorter=None):
    """Insertion points of ``x2`` into the sorted 1-D ``x1`` (NumPy/array API semantics,
    NaNs sorted last). Compares every pair, so memory is ``x1.size * x2.size``.

    >>> fnx.numpy.searchsorted(fnx.numpy.asarray([1, 2, 3]), 2.5).tolist()
    2
    """
    from ._core import promote_args

    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    x1, x2 = to_array(a), v
    if x1.ndim != 1:
        raise ValueError(f"searchsorted: x1 must be 1-D, got shape {x1.shape}")
    if sorter is not None:
        x1 = take(x1, sorter)
    a, v = promote_args("searchsorted", x1, x2)
    vshape = v.shape
    pair = vshape + a.shape
    a_b = sh.broadcast_in_dim(a, pair, (len(vshape),))
    v_b = sh.broadcast_in_dim(v, pair, tuple(range(len(vshape))))
    if side == "left":
        before = ew.lt_p.bind(a_b, v_b)
    else:
        before = ew.le_p.bind(a_b, v_b)
    if a.dtype.kind in "fc":
        # NaN sorts last: every number is before a NaN value (left), everything (right)
        v_nan = ew.is_nan_p.bind(v_b)
        a_num = ew.not_p.bind(ew.is_nan_p.bind(a_b))
        extra = ew.and_p.bind(v_nan, a_num) if side == "left" else v_nan
        before = ew.or_p.bind(before, extra)
    from ..core.ops.reduction import reduce_sum_p

    counts = ew.convert_element_type(before, _I64)
    return reduce_sum_p.bind(counts, axes=(len(vshape),))


MSG_NONZERO_TRACED = (
    "nonzero: the number of nonzero entries (the result's shape) is unknown while tracing "
    "(fnx.jit / fnx.vmap / make_ir). Pass size=n (and fill_value) for a fixed-size result, or "
    "use fnp.where for elementwise selection."
)


def nonzero(a, *, size=None, fill_value=None):
    """Indices of the nonzero entries of ``x``, one int64 array per dim.

    Without ``size`` the result's shape depends on the data, so ``x`` must be concrete; with
    ``size=n`` (JAX's extension) the first ``n`` indices are returned, padded with
    ``fill_value`` (default 0), which also works under jit and vmap.

    >>> [i.tolist() for i in fnx.numpy.nonzero(fnx.numpy.asarray([0, 3, 0, 5]))]
    [[1, 3]]
    """
    x = to_array(a)
    if x.ndim == 0:
        raise ValueError("nonzero: 0-d arrays are not supported; use fnp.atleast_1d(x) first")
    if size is None:
        try:
            host = np.asarray(x.concrete_value())
        except FnxError as err:
            raise ConcretizationError(MSG_NONZERO_TRACED) from err
        return tuple(to_array(i.astype(_I64)) for i in np.nonzero(host))
    return _nonzero_sized(x, int(size), fill_value)


def _nonzero_sized(x, size, fill_value):
    # position of each nonzero entry among the nonzeros = exclusive count before it; scatter
    # its flat index there, dropping entries past ``size``
    n = x.size
    flat = sh.reshape(x, (n,))
    nz = ew.ne_p.bind(flat, ew.full((n,), 0, x.dtype)) if x.dtype != dtypes.bool_ else flat
    count = so.cumsum_p.bind(ew.convert_element_type(nz, _I64), axis=0, reverse=False)
    slot = ew.sub_p.bind(count, ew.full((n,), 1, _I64))
    slot = ew.select_p.bind(nz, slot, ew.full((n,), size, _I64))  # size is out of range: dropped
    fill = 0 if fill_value is None else fill_value
    fills = fill if isinstance(fill, (tuple, list)) else (fill,) * x.ndim
    flat_pos = sh.iota_p.bind(dtype=_I64, shape=(n,), dimension=0)
    out = []
    stride = n
    for d, dim in enumerate(x.shape):
        stride = stride // dim if dim else 0
        coord = flat_pos
        if stride:
            coord = ew.div_p.bind(coord, ew.full((n,), stride, _I64))
        if dim:
            coord = ew.rem_p.bind(coord, ew.full((n,), dim, _I64))
        base = ew.full((size,), int(fills[d]), _I64)
        out.append(ix.scatter(base, sh.reshape(slot, (n, 1)), coord, mode="set", oob="drop"))
    return tuple(out)


def _check_index_bounds(indices, n, op):
    if isinstance(indices, np.ndarray) or type(indices).__name__ == "Array":
        host = np.asarray(indices)
        if host.size and (host.min() < -n or host.max() >= n):
            bad = host[(host < -n) | (host >= n)].flat[0]
            raise FnxIndexError(f"{op}: index {int(bad)} is out of bounds for an axis of size "
                                f"{n}")


def _wrap_negative(i, n):
    i = ew.convert_element_type(i, _I64)
    shape = get_aval(i).shape
    neg = ew.lt_p.bind(i, ew.full(shape, 0, _I64))
    return ew.select_p.bind(neg, ew.add_p.bind(i, ew.full(shape, n, _I64)), i)


def take(a, indices, axis=None, out=None, mode="raise"):
    """Elements of ``a`` at ``indices`` along ``axis`` (``a`` flattened when None). Indices
    out of range raise (``mode="raise"``; traced ones are clamped, as JAX), wrap around
    (``"wrap"``) or are clipped to the ends (``"clip"``, negative ones to 0), as NumPy.

    >>> fnx.numpy.take(fnx.numpy.asarray([10, 20, 30]), fnx.numpy.asarray([2, 0])).tolist()
    [30, 10]
    >>> fnp.take(fnp.asarray([10, 20, 30]), [4, -4], mode="wrap").tolist()
    [20, 30]
    """
    check_out("take", out)
    if mode not in ("raise", "wrap", "clip"):
        raise ValueError(f"take: mode must be 'raise', 'wrap' or 'clip', got {mode!r}")
    x = to_array(a)
    if axis is None:
        x = sh.reshape(x, (x.size,))
        axis = 0
    axis = normalize_axis(axis, x.ndim, "take")
    indices = indices if hasattr(indices, "dtype") else np.asarray(indices)
    if indices.dtype.kind not in "iu":
        raise FnxIndexError(f"take: indices must be integers, got {indices.dtype}")
    n = x.shape[axis]
    if mode != "raise" and n:
        from ._elementwise import clip, remainder

        indices = to_array(indices, _I64)
        indices = remainder(indices, n) if mode == "wrap" else clip(indices, 0, n - 1)
    from ._advanced import advanced_getitem

    if get_aval(indices).ndim == 0:
        # a 0-d index removes the axis: route it through the 1-element gather
        one = advanced_getitem(x, (slice(None),) * axis + (sh.reshape(to_array(indices), (1,)),))
        return sh.reshape(one, x.shape[:axis] + x.shape[axis + 1:])
    return advanced_getitem(x, (slice(None),) * axis + (indices,))


def take_along_axis(arr, indices, axis=-1):
    """``out[..., j, ...] = x[..., indices[..., j, ...], ...]`` along ``axis``; ``indices``
    broadcasts against ``x`` in the other dims.

    >>> x = fnx.numpy.asarray([[3, 1], [0, 4]])
    >>> fnx.numpy.take_along_axis(x, fnx.numpy.argsort(x, axis=1), axis=1).tolist()
    [[1, 3], [0, 4]]
    """
    x = to_array(arr)
    indices = to_array(indices)
    if indices.dtype.kind not in "iu":
        raise FnxIndexError(f"take_along_axis: indices must be integers, got {indices.dtype}")
    if indices.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices (shape {indices.shape}) must have the rank "
                         f"of x (shape {x.shape})")
    axis = normalize_axis(axis, x.ndim, "take_along_axis")
    n = x.shape[axis]
    _check_index_bounds(indices, n, "take_along_axis")
    x_other = tuple(1 if d == axis else s for d, s in enumerate(x.shape))
    i_other = tuple(1 if d == axis else s for d, s in enumerate(indices.shape))
    other = broadcast_shapes("take_along_axis", x_other, i_other)
    out_shape = tuple(indices.shape[axis] if d == axis else s for d, s in enumerate(other))
    x = broadcast_to_shape(x, tuple(n if d == axis else s for d, s in enumerate(other)))
    indices = broadcast_to_shape(_wrap_negative(indices, n), out_shape)
    return ix.take_along_axis(x, indices, axis)


def _cum_dtype(x, dtype):
    from ._statistical import _sum_dtype

    return _sum_dtype(x, dtype)


def _cumulative(prim, name, x, axis, dtype, out, include_initial, initial, flatten_none):
    check_out(name, out)
    x = to_array(x)
    x = ew.convert_element_type(x, _cum_dtype(x, dtype))
    if axis is None:
        if not flatten_none and x.ndim != 1:
            raise ValueError(f"{name}: axis must be given for an array of rank {x.ndim}")
        x = sh.reshape(x, (x.size,))
        axis = 0
    if x.ndim == 0:
        raise ValueError(f"{name}: 0-d arrays are not supported; use fnp.reshape(x, (1,))")
    axis = normalize_axis(axis, x.ndim, name)
    out = prim.bind(x, axis=axis, reverse=False) if x.shape[axis] else x
    if include_initial:
        start = ew.full(tuple(1 if d == axis else s for d, s in enumerate(x.shape)), initial,
                        x.dtype)
        out = sh.concatenate_p.bind(start, out, dimension=axis)
    return out


def cumsum(a, axis=None, dtype=None, out=None, *, include_initial=False):
    """Cumulative sum along ``axis`` (``a`` flattened when None); small integers accumulate
    in int64, as ``fnp.sum``.

    >>> fnx.numpy.cumsum(fnx.numpy.asarray([1, 2, 3])).tolist()
    [1, 3, 6]
    """
    return _cumulative(so.cumsum_p, "cumsum", a, axis, dtype, out, include_initial, 0, True)


def cumprod(a, axis=None, dtype=None, out=None, *, include_initial=False):
    """Cumulative product along ``axis`` (``a`` flattened when None).

    >>> fnx.numpy.cumprod(fnx.numpy.asarray([1.0, 2.0, 3.0])).tolist()
    [1.0, 2.0, 6.0]
    """
    return _cumulative(so.cumprod_p, "cumprod", a, axis, dtype, out, include_initial, 1, True)


def cumulative_sum(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    """Array API ``cumulative_sum``: ``axis`` may be omitted only for 1-D ``x``.

    >>> fnx.numpy.cumulative_sum(fnx.numpy.asarray([1, 2]), include_initial=True).tolist()
    [0, 1, 3]
    """
    return _cumulative(so.cumsum_p, "cumulative_sum", x, axis, dtype, out, include_initial, 0,
                       False)


def cumulative_prod(x, /, *, axis=None, dtype=None, out=None, include_initial=False):
    """Array API ``cumulative_prod``: ``axis`` may be omitted only for 1-D ``x``.

    >>> fnx.numpy.cumulative_prod(fnx.numpy.asarray([2, 3])).tolist()
    [2, 6]
    """
    return _cumulative(so.cumprod_p, "cumulative_prod", x, axis, dtype, out, include_initial,
                       1, False)


def _cum_extremum(prim, name, x, axis):
    x = to_array(x)
    if axis is None:
        x = sh.reshape(x, (x.size,))
        axis = 0
    if x.ndim == 0:
        return x
    axis = normalize_axis(axis, x.ndim, name)
    return prim.bind(x, axis=axis, reverse=False) if x.shape[axis] else x


def cummax(x, /, *, axis=None):
    """Running maximum along ``axis`` (values only; ``x`` flattened when None).

    >>> fnx.numpy.cummax(fnx.numpy.asarray([1, 3, 2])).tolist()
    [1, 3, 3]
    """
    return _cum_extremum(so.cummax_p, "cummax", x, axis)


def cummin(x, /, *, axis=None):
    """Running minimum along ``axis`` (values only; ``x`` flattened when None).

    >>> fnx.numpy.cummin(fnx.numpy.asarray([3, 1, 2])).tolist()
    [3, 1, 1]
    """
    return _cum_extremum(so.cummin_p, "cummin", x, axis)


def count_nonzero(a, axis=None, *, keepdims=False):
    """Number of nonzero entries (int64) over ``axis`` (all axes when None).

    >>> fnx.numpy.count_nonzero(fnx.numpy.asarray([0, 1, 2])).item()
    2
    """
    from ._statistical import sum as _sum

    x = to_array(a)
    nz = x if x.dtype == dtypes.bool_ else ew.ne_p.bind(x, ew.full(x.shape, 0, x.dtype))
    return _sum(ew.convert_element_type(nz, _I64), axis=axis, keepdims=keepdims)
