"""Attention primitives: ``attention`` (``softmax(q k^T * scale + mask) v`` with the softmax
fused between the two batched matrix products), its tangent ``attention_jvp`` and that
tangent's transpose ``attention_vjp`` (the fused backward). ``fnx.nn.functional.
scaled_dot_product_attention`` (and so ``MultiheadAttention`` and the Transformer layers)
binds ``attention``.

``attention(q, k, v[, mask][, keep]) -> (out, p)``: ``q (..., L, E)``, ``k (..., S, E)``,
``v (..., S, Ev)`` with equal leading dims; ``mask`` (``has_mask``) an additive float mask of
``q``'s rank whose dims are 1 or the scores' ``(..., L, S)`` (broadcast in the kernel, never
materialized; ``-inf`` excludes a key); ``keep`` (``dropout_scale`` not None) the dropout draw
``(..., L, S)`` of 0/1 values. Params ``scale`` (scores multiplier), ``causal`` (key ``j`` is
excluded from query ``i`` when ``j > i``, PyTorch's top-left aligned ``is_causal``),
``has_mask``, ``dropout_scale`` (``1 / (1 - p)``, or None). ``out (..., L, Ev)`` is
``(p * keep * dropout_scale) v``; ``p (..., L, S)`` is the softmax itself (what the derivative
needs), zero on a row whose keys are all excluded. The impl is BLAS for ``q k^T`` and ``p v``
with one Numba pass over each score row in between (scale, mask, causal bound, max, exp, sum,
normalize, dropout: ``fnx/jit/kernels/attention.py``).

The JVP of ``out`` is ``attention_jvp(q, k, v[, mask][, keep], p, dq, dk, dv[, dmask])``, linear
in the tangents: ``dS = (dq k^T + q dk^T) * scale + dmask``, ``dp = p * (dS - rowsum(p dS))``,
``dout = (dp * keep) v + (p * keep) dv``. Its transpose ``attention_vjp(..., p, g) -> (dq, dk,
dv[, dmask])`` is the backward pass: ``dp = g v^T``, ``dS = p * (dp - rowsum(dp * p))`` (one
Numba row pass, scale and dropout folded in), ``dq = dS k * scale``, ``dk = dS^T q * scale``,
``dv = p^T g``, with BLAS reading the operands as they lie (head views of a projection need no
layout copy). So ``grad`` runs two fused calls, eagerly, under ``jit`` and in compiled steps
alike (``call_kind = "impl"``). ``p``'s own tangent is the same formula by composition (dead
code unless a caller uses ``p``); the JVPs and batching rules of ``attention_jvp`` /
``attention_vjp`` (higher derivatives, vmap) differentiate and vmap their ``fnx.numpy``
formulas. Other dtypes and array modules (CuPy) run the same formulas as array code.
"""

import math

import numpy as np

from .. import blas
from ..abstract import ShapedArray
from ..ad_util import Zero, instantiate, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .family import formula_batch, formula_jvp
from .shape import (broadcast_batched, buffer_address, buffer_owner, joinable,
                    move_axis, reshape)

attention_p = Primitive("attention", multiple_results=True)
attention_jvp_p = Primitive("attention_jvp")
attention_vjp_p = Primitive("attention_vjp", multiple_results=True)


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


def _operands(args, has_mask, dropout_scale):
    """``(q, k, v, mask or None, keep or None)`` from the positional operands."""
    q, k, v, rest = args[0], args[1], args[2], list(args[3:])
    mask = rest.pop(0) if has_mask else None
    keep = rest.pop(0) if dropout_scale is not None else None
    return q, k, v, mask, keep


# --- attention: abstract eval ----------------------------------------------------------------


def _attention_abstract_eval(*avals, scale, causal, has_mask, dropout_scale):
    del scale, causal  # unused: no effect on shapes
    n_ops = 3 + bool(has_mask) + (dropout_scale is not None)
    if len(avals) != n_ops:
        raise ShapeError(f"attention: expected {n_ops} operands (q, k, v"
                         f"{', mask' if has_mask else ''}"
                         f"{', keep' if dropout_scale is not None else ''}), got {len(avals)}")
    q, k, v, mask, keep = _operands(avals, has_mask, dropout_scale)
    shapes = f"q {q.shape}, k {k.shape}, v {v.shape}"
    if q.ndim < 2 or k.ndim != q.ndim or v.ndim != q.ndim or q.shape[:-2] != k.shape[:-2] \
            or k.shape[:-2] != v.shape[:-2] or q.shape[-1] != k.shape[-1] \
            or k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"attention: expected q (..., L, E), k (..., S, E) and v (..., S, Ev) "
                         f"with the same leading dims, got {shapes} (broadcast them first)")
    for name, x in (("k", k), ("v", v)) + ((("mask", mask),) if mask is not None else ()) + (
            (("keep", keep),) if keep is not None else ()):
        if x.dtype != q.dtype:
            raise DTypeError(f"attention: {name} dtype {x.dtype} differs from q's {q.dtype}; "
                             f"convert with .astype() first")
    if q.dtype.kind not in "fc":
        raise DTypeError(f"attention: expected floating operands, got {q.dtype}")
    scores = q.shape[:-1] + (k.shape[-2],)
    if mask is not None and (mask.ndim != q.ndim or mask.shape[-1] != scores[-1] or any(
            m not in (1, s) for m, s in zip(mask.shape, scores, strict=True))):
        raise ShapeError(f"attention: mask {mask.shape} must have q's rank and broadcast "
                         f"against the scores {scores} (each dim 1 or equal, the last equal)")
    if keep is not None and keep.shape != scores:
        raise ShapeError(f"attention: keep {keep.shape} must be the scores' shape {scores}")
    return [ShapedArray(q.shape[:-1] + v.shape[-1:], q.dtype), ShapedArray(scores, q.dtype)]


# --- attention: impl -------------------------------------------------------------------------


def _reference(xp, q, k, v, mask, keep, scale, causal, dropout_scale):
    """``(out, p)`` as array code (CuPy, and dtypes the kernels do not take)."""
    s = xp.matmul(q, xp.swapaxes(k, -1, -2)) * q.dtype.type(scale)
    if mask is not None:
        s = s + mask
    if causal:
        n_q, n_k = s.shape[-2:]
        s = xp.where(xp.asarray(np.tril(np.ones((n_q, n_k), dtype=bool))), s, -np.inf)
    m = s.max(axis=-1, keepdims=True) if s.shape[-1] else xp.zeros(s.shape[:-1] + (1,), s.dtype)
    m = xp.where(xp.isfinite(m), m, 0)
    e = xp.exp(s - m)
    tot = e.sum(axis=-1, keepdims=True)
    p = (e / xp.where(tot == 0, 1, tot)).astype(q.dtype)
    pd = p if keep is None else p * keep * q.dtype.type(dropout_scale)
    return [xp.matmul(pd, v).astype(q.dtype), p]


_KERNELS = {}


def _kernel(name, dtype, *flags):
    """Kernel ``name`` compiled for ``dtype`` and ``flags`` (``softmax_rows``: whether a mask
    and a dropout keep array are passed; absent ones are None)."""
    k = _KERNELS.get((name, dtype, flags))
    if k is None:
        from ...jit import cache

        lib = cache.load_library("attention")
        k = cache.compile_kernel(("attention", name), getattr(lib, name),
                                 lib.signature(name, dtype, *flags))
        _KERNELS[(name, dtype, flags)] = k
    return k


def _c(a):
    """``a`` as the C-contiguous, writeable array the kernel signatures take."""
    f = a.flags
    return a if f.c_contiguous and f.writeable else np.array(a, order="C")


def _empty_like_layout(x, shape):
    """An uninitialised array of ``shape`` (``x``'s rank) whose axes lie in memory in the
    order of ``x``'s: heads split from a ``(N, L, H*D)`` projection arrive as ``(N, H, L, D)``
    views of ``(N, L, H, D)`` memory, and results in that order make the merge back to
    ``(N, L, H*D)`` a free reshape instead of a copy (as PyTorch's ``empty_like`` keeps a
    memory format; as there, an operand broadcast along an axis (stride 0: ``expand``) gives
    C order, where sorting would put that axis innermost and the product's output would be
    too strided for BLAS)."""
    if any(st == 0 and n > 1 for st, n in zip(x.strides, x.shape)):
        return np.empty(shape, x.dtype)
    order = sorted(range(x.ndim), key=lambda i: -abs(x.strides[i]) if x.shape[i] > 1 else 0)
    if order == list(range(x.ndim)):
        return np.empty(shape, x.dtype)
    buf = np.empty([shape[i] for i in order], x.dtype)
    return buf.transpose(np.argsort(order))


def _gradient_buffers(q, k, v):
    """Uninitialised buffers for dq, dk, dv. Where q, k and v are the heads of one packed
    projection (pieces of one C-contiguous array that they tile, as ``nn.MultiheadAttention``'s
    self-attention splits them): views of ONE new buffer laid out as that array, registered
    with ``shape.joinable``, so that the split's transpose (a concatenate of the three) is a
    view instead of a copy of the whole projection. Otherwise one buffer each, in its
    operand's memory order."""
    owner = buffer_owner(q)
    if (q.shape == k.shape == v.shape and q.strides == k.strides == v.strides
            and all(st or n == 1 for st, n in zip(q.strides, q.shape))  # no broadcast axis
            and buffer_owner(k) is owner and buffer_owner(v) is owner
            and owner.dtype == q.dtype and owner.flags.c_contiguous and owner.size == 3 * q.size
            and not np.shares_memory(q, k) and not np.shares_memory(q, v)
            and not np.shares_memory(k, v)):
        packed = joinable(np.empty(owner.shape, owner.dtype))
        start = buffer_address(owner)
        return [np.ndarray(x.shape, x.dtype, buffer=packed, strides=x.strides,
                           offset=buffer_address(x) - start) for x in (q, k, v)]
    return [_empty_like_layout(x, x.shape) for x in (q, k, v)]


def _mask_map(mask_shape, lead):
    """For each flattened leading index of the scores, the flattened leading index of a mask
    whose leading dims are 1 (broadcast) or equal."""
    mlead = mask_shape[:-2]
    idx = np.arange(math.prod(mlead), dtype=np.int64).reshape(mlead)
    return np.ascontiguousarray(np.broadcast_to(idx, lead).reshape(-1))


def _attention_impl(*args, scale, causal, has_mask, dropout_scale):
    from ..devices import array_module

    q, k, v, mask, keep = _operands(args, has_mask, dropout_scale)
    if (mask is not None and (mask.ndim != q.ndim or mask.shape[-1] != k.shape[-2])) \
            or q.dtype.kind not in "fc" or k.dtype != q.dtype or v.dtype != q.dtype:
        # eager calls skip the shape rule: the row kernel reads whole mask rows unchecked, and
        # integer operands would take a softmax in integers
        _attention_abstract_eval(*args, scale=scale, causal=causal, has_mask=has_mask,
                                 dropout_scale=dropout_scale)
    xp = array_module(q)
    if xp is not np or q.dtype not in (np.float32, np.float64) or 0 in q.shape[:-1] \
            or k.shape[-2] == 0:
        return _reference(xp, q, k, v, mask, keep, scale, causal, dropout_scale)
    dt = q.dtype.type
    lead, n_q, n_k = q.shape[:-2], q.shape[-2], k.shape[-2]
    # BLAS into a C-contiguous buffer (matmul's own output follows odd input layouts); a
    # contiguous k^T makes it a plain product, which OpenBLAS runs ~2x faster than q @ k.T
    s = blas.matmul(q, np.ascontiguousarray(np.swapaxes(k, -1, -2)),
                    out=np.empty(lead + (n_q, n_k), q.dtype))
    m3 = mmap = k3 = pd3 = None
    if mask is not None:
        m3 = _c(mask).reshape((-1,) + mask.shape[-2:])
        mmap = _mask_map(mask.shape, lead)
    pd = s
    if keep is not None:
        k3 = _c(keep).reshape(-1, n_k)
        pd = np.empty(s.shape, s.dtype)
        pd3 = pd.reshape(-1, n_k)
    word = np.zeros(1, q.dtype)
    ints = np.dtype(f"i{q.dtype.itemsize}")
    s2 = s.reshape(-1, n_k)
    softmax_rows = _kernel("softmax_rows", q.dtype, mask is not None, keep is not None)
    softmax_rows(s2, s2.view(ints), n_q, dt(scale), dt(1), dt(-np.inf), m3, mmap, bool(causal),
                 k3, dt(dropout_scale or 1.0), pd3, word.view(ints), word)
    return [blas.matmul(pd, v, out=_empty_like_layout(q, lead + (n_q, v.shape[-1]))), s]


# --- the tangent and the backward, as formulas over an array namespace -----------------------
# (NumPy/CuPy in the impls' general path, ``fnx.numpy`` in the rules that are rarely hot: the
# JVPs of attention_jvp / attention_vjp, i.e. higher derivatives, and their batching rules)


def _split_extra(args, has_mask, dropout_scale):
    """``(q, k, v, mask, keep, p, rest)`` of ``attention_jvp`` / ``attention_vjp`` operands:
    ``attention``'s operands, its softmax ``p``, then the tangents or the cotangent."""
    n = 3 + bool(has_mask) + (dropout_scale is not None)
    q, k, v, mask, keep = _operands(args[:n], has_mask, dropout_scale)
    return q, k, v, mask, keep, args[n], list(args[n + 1:])


def _t(ns, x):
    return ns.swapaxes(x, -1, -2)


def _dsoftmax(ns, p, x):
    return p * (x - ns.sum(p * x, axis=-1, keepdims=True))


def _tangent(ns, *args, scale, causal, has_mask, dropout_scale):
    """``dout`` for tangents ``dq, dk, dv[, dmask]``."""
    del causal  # unused: p is already zero where the bound excludes a key
    q, k, v, mask, keep, p, (dq, dk, dv, *dmask) = _split_extra(args, has_mask, dropout_scale)
    dp = _dsoftmax(ns, p, (ns.matmul(dq, _t(ns, k)) + ns.matmul(q, _t(ns, dk))) * scale)
    if has_mask:
        dp = dp + _dsoftmax(ns, p, ns.broadcast_to(dmask[0], p.shape))
    if keep is not None:
        dp, p = (x * keep * dropout_scale for x in (dp, p))
    return [ns.matmul(dp, v) + ns.matmul(p, dv)]


def _mask_cotangent(ns, ds, mask_shape):
    """``ds`` summed over the dims a mask of ``mask_shape`` was broadcast along."""
    axes = tuple(i for i, (m, n) in enumerate(zip(mask_shape, ds.shape, strict=True)) if m != n)
    return ns.sum(ds, axis=axes, keepdims=True) if axes else ds


def _backward(ns, *args, scale, causal, has_mask, dropout_scale):
    """``dq, dk, dv[, dmask]`` for the output cotangent ``g``."""
    del causal  # unused: p is already zero where the bound excludes a key
    q, k, v, mask, keep, p, (g,) = _split_extra(args, has_mask, dropout_scale)
    dp = ns.matmul(g, _t(ns, v))
    if keep is not None:
        dp, p_used = dp * keep * dropout_scale, p * keep * dropout_scale
    else:
        p_used = p
    ds = _dsoftmax(ns, p, dp)
    outs = [ns.matmul(ds, k) * scale, ns.matmul(_t(ns, ds), q) * scale,
            ns.matmul(_t(ns, p_used), g)]
    if has_mask:
        outs.append(_mask_cotangent(ns, ds, mask.shape))
    return [o.astype(q.dtype) for o in outs]


def _tangent_abstract_eval(*avals, **params):
    q, k, v, mask, keep, p, tangents = _split_extra(avals, params["has_mask"],
                                                    params["dropout_scale"])
    primal = [q, k, v] + ([mask] if mask is not None else [])
    out, p_want = _attention_abstract_eval(*avals[:len(avals) - len(tangents) - 1], **params)
    if p.shape != p_want.shape or len(tangents) != len(primal) or any(
            t.shape != x.shape or t.dtype != x.dtype for t, x in zip(tangents, primal)):
        raise ShapeError(f"attention_jvp: tangents {[t.shape for t in tangents]} and p "
                         f"{p.shape} must match q, k, v[, mask] {[x.shape for x in primal]} "
                         f"and the scores {p_want.shape}")
    return out


def _backward_abstract_eval(*avals, **params):
    q, k, v, mask, keep, p, (g,) = _split_extra(avals, params["has_mask"],
                                                params["dropout_scale"])
    out, p_want = _attention_abstract_eval(*avals[:-2], **params)
    if p.shape != p_want.shape or g.shape != out.shape:
        raise ShapeError(f"attention_vjp: p {p.shape} and g {g.shape} must be the scores "
                         f"{p_want.shape} and the output {out.shape}")
    return [ShapedArray(x.shape, x.dtype) for x in [q, k, v] + ([mask] if mask is not None
                                                             else [])]


def _tangent_impl(*args, **params):
    from ..devices import array_module

    return _tangent(array_module(args[0]), *args, **params)[0]


def _backward_impl(*args, scale, causal, has_mask, dropout_scale):
    """BLAS on the operands as they lie (strided head views included: no layout copies but a
    contiguous ``v^T``) around the fused ``dS = p * (dp - rowsum(dp * p))`` kernel."""
    from ..devices import array_module

    params = dict(scale=scale, causal=causal, has_mask=has_mask, dropout_scale=dropout_scale)
    q, k, v, mask, keep, p, (g,) = _split_extra(args, has_mask, dropout_scale)
    xp = array_module(q)
    if xp is not np or q.dtype not in (np.float32, np.float64) or p.size == 0 or q.size == 0:
        return _backward(xp, *args, **params)
    dt = q.dtype.type
    n_q, n_k = p.shape[-2:]
    ds = blas.matmul(g, np.ascontiguousarray(_t(np, v)), out=np.empty(p.shape, q.dtype))
    p_used = p
    if keep is not None:
        ds *= keep
        ds *= dt(dropout_scale)
        p_used = p * keep * dt(dropout_scale)
    # the mask's cotangent is the unscaled dS; otherwise the kernel applies the scale
    c = 1.0 if has_mask else scale
    ds2 = ds.reshape(-1, n_k)
    _kernel("softmax_jvp_rows", q.dtype)(_c(p).reshape(-1, n_k), ds2, dt(c), ds2)
    dq_out, dk_out, dv_out = _gradient_buffers(q, k, v)
    dq = blas.matmul(ds, k, out=dq_out)
    dk = blas.matmul(_t(np, ds), q, out=dk_out)
    dv = blas.matmul(_t(np, p_used), g, out=dv_out)
    if not has_mask:
        return [dq, dk, dv]
    dq *= dt(scale)
    dk *= dt(scale)
    return [dq, dk, dv, _mask_cotangent(np, ds, mask.shape).reshape(mask.shape)]


# --- attention: rules -----------------------------------------------------------------------


def _attention_jvp(primals, tangents, *, scale, causal, has_mask, dropout_scale):
    from fnx import numpy as fnp

    params = dict(scale=scale, causal=causal, has_mask=has_mask, dropout_scale=dropout_scale)
    out, p = attention_p.bind(*primals, **params)
    q, k, v, mask, keep = _operands(primals, has_mask, dropout_scale)
    dq, dk, dv, dmask, _ = _operands(tangents, has_mask, dropout_scale)
    diff = [dq, dk, dv] + ([dmask] if has_mask else [])
    if all(type(t) is Zero for t in diff):
        return [out, p], [Zero(_aval(out)), Zero(_aval(p))]
    diff = [instantiate(t) for t in diff]
    dout = attention_jvp_p.bind(*primals, p, *diff, **params)
    # p's own tangent (dead code unless a caller uses p)
    ds = (fnp.matmul(diff[0], _t(fnp, k)) + fnp.matmul(q, _t(fnp, diff[1]))) * scale
    if has_mask:
        ds = ds + fnp.broadcast_to(diff[3], _aval(p).shape)
    return [out, p], [dout, _dsoftmax(fnp, p, ds)]


def _attention_batch(axis_size, args, dims, *, scale, causal, has_mask, dropout_scale):
    """The vmapped axis becomes one more leading dim (first); an unmapped mask gets a
    broadcast dim of size 1, other unmapped operands are broadcast."""
    moved = []
    for i, (x, d) in enumerate(zip(args, dims, strict=True)):
        if d is not None:
            moved.append(move_axis(x, d, 0))
        elif has_mask and i == 3:
            moved.append(reshape(x, (1,) + _aval(x).shape))
        else:
            moved.append(broadcast_batched(x, axis_size))
    return attention_p.bind(*moved, scale=scale, causal=causal, has_mask=has_mask,
                            dropout_scale=dropout_scale), [0, 0]


attention_p.impl = _attention_impl
attention_p.abstract_eval = _attention_abstract_eval
attention_p.jvp = _attention_jvp
attention_p.batch = _attention_batch
attention_p.call_kind = "impl"  # BLAS + the row kernel


def _tangent_transpose(ct, *args, scale, causal, has_mask, dropout_scale):
    params = dict(scale=scale, causal=causal, has_mask=has_mask, dropout_scale=dropout_scale)
    n = len(args) - 3 - bool(has_mask)  # attention's operands and p: known
    if any(is_undefined(a) for a in args[:n]):
        raise NotImplementedError("attention_jvp: transpose with respect to q, k, v, the mask "
                                  "or p (it is linear in the tangents only)")
    grads = attention_vjp_p.bind(*args[:n], instantiate(ct), **params)
    return [None] * n + [g if is_undefined(t) else None
                         for g, t in zip(grads, args[n:], strict=True)]


attention_jvp_p.impl = _tangent_impl
attention_jvp_p.abstract_eval = _tangent_abstract_eval
attention_jvp_p.jvp = formula_jvp(_tangent, True)
attention_jvp_p.transpose = _tangent_transpose
attention_jvp_p.batch = formula_batch(_tangent, True)
attention_jvp_p.call_kind = "impl"

attention_vjp_p.impl = _backward_impl
attention_vjp_p.abstract_eval = _backward_abstract_eval
attention_vjp_p.jvp = formula_jvp(_backward, False)
attention_vjp_p.batch = formula_batch(_backward, False)
attention_vjp_p.call_kind = "impl"  # BLAS + the dS row kernel


def attention(q, k, v, mask=None, keep=None, *, scale, causal=False, dropout_scale=None):
    """``(out, p)`` of ``softmax(q k^T * scale + mask) v`` (see the module docstring).

    >>> from fnx.core.ops.attention import attention
    >>> q = fnx.ones((2, 3, 4))
    >>> out, p = attention(q, q, q, scale=0.5, causal=True)
    >>> out.shape, p[0, 0].tolist()
    ((2, 3, 4), [1.0, 0.0, 0.0])
    """
    ops = [q, k, v] + ([mask] if mask is not None else []) + ([keep] if keep is not None else [])
    if (keep is None) != (dropout_scale is None):
        raise ValueError("attention: pass keep and dropout_scale together")
    return attention_p.bind(*ops, scale=float(scale), causal=bool(causal),
                            has_mask=mask is not None,
                            dropout_scale=None if dropout_scale is None else float(dropout_scale))
