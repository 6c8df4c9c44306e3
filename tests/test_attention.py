"""The fused attention primitive (fnx/core/ops/attention.py) behind
``F.scaled_dot_product_attention``: values against a float64 NumPy reference (masks, causal,
scale, fully masked rows, GQA, dropout), gradients by central finite differences (first and
second order), vmap against a loop, jit against eager, the array-code path that CuPy takes
against the Numba kernels, and the shape errors."""

import math
import warnings

import numpy as np
import pytest

import fnx
import fnx.nn.functional as F
from fnx.core.errors import ShapeError
from fnx.core.ops import attention as at
from fnx.core.ops import shape as sh
from fnx.testing import check_grads


def _ref(q, k, v, mask=None, causal=False, scale=None, keep=None, p=0.0):
    """softmax(q k^T * scale + mask) v in float64; zeros on rows with every key masked."""
    q, k, v = (np.asarray(t, np.float64) for t in (q, k, v))
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ np.swapaxes(k, -1, -2) * scale
    if causal:
        s = np.where(np.tril(np.ones(s.shape[-2:], bool)), s, -np.inf)
    if mask is not None:
        mask = np.asarray(mask)
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    m = s.max(-1, keepdims=True)
    e = np.exp(s - np.where(np.isfinite(m), m, 0))
    tot = e.sum(-1, keepdims=True)
    w = e / np.where(tot == 0, 1, tot)
    if keep is not None:
        w = w * np.asarray(keep) / (1 - p)
    return w @ v


def _qkv(rng, shape_q, shape_k, ev=None, dtype=np.float32):
    ev = shape_k[-1] if ev is None else ev
    return (rng.standard_normal(shape_q).astype(dtype), rng.standard_normal(shape_k).astype(dtype),
            rng.standard_normal(shape_k[:-1] + (ev,)).astype(dtype))


def _sdpa(q, k, v, **kw):
    return F.scaled_dot_product_attention(fnx.tensor(q), fnx.tensor(k), fnx.tensor(v), **kw)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["plain", "causal", "causal_wide", "scale", "bool_mask",
                                  "float_mask", "masked_rows"])
def test_forward_matches_reference(dtype, case):
    rng = np.random.default_rng(0)
    n_k = 9 if case == "causal_wide" else 6
    q, k, v = _qkv(rng, (2, 3, 5, 4), (2, 3, n_k, 4), ev=7, dtype=dtype)
    kw, ref_kw = {}, {}
    if case.startswith("causal"):
        kw = ref_kw = {"is_causal": True}
        ref_kw = {"causal": True}
    elif case == "scale":
        kw = ref_kw = {"scale": -0.3}  # a negative scale flips which score is the max
    elif case in ("bool_mask", "masked_rows"):
        mask = rng.random((2, 1, 5, n_k)) > 0.4  # broadcast over heads
        if case == "masked_rows":
            mask[0, 0, 1] = False  # query 1 of batch 0 may attend to nothing: zeros
            mask[1, 0, :, 2] = False
        kw, ref_kw = {"attn_mask": fnx.tensor(mask)}, {"mask": mask}
    elif case == "float_mask":
        mask = rng.standard_normal((5, n_k)).astype(dtype)
        mask[2, 3] = -np.inf
        kw, ref_kw = {"attn_mask": fnx.tensor(mask)}, {"mask": mask}
    out = np.asarray(_sdpa(q, k, v, **kw))
    assert out.dtype == dtype and out.shape == (2, 3, 5, 7)
    tol = 2e-6 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(out, _ref(q, k, v, **ref_kw), rtol=tol, atol=tol)
    if case == "masked_rows":
        assert not out[0, :, 1].any()


def test_gqa_repeats_key_value_heads():
    rng = np.random.default_rng(1)
    q, k, v = _qkv(rng, (2, 4, 3, 5), (2, 2, 6, 5))
    out = _sdpa(q, k, v, enable_gqa=True)
    want = _ref(q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1))
    np.testing.assert_allclose(np.asarray(out), want, rtol=2e-6, atol=2e-6)


def test_dropout_applies_the_draw_of_the_composition():
    """The dropout mask is drawn as before (one Bernoulli draw of the scores' shape from the
    key) and applied inside the kernel; the softmax output ``p`` stays undropped."""
    rng = np.random.default_rng(2)
    q, k, v = _qkv(rng, (2, 2, 4, 3), (2, 2, 5, 3), dtype=np.float64)
    key = fnx.random.key(7)
    out = _sdpa(q, k, v, dropout_p=0.3, dropout_key=key)
    keep = F._dropout_mask(fnx.tensor(q), 0.3, (2, 2, 4, 5), key)
    assert 0 < float(np.asarray(keep).mean()) < 1
    np.testing.assert_allclose(np.asarray(out), _ref(q, k, v, keep=keep, p=0.3), rtol=1e-12,
                               atol=1e-12)
    assert not np.asarray(_sdpa(q, k, v, dropout_p=1.0)).any()

    def loss(q, k, v):
        return (F.scaled_dot_product_attention(q, k, v, dropout_p=0.3, dropout_key=key) ** 2).sum()

    check_grads(loss, tuple(fnx.tensor(a) for a in (q, k, v)), order=1, modes=("rev",))


@pytest.mark.parametrize("mask_kind", [None, "float", "causal"])
def test_grads_by_finite_differences(mask_kind):
    """float64 central differences, first and second order, through q, k, v and a float mask
    (its gradient is the scores' gradient summed over the broadcast heads)."""
    rng = np.random.default_rng(3)
    q, k, v = (fnx.tensor(a) for a in _qkv(rng, (2, 2, 3, 4), (2, 2, 5, 4), ev=3,
                                           dtype=np.float64))
    if mask_kind == "float":
        mask = fnx.tensor(rng.standard_normal((2, 1, 3, 5)))
        check_grads(lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                    (q, k, v, mask), order=2)
        return
    causal = mask_kind == "causal"
    check_grads(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=causal,
                                                               scale=0.7), (q, k, v), order=2)


def test_grad_with_fully_masked_rows_is_finite():
    rng = np.random.default_rng(4)
    q, k, v = (fnx.tensor(a) for a in _qkv(rng, (2, 3, 4), (2, 5, 4), dtype=np.float64))
    mask = np.ones((2, 3, 5), bool)
    mask[1, 2] = False
    g = fnx.grad(lambda q, k, v: F.scaled_dot_product_attention(
        q, k, v, attn_mask=fnx.tensor(mask)).sum(), argnums=(0, 1, 2))(q, k, v)
    assert all(np.isfinite(np.asarray(x)).all() for x in g)
    assert not np.asarray(g[0])[1, 2].any()  # the masked query gets no gradient


def test_vmap_equals_a_loop():
    """Batched in each argument (and the mask), at a non-leading axis."""
    rng = np.random.default_rng(5)
    q, k, v = _qkv(rng, (3, 2, 4, 3), (3, 2, 5, 3), dtype=np.float64)
    mask = rng.standard_normal((3, 4, 5))

    def f(q, k, v, m):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=m)

    for axes in [(1, None, None, None), (None, 1, 0, None), (0, 0, 0, 0), (None, None, 1, 0)]:
        args = [fnx.tensor(np.moveaxis(a, 0, ax) if ax is not None else a[0])
                for a, ax in zip((q, k, v, mask), axes, strict=True)]
        out = fnx.vmap(f, in_axes=axes)(*args)
        want = [f(*[fnx.tensor(a[i] if ax is not None else a[0])
                    for a, ax in zip((q, k, v, mask), axes, strict=True)]) for i in range(3)]
        np.testing.assert_allclose(np.asarray(out), np.stack([np.asarray(w) for w in want]),
                                   rtol=1e-12, atol=1e-12)


def test_jit_equals_eager_and_runs_the_impl():
    """Under jit both primitives run their impls (no fallback warning), forward and backward."""
    rng = np.random.default_rng(6)
    q, k, v = (fnx.tensor(a) for a in _qkv(rng, (2, 3, 6, 4), (2, 3, 6, 4)))
    mask = fnx.tensor(rng.random((6, 6)) > 0.3)

    def loss(q, k, v):
        return (F.scaled_dot_product_attention(q, k, v, attn_mask=mask) ** 2).sum()

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jitted = fnx.jit(fnx.value_and_grad(loss, argnums=(0, 1, 2)))(q, k, v)
    eager = fnx.value_and_grad(loss, argnums=(0, 1, 2))(q, k, v)
    np.testing.assert_allclose(float(jitted[0]), float(eager[0]), rtol=1e-6)
    for a, b in zip(jitted[1], eager[1], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_array_code_path_equals_the_kernels(causal):
    """What CuPy (and dtypes without a kernel) run: the same formulas as array code, forward
    and backward (the mask's cotangent summed over its broadcast dim)."""
    rng = np.random.default_rng(7)
    q, k, v = _qkv(rng, (3, 4, 5), (3, 6, 5), ev=2, dtype=np.float64)
    mask = rng.standard_normal((1, 4, 6))
    keep = (rng.random((3, 4, 6)) > 0.5).astype(np.float64)
    params = dict(scale=0.4, causal=causal, has_mask=True, dropout_scale=2.0)
    got = at.attention_p.impl(q, k, v, mask, keep, **params)
    want = at._reference(np, q, k, v, mask, keep, 0.4, causal, 2.0)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    g = rng.standard_normal(want[0].shape)
    got = at.attention_vjp_p.impl(q, k, v, mask, keep, want[1], g, **params)
    for a, b in zip(got, at._backward(np, q, k, v, mask, keep, want[1], g, **params),
                    strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_float16_runs_the_array_code():
    rng = np.random.default_rng(8)
    q, k, v = _qkv(rng, (2, 3, 4), (2, 5, 4), dtype=np.float16)
    out = np.asarray(_sdpa(q, k, v, is_causal=True))
    assert out.dtype == np.float16
    np.testing.assert_allclose(out, _ref(q, k, v, causal=True), rtol=2e-2, atol=2e-2)


def test_shape_errors():
    q = fnx.ones((2, 3, 4))
    with pytest.raises(ShapeError, match="attention: expected q"):
        at.attention(q, fnx.ones((2, 5, 3)), fnx.ones((2, 5, 3)), scale=1.0)
    with pytest.raises(ShapeError, match="mask .* must have q's rank"):
        at.attention(q, q, q, fnx.ones((2, 2, 3)), scale=1.0)
    with pytest.raises(ShapeError, match="cannot be broadcast"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=fnx.ones((5, 3, 3)))
    with pytest.raises(ShapeError, match="does not broadcast against the attention scores"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=fnx.ones((1, 2, 3, 3)))
    with pytest.raises(ValueError, match="should not be set when is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=fnx.ones((3, 3)), is_causal=True)


# --- embedding rows (the W10 step's lookup; its gradient is one fused row scatter-add) -------

from fnx.core.ops import embedding as em  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_embedding_scatter_kernel_equals_add_at(dtype):
    rng = np.random.default_rng(9)
    idx = rng.integers(0, 50, (32, 64))  # many duplicates
    ct = rng.standard_normal((32, 64, 16)).astype(dtype)
    got = em.embedding_scatter_p.impl(ct, idx, num_rows=50)
    want = np.zeros((50, 16), dtype)
    np.add.at(want, idx.reshape(-1), ct.reshape(-1, 16))
    assert got.dtype == dtype
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-12,
                               atol=1e-5 if dtype == np.float32 else 1e-12)


def test_embedding_grad_and_jit_match_the_gather_composition():
    """F.embedding's gradient (padding_idx included) equals the one of ``take``; traced
    out-of-range indices are clamped as a traced ``take`` clamps them."""
    rng = np.random.default_rng(10)
    w = fnx.tensor(rng.standard_normal((7, 3)))
    idx = fnx.tensor(rng.integers(0, 7, (4, 5)))
    g = fnx.tensor(rng.standard_normal((4, 5, 3)))

    def loss(w, embed):
        return (embed(idx, w) * g).sum()

    def take(i, w):
        out = fnx.numpy.take(w, i, axis=0)
        return fnx.numpy.where(fnx.numpy.expand_dims(i == 2, -1), fnx.lax.stop_gradient(out),
                               out)

    got = fnx.grad(loss)(w, lambda i, w: F.embedding(i, w, padding_idx=2))
    np.testing.assert_allclose(np.asarray(got), np.asarray(fnx.grad(loss)(w, take)), rtol=1e-13)
    jitted = fnx.jit(fnx.grad(lambda w: (F.embedding(idx, w, padding_idx=2) * g).sum()))(w)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(got), rtol=1e-13)
    wild = fnx.tensor(np.array([[-3, 9]]))
    np.testing.assert_array_equal(
        np.asarray(fnx.jit(em.embedding_lookup)(w, wild)),
        np.asarray(fnx.jit(lambda w, i: fnx.numpy.take(w, i, axis=0))(w, wild)))


@pytest.mark.parametrize("axes", [(None, 0), (0, None), (0, 1), (1, 0)])
def test_embedding_vmap_equals_a_loop(axes):
    """Lookup and (through grad) the scatter, batched in the table, the indices or both."""
    rng = np.random.default_rng(11)
    ws = rng.standard_normal((3, 6, 2))
    idx = rng.integers(0, 6, (3, 4))
    g = rng.standard_normal((4, 2))

    def f(w, i):
        out = em.embedding_lookup(w, i)
        return out, fnx.grad(lambda w: (em.embedding_lookup(w, i) * g).sum())(w)

    args = [np.moveaxis(ws, 0, axes[0]) if axes[0] is not None else ws[0],
            np.moveaxis(idx, 0, axes[1]) if axes[1] is not None else idx[0]]
    out, grads = fnx.vmap(f, in_axes=axes)(*(fnx.tensor(a) for a in args))
    for b in range(3):
        w_b = ws[b] if axes[0] is not None else ws[0]
        i_b = idx[b] if axes[1] is not None else idx[0]
        o, gr = f(fnx.tensor(w_b), fnx.tensor(i_b))
        np.testing.assert_allclose(np.asarray(out)[b], np.asarray(o), rtol=1e-13)
        np.testing.assert_allclose(np.asarray(grads)[b], np.asarray(gr), rtol=1e-13)


def test_self_attention_grad_program_is_fused():
    """MultiheadAttention's backward: one fused attention backward, the packed projection's
    output split once (its gradient one concatenate, no zero-padded copies) and an
    embedding's gradient as one row scatter."""
    m = fnx.nn.MultiheadAttention(8, 2, batch_first=True)
    emb = fnx.nn.Embedding(11, 8)
    tokens = fnx.tensor(np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1], [0, 0, 1, 1, 10]]))

    def loss(params):
        x = fnx.nn.functional_call(emb, {"weight": params["emb"]}, (tokens,))
        out = fnx.nn.functional_call(m, params["mha"], (x, x, x), {"need_weights": False})[0]
        return (out ** 2).sum()

    params = {"mha": dict(m.named_parameters()), "emb": emb.weight}
    lines = str(fnx.make_ir(fnx.grad(loss))(params)).splitlines()
    prims = [line.split("=", 1)[1].split()[0].split("[")[0] for line in lines if " = " in line]
    assert prims.count("attention") == 1 and prims.count("attention_vjp") == 1
    assert prims.count("embedding_scatter") == 1 and "scatter_add" not in prims
    assert "pad" not in prims and prims.count("split") == 1
    assert prims.count("concatenate") == 1 and prims.count("dot_general") == 2 + 2 * 2


def test_mask_broadcast_over_keys_and_its_shape_rule():
    # a (L, 1) mask broadcasts over the keys (PyTorch does); the row kernel reads whole mask
    # rows, so it once read past a width-1 mask eagerly and jit raised
    rng = np.random.default_rng(3)
    q, k, v = _qkv(rng, (2, 3, 4), (2, 5, 4), dtype=np.float64)
    mask = rng.standard_normal((3, 1))
    ref = _ref(q, k, v, mask=mask)
    out = _sdpa(q, k, v, attn_mask=fnx.tensor(mask))
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-12, atol=1e-12)
    jitted = fnx.jit(lambda a, b, c, m: F.scaled_dot_product_attention(a, b, c, attn_mask=m))
    out = jitted(*(fnx.tensor(t) for t in (q, k, v, mask)))
    np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-12, atol=1e-12)
    with pytest.raises(ShapeError, match="mask .* must have q's rank"):
        at.attention(*(fnx.tensor(t) for t in (q, k, v)), fnx.ones((1, 3, 1), dtype=fnx.float64),
                     scale=1.0)


def test_zero_feature_size_averages_the_values():
    # E == 0: every score is 0, so each query averages the values (PyTorch too); the default
    # scale 1 / sqrt(E) was a ZeroDivisionError
    rng = np.random.default_rng(4)
    q, k, v = _qkv(rng, (2, 3, 0), (2, 4, 0), ev=5, dtype=np.float64)
    out = np.asarray(_sdpa(q, k, v))
    np.testing.assert_allclose(out, np.broadcast_to(v.mean(1, keepdims=True), (2, 3, 5)),
                               rtol=1e-12)


def test_eager_and_jit_refuse_integer_operands_alike():
    """Eager calls skip the shape/dtype rule; integer q, k, v would take a softmax in
    integers (silently all zeros) where jit raises."""
    from fnx.core.errors import DTypeError

    x = fnx.tensor(np.arange(8, dtype=np.int32).reshape(1, 2, 4))
    with pytest.raises(DTypeError, match="expected floating operands"):
        F.scaled_dot_product_attention(x, x, x)
    with pytest.raises(DTypeError, match="expected floating operands"):
        fnx.jit(F.scaled_dot_product_attention)(x, x, x)


def test_eager_and_jit_refuse_bool_matrix_products_alike():
    import fnx.numpy as fnp
    from fnx.core.errors import DTypeError

    a = fnp.asarray(np.array([[True, False], [True, True]]))
    with pytest.raises(DTypeError, match="bool operands"):
        a @ a
    with pytest.raises(DTypeError, match="bool operands"):
        fnx.jit(lambda x: x @ x)(a)


def test_heads_split_from_packed_projection_keep_their_memory_order():
    """q, k, v as (N, H, L, D) views of one (N, L, 3*H*D) projection (MultiheadAttention's
    packed path): results equal the reference; the output lies in (N, L, H, D) memory and the
    gradients in one buffer laid out as the projection, so merging the heads back is a free
    reshape and the split's transpose (one concatenate) a view of that buffer."""
    rng = np.random.default_rng(3)
    n, h, length, d = 2, 3, 5, 4
    qkv = rng.standard_normal((n, length, 3 * h * d))
    q, k, v = (qkv[..., i * h * d:(i + 1) * h * d].reshape(n, length, h, d).swapaxes(1, 2)
               for i in range(3))
    params = dict(scale=0.5, causal=False, has_mask=False, dropout_scale=None)
    out, p = at._attention_impl(q, k, v, **params)
    np.testing.assert_allclose(out, _ref(q, k, v, scale=0.5), rtol=1e-12)
    assert out.swapaxes(1, 2).flags.c_contiguous
    g = rng.standard_normal(out.shape)
    grads = at._backward_impl(q, k, v, p, g, **params)
    ref = fnx.vjp(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.5),
                  *(fnx.tensor(np.ascontiguousarray(t)) for t in (q, k, v)))[1](fnx.tensor(g))
    merged = []
    for got, want in zip(grads, ref, strict=True):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-12)
        merged.append(got.swapaxes(1, 2).reshape(n, length, h * d))
        assert np.shares_memory(merged[-1], got)
    joined = sh.concatenate_p.impl(*merged, dimension=2, join_views=True)  # split's transpose
    np.testing.assert_array_equal(joined, np.concatenate(merged, axis=2))
    assert joined.flags.c_contiguous and all(np.shares_memory(joined, g) for g in grads)


def test_gradients_of_overlapping_or_unpacked_operands_get_their_own_buffers():
    """The packed layout is taken only for three disjoint pieces tiling one array: q is k is
    v (one array three times), or q and k the same piece, give separate buffers and the
    reference values."""
    rng = np.random.default_rng(5)
    qkv = rng.standard_normal((2, 5, 3 * 6))
    a, b, _ = (qkv[..., i * 6:(i + 1) * 6].reshape(2, 5, 2, 3).swapaxes(1, 2) for i in range(3))
    params = dict(scale=0.5, causal=False, has_mask=False, dropout_scale=None)
    # and three pieces of one array broadcast over a batch axis (stride 0: their elements
    # outnumber the memory they tile), where a packed gradient would add every row into one
    p3 = rng.standard_normal((1, 5, 3 * 6))
    c, d, e = (np.broadcast_to(p3[..., i * 6:(i + 1) * 6], (3, 5, 6)).reshape(3, 5, 2, 3)
               .swapaxes(1, 2) for i in range(3))
    for q, k, v in ((a, a, a), (a, a, b), (c, d, e)):
        out, p = at._attention_impl(q, k, v, **params)
        g = rng.standard_normal(out.shape)
        grads = at._backward_impl(q, k, v, p, g, **params)
        ref = fnx.vjp(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.5),
                      *(fnx.tensor(np.ascontiguousarray(t)) for t in (q, k, v)))[1](fnx.tensor(g))
        for got, want in zip(grads, ref, strict=True):
            np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-12)
        assert not any(np.shares_memory(x, y) for i, x in enumerate(grads) for y in grads[i + 1:])


def test_concatenate_joins_only_registered_buffers_in_order():
    """concatenate returns a view only for pieces of a buffer an impl registered
    (``shape.joinable``) lying side by side in order; out of order, with a gap, or pieces of
    any other array (a user's: torch.cat copies) it copies."""
    owner = sh.joinable(np.arange(24.0).reshape(2, 12))
    pieces = np.split(owner, 3, axis=1)
    cases = [(pieces, 1, True), (pieces[::-1], 1, False), ([pieces[0], pieces[2]], 1, False),
             ([owner[:1], owner[1:]], 0, True), (pieces[:2], 1, True)]
    user = np.arange(24.0).reshape(2, 12)
    cases.append((np.split(user, 3, axis=1), 1, False))
    for xs, axis, view in cases:
        got = sh.concatenate_p.impl(*xs, dimension=axis, join_views=True)  # split's transpose
        np.testing.assert_array_equal(got, np.concatenate(xs, axis=axis))
        assert np.shares_memory(got, xs[0]) == view
        assert not np.shares_memory(sh.concatenate_p.impl(*xs, dimension=axis), xs[0])
    t = fnx.tensor(user)
    joined = fnx.cat(fnx.tensor_split(t, 3, dim=1), dim=1)
    np.testing.assert_array_equal(np.asarray(joined), user)
    assert not np.shares_memory(np.asarray(joined), np.asarray(t))


def test_cat_of_packed_attention_gradients_is_a_new_array():
    """q, k, v chunked from one tensor get their gradients in one packed buffer; the user's
    ``fnx.cat`` of them is a new array (as torch.cat), not a view of that buffer."""
    p = fnx.tensor(np.random.default_rng(6).standard_normal((2, 5, 12)))
    q, k, v = (t.detach().requires_grad_() for t in p.chunk(3, -1))
    F.scaled_dot_product_attention(q, k, v).sum().backward()
    g = fnx.cat([q.grad, k.grad, v.grad], -1)
    np.testing.assert_array_equal(
        np.asarray(g), np.concatenate([np.asarray(t.grad) for t in (q, k, v)], -1))
    assert not any(np.shares_memory(np.asarray(g), np.asarray(t.grad)) for t in (q, k, v))


def test_broadcast_operands_give_c_ordered_results():
    """k, v broadcast over the heads (``expand``: stride 0) and q flipped: the values equal the
    reference, and a broadcast operand's gradient is C-ordered (sorting the strides put the
    stride-0 axis innermost: a product output too strided for BLAS, ~1.8x slower)."""
    rng = np.random.default_rng(4)
    n, h, length, d = 2, 3, 5, 4
    q = rng.standard_normal((n, h, length, d))[:, :, ::-1]
    k, v = (np.broadcast_to(rng.standard_normal((n, 1, length, d)), (n, h, length, d))
            for _ in range(2))
    params = dict(scale=0.5, causal=False, has_mask=False, dropout_scale=None)
    out, p = at._attention_impl(q, k, v, **params)
    np.testing.assert_allclose(out, _ref(q, k, v, scale=0.5), rtol=1e-12)
    g = rng.standard_normal(out.shape)
    grads = at._backward_impl(q, k, v, p, g, **params)
    ref = fnx.vjp(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, scale=0.5),
                  *(fnx.tensor(np.ascontiguousarray(t)) for t in (q, k, v)))[1](fnx.tensor(g))
    for got, want in zip(grads, ref, strict=True):
        np.testing.assert_allclose(got, np.asarray(want), rtol=1e-12, atol=1e-12)
        assert not np.shares_memory(got, q) and not np.shares_memory(got, k)
    assert grads[1].flags.c_contiguous and grads[2].flags.c_contiguous
