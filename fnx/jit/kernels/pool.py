"""Pooling kernels (fnx/core/ops/pooling.py's impls): max and average pooling, the max pool's
gather/scatter-add by argmax, and the average pool's spread-back.

Arrays are flat planes ``(L, S)`` (L: the folded leading dims; S: the spatial dims in
row-major order). A window is described per spatial dim by a row of an ``(out, 3)`` int64
bounds table: its first in-bounds element (past the input for a window wholly in the
padding, which takes none), how many elements it takes (``step`` apart: the dilation) and,
for the average, that dim's factor of the divisor. The host computes the tables (padding,
ceil mode, adaptive windows, count_include_pad), so one kernel serves fixed and adaptive
windows and no window is ever materialized. Max pooling has two spatial dims (1-D
uses H = 1), average pooling three (``interpolate(mode='area')`` of 5-D input).

Full 2x2 windows (the common ``MaxPool2d(2)``) call the window loops with constant sizes,
which LLVM unrolls: about 2x faster than the loops over run-time sizes, with no compile per
window size (a 3x3 case as well cost 0.2 s more compile time per kernel).
"""

import numba
import numpy as np

_OPTS = dict(cache=True, error_model="numpy", boundscheck=False)


@numba.njit(error_model="numpy", boundscheck=False)
def _window_max(x, ll, p0, nh, nw, row_step, col_step):
    # PyTorch's ``val > best or isnan(val)`` as selects, not a branch (random data would
    # mispredict it half the time): the first maximum wins, the last NaN wins. Starting at the
    # window's first element gives PyTorch's index for a window of -inf.
    best = x[ll, p0]
    best_i = p0
    for jh in range(nh):
        row = p0 + jh * row_step
        for jw in range(nw):
            p = row + jw * col_step
            v = x[ll, p]
            take = (v > best) | (v != v)
            best = v if take else best
            best_i = p if take else best_i
    return best, best_i


@numba.njit(**_OPTS)
def max_pool(step_h, step_w, width, x, out, idx, bh, bw):
    """Window maxima of ``x`` (L, H * W) and their flat ``h * W + w`` positions into ``out``
    and ``idx`` (L, OH * OW)."""
    oh_n, ow_n = bh.shape[0], bw.shape[0]
    row_step = step_h * width
    for ll in range(x.shape[0]):
        for oh in range(oh_n):
            h0, nh = bh[oh, 0], bh[oh, 1]
            for ow in range(ow_n):
                w0, nw = bw[ow, 0], bw[ow, 1]
                p0 = h0 * width + w0
                q = oh * ow_n + ow
                if nh == 2 and nw == 2:
                    best, best_i = _window_max(x, ll, p0, 2, 2, row_step, step_w)
                elif nh * nw == 0:  # a window wholly in the padding (dilation): PyTorch's
                    # value and index (its first position, past the input), kept outside the
                    # plane (PyTorch's can name the next row's element): no gradient flows
                    best, best_i = x.dtype.type(-np.inf), max(p0, x.shape[1])
                else:
                    best, best_i = _window_max(x, ll, p0, nh, nw, row_step, step_w)
                out[ll, q] = best
                idx[ll, q] = best_i


@numba.njit(**_OPTS)
def pool_gather(t, idx, out):
    """``out[l, o] = t[l, idx[l, o]]`` (an index outside the plane reads 0)."""
    size = t.shape[1]
    for ll in range(t.shape[0]):
        for o in range(idx.shape[1]):
            i = idx[ll, o]
            out[ll, o] = t[ll, i] if 0 <= i < size else 0


@numba.njit(**_OPTS)
def pool_scatter_add(ct, idx, out):
    """``out[l, idx[l, o]] = sum of ct[l, o]`` (indices outside the plane are dropped)."""
    size = out.shape[1]
    for ll in range(ct.shape[0]):
        for i in range(size):  # zeroed plane by plane, while it is in cache for the adds
            out[ll, i] = 0
        for o in range(ct.shape[1]):
            i = idx[ll, o]
            if 0 <= i < size:
                out[ll, i] += ct[ll, o]


@numba.njit(error_model="numpy", boundscheck=False)
def _window_sum(x, ll, p0, nd, nh, nw, plane, width):
    s = x.dtype.type(0)
    for jd in range(nd):
        for jh in range(nh):
            row = p0 + jd * plane + jh * width
            for jw in range(nw):
                s += x[ll, row + jw]
    return s


@numba.njit(error_model="numpy", boundscheck=False)
def _window_add(out, ll, p0, nd, nh, nw, plane, width, g):
    for jd in range(nd):
        for jh in range(nh):
            row = p0 + jd * plane + jh * width
            for jw in range(nw):
                out[ll, row + jw] += g


@numba.njit(**_OPTS)
def avg_pool(height, width, transpose, src, dst, bd, bh, bw):
    """Average pooling of ``src`` (L, D * H * W) into ``dst`` (L, OD * OH * OW): window sums
    over the divisor ``bd[od, 2] * bh[oh, 2] * bw[ow, 2]``; with ``transpose`` its transpose
    from ``src`` (L, OD * OH * OW) into ``dst`` (L, D * H * W): each cotangent over its
    divisor added back to every element of its window. One kernel for both directions: one
    compile for a training step's forward and backward."""
    od_n, oh_n, ow_n = bd.shape[0], bh.shape[0], bw.shape[0]
    plane = height * width
    for ll in range(src.shape[0]):
        if transpose:
            for i in range(dst.shape[1]):  # zeroed plane by plane, while it is in cache
                dst[ll, i] = 0
        q = 0
        for od in range(od_n):
            d0, nd = bd[od, 0], bd[od, 1]
            for oh in range(oh_n):
                h0, nh = bh[oh, 0], bh[oh, 1]
                for ow in range(ow_n):
                    w0, nw = bw[ow, 0], bw[ow, 1]
                    p0 = d0 * plane + h0 * width + w0
                    div = src.dtype.type(bd[od, 2] * bh[oh, 2] * bw[ow, 2])
                    full = nd == 1 and nh == 2 and nw == 2
                    if transpose:
                        g = src[ll, q] / div
                        if full:
                            _window_add(dst, ll, p0, 1, 2, 2, plane, width, g)
                        else:
                            _window_add(dst, ll, p0, nd, nh, nw, plane, width, g)
                    elif full:
                        dst[ll, q] = _window_sum(src, ll, p0, 1, 2, 2, plane, width) / div
                    else:
                        dst[ll, q] = _window_sum(src, ll, p0, nd, nh, nw, plane, width) / div
                    q += 1
