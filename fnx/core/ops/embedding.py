"""Embedding primitives: ``embedding_lookup(w, idx)`` reads rows ``w[idx]`` of a table
``w (V, D)`` (indices read as a traced ``take`` reads them: negative ones from the end, then
clamped into ``[0, V)``), output
``idx.shape + (D,)``; its transpose ``embedding_scatter(ct, idx, num_rows=V)`` adds the rows of
``ct (*idx.shape, D)`` into a zero ``(V, D)`` table at ``idx``. Both are linear in their
array operand (the indices carry no derivative), each the other's transpose, so ``grad``
of an embedding is one row scatter: a Numba loop on NumPy float32/float64
(``fnx/jit/kernels/embedding.py``; NumPy's ``ufunc.at`` is ~10x slower), array code
elsewhere (CuPy). ``F.embedding`` binds ``embedding_lookup``.
"""

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero, instantiate, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .shape import move_axis, reshape, transpose

embedding_lookup_p = Primitive("embedding_lookup")
embedding_scatter_p = Primitive("embedding_scatter")


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


def _check_idx(name, idx):
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{name}: indices must be integers, got {idx.dtype}")


def _clamped(ns, idx, n):
    """Row numbers as a traced ``take`` reads them: negative ones count from the end, then
    everything is clipped into ``[0, n)``."""
    idx = ns.where(idx < 0, idx + n, idx)
    return ns.clip(idx, 0, max(n - 1, 0)).astype(np.int64)


# --- embedding_lookup -----------------------------------------------------------------------


def _lookup_abstract_eval(w, idx):
    _check_idx("embedding_lookup", idx)
    if w.ndim != 2:
        raise ShapeError(f"embedding_lookup: the table must be (num_rows, dim), got {w.shape}")
    return ShapedArray(idx.shape + w.shape[1:], w.dtype)


def _lookup_impl(w, idx):
    from ..devices import array_module

    xp = array_module(w)
    if w.shape[0] == 0:
        return xp.zeros(idx.shape + w.shape[1:], w.dtype)
    return xp.take(w, _clamped(xp, idx, w.shape[0]), axis=0)


def _lookup_jvp(primals, tangents):
    w, idx = primals
    dw = tangents[0]
    out = embedding_lookup_p.bind(w, idx)
    return out, (Zero(_aval(out)) if type(dw) is Zero else embedding_lookup_p.bind(dw, idx))


def _lookup_transpose(ct, w, idx):
    if is_undefined(idx) or not is_undefined(w):
        raise NotImplementedError("embedding_lookup: linear in the table only")
    return [embedding_scatter_p.bind(instantiate(ct), idx, num_rows=w.aval.shape[0]), None]


def _lookup_batch(axis_size, args, dims):
    w, idx = args
    dw, di = dims
    if dw is None:  # more indices into the same table
        return embedding_lookup_p.bind(w, move_axis(idx, di, 0)), 0
    # one table per batch member: the batch becomes the first index component, as a gather
    from fnx import numpy as fnp

    w = move_axis(w, dw, 0)
    idx = _clamped(fnp, idx, _aval(w).shape[1])
    if di is None:
        return fnp.take(w, idx, axis=1), 0
    idx = move_axis(idx, di, 0)
    rows = fnp.reshape(fnp.arange(axis_size), (axis_size,) + (1,) * (_aval(idx).ndim - 1))
    return w[rows, idx], 0


embedding_lookup_p.impl = _lookup_impl
embedding_lookup_p.abstract_eval = _lookup_abstract_eval
embedding_lookup_p.jvp = _lookup_jvp
embedding_lookup_p.transpose = _lookup_transpose
embedding_lookup_p.batch = _lookup_batch
embedding_lookup_p.call_kind = "impl"
embedding_lookup_p.fresh_results = True  # np.take / zeros: a new array


# --- embedding_scatter ------------------------------------------------------------------------


def _scatter_abstract_eval(ct, idx, *, num_rows):
    _check_idx("embedding_scatter", idx)
    if ct.ndim != idx.ndim + 1 or ct.shape[:-1] != idx.shape:
        raise ShapeError(f"embedding_scatter: rows {ct.shape} must be the indices' shape "
                         f"{idx.shape} plus one feature dim")
    return ShapedArray((num_rows, ct.shape[-1]), ct.dtype)


_KERNEL = {}


def _scatter_impl(ct, idx, *, num_rows):
    from ..devices import array_module

    xp = array_module(ct)
    d = ct.shape[-1]
    out = xp.zeros((num_rows, d), ct.dtype)
    if num_rows == 0 or ct.size == 0:
        return out
    rows = ct.reshape(-1, d)
    flat = _clamped(xp, idx.reshape(-1), num_rows)
    if xp is not np or ct.dtype not in (np.float32, np.float64):
        if xp is np:
            np.add.at(out, flat, rows)
        else:
            import cupyx

            cupyx.scatter_add(out, flat, rows)
        return out
    kernel = _KERNEL.get(ct.dtype)
    if kernel is None:
        from ...jit import cache

        lib = cache.load_library("embedding")
        kernel = _KERNEL[ct.dtype] = cache.compile_kernel(
            ("embedding", "scatter_rows"), lib.scatter_rows, lib.signature("scatter_rows",
                                                                           ct.dtype))
    kernel(np.ascontiguousarray(rows), np.ascontiguousarray(flat), out)
    return out


def _scatter_jvp(primals, tangents, *, num_rows):
    ct, idx = primals
    dct = tangents[0]
    out = embedding_scatter_p.bind(ct, idx, num_rows=num_rows)
    if type(dct) is Zero:
        return out, Zero(_aval(out))
    return out, embedding_scatter_p.bind(dct, idx, num_rows=num_rows)


def _scatter_transpose(ct_out, ct, idx, *, num_rows):
    del num_rows  # unused: the lookup reads the table's own rows
    if is_undefined(idx) or not is_undefined(ct):
        raise NotImplementedError("embedding_scatter: linear in the rows only")
    return [embedding_lookup_p.bind(instantiate(ct_out), idx), None]


def _scatter_batch(axis_size, args, dims, *, num_rows):
    ct, idx = args
    dc, di = dims
    if di is None:
        # the batch rides along the feature dim: (*idx, B, D) -> (*idx, B * D)
        ct = move_axis(ct, dc, -2)
        shape = _aval(ct).shape
        flat = reshape(ct, shape[:-2] + (axis_size * shape[-1],))
        out = embedding_scatter_p.bind(flat, idx, num_rows=num_rows)
        return transpose(reshape(out, (num_rows, axis_size, shape[-1])), (1, 0, 2)), 0
    # indices per batch member: one table of num_rows * B rows, member b at rows b * num_rows
    from fnx import numpy as fnp

    idx = move_axis(idx, di, 0)
    ct = move_axis(ct, dc, 0) if dc is not None else fnp.broadcast_to(
        ct, (axis_size,) + _aval(ct).shape)
    offs = fnp.reshape(fnp.arange(axis_size) * num_rows,
                       (axis_size,) + (1,) * (_aval(idx).ndim - 1))
    idx = _clamped(fnp, idx, num_rows) + offs
    out = embedding_scatter_p.bind(ct, idx, num_rows=num_rows * axis_size)
    return reshape(out, (axis_size, num_rows, _aval(ct).shape[-1])), 0


embedding_scatter_p.impl = _scatter_impl
embedding_scatter_p.abstract_eval = _scatter_abstract_eval
embedding_scatter_p.jvp = _scatter_jvp
embedding_scatter_p.transpose = _scatter_transpose
embedding_scatter_p.batch = _scatter_batch
embedding_scatter_p.call_kind = "impl"  # the row loop


def embedding_lookup(w, idx):
    """Rows ``w[idx]`` of the table ``w (V, D)`` (indices read as a traced ``take``).

    >>> from fnx.core.ops.embedding import embedding_lookup
    >>> embedding_lookup(fnx.numpy.arange(6.0).reshape(3, 2), fnx.asarray([[2, 0]])).tolist()
    [[[4.0, 5.0], [0.0, 1.0]]]
    """
    return embedding_lookup_p.bind(w, idx)
