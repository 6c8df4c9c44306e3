"""Attention kernels (fnx/core/ops/attention.py's impls): the row pass between the two batched
matrix products of ``softmax(q k^T * scale + mask) v``, and the softmax's derivative.

* ``softmax_rows``: in place over the scores ``s (B, L, S)`` (``q k^T`` from BLAS), one row at
  a time while it sits in L1: scale, add the mask row, apply the causal bound, subtract the
  row max, exponentiate, normalize; a row with no finite score (every key masked) becomes
  zeros. The mask is ``(Bm, Lm, S)`` (``Bm == 0``: none); score row ``(b, i)`` reads mask row
  ``(mask_map[b], i if Lm > 1 else 0)``, so a mask broadcast over heads or queries is never
  materialized. With dropout (``keep (B, L, S)``, ``Bk > 0``), ``pd`` receives
  ``p * keep * keep_scale`` (what multiplies ``v``) while ``s`` keeps ``p`` (what the
  derivative needs).
* ``softmax_jvp_rows``: ``y = scale * p * (x - rowsum(p * x))``, the derivative of the
  softmax applied to ``x`` (the backward pass's ``dS = P * (dP - rowsum(dP * P))``). It is
  symmetric in ``x``, so it is also its own transpose.

Sums are taken in loops that store nothing (a store beside a reassociated sum lets LLVM choose
a vectorized or a scalar order at run time by buffer overlap: results would depend on where
buffers sit).
"""

import numba
import numpy as np

from fnx.jit import vecmath as _vm

_OPTS = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True,
             fastmath={"contract", "reassoc"})


@numba.njit(**_OPTS)
def softmax_rows(s, scale, ninf, mask, mask_map, causal, keep, keep_scale, pd):
    nb, nl, ns = s.shape
    has_mask = mask.shape[0] > 0
    has_keep = keep.shape[0] > 0
    mask_rows = mask.shape[1] > 1
    zero = scale - scale
    for b in range(nb):
        mb = mask_map[b] if has_mask else 0
        for i in range(nl):
            n = min(i + 1, ns) if causal else ns
            row = s[b, i]
            if has_mask:
                mrow = mask[mb, i if mask_rows else 0]
                for j in range(n):
                    row[j] = row[j] * scale + mrow[j]
            else:
                for j in range(n):
                    row[j] = row[j] * scale
            m = ninf
            for j in range(n):
                m = max(m, row[j])
            if m == ninf:  # every key masked: zeros, as PyTorch's math kernel
                n = 0
            for j in range(n):
                row[j] = _vm.vexp(row[j] - m)
            tot = zero
            for j in range(n):
                tot += row[j]
            for j in range(n):
                row[j] = row[j] / tot
            for j in range(n, ns):
                row[j] = zero
            if has_keep:
                krow = keep[b, i]
                prow = pd[b, i]
                for j in range(ns):
                    prow[j] = row[j] * krow[j] * keep_scale


@numba.njit(**_OPTS)
def softmax_jvp_rows(p, x, scale, y):
    nb, nl, ns = p.shape
    for b in range(nb):
        for i in range(nl):
            prow = p[b, i]
            xrow = x[b, i]
            dot = scale - scale
            for j in range(ns):
                dot += prow[j] * xrow[j]
            yrow = y[b, i]
            for j in range(ns):
                yrow[j] = scale * prow[j] * (xrow[j] - dot)


def signature(name, dtype):
    """The one Numba signature of kernel ``name`` for float ``dtype`` (C-contiguous arrays)."""
    t = numba.from_dtype(np.dtype(dtype))
    a3 = numba.types.Array(t, 3, "C")
    if name == "softmax_rows":
        return (a3, t, t, a3, numba.types.Array(numba.types.int64, 1, "C"), numba.types.boolean,
                a3, t, a3)
    return (a3, a3, t, a3)
