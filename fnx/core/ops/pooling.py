"""Pooling primitives: max and average pooling over the trailing ``len(window)`` (or
``len(output_size)``) spatial dims of an array with any leading dims, in PyTorch's semantics.

A window geometry is either fixed -- ``window``, ``strides``, ``padding`` (the low side; the
high side follows from ``ceil_mode``), ``dilation`` -- or adaptive (``output_size``; window
``i`` of ``n`` inputs covers ``[floor(i n / out), ceil((i + 1) n / out))``), the other params
then ``None``. The impls run fused Numba loops (fnx/jit/kernels/pool.py) on CPU float32/64
buffers and never materialize windows; other dtypes and CuPy buffers take an
array-module-generic path.

* ``max_pool`` returns the maxima and their flat positions in the input plane (PyTorch's
  ``return_indices``: first maximum wins, NaN propagates, padding is never chosen). A window
  wholly in the padding (dilation can step over a small input) is -inf (an integer dtype's
  minimum) at PyTorch's index, its first position past the low padding: that lies outside the
  plane, so the window's gradient reaches no input. The JVP gathers the tangent at the
  positions (``pool_gather``, 0 outside the plane); ``pool_gather`` and
  ``pool_scatter_add`` are linear in their first operand and each other's transpose, so the
  backward pass is one scatter-add and every higher derivative stays in these two loops.
* ``avg_pool`` (``count_include_pad``, ``divisor_override``) is linear; its transpose
  ``avg_pool_transpose`` spreads each cotangent back over its window, and transposes back.

Batching folds the batch dim into the leading dims (every primitive pools the trailing dims).
"""

import functools
import math

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .family import deflinear
from .indexing import checked
from .shape import broadcast_batched, move_axis

max_pool_p = Primitive("max_pool", multiple_results=True)
pool_gather_p = Primitive("pool_gather")
pool_scatter_add_p = Primitive("pool_scatter_add")
avg_pool_p = Primitive("avg_pool")
avg_pool_transpose_p = Primitive("avg_pool_transpose")


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


def _fold_batch(prim):
    """The vmap rule of a one-operand pooling primitive: the batch dim joins the leading dims."""

    def batch(axis_size, args, dims, **params):
        del axis_size  # unused
        out = prim.bind(move_axis(args[0], dims[0], 0), **params)
        return out, ([0] * len(out) if prim.multiple_results else 0)

    return batch


def _by_index_rules(prim):
    """JVP and vmap rules of ``prim(values, idx)``, linear in the values (the indices are
    integer): the tangent goes through ``prim`` with the same indices; vmap puts the batch dim
    of both in front (broadcasting an unbatched one)."""

    def jvp(primals, tangents, **params):
        ans = prim.bind(*primals, **params)
        if type(tangents[0]) is Zero:
            return ans, Zero(_aval(ans))
        return ans, prim.bind(tangents[0], primals[1], **params)

    def batch(axis_size, args, dims, **params):
        aligned = [broadcast_batched(x, axis_size) if d is None else move_axis(x, d, 0)
                   for x, d in zip(args, dims, strict=True)]
        return prim.bind(*aligned, **params), 0

    prim.jvp, prim.batch, prim.linear = jvp, batch, True
    prim.weak_type_rule = lambda weak_in, **_: bool(weak_in[0])
    prim.call_kind = "impl"  # fused Numba loop


# --- geometry --------------------------------------------------------------------------------


def pool_output_size(n, k, s, p, d, ceil_mode):
    """PyTorch's ``pooling_output_shape``: a last window starting in the right padding is
    dropped in ceil mode."""
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def _ints(v):
    """A geometry param as hashable ints (``None`` stays ``None``)."""
    return None if v is None else tuple(int(i) for i in v)


def _nsp(window, output_size):
    return len(output_size) if window is None else len(window)


def _out_spatial(in_spatial, window, strides, padding, dilation, ceil_mode, output_size):
    if window is None:
        return tuple(output_size)
    dilation = dilation or (1,) * len(window)
    return tuple(pool_output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d
                 in zip(in_spatial, window, strides, padding, dilation, strict=True))


@functools.lru_cache(maxsize=512)
def _dim_bounds(n, o, k, s, p, d, count_include_pad):
    """One spatial dim's ``(o, 3)`` int64 table: each window's first in-bounds element (its
    first position past the low padding), how many elements it takes (``d`` apart) and its
    factor of the average's divisor (PyTorch: the window clipped to the padded input with
    ``count_include_pad``, else to the input).
    ``k is None``: adaptive windows; ceil mode is in the output size ``o``."""
    i = np.arange(o, dtype=np.int64)
    if k is None:
        first, end = (i * n) // o, -((-(i + 1) * n) // o)
        count = end - first
        return np.ascontiguousarray(np.stack([first, count, count], 1))
    start = i * s - p
    first = np.where(start < 0, start + (-start + d - 1) // d * d, start)
    end = np.minimum(start + d * (k - 1) + 1, n)
    # a window wholly in the padding (only possible with dilation) reads nothing; its first
    # position (>= n, as PyTorch's) is max_pool's index for it
    count = np.maximum((end - first + d - 1) // d, 0)
    padded_end = np.minimum(start + k, n + p)
    factor = padded_end - start if count_include_pad else count
    return np.ascontiguousarray(np.stack([first, count, factor], 1))


def _bounds(in_spatial, window, strides, padding, dilation, ceil_mode, output_size,
            count_include_pad=True):
    """The per-dim tables (``_dim_bounds``) and steps, padded to three spatial dims."""
    out = _out_spatial(in_spatial, window, strides, padding, dilation, ceil_mode, output_size)
    nsp = len(out)
    tables, steps = [], []
    for j in range(nsp):
        if window is None:
            geo = (None, None, None, 1)
        else:
            geo = (window[j], strides[j], padding[j], dilation[j] if dilation else 1)
        tables.append(_dim_bounds(in_spatial[j], out[j], *geo, count_include_pad))
        steps.append(geo[3])
    one = np.array([[0, 1, 1]], np.int64)
    return [one] * (3 - nsp) + tables, [1] * (3 - nsp) + steps, out


def _check_geometry(name, x, window, strides, padding, dilation, output_size):
    if (window is None) == (output_size is None):
        raise ValueError(f"{name}: give either window (fixed windows) or output_size "
                         f"(adaptive windows), got window={window}, output_size={output_size}")
    nsp = _nsp(window, output_size)
    if not 1 <= nsp <= 3 or x.ndim < nsp:
        raise ShapeError(f"{name}: pools 1 to 3 trailing dims of an input with at least as many "
                         f"dims, got {nsp} spatial dims for an input of shape {x.shape}")
    if window is not None:
        for pname, v in (("strides", strides), ("padding", padding),
                         ("dilation", dilation or (1,) * nsp)):
            if len(v) != nsp:
                raise ShapeError(f"{name}: {pname} {v} needs one entry per window dim ({nsp})")
        if any(v < 1 for v in window + strides + (dilation or ())) or any(v < 0 for v in padding):
            raise ValueError(f"{name}: window {window}, strides {strides} and dilation "
                             f"{dilation} must be positive and padding {padding} non-negative")


# --- kernels ---------------------------------------------------------------------------------

_KERNEL_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_kernels = {}


def _kernel(name, dtype, arrays, nsizes=0):
    """The compiled ``fnx/jit/kernels/pool.py`` function ``name`` for ``dtype`` (``arrays``:
    ``(ndim, dtype or None for dtype)`` per array argument after ``nsizes`` int64 sizes)."""
    key = (name, dtype)
    fn = _kernels.get(key)
    if fn is None:
        from ...jit import cache

        disp = getattr(cache.load_library("pool"), name)
        sig = cache.signature_of([(nd, dtype if dt is None else dt) for nd, dt in arrays],
                                 nsizes)
        fn = _kernels[key] = cache.compile_kernel(f"pool.{name}", disp, sig)
    return fn


def _avg_kernel(dtype):
    return _kernel("avg_pool", dtype, [(2, None), (2, None)] + [(2, np.int64)] * 3, nsizes=3)


def _fast(x):
    return isinstance(x, np.ndarray) and x.dtype in _KERNEL_DTYPES


def _c(x):
    """``x`` C-contiguous and writeable, the layout the kernel signatures name."""
    if x.flags.c_contiguous and x.flags.writeable:
        return x
    return np.array(x, order="C")


def _planes(x, nsp):
    """``x`` as ``(L, D, H, W)`` (unit dims in front of fewer spatial dims) and its leading
    (non-spatial) shape."""
    lead = x.shape[:x.ndim - nsp]
    return x.reshape((math.prod(lead),) + (1,) * (3 - nsp) + x.shape[x.ndim - nsp:]), lead


def _rows(x4):
    return x4.reshape(x4.shape[0], math.prod(x4.shape[1:]))


def _window_positions(xp, tables, steps, sizes):
    """Generic path: every window's flat input positions ``(OD, OH, OW, K)`` (a window's last
    element repeated up to the widest window) and which of them are its own."""
    pos, valid = 0, True
    for j, (table, step) in enumerate(zip(tables, steps, strict=True)):
        # a window wholly in the padding starts past the input: it reads the last element
        first, count = np.minimum(table[:, 0], sizes[j] - 1), table[:, 1]
        k = np.arange(max(int(count.max()), 1))
        p = first[:, None] + np.minimum(k, np.maximum(count - 1, 0)[:, None]) * step
        v = k < count[:, None]
        shape = [1] * 6
        shape[j], shape[3 + j] = p.shape
        pos = pos * sizes[j] + p.reshape(shape)
        valid = valid & v.reshape(shape)
    o = pos.shape[:3]
    pos = np.broadcast_to(pos, o + pos.shape[3:]).reshape(o + (-1,))
    valid = np.broadcast_to(valid, o + np.shape(valid)[3:]).reshape(o + (-1,))
    return xp.asarray(pos), xp.asarray(valid)


def _empty_window_index(tables, sizes):
    """Generic path: the ``(OD, OH, OW)`` index of each window in case it lies wholly in the
    padding: PyTorch's (``(d * H + h) * W + w`` of the window's first positions past the low
    padding), raised to the plane's size as the kernel does (``max(p0, plane)``), so that it
    is outside the plane also where PyTorch's, with ``w >= W``, names the next row's element."""
    pos = 0
    for j, table in enumerate(tables):
        shape = [1, 1, 1]
        shape[j] = len(table)
        pos = pos * sizes[j] + table[:, 0].reshape(shape)
    return np.maximum(pos, math.prod(sizes))


# --- max_pool --------------------------------------------------------------------------------


def _max_pool_abstract_eval(x, *, window, strides, padding, dilation, ceil_mode, output_size):
    _check_geometry("max_pool", x, window, strides, padding, dilation, output_size)
    if x.dtype.kind not in "iuf":
        raise DTypeError(f"max_pool: dtype {x.dtype} is not supported (real numbers only)")
    nsp = _nsp(window, output_size)
    out = _out_spatial(x.shape[x.ndim - nsp:], window, strides, padding, dilation, ceil_mode,
                       output_size)
    shape = x.shape[:x.ndim - nsp] + out
    return ShapedArray(shape, x.dtype), ShapedArray(shape, np.dtype(np.int64))


def _max_pool_impl(x, *, dilation, **geometry):
    nsp = _nsp(geometry["window"], geometry["output_size"])
    tables, steps, out_sp = _bounds(x.shape[x.ndim - nsp:], dilation=dilation, **geometry)
    x4, lead = _planes(x, nsp)
    if _fast(x) and nsp <= 2:  # the kernel pools two dims; 3-D takes the generic path
        shape = (x4.shape[0], math.prod(out_sp))
        out, idx = np.empty(shape, x.dtype), np.empty(shape, np.int64)
        _kernel("max_pool", x.dtype, [(2, None), (2, None)] + [(2, np.int64)] * 3, nsizes=3)(
            steps[1], steps[2], x4.shape[3], _c(_rows(x4)), out, idx, tables[1], tables[2])
        return out.reshape(lead + out_sp), idx.reshape(lead + out_sp)
    from ..devices import array_module

    xp = array_module(x)
    pos, valid = _window_positions(xp, tables, steps, x4.shape[1:])
    vals = xp.take(_rows(x4), pos, axis=1)  # (L, OD, OH, OW, K)
    k = xp.argmax(vals, axis=-1)
    if x.dtype.kind == "f":  # PyTorch's ``isnan(val)`` test picks a window's last NaN
        nan = xp.isnan(vals)
        last_nan = nan.shape[-1] - 1 - xp.argmax(nan[..., ::-1], axis=-1)
        k = xp.where(nan.any(axis=-1), last_nan, k)
    out = xp.take_along_axis(vals, k[..., None], axis=-1)[..., 0]
    idx = xp.take_along_axis(xp.broadcast_to(pos, vals.shape), k[..., None], axis=-1)[..., 0]
    empty = ~valid.any(axis=-1)
    if bool(empty.any()):
        low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        out = xp.where(empty, xp.asarray(low, x.dtype), out)
        idx = xp.where(empty, xp.asarray(_empty_window_index(tables, x4.shape[1:])), idx)
    return (xp.ascontiguousarray(out.reshape(lead + out_sp)),
            xp.ascontiguousarray(idx.reshape(lead + out_sp).astype(np.int64)))


def _max_pool_jvp(primals, tangents, **params):
    out, idx = max_pool_p.bind(*primals, **params)
    nsp = _nsp(params["window"], params["output_size"])
    return (out, idx), [pool_gather_p.bind(tangents[0], idx, nsp=nsp), Zero(_aval(idx))]


max_pool_p.impl = checked(_max_pool_abstract_eval, _max_pool_impl)
max_pool_p.abstract_eval = _max_pool_abstract_eval
max_pool_p.jvp = _max_pool_jvp
max_pool_p.batch = _fold_batch(max_pool_p)
max_pool_p.weak_type_rule = lambda weak_in, **_: [bool(weak_in[0]), False]
max_pool_p.call_kind = "impl"  # fused Numba loop


def max_pool(x, window, strides, padding, dilation=None, ceil_mode=False, output_size=None):
    """``(maxima, flat indices)`` of max pooling over the trailing spatial dims of ``x``
    (fixed ``window``/``strides``/``padding``/``dilation``, or adaptive ``output_size`` with
    the others ``None``); indices are positions in the flattened input plane, as PyTorch's.

    >>> from fnx.core.ops.pooling import max_pool
    >>> out, idx = max_pool(fnp.asarray([[1.0, 3.0, 2.0, 5.0]]), (2,), (2,), (0,))
    >>> out.tolist(), idx.tolist()
    ([[3.0, 5.0]], [[1, 3]])
    """
    return tuple(max_pool_p.bind(x, window=_ints(window), strides=_ints(strides),
                                 padding=_ints(padding), dilation=_ints(dilation),
                                 ceil_mode=bool(ceil_mode), output_size=_ints(output_size)))


# --- pool_gather / pool_scatter_add: the max pool's derivatives -----------------------------


def _check_index_pair(name, values, idx, lead_of_values):
    if idx.dtype != np.dtype(np.int64):
        raise DTypeError(f"{name}: indices must be int64, got {idx.dtype}")
    if values.dtype.kind != "f":
        raise DTypeError(f"{name}: dtype {values.dtype} is not supported (floating only)")
    if lead_of_values != idx.shape[:len(lead_of_values)]:
        raise ShapeError(f"{name}: values {values.shape} and indices {idx.shape} need the same "
                         f"leading (non-spatial) dims")


def _pool_gather_abstract_eval(t, idx, *, nsp):
    if not 1 <= nsp <= min(t.ndim, idx.ndim) or t.ndim != idx.ndim:
        raise ShapeError(f"pool_gather: values {t.shape} and indices {idx.shape} need one rank "
                         f"with {nsp} trailing spatial dims")
    _check_index_pair("pool_gather", t, idx, t.shape[:t.ndim - nsp])
    return ShapedArray(idx.shape, t.dtype)


def _pool_gather_impl(t, idx, *, nsp):
    lead = t.ndim - nsp
    n = math.prod(t.shape[:lead])
    t2 = t.reshape(n, math.prod(t.shape[lead:]))
    i2 = idx.reshape(n, math.prod(idx.shape[lead:]))
    if _fast(t):
        out = np.empty(i2.shape, t.dtype)
        _kernel("pool_gather", t.dtype, [(2, None), (2, np.int64), (2, None)])(
            _c(t2), _c(i2), out)
        return out.reshape(idx.shape)
    from ..devices import array_module

    xp = array_module(t)
    inside = (i2 >= 0) & (i2 < t2.shape[1])  # as the kernel: outside the plane reads 0
    out = xp.where(inside, xp.take_along_axis(t2, xp.where(inside, i2, 0), axis=1),
                   xp.zeros((), t.dtype))
    return xp.ascontiguousarray(out.reshape(idx.shape))


def _pool_gather_transpose(ct, t, idx, *, nsp):
    if is_undefined(idx):
        raise TypeError("pool_gather: the indices cannot be a linear input")
    if type(ct) is Zero:
        return [Zero(t.aval), None]
    in_spatial = t.aval.shape[t.aval.ndim - nsp:]
    return [pool_scatter_add_p.bind(ct, idx, in_spatial=in_spatial), None]


pool_gather_p.impl = checked(_pool_gather_abstract_eval, _pool_gather_impl)
pool_gather_p.abstract_eval = _pool_gather_abstract_eval
pool_gather_p.transpose = _pool_gather_transpose
_by_index_rules(pool_gather_p)


def _pool_scatter_add_abstract_eval(ct, idx, *, in_spatial):
    nsp = len(in_spatial)
    if not 1 <= nsp <= ct.ndim or ct.shape != idx.shape:
        raise ShapeError(f"pool_scatter_add: values {ct.shape} and indices {idx.shape} need "
                         f"one shape with {nsp} trailing spatial dims")
    _check_index_pair("pool_scatter_add", ct, idx, ct.shape[:ct.ndim - nsp])
    return ShapedArray(ct.shape[:ct.ndim - nsp] + tuple(in_spatial), ct.dtype)


def _pool_scatter_add_impl(ct, idx, *, in_spatial):
    lead = ct.shape[:ct.ndim - len(in_spatial)]
    n, size = math.prod(lead), math.prod(in_spatial)
    c2 = ct.reshape(n, math.prod(ct.shape[len(lead):]))
    i2 = idx.reshape(c2.shape)
    if _fast(ct):
        out = np.empty((n, size), ct.dtype)
        _kernel("pool_scatter_add", ct.dtype, [(2, None), (2, np.int64), (2, None)])(
            _c(c2), _c(i2), out)
        return out.reshape(lead + tuple(in_spatial))
    from ..devices import array_module

    xp = array_module(ct)
    inside = (i2 >= 0) & (i2 < size)  # as the kernel: indices outside the plane are dropped
    flat = xp.arange(n, dtype=np.int64)[:, None] * size + i2
    out = xp.bincount(flat[inside], weights=c2[inside], minlength=n * size)
    return xp.ascontiguousarray(out.astype(ct.dtype).reshape(lead + tuple(in_spatial)))


def _pool_scatter_add_transpose(ct, values, idx, *, in_spatial):
    if is_undefined(idx):
        raise TypeError("pool_scatter_add: the indices cannot be a linear input")
    if type(ct) is Zero:
        return [Zero(values.aval), None]
    return [pool_gather_p.bind(ct, idx, nsp=len(in_spatial)), None]


pool_scatter_add_p.impl = checked(_pool_scatter_add_abstract_eval, _pool_scatter_add_impl)
pool_scatter_add_p.abstract_eval = _pool_scatter_add_abstract_eval
pool_scatter_add_p.transpose = _pool_scatter_add_transpose
_by_index_rules(pool_scatter_add_p)


# --- avg_pool / avg_pool_transpose -----------------------------------------------------------


def _avg_check(name, x, window, strides, padding, output_size, divisor_override):
    _check_geometry(name, x, window, strides, padding, None, output_size)
    if x.dtype.kind != "f":
        raise DTypeError(f"{name}: dtype {x.dtype} is not supported (floating only; convert "
                         f"with .astype(float32))")
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{name}: divisor_override must be non-zero")


def _avg_pool_abstract_eval(x, *, window, strides, padding, ceil_mode, output_size,
                            count_include_pad, divisor_override):
    _avg_check("avg_pool", x, window, strides, padding, output_size, divisor_override)
    nsp = _nsp(window, output_size)
    out = _out_spatial(x.shape[x.ndim - nsp:], window, strides, padding, None, ceil_mode,
                       output_size)
    return ShapedArray(x.shape[:x.ndim - nsp] + out, x.dtype)


def _avg_tables(in_spatial, geometry, count_include_pad, divisor_override):
    tables, _, out_sp = _bounds(in_spatial, dilation=None, count_include_pad=count_include_pad,
                                **geometry)
    if divisor_override is not None:
        tables = [np.concatenate([t[:, :2], np.full((len(t), 1), d, np.int64)], 1)
                  for t, d in zip(tables, (1, 1, divisor_override))]
    return tables, out_sp


def _divisor(xp, tables, dtype):
    """Generic path: the divisor grid ``(OD, OH, OW)``, the product of the dims' factors."""
    div = np.ones((1, 1, 1))
    for j, table in enumerate(tables):
        shape = [1, 1, 1]
        shape[j] = len(table)
        div = div * table[:, 2].reshape(shape)
    return xp.asarray(div.astype(dtype))


def _avg_pool_impl(x, *, count_include_pad, divisor_override, **geometry):
    nsp = _nsp(geometry["window"], geometry["output_size"])
    tables, out_sp = _avg_tables(x.shape[x.ndim - nsp:], geometry, count_include_pad,
                                 divisor_override)
    x4, lead = _planes(x, nsp)
    if _fast(x):
        out = np.empty((x4.shape[0], math.prod(out_sp)), x.dtype)
        _avg_kernel(x.dtype)(x4.shape[2], x4.shape[3], 0, _c(_rows(x4)), out, *tables)
        return out.reshape(lead + out_sp)
    from ..devices import array_module

    xp = array_module(x)
    pos, valid = _window_positions(xp, tables, [1, 1, 1], x4.shape[1:])
    vals = xp.take(_rows(x4), pos, axis=1)
    total = xp.where(valid, vals, xp.zeros((), x.dtype)).sum(axis=-1)
    return xp.ascontiguousarray((total / _divisor(xp, tables, x.dtype)).reshape(lead + out_sp))


def _avg_pool_transpose_rule(ct, x, **params):
    if type(ct) is Zero:
        return [Zero(x.aval)]
    nsp = _nsp(params["window"], params["output_size"])
    return [avg_pool_transpose_p.bind(ct, in_spatial=x.aval.shape[x.aval.ndim - nsp:],
                                      **params)]


avg_pool_p.impl = checked(_avg_pool_abstract_eval, _avg_pool_impl)
avg_pool_p.abstract_eval = _avg_pool_abstract_eval
deflinear(avg_pool_p, _avg_pool_transpose_rule)
avg_pool_p.batch = _fold_batch(avg_pool_p)
avg_pool_p.call_kind = "impl"  # fused Numba loop


def _avg_pool_transpose_abstract_eval(ct, *, in_spatial, window, strides, padding, ceil_mode,
                                      output_size, count_include_pad, divisor_override):
    _avg_check("avg_pool_transpose", ct, window, strides, padding, output_size,
               divisor_override)
    nsp = _nsp(window, output_size)
    lead = ct.shape[:ct.ndim - nsp]
    want = _out_spatial(in_spatial, window, strides, padding, None, ceil_mode, output_size)
    if len(in_spatial) != nsp or ct.shape[ct.ndim - nsp:] != want:
        raise ShapeError(f"avg_pool_transpose: cotangent {ct.shape} does not match the pooled "
                         f"shape {lead + want} of an input with spatial dims {in_spatial}")
    return ShapedArray(lead + tuple(in_spatial), ct.dtype)


def _avg_pool_transpose_impl(ct, *, in_spatial, count_include_pad, divisor_override,
                             **geometry):
    nsp = len(in_spatial)
    tables, _ = _avg_tables(in_spatial, geometry, count_include_pad, divisor_override)
    c4, lead = _planes(ct, nsp)
    in4 = (1,) * (3 - nsp) + tuple(in_spatial)
    if _fast(ct):
        out = np.empty((c4.shape[0], math.prod(in4)), ct.dtype)
        _avg_kernel(ct.dtype)(in4[1], in4[2], 1, _c(_rows(c4)), out, *tables)
        return out.reshape(lead + tuple(in_spatial))
    from ..devices import array_module

    xp = array_module(ct)
    pos, valid = _window_positions(xp, tables, [1, 1, 1], in4)
    n, size = c4.shape[0], math.prod(in_spatial)
    share = xp.broadcast_to((c4 / _divisor(xp, tables, ct.dtype))[..., None],
                            (n,) + pos.shape)
    flat = xp.arange(n, dtype=np.int64).reshape((n, 1, 1, 1, 1)) * size + pos
    valid = xp.broadcast_to(valid, share.shape)
    out = xp.bincount(flat[valid], weights=share[valid], minlength=n * size)
    return xp.ascontiguousarray(out.astype(ct.dtype).reshape(lead + tuple(in_spatial)))


def _avg_pool_transpose_transpose(ct, y, *, in_spatial, **params):
    del in_spatial  # unused: the cotangent's shape is the input's
    if type(ct) is Zero:
        return [Zero(y.aval)]
    return [avg_pool_p.bind(ct, **params)]


avg_pool_transpose_p.impl = checked(_avg_pool_transpose_abstract_eval, _avg_pool_transpose_impl)
avg_pool_transpose_p.abstract_eval = _avg_pool_transpose_abstract_eval
deflinear(avg_pool_transpose_p, _avg_pool_transpose_transpose)
avg_pool_transpose_p.batch = _fold_batch(avg_pool_transpose_p)
avg_pool_transpose_p.call_kind = "impl"  # fused Numba loop


def avg_pool(x, window, strides, padding, ceil_mode=False, count_include_pad=True,
             divisor_override=None, output_size=None):
    """Average pooling over the trailing spatial dims of ``x`` (fixed ``window``/``strides``/
    ``padding``, or adaptive ``output_size`` with the others ``None``), PyTorch's divisor.

    >>> from fnx.core.ops.pooling import avg_pool
    >>> avg_pool(fnp.asarray([[1.0, 3.0, 2.0, 6.0]]), (2,), (2,), (0,)).tolist()
    [[2.0, 4.0]]
    """
    return avg_pool_p.bind(x, window=_ints(window), strides=_ints(strides),
                           padding=_ints(padding), ceil_mode=bool(ceil_mode),
                           output_size=_ints(output_size),
                           count_include_pad=bool(count_include_pad),
                           divisor_override=None if divisor_override is None
                           else int(divisor_override))
