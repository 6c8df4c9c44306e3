"""fnx's recurrent, attention and Transformer layers against PyTorch itself, when torch is
importable (skipped otherwise): torch's weights copied in through state_dicts (same keys), then
outputs, final states, attention weights and gradients (input and every parameter) in float64;
packed sequences in both libraries. tests/test_nn_rnn.py and tests/test_nn_transformer.py check
the same against NumPy references without PyTorch."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fnx  # noqa: E402
import fnx.numpy as fnp  # noqa: E402
from fnx import nn  # noqa: E402
from fnx.nn.utils import rnn as frnn  # noqa: E402

trnn = torch.nn.utils.rnn
pytestmark = [pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask"),
              pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")]


def _copy(tmod, fmod):
    """torch's weights into the fnx module (the key lists must be identical)."""
    sd = {k: v.detach().numpy() for k, v in tmod.state_dict().items()}
    assert list(sd) == list(fmod.state_dict())
    fmod.load_state_dict(sd)


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def _close(got, want, tol=1e-10):
    np.testing.assert_allclose(_np(got), _np(want), rtol=tol, atol=tol)


def _grads_close(tmod, fmod, tol=1e-9):
    for name, p in tmod.named_parameters():
        _close(fmod.get_parameter(name).grad, p.grad, tol)


def _pair(cls_name, *args, **kw):
    torch.manual_seed(0)
    tmod = getattr(torch.nn, cls_name)(*args, **kw).double()
    fmod = getattr(nn, cls_name)(*args, dtype=fnx.float64, **kw)
    _copy(tmod, fmod)
    return tmod, fmod


RNN_CASES = [
    ("RNN", dict(nonlinearity="relu", num_layers=2)),
    ("RNN", dict(bidirectional=True, batch_first=True)),
    ("LSTM", dict(num_layers=2, bidirectional=True)),
    ("LSTM", dict(proj_size=3, num_layers=2, batch_first=True)),
    ("GRU", dict(num_layers=2, bidirectional=True, bias=False)),
]


@pytest.mark.parametrize("cls_name,kw", RNN_CASES)
def test_recurrent_layers(cls_name, kw):
    tmod, fmod = _pair(cls_name, 4, 5, **kw)
    x = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    tout, tstate = tmod(x)
    fx = fnp.asarray(_np(x)).requires_grad_()
    fout, fstate = fmod(fx)
    _close(fout, tout)
    for f, t in zip(fnx.tree.leaves(fstate), torch.utils._pytree.tree_leaves(tstate),
                    strict=True):
        _close(f, t)
    weight = torch.linspace(-1, 1, tout.numel(), dtype=torch.float64).reshape(tout.shape)
    (tout * weight).sum().backward()
    (fout * fnp.asarray(_np(weight))).sum().backward()
    _close(fx.grad, x.grad)
    _grads_close(tmod, fmod)


@pytest.mark.parametrize("cls_name", ["LSTM", "GRU"])
def test_packed_sequences(cls_name):
    tmod, fmod = _pair(cls_name, 3, 4, num_layers=2, bidirectional=True)
    seqs = [torch.randn(n, 3, dtype=torch.float64) for n in (2, 5, 3)]
    tp = trnn.pack_sequence(seqs, enforce_sorted=False)
    fp = frnn.pack_sequence([fnp.asarray(_np(s)) for s in seqs], enforce_sorted=False)
    for f, t in zip(fp, tp, strict=True):
        _close(f, t, 0)
    tout, tstate = tmod(tp)
    fout, fstate = fmod(fp)
    _close(fout.data, tout.data)
    for f, t in zip(fnx.tree.leaves(fstate), torch.utils._pytree.tree_leaves(tstate),
                    strict=True):
        _close(f, t)
    tpad, tlen = trnn.pad_packed_sequence(tout, batch_first=True, total_length=6)
    fpad, flen = frnn.pad_packed_sequence(fout, batch_first=True, total_length=6)
    _close(fpad, tpad)
    assert flen.tolist() == tlen.tolist()
    tpadded = trnn.pad_sequence(seqs, batch_first=True, padding_value=-2.0, padding_side="left")
    fpadded = frnn.pad_sequence([fnp.asarray(_np(s)) for s in seqs], batch_first=True,
                                padding_value=-2.0, padding_side="left")
    _close(fpadded, tpadded, 0)


@pytest.mark.parametrize("cls_name,kw", [("RNNCell", dict(nonlinearity="relu")),
                                         ("LSTMCell", {}), ("GRUCell", {})])
def test_cells(cls_name, kw):
    tmod, fmod = _pair(cls_name, 3, 4, **kw)
    x = torch.randn(2, 3, dtype=torch.float64)
    h = torch.randn(2, 4, dtype=torch.float64)
    hx = (h, h * 0.5) if cls_name == "LSTMCell" else h
    fhx = tuple(fnp.asarray(_np(t)) for t in hx) if cls_name == "LSTMCell" else \
        fnp.asarray(_np(h))
    for f, t in zip(fnx.tree.leaves(fmod(fnp.asarray(_np(x)), fhx)),
                    torch.utils._pytree.tree_leaves(tmod(x, hx)), strict=True):
        _close(f, t)


MHA_CASES = [dict(), dict(kdim=3, vdim=5), dict(add_bias_kv=True, add_zero_attn=True),
             dict(bias=False, batch_first=True)]


@pytest.mark.parametrize("kw", MHA_CASES)
@pytest.mark.parametrize("need_weights", [True, False])
def test_multihead_attention(kw, need_weights):
    tmod, fmod = _pair("MultiheadAttention", 8, 2, **kw)
    shape = (lambda s, n, e: (n, s, e)) if kw.get("batch_first") else (lambda s, n, e: (s, n, e))
    q = torch.randn(*shape(3, 2, 8), dtype=torch.float64, requires_grad=True)
    k = torch.randn(*shape(4, 2, tmod.kdim), dtype=torch.float64)
    v = torch.randn(*shape(4, 2, tmod.vdim), dtype=torch.float64)
    kpm = torch.tensor([[False, False, True, False], [False, True, False, False]])
    mask = torch.randn(3, 4, dtype=torch.float64)
    tout, tw = tmod(q, k, v, key_padding_mask=kpm, attn_mask=mask, need_weights=need_weights,
                    average_attn_weights=False)
    fq = fnp.asarray(_np(q)).requires_grad_()
    fout, fw = fmod(fq, fnp.asarray(_np(k)), fnp.asarray(_np(v)),
                    key_padding_mask=fnp.asarray(_np(kpm)), attn_mask=fnp.asarray(_np(mask)),
                    need_weights=need_weights, average_attn_weights=False)
    _close(fout, tout)
    if need_weights:
        _close(fw, tw)
    else:
        assert fw is None and tw is None
    tout.sum().backward()
    fout.sum().backward()
    _close(fq.grad, q.grad)
    _grads_close(tmod, fmod)


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer(norm_first, activation):
    # dropout 0 in training mode keeps torch off its nested-tensor fast path
    tmod, fmod = _pair("Transformer", d_model=8, nhead=2, num_encoder_layers=2,
                       num_decoder_layers=1, dim_feedforward=16, dropout=0.0,
                       activation=activation, norm_first=norm_first, batch_first=True)
    src = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    tgt = torch.randn(2, 3, 8, dtype=torch.float64)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(3, dtype=torch.float64)
    kpm = torch.tensor([[False] * 5, [False] * 3 + [True] * 2])
    tout = tmod(src, tgt, tgt_mask=mask, src_key_padding_mask=kpm,
                memory_key_padding_mask=kpm, tgt_is_causal=True)
    fsrc = fnp.asarray(_np(src)).requires_grad_()
    fout = fmod(fsrc, fnp.asarray(_np(tgt)), tgt_mask=fnp.asarray(_np(mask)),
                src_key_padding_mask=fnp.asarray(_np(kpm)),
                memory_key_padding_mask=fnp.asarray(_np(kpm)), tgt_is_causal=True)
    _close(fout, tout)
    (tout ** 2).sum().backward()
    (fout ** 2).sum().backward()
    _close(fsrc.grad, src.grad, 1e-8)
    _grads_close(tmod, fmod, 1e-8)
    # and back: fnx's state_dict loads into torch
    tmod.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                          fmod.state_dict().items()})


@pytest.mark.parametrize("cls_name,kw", [
    ("RNN", dict(num_layers=2, dropout=0.5, batch_first=True)),
    ("LSTM", dict(num_layers=2, dropout=0.3, bidirectional=True, proj_size=2)),
    ("GRU", dict(num_layers=3, dropout=0.2))])
def test_initial_states_and_eval_mode_dropout(cls_name, kw):
    tmod, fmod = _pair(cls_name, 4, 5, **kw)
    tmod.eval()
    fmod.eval()  # dropout between layers is off in eval mode: deterministic
    layers = kw["num_layers"] * (2 if kw.get("bidirectional") else 1)
    x = torch.randn(3, 6, 4, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(layers, 3 if kw.get("batch_first") else 6, kw.get("proj_size") or 5,
                     dtype=torch.float64, requires_grad=True)
    states = (h0, torch.randn(layers, h0.shape[1], 5, dtype=torch.float64,
                              requires_grad=True)) if cls_name == "LSTM" else h0
    tout, tstate = tmod(x, states)
    fx = fnp.asarray(_np(x)).requires_grad_()
    fstates = tuple(fnp.asarray(_np(s)).requires_grad_() for s in states) \
        if cls_name == "LSTM" else fnp.asarray(_np(states)).requires_grad_()
    fout, fstate = fmod(fx, fstates)
    _close(fout, tout)
    for f, t in zip(fnx.tree.leaves(fstate), torch.utils._pytree.tree_leaves(tstate),
                    strict=True):
        _close(f, t)
    loss_t = (tout ** 2).sum() + sum((s ** 3).sum() for s in
                                     torch.utils._pytree.tree_leaves(tstate))
    loss_f = (fout ** 2).sum() + sum((s ** 3).sum() for s in fnx.tree.leaves(fstate))
    loss_t.backward()
    loss_f.backward()
    _close(fx.grad, x.grad)
    for f, t in zip(fnx.tree.leaves(fstates), torch.utils._pytree.tree_leaves(states),
                    strict=True):
        _close(f.grad, t.grad)
    _grads_close(tmod, fmod)


@pytest.mark.parametrize("cls_name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_gradients(cls_name):
    tmod, fmod = _pair(cls_name, 3, 4)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    fx, fh = fnp.asarray(_np(x)).requires_grad_(), fnp.asarray(_np(h)).requires_grad_()
    tout = tmod(x, (h, h * 2) if cls_name == "LSTMCell" else h)
    fout = fmod(fx, (fh, fh * 2) if cls_name == "LSTMCell" else fh)
    sum((o * (i + 1)).sum() for i, o in
        enumerate(torch.utils._pytree.tree_leaves(tout))).backward()
    sum((o * (i + 1)).sum() for i, o in enumerate(fnx.tree.leaves(fout))).backward()
    _close(fx.grad, x.grad)
    _close(fh.grad, h.grad)
    _grads_close(tmod, fmod)


@pytest.mark.parametrize("cls_name", ["RNN", "GRU"])
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_pack_padded_sequence_into_a_layer(cls_name, enforce_sorted):
    tmod, fmod = _pair(cls_name, 3, 4, batch_first=True)
    lengths = [5, 3, 2] if enforce_sorted else [2, 5, 3]
    x = torch.randn(3, 5, 3, dtype=torch.float64, requires_grad=True)
    tp = trnn.pack_padded_sequence(x, lengths, batch_first=True,
                                   enforce_sorted=enforce_sorted)
    fx = fnp.asarray(_np(x)).requires_grad_()
    fp = frnn.pack_padded_sequence(fx, lengths, batch_first=True,
                                   enforce_sorted=enforce_sorted)
    tout, th = tmod(tp)
    fout, fh = fmod(fp)
    tpad, _ = trnn.pad_packed_sequence(tout, batch_first=True)
    fpad, _ = frnn.pad_packed_sequence(fout, batch_first=True)
    _close(fpad, tpad)
    _close(fh, th)
    ((tpad ** 2).sum() + th.sum()).backward()
    ((fpad ** 2).sum() + fh.sum()).backward()
    _close(fx.grad, x.grad)
    _grads_close(tmod, fmod)


def test_multihead_attention_is_causal():
    tmod, fmod = _pair("MultiheadAttention", 8, 2, batch_first=True)
    q = torch.randn(2, 5, 8, dtype=torch.float64, requires_grad=True)
    mask = torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64)
    tout, _ = tmod(q, q, q, attn_mask=mask, is_causal=True, need_weights=False)
    fq = fnp.asarray(_np(q)).requires_grad_()
    fout, _ = fmod(fq, fq, fq, attn_mask=fnp.asarray(_np(mask)), is_causal=True,
                   need_weights=False)
    _close(fout, tout)
    (tout ** 2).sum().backward()
    (fout ** 2).sum().backward()
    _close(fq.grad, q.grad)
    _grads_close(tmod, fmod)


@pytest.mark.parametrize("training", [True, False])
def test_encoder_and_decoder_stacks(training):
    """TransformerEncoder/TransformerDecoder with a final norm, a callable activation and
    layer norms first; in eval mode torch takes its fused fast path, whose numbers fnx's
    composed layers must still give."""
    kw = dict(d_model=8, nhead=2, dim_feedforward=16, dropout=0.0, batch_first=True)
    torch.manual_seed(0)
    tenc = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(activation=torch.nn.functional.gelu, **kw), 2,
        norm=torch.nn.LayerNorm(8), enable_nested_tensor=False).double()
    tdec = torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(norm_first=True, **kw), 2,
        norm=torch.nn.LayerNorm(8)).double()
    fenc = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(activation=nn.functional.gelu, dtype=fnx.float64, **kw), 2,
        norm=nn.LayerNorm(8, dtype=fnx.float64), enable_nested_tensor=False)
    fdec = nn.TransformerDecoder(
        nn.TransformerDecoderLayer(norm_first=True, dtype=fnx.float64, **kw), 2,
        norm=nn.LayerNorm(8, dtype=fnx.float64))
    for t, f in [(tenc, fenc), (tdec, fdec)]:
        _copy(t, f)
        t.train(training)
        f.train(training)
    src = torch.randn(2, 5, 8, dtype=torch.float64)
    tgt = torch.randn(2, 3, 8, dtype=torch.float64)
    kpm = torch.tensor([[False] * 5, [False] * 4 + [True]])
    with torch.set_grad_enabled(training):
        tmem = tenc(src, src_key_padding_mask=kpm)
        tout = tdec(tgt, tmem, memory_key_padding_mask=kpm)
    fmem = fenc(fnp.asarray(_np(src)), src_key_padding_mask=fnp.asarray(_np(kpm)))
    fout = fdec(fnp.asarray(_np(tgt)), fmem, memory_key_padding_mask=fnp.asarray(_np(kpm)))
    # (torch's fast path zeroes padded positions of the encoder's output; compare the rest)
    _close(fmem[0], tmem[0])
    _close(fmem[1, :4], tmem[1, :4])
    _close(fout, tout)
    if training:
        (tout ** 2).sum().backward()
        (fout ** 2).sum().backward()
        _grads_close(tenc, fenc)
        _grads_close(tdec, fdec)
