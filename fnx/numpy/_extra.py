"""NumPy functions beyond the array API that deep-learning code uses: einsum, pad, tril/triu,
outer, diag/diagonal/trace, split, isclose/allclose, meshgrid, tile, repeat, roll, atleast_*,
ravel, stacking helpers... All are compositions of layout, elementwise, reduction and
dot_general primitives, so they differentiate, batch and compile like everything else."""

import builtins
import math
import string

import numpy as np

from ..core import dtypes
from ..core.errors import (AxisError, ConcretizationError, ShapeError, TraceError, normalize_axes,
                           normalize_axis)
from ..core.ops import elementwise as ew
from ..core.ops import shape as sh
from ..core.ops.linalg import dot_general_p
from ..core.ops.reduction import reduce_sum_p
from ._core import broadcast_to_shape, is_array, promote_args, to_array
from ._ufunc import call_ufunc, check_out
from ._creation import asarray, full_like, zeros
from ._elementwise import abs, isnan, logical_and, where
from ._manipulation import broadcast_to, concat, expand_dims, flip, permute_dims, reshape, stack
from ._statistical import all, sum

# --- small shape helpers --------------------------------------------------------------------


def _slice_axis(x, axis, start, stop, step=1):
    """``x[..., start:stop:step, ...]`` along ``axis`` (static, in-range bounds)."""
    if start == 0 and stop == x.shape[axis] and step == 1:
        return x
    starts = [0] * x.ndim
    limits = list(x.shape)
    strides = [1] * x.ndim
    starts[axis], limits[axis], strides[axis] = start, builtins.max(stop, start), step
    return sh.slice_p.bind(x, start_indices=tuple(starts), limit_indices=tuple(limits),
                           strides=None if step == 1 else tuple(strides))


def ravel(a, order="C"):
    """``a`` flattened to 1-D (``order="F"``: first index fastest).

    >>> fnx.numpy.ravel(fnx.numpy.ones((2, 3))).shape
    (6,)
    """
    return reshape(to_array(a), (-1,), order=order)


def atleast_1d(*arys):
    """Arrays with at least one dimension (0-d becomes shape (1,)).

    >>> fnx.numpy.atleast_1d(1.0).shape
    (1,)
    """
    out = [reshape(to_array(a), (1,)) if to_array(a).ndim == 0 else to_array(a) for a in arys]
    return out[0] if len(out) == 1 else out


def atleast_2d(*arys):
    """Arrays with at least two dimensions (new axes in front).

    >>> fnx.numpy.atleast_2d(fnx.numpy.ones(3)).shape
    (1, 3)
    """
    out = []
    for a in arys:
        a = to_array(a)
        out.append(reshape(a, (1,) * (2 - a.ndim) + a.shape) if a.ndim < 2 else a)
    return out[0] if len(out) == 1 else out


def atleast_3d(*arys):
    """Arrays with at least three dimensions ((N,) -> (1, N, 1), (M, N) -> (M, N, 1)).

    >>> fnx.numpy.atleast_3d(fnx.numpy.ones(3)).shape
    (1, 3, 1)
    """
    out = []
    for a in arys:
        a = to_array(a)
        if a.ndim == 0:
            a = reshape(a, (1, 1, 1))
        elif a.ndim == 1:
            a = reshape(a, (1, a.shape[0], 1))
        elif a.ndim == 2:
            a = reshape(a, a.shape + (1,))
        out.append(a)
    return out[0] if len(out) == 1 else out


def vstack(tup, *, dtype=None):
    """Stack arrays row-wise (along axis 0 after atleast_2d).

    >>> fnx.numpy.vstack([fnx.numpy.ones(2), fnx.numpy.zeros(2)]).shape
    (2, 2)
    """
    return concat([atleast_2d(a) for a in tup], axis=0, dtype=dtype)


row_stack = vstack


def hstack(tup, *, dtype=None):
    """Stack arrays column-wise (axis 1, or axis 0 for 1-D inputs).

    >>> fnx.numpy.hstack([fnx.numpy.ones(2), fnx.numpy.zeros(3)]).shape
    (5,)
    """
    arrs = [atleast_1d(a) for a in tup]
    return concat(arrs, axis=0 if arrs[0].ndim == 1 else 1, dtype=dtype)


def dstack(tup):
    """Stack arrays depth-wise (along axis 2 after atleast_3d).

    >>> fnx.numpy.dstack([fnx.numpy.ones((2, 2)), fnx.numpy.ones((2, 2))]).shape
    (2, 2, 2)
    """
    return concat([atleast_3d(a) for a in tup], axis=2)


def column_stack(tup):
    """Stack 1-D arrays as columns of a 2-D array.

    >>> fnx.numpy.column_stack([fnx.numpy.ones(3), fnx.numpy.zeros(3)]).shape
    (3, 2)
    """
    arrs = []
    for a in tup:
        a = to_array(a)
        arrs.append(reshape(a, (a.shape[0], 1)) if a.ndim < 2 else a)
    return concat(arrs, axis=1)


def unstack(x, /, *, axis=0):
    """Split ``x`` along ``axis`` into a tuple of arrays of one rank less.

    >>> len(fnx.numpy.unstack(fnx.numpy.ones((3, 2))))
    3
    """
    x = to_array(x)
    if x.ndim == 0:
        raise ShapeError("unstack: cannot unstack a 0-d array; it needs at least one axis")
    axis = normalize_axis(axis, x.ndim, "unstack")
    return tuple(sh.squeeze_p.bind(_slice_axis(x, axis, i, i + 1), dimensions=(axis,))
                 for i in range(x.shape[axis]))


def transpose(a, axes=None):
    """Permute the axes (reverse them when ``axes`` is None), as ``numpy.transpose``.

    >>> fnx.numpy.transpose(fnx.numpy.ones((2, 3))).shape
    (3, 2)
    """
    a = to_array(a)
    return permute_dims(a, tuple(range(a.ndim))[::-1] if axes is None else axes)


def array(object, dtype=None, *, copy=True, order="K", ndmin=0, device=None):  # noqa: A002
    """NumPy's ``array``: a new array (copy by default) from ``object``, with at least
    ``ndmin`` dimensions (size-1 axes in front).

    >>> fnx.numpy.array([1, 2]).dtype
    dtype('int64')
    >>> fnp.array([1, 2], ndmin=3).shape
    (1, 1, 2)
    """
    out = asarray(object, dtype=dtype, order=order, copy=copy, device=device)
    return reshape(out, (1,) * (ndmin - out.ndim) + out.shape) if out.ndim < ndmin else out


def copy(a, order="K"):
    """A copy of ``a`` (arrays are immutable, so only concrete buffers are copied).

    >>> fnx.numpy.copy(fnx.numpy.ones(2)).tolist()
    [1.0, 1.0]
    """
    return asarray(a, order=order, copy=True)


def shape(a):
    """The shape of ``a`` as a tuple.

    >>> fnp.shape(fnp.ones((2, 3)))
    (2, 3)
    """
    return to_array(a).shape


def ndim(a):
    """The number of dimensions of ``a``.

    >>> fnp.ndim(fnp.ones((2, 3)))
    2
    """
    return to_array(a).ndim


def size(a, axis=None):
    """The number of elements (along ``axis`` if given).

    >>> fnp.size(fnp.ones((2, 3))), fnp.size(fnp.ones((2, 3)), 1)
    (6, 3)
    """
    a = to_array(a)
    return a.size if axis is None else a.shape[axis]


def broadcast_shapes(*shapes):
    """The shape arrays of ``shapes`` broadcast to.

    >>> fnx.numpy.broadcast_shapes((2, 1), (3,))
    (2, 3)
    """
    from ._core import broadcast_shapes as _bs

    return _bs("broadcast_shapes", *[tuple(s) if not isinstance(s, int) else (s,)
                                      for s in shapes]) if shapes else ()


# --- triangles, diagonals ---------------------------------------------------------------------


def _tri_mask(n, m, k, lower):
    rows = sh.iota_p.bind(dtype=np.dtype(np.int64), shape=(n, m), dimension=0)
    cols = sh.iota_p.bind(dtype=np.dtype(np.int64), shape=(n, m), dimension=1)
    return (cols - rows <= k) if lower else (cols - rows >= k)


def tri(N, M=None, k=0, dtype=None):
    """Ones at and below the ``k``-th diagonal.

    >>> fnx.numpy.tri(2).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    M = N if M is None else M
    dt = dtypes.default_float() if dtype is None else dtypes.canonicalize(dtype)
    return ew.convert_element_type(_tri_mask(N, M, k, True), dt)


def _triangle(op, x, k, lower):
    x = to_array(x)
    if x.ndim < 2:
        raise ShapeError(f"{op}: needs an array of at least 2 dims, got shape {x.shape}")
    n, m = x.shape[-2], x.shape[-1]
    k = builtins.max(builtins.min(int(k), m), -n)  # beyond the matrix every k is the same
    mask = broadcast_to_shape(_tri_mask(n, m, k, lower), x.shape)
    return ew.select_p.bind(mask, x, zeros(x.shape, dtype=x.dtype))


def tril(m, k=0):
    """The lower triangle of the last two axes (elements above diagonal ``k`` zeroed).

    >>> fnx.numpy.tril(fnx.numpy.ones((2, 2))).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    return _triangle("tril", m, k, True)


def triu(m, k=0):
    """The upper triangle of the last two axes (elements below diagonal ``k`` zeroed).

    >>> fnx.numpy.triu(fnx.numpy.ones((2, 2))).tolist()
    [[1.0, 1.0], [0.0, 1.0]]
    """
    return _triangle("triu", m, k, False)


def _diagonal_last2(x, offset):
    """The ``offset`` diagonal of the last two axes, as a strided slice of the flattened
    matrix (a linear layout op, so no gather is needed)."""
    n, m = x.shape[-2], x.shape[-1]
    batch = x.shape[:-2]
    if offset >= 0:
        count, start = builtins.max(0, builtins.min(n, m - offset)), offset
    else:
        count, start = builtins.max(0, builtins.min(n + offset, m)), -offset * m
    if count == 0:
        return zeros(batch + (0,), dtype=x.dtype)
    flat = reshape(x, batch + (n * m,))
    stop = start + (count - 1) * (m + 1) + 1
    return _slice_axis(flat, flat.ndim - 1, start, stop, m + 1)


def diagonal(a, offset=0, axis1=0, axis2=1):
    """The ``offset`` diagonal over ``axis1``/``axis2`` (by default the first two axes, as
    NumPy; ``fnp.linalg.diagonal`` takes the last two), appended as the last axis.

    >>> fnx.numpy.diagonal(fnx.numpy.eye(3)).tolist()
    [1.0, 1.0, 1.0]
    """
    x = to_array(a)
    if x.ndim < 2:
        raise ShapeError(f"diagonal: needs an array of at least 2 dims, got shape {x.shape}")
    a1, a2 = normalize_axis(axis1, x.ndim, "diagonal"), normalize_axis(axis2, x.ndim, "diagonal")
    if a1 == a2:
        raise ValueError(f"diagonal: axis1 and axis2 must differ, got {axis1} and {axis2}")
    rest = [i for i in range(x.ndim) if i not in (a1, a2)]
    return _diagonal_last2(permute_dims(x, tuple(rest) + (a1, a2)), int(offset))


def trace(a, offset=0, axis1=0, axis2=1, dtype=None, out=None):
    """Sum of the ``offset`` diagonal over ``axis1``/``axis2`` (by default the first two
    axes, as NumPy).

    >>> fnx.numpy.trace(fnx.numpy.eye(3)).item()
    3.0
    """
    check_out("trace", out)
    return sum(diagonal(a, offset=offset, axis1=axis1, axis2=axis2), axis=-1, dtype=dtype)


def diag(v, k=0):
    """1-D input: a 2-D array with ``v`` on diagonal ``k``; 2-D input: its ``k``-th diagonal.

    >>> fnx.numpy.diag(fnx.numpy.asarray([1.0, 2.0])).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    v = to_array(v)
    if v.ndim == 2:
        return diagonal(v, offset=k)
    if v.ndim != 1:
        raise ShapeError(f"diag: input must be 1-D or 2-D, got shape {v.shape}")
    n = v.shape[0] + builtins.abs(k)
    # M[i, i + k] = v[i]: broadcast the zero-padded v along rows (k >= 0) or columns (k < 0),
    # then keep only the k-th diagonal; select is linear in v, so this transposes cleanly
    vpad = sh.pad_p.bind(v, ew.full((), 0, v.dtype), padding_config=((0, builtins.abs(k), 0),))
    grid = sh.broadcast_in_dim_p.bind(vpad, shape=(n, n),
                                      broadcast_dimensions=(0 if k >= 0 else 1,))
    rows = sh.iota_p.bind(dtype=np.dtype(np.int64), shape=(n, n), dimension=0)
    cols = sh.iota_p.bind(dtype=np.dtype(np.int64), shape=(n, n), dimension=1)
    return ew.select_p.bind(cols - rows == k, grid, zeros((n, n), dtype=v.dtype))


def diagflat(v, k=0):
    """A 2-D array with the flattened ``v`` on diagonal ``k``.

    >>> fnp.diagflat(fnp.asarray([1, 2])).tolist()
    [[1, 0], [0, 2]]
    """
    return diag(ravel(v), k)


def outer(a, b, out=None):
    """Outer product of two vectors (inputs are flattened).

    >>> fnx.numpy.outer(fnx.numpy.ones(2), fnx.numpy.ones(3)).shape
    (2, 3)
    """
    check_out("outer", out)
    x1, x2 = promote_args("outer", a, b)
    return reshape(x1, (-1, 1)) * reshape(x2, (1, -1))


def inner(a, b):
    """Inner product over the last axes.

    >>> fnx.numpy.inner(fnx.numpy.ones(3), fnx.numpy.ones(3)).item()
    3.0
    """
    a, b = promote_args("inner", a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    return dot_general_p.bind(a, b, dimension_numbers=(((a.ndim - 1,), (b.ndim - 1,)), ((), ())))


def dot(a, b, out=None):
    """NumPy ``dot``: matmul for 1-D/2-D, scalars multiply, N-D contracts last with
    second-to-last.

    >>> fnx.numpy.dot(fnx.numpy.ones((2, 3)), fnx.numpy.ones(3)).tolist()
    [3.0, 3.0]
    """
    check_out("dot", out)
    a, b = promote_args("dot", a, b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if b.ndim <= 2:
        from ._linalg import matmul

        return matmul(a, b)
    return dot_general_p.bind(a, b, dimension_numbers=(((a.ndim - 1,), (b.ndim - 2,)), ((), ())))


def vdot(a, b):
    """Dot product of flattened arrays, conjugating the first.

    >>> fnp.vdot(fnp.asarray([1j, 2.0]), fnp.asarray([1j, 3.0])).item()
    (7+0j)
    """
    from ._elementwise import conj

    return sum(conj(ravel(a)) * ravel(b))


def kron(a, b):
    """Kronecker product.

    >>> fnx.numpy.kron(fnx.numpy.eye(2), fnx.numpy.ones((2, 2))).shape
    (4, 4)
    """
    a, b = promote_args("kron", a, b)
    nd = builtins.max(a.ndim, b.ndim)
    a = reshape(a, (1,) * (nd - a.ndim) + a.shape)
    b = reshape(b, (1,) * (nd - b.ndim) + b.shape)
    a_exp = reshape(a, tuple(s for d in a.shape for s in (d, 1)))
    b_exp = reshape(b, tuple(s for d in b.shape for s in (1, d)))
    return reshape(a_exp * b_exp, tuple(p * q for p, q in zip(a.shape, b.shape)))


def cross(a, b, axisa=-1, axisb=-1, axisc=-1, axis=None):
    """Cross product of 3-vectors: the vectors of ``a`` lie along ``axisa``, those of ``b``
    along ``axisb``, the results along ``axisc`` (``axis`` sets all three); the other axes
    broadcast.

    >>> fnx.numpy.cross(fnx.numpy.asarray([1.0, 0, 0]), fnx.numpy.asarray([0.0, 1, 0])).tolist()
    [0.0, 0.0, 1.0]
    >>> a = fnp.asarray([[1.0], [0.0], [0.0]])  # one vector, along axis 0
    >>> fnp.cross(a, fnp.asarray([0.0, 1.0, 0.0]), axisa=0).tolist()
    [[0.0, 0.0, 1.0]]
    """
    from ._manipulation import moveaxis

    if axis is not None:
        axisa = axisb = axisc = axis
    a, b = promote_args("cross", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"cross: needs at least 1-D inputs, got {a.shape} and {b.shape}")
    a = moveaxis(a, normalize_axis(axisa, a.ndim, "cross"), -1)
    b = moveaxis(b, normalize_axis(axisb, b.ndim, "cross"), -1)
    out = _cross_last(a, b, -1)
    return moveaxis(out, -1, normalize_axis(axisc, out.ndim, "cross"))


def _cross_last(x1, x2, axis):
    """The cross product along one ``axis`` of the broadcast inputs (the array API's
    ``linalg.cross``)."""
    from ._manipulation import broadcast_arrays

    x1, x2 = promote_args("cross", x1, x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ShapeError(f"cross: needs at least 1-D inputs, got {x1.shape} and {x2.shape}")
    if not (-x1.ndim <= axis < x1.ndim and -x2.ndim <= axis < x2.ndim):
        raise AxisError(f"cross: axis {axis} out of range for shapes {x1.shape}, {x2.shape}")
    if x1.shape[axis] != 3 or x2.shape[axis] != 3:
        raise ShapeError(f"cross: dimension {axis} must have size 3, got shapes {x1.shape} "
                         f"and {x2.shape}")
    if axis >= 0 and x1.ndim != x2.ndim:
        raise ShapeError(f"cross: a non-negative axis needs equal ranks, got {x1.shape} and "
                         f"{x2.shape}")
    x1, x2 = broadcast_arrays(x1, x2)
    ax = axis % x1.ndim
    a = [_slice_axis(x1, ax, i, i + 1) for i in range(3)]
    b = [_slice_axis(x2, ax, i, i + 1) for i in range(3)]
    return concat([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2],
                   a[0] * b[1] - a[1] * b[0]], axis=ax)


# --- splitting, tiling, repeating, rolling ----------------------------------------------------


def array_split(ary, indices_or_sections, axis=0):
    """Split into ``n`` nearly equal parts, or at the given indices.

    >>> [p.shape for p in fnx.numpy.array_split(fnx.numpy.arange(5), 2)]
    [(3,), (2,)]
    """
    x = to_array(ary)
    axis = normalize_axis(axis, x.ndim, "array_split")
    n = x.shape[axis]
    if isinstance(indices_or_sections, (int, np.integer)):
        sections = int(indices_or_sections)
        if sections <= 0:
            raise ValueError(f"array_split: number of sections must be positive, got {sections}")
        each, extra = divmod(n, sections)
        bounds = [0]
        for i in range(sections):
            bounds.append(bounds[-1] + each + (1 if i < extra else 0))
    else:
        bounds = [0] + [int(i) for i in indices_or_sections] + [n]
    ends = [builtins.min(builtins.max(b + n if b < 0 else b, 0), n) for b in bounds]
    if builtins.all(a <= b for a, b in zip(ends, ends[1:])):
        # the pieces tile the axis: one split (its transpose is one concatenate)
        return list(sh.split(x, [b - a for a, b in zip(ends, ends[1:])], axis))
    out = []
    for lo, hi in zip(ends[:-1], ends[1:]):
        out.append(_slice_axis(x, axis, lo, builtins.max(lo, hi)))
    return out


def split(ary, indices_or_sections, axis=0):
    """Split into equal parts (an error if they cannot be equal), or at the given indices.

    >>> [p.shape for p in fnx.numpy.split(fnx.numpy.arange(6), 3)]
    [(2,), (2,), (2,)]
    """
    x = to_array(ary)
    if isinstance(indices_or_sections, (int, np.integer)):
        n = x.shape[normalize_axis(axis, x.ndim, "split")]
        if indices_or_sections <= 0 or n % indices_or_sections:
            raise ShapeError(f"split: an axis of size {n} cannot be split into "
                             f"{indices_or_sections} equal parts; use array_split")
    return array_split(x, indices_or_sections, axis)


def _hvd_split(op, axis_fn, min_ndim):
    def fn(ary, indices_or_sections):
        x = to_array(ary)
        if x.ndim < min_ndim:  # as NumPy: vsplit of a 1-D array is an error, not a split
            raise ShapeError(f"{op} only works on arrays of {min_ndim} or more dimensions, got "
                             f"shape {x.shape}")
        return split(x, indices_or_sections, axis=axis_fn(x))

    fn.__name__ = op
    axis = {"h": "1 (0 for 1-D arrays)", "v": "0", "d": "2"}[op[0]]
    fn.__doc__ = f"""``split`` along axis {axis}: into equal sections or at indices.

    >>> [a.shape for a in fnx.numpy.{op}(fnx.numpy.ones((4, 4, 4)), 2)]
    {[tuple(2 if i == int(axis[0]) else 4 for i in range(3))] * 2}
    """
    return fn


hsplit = _hvd_split("hsplit", lambda x: 0 if x.ndim == 1 else 1, 1)
vsplit = _hvd_split("vsplit", lambda x: 0, 2)
dsplit = _hvd_split("dsplit", lambda x: 2, 3)


def tile(A, reps):
    """Repeat the whole of ``A`` ``reps`` times along each axis.

    >>> fnx.numpy.tile(fnx.numpy.asarray([1, 2]), (2,)).tolist()
    [1, 2, 1, 2]
    """
    x = to_array(A)
    reps = (int(reps),) if isinstance(reps, (int, np.integer)) else tuple(int(r) for r in reps)
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"tile: repetitions must be non-negative, got {reps}")
    nd = builtins.max(x.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + reps
    shp = (1,) * (nd - x.ndim) + x.shape
    x = reshape(x, shp)
    # interleave a repetition axis before each axis, broadcast, then merge the pairs
    expanded = reshape(x, tuple(s for d in shp for s in (1, d)))
    big = broadcast_to(expanded, tuple(s for r, d in zip(reps, shp) for s in (r, d)))
    return reshape(big, tuple(r * d for r, d in zip(reps, shp)))


def repeat(a, repeats, axis=None):
    """Repeat each element ``repeats`` times (an int, or one count per element along
    ``axis``; ``axis=None`` flattens first).

    >>> fnx.numpy.repeat(fnx.numpy.asarray([1, 2]), 2).tolist()
    [1, 1, 2, 2]
    """
    x = to_array(a)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = normalize_axis(axis, x.ndim, "repeat")
    n = x.shape[axis]
    if isinstance(repeats, (int, np.integer)) or (is_array(repeats) and repeats.ndim == 0):
        r = int(repeats)
        if r < 0:
            raise ValueError(f"repeat: repeats must be non-negative, got {r}")
        expanded = expand_dims(x, axis=axis + 1)
        shp = list(expanded.shape)
        shp[axis + 1] = r
        out_shape = list(x.shape)
        out_shape[axis] = n * r
        return reshape(broadcast_to(expanded, tuple(shp)), tuple(out_shape))
    # per-element counts fix the output shape, so they must be concrete values
    counts = [int(c) for c in np.asarray(repeats).reshape(-1)]
    if len(counts) == 1:
        return repeat(x, counts[0], axis=axis)
    if len(counts) != n:
        raise ShapeError(f"repeat: got {len(counts)} repeat counts for an axis of size {n}")
    if builtins.any(c < 0 for c in counts):
        raise ValueError(f"repeat: repeats must be non-negative, got {counts}")
    parts = [repeat(_slice_axis(x, axis, i, i + 1), c, axis=axis)
             for i, c in enumerate(counts) if c]
    if not parts:
        shp = list(x.shape)
        shp[axis] = 0
        return zeros(tuple(shp), dtype=x.dtype)
    return concat(parts, axis=axis) if len(parts) > 1 else parts[0]


def roll(a, shift, axis=None):
    """Shift elements cyclically along ``axis`` (the flattened array when None).

    >>> fnx.numpy.roll(fnx.numpy.asarray([1, 2, 3]), 1).tolist()
    [3, 1, 2]
    """
    x = to_array(a)
    if axis is None:
        return reshape(roll(reshape(x, (-1,)), shift, axis=0), x.shape)
    shifts = (shift,) if isinstance(shift, (int, np.integer)) else tuple(shift)
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if len(shifts) == 1 and len(axes) > 1:
        shifts = shifts * len(axes)
    if len(shifts) != len(axes):
        raise ValueError(f"roll: shift {shift} and axis {axis} must have the same length")
    for s, a in zip(shifts, axes):
        a = normalize_axis(a, x.ndim, "roll")
        n = x.shape[a]
        if n == 0:
            continue
        s = int(s) % n
        if s:
            x = concat([_slice_axis(x, a, n - s, n), _slice_axis(x, a, 0, n - s)], axis=a)
    return x


def rot90(m, k=1, axes=(0, 1)):
    """Rotate by 90 degrees ``k`` times in the plane of ``axes``.

    >>> fnp.rot90(fnp.asarray([[1, 2], [3, 4]])).tolist()
    [[2, 4], [1, 3]]
    """
    m = to_array(m)
    a0, a1 = (normalize_axis(a, m.ndim, "rot90") for a in axes)
    k %= 4
    if k == 0:
        return m
    if k == 2:
        return flip(flip(m, axis=a0), axis=a1)
    perm = list(range(m.ndim))
    perm[a0], perm[a1] = perm[a1], perm[a0]
    if k == 1:
        return permute_dims(flip(m, axis=a1), perm)
    return flip(permute_dims(m, perm), axis=a1)


def fliplr(m):
    """Flip along axis 1.

    >>> fnp.fliplr(fnp.asarray([[1, 2], [3, 4]])).tolist()
    [[2, 1], [4, 3]]
    """
    return flip(m, axis=1)


def flipud(m):
    """Flip along axis 0.

    >>> fnp.flipud(fnp.asarray([[1, 2], [3, 4]])).tolist()
    [[3, 4], [1, 2]]
    """
    return flip(m, axis=0)


# --- padding --------------------------------------------------------------------------------


def _pad_widths(pad_width, ndim):
    pw = np.asarray(pad_width, dtype=np.int64)
    if pw.ndim == 0:
        pw = np.broadcast_to(pw, (ndim, 2))
    elif pw.shape == (2,) or pw.shape == (1, 2):
        pw = np.broadcast_to(pw.reshape(1, 2), (ndim, 2))
    elif pw.shape == (1,):
        pw = np.broadcast_to(pw.reshape(1, 1), (ndim, 2))
    if pw.shape != (ndim, 2):
        raise ShapeError(f"pad: pad_width {pad_width!r} does not fit an array of rank {ndim}")
    if (pw < 0).any():
        raise ValueError(f"pad: pad widths must be non-negative, got {pad_width!r}")
    return [tuple(int(v) for v in row) for row in pw]


def pad(array, pad_width, mode="constant", *, constant_values=0):
    """Pad an array. Modes: 'constant', 'edge', 'reflect', 'symmetric', 'wrap'.

    >>> fnx.numpy.pad(fnx.numpy.asarray([1, 2]), 1).tolist()
    [0, 1, 2, 0]
    """
    x = to_array(array)
    widths = _pad_widths(pad_width, x.ndim)
    if mode == "constant":
        cv = np.asarray(constant_values)
        if cv.ndim == 0:
            value = to_array(constant_values) if is_array(constant_values) else cv.item()
            pv = ew.convert_element_type(to_array(value), x.dtype) if is_array(value) else \
                ew.full((), value, x.dtype)
            return sh.pad_p.bind(x, pv, padding_config=tuple((lo, hi, 0) for lo, hi in widths))
        cvs = _pad_widths(constant_values, x.ndim)
        for ax, ((lo, hi), (clo, chi)) in enumerate(zip(widths, cvs)):
            cfg = [(0, 0, 0)] * x.ndim
            cfg[ax] = (lo, 0, 0)
            x = sh.pad_p.bind(x, ew.full((), clo, x.dtype), padding_config=tuple(cfg))
            cfg[ax] = (0, hi, 0)
            x = sh.pad_p.bind(x, ew.full((), chi, x.dtype), padding_config=tuple(cfg))
        return x
    if mode not in ("edge", "reflect", "symmetric", "wrap"):
        raise ValueError(f"pad: mode {mode!r} is not supported; use 'constant', 'edge', "
                         f"'reflect', 'symmetric' or 'wrap'")
    for ax, (lo, hi) in enumerate(widths):
        n = x.shape[ax]
        if (lo or hi) and n == 0:
            raise ShapeError(f"pad: cannot pad an empty axis {ax} with mode {mode!r}")
        if not (lo or hi):
            continue
        parts = [_side(x, ax, lo, mode, before=True), x, _side(x, ax, hi, mode, before=False)]
        x = concat([p for p in parts if p.shape[ax]], axis=ax)
    return x


def _side(x, ax, width, mode, before):
    """The ``width`` padding elements before/after ``x`` along ``ax``."""
    n = x.shape[ax]
    if width == 0:
        return _slice_axis(x, ax, 0, 0)
    idx = []
    for j in range(1, width + 1):  # j-th element away from the edge
        if mode == "edge":
            i = 0 if before else n - 1
        elif mode == "wrap":
            i = (-j) % n if before else (n - 1 + j) % n
        else:
            period = 2 * n - 2 if mode == "reflect" else 2 * n
            if period == 0:
                i = 0
            else:
                t = (j if mode == "reflect" else j - 1) % period
                if mode == "reflect":
                    i = t if t < n else period - t
                else:
                    i = t if t < n else period - 1 - t
                if not before:
                    i = n - 1 - i
        idx.append(i)
    if before:
        idx = idx[::-1]
    return concat([_slice_axis(x, ax, i, i + 1) for i in idx], axis=ax)


# --- comparisons -----------------------------------------------------------------------------


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Elementwise ``|a - b| <= atol + rtol * |b|`` (infinities equal only to themselves).

    >>> fnx.numpy.isclose(fnx.numpy.asarray([1.0]), 1.0 + 1e-9).tolist()
    [True]
    """
    from ._elementwise import isinf

    a, b = promote_args("isclose", a, b)
    if a.dtype.kind in "biu":
        a, b = a.astype(dtypes.default_float()), b.astype(dtypes.default_float())
    close = abs(a - b) <= atol + rtol * abs(b)
    inf_eq = (a == b)
    out = where(isinf(a) | isinf(b), inf_eq, close)
    if equal_nan:
        out = out | logical_and(isnan(a), isnan(b))
    return out


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan=False):
    """Whether every element is close (see ``isclose``); a Python bool when concrete.

    >>> fnx.numpy.allclose(fnx.numpy.ones(2), fnx.numpy.ones(2))
    True
    """
    out = all(isclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))
    from ..core.tracing import Tracer

    return out if isinstance(out, Tracer) else bool(out)


def array_equal(a1, a2, equal_nan=False):
    """Whether two arrays have the same shape and elements.

    >>> fnp.array_equal(fnp.asarray([1, 2]), fnp.asarray([1, 2]))
    True
    """
    a1, a2 = to_array(a1), to_array(a2)
    if a1.shape != a2.shape:
        return False
    eq = a1 == a2
    if equal_nan and a1.dtype.kind in "fc":
        eq = eq | (isnan(a1) & isnan(a2))
    return bool(all(eq))


# --- grids ---------------------------------------------------------------------------------


def meshgrid(*xi, copy=True, sparse=False, indexing="xy"):
    """Coordinate matrices from 1-D coordinate vectors ('xy' Cartesian or 'ij' matrix
    indexing); the inputs promote to one dtype. ``sparse=True`` returns each grid with size-1
    axes instead of broadcasting it; ``copy`` changes nothing (fnx arrays are values).

    >>> [g.shape for g in fnx.numpy.meshgrid(fnx.numpy.ones(2), fnx.numpy.ones(3))]
    [(3, 2), (3, 2)]
    >>> [g.shape for g in fnp.meshgrid(fnp.ones(2), fnp.ones(3), sparse=True)]
    [(1, 2), (3, 1)]
    """
    del copy  # unused: fnx arrays are immutable, so a view and a copy are the same value
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    if not xi:
        return []
    arrays = promote_args("meshgrid", *xi)
    for a in arrays:
        if a.ndim != 1:
            raise ShapeError(f"meshgrid: inputs must be 1-D, got shape {a.shape}")
    shape = [a.shape[0] for a in arrays]
    if indexing == "xy" and len(arrays) > 1:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, a in enumerate(arrays):
        dim = i
        if indexing == "xy" and len(arrays) > 1 and i < 2:
            dim = 1 - i
        if sparse:
            out.append(reshape(a, tuple(s if d == dim else 1 for d, s in enumerate(shape))))
        else:
            out.append(sh.broadcast_in_dim_p.bind(a, shape=tuple(shape),
                                                  broadcast_dimensions=(dim,)))
    return out


def indices(dimensions, dtype=None, sparse=False):
    """A stack of index grids for an array of shape ``dimensions`` (``sparse=True``: a tuple
    of grids with size-1 axes, one per dimension).

    >>> fnp.indices((2, 2)).tolist()
    [[[0, 0], [1, 1]], [[0, 1], [0, 1]]]
    >>> [g.shape for g in fnp.indices((2, 3), sparse=True)]
    [(2, 1), (1, 3)]
    """
    dt = dtypes.default_int() if dtype is None else dtypes.canonicalize(dtype)
    dims = tuple(int(d) for d in dimensions)
    if sparse:
        return tuple(sh.iota_p.bind(dtype=dt, shape=tuple(s if j == i else 1 for j, s in
                                                        enumerate(dims)), dimension=i)
                     for i in range(len(dims)))
    grids = [sh.iota_p.bind(dtype=dt, shape=dims, dimension=i) for i in range(len(dims))]
    return stack(grids) if grids else zeros((0,), dtype=dt)


def identity(n, dtype=None):
    """The ``n`` x ``n`` identity matrix.

    >>> fnp.identity(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    from ._creation import eye

    return eye(n, dtype=dtype)


def logspace(start, stop, num=50, endpoint=True, base=10.0, dtype=None, axis=0):
    """``base ** linspace(start, stop, num)`` (array endpoints: one sequence per element,
    along ``axis``).

    >>> fnp.logspace(0, 2, 3).tolist()
    [1.0, 10.0, 100.0]
    """
    from ._creation import linspace
    from ._elementwise import pow

    exponents = linspace(start, stop, num, endpoint=endpoint, axis=axis)
    if is_array(base) and base.ndim:
        base = expand_dims(base, axis)
    out = pow(base, exponents)
    return out if dtype is None else out.astype(dtypes.canonicalize(dtype))


# --- misc elementwise helpers ------------------------------------------------------------------


def diff(a, n=1, axis=-1, prepend=None, append=None):
    """``n``-th discrete difference along ``axis``.

    >>> fnx.numpy.diff(fnx.numpy.asarray([1, 4, 9])).tolist()
    [3, 5]
    """
    x = to_array(a)
    axis = normalize_axis(axis, x.ndim, "diff")
    if prepend is not None or append is not None:
        parts = []
        for extra in (prepend,):
            if extra is not None:
                parts.append(_as_slab(extra, x, axis))
        parts.append(x)
        if append is not None:
            parts.append(_as_slab(append, x, axis))
        x = concat(promote_args("diff", *parts), axis=axis)
    for _ in range(n):
        m = x.shape[axis]
        if m == 0:
            break
        hi, lo = _slice_axis(x, axis, 1, m), _slice_axis(x, axis, 0, m - 1)
        x = (hi != lo) if x.dtype == dtypes.bool_ else hi - lo
    return x


def _as_slab(v, x, axis):
    v = to_array(v)
    if v.ndim == 0:
        shp = list(x.shape)
        shp[axis] = 1
        return broadcast_to(v, tuple(shp))
    return v


def nan_to_num(x, copy=True, nan=0.0, posinf=None, neginf=None):
    """Replace NaN with ``nan`` and infinities with ``posinf``/``neginf`` (default: the
    dtype's largest finite values).

    >>> fnp.nan_to_num(fnp.asarray([fnp.nan, 1.0])).tolist()
    [0.0, 1.0]
    """
    from ._elementwise import isinf

    x = to_array(x)
    if x.dtype.kind not in "fc":
        return x
    if x.dtype.kind == "c":
        from ._elementwise import imag, real

        return ew.complex_p.bind(nan_to_num(real(x), nan=nan, posinf=posinf, neginf=neginf),
                                 nan_to_num(imag(x), nan=nan, posinf=posinf, neginf=neginf))
    info = np.finfo(x.dtype)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    out = where(isnan(x), nan, x)
    out = where(isinf(out) & (out > 0), posinf, out)
    return where(isinf(out) & (out < 0), neginf, out)


def heaviside(x1, x2, /, out=None, *, dtype=None):
    """Heaviside step: 0 for x1 < 0, ``x2`` at 0, 1 for x1 > 0.

    >>> fnp.heaviside(fnp.asarray([-1.0, 0.0, 2.0]), 0.5).tolist()
    [0.0, 0.5, 1.0]
    """
    if out is not None or dtype is not None:
        return call_ufunc("heaviside", heaviside, out, dtype, x1, x2)
    x1, x2 = promote_args("heaviside", x1, x2)
    return where(x1 < 0, 0, where(x1 > 0, 1, x2))


def sinc(x):
    """``sin(pi x) / (pi x)``, 1 at 0.

    >>> fnp.sinc(fnp.asarray([0.0])).tolist()
    [1.0]
    """
    from ._elementwise import sin

    x = to_array(x)
    if x.dtype.kind not in "fc":
        x = x.astype(dtypes.default_float())
    y = math.pi * x
    # Near 0 the Maclaurin series (exact to rounding for |y| < 0.1): its derivatives of every
    # order are right at 0, where sin(y) / y is 0/0 and a constant 1 would give a zero second
    # derivative; nearby, the derivatives of sin(y) / y cancel catastrophically.
    small = ew.abs_p.bind(y) < 0.1
    y2 = y * y
    series = 1 + y2 * (-1 / 6 + y2 * (1 / 120 + y2 * (-1 / 5040 + y2 * (
        1 / 362880 - y2 / 39916800))))
    safe = where(small, 1, y)
    return where(small, series, sin(safe) / safe)


def deg2rad(x, /, out=None, *, dtype=None):
    """Degrees to radians.

    >>> round(fnp.deg2rad(fnp.asarray(180.0)).item(), 4)
    3.1416
    """
    if out is not None or dtype is not None:
        return call_ufunc("deg2rad", deg2rad, out, dtype, x)
    from ._elementwise import multiply

    x = to_array(x)
    return multiply(x if x.dtype.kind in "fc" else x.astype(dtypes.default_float()),
                    math.pi / 180)


def rad2deg(x, /, out=None, *, dtype=None):
    """Radians to degrees.

    >>> round(fnp.degrees(fnp.asarray(fnp.pi)).item(), 3)
    180.0
    """
    if out is not None or dtype is not None:
        return call_ufunc("rad2deg", rad2deg, out, dtype, x)
    from ._elementwise import multiply

    x = to_array(x)
    return multiply(x if x.dtype.kind in "fc" else x.astype(dtypes.default_float()),
                    180 / math.pi)


radians, degrees = deg2rad, rad2deg


def angle(z, deg=False):
    """The angle of complex ``z`` from the positive real axis, ``atan2(imag, real)``, in
    radians (degrees with ``deg=True``); real inputs give 0 or pi.

    >>> [round(v, 4) for v in fnp.angle(fnp.asarray([1.0, 1j, -1.0])).tolist()]
    [0.0, 1.5708, 3.1416]
    >>> fnp.angle(1j, deg=True).item()
    90.0
    """
    from ._elementwise import atan2, imag, real

    z = to_array(z)
    if z.dtype.kind not in "fc":
        z = z.astype(dtypes.default_float())
    out = atan2(imag(z), real(z))
    return out * (180 / math.pi) if deg else out


MSG_REAL_IF_CLOSE_TRACED = (
    "real_if_close: whether the result is real (its dtype) depends on the values of the "
    "input, which are unknown while tracing (fnx.jit / fnx.vmap / grad). Use fnp.real(a) when "
    "the imaginary parts are known to be negligible, or call real_if_close outside the "
    "transform."
)


def real_if_close(a, tol=100):
    """The real part of complex ``a`` if every imaginary part is below ``tol`` (in machine
    epsilons when ``tol > 1``, else absolute), else ``a`` unchanged. The result's dtype
    depends on the values, so ``a`` must be concrete.

    >>> fnp.real_if_close(fnp.asarray([2.0 + 1e-15j, 1.0])).tolist()
    [2.0, 1.0]
    >>> fnp.real_if_close(fnp.asarray([2.0 + 0.1j])).dtype
    dtype('complex64')
    """
    from ._elementwise import imag, real

    a = to_array(a)
    if a.dtype.kind != "c":
        return a
    if tol > 1:
        tol = tol * float(np.finfo(a.dtype).eps)
    small = all(abs(imag(a)) < tol)
    try:
        is_real = bool(small)
    except TraceError as err:
        raise ConcretizationError(MSG_REAL_IF_CLOSE_TRACED) from err
    return real(a) if is_real else a


def _not_nan(a, where):
    """The ``where`` mask of a NaN-ignoring reduction: the non-NaN elements (and only those
    the caller's ``where`` keeps)."""
    ok = ~isnan(a)
    return ok if where is None else ok & to_array(where, dtypes.bool_)


def nansum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """``sum`` ignoring NaNs (they count as 0).

    >>> fnx.numpy.nansum(fnx.numpy.asarray([1.0, fnx.numpy.nan, 3.0])).item()
    4.0
    """
    a = to_array(a)
    if a.dtype.kind in "fc":
        where = _not_nan(a, where)
    return sum(a, axis, dtype, out, keepdims, initial, where)


def _nan_extremum(op, a, axis, out, keepdims, initial, mask, fill):
    from ._statistical import any as any_, max, min

    reduce = max if op == "nanmax" else min
    a = to_array(a)
    if a.dtype.kind not in "fc":
        return reduce(a, axis, out, keepdims, initial, mask)
    ok = _not_nan(a, mask)
    check_out(op, out)
    result = reduce(a, axis, None, keepdims, fill if initial is None else initial, ok)
    # NaN where nothing was left to compare (every element NaN, or masked out), as NumPy
    return result if initial is not None else where(any_(ok, axis, keepdims=keepdims), result,
                                                      math.nan)


def nanmax(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``max`` ignoring NaNs (NaN where every element is NaN).

    >>> fnp.nanmax(fnp.asarray([1.0, fnp.nan, 3.0])).item()
    3.0
    """
    return _nan_extremum("nanmax", a, axis, out, keepdims, initial, where, -math.inf)


def nanmin(a, axis=None, out=None, keepdims=False, initial=None, where=None):
    """``min`` ignoring NaNs (NaN where every element is NaN).

    >>> fnp.nanmin(fnp.asarray([1.0, fnp.nan, 3.0])).item()
    1.0
    """
    return _nan_extremum("nanmin", a, axis, out, keepdims, initial, where, math.inf)


def nanmean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """``mean`` ignoring NaNs.

    >>> fnp.nanmean(fnp.asarray([1.0, fnp.nan, 3.0])).item()
    2.0
    """
    from ._statistical import mean

    a = to_array(a)
    if a.dtype.kind in "fc":
        where = _not_nan(a, where)
    return mean(a, axis, dtype, out, keepdims, where=where)


def average(a, axis=None, weights=None, returned=False, *, keepdims=False):
    """Weighted mean along ``axis``; ``returned=True`` also gives the sum of the weights.

    >>> fnp.average(fnp.asarray([1.0, 4.0]), weights=fnp.asarray([2.0, 1.0])).item()
    2.0
    """
    from ._statistical import mean

    if weights is None:
        avg = mean(a, axis=axis, keepdims=keepdims)
        if not returned:
            return avg
        x = to_array(a)
        count = x.size // builtins.max(avg.size, 1) if x.size else 0
        return avg, full_like(avg, count)
    a, w = promote_args("average", a, weights)
    if a.dtype.kind not in "fc":
        a, w = a.astype(dtypes.default_float()), w.astype(dtypes.default_float())
    if w.shape != a.shape:
        if axis is None or w.ndim != 1:
            raise ShapeError(f"average: weights of shape {w.shape} need axis for a of shape "
                             f"{a.shape}")
        ax = normalize_axis(axis, a.ndim, "average")
        w = sh.broadcast_in_dim_p.bind(w, shape=a.shape, broadcast_dimensions=(ax,))
    total = sum(w, axis=axis, keepdims=keepdims)
    avg = sum(a * w, axis=axis, keepdims=keepdims) / total
    return (avg, total) if returned else avg


def _variables(op, v, rowvar, dtype):
    """``v`` as a 2-D array with one variable per row, in an inexact dtype."""
    x = atleast_2d(to_array(v))
    if dtype is not None:
        x = x.astype(dtypes.canonicalize(dtype))
    elif x.dtype.kind not in "fc":
        x = x.astype(dtypes.default_float())
    if x.ndim > 2:
        raise ShapeError(f"{op}: the input has more than 2 dimensions (shape {x.shape})")
    return x if rowvar or x.shape[0] == 1 else permute_dims(x, (1, 0))


def cov(m, y=None, rowvar=True, bias=False, ddof=None, fweights=None, aweights=None, *,
        dtype=None):
    """Covariance matrix of the variables in the rows (or columns) of ``m`` (and ``y``),
    optionally weighted by integer frequencies ``fweights`` and observation weights
    ``aweights``, as NumPy.

    >>> fnp.cov(fnp.asarray([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])).tolist()
    [[1.0, 2.0], [2.0, 4.0]]
    """
    from ._elementwise import conj

    x = _variables("cov", m, rowvar, dtype)
    if y is not None:
        x = concat(promote_args("cov", x, _variables("cov", y, rowvar, dtype)), axis=0)
    ddof = (0 if bias else 1) if ddof is None else ddof
    w = None
    for weights in (fweights, aweights):
        if weights is not None:
            weights = to_array(weights, x.dtype if x.dtype.kind == "f" else None)
            if weights.shape != (x.shape[1],):
                raise ShapeError(f"cov: weights of shape {weights.shape} do not match the "
                                 f"{x.shape[1]} observations")
            w = weights if w is None else w * weights
    avg, w_sum = average(x, axis=1, weights=None if w is None else broadcast_to(w, x.shape),
                         returned=True)
    w_sum = w_sum[0]
    if w is None:
        fact = x.shape[1] - ddof
    elif ddof == 0:
        fact = w_sum
    elif aweights is None:
        fact = w_sum - ddof
    else:
        fact = w_sum - ddof * sum(w * to_array(aweights, w.dtype)) / w_sum
    xc = x - reshape(avg, (-1, 1))
    xw = xc if w is None else xc * w
    c = dot_general_p.bind(xc, conj(xw), dimension_numbers=(((1,), (1,)), ((), ()))) / fact
    return reshape(c, ()) if c.shape == (1, 1) else c


def corrcoef(x, y=None, rowvar=True, *, dtype=None):
    """Pearson correlation coefficients.

    >>> fnp.corrcoef(fnp.asarray([[1.0, 2.0, 3.0], [2.0, 4.0, 6.0]])).round().tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    from ._elementwise import sqrt

    c = cov(x, y, rowvar, dtype=dtype)
    if c.ndim == 0:
        return c / c
    d = sqrt(diagonal(c))
    return c / reshape(d, (-1, 1)) / reshape(d, (1, -1))


# --- einsum ---------------------------------------------------------------------------------


def _parse_einsum(subscripts, operands):
    subscripts = subscripts.replace(" ", "")
    if "->" in subscripts:
        lhs, out = subscripts.split("->")
        explicit = True
    else:
        lhs, out, explicit = subscripts, None, False
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {len(terms)} operand subscripts in {subscripts!r} for "
                         f"{len(operands)} operands")
    used = set(subscripts) - set(".,->")
    spare = [c for c in string.ascii_letters if c not in used]
    max_ell = 0
    for t, x in zip(terms, operands):
        if "..." in t:
            max_ell = builtins.max(max_ell, x.ndim - (len(t) - 3))
    ell = "".join(spare[:max_ell])
    parsed = []
    for t, x in zip(terms, operands):
        if "..." in t:
            k = x.ndim - (len(t) - 3)
            if k < 0:
                raise ShapeError(f"einsum: subscripts {t!r} have too many labels for shape "
                                 f"{x.shape}")
            t = t.replace("...", ell[max_ell - k:] if k else "")
        if len(t) != x.ndim or not builtins.all(c.isalpha() for c in t):
            raise ShapeError(f"einsum: subscripts {t!r} do not match operand shape {x.shape}")
        parsed.append(t)
    if explicit:
        out = out.replace("...", ell)
        for c in out:
            if not builtins.any(c in t for t in parsed):
                raise ValueError(f"einsum: output label {c!r} is not in any input")
        if len(set(out)) != len(out):
            raise ValueError(f"einsum: output subscripts {out!r} repeat a label")
    else:
        counts = {}
        for t in parsed:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted(c for c, k in counts.items() if k == 1 and c not in ell))
    return parsed, out


def _einsum_diagonal(x, labels):
    """Take the diagonal of every repeated label of one operand."""
    while True:
        dup = next((c for c in labels if labels.count(c) > 1), None)
        if dup is None:
            return x, labels
        i = labels.index(dup)
        j = labels.index(dup, i + 1)
        if x.shape[i] != x.shape[j]:
            raise ShapeError(f"einsum: repeated label {dup!r} has sizes {x.shape[i]} and "
                             f"{x.shape[j]}")
        rest = [k for k in range(x.ndim) if k not in (i, j)]
        x = _diagonal_last2(permute_dims(x, tuple(rest) + (i, j)), 0)
        labels = "".join(labels[k] for k in rest) + dup


def _einsum_sublists(args):
    """NumPy's interleaved form ``einsum(x, [0, 1], y, [1, 2], [0, 2])`` as a subscripts
    string and the operands. Label ``k`` becomes the ``k``-th of ``A..Za..z``, so the
    implicit output (labels sorted as characters) keeps NumPy's integer order."""
    import operator

    symbols = string.ascii_uppercase + string.ascii_lowercase

    def letters(sublist):
        out = ""
        for k in sublist:
            if k is Ellipsis:
                out += "..."
                continue
            try:
                k = operator.index(k)
            except TypeError:
                k = -1
            if not 0 <= k < len(symbols):
                raise ValueError(f"einsum: sublist labels must be integers in [0, 52) or "
                                 f"Ellipsis, got {sublist!r}")
            out += symbols[k]
        return out

    out = args[-1] if len(args) % 2 else None
    pairs = args[:-1] if len(args) % 2 else args
    subscripts = ",".join(letters(s) for s in pairs[1::2])
    if out is not None:
        subscripts += "->" + letters(out)
    return subscripts, pairs[0::2]


def einsum(subscripts, /, *operands, out=None, optimize=False, dtype=None):
    """Einstein summation, lowered to diagonals, sums and pairwise ``dot_general``
    contractions (left to right); supports ``...``, implicit output and NumPy's interleaved
    form ``einsum(x, [0, 1], y, [1, 2], [0, 2])``.

    >>> fnx.numpy.einsum("ij,jk->ik", fnx.numpy.ones((2, 3)), fnx.numpy.ones((3, 4))).shape
    (2, 4)
    >>> fnx.numpy.einsum(fnx.numpy.ones((2, 3)), [0, 1], [1]).tolist()
    [2.0, 2.0, 2.0]
    """
    del optimize  # unused: fnx contracts left to right
    check_out("einsum", out)
    if not isinstance(subscripts, str):
        subscripts, operands = _einsum_sublists((subscripts,) + operands)
    if dtype is not None:
        operands = [to_array(o, dtypes.canonicalize(dtype)) for o in operands]
    if not operands:
        raise ValueError("einsum: needs at least one operand")
    ops = promote_args("einsum", *operands) if len(operands) > 1 else [to_array(operands[0])]
    terms, out = _parse_einsum(subscripts, ops)
    sizes = {}
    for t, x in zip(terms, ops):
        for c, s in zip(t, x.shape):
            if sizes.get(c, 1) != 1 and s != 1 and sizes[c] != s:
                raise ShapeError(f"einsum: label {c!r} has sizes {sizes[c]} and {s} in "
                                 f"{subscripts!r}")
            sizes[c] = s if sizes.get(c, 1) == 1 else sizes[c]
    if ops[0].dtype == dtypes.bool_:
        ops = [o.astype(dtypes.default_int()) for o in ops]
    items = []
    for t, x in zip(terms, ops):
        x, t = _einsum_diagonal(x, t)
        # broadcast size-1 dims so that dot_general sees equal sizes
        full = tuple(sizes[c] for c in t)
        if x.shape != full:
            x = sh.broadcast_in_dim_p.bind(x, shape=full, broadcast_dimensions=tuple(range(x.ndim)))
        items.append((x, t))

    def needed_later(k):
        labels = set(out)
        for _, t in items[k:]:
            labels |= set(t)
        return labels

    # sum out labels private to one operand before contracting
    def sum_private(k, x, t):
        keep = needed_later(k + 1) | {c for i, (_, tt) in enumerate(items) if i != k for c in tt}
        axes = tuple(i for i, c in enumerate(t) if c not in keep)
        if axes:
            x = reduce_sum_p.bind(x, axes=axes)
            t = "".join(c for i, c in enumerate(t) if i not in axes)
        return x, t

    x, t = sum_private(0, *items[0])
    for k in range(1, len(items)):
        y, u = items[k]
        later = needed_later(k + 1)
        shared = [c for c in t if c in u]
        batch = [c for c in shared if c in later]
        contract = [c for c in shared if c not in later]
        # labels of y alone that nobody else needs are summed first
        y_axes = tuple(i for i, c in enumerate(u) if c not in t and c not in later)
        if y_axes:
            y = reduce_sum_p.bind(y, axes=y_axes)
            u = "".join(c for i, c in enumerate(u) if i not in y_axes)
        x_axes = tuple(i for i, c in enumerate(t) if c not in u and c not in later)
        if x_axes:
            x = reduce_sum_p.bind(x, axes=x_axes)
            t = "".join(c for i, c in enumerate(t) if i not in x_axes)
        dims = ((tuple(t.index(c) for c in contract), tuple(u.index(c) for c in contract)),
                (tuple(t.index(c) for c in batch), tuple(u.index(c) for c in batch)))
        x = dot_general_p.bind(x, y, dimension_numbers=dims)
        t = ("".join(batch) + "".join(c for c in t if c not in shared)
             + "".join(c for c in u if c not in shared))
    axes = tuple(i for i, c in enumerate(t) if c not in out)
    if axes:
        x = reduce_sum_p.bind(x, axes=axes)
        t = "".join(c for i, c in enumerate(t) if i not in axes)
    return permute_dims(x, tuple(t.index(c) for c in out)) if t != out else x


def einsum_path(subscripts, /, *operands, optimize="greedy", einsum_call=False):
    """The contraction order einsum uses (left to right), in NumPy's format.

    >>> fnp.einsum_path('ij,jk->ik', fnp.ones((2, 3)), fnp.ones((3, 4)))[0]
    ['einsum_path', (0, 1)]
    """
    del optimize, einsum_call  # unused: fnx always contracts left to right
    if not isinstance(subscripts, str):
        subscripts, operands = _einsum_sublists((subscripts,) + operands)
    n = len(operands)
    return ["einsum_path"] + [(0, 1)] * (n - 1), f"left-to-right contraction of {subscripts}"


# --- NumPy conveniences: append, select, rollaxis, gradient, r_ / c_ ---------------------------


def append(arr, values, axis=None):
    """``arr`` with ``values`` appended along ``axis`` (both flattened when None).

    >>> fnp.append(fnp.asarray([1, 2]), [[3, 4]]).tolist()
    [1, 2, 3, 4]
    >>> fnp.append(fnp.ones((1, 2)), fnp.zeros((1, 2)), axis=0).tolist()
    [[1.0, 1.0], [0.0, 0.0]]
    """
    if axis is None:
        return concat([ravel(arr), ravel(values)], axis=0)
    return concat([arr, values], axis=axis)


def select(condlist, choicelist, default=0):
    """Elementwise, the entry of the first ``choicelist`` array whose condition in
    ``condlist`` is true, else ``default`` (all broadcast together).

    >>> x = fnp.arange(6)
    >>> fnp.select([x < 2, x > 3], [x, x ** 2], 42).tolist()
    [0, 1, 42, 42, 16, 25]
    """
    if len(condlist) != len(choicelist):
        raise ValueError(f"select: {len(condlist)} conditions for {len(choicelist)} choices; "
                         f"list one choice per condition")
    if not condlist:
        raise ValueError("select: condlist and choicelist must not be empty")
    conds = [to_array(c) for c in condlist]
    for i, c in enumerate(conds):
        if c.dtype != dtypes.bool_:
            raise TypeError(f"select: condition {i} has dtype {c.dtype}; conditions must be "
                            f"boolean arrays (compare explicitly, e.g. x != 0)")
    # the first true condition wins, so the earliest choice is applied last
    choices = promote_args("select", *choicelist, default)
    out = choices[-1]
    for c, choice in zip(conds[::-1], choices[-2::-1]):
        out = where(c, choice, out)
    return out


def rollaxis(a, axis, start=0):
    """Move ``axis`` to just before position ``start`` (NumPy's older ``moveaxis``).

    >>> fnp.rollaxis(fnp.ones((3, 4, 5, 6)), 3, 1).shape
    (3, 6, 4, 5)
    """
    x = to_array(a)
    n = x.ndim
    axis = normalize_axis(axis, n, "rollaxis")
    if start < 0:
        start += n
    if not 0 <= start < n + 1:
        raise AxisError(f"rollaxis: start must be in [{-n}, {n}] for an array of rank {n}, got "
                        f"{start - n if start < 0 else start}")
    if axis < start:
        start -= 1
    if axis == start:
        return x
    axes = [i for i in range(n) if i != axis]
    axes.insert(start, axis)
    return permute_dims(x, tuple(axes))


def gradient(f, *varargs, axis=None, edge_order=1):
    """The gradient of ``f`` sampled on a grid: central differences inside, one-sided
    differences of order ``edge_order`` (1 or 2) at the ends, as NumPy. ``varargs`` give the
    spacing: nothing (unit steps), one scalar for every axis, or one scalar or coordinate
    array per axis. Returns one array per axis (a single array for one axis).

    >>> fnp.gradient(fnp.asarray([1.0, 2.0, 4.0, 7.0])).tolist()
    [1.0, 1.5, 2.5, 3.0]
    >>> fnp.gradient(fnp.asarray([1.0, 2.0, 4.0, 7.0]), 2.0, edge_order=2).tolist()
    [0.25, 0.75, 1.25, 1.75]
    """
    f = to_array(f)
    if f.dtype.kind not in "fc":
        f = f.astype(dtypes.default_float())
    axes = tuple(range(f.ndim)) if axis is None else normalize_axes(axis, f.ndim, "gradient")
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    if not varargs:
        spacings = [1.0] * len(axes)
    elif len(varargs) == 1 and np.ndim(varargs[0]) == 0:
        spacings = list(varargs) * len(axes)
    elif len(varargs) == len(axes):
        spacings = list(varargs)
    else:
        raise TypeError(f"gradient: {len(varargs)} spacings given for {len(axes)} axes; pass "
                        f"none, one scalar, or one per axis")
    out = []
    for ax, h in zip(axes, spacings):
        n = f.shape[ax]
        if n < edge_order + 1:
            raise ValueError(f"gradient: axis {ax} of shape {f.shape} has {n} points; "
                             f"edge_order={edge_order} needs at least {edge_order + 1}")
        out.append(_gradient_along(f, ax, n, h, edge_order))
    return out[0] if len(out) == 1 else tuple(out)


def _gradient_along(f, ax, n, h, edge_order):
    """``f``'s derivative along ``ax`` with step ``h`` (a scalar) or at coordinates ``h``
    (NumPy's formulas: second order inside, ``edge_order`` at the two ends)."""
    def part(lo, hi):
        return _slice_axis(f, ax, lo, hi)

    f0, f1, f2 = part(0, 1), part(1, 2), part(2, 3) if n > 2 else None
    z0, z1, z2 = part(n - 1, n), part(n - 2, n - 1), part(n - 3, n - 2) if n > 2 else None
    below, here, above = part(0, n - 2), part(1, n - 1), part(2, n)
    if np.ndim(h) == 0:
        mid = (above - below) / (2 * h)
        if edge_order == 1:
            return concat(promote_args("gradient", (f1 - f0) / h, mid, (z0 - z1) / h), axis=ax)
        head = (-1.5 * f0 + 2 * f1 - 0.5 * f2) / h
        tail = (0.5 * z2 - 2 * z1 + 1.5 * z0) / h
        return concat(promote_args("gradient", head, mid, tail), axis=ax)
    x = to_array(h)
    if x.ndim != 1 or x.shape[0] != n:
        raise ShapeError(f"gradient: coordinates of shape {x.shape} for axis {ax} of length "
                         f"{n}; they must be 1-D with one entry per point")
    if x.dtype.kind not in "fc":
        x = x.astype(f.dtype)
    dx = diff(x)
    lay = tuple(-1 if d == ax else 1 for d in range(f.ndim))  # a vector along ``ax``
    d1, d2 = reshape(dx[:-1], lay), reshape(dx[1:], lay)
    mid = (-d2 / (d1 * (d1 + d2)) * below + (d2 - d1) / (d1 * d2) * here
           + d1 / (d2 * (d1 + d2)) * above)
    if edge_order == 1:
        head, tail = (f1 - f0) / dx[0], (z0 - z1) / dx[-1]
    else:
        a1, a2, b1, b2 = dx[0], dx[1], dx[-2], dx[-1]
        head = (-(2 * a1 + a2) / (a1 * (a1 + a2)) * f0 + (a1 + a2) / (a1 * a2) * f1
                - a1 / (a2 * (a1 + a2)) * f2)
        tail = (b2 / (b1 * (b1 + b2)) * z2 - (b2 + b1) / (b1 * b2) * z1
                + (2 * b2 + b1) / (b2 * (b1 + b2)) * z0)
    return concat(promote_args("gradient", head, mid, tail), axis=ax)


class AxisConcatenator:
    """NumPy's ``r_`` / ``c_``: index the object to concatenate arrays, scalars and slices
    (``start:stop:step`` is ``arange``, a complex step ``start:stop:nj`` is ``linspace`` with
    ``n`` points). A leading string ``"axis[,ndmin[,trans1d]]"`` sets the concatenation axis,
    the minimum rank and where 1-D inputs go; matrix directives (``"r"``, ``"c"``) are not
    supported (fnx has no matrix type).

    >>> fnp.r_[1:4, 0, fnp.asarray([7, 8])].tolist()
    [1, 2, 3, 0, 7, 8]
    >>> fnp.r_[0:1:3j].tolist()
    [0.0, 0.5, 1.0]
    >>> fnp.c_[fnp.asarray([1, 2]), fnp.asarray([3, 4])].tolist()
    [[1, 3], [2, 4]]
    >>> fnp.r_["0,2", [1, 2], [3, 4]].tolist()
    [[1, 2], [3, 4]]
    """

    def __init__(self, name, axis, ndmin, trans1d):
        self._name, self._axis, self._ndmin, self._trans1d = name, axis, ndmin, trans1d

    def __repr__(self):
        return f"fnx.numpy.{self._name}"

    def __len__(self):
        return 0

    def __getitem__(self, key):
        from ._creation import arange, linspace

        key = key if isinstance(key, tuple) else (key,)
        axis, ndmin, trans1d = self._axis, self._ndmin, self._trans1d
        parts, scalars = [], []
        for k, item in enumerate(key):
            if isinstance(item, str):
                if k:
                    raise ValueError(f"{self._name}: a string directive must come first, got "
                                     f"{item!r} at position {k}")
                if item in ("r", "c"):
                    raise ValueError(f"{self._name}: the matrix directive {item!r} is not "
                                     f"supported (fnx has no matrix type)")
                try:
                    vec = [int(v) for v in item.split(",")]
                except ValueError:
                    raise ValueError(f"{self._name}: unknown directive {item!r}; expected "
                                     f"'axis[,ndmin[,trans1d]]'") from None
                axis = vec[0]
                ndmin = vec[1] if len(vec) > 1 else ndmin
                trans1d = vec[2] if len(vec) > 2 else trans1d
                continue
            if isinstance(item, slice):
                start = 0 if item.start is None else item.start
                step = 1 if item.step is None else item.step
                if isinstance(step, complex):
                    new = linspace(start, item.stop, int(builtins.abs(step)))
                else:
                    new = arange(start, item.stop, step)
                parts.append(self._lift(new, ndmin, trans1d))
            elif np.ndim(item) == 0 and not is_array(item):
                scalars.append(len(parts))
                parts.append(item)
            else:
                parts.append(self._lift(to_array(item), ndmin, trans1d))
        if not parts:
            return zeros((0,))
        parts = promote_args(self._name, *parts)
        for i in scalars:
            parts[i] = reshape(parts[i], (1,) * builtins.max(ndmin, 1))
        return concat(parts, axis=axis)

    @staticmethod
    def _lift(x, ndmin, trans1d):
        """``x`` with at least ``ndmin`` dims, its own axes placed at ``trans1d``."""
        if x.ndim >= ndmin:
            return x
        k2, k1 = ndmin - x.ndim, trans1d
        x = reshape(x, (1,) * k2 + x.shape)
        if trans1d == -1:
            return x
        if k1 < 0:
            k1 += k2 + 1
        axes = list(range(ndmin))
        return permute_dims(x, tuple(axes[:k1] + axes[k2:] + axes[k1:k2]))


r_ = AxisConcatenator("r_", 0, 1, -1)
c_ = AxisConcatenator("c_", -1, 2, 0)


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__] + ["r_", "c_"]
