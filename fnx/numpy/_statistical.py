"""Reductions: sum, prod, max, min, mean, var, std, all, any, argmax, argmin."""

import builtins

import numpy as np

from ..core import dtypes
from ..core.errors import normalize_axes, normalize_axis
from ..core.ops import elementwise as ew
from ..core.ops import reduction as red
from ..core.array import Array
from ._core import broadcast_to_shape, to_array
from ._ufunc import check_out

_ALL_AXES = [tuple(range(n)) for n in range(33)]


def _masked(x, where, fill):
    """``x`` with ``fill`` where the reduction's ``where=`` mask (broadcast to ``x``) is
    false, so masked-out elements do not count; ``x`` itself when there is no mask."""
    if where is None:
        return x
    mask = broadcast_to_shape(to_array(where, dtypes.bool_), x.shape)
    return ew.select_p.bind(mask, x, ew.full(x.shape, fill, x.dtype))


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


def sum(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):  # noqa: A001
    """Sum over ``axis`` (all axes when None). Small integers accumulate in int64.
    ``initial`` is added to every sum; elements where the ``where`` mask is false are left out.

    >>> fnx.numpy.sum(fnx.numpy.ones((2, 3)), axis=1).tolist()
    [3.0, 3.0]
    >>> fnp.sum(fnp.asarray([1.0, 2.0, 4.0]), where=fnp.asarray([True, False, True])).item()
    5.0
    """
    if type(a) is Array and axis is None and dtype is None and not keepdims and a._buf.ndim and \
            a._buf.dtype.kind in "fc" and out is initial is where is None:
        # the common eager x.sum(): nothing to convert, normalize or reshape
        return red.reduce_sum_p.bind(a, axes=_ALL_AXES[a._buf.ndim])
    check_out("sum", out)
    x = to_array(a)
    x = _masked(ew.convert_element_type(x, _sum_dtype(x, dtype)), where, 0)
    total = _reduce(red.reduce_sum_p, x, axis, keepdims)
    return total if initial is None else total + ew.full((), initial, x.dtype)


def prod(a, axis=None, dtype=None, out=None, keepdims=False, initial=None, where=None):
    """Product over ``axis`` (all axes when None); small integers accumulate in int64.
    Every product is multiplied by ``initial``; elements where ``where`` is false are left out.

    >>> fnp.prod(fnp.asarray([[1, 2], [3, 4]]), axis=1).tolist()
    [2, 12]
    """
    check_out("prod", out)
    x = to_array(a)
    x = _masked(ew.convert_element_type(x, _sum_dtype(x, dtype)), where, 1)
    total = _reduce(red.reduce_prod_p, x, axis, keepdims)
    return total if initial is None else total * ew.full((), initial, x.dtype)


def _extremum(name, prim, bool_prim, pick, a, axis, out, keepdims, initial, where):
    check_out(name, out)
    x = to_array(a)
    if initial is None:
        if where is not None:
            raise ValueError(f"{name}: a where= mask needs initial= (the value of a reduction "
                             f"with every element masked out), as NumPy")
        _check_nonempty(name, x, axis)
        return _reduce(bool_prim if x.dtype.kind == "b" else prim, x, axis, keepdims)
    init = ew.full((), initial, x.dtype)
    x = _masked(x, where, initial)
    axes = normalize_axes(axis, x.ndim, name)
    if builtins.any(x.shape[i] == 0 for i in axes):
        # an empty reduction is just ``initial``, as NumPy
        shape = tuple(1 if i in axes else s for i, s in enumerate(x.shape) if keepdims or
                      i not in axes)
        return ew.full(shape, initial, x.dtype)
    result = _reduce(bool_prim if x.dtype.kind == "b" else prim, x, axis, keepdims)
    return pick(result, broadcast_to_shape(init, result.shape))


def max(a, axis=None, out=None, keepdims=False, initial=None, where=None):  # noqa: A001
    """Maximum over ``axis`` (all axes when None); ``any`` for booleans. With ``initial``
    the result is at least ``initial`` (and empty reductions give it); a ``where`` mask
    leaves elements out and needs ``initial``, as NumPy.

    >>> fnp.max(fnp.asarray([[1, 5], [7, 2]]), axis=0).tolist()
    [7, 5]
    >>> fnp.max(fnp.zeros((0,)), initial=-1.0).item()
    -1.0
    """
    return _extremum("max", red.reduce_max_p, red.reduce_or_p, ew.max_p.bind, a, axis, out,
                     keepdims, initial, where)


def min(a, axis=None, out=None, keepdims=False, initial=None, where=None):  # noqa: A001
    """Minimum over ``axis`` (all axes when None); ``all`` for booleans. ``initial`` and
    ``where`` as in ``max``.

    >>> fnp.min(fnp.asarray([[1, 5], [7, 2]]), axis=1).tolist()
    [1, 2]
    """
    return _extremum("min", red.reduce_min_p, red.reduce_and_p, ew.min_p.bind, a, axis, out,
                     keepdims, initial, where)


def _check_nonempty(op, x, axis):
    axes = normalize_axes(axis, x.ndim, op)
    if builtins.any(x.shape[a] == 0 for a in axes):
        raise ValueError(f"{op}: zero-size reduction over axes {axes} of shape {x.shape} has no "
                         f"identity")


amax, amin = max, min


def _float_or(x, dtype):
    """``x`` in ``dtype``, or (when None) in the default float dtype if it is not inexact."""
    if dtype is not None:
        return x.astype(dtypes.canonicalize(dtype))
    return x if x.dtype.kind in "fc" else x.astype(dtypes.default_float())


def _count(x, axis, keepdims, where):
    """How many elements each reduction over ``axis`` sees: a Python int without a mask, an
    array of ``x``'s (real) dtype with one."""
    if where is None:
        axes = normalize_axes(axis, x.ndim, "count")
        return int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    real = np.zeros((), x.dtype).real.dtype  # complex inputs count in their real dtype
    ones = _masked(ew.full(x.shape, 1, real), where, 0)
    return _reduce(red.reduce_sum_p, ones, axis, keepdims)


def _mean(x, axis, keepdims, where):
    total = _reduce(red.reduce_sum_p, _masked(x, where, 0), axis, keepdims)
    n = _count(x, axis, keepdims, where)
    if where is not None:
        return total / n
    return total / n if n else total * np.nan


def mean(a, axis=None, dtype=None, out=None, keepdims=False, *, where=None):
    """Arithmetic mean (of the elements where ``where`` is true); integer inputs give the
    default float dtype.

    >>> fnp.mean(fnp.asarray([[1, 2], [3, 4]]), axis=0).tolist()
    [2.0, 3.0]
    """
    check_out("mean", out)
    return _mean(_float_or(to_array(a), dtype), axis, keepdims, where)


def var(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    """Variance with ``ddof`` (NumPy's name) or ``correction`` (the array API's) degrees of
    freedom subtracted from N. ``mean`` may pass a precomputed mean (shaped as with
    ``keepdims=True``); ``where`` leaves elements out.

    >>> x = fnp.asarray([1.0, 3.0])
    >>> fnp.var(x).item(), fnp.var(x, correction=1).item(), fnp.var(x, ddof=1).item()
    (1.0, 2.0, 2.0)
    """
    check_out("var", out)
    if correction is not None and ddof != 0:
        raise ValueError("var: pass ddof (NumPy) or correction (array API), not both")
    correction = ddof if correction is None else correction
    x = _float_or(to_array(a), dtype)
    m = _mean(x, axis, True, where) if mean is None else to_array(mean, x.dtype)
    d = x - m
    sq = _masked(d * ew.conj_p.bind(d) if x.dtype.kind == "c" else d * d, where, 0)
    n = _count(x, axis, keepdims, where)
    s = _reduce(red.reduce_sum_p, sq, axis, keepdims)
    if x.dtype.kind == "c":
        s = ew.real_p.bind(s)
    if where is not None:
        from ._elementwise import where as select

        return select(n - correction > 0, s / (n - correction), np.nan)
    return s / (n - correction) if n - correction > 0 else s * np.nan


def std(a, axis=None, dtype=None, out=None, ddof=0, keepdims=False, *, where=None, mean=None,
        correction=None):
    """Standard deviation with ``ddof``/``correction`` degrees of freedom subtracted from N
    (default 0, as NumPy and the array API; torch's ``x.std()`` uses 1). The arguments are
    ``var``'s.

    >>> fnp.std(fnp.asarray([1.0, 3.0])).item()
    1.0
    """
    return _norm_root(var(a, axis=axis, dtype=dtype, out=out, ddof=ddof, keepdims=keepdims,
                          where=where, mean=mean, correction=correction))


def _norm_root(s, p=2):
    """``s ** (1 / p)`` for an ``s`` that is a sum of ``|x_i| ** p`` (a variance, a p-norm to
    the p-th power), with derivative 0 where ``s == 0``. There the function (``std``, a norm)
    has a kink like ``abs`` at 0: 0 is its central difference and matches ``abs``'s
    ``sign(0) = 0``, where the plain root gives ``0 * inf = nan`` (JAX's answer). A ``std``
    over a single element is the constant 0, so its derivative 0 is exact."""
    from ._elementwise import sqrt, where

    zero = s == 0
    safe = where(zero, 1, s)
    return where(zero, 0, sqrt(safe) if p == 2 else safe ** (1.0 / p))


def all(a, axis=None, out=None, keepdims=False, *, where=None):  # noqa: A001
    """Whether every element along ``axis`` (all axes when None; only where ``where`` is
    true) is true.

    >>> fnp.all(fnp.asarray([[True, False], [True, True]]), axis=1).tolist()
    [False, True]
    """
    check_out("all", out)
    x = to_array(a)
    x = _masked(x if x.dtype == dtypes.bool_ else x != 0, where, True)
    return _reduce(red.reduce_and_p, x, axis, keepdims)


def any(a, axis=None, out=None, keepdims=False, *, where=None):  # noqa: A001
    """Whether any element along ``axis`` (all axes when None; only where ``where`` is
    true) is true.

    >>> fnp.any(fnp.asarray([[True, False], [False, False]]), axis=1).tolist()
    [True, False]
    """
    check_out("any", out)
    x = to_array(a)
    x = _masked(x if x.dtype == dtypes.bool_ else x != 0, where, False)
    return _reduce(red.reduce_or_p, x, axis, keepdims)


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


def argmax(a, axis=None, out=None, *, keepdims=False):
    """Index of the first maximum along ``axis`` (flattened when None).

    >>> fnp.argmax(fnp.asarray([[1, 5], [7, 2]]), axis=1).tolist()
    [1, 0]
    """
    check_out("argmax", out)
    return _arg(red.argmax_p, "argmax", a, axis, keepdims)


def argmin(a, axis=None, out=None, *, keepdims=False):
    """Index of the first minimum along ``axis`` (flattened when None).

    >>> fnp.argmin(fnp.asarray([3, 1, 2])).item()
    1
    """
    check_out("argmin", out)
    return _arg(red.argmin_p, "argmin", a, axis, keepdims)


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
