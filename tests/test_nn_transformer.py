"""fnx.nn.MultiheadAttention and the Transformer layers against NumPy references of PyTorch's
equations (masks, bias_k/v, zero attention, kdim/vdim, post-norm and norm_first blocks), tape
gradients against fnx.grad, jit and vmap against eager, PyTorch's state_dict keys and errors."""

import math

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx import nn
from fnx.core.errors import ShapeError

F64 = fnx.float64
_erf = np.vectorize(math.erf)


# --- NumPy references ------------------------------------------------------------------------


def _p(m, prefix=""):
    return {k[len(prefix):]: np.asarray(v, dtype=np.float64)
            for k, v in m.state_dict().items() if k.startswith(prefix)}


def _softmax(s):
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _additive(mask):
    mask = np.asarray(mask)
    return np.where(mask, -np.inf, 0.0) if mask.dtype == bool else mask


def _ref_mha(m, q, k, v, key_padding_mask=None, attn_mask=None, prefix=""):
    """Batch-first ``(N, L, E)`` inputs; returns ``(output, per-head weights (N, H, L, S))``."""
    p = _p(m, prefix)
    n_heads, e = m.num_heads, m.embed_dim
    hd = e // n_heads
    if "in_proj_weight" in p:
        wq, wk, wv = np.split(p["in_proj_weight"], 3)
    else:
        wq, wk, wv = p["q_proj_weight"], p["k_proj_weight"], p["v_proj_weight"]
    bq, bk, bv = np.split(p["in_proj_bias"], 3) if "in_proj_bias" in p else (0.0,) * 3
    q, k, v = q @ wq.T + bq, k @ wk.T + bk, v @ wv.T + bv
    n, n_q = q.shape[:2]
    extra = 0
    if "bias_k" in p:
        k = np.concatenate([k, np.broadcast_to(p["bias_k"], (n, 1, e))], axis=1)
        v = np.concatenate([v, np.broadcast_to(p["bias_v"], (n, 1, e))], axis=1)
        extra += 1

    def heads(t):
        return t.reshape(n, t.shape[1], n_heads, hd).transpose(0, 2, 1, 3)

    q, k, v = heads(q), heads(k), heads(v)
    if m.add_zero_attn:
        zeros = np.zeros((n, n_heads, 1, hd))
        k, v = np.concatenate([k, zeros], axis=2), np.concatenate([v, zeros], axis=2)
        extra += 1
    scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(hd)
    if attn_mask is not None:
        am = np.pad(_additive(attn_mask), [(0, 0)] * (np.ndim(attn_mask) - 1) + [(0, extra)])
        scores = scores + (am if am.ndim == 2 else am.reshape(n, n_heads, n_q, -1))
    if key_padding_mask is not None:
        kpm = np.pad(_additive(key_padding_mask), [(0, 0), (0, extra)])
        scores = scores + kpm[:, None, None, :]
    w = _softmax(scores)
    out = (w @ v).transpose(0, 2, 1, 3).reshape(n, n_q, e)
    out = out @ p["out_proj.weight"].T + p.get("out_proj.bias", 0.0)
    return out, w


def _ref_ln(x, p, name, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * p[name + ".weight"] + p.get(name + ".bias", 0.0)


def _ref_ff(x, p, act):
    h = x @ p["linear1.weight"].T + p["linear1.bias"]
    h = np.maximum(h, 0) if act == "relu" else 0.5 * h * (1 + _erf(h / math.sqrt(2)))
    return h @ p["linear2.weight"].T + p["linear2.bias"]


def _ref_encoder_layer(layer, x, mask=None, kpm=None, act="relu"):
    p = _p(layer)

    def sa(t):
        return _ref_mha(layer.self_attn, t, t, t, kpm, mask)[0]

    if layer.norm_first:
        x = x + sa(_ref_ln(x, p, "norm1"))
        return x + _ref_ff(_ref_ln(x, p, "norm2"), p, act)
    x = _ref_ln(x + sa(x), p, "norm1")
    return _ref_ln(x + _ref_ff(x, p, act), p, "norm2")


def _ref_decoder_layer(layer, x, mem, tgt_mask=None, act="relu"):
    p = _p(layer)

    def sa(t):
        return _ref_mha(layer.self_attn, t, t, t, None, tgt_mask)[0]

    def ca(t):
        return _ref_mha(layer.multihead_attn, t, mem, mem)[0]

    if layer.norm_first:
        x = x + sa(_ref_ln(x, p, "norm1"))
        x = x + ca(_ref_ln(x, p, "norm2"))
        return x + _ref_ff(_ref_ln(x, p, "norm3"), p, act)
    x = _ref_ln(x + sa(x), p, "norm1")
    x = _ref_ln(x + ca(x), p, "norm2")
    return _ref_ln(x + _ref_ff(x, p, act), p, "norm3")


def _close(got, want, tol=1e-10):
    np.testing.assert_allclose(np.asarray(got), want, rtol=tol, atol=tol)


# --- MultiheadAttention ----------------------------------------------------------------------

MHA_CONFIGS = [
    dict(),
    dict(bias=False),
    dict(add_bias_kv=True, add_zero_attn=True),
    dict(kdim=3, vdim=5),
]


@pytest.mark.parametrize("kw", MHA_CONFIGS)
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_matches_reference(kw, batch_first, rng):
    m = nn.MultiheadAttention(8, 2, batch_first=batch_first, dtype=F64, **kw)
    if m.bias_k is not None:  # bias_k/v start random already; make in/out biases non-zero
        m.in_proj_bias.copy_(fnp.asarray(rng.standard_normal(24)))
    n, n_q, n_k = 2, 3, 4
    q = rng.standard_normal((n, n_q, 8))
    k = rng.standard_normal((n, n_k, m.kdim))
    v = rng.standard_normal((n, n_k, m.vdim))
    kpm = np.array([[False, False, True, False], [False, True, False, False]])
    attn_mask = rng.standard_normal((n_q, n_k))
    want, w = _ref_mha(m, q, k, v, kpm, attn_mask)

    def run(**extra):
        args = [fnp.asarray(t if batch_first else np.swapaxes(t, 0, 1)) for t in (q, k, v)]
        out, weights = m(*args, key_padding_mask=fnp.asarray(kpm),
                         attn_mask=fnp.asarray(attn_mask), **extra)
        return (np.asarray(out) if batch_first else np.swapaxes(np.asarray(out), 0, 1)), weights

    out, weights = run()
    _close(out, want)
    _close(weights, w.mean(axis=1))
    out, weights = run(need_weights=False)
    assert weights is None
    _close(out, want)
    _, weights = run(average_attn_weights=False)
    assert weights.shape == (n, 2, n_q, w.shape[-1])
    _close(weights, w)


def test_mha_masks_bool_3d_and_causal(rng):
    m = nn.MultiheadAttention(4, 2, dtype=F64)
    x = rng.standard_normal((2, 5, 4))
    xs = fnp.asarray(np.swapaxes(x, 0, 1))
    mask3 = rng.random((4, 5, 5)) < 0.3
    mask3[..., 0] = False  # every query keeps one key
    out, w = m(xs, xs, xs, attn_mask=fnp.asarray(mask3), average_attn_weights=False)
    want, want_w = _ref_mha(m, x, x, x, attn_mask=mask3)
    _close(np.swapaxes(np.asarray(out), 0, 1), want)
    _close(w, want_w)
    assert (np.asarray(w)[mask3.reshape(2, 2, 5, 5)] == 0).all()
    causal = nn.Transformer.generate_square_subsequent_mask(5, dtype=F64)
    ref = np.asarray(m(xs, xs, xs, attn_mask=causal)[0])
    for need_weights in (False, True):
        got = m(xs, xs, xs, attn_mask=causal, is_causal=True, need_weights=need_weights)[0]
        _close(got, ref)
    bool_causal = fnp.asarray(np.triu(np.ones((5, 5), dtype=bool), 1))
    _close(m(xs, xs, xs, attn_mask=bool_causal)[0], ref)
    with pytest.raises(ValueError, match="need attn_mask if specifying the is_causal hint"):
        m(xs, xs, xs, is_causal=True)


def test_mha_unbatched_and_vmap(rng):
    m = nn.MultiheadAttention(4, 2, batch_first=True)
    x = fnp.asarray(rng.standard_normal((3, 5, 4)).astype(np.float32))
    kpm = fnp.asarray(np.array([[False] * 4 + [True]] * 3))
    batched, bw = m(x, x, x, key_padding_mask=kpm)
    single, sw = m(x[1], x[1], x[1], key_padding_mask=kpm[1])
    assert single.shape == (5, 4) and sw.shape == (5, 5)
    np.testing.assert_allclose(np.asarray(single), np.asarray(batched[1]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(sw), np.asarray(bw[1]), rtol=1e-5, atol=1e-6)
    vm = fnx.vmap(lambda t, k: m(t, t, t, key_padding_mask=k)[0])(x, kpm)
    np.testing.assert_allclose(np.asarray(vm), np.asarray(batched), rtol=1e-5, atol=1e-6)


def test_mha_state_dict_init_and_repr():
    m = nn.MultiheadAttention(8, 2)
    assert list(m.state_dict()) == ["in_proj_weight", "in_proj_bias", "out_proj.weight",
                                    "out_proj.bias"]
    assert m.in_proj_weight.shape == (24, 8) and m.q_proj_weight is None
    assert (np.asarray(m.in_proj_bias) == 0).all() and (np.asarray(m.out_proj.bias) == 0).all()
    assert np.abs(np.asarray(m.in_proj_weight)).max() <= math.sqrt(6 / (8 + 24))
    assert list(nn.MultiheadAttention(8, 2, kdim=3, vdim=5).state_dict()) == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "out_proj.weight",
        "out_proj.bias"]
    assert list(nn.MultiheadAttention(8, 2, add_bias_kv=True, bias=False).state_dict()) == [
        "in_proj_weight", "bias_k", "bias_v", "out_proj.weight"]
    assert repr(m) == ("MultiheadAttention(\n  (out_proj): NonDynamicallyQuantizableLinear("
                       "in_features=8, out_features=8, bias=True)\n)")


def test_mha_errors():
    m = nn.MultiheadAttention(8, 2)
    x = fnx.ones(3, 2, 8)
    with pytest.raises(ShapeError) as e:
        m(fnx.ones(3, 2, 6), x, x)
    assert str(e.value) == ("MultiheadAttention(embed_dim=8, num_heads=2) expected query with "
                            "last dimension 8, got shape (3, 2, 6)")
    with pytest.raises(ShapeError, match=r"expected attn_mask of shape \(3, 3\) or \(4, 3, 3\)"):
        m(x, x, x, attn_mask=fnx.zeros(3, 4))
    with pytest.raises(ShapeError, match=r"expected key_padding_mask of shape \(2, 3\)"):
        m(x, x, x, key_padding_mask=fnx.zeros(3, 2, dtype=fnp.bool_))
    with pytest.raises(ShapeError, match="query should be unbatched 2-D or batched 3-D"):
        m(fnx.ones(8), x, x)
    with pytest.raises(ShapeError, match="key and value should also be batched 3-D"):
        m(x, fnx.ones(3, 8), x)
    with pytest.raises(ShapeError, match="must agree in batch size"):
        m(x, fnx.ones(4, 3, 8), fnx.ones(4, 3, 8))
    with pytest.raises(ValueError, match="embed_dim must be divisible by num_heads"):
        nn.MultiheadAttention(8, 3)
    with pytest.raises(TypeError, match="only bool and floating types of attn_mask"):
        m(x, x, x, attn_mask=fnx.zeros(3, 3, dtype=fnx.int32))


# --- Transformer layers ----------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_reference(norm_first, activation, rng):
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0,
                                       activation=activation, norm_first=norm_first,
                                       batch_first=True, dtype=F64)
    for p in (layer.norm1.weight, layer.norm2.bias):  # non-trivial LayerNorm parameters
        p.copy_(fnp.asarray(rng.standard_normal(8)))
    x = rng.standard_normal((2, 5, 8))
    mask = np.asarray(nn.Transformer.generate_square_subsequent_mask(5, dtype=F64))
    kpm = np.array([[False] * 5, [False] * 4 + [True]])
    got = layer(fnp.asarray(x), src_mask=fnp.asarray(mask),
                src_key_padding_mask=fnp.asarray(kpm))
    _close(got, _ref_encoder_layer(layer, x, mask, kpm, activation))


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_reference(norm_first, rng):
    layer = nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, norm_first=norm_first,
                                       dtype=F64).eval()
    tgt, mem = rng.standard_normal((2, 4, 8)), rng.standard_normal((2, 6, 8))
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=F64)
    got = layer(fnp.asarray(np.swapaxes(tgt, 0, 1)), fnp.asarray(np.swapaxes(mem, 0, 1)),
                tgt_mask=mask, tgt_is_causal=True)
    _close(np.swapaxes(np.asarray(got), 0, 1),
           _ref_decoder_layer(layer, tgt, mem, np.asarray(mask)))


def test_transformer_matches_composed_reference(rng):
    model = nn.Transformer(8, 2, num_encoder_layers=2, num_decoder_layers=2, dim_feedforward=16,
                           batch_first=True, dtype=F64).eval()
    src, tgt = rng.standard_normal((2, 6, 8)), rng.standard_normal((2, 4, 8))
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=F64)
    got = model(fnp.asarray(src), fnp.asarray(tgt), tgt_mask=mask)
    mem = src
    for layer in model.encoder.layers:
        mem = _ref_encoder_layer(layer, mem)
    mem = _ref_ln(mem, _p(model.encoder), "norm")
    out = tgt
    for layer in model.decoder.layers:
        out = _ref_decoder_layer(layer, out, mem, np.asarray(mask))
    _close(got, _ref_ln(out, _p(model.decoder), "norm"))
    # the layers are independent copies, re-initialised xavier-uniform by Transformer
    a, b = model.encoder.layers
    assert a.linear1.weight is not b.linear1.weight
    assert not np.array_equal(np.asarray(a.linear1.weight), np.asarray(b.linear1.weight))


def test_transformer_state_dict_keys():
    model = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    mha = ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
    wb = ["weight", "bias"]
    enc = [f"self_attn.{k}" for k in mha] + [f"{n}.{k}" for n in ("linear1", "linear2", "norm1",
                                                                  "norm2") for k in wb]
    dec = [f"{a}.{k}" for a in ("self_attn", "multihead_attn") for k in mha] + \
        [f"{n}.{k}" for n in ("linear1", "linear2", "norm1", "norm2", "norm3") for k in wb]
    want = ([f"encoder.layers.0.{k}" for k in enc] + ["encoder.norm.weight", "encoder.norm.bias"]
            + [f"decoder.layers.0.{k}" for k in dec]
            + ["decoder.norm.weight", "decoder.norm.bias"])
    assert list(model.state_dict()) == want
    no_bias = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, bias=False)
    assert list(no_bias.state_dict()) == ["self_attn.in_proj_weight", "self_attn.out_proj.weight",
                                          "linear1.weight", "linear2.weight", "norm1.weight",
                                          "norm2.weight"]
    # an activation module is a child without state
    gelu = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, activation=nn.GELU())
    assert list(gelu.state_dict()) == list(nn.TransformerEncoderLayer(8, 2, 16).state_dict())


def test_generate_square_subsequent_mask():
    m = nn.Transformer.generate_square_subsequent_mask(4)
    assert m.dtype == fnx.float32 and m.shape == (4, 4)
    np.testing.assert_array_equal(np.asarray(m), np.triu(np.full((4, 4), -np.inf), 1))
    assert nn.Transformer.generate_square_subsequent_mask(2, dtype=F64).dtype == F64


def test_dropout_only_in_training(rng):
    fnx.manual_seed(0)
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.5, dtype=F64)
    x = fnp.asarray(rng.standard_normal((5, 2, 8)))
    train_out = np.asarray(layer(x))
    layer.eval()
    want = _ref_encoder_layer(layer, np.swapaxes(np.asarray(x), 0, 1))
    _close(np.swapaxes(np.asarray(layer(x)), 0, 1), want)
    assert not np.allclose(train_out, np.swapaxes(want, 0, 1))


def test_encoder_tape_gradients_equal_fnx_grad(rng):
    enc = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(4, 2, dim_feedforward=8, dropout=0.0, dtype=F64), 2,
        norm=nn.LayerNorm(4, dtype=F64))
    x_np = rng.standard_normal((3, 2, 4))
    mask = nn.Transformer.generate_square_subsequent_mask(3, dtype=F64)

    def loss(enc, x):
        return (enc(x, mask=mask) * fnp.arange(24.0, dtype=F64).reshape(3, 2, 4)).sum()

    x = fnp.asarray(x_np).requires_grad_()
    loss(enc, x).backward()
    g_enc, g_x = fnx.grad(loss, argnums=(0, 1))(enc, fnp.asarray(x_np))
    for name, p in enc.named_parameters():
        np.testing.assert_allclose(np.asarray(p.grad), np.asarray(g_enc.get_parameter(name)),
                                   rtol=1e-9, atol=1e-11, err_msg=name)
    np.testing.assert_allclose(np.asarray(x.grad), np.asarray(g_x), rtol=1e-9, atol=1e-11)


def test_mha_gradients_match_finite_differences(rng):
    m = nn.MultiheadAttention(4, 2, add_bias_kv=True, kdim=3, dtype=F64)
    q, k, v = (fnp.asarray(rng.standard_normal(s)) for s in ((3, 2, 4), (5, 2, 3), (5, 2, 4)))

    def loss(m, q, k, v):
        out, w = m(q, k, v)
        return (out ** 2).sum() + (w * w).sum()

    fnx.testing.check_grads(loss, (m, q, k, v), order=1, modes=("rev",))


def test_transformer_jit_equals_eager(rng):
    model = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16,
                           batch_first=True).eval()
    src = fnp.asarray(rng.standard_normal((2, 5, 8)).astype(np.float32))
    tgt = fnp.asarray(rng.standard_normal((2, 3, 8)).astype(np.float32))
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    kpm = fnp.asarray(np.array([[False] * 5, [False] * 3 + [True] * 2]))
    f = fnx.jit(lambda m, s, t: m(s, t, tgt_mask=mask, src_key_padding_mask=kpm,
                                  memory_key_padding_mask=kpm))
    want = model(src, tgt, tgt_mask=mask, src_key_padding_mask=kpm,
                 memory_key_padding_mask=kpm)
    np.testing.assert_allclose(np.asarray(f(model, src, tgt)), np.asarray(want), rtol=1e-5,
                               atol=1e-5)


def test_transformer_errors():
    model = nn.Transformer(8, 2, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=16)
    with pytest.raises(ShapeError, match="the batch number of src and tgt must be equal"):
        model(fnx.ones(5, 2, 8), fnx.ones(3, 3, 8))
    with pytest.raises(ShapeError, match=r"must be equal to d_model \(8\)"):
        model(fnx.ones(5, 2, 8), fnx.ones(3, 2, 6))
    with pytest.raises(ValueError, match="activation should be relu/gelu or a callable"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
