"""The convolution kernel (fnx/core/ops/conv.py's impls): im2col, which writes the column
matrix of a chunk of images in the layout the GEMM reads, and col2im, its adjoint
(scatter-add), as one function (one compile) with a direction flag.

Images are ``(N, C, H, W)``, passed flat with their sizes (1-D convolutions use H = 1). The
column buffer is flat, ``(images, C * kh * kw, oh * ow)`` in C order: row ``(c, a, b)`` holds,
for every output position ``(i, j)``, the input element at ``(i * sh + a * dh - ph,
j * sw + b * dw - pw)``, or 0 where that falls off the input (padding; a negative ``ph``/``pw``
crops). No padded input is ever materialized. (Input dilation takes the array-module path.)

Two things keep these fast and quick to compile:

* Indices are cast to unsigned (``_U``) where arrays are read or written: Numba wraps negative
  signed indices, and that test keeps LLVM from vectorizing the copies (15x slower, measured).
* One copy (and one add) loop. A tap's valid outputs form one run per output row;
  when a column row advances through the input exactly as an output row does
  (``sw == 1 and sh * W == ow``: stride-1 'same' convolutions), the rows of a tap form a
  single run, copied in one pass, whose few wrapped entries at the row ends are then zeroed
  (short rows alone would leave LLVM's vector loop unused). Every column entry is written
  once.
* One function for both directions, with only its last array written: one compile per dtype,
  and read-only inputs (fnx arrays' buffers) need no copy and no second signature.
"""

import numba
import numpy as np

_OPTS = dict(cache=True, error_model="numpy", boundscheck=False)
_U = np.uint64


@numba.njit(**_OPTS)
def _span(off, step, size, count):
    """``[lo, hi)``: the outputs ``t`` in ``[0, count)`` whose input ``t * step + off`` is in
    ``[0, size)``."""
    lo = 0 if off >= 0 else (step - 1 - off) // step
    hi = 0 if size - off <= 0 else (size - off + step - 1) // step
    lo = lo if lo < count else count
    return lo, (lo if hi < lo else (hi if hi < count else count))


@numba.njit(**_OPTS)
def columns(adjoint, n0, n1, c_n, h_n, w_n, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, a, b):
    """im2col (``adjoint == 0``): the columns of images ``n0 .. n1 - 1`` of flat input ``a``
    into ``b`` (from its start). col2im (``adjoint == 1``): the columns ``a`` of those images
    added into the flat input gradient ``b``. Only ``b`` is written, so ``a`` may be a
    read-only buffer."""
    zero = b.dtype.type(0)
    p = oh * ow
    plane = h_n * w_n
    merge = sw == 1 and sh * w_n == ow
    saved = np.empty(p if merge and adjoint else 0, b.dtype)
    for n in range(n0, n1):
        for c in range(c_n):
            base = (n * c_n + c) * plane
            for ka in range(kh):
                offh = ka * dh - ph
                i0, i1 = _span(offh, sh, h_n, oh)
                for kb in range(kw):
                    offw = kb * dw - pw
                    j0, j1 = _span(offw, sw, w_n, ow)
                    dst = ((((n - n0) * c_n + c) * kh + ka) * kw + kb) * p + i0 * ow
                    src = base + (i0 * sh + offh) * w_n + offw
                    count, dst_step, src_step, lo, hi = i1 - i0, ow, sh * w_n, j0, j1
                    if merge:
                        # the rows as one run, clipped to this image's plane
                        count, run = 1 if i1 > i0 else 0, (i1 - i0) * ow
                        lo = base - src if base > src else 0
                        lo = lo if lo < run else run
                        hi = base + plane - src
                        hi = lo if hi < lo else (hi if hi < run else run)
                    for phase in range(3):
                        if phase == 1:
                            for r in range(count):
                                d, s = dst + r * dst_step, src + r * src_step
                                if adjoint:
                                    for j in range(lo, hi):
                                        b[_U(s + j * sw)] += a[_U(d + j)]
                                else:
                                    for j in range(lo, hi):
                                        b[_U(d + j)] = a[_U(s + j * sw)]
                        elif not adjoint and phase == 2:
                            # zero what no run wrote (or a merged run wrote from the
                            # neighbouring row): the output rows off the input, then the
                            # columns off it in the other rows
                            row, valid = dst - i0 * ow, (i1 - i0) * ow
                            for q in range(p - valid):
                                b[_U(row + (q if q < i0 * ow else q + valid))] = zero
                            for i in range(i1 - i0):
                                for t in range(ow - (j1 - j0)):
                                    b[_U(dst + i * ow + (t if t < j0 else t + j1 - j0))] = zero
                        elif adjoint and merge:
                            # keep a merged run's entries off the input from adding to the
                            # neighbouring row: save what they hit before the run, restore
                            # it after (exact)
                            k = 0
                            for i in range(i1 - i0):
                                for t in range(ow - (j1 - j0)):
                                    q = i * ow + (t if t < j0 else t + j1 - j0)
                                    if lo <= q < hi:
                                        if phase == 0:
                                            saved[k] = b[_U(src + q)]
                                        else:
                                            b[_U(src + q)] = saved[k]
                                        k += 1
