"""The fused normalization primitives (fnx/core/ops/normalization.py, kernels in
fnx/jit/kernels/norm.py) behind BatchNorm, LayerNorm, GroupNorm, InstanceNorm and RMSNorm:
the kernels against the array-code formulas CuPy runs (every layout, dtype and branch), the
layers against float64 NumPy definitions, gradients by central finite differences to second
order, vmap against a loop (the fold into N and the formula fallback), jit and compiled steps
against eager with no fallback and no new native compile for a new batch size, and the errors.
"""

import warnings

import numpy as np
import pytest

import fnx
import fnx.nn.functional as F
from fnx import nn
from fnx.core.errors import ShapeError
from fnx.core.ops import normalization as nm
from fnx.testing import check_grads

# (layout, dims, x shape, weight shape): BatchNorm2d, BatchNorm1d (the row path), LayerNorm
# rows (the row path), a 2-d normalized shape, GroupNorm, InstanceNorm, long blocks (several
# summation chunks), long LayerNorm rows (the mean summed about the first element)
CASES = [
    ("channel", (3, 4, 6), (3, 4, 2, 3), (4,)),
    ("channel", (7, 5, 1), (7, 5), (5,)),
    ("group", (6, 1, 8, 1), (2, 3, 8), (8,)),
    ("group", (4, 1, 6, 1), (4, 2, 3), (2, 3)),
    ("group", (2, 3, 2, 5), (2, 6, 5), (6,)),
    ("group", (2, 3, 1, 4), (2, 3, 4), (3,)),
    ("group", (2, 1, 3, 1500), (2, 3, 1500), (3,)),
    ("channel", (2, 2, 1300), (2, 2, 1300), (2,)),
    ("group", (3, 1, 1500, 1), (3, 1500), (1500,)),
]


def _np_norm(x, w, b, axes, eps, center=True):
    """The definition in float64: ``(x - mean) / sqrt(var + eps) * w + b`` over ``axes``."""
    x = np.asarray(x, np.float64)
    m = x.mean(axes, keepdims=True) if center else 0.0
    v = ((x - m) ** 2).mean(axes, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * w + b


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}{c[1]}")
def test_kernels_equal_the_array_code(case, dtype, center):
    """What CuPy runs (the formulas as array code) against the Numba kernels, forward and
    backward, with nonzero cotangents of the statistics too."""
    layout, dims, xs, ws = case
    params = dict(layout=layout, dims=dims, eps=1e-5, center=center)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(xs) * 3 + 2).astype(dtype)
    w, b = rng.standard_normal(ws).astype(dtype), rng.standard_normal(ws).astype(dtype)
    tol = dict(rtol=2e-4, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    got = nm.normalize_p.impl(x, w, b, **params)
    want = nm._forward(np, *(a.astype(np.float64) for a in (x, w, b)), **params)
    for a, e in zip(got, want, strict=True):
        assert a.dtype == dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, **tol)
    ct = rng.standard_normal(xs).astype(dtype)
    cm, cv = (rng.standard_normal(got[1].shape).astype(dtype) for _ in range(2))
    args = (ct, cm, cv, x, w)
    got = nm.normalize_vjp_p.impl(*args, **params)
    want = nm._backward(np, *(a.astype(np.float64) for a in args), **params)
    for a, e in zip(got, want, strict=True):
        assert a.dtype == dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, **tol)


def test_strided_and_read_only_inputs_share_one_signature():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 6, 3)).transpose(0, 2, 1)  # (4, 3, 6), not contiguous
    w = np.broadcast_to(np.float64(2.0), (3,))  # read-only
    frozen = np.ascontiguousarray(x)
    frozen.flags.writeable = False
    params = dict(layout="channel", dims=(4, 3, 6), eps=1e-5, center=True)
    for x_ in (x, frozen, frozen.copy()):
        y, _, _ = nm.normalize_p.impl(x_, w, np.zeros(3), **params)
        np.testing.assert_allclose(y, _np_norm(x, 2.0, 0.0, (0, 2), 1e-5), rtol=1e-12,
                                   atol=1e-12)
    sigs = nm._kernel("channel_forward", np.dtype("float64"))[0].signatures
    assert sum(str(sig[0].dtype) == "float64" for sig in sigs) == 1  # (one per dtype)


def test_float16_is_computed_in_float32():
    x = np.random.default_rng(2).standard_normal((4, 8)).astype(np.float16)
    y = np.asarray(F.layer_norm(fnx.asarray(x), (8,)))
    assert y.dtype == np.float16
    np.testing.assert_allclose(y, _np_norm(x, 1.0, 0.0, (1,), 1e-5), rtol=1e-2, atol=1e-2)


# --- the layers against their definitions -------------------------------------------------------


def test_long_rows_are_accurate_in_float32():
    """LayerNorm over 200k float32 values of 1000 +- 1 against float64 NumPy: summed as they
    come, the mean's rounding error (large next to the spread) put 3e-3 into the outputs and
    2e-4 into the weight gradient; summed about the row's first element, 1e-4 and 1e-5."""
    rng = np.random.default_rng(7)
    k = 200_000
    x = (1000 + rng.standard_normal((2, k))).astype(np.float32)
    w, b = rng.standard_normal(k).astype(np.float32), rng.standard_normal(k).astype(np.float32)
    params = dict(layout="group", dims=(2, 1, k, 1), eps=1e-5, center=True)
    y, mean, var = nm.normalize_p.impl(x, w, b, **params)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean.ravel(), x64.mean(1), rtol=1e-7)
    np.testing.assert_allclose(var.ravel(), x64.var(1), rtol=1e-5)
    assert np.max(np.abs(y - _np_norm(x64, w, b, (1,), 1e-5))) < 3e-4
    ct = rng.standard_normal((2, k)).astype(np.float32)
    zero = np.zeros(mean.shape, np.float32)
    gx, gw, gb = nm.normalize_vjp_p.impl(ct, zero, zero, x, w, **params)
    want = nm._backward(np, ct.astype(np.float64), zero, zero, x64, w.astype(np.float64),
                        **params)
    for got, ref in zip((gx, gw, gb), want, strict=True):
        assert np.max(np.abs(got - ref)) < 5e-5 * np.max(np.abs(ref))


def test_layers_against_numpy():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 6, 3, 5)) * 2 + 1
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    xa, wa, ba = (fnx.asarray(a) for a in (x, w, b))
    ch = (1, 6, 1, 1)
    np.testing.assert_allclose(F.group_norm(xa, 3, wa, ba).numpy(), _np_norm(
        x.reshape(4, 3, -1), 1, 0, (2,), 1e-5).reshape(x.shape) * w.reshape(ch) + b.reshape(ch),
        rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.instance_norm(xa, weight=wa, bias=ba).numpy(),
                               _np_norm(x, w.reshape(ch), b.reshape(ch), (2, 3), 1e-5),
                               rtol=1e-12, atol=1e-12)
    rm, rv = fnx.zeros(6, dtype=fnx.float64), fnx.ones(6, dtype=fnx.float64)
    out = F.batch_norm(xa, rm, rv, wa, ba, training=True, momentum=0.3)
    np.testing.assert_allclose(out.numpy(), _np_norm(x, w.reshape(ch), b.reshape(ch),
                                                     (0, 2, 3), 1e-5), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rm.numpy(), 0.3 * x.mean((0, 2, 3)), rtol=1e-12)
    np.testing.assert_allclose(rv.numpy(), 0.7 + 0.3 * x.var((0, 2, 3), ddof=1), rtol=1e-12)
    lw, lb = rng.standard_normal((3, 5)), rng.standard_normal((3, 5))
    np.testing.assert_allclose(
        F.layer_norm(xa, (3, 5), fnx.asarray(lw), fnx.asarray(lb)).numpy(),
        _np_norm(x, lw, lb, (2, 3), 1e-5), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(F.rms_norm(xa, (5,), fnx.asarray(lw[0]), eps=1e-6).numpy(),
                               _np_norm(x, lw[0], 0.0, (3,), 1e-6, center=False), rtol=1e-12,
                               atol=1e-12)


def test_mixed_dtypes_promote():
    """Parameters and input meet in their promoted dtype (float32 input, float64 weight)."""
    x = fnx.randn(3, 4)
    out = F.layer_norm(x, (4,), fnx.ones(4, dtype=fnx.float64))
    assert out.dtype == fnx.float64
    np.testing.assert_allclose(out.numpy(), _np_norm(x.numpy(), 1, 0, (1,), 1e-5), rtol=1e-6,
                               atol=1e-6)


def test_empty_batch():
    assert F.layer_norm(fnx.zeros((0, 5)), (5,)).shape == (0, 5)
    g = fnx.grad(lambda x: F.group_norm(x, 2).sum())(fnx.zeros((0, 4, 3)))
    assert g.shape == (0, 4, 3)


@pytest.mark.parametrize("layer, shape", [(nn.BatchNorm2d, (0, 3, 2, 2)),
                                          (nn.BatchNorm2d, (2, 3, 0, 2)),
                                          (nn.InstanceNorm2d, (2, 3, 0, 2))])
def test_empty_input_in_training_leaves_the_statistics(layer, shape):
    # as PyTorch: an empty batch (or spatial size) gives an empty output and keeps the running
    # statistics; only one value per channel is an error (it once raised for none as well)
    m = layer(3, affine=True, track_running_stats=True)
    x = fnx.zeros(shape).requires_grad_()
    out = m(x)
    out.sum().backward()
    assert out.shape == shape and x.grad.shape == shape
    np.testing.assert_array_equal(np.asarray(m.running_mean), np.zeros(3))
    np.testing.assert_array_equal(np.asarray(m.running_var), np.ones(3))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        F.batch_norm(fnx.zeros((1, 3)), None, None, training=True)


# --- derivatives ------------------------------------------------------------------------------------


def _f64(*shape, seed=0):
    return fnx.asarray(np.random.default_rng(seed).standard_normal(shape) * 1.5 + 0.5)


@pytest.mark.parametrize("name", ["batch_norm", "layer_norm", "group_norm", "instance_norm",
                                  "rms_norm", "batch_norm_1d"])
def test_gradients_to_second_order(name):
    x, w, b = _f64(3, 4, 5, seed=1), _f64(4, seed=2), _f64(4, seed=3)
    ones = fnx.numpy.ones(5, dtype=fnx.float64)
    fns = {
        "batch_norm": lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        "batch_norm_1d": lambda x, w, b: F.batch_norm(x[:, :, 0], None, None, w, b,
                                                      training=True),
        "layer_norm": lambda x, w, b: F.layer_norm(x, (4, 5), fnx.numpy.outer(w, ones),
                                                   fnx.numpy.outer(b, ones)),
        "group_norm": lambda x, w, b: F.group_norm(x, 2, w, b),
        "instance_norm": lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
        "rms_norm": lambda x, w, b: F.rms_norm(x, (5,), w[0] * ones) + b[0],
    }
    check_grads(fns[name], (x, w, b), order=2, modes=("fwd", "rev"))


def test_statistics_are_differentiable():
    """The mean and variance outputs have derivatives too (the kernels take their
    cotangents), though the layers only stop their gradients for the running averages."""
    x, w, b = _f64(4, 3, 2, seed=4), _f64(3, seed=5), _f64(3, seed=6)

    def f(x, w, b):
        y, m, v = nm.normalize(x, w, b, layout="channel", dims=(4, 3, 2), eps=1e-5)
        return (y * y).sum() + (m * fnx.numpy.arange(3.0)).sum() + (v * v).sum()

    check_grads(f, (x, w, b), order=2, modes=("fwd", "rev"))


def test_hessian_matches_the_composite():
    x = _f64(2, 5, seed=7)

    def composite(x):
        m = x.mean(axis=1, keepdims=True)
        c = x - m
        return fnx.numpy.tanh(c * fnx.numpy.rsqrt((c * c).mean(axis=1, keepdims=True) + 1e-5))

    h = fnx.hessian(lambda x: fnx.numpy.tanh(F.layer_norm(x, (5,))).sum())(x)
    want = fnx.hessian(lambda x: composite(x).sum())(x)
    np.testing.assert_allclose(h.numpy(), want.numpy(), rtol=1e-9, atol=1e-9)


# --- vmap ------------------------------------------------------------------------------------------


def test_vmap_equals_a_loop():
    x, w = _f64(3, 4, 2, 5, seed=8), _f64(3, 2, seed=9)

    def check(f, *args, in_axes=0):
        got = fnx.vmap(f, in_axes=in_axes)(*args)
        axes = in_axes if isinstance(in_axes, tuple) else (in_axes,) * len(args)
        want = np.stack([f(*[a[i] if ax == 0 else a for a, ax in zip(args, axes)]).numpy()
                         for i in range(3)])
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)

    check(lambda x: F.layer_norm(x, (5,)), x)  # folded into N
    check(lambda x: F.group_norm(x, 2), x)
    check(lambda x, w: F.group_norm(x, 2, w), x, w)  # batched weight: the formula
    check(lambda x: F.batch_norm(x, None, None, training=True), x)  # channel: the formula
    check(lambda x, w: F.layer_norm(x[0], (2, 5), fnx.numpy.outer(w, fnx.numpy.ones(5))),
          x, w)
    # per-example gradients (vmap of the fused backward)
    loss = lambda w, x: (F.group_norm(x[None], 2, w) ** 3).sum()  # noqa: E731
    w4 = _f64(4, seed=10)
    check(lambda x: fnx.grad(loss)(w4, x), x)


# --- jit and compiled steps ---------------------------------------------------------------------


def test_jit_runs_the_kernels_and_a_new_batch_compiles_nothing():
    from fnx.jit import cache

    def loss(x, w, b):
        return (F.layer_norm(x, (16,), w, b) ** 2).sum() + (F.group_norm(x.reshape(
            -1, 4, 4), 2) ** 2).sum()

    vg = fnx.jit(fnx.value_and_grad(loss, argnums=(0, 1, 2)))
    x, w, b = fnx.randn(8, 16), fnx.randn(16), fnx.randn(16)
    kernels = vg.lower(x, w, b).kernels
    assert "eager: normalize\n" in kernels + "\n" and "eager: normalize_vjp" in kernels
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        got = vg(x, w, b)
    want = fnx.value_and_grad(loss, argnums=(0, 1, 2))(x, w, b)
    for a, e in zip(fnx.tree.leaves(got), fnx.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a.numpy(), e.numpy(), rtol=1e-5, atol=1e-5)
    before = cache.STATS["kernels_compiled"]
    vg(fnx.randn(5, 16), w, b)
    assert cache.STATS["kernels_compiled"] == before


def test_compiled_step_equals_eager_with_running_statistics():
    """BatchNorm2d with a cumulative average (momentum=None), BatchNorm1d and LayerNorm in a
    PyTorch-style step: fnx.compile gives the eager step's losses, weights and buffers."""
    def make():
        fnx.manual_seed(0)
        return nn.Sequential(nn.BatchNorm2d(2, momentum=None), nn.Flatten(), nn.Linear(50, 6),
                             nn.BatchNorm1d(6), nn.ReLU(), nn.LayerNorm(6))

    x = fnx.randn(6, 2, 5, 5)
    results = []
    for compiled in (False, True):
        model = make()
        opt = fnx.optim.SGD(model.parameters(), lr=0.1)

        def step():
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        run = fnx.compile(step) if compiled else step
        losses = [float(run()) for _ in range(3)]
        results.append((losses, [b.numpy().copy() for b in model.buffers()],
                        [p.numpy().copy() for p in model.parameters()]))
    (l0, b0, p0), (l1, b1, p1) = results
    # (not bit for bit: the loss's mean sums in another order compiled than NumPy's eagerly)
    np.testing.assert_allclose(l1, l0, rtol=1e-5)
    for a, e in zip(b1 + p1, b0 + p0, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-6)
    assert int(b1[2]) == int(b1[5]) == 3  # num_batches_tracked of both BatchNorms
    np.testing.assert_allclose(b1[0], x.numpy().mean((0, 2, 3)), rtol=1e-5, atol=1e-6)


# --- errors ---------------------------------------------------------------------------------------


def test_shape_errors_name_the_op():
    x = fnx.randn(2, 3, 4)
    with pytest.raises(ShapeError, match=r"normalize: layout 'channel' views x as 3 dims"):
        nm.normalize(x, fnx.ones(3), fnx.zeros(3), layout="channel", dims=(2, 3, 5), eps=1e-5)
    with pytest.raises(ShapeError, match=r"normalize: weight and bias must be float32 with 3"):
        nm.normalize(x, fnx.ones(4), fnx.zeros(4), layout="channel", dims=(2, 3, 4), eps=1e-5)
    with pytest.raises(ShapeError, match=r"group_norm: expected input \(N, C, \*\) with C "):
        F.group_norm(x, 2)
