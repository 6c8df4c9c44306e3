"""Normalization kernels (fnx/core/ops/normalization.py's impls): the forward pass
``y = (x - mean) * rsqrt(var + eps) * w + b`` with the statistics computed in the same call,
and the backward pass (the two sums it needs in one sweep, the input gradient in a second).

Each statistic is computed over a block that stays in cache between its sweeps. Four shapes,
one kernel pair each (compiled lazily, only for the shapes a model uses):

* ``row`` (LayerNorm, RMSNorm): ``x`` ``(R, K)``, a statistic per row, ``w``/``b`` ``(K,)``;
* ``cols`` (BatchNorm1d): ``x`` ``(N, C)``, a statistic per column, ``w``/``b`` ``(C,)``;
* ``channel`` (BatchNorm2d/3d): ``x`` ``(N, C, S)``, a statistic per ``c`` over ``(N, S)``;
* ``group`` (GroupNorm, InstanceNorm): ``x`` ``(N, G, K, S)``, a statistic per ``(n, g)`` over
  ``(K, S)``, ``w``/``b`` ``(G * K,)`` broadcast over ``S``; ``mean``/``var`` ``(N, G)``.

``center=False`` is the RMS form (no mean subtracted: ``var`` is the mean square, ``mean``
0). The backward computes the statistics again with the forward's loops (the block is in cache),
takes the cotangents of ``mean`` and ``var`` (zero unless a caller differentiates the
statistics themselves) and computes ``gx = a * gy + c0 + d * (x - mean)`` per statistic: the
projection that removes the gradient's components along the mean and the normalized input,
plus those cotangents.

How the loops are written (each 2-10x when missed; docs in shared numba-notes): one function
per kernel, no helper calls and no views (Numba compiles every callee and slice separately:
seconds of cold compile); inner loops start at 0 (an index Numba cannot prove non-negative
gets a wraparound branch that stops vectorization); sums accumulate in the input dtype along
the innermost run (vectorized) and add those partial sums in float64 (long BatchNorm
reductions stay accurate; a long row sums its mean about its first element, ``_SHORT_ROW``),
in loops that store nothing (a store beside a reassociated sum lets LLVM pick a vectorized or
a scalar order at run time by buffer overlap, so results would depend on where buffers sit).
"""

import math

import numba
import numpy as np

# no_cfunc_wrapper: called only through the dispatcher (the C wrapper: ~10% of cold compile)
_OPTS = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True,
             no_cfunc_wrapper=True, fastmath={"contract", "reassoc"})
_FLUSH = 64  # rows summed in the input dtype before they are added in float64
# Longer rows sum their mean about their first element. A row sum's rounding error grows
# with the size of what it adds: 200k float32 values of 1000 +- 1 summed as they are gave
# LayerNorm outputs off by 3e-3 (the mean's error over the spread); about x[0] the error is
# 9e-5, the rounding of the mean itself. Short rows (a Transformer's d_model) sum about 0, the
# plain sum to the bit, in the same loop: a second copy of the loop without the subtraction
# ran 2-5% faster at d=128 but cost ~80 ms of cold compile per kernel.
_SHORT_ROW = 1024


@numba.njit(**_OPTS)
def row_forward(x, w, b, y, mean, var, eps, center):
    t = x.dtype.type
    rows, kk = x.shape
    for i in range(rows):
        m = t(0)
        if center:
            acc = t(0)
            # a long row sums about its first element (the error scales with the spread)
            x0 = x[i, 0] if kk > _SHORT_ROW else t(0)
            for k in range(kk):
                acc += x[i, k] - x0
            m = x0 + acc / t(kk)
        acc = t(0)
        for k in range(kk):
            d = x[i, k] - m
            acc += d * d
        v = acc / t(kk)
        r = t(1.0 / math.sqrt(v + eps))
        for k in range(kk):
            y[i, k] = (x[i, k] - m) * (r * w[k]) + b[k]
        mean[i] = m
        var[i] = v


@numba.njit(**_OPTS)
def row_backward(gy, cm, cv, x, w, gx, gw, gb, s64, st, eps, center):
    t = x.dtype.type
    rows, kk = x.shape
    # scratch by offset, not as views (a tenth of this kernel's cold compile): the weight
    # gradient's sums at [0, kk), the bias gradient's at [kk, 2 kk); float64 in s64, the rows
    # since the last flush in st
    for i in range(rows):
        m = t(0)
        if center:
            acc = t(0)
            # a long row sums about its first element (the error scales with the spread)
            x0 = x[i, 0] if kk > _SHORT_ROW else t(0)
            for k in range(kk):
                acc += x[i, k] - x0
            m = x0 + acc / t(kk)
        acc = t(0)
        for k in range(kk):
            d = x[i, k] - m
            acc += d * d
        r = t(1.0 / math.sqrt(acc / t(kk) + eps))
        sa = t(0)  # sum(gy * w)
        sb = t(0)  # sum(gy * w * (x - m))
        for k in range(kk):
            gwk = gy[i, k] * w[k]
            sa += gwk
            sb += gwk * (x[i, k] - m)
        for k in range(kk):
            st[np.uint64(kk + k)] += gy[i, k]
            st[k] += gy[i, k] * ((x[i, k] - m) * r)
        if i % _FLUSH == _FLUSH - 1 or i == rows - 1:
            for k in range(kk):
                s64[np.uint64(kk + k)] += st[np.uint64(kk + k)]
                s64[k] += st[k]
                st[np.uint64(kk + k)] = 0
                st[k] = 0
        c0 = t((cm[i] - r * sa) / kk) if center else t(0)
        d = t((2.0 * cv[i] - r * r * r * sb) / kk)
        for k in range(kk):
            gx[i, k] = (r * w[k]) * gy[i, k] + c0 + d * (x[i, k] - m)
    for k in range(kk):
        gw[k] = s64[k]
        gb[k] = s64[np.uint64(kk + k)]


@numba.njit(**_OPTS)
def cols_forward(x, w, b, y, mean, var, s64, st, eps, center):
    t = x.dtype.type
    n, c = x.shape
    m, v = s64[:c], s64[c:]
    mt, scale = st[:c], st[c:]
    if center:
        for i in range(n):
            for j in range(c):
                m[j] += x[i, j]
    for j in range(c):
        m[j] /= n
        mt[j] = m[j]
    for i in range(n):
        for j in range(c):
            d = x[i, j] - mt[j]
            v[j] += d * d
    for j in range(c):
        v[j] /= n
        scale[j] = t(w[j] / math.sqrt(v[j] + eps))
        mean[j] = m[j]
        var[j] = v[j]
    for i in range(n):
        for j in range(c):
            y[i, j] = (x[i, j] - mt[j]) * scale[j] + b[j]


@numba.njit(**_OPTS)
def cols_backward(gy, cm, cv, x, w, gx, gw, gb, s64, st, eps, center):
    t = x.dtype.type
    n, c = x.shape
    sg, sgx, m, v = s64[:c], s64[c:2 * c], s64[2 * c:3 * c], s64[3 * c:]
    mt, a, c0, d = st[:c], st[c:2 * c], st[2 * c:3 * c], st[3 * c:]
    if center:
        for i in range(n):
            for j in range(c):
                m[j] += x[i, j]
    for j in range(c):
        mt[j] = m[j] / n
    for i in range(n):
        for j in range(c):
            dx = x[i, j] - mt[j]
            v[j] += dx * dx
    for i in range(n):
        for j in range(c):
            g = gy[i, j]
            sg[j] += g
            sgx[j] += g * (x[i, j] - mt[j])
    for j in range(c):
        r = 1.0 / math.sqrt(v[j] / n + eps)
        gb[j] = sg[j]
        gw[j] = sgx[j] * r
        a[j] = t(r * w[j])
        c0[j] = t((cm[j] - r * w[j] * sg[j]) / n) if center else t(0)
        d[j] = t((2.0 * cv[j] - r * r * r * w[j] * sgx[j]) / n)
    for i in range(n):
        for j in range(c):
            gx[i, j] = a[j] * gy[i, j] + c0[j] + d[j] * (x[i, j] - mt[j])


@numba.njit(**_OPTS)
def channel_forward(x, w, b, y, mean, var, eps, center):
    t = x.dtype.type
    n, c, s = x.shape
    cnt = n * s
    for j in range(c):
        m = 0.0
        if center:
            for i in range(n):
                acc = t(0)
                for e in range(s):
                    acc += x[i, j, e]
                m += acc
            m /= cnt
        mt = t(m)
        v = 0.0
        for i in range(n):
            acc = t(0)
            for e in range(s):
                d = x[i, j, e] - mt
                acc += d * d
            v += acc
        v /= cnt
        scale, shift = t(w[j] / math.sqrt(v + eps)), b[j]
        for i in range(n):
            for e in range(s):
                y[i, j, e] = (x[i, j, e] - mt) * scale + shift
        mean[j] = m
        var[j] = v


@numba.njit(**_OPTS)
def channel_backward(gy, cm, cv, x, w, gx, gw, gb, eps, center):
    t = x.dtype.type
    n, c, s = x.shape
    cnt = n * s
    for j in range(c):
        m = 0.0
        if center:
            for i in range(n):
                acc = t(0)
                for e in range(s):
                    acc += x[i, j, e]
                m += acc
            m /= cnt
        mt = t(m)
        v = 0.0
        for i in range(n):
            acc = t(0)
            for e in range(s):
                d = x[i, j, e] - mt
                acc += d * d
            v += acc
        r = 1.0 / math.sqrt(v / cnt + eps)
        sg, sgx = 0.0, 0.0
        for i in range(n):
            acc, acc_x = t(0), t(0)
            for e in range(s):
                g = gy[i, j, e]
                acc += g
                acc_x += g * (x[i, j, e] - mt)
            sg += acc
            sgx += acc_x
        gb[j] = sg
        gw[j] = sgx * r
        wj = w[j]
        a = t(r * wj)
        c0 = t((cm[j] - r * wj * sg) / cnt) if center else t(0)
        d = t((2.0 * cv[j] - r * r * r * wj * sgx) / cnt)
        for i in range(n):
            for e in range(s):
                gx[i, j, e] = a * gy[i, j, e] + c0 + d * (x[i, j, e] - mt)


@numba.njit(**_OPTS)
def group_forward(x, w, b, y, mean, var, eps, center):
    t = x.dtype.type
    n, g, kk, s = x.shape
    cnt = kk * s
    for i in range(n):
        for j in range(g):
            m = 0.0
            if center:
                for k in range(kk):
                    acc = t(0)
                    for e in range(s):
                        acc += x[i, j, k, e]
                    m += acc
                m /= cnt
            mt = t(m)
            v = 0.0
            for k in range(kk):
                acc = t(0)
                for e in range(s):
                    d = x[i, j, k, e] - mt
                    acc += d * d
                v += acc
            v /= cnt
            r = 1.0 / math.sqrt(v + eps)
            for k in range(kk):
                scale, shift = t(r * w[j * kk + k]), b[j * kk + k]
                for e in range(s):
                    y[i, j, k, e] = (x[i, j, k, e] - mt) * scale + shift
            mean[i, j] = m
            var[i, j] = v


@numba.njit(**_OPTS)
def group_backward(gy, cm, cv, x, w, gx, gw, gb, s64, st, eps, center):
    t = x.dtype.type
    n, g, kk, s = x.shape
    cnt = kk * s
    gw64, gb64 = s64[:g * kk], s64[g * kk:]
    for i in range(n):
        for j in range(g):
            m = 0.0
            if center:
                for k in range(kk):
                    acc = t(0)
                    for e in range(s):
                        acc += x[i, j, k, e]
                    m += acc
                m /= cnt
            mt = t(m)
            v = 0.0
            for k in range(kk):
                acc = t(0)
                for e in range(s):
                    d = x[i, j, k, e] - mt
                    acc += d * d
                v += acc
            r = 1.0 / math.sqrt(v / cnt + eps)
            sa, sb = 0.0, 0.0  # sum(gy * w), sum(gy * w * (x - m))
            for k in range(kk):
                acc, acc_x = t(0), t(0)
                for e in range(s):
                    ge = gy[i, j, k, e]
                    acc += ge
                    acc_x += ge * (x[i, j, k, e] - mt)
                q = j * kk + k
                gb64[q] += acc
                gw64[q] += acc_x * r
                sa += acc * w[q]
                sb += acc_x * w[q]
            c0 = t((cm[i, j] - r * sa) / cnt) if center else t(0)
            d = t((2.0 * cv[i, j] - r * r * r * sb) / cnt)
            for k in range(kk):
                a = t(r * w[j * kk + k])
                for e in range(s):
                    gx[i, j, k, e] = a * gy[i, j, k, e] + c0 + d * (x[i, j, k, e] - mt)
    for q in range(g * kk):
        gw[q] = gw64[q]
        gb[q] = gb64[q]


# the rank of x and of the statistics for each kernel family
_RANKS = {"row": (2, 1), "cols": (2, 1), "channel": (3, 1), "group": (4, 2)}
# Kernels with zeroed scratch (float64, then the input dtype; SCRATCH[name](x view shape, w
# size) gives their sizes) passed by the host: an allocation inside a kernel costs seconds of
# cold compile.
SCRATCH = {"row_backward": lambda shape, k: (2 * k, 2 * k),
           "cols_forward": lambda shape, k: (2 * k, 2 * k),
           "cols_backward": lambda shape, k: (4 * k, 4 * k),
           "group_backward": lambda shape, k: (2 * k, 0)}


def signature(name, dtype):
    """The one Numba signature of kernel ``name`` for float ``dtype`` (C-contiguous arrays)."""
    t = numba.from_dtype(np.dtype(dtype))
    big, stat = _RANKS[name.split("_")[0]]

    def arr(nd, readonly=False):  # inputs are read-only views (see normalization._c)
        return numba.types.Array(t, nd, "C", readonly=readonly)

    if name.endswith("forward"):  # x, w, b; y, mean, var
        arrays = [arr(big, True), arr(1, True), arr(1, True), arr(big), arr(stat), arr(stat)]
    else:  # gy, cm, cv, x, w; gx, gw, gb
        arrays = [arr(big, True), arr(stat, True), arr(stat, True), arr(big, True),
                  arr(1, True), arr(big), arr(1), arr(1)]
    if name in SCRATCH:
        arrays += [numba.types.Array(numba.float64, 1, "C"), arr(1)]
    return tuple(arrays) + (numba.types.float64, numba.types.boolean)
