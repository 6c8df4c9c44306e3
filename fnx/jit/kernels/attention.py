"""Attention kernels (fnx/core/ops/attention.py's impls): the row pass between the two batched
matrix products of ``softmax(q k^T * scale + mask) v``, and the softmax's derivative.

* ``softmax_rows``: in place over the scores ``s (B * L, S)`` (``q k^T`` from BLAS; ``L``
  passed), one row at a time while it sits in L1: scale, add the mask row, apply the causal
  bound, subtract the row max, exponentiate, normalize; a row with no finite score (every key
  masked) becomes zeros. The mask is ``(Bm, Lm, S)`` or None; score row ``(b, i)`` reads mask
  row ``(mask_map[b], i if Lm > 1 else 0)``, so a mask broadcast over heads or queries is
  never materialized. With dropout (``keep (B * L, S)``, else None), ``pd`` receives
  ``p * keep * keep_scale`` (what multiplies ``v``) while ``s`` keeps ``p`` (what the
  derivative needs). An absent mask or dropout is None, typed ``none`` in the signature:
  Numba prunes its branches before typing, so a model without them compiles neither (the
  unmasked kernel: ~30% less cold compile).
* ``softmax_jvp_rows``: ``y = scale * p * (x - rowsum(p * x))`` over rows ``(R, S)``, the
  derivative of the softmax applied to ``x`` (the backward pass's
  ``dS = P * (dP - rowsum(dP * P))``); ``y`` may be ``x`` (in place).

Rows are indexed in place (``s[r, j]``), never taken as views: a row view is lowered
anew at each use, and the five of ``softmax_rows`` were a sixth of its cold compile. Score
arrays are 2-D (rows, keys): 3-D indexing lowered to ~10-20% more code to compile.

Sums are taken in loops that store nothing (a store beside a reassociated sum lets LLVM choose
a vectorized or a scalar order at run time by buffer overlap: results would depend on where
buffers sit).
"""

import numba
import numpy as np

from fnx.jit import vecmath as _vm

# no_cfunc_wrapper: called only through the dispatcher (the C wrapper: ~10% of cold compile)
_OPTS = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True,
             no_cfunc_wrapper=True, fastmath={"contract", "reassoc"})


@numba.njit(**_OPTS)
def softmax_rows(s, bits, nl, scale, one, ninf, mask, mask_map, causal, keep, keep_scale, pd,
                 word_i, word_f):
    nr, ns = s.shape
    nb = nr // max(nl, 1)
    zero = one - one
    # the row max is taken over the scores' bits read as integers (``bits`` is ``s`` viewed
    # as signed integers of its width) mapped to an order-preserving key: an integer max
    # vectorizes, a float max never does; NaN maps above +inf, so a NaN row stays NaN
    sh = bits.itemsize * 8 - 1
    low = (1 << sh) - 1
    # without a mask the scale is applied inside the exp pass (max(x * c) = c * max(x), c >= 0)
    prescale = mask is not None or not scale >= zero
    c = one if prescale else scale
    for b in range(nb):
        for i in range(nl):
            r = b * nl + i
            n = min(i + 1, ns) if causal else ns
            # ``is not None`` on the argument itself: the form Numba's branch pruning reads
            if mask is not None:
                mb = mask_map[b]
                mi = i if mask.shape[1] > 1 else 0
                for j in range(n):
                    s[r, j] = s[r, j] * scale + mask[mb, mi, j]
            elif prescale:
                for j in range(n):
                    s[r, j] = s[r, j] * scale
            key = -low - 1
            for j in range(n):
                k = bits[r, j]
                key = max(key, k ^ ((k >> sh) & low))
            word_i[0] = key ^ ((key >> sh) & low)
            m = word_f[0] * c
            if m == ninf:  # every key masked: zeros, as PyTorch's math kernel
                n = 0
            tot = zero
            for j in range(n):
                e = _vm.vexp(s[r, j] * c - m)
                s[r, j] = e
                tot += e
            inv = one / tot
            for j in range(n):
                s[r, j] = s[r, j] * inv
            for j in range(n, ns):
                s[r, j] = zero
            if keep is not None:
                for j in range(ns):
                    pd[r, j] = s[r, j] * keep[r, j] * keep_scale


@numba.njit(**_OPTS)
def softmax_jvp_rows(p, x, scale, y):
    nr, ns = p.shape
    for r in range(nr):
        dot = scale - scale
        for j in range(ns):
            dot += p[r, j] * x[r, j]
        for j in range(ns):
            y[r, j] = scale * p[r, j] * (x[r, j] - dot)


def signature(name, dtype, mask=False, keep=False):
    """The Numba signature of kernel ``name`` for float ``dtype`` (C-contiguous arrays);
    ``softmax_rows``: with a mask and/or dropout, or with ``none`` in their places."""
    t = numba.from_dtype(np.dtype(dtype))
    a2 = numba.types.Array(t, 2, "C")  # rows: 2-D indexing lowers to less code than 3-D
    if name == "softmax_rows":
        it = numba.from_dtype(np.dtype(f"i{np.dtype(dtype).itemsize}"))
        none = numba.types.none
        masks = (numba.types.Array(t, 3, "C"), numba.types.Array(numba.types.int64, 1, "C")) \
            if mask else (none, none)
        return (a2, numba.types.Array(it, 2, "C"), numba.types.int64, t, t, t) + masks + (
            numba.types.boolean, a2 if keep else none, t, a2 if keep else none,
            numba.types.Array(it, 1, "C"), numba.types.Array(t, 1, "C"))
    return (a2, a2, t, a2)
