"""Reductions: sum, prod, max, min, mean, var, std, all, any, argmax, argmin."""

import builtins

import numpy as np

from ..core import dtypes
from ..core.errors import normalize_axes, normalize_axis
from ..core.ops import elementwise as ew
from ..core.ops import reduction as red
from ..core.array import Array
from ._core import to_array

_ALL_AXES = [tuple(range(n)) for n in range(33)]


def _reduce(prim, x, axis, keepdims):
    axes = normalize_axes(axis, x.ndim, prim.name)
    out = prim.bind(x, axes=axes) if axes else x
    if keepdims:
        from ._manipulation import reshape

        out = reshape(out, tuple(1 if i in axes else s for i, s in enumerate(x.shape)))
    return out


def _sum_dtype(x, dtype):
    if dtype is not None:
        return dtypes.canonicalize(dtype)
    if x.dtype.kind == "b" or (x.dtype.kind == "i" and x.dtype.itemsize < 8):
        return dtypes.default_int()
    if x.dtype.kind == "u" and x.dtype.itemsize < 8:
        return dtypes.uint64
    return x.dtype


def sum(x, /, *, axis=None, dtype=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (all axes when None). Small integers accumulate in int64.

    >>> fnx.numpy.sum(fnx.numpy.ones((2, 3)), axis=1).tolist()
    [3.0, 3.0]
    """
    if type(x) is Array and axis is None and dtype is None and not keepdims and x.ndim and \
            x._buf.dtype.kind in "fc":
        # the common eager x.sum(): nothing to convert, normalize or reshape
        return red.reduce_sum_p.bind(x, axes=_ALL_AXES[x.ndim])
    x = to_array(x)
    x = ew.convert_element_type(x, _sum_dtype(x, dtype))
    return _reduce(red.reduce_sum_p, x, axis, keepdims)


def prod(x, /, *, axis=None, dtype=None, keepdims=False):
    """Product over ``axis`` (all axes when None); small integers accumulate in int64.

    >>> fnp.prod(fnp.asarray([[1, 2], [3, 4]]), axis=1).tolist()
    [2, 12]
    """
    x = to_array(x)
    x = ew.convert_element_type(x, _sum_dtype(x, dtype))
    return _reduce(red.reduce_prod_p, x, axis, keepdims)


def _extremum(name, prim, bool_prim, x, axis, keepdims):
    x = to_array(x)
    _check_nonempty(name, x, axis)
    return _reduce(bool_prim if x.dtype.kind == "b" else prim, x, axis, keepdims)


def max(x, /, *, axis=None, keepdims=False):  # noqa: A001
    """Maximum over ``axis`` (all axes when None); ``any`` for booleans.

    >>> fnp.max(fnp.asarray([[1, 5], [7, 2]]), axis=0).tolist()
    [7, 5]
    """
    return _extremum("max", red.reduce_max_p, red.reduce_or_p, x, axis, keepdims)


def min(x, /, *, axis=None, keepdims=False):  # noqa: A001
    """Minimum over ``axis`` (all axes when None); ``all`` for booleans.

    >>> fnp.min(fnp.asarray([[1, 5], [7, 2]]), axis=1).tolist()
    [1, 2]
    """
    return _extremum("min", red.reduce_min_p, red.reduce_and_p, x, axis, keepdims)


def _check_nonempty(op, x, axis):
    axes = normalize_axes(axis, x.ndim, op)
    if builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: zero-size reduction over axes {axes} of shape {x.shape} has no "
                         f"identity")


amax, amin = max, min


def mean(x, /, *, axis=None, keepdims=False, dtype=None):
    """Arithmetic mean; integer inputs give the default float dtype.

    >>> fnp.mean(fnp.asarray([[1, 2], [3, 4]]), axis=0).tolist()
    [2.0, 3.0]
    """
    x = to_array(x)
    if dtype is not None:
        x = x.astype(dtypes.canonicalize(dtype))
    elif x.dtype.kind not in "fc":
        x = x.astype(dtypes.default_float())
    axes = normalize_axes(axis, x.ndim, "mean")
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    total = _reduce(red.reduce_sum_p, x, axis, keepdims)
    return total / n if n else total * np.nan


def var(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Variance with ``correction`` degrees of freedom subtracted from N.

    >>> x = fnp.asarray([1.0, 3.0])
    >>> fnp.var(x).item(), fnp.var(x, correction=1).item()
    (1.0, 2.0)
    """
    x = to_array(x)
    if x.dtype.kind not in "fc":
        x = x.astype(dtypes.default_float())
    m = mean(x, axis=axis, keepdims=True)
    d = x - m
    sq = d * ew.conj_p.bind(d) if x.dtype.kind == "c" else d * d
    axes = normalize_axes(axis, x.ndim, "var")
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    s = _reduce(red.reduce_sum_p, sq, axis, keepdims)
    if x.dtype.kind == "c":
        s = ew.real_p.bind(s)
    return s / (n - correction) if n - correction > 0 else s * np.nan


def std(x, /, *, axis=None, correction=0.0, keepdims=False):
    """Standard deviation with ``correction`` degrees of freedom subtracted from N (default 0,
    as the array API; torch's ``x.std()`` uses 1).

    >>> fnp.std(fnp.asarray([1.0, 3.0])).item()
    1.0
    """
    from ._elementwise import sqrt

    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def all(x, /, *, axis=None, keepdims=False):  # noqa: A001
    """Whether every element along ``axis`` (all axes when None) is true.

    >>> fnp.all(fnp.asarray([[True, False], [True, True]]), axis=1).tolist()
    [False, True]
    """
    x = to_array(x)
    return _reduce(red.reduce_and_p, x if x.dtype == dtypes.bool_ else x != 0, axis, keepdims)


def any(x, /, *, axis=None, keepdims=False):  # noqa: A001
    """Whether any element along ``axis`` (all axes when None) is true.

    >>> fnp.any(fnp.asarray([[True, False], [False, False]]), axis=1).tolist()
    [True, False]
    """
    x = to_array(x)
    return _reduce(red.reduce_or_p, x if x.dtype == dtypes.bool_ else x != 0, axis, keepdims)


def _arg(prim, name, x, axis, keepdims):
    x = to_array(x)
    if axis is None:
        from ._manipulation import reshape

        flat = reshape(x, (-1,))
        out = prim.bind(flat, axis=0, index_dtype=dtypes.default_int())
        return reshape(out, (1,) * x.ndim) if keepdims else out
    axis = normalize_axis(axis, x.ndim, name)
    out = prim.bind(x, axis=axis, index_dtype=dtypes.default_int())
    if keepdims:
        from ._manipulation import expand_dims

        out = expand_dims(out, axis=axis)
    return out


def argmax(x, /, *, axis=None, keepdims=False):
    """Index of the first maximum along ``axis`` (flattened when None).

    >>> fnp.argmax(fnp.asarray([[1, 5], [7, 2]]), axis=1).tolist()
    [1, 0]
    """
    return _arg(red.argmax_p, "argmax", x, axis, keepdims)


def argmin(x, /, *, axis=None, keepdims=False):
    """Index of the first minimum along ``axis`` (flattened when None).

    >>> fnp.argmin(fnp.asarray([3, 1, 2])).item()
    1
    """
    return _arg(red.argmin_p, "argmin", x, axis, keepdims)


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
