"""fnx.nn recurrent layers (RNN, LSTM, GRU, cells) and fnx.nn.utils.rnn (packed sequences):
outputs and final states against a NumPy per-time-step loop of PyTorch's equations, packed
batches against per-sequence runs, tape gradients against fnx.grad and finite differences,
jit and vmap against eager, PyTorch's parameter names, shapes and error messages."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx import nn
from fnx.core.errors import DTypeError, ShapeError, TraceError
from fnx.nn.utils.rnn import (PackedSequence, pack_padded_sequence, pack_sequence,
                              pad_packed_sequence, pad_sequence, unpack_sequence,
                              unpad_sequence)

F64 = fnx.float64


# --- NumPy reference: PyTorch's documented equations, one time step at a time ---------------


def _sig(v):
    return 1.0 / (1.0 + np.exp(-v))


def _ref_cell(mode, x, state, p, sfx=""):
    gi = x @ p["weight_ih" + sfx].T + p.get("bias_ih" + sfx, 0.0)
    gh = state[0] @ p["weight_hh" + sfx].T + p.get("bias_hh" + sfx, 0.0)
    if mode == "RNN_TANH":
        return (np.tanh(gi + gh),)
    if mode == "RNN_RELU":
        return (np.maximum(gi + gh, 0.0),)
    if mode == "LSTM":
        i, f, g, o = np.split(gi + gh, 4, axis=-1)
        c = _sig(f) * state[1] + _sig(i) * np.tanh(g)
        h = _sig(o) * np.tanh(c)
        if "weight_hr" + sfx in p:
            h = h @ p["weight_hr" + sfx].T
        return (h, c)
    i_r, i_z, i_n = np.split(gi, 3, axis=-1)
    h_r, h_z, h_n = np.split(gh, 3, axis=-1)
    r, z = _sig(i_r + h_r), _sig(i_z + h_z)
    n = np.tanh(i_n + r * h_n)
    return ((1 - z) * n + z * state[0],)


def _params(m):
    return {k: np.asarray(v, dtype=np.float64) for k, v in m.state_dict().items()}


def _ref_layer(m, x, state0):
    """``x (T, B, H_in)`` time-major, ``state0`` tuple of ``(D * L, B, H)``: (out, states)."""
    p = _params(m)
    n_dir = 2 if m.bidirectional else 1
    finals = [[] for _ in state0]
    for layer in range(m.num_layers):
        outs = []
        for d in range(n_dir):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            state = tuple(s[layer * n_dir + d] for s in state0)
            ys = [None] * x.shape[0]
            for t in (reversed(range(x.shape[0])) if d else range(x.shape[0])):
                state = _ref_cell(m.mode, x[t], state, p, sfx)
                ys[t] = state[0]
            outs.append(np.stack(ys))
            for acc, s in zip(finals, state, strict=True):
                acc.append(s)
        x = np.concatenate(outs, axis=-1)
    return x, tuple(np.stack(acc) for acc in finals)


def _zero_state(m, batch):
    n = m.num_layers * (2 if m.bidirectional else 1)
    h = np.zeros((n, batch, m.proj_size or m.hidden_size))
    return (h, np.zeros((n, batch, m.hidden_size))) if m.mode == "LSTM" else (h,)


def _make(kind, *args, **kw):
    if kind == "RNN_RELU":
        return nn.RNN(*args, nonlinearity="relu", **kw)
    return {"RNN_TANH": nn.RNN, "LSTM": nn.LSTM, "GRU": nn.GRU}[kind](*args, **kw)


def _states(m, out):
    return out[1] if m.mode == "LSTM" else (out[1],)


def _hx(m, states):
    return states if m.mode == "LSTM" else states[0]


CONFIGS = [
    ("RNN_TANH", {}),
    ("RNN_RELU", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=2, batch_first=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=3)),
    ("GRU", dict(num_layers=2, bidirectional=True, bias=False)),
    ("GRU", dict(batch_first=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True)),
    ("RNN_RELU", dict(num_layers=2, bidirectional=True, batch_first=True)),
]


@pytest.mark.parametrize("kind,kw", CONFIGS)
@pytest.mark.parametrize("with_state", [False, True])
def test_matches_numpy_reference(kind, kw, with_state, rng):
    m = _make(kind, 3, 5, dtype=F64, **kw)
    x = rng.standard_normal((4, 2, 3))
    state0 = _zero_state(m, 2)
    if with_state:
        state0 = tuple(rng.standard_normal(s.shape) for s in state0)
    want_out, want_states = _ref_layer(m, x, state0)
    x_in = np.swapaxes(x, 0, 1) if m.batch_first else x
    hx = _hx(m, tuple(fnp.asarray(s) for s in state0)) if with_state else None
    out = m(fnp.asarray(x_in), hx)
    got = np.asarray(out[0])
    np.testing.assert_allclose(np.swapaxes(got, 0, 1) if m.batch_first else got, want_out,
                               rtol=1e-12, atol=1e-12)
    for g, w in zip(_states(m, out), want_states, strict=True):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["RNN_TANH", "LSTM", "GRU"])
def test_unbatched_input_and_state(kind, rng):
    m = _make(kind, 3, 4, num_layers=2, bidirectional=True, dtype=F64)
    x = rng.standard_normal((5, 3))
    state0 = tuple(rng.standard_normal(s.shape)[:, 0] for s in _zero_state(m, 1))
    out = m(fnp.asarray(x), _hx(m, tuple(fnp.asarray(s) for s in state0)))
    want_out, want_states = _ref_layer(m, x[:, None], tuple(s[:, None] for s in state0))
    assert out[0].shape == (5, 8)
    np.testing.assert_allclose(np.asarray(out[0]), want_out[:, 0], rtol=1e-12, atol=1e-12)
    for g, w in zip(_states(m, out), want_states, strict=True):
        assert g.shape == w[:, 0].shape
        np.testing.assert_allclose(np.asarray(g), w[:, 0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind,kw,shapes", [
    ("RNN_TANH", dict(num_layers=3), [(7, 4, 6), (3, 4, 6)]),
    ("GRU", dict(bidirectional=True, batch_first=True), [(4, 7, 12), (2, 4, 6)]),
    ("LSTM", dict(num_layers=2, bidirectional=True, proj_size=2),
     [(7, 4, 4), (4, 4, 2), (4, 4, 6)]),
])
def test_output_and_state_shapes(kind, kw, shapes):
    m = _make(kind, 5, 6, **kw)
    x = fnx.randn(4, 7, 5) if m.batch_first else fnx.randn(7, 4, 5)
    out, state = m(x)
    got = [out.shape] + ([s.shape for s in state] if kind == "LSTM" else [state.shape])
    assert got == shapes


def test_float32_default_and_init_range():
    m = nn.LSTM(4, 16, num_layers=2)
    bound = 1 / 16 ** 0.5
    for _, p in m.named_parameters():
        assert p.dtype == fnx.float32 and isinstance(p, nn.Parameter)
        v = np.asarray(p)
        assert v.min() >= -bound and v.max() <= bound
    # U(-b, b) has standard deviation b / sqrt(3)
    allw = np.concatenate([np.asarray(p).ravel() for p in m.parameters()])
    assert abs(allw.std() - bound / 3 ** 0.5) < 0.05 * bound
    out, (h, c) = m(fnx.randn(3, 2, 4))
    assert out.dtype == h.dtype == c.dtype == fnx.float32


# --- cells -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["RNN_TANH", "RNN_RELU", "LSTM", "GRU"])
def test_cells_match_reference_and_one_layer_step(kind, rng):
    cls = {"RNN_TANH": nn.RNNCell, "RNN_RELU": nn.RNNCell, "LSTM": nn.LSTMCell,
           "GRU": nn.GRUCell}[kind]
    kw = {"nonlinearity": "relu"} if kind == "RNN_RELU" else {}
    cell = cls(3, 4, dtype=F64, **kw)
    x = rng.standard_normal((2, 3))
    state = tuple(rng.standard_normal((2, 4)) for _ in range(2 if kind == "LSTM" else 1))
    hx = tuple(fnp.asarray(s) for s in state)
    got = cell(fnp.asarray(x), hx if kind == "LSTM" else hx[0])
    got = got if kind == "LSTM" else (got,)
    want = _ref_cell(kind, x, state, _params(cell))
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), w, rtol=1e-12, atol=1e-12)
    # unbatched, default zero state
    single = cell(fnp.asarray(x[0]))
    single = single if kind == "LSTM" else (single,)
    zero = tuple(np.zeros((1, 4)) for _ in state)
    for g, w in zip(single, _ref_cell(kind, x[:1], zero, _params(cell)), strict=True):
        assert g.shape == (4,)
        np.testing.assert_allclose(np.asarray(g), w[0], rtol=1e-12, atol=1e-12)
    # a one-step layer with the cell's weights gives the same step
    layer = _make(kind, 3, 4, dtype=F64)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    out = layer(fnp.asarray(x[None]), _hx(layer, tuple(h[None] for h in hx)))
    np.testing.assert_allclose(np.asarray(out[0][0]), np.asarray(got[0]), rtol=1e-12)


def test_cell_state_dict_and_bias_false():
    assert list(nn.GRUCell(3, 4).state_dict()) == ["weight_ih", "weight_hh", "bias_ih",
                                                   "bias_hh"]
    cell = nn.LSTMCell(3, 4, bias=False)
    assert list(cell.state_dict()) == ["weight_ih", "weight_hh"]
    assert cell.bias_ih is None and cell.weight_ih.shape == (16, 3)
    h, c = cell(fnx.randn(2, 3))
    assert h.shape == c.shape == (2, 4)


# --- packed sequences ------------------------------------------------------------------------


def test_pad_sequence(rng):
    a, b = rng.standard_normal((3, 2)), rng.standard_normal((1, 2))
    seqs = [fnp.asarray(a), fnp.asarray(b)]
    got = np.asarray(pad_sequence(seqs))
    assert got.shape == (3, 2, 2)
    np.testing.assert_array_equal(got[:, 0], a)
    np.testing.assert_array_equal(got[0, 1], b[0])
    assert (got[1:, 1] == 0).all()
    got = np.asarray(pad_sequence(seqs, batch_first=True, padding_value=-1.0,
                                  padding_side="left"))
    assert got.shape == (2, 3, 2)
    np.testing.assert_array_equal(got[1, 2], b[0])
    assert (got[1, :2] == -1).all()
    with pytest.raises(ValueError, match="padding_side must be 'left' or 'right'"):
        pad_sequence(seqs, padding_side="middle")
    with pytest.raises(ShapeError, match=r"pad_sequence: every sequence must be \(L_i, \*\(2,\)"):
        pad_sequence([fnx.ones(3, 2), fnx.ones(3, 4)])


def test_pack_padded_layout_and_round_trip():
    # batch (B=3, T=4) with lengths 2, 4, 1; values encode (batch, time)
    x = np.array([[10 * b + t for t in range(4)] for b in range(3)], dtype=np.float64)
    with pytest.raises(ValueError, match="must be sorted in decreasing order"):
        pack_padded_sequence(fnp.asarray(x), [2, 4, 1], batch_first=True)
    p = pack_padded_sequence(fnp.asarray(x), [2, 4, 1], batch_first=True,
                             enforce_sorted=False)
    # PyTorch's layout: sorted by length (4, 2, 1), time step by time step
    assert p.data.tolist() == [10, 0, 20, 11, 1, 12, 13]
    assert p.batch_sizes.tolist() == [3, 2, 1, 1]
    assert p.sorted_indices.tolist() == [1, 0, 2]
    assert p.unsorted_indices.tolist() == [1, 0, 2]
    assert p.batch_sizes.dtype == fnx.int64
    padded, lengths = pad_packed_sequence(p, batch_first=True, padding_value=-1.0,
                                          total_length=5)
    assert lengths.tolist() == [2, 4, 1]
    want = np.full((3, 5), -1.0)
    for b, n in enumerate([2, 4, 1]):
        want[b, :n] = x[b, :n]
    np.testing.assert_array_equal(np.asarray(padded), want)
    with pytest.raises(ValueError, match="total_length to be at least"):
        pad_packed_sequence(p, total_length=3)
    with pytest.raises(ValueError, match=r"every length must be in \[1, 4\]"):
        pack_padded_sequence(fnp.asarray(x), [5, 2, 1], batch_first=True)
    assert [s.tolist() for s in unpack_sequence(p)] == [[0, 1], [10, 11, 12, 13], [20]]
    assert [s.tolist() for s in unpad_sequence(padded, lengths, batch_first=True)] == \
        [[0, 1], [10, 11, 12, 13], [20]]


def test_pack_sequence_sorted_and_gradient():
    seqs = [fnx.tensor([[1.0], [2.0], [3.0]]), fnx.tensor([[4.0], [5.0]])]
    p = pack_sequence(seqs)
    assert p.sorted_indices is None and p.unsorted_indices is None
    assert p.data[:, 0].tolist() == [1.0, 4.0, 2.0, 5.0, 3.0]
    # packing and unpacking are gathers: the gradient comes back to each step once
    w = fnp.arange(1.0, 6.0)[:, None]

    def f(x):
        q = pack_padded_sequence(x, [3, 2], batch_first=True)
        return (q.data * w).sum()

    g = fnx.grad(f)(fnp.ones((2, 3, 1)))
    assert g[:, :, 0].tolist() == [[1.0, 3.0, 5.0], [2.0, 4.0, 0.0]]


def test_packed_sequence_is_a_pytree_with_static_layout():
    p = pack_sequence([fnx.ones(3, 2), fnx.ones(1, 2)])
    leaves, tree = fnx.tree.flatten(p)
    assert len(leaves) == 1 and leaves[0] is p.data
    q = fnx.tree.unflatten(tree, [leaves[0] * 2])
    assert isinstance(q, PackedSequence) and q.batch_sizes.tolist() == [2, 1, 1]
    assert float(q.data.sum()) == 16.0
    with pytest.raises(TraceError, match="lengths must be concrete"):
        fnx.jit(lambda x, n: pack_padded_sequence(x, n).data)(fnx.ones(3, 2),
                                                               fnx.tensor([3, 1]))


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN_TANH"])
def test_packed_input_equals_per_sequence_runs(kind, rng):
    m = _make(kind, 3, 4, num_layers=2, bidirectional=True, dtype=F64)
    lengths = [2, 5, 3]
    seqs = [fnp.asarray(rng.standard_normal((n, 3))) for n in lengths]
    state0 = tuple(rng.standard_normal(s.shape) for s in _zero_state(m, 3))
    packed = pack_sequence(seqs, enforce_sorted=False)
    out = m(packed, _hx(m, tuple(fnp.asarray(s) for s in state0)))
    assert isinstance(out[0], PackedSequence)
    assert out[0].batch_sizes.tolist() == packed.batch_sizes.tolist()
    padded, got_lengths = pad_packed_sequence(out[0], batch_first=True)
    assert got_lengths.tolist() == lengths
    for b, (seq, n) in enumerate(zip(seqs, lengths, strict=True)):
        want_out, want_states = _ref_layer(m, np.asarray(seq)[:, None],
                                           tuple(s[:, b:b + 1] for s in state0))
        np.testing.assert_allclose(np.asarray(padded[b, :n]), want_out[:, 0], rtol=1e-12,
                                   atol=1e-12)
        assert (np.asarray(padded[b, n:]) == 0).all()
        for g, w in zip(_states(m, out), want_states, strict=True):
            np.testing.assert_allclose(np.asarray(g[:, b]), w[:, 0], rtol=1e-12, atol=1e-12)


def test_packed_sorted_batch_first_layer(rng):
    m = nn.GRU(2, 3, batch_first=True, dtype=F64)
    x = rng.standard_normal((2, 4, 2))
    packed = pack_padded_sequence(fnp.asarray(x), [4, 2], batch_first=True)
    out, h = m(packed)
    padded, _ = pad_packed_sequence(out, batch_first=True)
    full, h_full = m(fnp.asarray(x[:1]))
    short, h_short = m(fnp.asarray(x[1:, :2]))
    np.testing.assert_allclose(np.asarray(padded[0]), np.asarray(full[0]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(padded[1, :2]), np.asarray(short[0]), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(h[:, 1]), np.asarray(h_short[:, 0]), rtol=1e-12)


# --- transforms and the tape -----------------------------------------------------------------


def _loss(m, x):
    out, state = m(x)
    h = state[0] if isinstance(state, tuple) else state
    return (out ** 2).sum() + (h * fnp.arange(h.size, dtype=h.dtype).reshape(h.shape)).sum()


@pytest.mark.parametrize("kind,kw", [("LSTM", dict(num_layers=2, bidirectional=True)),
                                     ("GRU", {}), ("RNN_TANH", {})])
def test_tape_gradients_equal_fnx_grad(kind, kw, rng):
    m = _make(kind, 3, 4, dtype=F64, **kw)
    x_np = rng.standard_normal((5, 2, 3))
    x = fnp.asarray(x_np).requires_grad_()
    _loss(m, x).backward()
    g_mod, g_x = fnx.grad(_loss, argnums=(0, 1))(m, fnp.asarray(x_np))
    for name, p in m.named_parameters():
        np.testing.assert_allclose(np.asarray(p.grad), np.asarray(g_mod.get_parameter(name)),
                                   rtol=1e-10, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(np.asarray(x.grad), np.asarray(g_x), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["LSTM", "GRU"])
def test_gradients_match_finite_differences(kind, rng):
    m = _make(kind, 2, 3, bidirectional=True, dtype=F64)
    x = fnp.asarray(rng.standard_normal((3, 2, 2)))
    fnx.testing.check_grads(_loss, (m, x), order=1, modes=("rev",))


def test_packed_gradients_tape_equals_grad(rng):
    m = nn.LSTM(2, 3, bidirectional=True, dtype=F64)
    seqs = [rng.standard_normal((n, 2)) for n in (3, 1, 2)]

    def loss(m, packed):
        out, (h, c) = m(packed)
        return (out.data ** 2).sum() + h.sum() + (c ** 2).sum()

    loss(m, pack_sequence([fnp.asarray(s) for s in seqs], enforce_sorted=False)).backward()
    g = fnx.grad(loss)(m, pack_sequence([fnp.asarray(s) for s in seqs], enforce_sorted=False))
    for name, p in m.named_parameters():
        np.testing.assert_allclose(np.asarray(p.grad), np.asarray(g.get_parameter(name)),
                                   rtol=1e-10, atol=1e-12, err_msg=name)
    fnx.testing.check_grads(loss, (m, pack_sequence([fnp.asarray(s) for s in seqs],
                                                    enforce_sorted=False)),
                            order=1, modes=("rev",))


def test_jit_with_module_argument_equals_eager(rng):
    m = nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = fnp.asarray(rng.standard_normal((2, 5, 3)).astype(np.float32))
    h0 = fnp.asarray(rng.standard_normal((4, 2, 4)).astype(np.float32))
    f = fnx.jit(lambda m, x, h0: m(x, (h0, h0)))
    got, want = f(m, x, h0), m(x, (h0, h0))
    for g, w in zip(fnx.tree.leaves(got), fnx.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)
    # packed batches go through jit as pytrees (their layout is static)
    packed = pack_sequence([x[0], x[1, :2]])
    gp = fnx.jit(lambda m, p: m(p)[0])(m, packed)
    np.testing.assert_allclose(np.asarray(gp.data), np.asarray(m(packed)[0].data), rtol=1e-5,
                               atol=1e-6)
    # jit of grad equals eager grad
    gj = fnx.jit(fnx.grad(_loss))(m, x)
    ge = fnx.grad(_loss)(m, x)
    for name, _ in m.named_parameters():
        np.testing.assert_allclose(np.asarray(gj.get_parameter(name)),
                                   np.asarray(ge.get_parameter(name)), rtol=1e-4, atol=1e-5)


def test_recurrence_is_one_primitive_per_layer_and_direction():
    m = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    short = str(fnx.make_ir(lambda m, x: m(x)[0])(m, fnx.ones(3, 2, 3)))
    long = str(fnx.make_ir(lambda m, x: m(x)[0])(m, fnx.ones(40, 2, 3)))
    assert short.count(" rnn[") == long.count(" rnn[") == 4
    assert len(long.splitlines()) == len(short.splitlines())


def test_vmap_over_unbatched_sequences_equals_batched(rng):
    m = nn.GRU(3, 4, bidirectional=True)
    xs = fnp.asarray(rng.standard_normal((2, 5, 3)).astype(np.float32))
    out, h = fnx.vmap(lambda x: m(x))(xs)
    want_out, want_h = m(fnp.swapaxes(xs, 0, 1))
    np.testing.assert_allclose(np.asarray(out), np.swapaxes(np.asarray(want_out), 0, 1),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(h), np.swapaxes(np.asarray(want_h), 0, 1),
                               rtol=1e-5, atol=1e-6)
    # an ensemble: vmap over a stack of modules equals a loop over them
    models = [nn.LSTM(3, 4, bidirectional=True) for _ in range(3)]
    stacked = fnx.tree.map(lambda *leaves: fnp.stack(leaves), *models)
    x = xs[0][:, None]
    out = fnx.vmap(lambda m, x: m(x)[0], in_axes=(0, None))(stacked, x)
    want = np.stack([np.asarray(m(x)[0]) for m in models])
    np.testing.assert_allclose(np.asarray(out), want, rtol=1e-5, atol=1e-6)


def test_dropout_between_layers_only_in_training():
    fnx.manual_seed(0)
    m = nn.RNN(2, 3, num_layers=2, dropout=1.0, dtype=F64)
    x = fnx.randn(4, 1, 2, dtype=F64)
    # p = 1 zeroes the first layer's output: the second layer then sees zeros
    out = np.asarray(m(x)[0])
    want, _ = _ref_layer(m, np.asarray(x), _zero_state(m, 1))
    p = _params(m)
    h, zero_in = np.zeros((1, 3)), np.zeros((1, 3))
    for t in range(4):
        (h,) = _ref_cell("RNN_TANH", zero_in, (h,), p, "_l1")
        np.testing.assert_allclose(out[t], h, rtol=1e-12)
    m.eval()
    np.testing.assert_allclose(np.asarray(m(x)[0]), want, rtol=1e-12)


# --- names, reprs and errors -----------------------------------------------------------------


def test_state_dict_keys_are_pytorchs():
    m = nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    per = ["weight_ih_l{}{}", "weight_hh_l{}{}", "bias_ih_l{}{}", "bias_hh_l{}{}",
           "weight_hr_l{}{}"]
    want = [k.format(layer, sfx) for layer in range(2) for sfx in ("", "_reverse") for k in per]
    sd = m.state_dict()
    assert list(sd) == want
    assert sd["weight_ih_l0"].shape == (80, 10) and sd["weight_hh_l0"].shape == (80, 5)
    assert sd["weight_hr_l0"].shape == (5, 20) and sd["weight_ih_l1_reverse"].shape == (80, 10)
    assert m._flat_weights_names == want
    assert [len(ws) for ws in m.all_weights] == [5] * 4
    assert list(nn.GRU(3, 4, bias=False).state_dict()) == ["weight_ih_l0", "weight_hh_l0"]
    assert nn.GRU(3, 4).state_dict()["weight_hh_l0"].shape == (12, 4)
    assert list(nn.RNN(3, 4).state_dict()) == ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0",
                                               "bias_hh_l0"]
    # a state dict round trip between two instances
    m2 = nn.LSTM(10, 20, num_layers=2, bidirectional=True, proj_size=5)
    m2.load_state_dict(sd)
    x = fnx.randn(3, 2, 10)
    np.testing.assert_array_equal(np.asarray(m2(x)[0]), np.asarray(m(x)[0]))


def test_a_weight_set_as_a_plain_array_in_place_of_its_parameter(rng):
    """AWD-LSTM's WeightDrop deletes weight_hh_l0's parameter and sets the attribute to a
    dropped-out copy of a raw parameter each forward (PyTorch reads weights by attribute);
    the layer read ``_parameters`` and raised KeyError. The gradient reaches the raw one."""
    m = nn.LSTM(3, 4, num_layers=2, dtype=F64)
    raw = m.weight_hh_l1
    del m._parameters["weight_hh_l1"]
    m.register_parameter("weight_hh_l1_raw", nn.Parameter(raw.detach()))
    x = fnp.asarray(rng.standard_normal((5, 2, 3)))
    m.weight_hh_l1 = m.weight_hh_l1_raw * 0.5
    out, _ = m(x)
    (out ** 2).sum().backward()
    ref = nn.LSTM(3, 4, num_layers=2, dtype=F64)
    ref.load_state_dict({**{k: v for k, v in m.state_dict().items() if "raw" not in k},
                         "weight_hh_l1": raw.detach() * 0.5})
    want, _ = ref(x)
    np.testing.assert_allclose(np.asarray(out), np.asarray(want), rtol=1e-12)
    (want ** 2).sum().backward()
    np.testing.assert_allclose(np.asarray(m.weight_hh_l1_raw.grad),
                               0.5 * np.asarray(ref.weight_hh_l1.grad), rtol=1e-10)


def test_reprs():
    assert repr(nn.LSTM(10, 20)) == "LSTM(10, 20)"
    assert repr(nn.GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5,
                       bidirectional=True)) == \
        "GRU(3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True)"
    assert repr(nn.LSTM(3, 4, proj_size=2)) == "LSTM(3, 4, proj_size=2)"
    assert repr(nn.RNNCell(3, 4, nonlinearity="relu")) == "RNNCell(3, 4, nonlinearity=relu)"
    assert repr(nn.LSTMCell(3, 4, bias=False)) == "LSTMCell(3, 4, bias=False)"


def test_error_messages():
    lstm = nn.LSTM(10, 20)
    with pytest.raises(ShapeError) as e:
        lstm(fnx.ones(5, 3, 7))
    assert str(e.value) == "LSTM(10, 20) expected input with last dimension 10, got shape (5, 3, 7)"
    with pytest.raises(ShapeError, match=r"LSTM\(10, 20\) expected 2-D or 3-D input"):
        lstm(fnx.ones(2, 5, 3, 10))
    with pytest.raises(ShapeError, match=r"expected h0 of shape \(1, 3, 20\), got shape "
                                         r"\(2, 3, 20\)"):
        lstm(fnx.ones(5, 3, 10), (fnx.zeros(2, 3, 20), fnx.zeros(1, 3, 20)))
    with pytest.raises(ShapeError, match=r"expected c0 of shape \(1, 3, 20\)"):
        lstm(fnx.ones(5, 3, 10), (fnx.zeros(1, 3, 20), fnx.zeros(1, 3, 5)))
    with pytest.raises(TypeError, match=r"expected hx to be a tuple \(h0, c0\)"):
        lstm(fnx.ones(5, 3, 10), fnx.zeros(1, 3, 20))
    with pytest.raises(ShapeError, match="for unbatched 2-D input, h0 should also be 2-D"):
        nn.GRU(10, 20)(fnx.ones(5, 10), fnx.zeros(1, 1, 20))
    with pytest.raises(DTypeError, match=r"GRU\(2, 3\) expected input of dtype float32"):
        nn.GRU(2, 3)(fnx.ones(4, 2, dtype=F64))
    # an integer input: converting the module to int64 is no advice
    with pytest.raises(DTypeError) as e:
        nn.GRU(2, 3)(fnx.ones(4, 2, dtype=fnx.int64))
    assert str(e.value).endswith("got int64; convert it with .to(float32)")
    with pytest.raises(ShapeError, match=r"GRU\(2, 3, batch_first=True\) expected 2-D packed"):
        nn.GRU(2, 3, batch_first=True)(PackedSequence(fnx.ones(3, 2, 1), [2, 1]))
    with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM"):
        nn.RNNBase("GRU", 3, 4, proj_size=2)
    with pytest.raises(ValueError, match="proj_size has to be smaller than hidden_size"):
        nn.LSTM(3, 4, proj_size=4)
    with pytest.raises(ValueError, match="Unknown nonlinearity 'sigmoid'"):
        nn.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="dropout should be a number in range"):
        nn.LSTM(3, 4, dropout=1.5)
    with pytest.raises(TypeError, match="hidden_size should be of type int"):
        nn.LSTM(3, 4.0)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        nn.GRU(3, 4, dropout=0.2)
    cell = nn.LSTMCell(10, 20)
    with pytest.raises(ShapeError) as e:
        cell(fnx.ones(3, 7))
    assert str(e.value) == ("LSTMCell(10, 20) expected input with last dimension 10, got "
                            "shape (3, 7)")
    with pytest.raises(ShapeError, match=r"GRUCell\(10, 20\) expected hidden state of shape "
                                         r"\(3, 20\), got shape \(2, 20\)"):
        nn.GRUCell(10, 20)(fnx.ones(3, 10), fnx.zeros(2, 20))


def test_gru_with_an_infinite_input_matches_separate_products():
    """An infinite input: PyTorch's GRU gives n = tanh(+-inf + r * (W_hn h + b_hn)) = +-1 and
    finite states; a stacked step product's zero blocks would make 0 * inf = NaN everywhere
    (such calls run the scan composition). Reference: the GRU equations in NumPy."""
    rng = np.random.default_rng(0)
    fnx.manual_seed(0)
    gru = fnx.nn.GRU(2, 3, dtype=fnx.float64)
    x = rng.standard_normal((4, 2, 2))
    x[0, 0, 1], x[2, 1, 0] = np.inf, -np.inf
    out, h_n = gru(fnx.tensor(x))
    w_ih, w_hh = np.asarray(gru.weight_ih_l0), np.asarray(gru.weight_hh_l0)
    b_ih, b_hh = np.asarray(gru.bias_ih_l0), np.asarray(gru.bias_hh_l0)
    h = np.zeros((2, 3))
    want = []
    with np.errstate(invalid="ignore", over="ignore"):
        for t in range(4):
            gi, gh = x[t] @ w_ih.T + b_ih, h @ w_hh.T + b_hh
            r = 1 / (1 + np.exp(-(gi[:, :3] + gh[:, :3])))
            z = 1 / (1 + np.exp(-(gi[:, 3:6] + gh[:, 3:6])))
            n = np.tanh(gi[:, 6:] + r * gh[:, 6:])
            h = (1 - z) * n + z * h
            want.append(h)
    np.testing.assert_allclose(np.asarray(out), np.stack(want), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(np.asarray(h_n)[0], want[-1], rtol=1e-12, atol=1e-12)
    assert np.isfinite(np.stack(want)).sum() > 0
