"""Normalization kernels (fnx/core/ops/normalization.py's impls): the forward pass
``y = (x - mean) * rsqrt(var + eps) * w + b`` with the statistics computed in the same call,
and the backward pass (the two sums it needs in one sweep, the input gradient in a second).

Two layouts, each statistic computed over a block that stays in cache between its sweeps:

* ``channel`` (BatchNorm): ``x`` is ``(N, C, S)``; one statistic per ``c`` over ``(N, S)``;
  ``w``, ``b``, ``mean``, ``var`` are ``(C,)``.
* ``group`` (LayerNorm, GroupNorm, InstanceNorm, RMSNorm): ``x`` is ``(N, G, K, S)``; one
  statistic per ``(n, g)`` over the contiguous block ``(K, S)``; ``w``, ``b`` are ``(G * K,)``
  (broadcast over ``S``), ``mean``, ``var`` are ``(N, G)``.

``center=False`` is the RMS form (no mean subtracted: ``var`` is the mean square, ``mean`` 0).
Sums run in loops that store nothing (a store beside a reassociated sum would let LLVM pick a
vectorized or a scalar order at run time by buffer overlap, and results would depend on where
buffers sit). The backward also takes the cotangents of ``mean`` and
``var`` (zero unless a caller differentiates the statistics themselves).
"""

import math

import numba
import numpy as np

_OPTS = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True,
             fastmath={"contract", "reassoc"})
# Sums run in the input dtype over chunks of this many elements (vectorized, 16 lanes) and
# add the chunk sums in float64: float32 speed, and long BatchNorm reductions stay accurate.
_CHUNK = 1024
_FLUSH = 64  # LayerNorm's weight gradient: rows summed in the input dtype, then in float64


# The helpers take 1-D contiguous views and loop from 0: an index Numba cannot prove
# non-negative (range(lo, hi)) gets a wraparound branch that stops vectorization (10x).


@numba.njit(**_OPTS)
def _sum(v):
    total = 0.0
    for lo in range(0, v.size, _CHUNK):
        c = v[lo:lo + _CHUNK]
        acc = v.dtype.type(0)
        for e in range(c.size):
            acc += c[e]
        total += acc
    return total


@numba.njit(**_OPTS)
def _sumsq(v, m):
    """``sum((v - m) ** 2)``."""
    m = v.dtype.type(m)
    total = 0.0
    for lo in range(0, v.size, _CHUNK):
        c = v[lo:lo + _CHUNK]
        acc = v.dtype.type(0)
        for e in range(c.size):
            d = c[e] - m
            acc += d * d
        total += acc
    return total


@numba.njit(**_OPTS)
def _sums(a, v, m):
    """``(sum(a), sum(a * (v - m)))`` in one sweep."""
    m = v.dtype.type(m)
    total = 0.0
    total_v = 0.0
    for lo in range(0, v.size, _CHUNK):
        ca, cv = a[lo:lo + _CHUNK], v[lo:lo + _CHUNK]
        acc = v.dtype.type(0)
        acc_v = v.dtype.type(0)
        for e in range(cv.size):
            acc += ca[e]
            acc_v += ca[e] * (cv[e] - m)
        total += acc
        total_v += acc_v
    return total, total_v


@numba.njit(**_OPTS)
def _scale_shift(x, y, m, scale, shift):
    """``y = (x - m) * scale + shift`` (scalars)."""
    t = x.dtype.type
    m, scale, shift = t(m), t(scale), t(shift)
    for e in range(x.size):
        y[e] = (x[e] - m) * scale + shift


@numba.njit(**_OPTS)
def _input_grad(gy, x, gx, a, c0, d, m):
    """``gx = a * gy + c0 + d * (x - m)`` (scalars)."""
    t = x.dtype.type
    a, c0, d, m = t(a), t(c0), t(d), t(m)
    for e in range(x.size):
        gx[e] = a * gy[e] + c0 + d * (x[e] - m)


@numba.njit(**_OPTS)
def _cols_forward(x, w, b, y, mean, var, eps, center):
    """BatchNorm of ``(N, C)`` rows (BatchNorm1d): per-channel sums accumulate along each
    row, so the loops run over contiguous channels instead of striding down columns."""
    t = x.dtype.type
    n, c = x.shape
    m = np.zeros(c)
    if center:
        for i in range(n):
            for j in range(c):
                m[j] += x[i, j]
        m /= n
    mt = m.astype(x.dtype)
    v = np.zeros(c)
    for i in range(n):
        for j in range(c):
            d = x[i, j] - mt[j]
            v[j] += d * d
    v /= n
    scale = np.empty(c, x.dtype)
    for j in range(c):
        scale[j] = t(w[j] / math.sqrt(v[j] + eps))
        mean[j] = m[j]
        var[j] = v[j]
    for i in range(n):
        for j in range(c):
            y[i, j] = (x[i, j] - mt[j]) * scale[j] + b[j]


@numba.njit(**_OPTS)
def _cols_backward(gy, cm, cv, x, mean, var, w, gx, gw, gb, eps, center):
    """The backward of ``_cols_forward``."""
    t = x.dtype.type
    n, c = x.shape
    mt = mean.copy() if center else np.zeros(c, x.dtype)
    sg = np.zeros(c)
    sgx = np.zeros(c)
    for i in range(n):
        for j in range(c):
            g = gy[i, j]
            sg[j] += g
            sgx[j] += g * (x[i, j] - mt[j])
    a = np.empty(c, x.dtype)
    c0 = np.empty(c, x.dtype)
    d = np.empty(c, x.dtype)
    for j in range(c):
        r = 1.0 / math.sqrt(var[j] + eps)
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
    n, c, _ = x.shape
    if x.shape[2] == 1:
        _cols_forward(x.reshape((n, c)), w, b, y.reshape((n, c)), mean, var, eps, center)
        return
    cnt = n * x.shape[2]
    for j in range(c):
        m = 0.0
        if center:
            acc = 0.0
            for i in range(n):
                acc += _sum(x[i, j])
            m = acc / cnt
        acc2 = 0.0
        for i in range(n):
            acc2 += _sumsq(x[i, j], m)
        v = acc2 / cnt
        scale = w[j] / math.sqrt(v + eps)
        for i in range(n):
            _scale_shift(x[i, j], y[i, j], m, scale, b[j])
        mean[j] = m
        var[j] = v


@numba.njit(**_OPTS)
def channel_backward(gy, cm, cv, x, mean, var, w, gx, gw, gb, eps, center):
    n, c, _ = x.shape
    if x.shape[2] == 1:
        _cols_backward(gy.reshape((n, c)), cm, cv, x.reshape((n, c)), mean, var, w,
                       gx.reshape((n, c)), gw, gb, eps, center)
        return
    cnt = n * x.shape[2]
    for j in range(c):
        m = mean[j] if center else 0.0
        r = 1.0 / math.sqrt(var[j] + eps)
        sg = 0.0
        sgx = 0.0
        for i in range(n):
            a, av = _sums(gy[i, j], x[i, j], m)
            sg += a
            sgx += av
        gb[j] = sg
        gw[j] = sgx * r
        # gx = r*w*gy + c0 + d*(x - m): the projection that removes the gradient's components
        # along the mean and the normalized input, plus the statistics' own cotangents
        wj = w[j]
        c0 = (cm[j] - r * wj * sg) / cnt if center else 0.0
        d = (2.0 * cv[j] - r * r * r * wj * sgx) / cnt
        for i in range(n):
            _input_grad(gy[i, j], x[i, j], gx[i, j], r * wj, c0, d, m)


@numba.njit(**_OPTS)
def _row_forward(x, w, b, y, mean, var, eps, center):
    """LayerNorm / RMSNorm rows ``x`` ``(R, K)`` with the weight along the row: short rows
    (in L1), so loops run straight over them in the input dtype, without per-row views."""
    t = x.dtype.type
    rows, kk = x.shape
    for i in range(rows):
        m = t(0)
        if center:
            acc = t(0)
            for k in range(kk):
                acc += x[i, k]
            m = acc / t(kk)
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
def group_forward(x, w, b, y, mean, var, eps, center):
    n, g, kk, s = x.shape
    if g == 1 and s == 1:
        _row_forward(x.reshape((n, kk)), w, b, y.reshape((n, kk)), mean.reshape(n),
                     var.reshape(n), eps, center)
        return
    cnt = kk * s
    xf = x.reshape((n, g, cnt))
    for i in range(n):
        for j in range(g):
            m = _sum(xf[i, j]) / cnt if center else 0.0
            v = _sumsq(xf[i, j], m) / cnt
            r = 1.0 / math.sqrt(v + eps)
            for k in range(kk):
                _scale_shift(x[i, j, k], y[i, j, k], m, r * w[j * kk + k], b[j * kk + k])
            mean[i, j] = m
            var[i, j] = v


@numba.njit(**_OPTS)
def _row_backward(gy, cm, cv, x, mean, var, w, gx, gw, gb, eps, center):
    """The backward of ``_row_forward``; ``gw``, ``gb`` accumulate over rows in float64."""
    t = x.dtype.type
    rows, kk = x.shape
    gw64 = np.zeros(kk)
    gb64 = np.zeros(kk)
    gw32 = np.zeros(kk, x.dtype)
    gb32 = np.zeros(kk, x.dtype)
    for i in range(rows):
        m = mean[i] if center else t(0)
        r = t(1.0 / math.sqrt(var[i] + eps))
        sa = t(0)  # sum(gy * w)
        sb = t(0)  # sum(gy * w * (x - m))
        for k in range(kk):
            gwk = gy[i, k] * w[k]
            sa += gwk
            sb += gwk * (x[i, k] - m)
        for k in range(kk):
            gb32[k] += gy[i, k]
            gw32[k] += gy[i, k] * ((x[i, k] - m) * r)
        if i % _FLUSH == _FLUSH - 1 or i == rows - 1:
            for k in range(kk):
                gb64[k] += gb32[k]
                gw64[k] += gw32[k]
                gb32[k] = 0
                gw32[k] = 0
        c0 = t((cm[i] - r * sa) / kk) if center else t(0)
        d = t((2.0 * cv[i] - r * r * r * sb) / kk)
        for k in range(kk):
            gx[i, k] = (r * w[k]) * gy[i, k] + c0 + d * (x[i, k] - m)
    for k in range(kk):
        gw[k] = gw64[k]
        gb[k] = gb64[k]


@numba.njit(**_OPTS)
def group_backward(gy, cm, cv, x, mean, var, w, gx, gw, gb, eps, center):
    n, g, kk, s = x.shape
    if g == 1 and s == 1:
        _row_backward(gy.reshape((n, kk)), cm.reshape(n), cv.reshape(n), x.reshape((n, kk)),
                      mean.reshape(n), var.reshape(n), w, gx.reshape((n, kk)), gw, gb, eps,
                      center)
        return
    cnt = kk * s
    gw64 = np.zeros(g * kk)
    gb64 = np.zeros(g * kk)
    for i in range(n):
        for j in range(g):
            m = mean[i, j] if center else 0.0
            r = 1.0 / math.sqrt(var[i, j] + eps)
            sa = 0.0  # sum(gy * w)
            sb = 0.0  # sum(gy * w * (x - m))
            for k in range(kk):
                sg, sgx = _sums(gy[i, j, k], x[i, j, k], m)
                gb64[j * kk + k] += sg
                gw64[j * kk + k] += sgx * r
                sa += sg * w[j * kk + k]
                sb += sgx * w[j * kk + k]
            c0 = (cm[i, j] - r * sa) / cnt if center else 0.0
            d = (2.0 * cv[i, j] - r * r * r * sb) / cnt
            for k in range(kk):
                _input_grad(gy[i, j, k], x[i, j, k], gx[i, j, k], r * w[j * kk + k], c0, d, m)
    for e in range(g * kk):
        gw[e] = gw64[e]
        gb[e] = gb64[e]


def signature(name, dtype):
    """The one Numba signature of kernel ``name`` for float ``dtype`` (C-contiguous arrays)."""
    t = numba.from_dtype(np.dtype(dtype))
    group = name.startswith("group")
    big, stat = (4, 2) if group else (3, 1)

    def arr(nd):
        return numba.types.Array(t, nd, "C")

    if name.endswith("forward"):  # x, w, b, y, mean, var
        arrays = [arr(big), arr(1), arr(1), arr(big), arr(stat), arr(stat)]
    else:  # gy, cm, cv, x, mean, var, w, gx, gw, gb
        arrays = [arr(big), arr(stat), arr(stat), arr(big), arr(stat), arr(stat), arr(1),
                  arr(big), arr(1), arr(1)]
    return tuple(arrays) + (numba.types.float64, numba.types.boolean)
