"""Advanced indexing (NumPy semantics) and ``x.at[idx]`` updates, lowered to gather/scatter.

An index is first *expanded*: ``...`` becomes full slices, each ``None`` (and each 0-d boolean)
becomes a real size-1 dim of a reshaped ``x``, boolean masks become the integer arrays of their
``nonzero`` (which needs concrete masks: their number of True values is the result's shape),
and Python ints count as 0-d index arrays whenever an index array is present (NumPy's rule).
Then, with ``S`` the broadcast shape of the index arrays:

* ``x[idx]``: slice the other dims, move the indexed dims to the front, one ``gather`` gives
  ``S + rest``, and ``S`` moves back in place when the indexed dims were adjacent (else it stays
  first, as NumPy);
* ``x.at[idx].op(v)``: ``v`` is broadcast to the shape of ``x[idx]``, laid out as ``S + rest``
  and scattered with a full index per element. Basic unit-step indices lower to
  ``dynamic_update_slice`` instead.

Out-of-range concrete indices raise FnxIndexError, as NumPy. Traced ones (under jit also
concrete Arrays, ``_indexing._is_dynamic``) are clamped by gathers and dropped by scatters (as
JAX).
"""

import numpy as np

from ..core import dtypes
from ..core.errors import ConcretizationError, FnxError, FnxIndexError, ShapeError
from ..core.ops import elementwise as ew
from ..core.ops import indexing as ix
from ..core.ops import shape as sh
from ..core.tracing import get_aval
from ._core import broadcast_to_shape, is_array, to_array
from ._indexing import _is_dynamic

_I64 = np.dtype(np.int64)

MSG_BOOL_TRACED = (
    "boolean index of shape {shape}: the result's shape depends on how many entries are True, "
    "which is unknown while tracing (fnx.jit / fnx.vmap / make_ir). Fixes: use "
    "fnp.where(mask, x, other) to select elementwise, x.at[mask].set(scalar) to update, "
    "fnp.nonzero(mask, size=n) for a fixed number of indices, or compute the mask outside "
    "the transform."
)


def _concrete(x, shape_for_msg):
    """The concrete host value of a (possibly traced) boolean mask, or a ConcretizationError."""
    if isinstance(x, np.ndarray):
        return x
    try:
        return np.asarray(x.concrete_value())
    except (FnxError, AttributeError) as err:
        raise ConcretizationError(MSG_BOOL_TRACED.format(shape=shape_for_msg)) from err


def _classify(e):
    """One index entry -> ('none'|'ellipsis'|'slice'|'int'|'array'|'mask', value)."""
    if e is None:
        return "none", None
    if e is Ellipsis:
        return "ellipsis", None
    if isinstance(e, slice):
        return "slice", e
    if isinstance(e, (bool, np.bool_)):
        return "mask", np.asarray(e)
    if isinstance(e, (int, np.integer)):
        return "int", int(e)
    if is_array(e) or isinstance(e, np.ndarray):
        dt = e.dtype
        if dt == dtypes.bool_:
            return "mask", e
        if dt.kind in "iu":
            if e.ndim == 0 and not _is_dynamic(e):
                return "int", int(e)
            return "array", e
        raise FnxIndexError(f"arrays used as indices must be of integer or boolean type, got "
                            f"{dt}")
    if isinstance(e, (list, tuple)):
        buf = np.asarray(e)
        if buf.size == 0:
            buf = buf.astype(_I64)
        if buf.dtype == np.bool_:
            return "mask", buf
        if buf.dtype.kind not in "iu":
            raise FnxIndexError(f"index lists must hold integers or booleans, got {e!r}")
        return "array", buf
    raise FnxIndexError(
        f"only integers, slices (':'), ellipsis ('...'), None, and integer or boolean arrays "
        f"are valid indices, got {type(e).__name__} {e!r}"
    )


def expand_index(x, idx):
    """``(x2, entries)``: ``x`` reshaped with the size-1 dims of None / 0-d booleans, and one
    entry per dim of ``x2``: ('slice', slice) | ('int', int) | ('array', int array)."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    items = [_classify(e) for e in idx]
    if sum(1 for k, _ in items if k == "ellipsis") > 1:
        raise FnxIndexError("an index can only have a single ellipsis ('...')")
    used = sum(1 if k in ("slice", "int", "array") else (v.ndim if k == "mask" else 0)
               for k, v in items)
    if used > x.ndim:
        raise FnxIndexError(f"too many indices for an array of shape {x.shape}: it has "
                            f"{x.ndim} dims but the index uses {used}")
    shape2, entries, dim = [], [], 0
    if not any(k == "ellipsis" for k, _ in items):
        items.append(("ellipsis", None))
    for k, v in items:
        if k == "none":
            shape2.append(1)
            entries.append(("slice", slice(None)))
        elif k == "ellipsis":
            for _ in range(x.ndim - used):
                shape2.append(x.shape[dim])
                entries.append(("slice", slice(None)))
                dim += 1
        elif k == "mask" and v.ndim == 0:
            # x[True] is x[None] and x[False] its empty selection, as NumPy
            keep = bool(_concrete(v, ()))
            shape2.append(1)
            entries.append(("array", np.zeros((1 if keep else 0,), _I64)))
        elif k == "mask":
            want = x.shape[dim:dim + v.ndim]
            # an empty mask selects nothing whatever the dims (NumPy accepts it too)
            if tuple(v.shape) != want and int(np.prod(v.shape)) != 0:
                raise FnxIndexError(f"boolean index of shape {tuple(v.shape)} does not match the "
                                    f"indexed dims {want} of an array of shape {x.shape}")
            for nz in np.nonzero(_concrete(v, tuple(v.shape))):
                shape2.append(x.shape[dim])
                entries.append(("array", nz.astype(_I64)))
                dim += 1
        else:
            shape2.append(x.shape[dim])
            entries.append((k, v))
            dim += 1
    x2 = sh.reshape(x, tuple(shape2))
    return x2, entries


def _check_bounds(values, n, axis):
    """Raise FnxIndexError for a concrete index outside ``[-n, n)``."""
    if _is_dynamic(values):
        return
    host = np.asarray(values)
    if host.size and (host.min() < -n or host.max() >= n):
        bad = host[(host < -n) | (host >= n)].flat[0]
        raise FnxIndexError(f"index {int(bad)} is out of bounds for axis {axis} with size {n}")


def _normalized(e, n, axis):
    """An int64 index array with negative entries wrapped (i + n); ints become 0-d arrays."""
    kind, v = e
    if kind == "int":
        if not -n <= v < n:
            raise FnxIndexError(f"index {v} is out of bounds for axis {axis} with size {n}")
        return to_array(np.asarray(v % n if n else v, _I64))
    _check_bounds(v, n, axis)
    a = ew.convert_element_type(to_array(v), _I64)
    if get_aval(v).dtype.kind == "u":
        return a
    shape = a.shape
    neg = ew.lt_p.bind(a, ew.full(shape, 0, _I64))
    return ew.select_p.bind(neg, ew.add_p.bind(a, ew.full(shape, n, _I64)), a)


def _slice_triple(s, n):
    start, stop, step = s.indices(n)
    return start, step, len(range(start, stop, step))


def _advanced_dims(entries):
    has_array = any(k == "array" for k, _ in entries)
    return [d for d, (k, _) in enumerate(entries) if k == "array" or (has_array and k == "int")]


def _broadcast_index_shape(arrays):
    from ._core import broadcast_shapes

    shapes = [get_aval(a).shape for a in arrays]
    try:
        return broadcast_shapes("index", *shapes)
    except ShapeError:
        raise FnxIndexError(f"shape mismatch: indexing arrays could not be broadcast together "
                            f"with shapes {', '.join(map(str, shapes))}") from None


def _stack_last(cols, shape):
    cols = [sh.reshape(c, shape + (1,)) for c in cols]
    if not cols:
        return ew.full(shape + (0,), 0, _I64)
    return sh.concatenate_p.bind(*cols, dimension=len(shape)) if len(cols) > 1 else cols[0]


def _move_block(x, start, length, dest):
    """Move dims ``[start, start + length)`` of ``x`` to position ``dest``."""
    ndim = get_aval(x).ndim
    block = list(range(start, start + length))
    rest = [d for d in range(ndim) if d not in block]
    perm = rest[:dest] + block + rest[dest:]
    return sh.transpose(x, tuple(perm))


def advanced_getitem(x, idx):
    """``x[idx]`` for any index NumPy accepts (integer arrays, boolean masks, traced ints)."""
    x = to_array(x)
    x2, entries = expand_index(x, idx)
    adv = _advanced_dims(entries)
    shape2 = get_aval(x2).shape
    # 1. the basic part: static slices on every non-advanced dim
    basic = tuple(slice(None) if d in adv else v for d, (k, v) in enumerate(entries))
    from ._indexing import _getitem

    y = _getitem(x2, basic) if any(k == "slice" and v != slice(None) for k, v in entries) else x2
    if not adv:
        return y
    arrays = [_normalized(entries[d], shape2[d], d) for d in adv]
    s_shape = _broadcast_index_shape(arrays)
    if s_shape == ():
        # scalar (traced) indices only: a dynamic_slice, which jit and scan handle best
        starts = [ew.full((), 0, _I64)] * get_aval(y).ndim
        sizes = list(get_aval(y).shape)
        for d, a in zip(adv, arrays, strict=True):
            starts[d], sizes[d] = a, 1
        out = ix.dynamic_slice(y, starts, sizes)
        return sh.reshape(out, tuple(s for d, s in enumerate(sizes) if d not in adv))
    # 2. indexed dims first, one gather
    rest = [d for d in range(len(shape2)) if d not in adv]
    y = sh.transpose(y, tuple(adv + rest))
    index = _stack_last([broadcast_to_shape(a, s_shape) for a in arrays], s_shape)
    out = ix.gather_p.bind(y, index, oob="clip")
    # 3. adjacent advanced dims stay in place (NumPy)
    if adv == list(range(adv[0], adv[-1] + 1)) and adv[0] > 0:
        out = _move_block(out, 0, len(s_shape), adv[0])
    return out


# --- updates ----------------------------------------------------------------------------------


def _combine(mode, old, new):
    if mode == "add":
        return ew.add_p.bind(old, new)
    if mode == "mul":
        return ew.mul_p.bind(old, new)
    if mode == "min":
        return ew.min_p.bind(old, new)
    if mode == "max":
        return ew.max_p.bind(old, new)
    return new


def _prepare_values(x, values, shape, op):
    v = to_array(values) if is_array(values) else to_array(np.asarray(values))
    v = ew.convert_element_type(v, x.dtype)
    vshape = get_aval(v).shape
    # NumPy lets values carry extra leading size-1 dims
    while len(vshape) > len(shape) and vshape[0] == 1:
        v = sh.reshape(v, vshape[1:])
        vshape = vshape[1:]
    from ._core import broadcast_shapes

    try:
        ok = len(vshape) <= len(shape) and broadcast_shapes(op, vshape, shape) == shape
    except ShapeError:
        ok = False
    if not ok:
        raise ShapeError(f"{op}: cannot broadcast values of shape {vshape} to the indexed shape "
                         f"{shape}")
    return broadcast_to_shape(v, shape)


def _mask_update(x, mask, values, mode):
    """``x.at[mask].op(scalar)`` as an elementwise select: works with traced masks."""
    m = to_array(mask)
    if m.shape != x.shape[:m.ndim]:
        raise FnxIndexError(f"boolean index of shape {m.shape} does not match the indexed dims "
                            f"{x.shape[:m.ndim]} of an array of shape {x.shape}")
    m = sh.broadcast_in_dim(m, x.shape, tuple(range(m.ndim)))
    v = _prepare_values(x, values, x.shape, f"at[].{mode}")
    return ew.select_p.bind(m, _combine(mode, x, v), x)


def scatter_update(x, idx, values, mode):
    """``x.at[idx].set/add/mul/min/max(values)``: a new array, ``x`` is unchanged.

    >>> x = fnx.numpy.zeros(3); x.at[fnx.numpy.asarray([0, 0, 2])].add(1.0).tolist()
    [2.0, 0.0, 1.0]
    """
    if mode not in ix.SCATTERS:
        raise ValueError(f"at[]: unknown update {mode!r}")
    x = to_array(x)
    op = f"at[].{mode}"
    if x.dtype == dtypes.bool_ and mode in ("add", "mul"):
        raise TypeError(f"{op}: not supported for bool arrays; use .set, .max (or) or .min (and)")
    mask = idx[0] if isinstance(idx, tuple) and len(idx) == 1 else idx
    if (is_array(mask) or isinstance(mask, np.ndarray)) and mask.dtype == dtypes.bool_ and \
            mask.ndim > 0 and np.ndim(values) == 0 and not isinstance(values, (list, tuple)):
        return _mask_update(x, mask, values, mode)
    x2, entries = expand_index(x, idx)
    shape2 = get_aval(x2).shape
    adv = _advanced_dims(entries)
    if not adv:
        out = _basic_update(x2, entries, values, mode, op)
        if out is not None:
            return sh.reshape(out, x.shape)
        # strided basic index: ints act as 0-d index arrays (S = ()), slices as iotas
        adv = [d for d, (k, _) in enumerate(entries) if k == "int"]
    arrays = [_normalized(entries[d], shape2[d], d) for d in adv]
    s_shape = _broadcast_index_shape(arrays) if arrays else ()
    rest = [d for d in range(len(shape2)) if d not in adv]
    slices = {d: _slice_triple(entries[d][1], shape2[d]) for d in rest}
    lengths = tuple(slices[d][2] for d in rest)
    contiguous = bool(adv) and adv == list(range(adv[0], adv[-1] + 1))
    p = adv[0] if contiguous else 0
    result_shape = lengths[:p] + s_shape + lengths[p:]
    v = _prepare_values(x2, values, result_shape, op)
    if p:
        v = _move_block(v, p, len(s_shape), 0)
    canon = s_shape + lengths
    ns = len(s_shape)
    cols = []
    for d in range(len(shape2)):
        if d in adv:
            a = arrays[adv.index(d)]
            cols.append(sh.broadcast_in_dim(broadcast_to_shape(a, s_shape), canon,
                                            tuple(range(ns))))
        else:
            start, step, _ = slices[d]
            pos = ns + rest.index(d)
            col = ew.mul_p.bind(sh.iota_p.bind(dtype=_I64, shape=canon, dimension=pos),
                                ew.full(canon, step, _I64))
            cols.append(ew.add_p.bind(col, ew.full(canon, start, _I64)))
    index = _stack_last(cols, canon)
    out = ix.scatter(x2, index, v, mode=mode, oob="drop")
    return sh.reshape(out, x.shape)


def _basic_update(x2, entries, values, mode, op):
    """Unit-step basic indices: a dynamic_slice / dynamic_update_slice pair (None otherwise)."""
    starts, box, result = [], [], []
    shape2 = get_aval(x2).shape
    for d, (k, v) in enumerate(entries):
        n = shape2[d]
        if k == "int":
            if not -n <= v < n:
                raise FnxIndexError(f"index {v} is out of bounds for axis {d} with size {n}")
            starts.append(v % n)
            box.append(1)
        else:
            start, step, length = _slice_triple(v, n)
            if step != 1 and length > 1:
                return None
            starts.append(start if length else 0)
            box.append(length)
            result.append(length)
    vals = _prepare_values(x2, values, tuple(result), op)
    vals = sh.reshape(vals, tuple(box))
    starts = [ew.full((), s, _I64) for s in starts]
    if mode != "set":
        old = ix.dynamic_slice(x2, starts, box)
        vals = _combine(mode, old, vals)
    return ix.dynamic_update_slice(x2, vals, starts)

