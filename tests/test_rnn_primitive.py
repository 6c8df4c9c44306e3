"""The recurrence primitives (fnx/core/ops/rnn.py): the compiled kernels against the scan
composition they replace (forward outputs and residuals, backward cotangents), vmap (folded
and per-example), per-example gradients, the generic array-module path, and no recompile for
a new batch size. Finite-difference gradient checks (first and second order, both modes) run
from tests/op_db.py's ``rnn.*`` records."""

import itertools

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.errors import DTypeError, ShapeError
from fnx.core.ops import rnn as R

CASES = [(mode, proj, masked, reverse, batch_first)
         for mode, proj, masked, reverse, batch_first in itertools.product(
             ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"), (False, True), (False, True),
             (False, True), (False, True))
         if not (proj and mode != "LSTM")]


def _args(rng, mode, proj, masked, dtype, T=5, B=3, H=4, P=3, I=2, batch_first=False):
    G = R.MODES[mode] * H
    P = P if proj else H
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I))
    a = {"x": x, "w_ih": rng.standard_normal((G, I)) * 0.5,
         "b_ih": rng.standard_normal(G) * 0.5, "h0": rng.standard_normal((B, P)) * 0.5}
    if mode == "LSTM":
        a["c0"] = rng.standard_normal((B, H)) * 0.5
    a["w_hh"] = rng.standard_normal((G, P)) * 0.5
    a["b_hh"] = rng.standard_normal(G) * 0.5
    if proj:
        a["w_hr"] = rng.standard_normal((P, H)) * 0.5
    if masked:  # row 0 full length, the others end early (a packed batch)
        lengths = np.array([T] + [max(1, T - 2 - i) for i in range(B - 1)])
        a["mask"] = (np.arange(T)[:, None] < lengths[None, :]).astype(float)
    return {k: fnp.asarray(v.astype(dtype)) for k, v in a.items()}


def _params(mode, proj, masked, reverse, batch_first=False):
    return dict(mode=mode, reverse=reverse, proj=proj, masked=masked, batch_first=batch_first)


@pytest.mark.parametrize("mode,proj,masked,reverse,batch_first", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_equal_the_scan_composition(rng, mode, proj, masked, reverse, batch_first,
                                            dtype):
    a = _args(rng, mode, proj, masked, dtype, batch_first=batch_first)
    params = _params(mode, proj, masked, reverse, batch_first)
    outs = R.rnn_p.bind(*a.values(), **params)
    ref = R._compose(a, mode, reverse, proj, batch_first)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    names = R._out_names(mode) + R._res_names(mode, proj)
    for name, o, r in zip(names, outs, ref, strict=True):
        np.testing.assert_allclose(np.asarray(o), np.asarray(r), rtol=tol, atol=tol,
                                   err_msg=name)
    # the backward kernel against the VJP of the composition
    cts = [fnp.asarray(rng.standard_normal(o.shape).astype(dtype))
           for o in outs[:len(R._out_names(mode))]]
    grads = R.rnn_bwd_p.bind(*a.values(), *outs[len(R._out_names(mode)):], *cts, **params)
    want = R._composite_bwd(a, cts, mode, reverse, proj, batch_first)
    for name, g, w in zip(R._bwd_out_names(mode, proj), grads, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=20 * tol, atol=20 * tol,
                                   err_msg=name)



@pytest.mark.parametrize("mode", ["LSTM", "GRU"])
@pytest.mark.parametrize("batch_first", [False, True])
def test_unpacked_step_product_with_hidden_size_one(rng, monkeypatch, mode, batch_first):
    """Hidden size 1 without a packed weight (NumPy's BLAS, FNX_BLAS=numpy): the transposed
    (G, 1) recurrent weight is a (1, G) array NumPy calls contiguous with a row stride of one
    element; passed as the leading dimension, BLAS rejected it ("DGEMM parameter 8 had an
    illegal value") and the step products were garbage."""
    monkeypatch.setattr(R.blas, "pack_b", lambda b, m: np.empty(0, np.uint8))
    for B in (1, 2):
        a = _args(rng, mode, False, False, np.float64, T=3, B=B, H=1, I=2,
                  batch_first=batch_first)
        params = _params(mode, False, False, False, batch_first)
        outs = R.rnn_p.bind(*a.values(), **params)
        ref = R._compose(a, mode, False, False, batch_first)
        for o, r in zip(outs, ref, strict=True):
            np.testing.assert_allclose(np.asarray(o), np.asarray(r), rtol=1e-12, atol=1e-12)
        n = len(R._out_names(mode))
        cts = [fnp.asarray(rng.standard_normal(o.shape)) for o in outs[:n]]
        grads = R.rnn_bwd_p.bind(*a.values(), *outs[n:], *cts, **params)
        want = R._composite_bwd(a, cts, mode, False, False, batch_first)
        for g, w in zip(grads, want, strict=True):
            np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-11, atol=1e-11)

def _lstm_loss(x, w_ih, w_hh, b, h0, batch_first=False):
    ys, h, c = R.recurrence(x, w_ih, None, h0, h0, w_hh, b, mode="LSTM",
                            batch_first=batch_first)
    return fnp.sum(ys ** 2) + fnp.sum(h * c)


@pytest.mark.parametrize("batch_first", [False, True])
def test_vmap_of_grad_gives_per_example_weight_gradients(rng, batch_first):
    """vmap over examples with shared weights: rnn_p folds the examples into its batch,
    rnn_bwd_p runs per example (its weight gradients are per example). Batch-first inputs
    (each example's batch axis first) give the time-major results."""
    x = fnp.asarray(rng.standard_normal((4, 6, 2, 3)))  # 4 examples of (T=6, B=2, I=3)
    w_ih = fnp.asarray(rng.standard_normal((8, 3)) * 0.5)
    w_hh = fnp.asarray(rng.standard_normal((8, 2)) * 0.5)
    b = fnp.asarray(rng.standard_normal(8) * 0.5)
    h0 = fnp.zeros((2, 2), dtype=x.dtype)
    g = fnx.grad(_lstm_loss, argnums=(0, 1, 2, 3))
    xs = fnp.swapaxes(x, 1, 2) if batch_first else x
    batched = fnx.vmap(lambda x, *w: g(x, *w, batch_first=batch_first),
                       in_axes=(0, None, None, None, None))(xs, w_ih, w_hh, b, h0)
    for i in range(4):
        single = g(x[i], w_ih, w_hh, b, h0)
        for k, (got, want) in enumerate(zip(batched, single, strict=True)):
            got = fnp.swapaxes(got[i], 0, 1) if batch_first and k == 0 else got[i]
            np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-10,
                                       atol=1e-12)


def test_vmap_with_batched_weights_equals_a_loop(rng):
    x = fnp.asarray(rng.standard_normal((3, 4, 2, 3)))  # 3 examples of (T=4, B=2, I=3)
    h0 = fnp.asarray(rng.standard_normal((3, 2, 2)))
    w_hh = fnp.asarray(rng.standard_normal((3, 6, 2)))
    w_ih = fnp.asarray(rng.standard_normal((6, 3)) * 0.5)
    b = fnp.asarray(rng.standard_normal(6))

    def f(x, h0, w_hh):
        ys, h, _ = R.recurrence(x, w_ih, b, h0, None, w_hh, b, mode="GRU", reverse=True)
        return ys, h

    ys, h = fnx.vmap(f)(x, h0, w_hh)
    for i in range(3):
        ys_i, h_i = f(x[i], h0[i], w_hh[i])
        np.testing.assert_allclose(np.asarray(ys[i]), np.asarray(ys_i), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(h[i]), np.asarray(h_i), rtol=1e-12)
    # and its gradient (per-example calls of the backward under vmap)
    g = fnx.vmap(fnx.grad(lambda *a: fnp.sum(f(*a)[0] ** 2), argnums=(0, 2)))(x, h0, w_hh)
    for i in range(3):
        g_i = fnx.grad(lambda *a: fnp.sum(f(*a)[0] ** 2), argnums=(0, 2))(x[i], h0[i], w_hh[i])
        for got, want in zip(g, g_i, strict=True):
            np.testing.assert_allclose(np.asarray(got[i]), np.asarray(want), rtol=1e-10)


def test_jit_of_grad_equals_eager_grad_and_grad_of_grad(rng):
    x = fnp.asarray(rng.standard_normal((5, 2, 3)))
    w_ih = fnp.asarray(rng.standard_normal((8, 3)) * 0.5)
    w_hh = fnp.asarray(rng.standard_normal((8, 2)) * 0.5)
    b = fnp.asarray(rng.standard_normal(8) * 0.5)
    h0 = fnp.zeros((2, 2), dtype=x.dtype)
    g = fnx.grad(_lstm_loss, argnums=(1, 2, 3))
    for got, want in zip(fnx.jit(g)(x, w_ih, w_hh, b, h0), g(x, w_ih, w_hh, b, h0),
                         strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12)
    # second order: a Hessian-vector product against central differences of the gradient
    v = fnp.asarray(rng.standard_normal((8, 2)))

    def gw(w):
        return g(x, w_ih, w, b, h0)[1]

    hvp = fnx.jvp(gw, (w_hh,), (v,))[1]
    rev = fnx.grad(lambda w: fnp.sum(gw(w) * v))(w_hh)  # H v again, by reverse over reverse
    eps = 1e-5
    fd = (np.asarray(gw(w_hh + eps * v)) - np.asarray(gw(w_hh - eps * v))) / (2 * eps)
    np.testing.assert_allclose(np.asarray(hvp), fd, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.asarray(rev), fd, rtol=1e-6, atol=1e-8)


def test_generic_array_path_runs_the_composition(rng):
    """Buffers the kernels do not take (CuPy on the CUDA backend; float16 here) run the scan
    composition with the same results."""
    a = _args(rng, "LSTM", True, True, np.float32)
    params = _params("LSTM", True, True, False)
    want = R.rnn_p.bind(*a.values(), **params)
    half = {k: v.astype(np.float16) for k, v in a.items()}
    got = R.rnn_p.bind(*half.values(), **params)
    assert all(o.dtype == np.float16 for o in got)
    np.testing.assert_allclose(np.asarray(got[0]).astype(np.float32), np.asarray(want[0]),
                               atol=2e-2)


def test_new_batch_size_compiles_nothing(rng):
    lstm = fnx.nn.LSTM(3, 4)
    lstm(fnx.randn(5, 2, 3))[0].sum().backward()
    kernels = R._kernels()
    before = {n: len(getattr(kernels, n).signatures) for n in ("lstm_forward", "lstm_backward")}
    lstm(fnx.randn(7, 9, 3))[0].sum().backward()
    after = {n: len(getattr(kernels, n).signatures) for n in before}
    assert after == before


def test_errors_name_the_op_and_shapes():
    x, w_ih, h0 = fnp.zeros((2, 1, 3)), fnp.zeros((8, 3)), fnp.zeros((1, 2))
    with pytest.raises(ShapeError, match=r"rnn \(LSTM\): expected c0 of shape"):
        R.recurrence(x, w_ih, None, h0, fnp.zeros((1, 3)), fnp.zeros((8, 2)), None,
                     mode="LSTM")
    with pytest.raises(ShapeError, match=r"rnn \(LSTM\): expected w_ih of shape \(8, 3\)"):
        R.recurrence(x, fnp.zeros((8, 2)), None, h0, fnp.zeros((1, 2)), fnp.zeros((8, 2)),
                     None, mode="LSTM")
    with pytest.raises(ValueError, match="c0 is required"):
        R.recurrence(x, w_ih, None, h0, None, fnp.zeros((8, 2)), None, mode="LSTM")
    with pytest.raises(DTypeError, match="x's floating dtype"):
        R.recurrence(x, w_ih, None, h0.astype(np.float64), fnp.zeros((1, 2)),
                     fnp.zeros((8, 2)), None, mode="LSTM")
    with pytest.raises(DTypeError, match="x must have a floating dtype, got int32"):
        R.recurrence(x.astype(np.int32), fnp.zeros((6, 3), dtype=np.int32), None,
                     h0.astype(np.int32), None, fnp.zeros((6, 2), dtype=np.int32), None,
                     mode="GRU")


def test_eager_backward_reuses_the_forward_outputs_only_for_the_same_buffers(rng):
    """The tape's backward evaluates the recorded rnn_p again on the recorded buffers; the
    impl hands back that call's outputs (no second loop), never a stale result for new
    weights."""
    m = fnx.nn.LSTM(3, 4)
    x = fnx.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32))
    calls = []
    kernel = R._rnn_kernel

    def counting(*a, **k):
        calls.append(1)
        return kernel(*a, **k)

    R._rnn_kernel = counting
    try:
        out1, _ = m(x)
        (out1 ** 2).sum().backward()
        assert len(calls) == 1
        g1 = np.asarray(m.weight_hh_l0.grad).copy()
        with fnx.no_grad():
            m.weight_hh_l0.add_(0.5)
        m.zero_grad()
        out2, _ = m(x)
        (out2 ** 2).sum().backward()
        assert len(calls) == 2
    finally:
        R._rnn_kernel = kernel
    assert not np.allclose(np.asarray(out1), np.asarray(out2))
    def loss(w):
        return fnp.sum(fnx.nn.functional_call(m, {"weight_hh_l0": w}, x)[0] ** 2)

    want = fnx.grad(loss)(m.weight_hh_l0.detach())
    np.testing.assert_allclose(np.asarray(m.weight_hh_l0.grad), np.asarray(want), rtol=1e-5,
                               atol=1e-6)
    assert not np.allclose(g1, np.asarray(want))


def test_forwards_from_several_threads_at_once(rng):
    """The eager memo is shared by threads: concurrent forwards with grad mode on (each adds
    an entry and evicts the oldest) raised 'OrderedDict mutated during iteration' without its
    lock. Frequent thread switches make the race likely within a few hundred calls."""
    import sys
    import threading

    m = fnx.nn.RNN(2, 3)
    xs = [fnx.tensor(rng.standard_normal((2, 1, 2)).astype(np.float32)) for _ in range(4)]
    want = [np.asarray(m(x)[0]) for x in xs]
    errors, wrong = [], []

    def work(i):
        try:
            for _ in range(250):
                if not np.array_equal(np.asarray(m(xs[i])[0]), want[i]):
                    wrong.append(i)
        except Exception as e:  # noqa: BLE001 - reported by the assertion below
            errors.append(e)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors and not wrong, (errors[:1], wrong[:3])


def test_backward_of_an_encoder_and_a_decoder_loop_runs_no_forward_again(rng, monkeypatch):
    """A seq2seq step (a 3-layer bidirectional encoder: 6 calls, then 20 decoder-cell steps)
    keeps all 26 forwards for its backward; the memo kept only the newest 8 and the backward
    ran 18 forward loops again. Calls whose graph was freed leave the memo at once."""
    calls = []
    kernel = R._rnn_kernel
    monkeypatch.setattr(R, "_rnn_kernel", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    enc, dec = fnx.nn.LSTM(3, 4, num_layers=3, bidirectional=True), fnx.nn.LSTMCell(3, 8)
    x = fnx.tensor(rng.standard_normal((5, 2, 3)).astype(np.float32))
    for _ in range(2):  # forwards whose graphs are dropped unclaimed first fill the memo
        enc(x)
        for t in range(20):
            dec(x[t % 5])
    assert len(R._MEMO) <= 1, "entries whose graph was freed are kept"
    calls.clear()
    out, _ = enc(x)
    h, c = out[-1], out[0]
    loss = 0
    for t in range(20):
        h, c = dec(x[t % 5], (h, c))
        loss = loss + h.sum()
    loss.backward()
    assert len(calls) == 26, f"{len(calls) - 26} forward loops ran again in the backward"
    assert len(R._MEMO) <= R._MEMO_SIZE
