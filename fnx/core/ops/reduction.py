"""Reductions over a static tuple of axes: sum, max, min, prod, and, or, argmax, argmin."""

import numpy as np

from ..abstract import ShapedArray
from ..devices import array_module
from ..ad_util import Zero
from ..errors import AxisError, DTypeError, ShapeError
from ..primitive import Primitive
from .family import KINDS, deflinear, defjvp
from .shape import broadcast_in_dim_p, move_axis


def _reduced_shape(name, x, axes):
    if any(not 0 <= a < x.ndim for a in axes) or len(set(axes)) != len(axes):
        raise AxisError(f"{name}: axes {axes} are invalid for an array of rank {x.ndim}")
    return tuple(s for i, s in enumerate(x.shape) if i not in axes)


def _reduction(name, impl, kinds, reducer, identity_of):
    prim = Primitive(name)
    allowed = KINDS[kinds]

    def abstract_eval(x, *, axes):
        if x.dtype.kind not in allowed:
            raise DTypeError(f"{name}: dtype {x.dtype} is not supported (expected {kinds})")
        return ShapedArray(_reduced_shape(name, x, axes), x.dtype)

    def batch(axis_size, args, dims, *, axes):
        x, d = args[0], dims[0]
        x = move_axis(x, d, 0)
        return prim.bind(x, axes=tuple(a + 1 for a in axes)), 0

    prim.impl = impl
    prim.dtype_kinds = allowed
    prim.abstract_eval = abstract_eval
    prim.batch = batch
    prim.fusion_kind = "reduce"
    # combine op in the scalar vocabulary + identity as a function of dtype
    prim.reducer = (reducer, identity_of)
    return prim


def _keep_dtype(fn):
    def impl(x, *, axes):
        return fn(x, axis=axes, dtype=x.dtype if x.dtype.kind != "b" else None)

    return impl


def _sum_impl(x, *, axes):
    # np.add.reduce skips np.sum's dispatch layers (~1 µs); CuPy needs np.sum's dispatch.
    # A NumPy scalar result is wrapped into a 0-d array by the caller.
    sum_fn = np.add.reduce if type(x) is np.ndarray else np.sum
    return sum_fn(x, axis=axes, dtype=x.dtype)


reduce_sum_p = _reduction("reduce_sum", _sum_impl, "numeric", "add", lambda dt: 0)


def expand_reduced(ct, in_shape, axes):
    """Broadcast a reduced value back over the reduced ``axes`` of ``in_shape``."""
    kept = tuple(i for i in range(len(in_shape)) if i not in axes)
    return broadcast_in_dim_p.bind(ct, shape=tuple(in_shape), broadcast_dimensions=kept)


deflinear(reduce_sum_p, lambda ct, x, *, axes: [expand_reduced(ct, x.aval.shape, axes)])


def _identity_max(dt):
    return -np.inf if dt.kind == "f" else (False if dt.kind == "b" else np.iinfo(dt).min)


def _identity_min(dt):
    return np.inf if dt.kind == "f" else (True if dt.kind == "b" else np.iinfo(dt).max)


def _minmax_impl(fn):
    def impl(x, *, axes):
        if x.size == 0 and any(x.shape[a] == 0 for a in axes):
            ident = (_identity_max if fn is np.max else _identity_min)(x.dtype)
            shape = tuple(s for i, s in enumerate(x.shape) if i not in axes)
            return array_module(x).full(shape, ident, x.dtype)
        return fn(x, axis=axes)

    return impl


reduce_max_p = _reduction("reduce_max", _minmax_impl(np.max), "real", "max", _identity_max)
reduce_min_p = _reduction("reduce_min", _minmax_impl(np.min), "real", "min", _identity_min)


def _minmax_jvp(prim):
    # The tangent is averaged over all positions attaining the extremum (JAX's convention).
    def rule(t, ans, x, *, axes):

        location = (x == expand_reduced(ans, x.shape, axes)).astype(t.dtype)
        counts = reduce_sum_p.bind(location, axes=axes)
        return reduce_sum_p.bind(t * location, axes=axes) / counts

    defjvp(prim, rule)


_minmax_jvp(reduce_max_p)
_minmax_jvp(reduce_min_p)

reduce_prod_p = _reduction("reduce_prod", _keep_dtype(np.prod), "numeric", "mul", lambda dt: 1)


def _reduce_prod_jvp(primals, tangents, *, axes):
    # d prod = sum_i t_i * prod_{j != i} x_j, with the exclusive products computed by
    # cumulative products from both sides (exact at zeros, unlike ans / x)
    (x,), (t,) = primals, tangents
    ans = reduce_prod_p.bind(x, axes=axes)
    if type(t) is Zero:
        return ans, Zero(ShapedArray(ans.shape, ans.dtype))
    from fnx import numpy as fnp

    kept = [i for i in range(x.ndim) if i not in axes]
    perm = tuple(kept) + tuple(axes)
    n = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    lead = tuple(x.shape[i] for i in kept)
    xs = fnp.reshape(fnp.permute_dims(x, perm), lead + (n,))
    ts = fnp.reshape(fnp.permute_dims(t, perm), lead + (n,))
    ones = fnp.ones(lead + (1,), dtype=x.dtype)
    left = fnp.cumprod(fnp.concat([ones, xs[..., :-1]], axis=-1), axis=-1)
    right = fnp.flip(fnp.cumprod(fnp.flip(fnp.concat([xs[..., 1:], ones], axis=-1), axis=-1),
                                 axis=-1), axis=-1)
    return ans, fnp.sum(ts * left * right, axis=-1)


reduce_prod_p.jvp = _reduce_prod_jvp


def _logical_impl(fn):
    return lambda x, *, axes: fn(x, axis=axes)


reduce_and_p = _reduction("reduce_and", _logical_impl(np.all), "bool", "and", lambda dt: True)
reduce_or_p = _reduction("reduce_or", _logical_impl(np.any), "bool", "or", lambda dt: False)
for _p in (reduce_and_p, reduce_or_p):
    _p.differentiable = False

# --- argmax / argmin -------------------------------------------------------------------------


def _arg_reduction(name, np_fn, reducer):
    prim = Primitive(name)

    def abstract_eval(x, *, axis, index_dtype):
        if not 0 <= axis < x.ndim:
            raise AxisError(f"{name}: axis {axis} out of range for an array of rank {x.ndim}")
        if x.shape[axis] == 0:
            raise ShapeError(f"{name}: cannot take {name} of an empty axis (shape {x.shape})")
        if x.dtype.kind == "c":
            raise DTypeError(f"{name}: complex dtype {x.dtype} has no ordering")
        return ShapedArray(_reduced_shape(name, x, (axis,)), index_dtype)

    def impl(x, *, axis, index_dtype):
        if x.shape[axis] == 0 or x.dtype.kind == "c":  # the rule's designed errors, eagerly too
            abstract_eval(ShapedArray(x.shape, x.dtype), axis=axis, index_dtype=index_dtype)
        # NaN counts as the extremum (first NaN wins), as NumPy and JAX
        return np_fn(x, axis=axis).astype(index_dtype)

    def batch(axis_size, args, dims, *, axis, index_dtype):
        x = move_axis(args[0], dims[0], 0)
        return prim.bind(x, axis=axis + 1, index_dtype=index_dtype), 0

    prim.impl = impl
    prim.abstract_eval = abstract_eval
    prim.batch = batch
    prim.differentiable = False
    prim.fusion_kind = "reduce"
    prim.reducer = (reducer, None)
    return prim


argmax_p = _arg_reduction("argmax", np.argmax, "argmax")
argmin_p = _arg_reduction("argmin", np.argmin, "argmin")
