"""Recurrence kernels of ``fnx.core.ops.rnn``: one compiled loop over time per layer and
direction, forward and backward, for the LSTM, the GRU and the Elman RNN (tanh / relu).

Layout (C-contiguous, one float dtype per call; time-major but for ``x``, ``ys`` and ``dys``,
which are ``(B, T, .)`` when ``batch_first``: a batch-first layer then needs no transposed
copies of its input, output and output gradient): ``x (T, B, I)`` is the input. The forward
kernels stage each step's ``[x_t | h | 1]`` in ``xh[t]`` and multiply it by
``w_t (I + P + 1, G')``, both weights and the biases stacked and transposed
(``[W_ih | W_hh | b]^T``; the GRU's as four blocks, see ``fnx.core.ops.rnn._stacked_weight``):
one product per step gives the pre-activation gates in place in ``acts[t]``, where the gate
math then overwrites them. ``mask (T, B)`` (0/1, or shape (0, 0) for none) keeps a row's
state through its padded steps and zeroes its output there. ``reverse`` walks time
backwards. Each product is one BLAS call (``_product``: oneMKL's packed product when
``w_pack``, a uint8 buffer, holds the weight packed, the weight argument then an empty
stand-in; else plain ?gemm, both by the raw CBLAS routines of ``fnx.jit.blas``) and the gate
math is one fused loop (fnx's vectorizable tanh/sigmoid). One GEMM for the input projection
of all steps beforehand wrote and read back a (T, B, G) buffer: per step, while ``acts[t]``
is in cache, the W9 LSTM forward (``benchmarks/bench_layers.py``) took 30% less time.

The forward kernels save what the backward needs: ``acts`` (post-activation gates; the GRU
adds ``W_hn h + b_hn`` as a fourth block), ``xh (T, B, I + P + 1)`` (each step's input, the
state it starts from and a 1: ``[x_t | h | 1]``), and for the LSTM ``cprev`` (the cell state
each step starts from) and, with a projection, ``hu`` (the unprojected output). The backward
kernels return the gradients of the pre-activation gates per step (``dgi``; the GRU also
``dgh``, the gradient of ``h W_hh^T + b_hh``, which differs in its n block) and of the
initial state; the weight and bias gradients are GEMMs over all steps done by the caller
(``xh^T dgi``).
"""

import numba
import numpy as np

from fnx.jit.blas import DGEMM, DGEMM_COMPUTE, NO_TRANS, PACKED, ROW_MAJOR, SGEMM, SGEMM_COMPUTE
from fnx.jit.vecmath import vsigmoid, vtanh

_OPTS = dict(cache=True, error_model="numpy", fastmath={"contract"}, nogil=True)


# Copies and fills are explicit loops in these helpers: Numba's slice assignment
# (``x[t] = y``, ``x[:] = 0``) costs seconds of compile time per distinct use.
@numba.njit(**_OPTS)
def _copy(dst, src):
    for i in range(dst.shape[0]):
        dst[i] = src[i]


@numba.njit(**_OPTS)
def _copy2(dst, src):
    for i in range(dst.shape[0]):
        d, s = dst[i], src[i]
        for j in range(d.shape[0]):
            d[j] = s[j]


@numba.njit(**_OPTS)
def _zero(x):
    for i in range(x.shape[0]):
        x[i] = 0


@numba.njit(**_OPTS)
def _stage(xt, x, t, batch_first, h):
    """``xt[b] = [x_t[b] | h[b] | 1]`` for every row: the inputs of step ``t`` side by side, as
    the step's product takes them (by the stacked weight ``[W_ih | W_hh | b]^T``) and the
    backward's weight gradients (one product ``xh^T dgates`` over all steps, the bias
    gradients its last row)."""
    I, K = x.shape[2], xt.shape[1] - 1
    for b in range(xt.shape[0]):
        row = xt[b]
        _copy(row[:I], x[b, t] if batch_first else x[t, b])
        _copy(row[I:K], h[b])
        row[K] = 1


@numba.njit(**_OPTS)
def _product(a, b, packed, out):
    """``out[...] = a @ b`` for row-contiguous 2-D operands of one float dtype (the products
    of a step): by oneMKL's packed form of ``b`` when ``packed`` holds it
    (``fnx.core.blas.pack_b``, made once per call), else by plain ?gemm. The raw routines,
    not the typed ``fnx.jit.blas.gemm``: its per-combination checks cost ~0.5 s of compile."""
    m, k = a.shape
    n = out.shape[1]
    if m == 0:
        return
    size = a.itemsize
    # a one-row operand may carry any row stride (NumPy calls it contiguous: the transposed
    # (G, 1) recurrent weight of hidden_size 1 is (1, G) with stride 1 element), which BLAS
    # rejects as a leading dimension below the row length: its rows' length is as good
    lda = a.strides[0] // size if m > 1 else max(k, 1)
    ldb = b.strides[0] // size if b.shape[0] > 1 else max(n, 1)
    ldc = out.strides[0] // size if m > 1 else max(n, 1)
    if packed.shape[0] > 0:
        if size == 4:
            SGEMM_COMPUTE(ROW_MAJOR, NO_TRANS, PACKED, m, n, k, a.ctypes.data, lda,
                          packed.ctypes.data, n, 0.0, out.ctypes.data, ldc)
        else:
            DGEMM_COMPUTE(ROW_MAJOR, NO_TRANS, PACKED, m, n, k, a.ctypes.data, lda,
                          packed.ctypes.data, n, 0.0, out.ctypes.data, ldc)
    elif size == 4:
        SGEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data,
              ldb, 0.0, out.ctypes.data, ldc)
    else:
        DGEMM(ROW_MAJOR, NO_TRANS, NO_TRANS, m, n, k, 1.0, a.ctypes.data, lda, b.ctypes.data,
              ldb, 0.0, out.ctypes.data, ldc)


@numba.njit(**_OPTS)
def _step_range(T, reverse):
    return (T - 1, -1, -1) if reverse else (0, T, 1)


@numba.njit(**_OPTS)
def lstm_forward(x, w_t, w_pack, h0, c0, w_hr_t, mask, reverse, batch_first, ys, h, c, acts,
                 xh, cprev, hu):
    """LSTM over time; ``h``/``c`` start as copies of ``h0``/``c0`` and end as the final
    state. ``x`` is the input (``(B, T, I)`` with ``batch_first``), ``w_t (I + P + 1, G)``
    both weights and the summed biases transposed and stacked, ``[W_ih | W_hh | b]^T``
    (packed in ``w_pack``): the product of a step's ``xh`` row ``[x_t | h | 1]`` is the
    pre-activation gates. ``w_hr_t (H, P)`` projects the output (shape (0, 0): no
    projection)."""
    # Every inner loop starts at 0 over one gate block (views): a loop from an offset (2H..3H)
    # keeps Numba's negative-index wraparound test and does not vectorize (7x slower).
    T, B, G = acts.shape
    H = G // 4
    proj = w_hr_t.shape[0] > 0
    masked = mask.shape[0] > 0
    _copy2(h, h0)
    _copy2(c, c0)
    u = np.empty((B, H), acts.dtype)
    projected = np.empty((B, h.shape[1]), acts.dtype)  # batch-first outputs: rows to scatter
    no_pack = w_pack[:0]
    h_in = h  # the state a step starts from: h, or the last step's ys (see below)
    start, stop, step = _step_range(T, reverse)
    for t in range(start, stop, step):
        _stage(xh[t], x, t, batch_first, h_in)
        _copy2(cprev[t], c)
        # the pre-activation gates [x_t | h | 1] [W_ih | W_hh | b]^T (one product: ~8% less
        # time than x_t W_ih^T and an accumulating h W_hh^T, the bias inside ~3% less than
        # adds in the gate loops)
        _product(xh[t], w_t, w_pack, acts[t])
        for b in range(B):
            a = acts[t, b]
            if masked and mask[t, b] == 0:  # padding: residuals 0, state kept
                _zero(a)
                _zero(u[b])
                continue
            cr = c[b]
            # the output row (before the projection)
            ur = u[b] if proj else ys[b, t] if batch_first else ys[t, b]
            ai, af, ag, ao = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            # one activation per loop: a loop touching eight views exceeds LLVM's runtime
            # alias-check budget and stays scalar (3x slower); i and f are one block
            aif = a[:2 * H]
            for j in range(2 * H):
                aif[j] = vsigmoid(aif[j])
            for j in range(H):
                ag[j] = vtanh(ag[j])
            for j in range(H):
                ao[j] = vsigmoid(ao[j])
            for j in range(H):
                cn = af[j] * cr[j] + ai[j] * ag[j]
                cr[j] = cn
                ur[j] = ao[j] * vtanh(cn)
        if proj:
            _copy2(hu[t], u)
            _product(u, w_hr_t, no_pack, projected if batch_first else ys[t])
        if not (masked or batch_first):  # ys[t] is the next state, as one (B, P) block
            h_in = ys[t]
            continue
        for b in range(B):
            yr = ys[b, t] if batch_first else ys[t, b]
            if proj and batch_first:
                _copy(yr, projected[b])
            if masked and mask[t, b] == 0:
                _zero(yr)
            else:
                _copy(h[b], yr)
    if not (masked or batch_first):
        _copy2(h, h_in)


@numba.njit(**_OPTS)
def lstm_backward(acts, cprev, w_hh, w_pack, w_hr, mask, reverse, batch_first, dys, dh_t,
                  dc_t, dgates, dh, dc, dr):
    """Reverse loop of ``lstm_forward``: ``dgates`` per step, ``dh``/``dc`` (starting as the
    final states' cotangents) end as the initial states'; ``dr`` (with a projection) the
    gradient of each step's projected output, for ``dW_hr = dr^T hu``."""
    T, B, G = acts.shape
    H = G // 4
    proj = w_hr.shape[0] > 0
    masked = mask.shape[0] > 0
    _copy2(dh, dh_t)
    _copy2(dc, dc_t)
    P = dh.shape[1]
    dnew = np.empty((B, P), acts.dtype)
    dhu = np.empty((B, H), acts.dtype)
    dprev = np.empty((B, P), acts.dtype)
    no_pack = w_pack[:0]
    tcr = np.empty(H, acts.dtype)
    dct = np.empty(H, acts.dtype)
    one = acts.dtype.type(1.0)
    start, stop, step = _step_range(T, reverse)
    for t in range(stop - step, start - step, -step):
        for b in range(B):
            dn, dhr, dyr = dnew[b], dh[b], dys[b, t] if batch_first else dys[t, b]
            if masked and mask[t, b] == 0:
                _zero(dn)
            else:
                for k in range(P):
                    dn[k] = dhr[k] + dyr[k]
        if proj:
            _copy2(dr[t], dnew)
            _product(dnew, w_hr, no_pack, dhu)
        for b in range(B):
            dg = dgates[t, b]
            if masked and mask[t, b] == 0:
                _zero(dg)
                continue
            a, cp, dcr = acts[t, b], cprev[t, b], dc[b]
            d = dhu[b] if proj else dnew[b]
            ai, af, ag, ao = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            di, df, dgg, do = dg[:H], dg[H:2 * H], dg[2 * H:3 * H], dg[3 * H:]
            # few views per loop, so that each one vectorizes (see lstm_forward)
            for j in range(H):
                tcr[j] = vtanh(af[j] * cp[j] + ai[j] * ag[j])
            for j in range(H):
                og, tc = ao[j], tcr[j]
                do[j] = d[j] * tc * og * (one - og)
                dct[j] = dcr[j] + d[j] * og * (one - tc * tc)
            for j in range(H):
                ig, gg = ai[j], ag[j]
                di[j] = dct[j] * gg * ig * (one - ig)
                dgg[j] = dct[j] * ig * (one - gg * gg)
            for j in range(H):
                fg = af[j]
                df[j] = dct[j] * cp[j] * fg * (one - fg)
                dcr[j] = dct[j] * fg
        if not masked:  # every row takes the product (dh is read above only)
            _product(dgates[t], w_hh, w_pack, dh)
            continue
        _product(dgates[t], w_hh, w_pack, dprev)
        for b in range(B):
            if mask[t, b] != 0:
                _copy(dh[b], dprev[b])


@numba.njit(**_OPTS)
def gru_forward(x, w_t, w_pack, h0, mask, reverse, batch_first, ys, h, acts, xh):
    """GRU over time (PyTorch's gates r, z, n; ``n = tanh(i_n + r * (W_hn h + b_hn))``);
    ``acts (T, B, 4H)`` holds r, z, n and ``W_hn h + b_hn``. ``w_t (I + P + 1, 4H)`` maps a
    step's ``[x_t | h | 1]`` to the pre-activations of r and z, then ``i_n`` and
    ``W_hn h + b_hn`` (as ``lstm_forward``: one product per step, in place in acts[t])."""
    T, B, G = acts.shape
    H = G // 4
    masked = mask.shape[0] > 0
    _copy2(h, h0)
    one = acts.dtype.type(1.0)
    start, stop, step = _step_range(T, reverse)
    for t in range(start, stop, step):
        _stage(xh[t], x, t, batch_first, h)
        _product(xh[t], w_t, w_pack, acts[t])
        for b in range(B):
            a, y = acts[t, b], ys[b, t] if batch_first else ys[t, b]
            if masked and mask[t, b] == 0:
                _zero(a)
                _zero(y)
                continue
            hr = h[b]
            arz = a[:2 * H]
            for j in range(2 * H):  # r and z: one block (few views per loop: see lstm_forward)
                arz[j] = vsigmoid(arz[j])
            ar, az, an, ag = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            for j in range(H):
                an[j] = vtanh(an[j] + ar[j] * ag[j])
            for j in range(H):
                z = az[j]
                hn = (one - z) * an[j] + z * hr[j]
                y[j] = hn
                hr[j] = hn


@numba.njit(**_OPTS)
def gru_backward(acts, xh, w_hh, w_pack, mask, reverse, batch_first, dys, dh_t, dgi, dgh,
                 dh):
    """Reverse loop of ``gru_forward``: ``dgi``/``dgh`` per step (they differ in the n
    block by the factor r), ``dh`` (starting as ``dh_t``) ends as the initial state's."""
    T, B, G = dgi.shape
    H = G // 3
    I = xh.shape[2] - H - 1  # xh[t, b] is [x | h | 1]
    masked = mask.shape[0] > 0
    _copy2(dh, dh_t)
    dprev = np.empty((B, H), dgi.dtype)
    one = dgi.dtype.type(1.0)
    start, stop, step = _step_range(T, reverse)
    for t in range(stop - step, start - step, -step):
        for b in range(B):
            di, dg = dgi[t, b], dgh[t, b]
            if masked and mask[t, b] == 0:
                _zero(di)
                _zero(dg)
                continue
            a, hp, dhr = acts[t, b], xh[t, b, I:I + H], dh[b]
            dyr = dys[b, t] if batch_first else dys[t, b]
            ar, az, an, ag = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
            dir_, diz, din = di[:H], di[H:2 * H], di[2 * H:]
            dgr, dgz, dgn = dg[:H], dg[H:2 * H], dg[2 * H:]
            for j in range(H):
                r, z, n = ar[j], az[j], an[j]
                d = dhr[j] + dyr[j]
                dnp = d * (one - z) * (one - n * n)
                drp = dnp * ag[j] * r * (one - r)
                dzp = d * (hp[j] - n) * z * (one - z)
                dir_[j] = drp
                diz[j] = dzp
                din[j] = dnp
                dgr[j] = drp
                dgz[j] = dzp
                dgn[j] = dnp * r
                dhr[j] = d * z
        _product(dgh[t], w_hh, w_pack, dprev)
        for b in range(B):
            if not (masked and mask[t, b] == 0):
                dhr, dpr = dh[b], dprev[b]
                for k in range(H):
                    dhr[k] += dpr[k]


@numba.njit(**_OPTS)
def rnn_forward(x, w_t, w_pack, h0, mask, reverse, batch_first, relu, ys, h, acts, xh):
    """Elman RNN over time: ``h' = tanh(x W_ih^T + h W_hh^T + b)`` (``relu``: max(., 0)), the
    pre-activation one product per step of ``[x_t | h | 1]`` by ``w_t (I + P + 1, H)`` in
    place in acts[t] (as ``lstm_forward``); ``acts`` holds ``h'`` (before masking)."""
    T, B, H = acts.shape
    masked = mask.shape[0] > 0
    _copy2(h, h0)
    zero = acts.dtype.type(0.0)
    start, stop, step = _step_range(T, reverse)
    for t in range(start, stop, step):
        _stage(xh[t], x, t, batch_first, h)
        _product(xh[t], w_t, w_pack, acts[t])
        for b in range(B):
            a, y, hr = acts[t, b], ys[b, t] if batch_first else ys[t, b], h[b]
            if masked and mask[t, b] == 0:  # padding: residuals 0, state kept
                _zero(a)
                _zero(y)
                continue
            for j in range(H):
                pre = a[j]
                hn = max(pre, zero) if relu else vtanh(pre)
                a[j] = hn
                y[j] = hn
                hr[j] = hn


@numba.njit(**_OPTS)
def rnn_backward(acts, w_hh, w_pack, mask, reverse, batch_first, relu, dys, dh_t, dgi, dh):
    """Reverse loop of ``rnn_forward``: ``dgi`` per step (equal to the gradient of
    ``h W_hh^T + b_hh``), ``dh`` (starting as ``dh_t``) ends as the initial state's."""
    T, B, H = acts.shape
    masked = mask.shape[0] > 0
    _copy2(dh, dh_t)
    dprev = np.empty((B, H), acts.dtype)
    one, zero = acts.dtype.type(1.0), acts.dtype.type(0.0)
    start, stop, step = _step_range(T, reverse)
    for t in range(stop - step, start - step, -step):
        a, dg = acts[t], dgi[t]
        for b in range(B):
            if masked and mask[t, b] == 0:
                _zero(dg[b])
                continue
            dyr = dys[b, t] if batch_first else dys[t, b]
            for j in range(H):
                d = dh[b, j] + dyr[j]
                hn = a[b, j]
                dg[b, j] = (d if hn > zero else zero) if relu else d * (one - hn * hn)
        _product(dg, w_hh, w_pack, dprev)
        for b in range(B):
            if not (masked and mask[t, b] == 0):
                _copy(dh[b], dprev[b])
