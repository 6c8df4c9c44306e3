"""The convolution kernel (fnx/core/ops/conv.py's impls): each of the three primitives is one
compiled call (``conv``, by mode) that walks the images, building one image's column matrix
(im2col) in a scratch buffer and multiplying it with the weight by one CBLAS GEMM per group
(the routine ``fnx.jit.blas`` registers), or, for the input gradient, multiplying first and
scattering the columns back (col2im). One image's columns stay in cache between im2col and
its GEMM, and no Python runs between images (the host loop over chunks of images that this
replaced cost 0.1-0.7 ms per call at the benchmark shapes, and batched ``np.matmul`` over a
chunk was slower than these per-image products).

Images are ``(N, C, H, W)``, passed flat with their sizes (1-D convolutions use H = 1). The
column matrix of an image is ``(C * kh * kw, oh * ow)`` in C order: row ``(c, a, b)`` holds,
for every output position ``(i, j)``, the input element at ``(i * sh + a * dh - ph,
j * sw + b * dw - pw)``, or 0 where that falls off the input (padding; a negative ``ph``/``pw``
crops). No padded input is ever materialized. (Input dilation takes the array-module path.)
With ``g`` groups, group ``q`` owns the rows ``q * kg .. (q + 1) * kg - 1`` of the columns
(``kg = C / g * kh * kw``) and of the weight matrix ``(O, kg)``'s transpose.

What keeps the column loops fast:

* Indices are cast to unsigned (``_U``) where arrays are read or written: Numba wraps negative
  signed indices, and that test keeps LLVM from vectorizing the copies (15x slower, measured).
* One copy (and one add) loop. A tap's valid outputs form one run per output row;
  when a column row advances through the input exactly as an output row does
  (``sw == 1 and sh * W == ow``: stride-1 'same' convolutions), the rows of a tap form a
  single run, copied in one pass, whose few wrapped entries at the row ends are then zeroed
  (short rows alone would leave LLVM's vector loop unused). Every column entry is written
  once.
* One set of loops for both directions, writing only ``out`` and the scratch: read-only
  inputs (fnx arrays' buffers) need no copy.
"""

import numba
import numpy as np

# the CBLAS sgemm/dgemm that fnx.jit.blas registers: called directly, with the operands'
# addresses, transpose flags and a beta (see ``conv``)
from fnx.jit.blas import DGEMM, NO_TRANS, ROW_MAJOR, SGEMM, TRANS

_OPTS = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True)
_U = np.uint64


@numba.njit(**_OPTS)
def _span(off, step, size, count):
    """``[lo, hi)``: the outputs ``t`` in ``[0, count)`` whose input ``t * step + off`` is in
    ``[0, size)``."""
    lo = 0 if off >= 0 else (step - 1 - off) // step
    hi = 0 if size - off <= 0 else (size - off + step - 1) // step
    lo = lo if lo < count else count
    return lo, (lo if hi < lo else (hi if hi < count else count))


# no_cfunc_wrapper: called only through the dispatcher (the C wrapper adds compile time)
@numba.njit(no_cfunc_wrapper=True, **_OPTS)
def conv(mode, n_n, o, g, c_n, h_n, w_n, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, a, b, cols,
         cols_r, out):
    """The three primitives over all ``n_n`` images, every array flat (``O = o`` output
    channels in ``g`` groups of ``og``, ``P = oh * ow`` output positions, ``kg = C / g * kh *
    kw`` column rows per group, the weight ``(g, og, kg)``):

    * ``mode == 0``, the convolution: ``a`` the images, ``b`` the weight, ``out (N, O, P)``;
    * ``mode == 1``, the input gradient: ``a`` the cotangent ``(N, O, P)``, ``b`` the weight,
      ``out`` the images' gradient (zeroed here, then each image's ``w^T @ ct`` scattered into
      it by col2im);
    * ``mode == 2``, the weight gradient: ``a`` the images, ``b`` the cotangent, ``out`` the
      gradient transposed per group ``(g, kg, og)``: ``cols @ ct^T`` accumulated over the
      images (the GEMM streams both operands along their rows: measured faster than
      ``ct @ cols^T``).

    ``cols`` is scratch for one image's columns (after a call in mode 0 or 2, the last
    image's) and ``cols_r`` a read-only view of it. Cold compile shapes this code: the column
    loops are written once, their arrays selected per mode with one type (read-only source,
    writeable destination), and the products are one call site of CBLAS with addresses (a
    helper function per direction, or ``fnx.jit.blas.gemm``'s typed overload per operand
    type, measured 0.5-1 s more each; the overload also cannot accumulate)."""
    og, p, kg = o // g, oh * ow, c_n // g * kh * kw
    adjoint = mode == 1
    # im2col reads the images and writes the columns; col2im reads the columns and adds
    # them into the images' gradient
    rd = cols_r if adjoint else a
    wr = out if adjoint else cols
    zero = wr.dtype.type(0)
    plane = h_n * w_n
    merge = sw == 1 and sh * w_n == ow
    saved = np.empty(p if merge and adjoint else 0, wr.dtype)
    if mode != 0:
        for i in range(out.shape[0]):
            out[i] = 0
    size = out.itemsize
    for n in range(n_n):
        for step in range(2):
            if (step == 0) == adjoint:
                for q in range(g):
                    # C = op(A) @ op(B) + beta * C, row-major matrices at addresses
                    w_q = b.ctypes.data + q * og * kg * size  # modes 0 and 1
                    cols_q = cols.ctypes.data + q * kg * p * size
                    img_q = (n * o + q * og) * p * size  # image n, group q of (N, O, P)
                    if mode == 0:  # out_nq (og, P) = w_q (og, kg) @ cols_q (kg, P)
                        ta, tb, m, nn, k, beta = NO_TRANS, NO_TRANS, og, p, kg, 0
                        pa, lda, pb, ldb = w_q, kg, cols_q, p
                        pc, ldc = out.ctypes.data + img_q, p
                    elif mode == 1:  # cols_q (kg, P) = w_q^T (kg, og) @ ct_nq (og, P)
                        ta, tb, m, nn, k, beta = TRANS, NO_TRANS, kg, p, og, 0
                        pa, lda, pb, ldb = w_q, kg, a.ctypes.data + img_q, p
                        pc, ldc = cols_q, p
                    else:  # dw_t_q (kg, og) += cols_q (kg, P) @ ct_nq^T (P, og)
                        ta, tb, m, nn, k, beta = NO_TRANS, TRANS, kg, og, p, 1
                        pa, lda, pb, ldb = cols_q, p, b.ctypes.data + img_q, p
                        pc, ldc = out.ctypes.data + q * kg * og * size, og
                    if size == 4:
                        SGEMM(ROW_MAJOR, ta, tb, m, nn, k, np.float32(1), pa, lda, pb, ldb,
                               np.float32(beta), pc, ldc)
                    else:
                        DGEMM(ROW_MAJOR, ta, tb, m, nn, k, np.float64(1), pa, lda, pb, ldb,
                               np.float64(beta), pc, ldc)
                continue
            # im2col of image n (col2im: its columns added back); column row ``tap`` is
            # (channel, window row, window column)
            for tap in range(c_n * kh * kw):
                c, ka, kb = tap // (kh * kw), tap // kw % kh, tap % kw
                base = (n * c_n + c) * plane
                offh, offw = ka * dh - ph, kb * dw - pw
                i0, i1 = _span(offh, sh, h_n, oh)
                j0, j1 = _span(offw, sw, w_n, ow)
                dst = tap * p + i0 * ow
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
                                    wr[_U(s + j * sw)] += rd[_U(d + j)]
                            else:
                                for j in range(lo, hi):
                                    wr[_U(d + j)] = rd[_U(s + j * sw)]
                    elif not adjoint and phase == 2:
                        # zero what no run wrote (or a merged run wrote from the neighbouring
                        # row): the output rows off the input, then the columns off it in
                        # the other rows
                        row, valid = dst - i0 * ow, (i1 - i0) * ow
                        for q in range(p - valid):
                            wr[_U(row + (q if q < i0 * ow else q + valid))] = zero
                        for i in range(i1 - i0):
                            for t in range(ow - (j1 - j0)):
                                wr[_U(dst + i * ow + (t if t < j0 else t + j1 - j0))] = zero
                    elif adjoint and merge:
                        # keep a merged run's entries off the input from adding to the
                        # neighbouring row: save what they hit before the run, restore it
                        # after (exact)
                        k = 0
                        for i in range(i1 - i0):
                            for t in range(ow - (j1 - j0)):
                                q = i * ow + (t if t < j0 else t + j1 - j0)
                                if lo <= q < hi:
                                    if phase == 0:
                                        saved[k] = wr[_U(src + q)]
                                    else:
                                        wr[_U(src + q)] = saved[k]
                                    k += 1
