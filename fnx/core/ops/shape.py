"""Shape primitives: broadcast_in_dim, reshape, transpose, squeeze, concatenate, pad, slice,
split, rev, iota. All are linear; their transposes are the shape ops that undo them."""

import weakref

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import is_undefined
from ..errors import AxisError, DTypeError, ShapeError, normalize_axis
from ..primitive import Primitive
from ..tracing import get_aval
from .family import deflinear


def _layout(name, impl, abstract_eval, batch, transpose, call_kind="view"):
    """A layout primitive; ``call_kind``: 'view' when its impl returns a view of the input
    (jit's orchestrator then copies nothing), 'impl' when it builds a new array."""
    prim = Primitive(name)
    prim.impl = impl
    prim.abstract_eval = abstract_eval
    prim.batch = batch
    prim.fusion_kind = "layout"
    prim.call_kind = call_kind
    deflinear(prim, transpose)
    return prim


# --- broadcast_in_dim -----------------------------------------------------------------------


def _broadcast_in_dim_abstract_eval(x, *, shape, broadcast_dimensions):
    ok = len(broadcast_dimensions) == x.ndim and all(
        0 <= d < len(shape) and (x.shape[i] == 1 or x.shape[i] == shape[d])
        for i, d in enumerate(broadcast_dimensions)
    ) and list(broadcast_dimensions) == sorted(set(broadcast_dimensions))
    if not ok:
        raise ShapeError(
            f"broadcast_in_dim: cannot broadcast shape {x.shape} to {shape} with "
            f"broadcast_dimensions {broadcast_dimensions}"
        )
    return ShapedArray(shape, x.dtype)


def _broadcast_in_dim_impl(x, *, shape, broadcast_dimensions):
    expanded = [1] * len(shape)
    for i, d in enumerate(broadcast_dimensions):
        expanded[d] = x.shape[i]
    return np.broadcast_to(x.reshape(expanded), shape)


def _broadcast_in_dim_batch(axis_size, args, dims, *, shape, broadcast_dimensions):
    (x,), (d,) = args, dims
    x = move_axis(x, d, 0)
    new_shape = (axis_size,) + shape
    new_dims = (0,) + tuple(b + 1 for b in broadcast_dimensions)
    return broadcast_in_dim_p.bind(x, shape=new_shape, broadcast_dimensions=new_dims), 0


def _broadcast_in_dim_transpose(ct, x, *, shape, broadcast_dimensions):
    in_shape = x.aval.shape
    # sum over the new dims and over the dims that were size 1 and got expanded
    new_axes = tuple(d for d in range(len(shape)) if d not in broadcast_dimensions)
    expanded = tuple(d for i, d in enumerate(broadcast_dimensions)
                     if in_shape[i] == 1 and shape[d] != 1)
    from .reduction import reduce_sum_p

    axes = tuple(sorted(new_axes + expanded))
    out = reduce_sum_p.bind(ct, axes=axes) if axes else ct
    return [reshape(out, in_shape)]


broadcast_in_dim_p = _layout("broadcast_in_dim", _broadcast_in_dim_impl,
                             _broadcast_in_dim_abstract_eval, _broadcast_in_dim_batch,
                             _broadcast_in_dim_transpose)


def broadcast_in_dim(x, shape, broadcast_dimensions):
    """Broadcast ``x`` to ``shape``, operand axis ``i`` becoming output axis
    ``broadcast_dimensions[i]`` (as ``jax.lax.broadcast_in_dim``).

    >>> fnx.lax.broadcast_in_dim(fnp.asarray([1, 2]), (3, 2), (1,)).tolist()
    [[1, 2], [1, 2], [1, 2]]
    """
    if get_aval(x).shape == tuple(shape) and tuple(broadcast_dimensions) == tuple(range(len(shape))):
        return x
    return broadcast_in_dim_p.bind(x, shape=tuple(shape),
                                   broadcast_dimensions=tuple(broadcast_dimensions))


def broadcast_batched(x, axis_size):
    """Give an unbatched value a leading batch dimension of ``axis_size``."""
    shape = get_aval(x).shape
    return broadcast_in_dim_p.bind(x, shape=(axis_size,) + shape,
                                   broadcast_dimensions=tuple(range(1, len(shape) + 1)))


# --- reshape --------------------------------------------------------------------------------


def _reshape_abstract_eval(x, *, new_sizes):
    if int(np.prod(new_sizes, dtype=np.int64)) != x.size or any(s < 0 for s in new_sizes):
        raise ShapeError(f"reshape: cannot reshape an array of shape {x.shape} "
                         f"(size {x.size}) into shape {new_sizes}")
    return ShapedArray(new_sizes, x.dtype)


def _reshape_batch(axis_size, args, dims, *, new_sizes):
    x = move_axis(args[0], dims[0], 0)
    return reshape_p.bind(x, new_sizes=(axis_size,) + new_sizes), 0


reshape_p = _layout(
    "reshape",
    lambda x, *, new_sizes: x.reshape(new_sizes),
    _reshape_abstract_eval,
    _reshape_batch,
    lambda ct, x, *, new_sizes: [reshape_p.bind(ct, new_sizes=x.aval.shape)],
)


def reshape(x, shape):
    """``x`` with a new ``shape`` of the same size (row-major; no -1 entries, as
    ``jax.lax.reshape``).

    >>> fnx.lax.reshape(fnp.arange(6), (2, 3)).tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    if get_aval(x).shape == tuple(shape):
        return x
    return reshape_p.bind(x, new_sizes=tuple(int(s) for s in shape))


# --- transpose ----------------------------------------------------------------------------


def _transpose_abstract_eval(x, *, permutation):
    if sorted(permutation) != list(range(x.ndim)):
        raise AxisError(f"transpose: permutation {permutation} is not a permutation of the "
                        f"{x.ndim} axes of an array of shape {x.shape}")
    return ShapedArray(tuple(x.shape[p] for p in permutation), x.dtype)


def _transpose_batch(axis_size, args, dims, *, permutation):
    x, d = args[0], dims[0]
    x = move_axis(x, d, 0)
    return transpose_p.bind(x, permutation=(0,) + tuple(p + 1 for p in permutation)), 0


transpose_p = _layout(
    "transpose",
    lambda x, *, permutation: np.transpose(x, permutation),
    _transpose_abstract_eval,
    _transpose_batch,
    lambda ct, x, *, permutation: [
        transpose_p.bind(ct, permutation=tuple(np.argsort(permutation).tolist()))],
)


def transpose(x, permutation):
    """Permute the axes of ``x``: output axis ``i`` is input axis ``permutation[i]``.

    >>> fnx.lax.transpose(fnp.ones((2, 3, 4)), (2, 0, 1)).shape
    (4, 2, 3)
    """
    permutation = tuple(int(p) for p in permutation)
    if permutation == tuple(range(len(permutation))):
        return x
    return transpose_p.bind(x, permutation=permutation)


def move_axis(x, src, dst):
    """Move axis ``src`` of ``x`` to position ``dst`` (used by batching rules)."""
    ndim = get_aval(x).ndim
    src, dst = src % ndim, dst % ndim
    if src == dst:
        return x
    perm = [i for i in range(ndim) if i != src]
    perm.insert(dst, src)
    return transpose_p.bind(x, permutation=tuple(perm))


# --- squeeze -------------------------------------------------------------------------------


def _squeeze_abstract_eval(x, *, dimensions):
    for d in dimensions:
        if not 0 <= d < x.ndim or x.shape[d] != 1:
            raise ShapeError(f"squeeze: cannot squeeze axis {d} of an array of shape {x.shape}"
                             f" (only axes of size 1 can be squeezed)")
    return ShapedArray(tuple(s for i, s in enumerate(x.shape) if i not in dimensions), x.dtype)


def _squeeze_batch(axis_size, args, dims, *, dimensions):
    x = move_axis(args[0], dims[0], 0)
    return squeeze_p.bind(x, dimensions=tuple(d + 1 for d in dimensions)), 0


squeeze_p = _layout(
    "squeeze",
    lambda x, *, dimensions: np.squeeze(x, dimensions) if dimensions else x,
    _squeeze_abstract_eval,
    _squeeze_batch,
    lambda ct, x, *, dimensions: [reshape(ct, x.aval.shape)],
)

# --- concatenate -----------------------------------------------------------------------------


def _concatenate_abstract_eval(*xs, dimension, join_views=False):
    if not xs:
        raise ValueError("concatenate: needs at least one array")
    first = xs[0]
    if not 0 <= dimension < first.ndim:
        raise AxisError(f"concatenate: axis {dimension} out of range for rank {first.ndim}")
    for x in xs[1:]:
        if x.ndim != first.ndim or any(
            a != b for i, (a, b) in enumerate(zip(x.shape, first.shape)) if i != dimension
        ):
            shapes = ", ".join(str(y.shape) for y in xs)
            raise ShapeError(f"concatenate: shapes {shapes} differ outside axis {dimension}")
        if x.dtype != first.dtype:
            raise DTypeError(f"concatenate: operands must share a dtype, got "
                             f"{[str(y.dtype) for y in xs]}")
    size = sum(x.shape[dimension] for x in xs)
    shape = list(first.shape)
    shape[dimension] = size
    return ShapedArray(shape, first.dtype)


def _concatenate_batch(axis_size, args, dims, *, dimension, join_views=False):
    aligned = [broadcast_batched(x, axis_size) if d is None else move_axis(x, d, 0)
               for x, d in zip(args, dims, strict=True)]
    return concatenate_p.bind(*aligned, dimension=dimension + 1, join_views=join_views), 0


def _concatenate_transpose(ct, *xs, dimension, join_views=False):
    out, start = [], 0
    for x in xs:
        aval = x.aval if is_undefined(x) else None
        size = (x.aval.shape if is_undefined(x) else x.shape)[dimension]
        if aval is not None:
            starts = [0] * ct.ndim
            limits = list(ct.shape)
            starts[dimension], limits[dimension] = start, start + size
            out.append(slice_p.bind(ct, start_indices=tuple(starts), limit_indices=tuple(limits),
                                    strides=None))
        else:
            out.append(None)
        start += size
    return out


# Buffers an impl allocated and handed out in pieces (views, one per output): the concatenate
# that ``split``'s transpose binds (``join_views=True``) joins adjacent pieces of one back
# into a view instead of copying. Only that one: a user's concatenate (``fnx.cat`` of the
# gradients, say) always makes a new array, as torch.cat does; and only buffers fnx made.
_joinable = weakref.WeakValueDictionary()  # id(buffer) -> buffer (arrays are unhashable)


def joinable(buf):
    """Register ``buf`` (its memory), a new buffer an impl returns in pieces (views), so that
    the split transpose's concatenate of pieces lying side by side in it is a view, not a
    copy; returns ``buf``. The attention backward's dq, dk, dv of a packed projection use it:
    the split's transpose then costs nothing."""
    owner = buffer_owner(buf)
    _joinable[id(owner)] = owner
    return buf


def buffer_owner(x):
    """The array that owns ``x``'s memory (``x`` itself, or the end of its ``base`` chain)."""
    while isinstance(x.base, np.ndarray):
        x = x.base
    return x


def buffer_address(x):
    """The address of ``x``'s first element."""
    return x.__array_interface__["data"][0]


def _joined(xs, axis):
    """``xs`` as one view when they are pieces of one ``joinable`` buffer lying side by side
    along ``axis`` in order (same strides, each starting where the previous ends), else
    None."""
    first = xs[0]
    if type(first) is not np.ndarray or len(xs) < 2:
        return None
    owner = buffer_owner(first)
    if _joinable.get(id(owner)) is not owner:
        return None
    at = buffer_address(first)
    for x in xs:
        if (type(x) is not np.ndarray or x.strides != first.strides or x.dtype != first.dtype
                or buffer_address(x) != at or buffer_owner(x) is not owner
                or x.shape[:axis] != first.shape[:axis]
                or x.shape[axis + 1:] != first.shape[axis + 1:]):
            return None
        at += x.shape[axis] * x.strides[axis]
    shape = list(first.shape)
    shape[axis] = sum(x.shape[axis] for x in xs)
    return np.ndarray(shape, first.dtype, buffer=owner,
                      offset=buffer_address(first) - buffer_address(owner),
                      strides=first.strides)


def _concatenate_impl(*xs, dimension, join_views=False):
    joined = _joined(xs, dimension) if join_views else None
    return np.concatenate(xs, axis=dimension) if joined is None else joined


concatenate_p = _layout(
    "concatenate",
    _concatenate_impl,
    _concatenate_abstract_eval,
    _concatenate_batch,
    _concatenate_transpose,
    call_kind="impl",
)

# --- pad -----------------------------------------------------------------------------------


def _pad_abstract_eval(x, padding_value, *, padding_config):
    if len(padding_config) != x.ndim:
        raise ShapeError(f"pad: padding_config has {len(padding_config)} entries for an array "
                         f"of rank {x.ndim}")
    if padding_value.shape != () or padding_value.dtype != x.dtype:
        raise DTypeError(f"pad: padding value must be a scalar of dtype {x.dtype}")
    shape = []
    for s, (lo, hi, interior) in zip(x.shape, padding_config, strict=True):
        n = lo + hi + s + max(s - 1, 0) * interior
        if n < 0 or interior < 0:
            raise ShapeError(f"pad: padding {padding_config} gives a negative size for {x.shape}")
        shape.append(n)
    return ShapedArray(shape, x.dtype)


def _pad_impl(x, padding_value, *, padding_config):
    shape = _pad_abstract_eval(ShapedArray(x.shape, x.dtype),
                               ShapedArray((), x.dtype), padding_config=padding_config).shape
    out = np.full(shape, padding_value, dtype=x.dtype)
    src, dst = [], []
    for s, n, (lo, hi, interior) in zip(x.shape, shape, padding_config, strict=True):
        del hi  # unused: n is the output size
        step = interior + 1
        # x's element i lands at lo + i * step: keep the run of i that lands in [0, n)
        # (negative padding clips), as strided slices (fancy indexing was 3-7x slower)
        first = 0 if lo >= 0 else -(lo // step)
        stop = min(s, (n - 1 - lo) // step + 1) if n > 0 else 0
        if stop <= first:
            return out
        src.append(slice(first, stop))
        dst.append(slice(lo + first * step, lo + (stop - 1) * step + 1, step))
    out[tuple(dst)] = x[tuple(src)]
    return out


def _pad_batch(axis_size, args, dims, *, padding_config):
    x, pv = args
    dx, dp = dims
    x = move_axis(x, dx, 0) if dx is not None else broadcast_batched(x, axis_size)
    config = ((0, 0, 0),) + padding_config
    if dp is None:
        return pad_p.bind(x, pv, padding_config=config), 0
    # Batched padding value (one per example): pad with zero, pad a mask of the original
    # positions the same way, then select the per-example value where the mask is False.
    from .elementwise import full, select_p

    aval = get_aval(x)
    padded = pad_p.bind(x, full((), 0, aval.dtype), padding_config=config)
    mask = pad_p.bind(full(aval.shape, True, np.bool_), full((), False, np.bool_),
                      padding_config=config)
    shape = get_aval(padded).shape
    pv = broadcast_in_dim_p.bind(pv, shape=shape, broadcast_dimensions=(0,))
    return select_p.bind(mask, padded, pv), 0


def _pad_transpose(ct, x, padding_value, *, padding_config):
    # un-pad: slice away the edges (negative padding becomes zero-filled pad), skip interiors
    lo_cfg = tuple((-lo, -hi, 0) for lo, hi, _ in padding_config)
    from .elementwise import full

    unpadded = pad_p.bind(ct, full((), 0, ct.dtype), padding_config=lo_cfg)
    strides = tuple(interior + 1 for _, _, interior in padding_config)
    t = slice_p.bind(unpadded, start_indices=(0,) * ct.ndim, limit_indices=unpadded.shape,
                     strides=strides)
    pv_ct = None
    if is_undefined(padding_value):
        from .reduction import reduce_sum_p

        total = reduce_sum_p.bind(ct, axes=tuple(range(ct.ndim)))
        pv_ct = total - reduce_sum_p.bind(t, axes=tuple(range(ct.ndim)))
    return [t if is_undefined(x) else None, pv_ct]


pad_p = _layout("pad", _pad_impl, _pad_abstract_eval, _pad_batch, _pad_transpose,
                call_kind="impl")

# --- slice (static) ------------------------------------------------------------------------


def _slice_abstract_eval(x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * x.ndim
    if not (len(start_indices) == len(limit_indices) == len(strides) == x.ndim) or any(
        not (0 <= s <= lim <= n) or st < 1
        for s, lim, n, st in zip(start_indices, limit_indices, x.shape, strides)
    ):
        raise ShapeError(f"slice: start {start_indices}, limit {limit_indices}, strides "
                         f"{strides} do not fit an array of shape {x.shape}")
    shape = tuple((lim - s + st - 1) // st if lim > s else 0
                  for s, lim, st in zip(start_indices, limit_indices, strides))
    return ShapedArray(shape, x.dtype)


def _slice_impl(x, *, start_indices, limit_indices, strides):
    strides = strides or (1,) * x.ndim
    return x[tuple(slice(s, lim, st) for s, lim, st in zip(start_indices, limit_indices, strides))]


def _slice_batch(axis_size, args, dims, *, start_indices, limit_indices, strides):
    x = move_axis(args[0], dims[0], 0)
    return slice_p.bind(x, start_indices=(0,) + start_indices,
                        limit_indices=(axis_size,) + limit_indices,
                        strides=None if strides is None else (1,) + strides), 0


def _slice_transpose(ct, x, *, start_indices, limit_indices, strides):
    shape = x.aval.shape
    strides = strides or (1,) * len(shape)
    config = []
    for s, lim, st, n, m in zip(start_indices, limit_indices, strides, shape, ct.shape):
        real_end = s + (m - 1) * st + 1 if m else s
        config.append((s, n - real_end, st - 1))
    from .elementwise import full

    return [pad_p.bind(ct, full((), 0, ct.dtype), padding_config=tuple(config))]


slice_p = _layout("slice", _slice_impl, _slice_abstract_eval, _slice_batch, _slice_transpose)

# --- split -----------------------------------------------------------------------------------
# One primitive for the pieces of a split (as lax.split), so that the reverse pass is one
# concatenate of the pieces' cotangents; as separate slices it was one zero-padded copy of
# the whole array per piece, added up (a packed QKV projection's backward: 3 pads + 2 adds).


def _check_split(shape, sizes, axis):
    if not 0 <= axis < len(shape):
        raise AxisError(f"split: axis {axis} out of range for an array of rank {len(shape)}")
    if any(s < 0 for s in sizes) or sum(sizes) != shape[axis]:
        raise ShapeError(f"split: sizes {sizes} must be non-negative and add up to the size "
                         f"{shape[axis]} of axis {axis} (shape {shape})")


def _split_abstract_eval(x, *, sizes, axis):
    _check_split(x.shape, sizes, axis)
    shape = list(x.shape)
    return [ShapedArray(shape[:axis] + [s] + shape[axis + 1:], x.dtype) for s in sizes]


def _split_impl(x, *, sizes, axis):
    # eagerly only impl runs, and slicing accepts what the rule rejects (a negative size cut
    # from the end, a negative axis counted from the front by ``lead``): check first
    _check_split(x.shape, sizes, axis)
    lead, out, start = (slice(None),) * axis, [], 0
    for s in sizes:  # basic indexing: views, for NumPy and CuPy buffers alike
        out.append(x[lead + (slice(start, start + s),)])
        start += s
    return out


def _split_jvp(primals, tangents, *, sizes, axis):
    from ..ad_util import Zero

    outs = split_p.bind(primals[0], sizes=sizes, axis=axis)
    if type(tangents[0]) is Zero:
        return outs, [Zero(get_aval(o)) for o in outs]
    return outs, split_p.bind(tangents[0], sizes=sizes, axis=axis)


def _split_batch(axis_size, args, dims, *, sizes, axis):
    d = dims[0]
    outs = split_p.bind(args[0], sizes=sizes, axis=axis + (axis >= d))
    return outs, [d] * len(outs)


split_p = Primitive("split", multiple_results=True)
split_p.impl = _split_impl
split_p.abstract_eval = _split_abstract_eval
split_p.jvp = _split_jvp
split_p.linear = True
split_p.transpose = lambda cts, x, *, sizes, axis: [concatenate_p.bind(*cts, dimension=axis,
                                                                       join_views=True)]
split_p.batch = _split_batch
split_p.call_kind = "view"


def split(x, sizes, axis):
    """The pieces of ``x`` along ``axis`` with the given ``sizes`` (which add up to its size
    there); differentiable, and its transpose is one ``concatenate``.

    >>> [p.shape for p in fnx.core.ops.shape.split(fnx.numpy.zeros((2, 5)), (2, 3), 1)]
    [(2, 2), (2, 3)]
    """
    return split_p.bind(x, sizes=tuple(int(s) for s in sizes),
                        axis=normalize_axis(axis, get_aval(x).ndim, "split"))


# --- rev -------------------------------------------------------------------------------------


def _rev_abstract_eval(x, *, dimensions):
    if any(not 0 <= d < x.ndim for d in dimensions):
        raise AxisError(f"rev: dimensions {dimensions} out of range for rank {x.ndim}")
    return x


def _rev_batch(axis_size, args, dims, *, dimensions):
    d = dims[0]
    return rev_p.bind(args[0], dimensions=tuple(a + (a >= d) for a in dimensions)), d


rev_p = _layout(
    "rev",
    lambda x, *, dimensions: np.flip(x, dimensions) if dimensions else x,
    _rev_abstract_eval,
    _rev_batch,
    lambda ct, x, *, dimensions: [rev_p.bind(ct, dimensions=dimensions)],
)

# --- iota ----------------------------------------------------------------------------------


def _iota_impl(*, dtype, shape, dimension):
    r = np.arange(shape[dimension], dtype=dtype)
    view = [1] * len(shape)
    view[dimension] = shape[dimension]
    return np.broadcast_to(r.reshape(view), shape)


iota_p = Primitive("iota")
iota_p.impl = _iota_impl
iota_p.abstract_eval = lambda *, dtype, shape, dimension: ShapedArray(shape, dtype)
iota_p.batch = None  # iota has no operands, so it is never batched
iota_p.differentiable = False
iota_p.fusion_kind = "elementwise"
iota_p.scalar_expr = "index({dimension})"


def iota(dtype, size):
    """``[0, 1, ..., size - 1]`` in ``dtype`` (as ``jax.lax.iota``).

    >>> fnx.lax.iota(fnp.int32, 4).tolist()
    [0, 1, 2, 3]
    """
    return iota_p.bind(dtype=np.dtype(dtype), shape=(int(size),), dimension=0)
