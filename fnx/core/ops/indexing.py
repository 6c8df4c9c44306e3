"""Indexing primitives: gather, the scatter family, dynamic_slice, dynamic_update_slice.

``gather(operand, indices)``: ``indices`` is an integer array of shape ``batch + (k,)``; each of
its rows indexes the first ``k`` dims of ``operand``, and the result has shape
``batch + operand.shape[k:]``. ``fnx.numpy`` transposes the indexed dims to the front and
normalizes negative indices first, so the primitive stays this simple.

``scatter*(operand, indices, updates)`` writes ``updates`` (shape ``batch + operand.shape[k:]``)
to those rows: scatter (set), scatter_add, scatter_mul, scatter_min, scatter_max.

Out-of-bounds rows follow the ``oob`` param:

* ``oob="clip"``: every index component is clamped into range (gather's default, as JAX);
* ``oob="drop"``: a gather row reads zeros, a scatter row is skipped (the default of
  ``x.at[idx]`` updates, as JAX).

The pairs (gather clip, scatter_add clip) and (gather drop, scatter_add drop) are each other's
transposes, which is why both primitives carry the param.

``dynamic_slice`` / ``dynamic_update_slice`` take scalar integer start indices as operands and
clamp them so the window fits (as JAX); they are what ``x[i]`` with a traced ``i`` and scan
carries lower to. Their batch rules fall back to gather/scatter when the starts are batched.
"""

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero, add_tangents, instantiate, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .shape import broadcast_batched, iota_p, move_axis

OOB_MODES = ("clip", "drop")


def checked(abstract_eval, impl):
    """``impl`` preceded by the shape rule: eager ``bind`` goes straight to ``impl``, and NumPy
    would silently broadcast or promote inputs these primitives must reject."""

    def run(*bufs, **params):
        abstract_eval(*[ShapedArray(b.shape, b.dtype) for b in bufs], **params)
        return impl(*bufs, **params)

    run.__name__ = getattr(impl, "__name__", "impl")
    return run


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


def _check_oob(name, oob):
    if oob not in OOB_MODES:
        raise ValueError(f"{name}: oob must be one of {OOB_MODES}, got {oob!r}")


def _check_indices(name, operand, indices):
    if indices.dtype.kind not in "iu":
        raise DTypeError(f"{name}: indices must have an integer dtype, got {indices.dtype}")
    if indices.ndim < 1:
        raise ShapeError(f"{name}: indices must have at least one dim (the index vector), got "
                         f"shape {indices.shape}; use indices[..., None] for one indexed dim")
    k = indices.shape[-1]
    if k > operand.ndim:
        raise ShapeError(f"{name}: index vectors of length {k} cannot index an operand of "
                         f"rank {operand.ndim} (shape {operand.shape})")
    return k


def _prepend_iota(indices, axis_size):
    """Add a leading column ``b`` to every index vector of the batch-``b`` slice: the gather /
    scatter then also indexes the (leading) batch dim of the operand."""
    from .shape import concatenate_p

    aval = _aval(indices)
    col = iota_p.bind(dtype=aval.dtype, shape=aval.shape[:-1] + (1,), dimension=0)
    del axis_size  # unused: the indices already carry the batch dim at 0
    return concatenate_p.bind(col, indices, dimension=aval.ndim - 1)


def _rows(xp, indices, shape, oob):
    """Flattened index rows and (for 'drop') the mask of in-range rows."""
    k = indices.shape[-1]
    idx = indices.reshape(-1, k).astype(np.int64, copy=False)
    bounds = xp.asarray(np.array(shape[:k], dtype=np.int64))
    if oob == "clip":
        return xp.clip(idx, 0, xp.maximum(bounds - 1, 0)), None
    valid = xp.all((idx >= 0) & (idx < bounds), axis=1)
    return xp.where(valid[:, None], idx, 0), valid


# --- gather ------------------------------------------------------------------------------------


def _gather_abstract_eval(operand, indices, *, oob):
    _check_oob("gather", oob)
    k = _check_indices("gather", operand, indices)
    return ShapedArray(indices.shape[:-1] + operand.shape[k:], operand.dtype)


def _gather_impl(operand, indices, *, oob):
    from ..devices import array_module

    xp = array_module(operand)
    k = indices.shape[-1]
    batch, rest = indices.shape[:-1], operand.shape[k:]
    n = int(np.prod(batch, dtype=np.int64))
    if n == 0 or any(s == 0 for s in operand.shape[:k]):
        # nothing to read: an empty batch, or every row is out of range of an empty dim
        return xp.zeros(batch + rest, operand.dtype)
    idx, valid = _rows(xp, indices, operand.shape, oob)
    out = operand[tuple(idx.T)]
    if valid is not None:
        out = xp.where(valid.reshape((-1,) + (1,) * len(rest)), out, xp.zeros((), operand.dtype))
    return xp.ascontiguousarray(out.reshape(batch + rest))


def _gather_jvp(primals, tangents, *, oob):
    operand, indices = primals
    t = tangents[0]
    ans = gather_p.bind(operand, indices, oob=oob)
    if type(t) is Zero:
        return ans, Zero(_aval(ans))
    return ans, gather_p.bind(t, indices, oob=oob)


def _gather_transpose(ct, operand, indices, *, oob):
    if is_undefined(indices):
        raise TypeError("gather: the indices cannot be a linear input")
    from .elementwise import full

    zeros = full(operand.aval.shape, 0, operand.aval.dtype)
    if type(ct) is Zero:
        return [zeros, None]
    return [scatter_add_p.bind(zeros, indices, ct, oob=oob), None]


def _gather_batch(axis_size, args, dims, *, oob):
    operand, indices = args
    d_op, d_idx = dims
    if d_op is None:
        # the index batch dims lead the output
        return gather_p.bind(operand, move_axis(indices, d_idx, 0), oob=oob), 0
    k = _aval(indices).shape[-1]
    if d_idx is None:
        # the operand's batch dim sits after the k indexed dims and stays a trailing dim
        operand = move_axis(operand, d_op, k)
        return gather_p.bind(operand, indices, oob=oob), _aval(indices).ndim - 1
    operand = move_axis(operand, d_op, 0)
    indices = _prepend_iota(move_axis(indices, d_idx, 0), axis_size)
    return gather_p.bind(operand, indices, oob=oob), 0


gather_p = Primitive("gather")
gather_p.impl = checked(_gather_abstract_eval, _gather_impl)
gather_p.abstract_eval = _gather_abstract_eval
gather_p.jvp = _gather_jvp
gather_p.linear = True  # in the operand; the indices are integer
gather_p.transpose = _gather_transpose
gather_p.batch = _gather_batch
gather_p.call_kind = "impl"


def gather(operand, indices, oob="clip"):
    """``operand[indices[..., 0], ..., indices[..., k-1]]`` (see the module docstring)."""
    return gather_p.bind(operand, indices, oob=oob)


# --- scatter family ----------------------------------------------------------------------------

_SCATTER_KINDS = {"set": "any", "add": "numeric", "mul": "numeric", "min": "real", "max": "real"}
_KIND_CHARS = {"any": "biufc", "numeric": "iufc", "real": "biuf"}


def _scatter_abstract_eval_for(name, mode):
    allowed = _KIND_CHARS[_SCATTER_KINDS[mode]]

    def abstract_eval(operand, indices, updates, *, oob):
        _check_oob(name, oob)
        k = _check_indices(name, operand, indices)
        expected = indices.shape[:-1] + operand.shape[k:]
        if updates.shape != expected:
            raise ShapeError(
                f"{name}: updates of shape {updates.shape} do not fit indices of shape "
                f"{indices.shape} into an operand of shape {operand.shape} (expected "
                f"{expected} = indices.shape[:-1] + operand.shape[{k}:])"
            )
        if updates.dtype != operand.dtype:
            raise DTypeError(f"{name}: updates dtype {updates.dtype} differs from operand dtype "
                             f"{operand.dtype}; convert with .astype() first")
        if operand.dtype.kind not in allowed:
            raise DTypeError(f"{name}: dtype {operand.dtype} is not supported")
        return ShapedArray(operand.shape, operand.dtype)

    return abstract_eval


def _scatter_impl_for(mode):
    ufunc = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}.get(mode)

    def impl(operand, indices, updates, *, oob):
        from ..devices import array_module

        xp = array_module(operand)
        out = operand.copy()
        k = indices.shape[-1]
        rest = operand.shape[k:]
        n = int(np.prod(indices.shape[:-1], dtype=np.int64))
        if n == 0 or any(s == 0 for s in operand.shape[:k]):
            return out
        upd = updates.reshape((n,) + rest)
        idx, valid = _rows(xp, indices, operand.shape, oob)
        if valid is not None:
            idx, upd = idx[valid], upd[valid]
        where = tuple(idx.T)
        if mode == "set":
            # NumPy assigns in order, so among duplicate indices the last update wins
            out[where] = upd
        elif xp is np:
            ufunc.at(out, where, upd)
        else:
            import cupyx

            getattr(cupyx, {"add": "scatter_add", "max": "scatter_max",
                            "min": "scatter_min"}[mode])(out, where, upd)
        return out

    return impl


def _scatter_batch_for(prim):
    def batch(axis_size, args, dims, *, oob):
        # Move every batch dim to 0 (broadcasting unbatched operands) and index the batch dim
        # explicitly with an iota column: this is exact for every combine mode.
        operand, indices, updates = (
            broadcast_batched(x, axis_size) if d is None else move_axis(x, d, 0)
            for x, d in zip(args, dims, strict=True)
        )
        indices = _prepend_iota(indices, axis_size)
        return prim.bind(operand, indices, updates, oob=oob), 0

    return batch


def _scatter_family(name, mode):
    prim = Primitive(name)
    prim.abstract_eval = _scatter_abstract_eval_for(name, mode)
    prim.impl = checked(prim.abstract_eval, _scatter_impl_for(mode))
    prim.batch = _scatter_batch_for(prim)
    prim.call_kind = "impl"
    return prim


scatter_p = _scatter_family("scatter", "set")
scatter_add_p = _scatter_family("scatter_add", "add")
scatter_mul_p = _scatter_family("scatter_mul", "mul")
scatter_min_p = _scatter_family("scatter_min", "min")
scatter_max_p = _scatter_family("scatter_max", "max")
SCATTERS = {"set": scatter_p, "add": scatter_add_p, "mul": scatter_mul_p,
            "min": scatter_min_p, "max": scatter_max_p}


def scatter(operand, indices, updates, mode="set", oob="drop"):
    """``operand`` with ``updates`` combined into the rows named by ``indices`` (``mode`` is
    'set', 'add', 'mul', 'min' or 'max')."""
    if mode not in SCATTERS:
        raise ValueError(f"scatter: mode must be one of {tuple(SCATTERS)}, got {mode!r}")
    return SCATTERS[mode].bind(operand, indices, updates, oob=oob)


def _zeros_like_aval(aval):
    from .elementwise import full

    return full(aval.shape, 0, aval.dtype)


def _winner_mask(indices, operand_shape, oob, dtype):
    """1 for the update that a 'set' scatter keeps at each position (the last duplicate), else
    0, shaped like the index batch; built from the integer indices only."""
    from .elementwise import eq_p, full, convert_element_type

    iaval = _aval(indices)
    k = iaval.shape[-1]
    batch = iaval.shape[:-1]
    ids = iota_p.bind(dtype=np.dtype(np.int64), shape=(int(np.prod(batch, dtype=np.int64)),),
                      dimension=0)
    from .shape import reshape

    ids = reshape(ids, batch)
    board = scatter_p.bind(full(operand_shape[:k], -1, np.int64), indices, ids, oob=oob)
    kept = gather_p.bind(board, indices, oob=oob)
    return convert_element_type(eq_p.bind(kept, ids), dtype)


def _expand_batch(mask, updates_aval):
    """Broadcast a mask over the index batch dims to the full updates shape."""
    from .shape import broadcast_in_dim

    nb = _aval(mask).ndim
    return broadcast_in_dim(mask, updates_aval.shape, tuple(range(nb)))


def _scatter_linear_jvp_for(prim):
    """The jvp of a scatter linear in (operand, updates) jointly: the same scatter of the
    tangents."""

    def jvp(primals, tangents, *, oob):
        operand, indices, updates = primals
        t_op, _, t_upd = tangents
        ans = prim.bind(operand, indices, updates, oob=oob)
        if type(t_op) is Zero and type(t_upd) is Zero:
            return ans, Zero(_aval(ans))
        return ans, prim.bind(instantiate(t_op), indices, instantiate(t_upd), oob=oob)

    return jvp


# scatter (set): linear in (operand, updates) jointly.
def _scatter_transpose(ct, operand, indices, updates, *, oob):
    if is_undefined(indices):
        raise TypeError("scatter: the indices cannot be a linear input")
    upd_aval = updates.aval if is_undefined(updates) else _aval(updates)
    ct = instantiate(ct)
    ct_op = ct_upd = None
    if is_undefined(operand):
        ct_op = scatter_p.bind(ct, indices, _zeros_like_aval(upd_aval), oob=oob)
    if is_undefined(updates):
        # only the update that survived a duplicate index receives the cotangent
        mask = _winner_mask(indices, _aval(ct).shape, oob, upd_aval.dtype)
        ct_upd = gather_p.bind(ct, indices, oob=oob) * _expand_batch(mask, upd_aval)
    return [ct_op, None, ct_upd]


scatter_p.jvp = _scatter_linear_jvp_for(scatter_p)
scatter_p.linear = True
scatter_p.transpose = _scatter_transpose


# scatter_add: linear in (operand, updates) jointly.
def _scatter_add_transpose(ct, operand, indices, updates, *, oob):
    if is_undefined(indices):
        raise TypeError("scatter_add: the indices cannot be a linear input")
    ct = instantiate(ct)
    return [ct if is_undefined(operand) else None, None,
            gather_p.bind(ct, indices, oob=oob) if is_undefined(updates) else None]


scatter_add_p.jvp = _scatter_linear_jvp_for(scatter_add_p)
scatter_add_p.linear = True
scatter_add_p.transpose = _scatter_add_transpose


def _scatter_mul_jvp(primals, tangents, *, oob):
    # out = op * prod_j u_j  =>  d out = t_op * prod_j u_j + sum_j t_j * (out / u_j).
    # out / u_j is computed as op * prod_{i != j} u_i where u_j == 0 only for unique indices:
    # the rule is exact for unique indices and for duplicates with nonzero updates.
    operand, indices, updates = primals
    t_op, _, t_upd = tangents
    ans = scatter_mul_p.bind(operand, indices, updates, oob=oob)
    out = Zero(_aval(ans))
    if type(t_op) is not Zero:
        # t_op * (the product scattered onto ones): a mul by a known factor, so transposable
        from .elementwise import full

        factor = scatter_mul_p.bind(full(_aval(ans).shape, 1, ans.dtype), indices, updates,
                                    oob=oob)
        out = add_tangents(out, t_op * factor)
    if type(t_upd) is not Zero:
        from .elementwise import eq_p, select_p, full

        zero = eq_p.bind(updates, full(updates.shape, 0, updates.dtype))
        safe = select_p.bind(zero, full(updates.shape, 1, updates.dtype), updates)
        others = select_p.bind(zero, gather_p.bind(operand, indices, oob=oob),
                               gather_p.bind(ans, indices, oob=oob) / safe)
        contrib = scatter_add_p.bind(_zeros_like_aval(_aval(ans)), indices, t_upd * others,
                                     oob=oob)
        out = add_tangents(out, contrib)
    return ans, out


scatter_mul_p.jvp = _scatter_mul_jvp


def _scatter_minmax_jvp_for(prim):
    # The tangent at each position is the mean of the tangents of the values that attain the
    # result there (the operand's and every update's), as reduce_max's rule.
    def jvp(primals, tangents, *, oob):
        operand, indices, updates = primals
        t_op, _, t_upd = tangents
        ans = prim.bind(operand, indices, updates, oob=oob)
        if type(t_op) is Zero and type(t_upd) is Zero:
            return ans, Zero(_aval(ans))
        from .elementwise import convert_element_type, eq_p

        dt = ans.dtype
        zeros = _zeros_like_aval(_aval(ans))
        on_op = convert_element_type(eq_p.bind(operand, ans), dt)
        on_upd = convert_element_type(eq_p.bind(updates, gather_p.bind(ans, indices, oob=oob)),
                                      dt)
        count = on_op + scatter_add_p.bind(zeros, indices, on_upd, oob=oob)
        total = instantiate(t_op) * on_op
        total = total + scatter_add_p.bind(zeros, indices, instantiate(t_upd) * on_upd, oob=oob)
        return ans, total / count

    prim.jvp = jvp


_scatter_minmax_jvp_for(scatter_min_p)
_scatter_minmax_jvp_for(scatter_max_p)

# --- dynamic_slice -------------------------------------------------------------------------------


def _check_starts(name, operand, starts):
    if len(starts) != operand.ndim:
        raise ShapeError(f"{name}: got {len(starts)} start indices for an operand of rank "
                         f"{operand.ndim} (shape {operand.shape}); pass one per dim")
    for s in starts:
        if s.shape != () or s.dtype.kind not in "iu":
            raise DTypeError(f"{name}: start indices must be integer scalars, got "
                             f"{s.str_short()}")


def _dynamic_slice_abstract_eval(operand, *starts, slice_sizes):
    _check_starts("dynamic_slice", operand, starts)
    if len(slice_sizes) != operand.ndim or any(
        not 0 <= s <= n for s, n in zip(slice_sizes, operand.shape)
    ):
        raise ShapeError(f"dynamic_slice: slice_sizes {slice_sizes} do not fit an operand of "
                         f"shape {operand.shape} (need 0 <= size <= dim for every dim)")
    return ShapedArray(slice_sizes, operand.dtype)


def _clamped_starts(starts, shape, sizes):
    return tuple(min(max(int(s), 0), n - m) for s, n, m in zip(starts, shape, sizes))


def _dynamic_slice_impl(operand, *starts, slice_sizes):
    lo = _clamped_starts(starts, operand.shape, slice_sizes)
    return operand[tuple(slice(a, a + m) for a, m in zip(lo, slice_sizes))].copy()


def _dynamic_slice_jvp(primals, tangents, *, slice_sizes):
    operand, *starts = primals
    t = tangents[0]
    ans = dynamic_slice_p.bind(operand, *starts, slice_sizes=slice_sizes)
    if type(t) is Zero:
        return ans, Zero(_aval(ans))
    return ans, dynamic_slice_p.bind(t, *starts, slice_sizes=slice_sizes)


def _dynamic_slice_transpose(ct, operand, *starts, slice_sizes):
    if any(is_undefined(s) for s in starts):
        raise TypeError("dynamic_slice: start indices cannot be linear inputs")
    zeros = _zeros_like_aval(operand.aval)
    if type(ct) is Zero:
        return [zeros] + [None] * len(starts)
    return [dynamic_update_slice_p.bind(zeros, ct, *starts)] + [None] * len(starts)


def _window_indices(axis_size, starts, starts_dims, shape, sizes):
    """Gather/scatter indices ``(B,) + sizes + (ndim,)`` for the window of every batch
    element: ``clamp(start_b) + offset`` per dim (clamped as dynamic_slice does)."""
    from .elementwise import convert_element_type, full, max_p, min_p
    from .shape import broadcast_in_dim, concatenate_p, reshape

    i64 = np.dtype(np.int64)
    out_shape = (axis_size,) + tuple(sizes)
    cols = []
    for i, (s, d, n, m) in enumerate(zip(starts, starts_dims, shape, sizes, strict=True)):
        s = convert_element_type(s, i64)
        s = broadcast_batched(s, axis_size) if d is None else s
        s = min_p.bind(max_p.bind(s, full((axis_size,), 0, i64)), full((axis_size,), n - m, i64))
        col = broadcast_in_dim(s, out_shape, (0,)) + iota_p.bind(
            dtype=i64, shape=out_shape, dimension=i + 1)
        cols.append(reshape(col, out_shape + (1,)))
    if not cols:
        return full(out_shape + (0,), 0, i64)
    return concatenate_p.bind(*cols, dimension=len(out_shape)) if len(cols) > 1 else cols[0]


def _dynamic_slice_batch(axis_size, args, dims, *, slice_sizes):
    operand, *starts = args
    d_op, *d_starts = dims
    if all(d is None for d in d_starts):
        from .elementwise import full

        operand = move_axis(operand, d_op, 0)
        zero = full((), 0, _aval(starts[0]).dtype if starts else np.int64)
        return dynamic_slice_p.bind(operand, zero, *starts,
                                    slice_sizes=(axis_size,) + slice_sizes), 0
    # batched starts: every batch element reads its own window, i.e. a gather
    shape = _aval(operand).shape if d_op is None else tuple(
        s for i, s in enumerate(_aval(operand).shape) if i != d_op)
    starts = [move_axis(s, d, 0) if d is not None else s for s, d in zip(starts, d_starts)]
    idx = _window_indices(axis_size, starts, d_starts, shape, slice_sizes)
    if d_op is None:
        return gather_p.bind(operand, idx, oob="clip"), 0
    operand = move_axis(operand, d_op, 0)
    return gather_p.bind(operand, _prepend_iota(idx, axis_size), oob="clip"), 0


dynamic_slice_p = Primitive("dynamic_slice")
dynamic_slice_p.impl = checked(_dynamic_slice_abstract_eval, _dynamic_slice_impl)
dynamic_slice_p.abstract_eval = _dynamic_slice_abstract_eval
dynamic_slice_p.jvp = _dynamic_slice_jvp
dynamic_slice_p.linear = True  # in the operand
dynamic_slice_p.transpose = _dynamic_slice_transpose
dynamic_slice_p.batch = _dynamic_slice_batch
dynamic_slice_p.call_kind = "impl"


def dynamic_slice(operand, start_indices, slice_sizes):
    """The window ``operand[s0:s0+m0, ...]`` at traced starts (clamped so it fits)."""
    from ..tracing import as_array

    starts = [as_array(s) for s in start_indices]
    return dynamic_slice_p.bind(operand, *starts, slice_sizes=tuple(int(m) for m in slice_sizes))


# --- dynamic_update_slice -------------------------------------------------------------------


def _dynamic_update_slice_abstract_eval(operand, update, *starts):
    _check_starts("dynamic_update_slice", operand, starts)
    if update.ndim != operand.ndim or any(u > n for u, n in zip(update.shape, operand.shape)):
        raise ShapeError(f"dynamic_update_slice: an update of shape {update.shape} does not fit "
                         f"an operand of shape {operand.shape}")
    if update.dtype != operand.dtype:
        raise DTypeError(f"dynamic_update_slice: update dtype {update.dtype} differs from "
                         f"operand dtype {operand.dtype}; convert with .astype() first")
    return ShapedArray(operand.shape, operand.dtype)


def _dynamic_update_slice_impl(operand, update, *starts):
    lo = _clamped_starts(starts, operand.shape, update.shape)
    out = operand.copy()
    out[tuple(slice(a, a + m) for a, m in zip(lo, update.shape))] = update
    return out


def _dynamic_update_slice_jvp(primals, tangents):
    operand, update, *starts = primals
    t_op, t_upd = tangents[:2]
    ans = dynamic_update_slice_p.bind(operand, update, *starts)
    if type(t_op) is Zero and type(t_upd) is Zero:
        return ans, Zero(_aval(ans))
    return ans, dynamic_update_slice_p.bind(instantiate(t_op), instantiate(t_upd), *starts)


def _dynamic_update_slice_transpose(ct, operand, update, *starts):
    if any(is_undefined(s) for s in starts):
        raise TypeError("dynamic_update_slice: start indices cannot be linear inputs")
    upd_aval = update.aval if is_undefined(update) else _aval(update)
    ct = instantiate(ct)
    ct_op = ct_upd = None
    if is_undefined(operand):
        ct_op = dynamic_update_slice_p.bind(ct, _zeros_like_aval(upd_aval), *starts)
    if is_undefined(update):
        ct_upd = dynamic_slice_p.bind(ct, *starts, slice_sizes=upd_aval.shape)
    return [ct_op, ct_upd] + [None] * len(starts)


def _dynamic_update_slice_batch(axis_size, args, dims):
    operand, update, *starts = args
    d_op, d_upd, *d_starts = dims
    operand = broadcast_batched(operand, axis_size) if d_op is None else move_axis(operand, d_op, 0)
    update = broadcast_batched(update, axis_size) if d_upd is None else move_axis(update, d_upd, 0)
    if all(d is None for d in d_starts):
        from .elementwise import full

        zero = full((), 0, _aval(starts[0]).dtype if starts else np.int64)
        return dynamic_update_slice_p.bind(operand, update, zero, *starts), 0
    # batched starts: each batch element writes its own window, i.e. a scatter (the windows
    # are in range after clamping and never collide, so 'set' is exact)
    shape = _aval(operand).shape[1:]
    starts = [move_axis(s, d, 0) if d is not None else s for s, d in zip(starts, d_starts)]
    idx = _window_indices(axis_size, starts, d_starts, shape, _aval(update).shape[1:])
    return scatter_p.bind(operand, _prepend_iota(idx, axis_size), update, oob="clip"), 0


dynamic_update_slice_p = Primitive("dynamic_update_slice")
dynamic_update_slice_p.impl = checked(_dynamic_update_slice_abstract_eval,
                                      _dynamic_update_slice_impl)
dynamic_update_slice_p.abstract_eval = _dynamic_update_slice_abstract_eval
dynamic_update_slice_p.jvp = _dynamic_update_slice_jvp
dynamic_update_slice_p.linear = True  # in (operand, update) jointly
dynamic_update_slice_p.transpose = _dynamic_update_slice_transpose
dynamic_update_slice_p.batch = _dynamic_update_slice_batch
dynamic_update_slice_p.call_kind = "impl"


def dynamic_update_slice(operand, update, start_indices):
    """``operand`` with the window at traced starts (clamped so it fits) replaced by
    ``update``."""
    from ..tracing import as_array

    starts = [as_array(s) for s in start_indices]
    return dynamic_update_slice_p.bind(operand, update, *starts)


# --- helpers for other rules --------------------------------------------------------------------


def take_along_axis(x, idx, axis):
    """``x`` read at ``idx`` along ``axis`` (``idx`` has ``x``'s shape except along ``axis``;
    in-range indices). Used by the sort and cumulative-extremum JVPs."""
    from .elementwise import convert_element_type
    from .shape import concatenate_p, reshape

    iaval = _aval(idx)
    i64 = np.dtype(np.int64)
    shape = iaval.shape
    cols = []
    for d in range(len(shape)):
        if d == axis:
            col = convert_element_type(idx, i64)
        else:
            col = iota_p.bind(dtype=i64, shape=shape, dimension=d)
        cols.append(reshape(col, shape + (1,)))
    full_idx = concatenate_p.bind(*cols, dimension=len(shape)) if len(cols) > 1 else cols[0]
    return gather_p.bind(x, full_idx, oob="clip")


# --- onehot_pick -----------------------------------------------------------------------------


def _onehot_pick_impl(x, idx):
    from ..devices import array_module

    xp = array_module(x)
    if idx.dtype.kind not in "iu":
        raise TypeError("integer indices expected")  # (eval_impl reports abstract_eval's error)
    n = x.shape[-1]
    if n == 0 or x.size == 0:
        return xp.zeros(x.shape[:-1], x.dtype)
    ok = (idx >= 0) & (idx < n)
    safe = xp.where(ok, idx, 0).astype(np.int64)
    v = xp.take_along_axis(x, safe[..., None], axis=-1)[..., 0]
    # (np.where allocates a fresh C-contiguous result; ascontiguousarray would make 0-d 1-d)
    return xp.where(ok, v, xp.zeros((), x.dtype)).astype(x.dtype)


def _onehot_pick_abstract_eval(x, idx):
    if x.ndim == 0 or tuple(idx.shape) != tuple(x.shape[:-1]):
        raise ShapeError(f"onehot_pick: the indices (shape {idx.shape}) must have the shape of "
                         f"x (shape {x.shape}) without its last axis; reshape the indices")
    if np.dtype(idx.dtype).kind not in "iu":
        raise DTypeError(f"onehot_pick: the indices must be integers, got {idx.dtype}; "
                         f"convert them with astype")
    return ShapedArray(x.shape[:-1], x.dtype)


def _onehot_pick_jvp(primals, tangents):
    x, idx = primals
    ans = onehot_pick_p.bind(x, idx)
    if type(tangents[0]) is Zero:
        return ans, Zero(_aval(ans))
    return ans, onehot_pick_p.bind(tangents[0], idx)


def _onehot_pick_transpose(ct, x, idx):
    from . import elementwise as ew
    from .shape import broadcast_in_dim_p

    if is_undefined(idx):
        raise TypeError("onehot_pick: the indices cannot be a linear input")
    shape, dt = tuple(x.aval.shape), x.aval.dtype
    zeros = ew.full(shape, 0, dt)
    if type(ct) is Zero:
        return [zeros, None]
    kept = tuple(range(len(shape) - 1))
    idt = _aval(idx).dtype
    cols = iota_p.bind(dtype=idt, shape=shape, dimension=len(shape) - 1)
    hit = ew.eq_p.bind(broadcast_in_dim_p.bind(idx, shape=shape, broadcast_dimensions=kept),
                       cols)
    ct_full = broadcast_in_dim_p.bind(ct, shape=shape, broadcast_dimensions=kept)
    return [ew.select_p.bind(hit, ct_full, zeros), None]


def _onehot_pick_batch(axis_size, args, dims):
    x, idx = args
    x = broadcast_batched(x, axis_size) if dims[0] is None else move_axis(x, dims[0], 0)
    idx = broadcast_batched(idx, axis_size) if dims[1] is None else move_axis(idx, dims[1], 0)
    return onehot_pick_p.bind(x, idx), 0


# ``onehot_pick(x, idx)[...] = x[..., idx[...]]`` where ``0 <= idx < x.shape[-1]``, else 0.
# Created only by jit's one-hot pass (fnx/jit/passes.py), which fusion lowers as one scalar
# load per row; linear in x.
onehot_pick_p = Primitive("onehot_pick")
onehot_pick_p.impl = _onehot_pick_impl
onehot_pick_p.abstract_eval = _onehot_pick_abstract_eval
onehot_pick_p.jvp = _onehot_pick_jvp
onehot_pick_p.transpose = _onehot_pick_transpose
onehot_pick_p.batch = _onehot_pick_batch
onehot_pick_p.call_kind = "impl"  # where fusion has no row group for it (fnx/jit/fusion.py)
