"""Convolution kernels (fnx/core/ops/conv.py's impls): im2col, which writes the column matrix
of a chunk of images in the layout the GEMM reads, and col2im, its adjoint (scatter-add).

Images are ``(N, C, H, W)`` (1-D convolutions use H = 1). The column buffer is flat,
``(images, C * kh * kw, oh * ow)`` in C order: row ``(c, a, b)`` holds, for every output
position ``(i, j)``, the input element under kernel tap ``(a, b)``. That element sits at frame
position ``(i * sh + a * dh, j * sw + b * dw)`` of the input dilated by ``(lh, lw)`` and padded
by ``(ph, pw)`` in front (negative: cropped); positions off the input, or between dilated
elements, read 0. Nothing is materialized: neither the padded nor the dilated input.

Indices are cast to unsigned (``_U``) where arrays are read or written: Numba wraps negative
signed indices, and that test keeps LLVM from vectorizing the copies (15x slower, measured).
When ``sw == lw == lh == 1`` and an output row advances through the input exactly as a column
row does (``sh * W == ow``, the stride-1 'same' case), all rows of one tap are a single
contiguous run, copied in one loop; the few wrapped positions at the row ends are then zeroed.
"""

import numba
import numpy as np

_OPTS = dict(cache=True, error_model="numpy", boundscheck=False)
_U = np.uint64


@numba.njit(inline="always")
def _span(off, step, size, count):
    """``[lo, hi)``: the output indices ``t`` in ``[0, count)`` with ``0 <= t*step + off <
    size``."""
    lo = 0 if off >= 0 else (step - 1 - off) // step
    hi = 0 if size - off <= 0 else (size - off + step - 1) // step
    lo = min(lo, count)
    return lo, min(max(hi, lo), count)


@numba.njit(inline="always")
def _source(f, dil, size):
    """Index into the undilated input of frame offset ``f`` (already minus the padding), or
    -1 when it falls off the input or between dilated elements."""
    if f < 0 or f % dil != 0:
        return -1
    f //= dil
    return f if f < size else -1


@numba.njit(**_OPTS)
def im2col(n0, n1, kh, kw, sh, sw, ph, pw, dh, dw, lh, lw, oh, ow, x, cols):
    """Columns of images ``n0 .. n1 - 1`` of ``x`` into ``cols`` (from its start)."""
    _, c_n, h_n, w_n = x.shape
    xf = x.reshape(x.size)
    zero = x.dtype.type(0)
    p = oh * ow
    plane = h_n * w_n
    plain = lh == 1 and lw == 1
    merge = plain and sw == 1 and sh * w_n == ow
    dst = 0
    for n in range(n0, n1):
        for c in range(c_n):
            base = (n * c_n + c) * plane
            for a in range(kh):
                for b in range(kw):
                    offh = a * dh - ph
                    offw = b * dw - pw
                    if not plain:
                        for i in range(oh):
                            r = _source(i * sh + offh, lh, h_n)
                            for j in range(ow):
                                s = _source(j * sw + offw, lw, w_n)
                                v = zero
                                if r >= 0 and s >= 0:
                                    v = xf[_U(base + r * w_n + s)]
                                cols[_U(dst + i * ow + j)] = v
                        dst += p
                        continue
                    i0, i1 = _span(offh, sh, h_n, oh)
                    j0, j1 = _span(offw, sw, w_n, ow)
                    for q in range(i0 * ow):
                        cols[_U(dst + q)] = zero
                    if merge and i1 > i0:
                        # one run over rows i0 .. i1-1; clip it to this image's plane
                        q0, q1 = i0 * ow, i1 * ow
                        s0 = base + (i0 * sh + offh) * w_n + offw - q0
                        lo = min(max(q0, base - s0), q1)
                        hi = max(min(q1, base + plane - s0), lo)
                        for q in range(q0, lo):
                            cols[_U(dst + q)] = zero
                        for q in range(lo, hi):
                            cols[_U(dst + q)] = xf[_U(s0 + q)]
                        for q in range(hi, q1):
                            cols[_U(dst + q)] = zero
                        for i in range(i0, i1):
                            d = dst + i * ow
                            for j in range(j0):
                                cols[_U(d + j)] = zero
                            for j in range(j1, ow):
                                cols[_U(d + j)] = zero
                    else:
                        for i in range(i0, i1):
                            src = base + (i * sh + offh) * w_n + offw
                            d = dst + i * ow
                            for j in range(j0):
                                cols[_U(d + j)] = zero
                            if sw == 1:
                                for j in range(j0, j1):
                                    cols[_U(d + j)] = xf[_U(src + j)]
                            else:
                                for j in range(j0, j1):
                                    cols[_U(d + j)] = xf[_U(src + j * sw)]
                            for j in range(j1, ow):
                                cols[_U(d + j)] = zero
                    for q in range(i1 * ow, p):
                        cols[_U(dst + q)] = zero
                    dst += p


@numba.njit(**_OPTS)
def col2im(n0, n1, kh, kw, sh, sw, ph, pw, dh, dw, lh, lw, oh, ow, cols, dx):
    """The adjoint of ``im2col``: adds the columns of images ``n0 .. n1 - 1`` (from the start
    of ``cols``) into ``dx``. May overwrite the entries of ``cols`` that read 0."""
    _, c_n, h_n, w_n = dx.shape
    df = dx.reshape(dx.size)
    zero = dx.dtype.type(0)
    p = oh * ow
    plane = h_n * w_n
    plain = lh == 1 and lw == 1
    merge = plain and sw == 1 and sh * w_n == ow
    dst = 0
    for n in range(n0, n1):
        for c in range(c_n):
            base = (n * c_n + c) * plane
            for a in range(kh):
                for b in range(kw):
                    offh = a * dh - ph
                    offw = b * dw - pw
                    if not plain:
                        for i in range(oh):
                            r = _source(i * sh + offh, lh, h_n)
                            if r < 0:
                                continue
                            for j in range(ow):
                                s = _source(j * sw + offw, lw, w_n)
                                if s >= 0:
                                    df[_U(base + r * w_n + s)] += cols[_U(dst + i * ow + j)]
                        dst += p
                        continue
                    i0, i1 = _span(offh, sh, h_n, oh)
                    j0, j1 = _span(offw, sw, w_n, ow)
                    if merge and i1 > i0:
                        # zero the row ends that wrap, then add one run (clipped to the plane)
                        for i in range(i0, i1):
                            d = dst + i * ow
                            for j in range(j0):
                                cols[_U(d + j)] = zero
                            for j in range(j1, ow):
                                cols[_U(d + j)] = zero
                        q0, q1 = i0 * ow, i1 * ow
                        s0 = base + (i0 * sh + offh) * w_n + offw - q0
                        lo = min(max(q0, base - s0), q1)
                        hi = max(min(q1, base + plane - s0), lo)
                        for q in range(lo, hi):
                            df[_U(s0 + q)] += cols[_U(dst + q)]
                    else:
                        for i in range(i0, i1):
                            src = base + (i * sh + offh) * w_n + offw
                            d = dst + i * ow
                            if sw == 1:
                                for j in range(j0, j1):
                                    df[_U(src + j)] += cols[_U(d + j)]
                            else:
                                for j in range(j0, j1):
                                    df[_U(src + j * sw)] += cols[_U(d + j)]
                    dst += p
