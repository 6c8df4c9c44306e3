"""The pooling primitives (fnx/core/ops/pooling.py): the Numba kernels against the
array-module path and a loop reference over random geometries, PyTorch's index semantics (ties,
NaN, -inf, padding), derivatives to second order, vmap vs a loop, jit vs eager with no new
compile for a new batch, and backward programs that are one scatter-add / spread-back."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.errors import DTypeError, ShapeError
from fnx.core.ops import pooling as P
from fnx.testing import check_grads
from op_db import _pool_ref

F = fnx.nn.functional


def _random_geometry(rng, nsp, kind):
    """Fixed windows (padding within PyTorch's half-window bound, dilation for max only,
    ceil mode) or adaptive output sizes (smaller and larger than the input)."""
    if rng.random() < 0.3:
        size = tuple(int(rng.integers(1, 8)) for _ in range(nsp))
        return dict(output_size=size), tuple(int(rng.integers(1, 9)) for _ in range(nsp))
    window = tuple(int(rng.integers(1, 4)) for _ in range(nsp))
    dilation = tuple(int(rng.integers(1, 3)) for _ in range(nsp)) if kind == "max" else None
    eff = [(d or 1) * (k - 1) + 1 for k, d in zip(window, dilation or (1,) * nsp)]
    padding = tuple(int(rng.integers(0, e // 2 + 1)) for e in eff)
    strides = tuple(int(rng.integers(1, 4)) for _ in range(nsp))
    spatial = tuple(int(rng.integers(e, e + 6)) for e in eff)
    geo = dict(window=window, strides=strides, padding=padding, ceil_mode=bool(rng.random() < 0.5))
    if kind == "max":
        geo["dilation"] = dilation
    else:
        geo["count_include_pad"] = bool(rng.random() < 0.5)
        if nsp == 2 and rng.random() < 0.3:
            geo["divisor_override"] = int(rng.integers(1, 5))
    return geo, spatial


def _call(kind, x, geo):
    full = {"window": None, "strides": None, "padding": None, **geo}
    return P.max_pool(x, **full) if kind == "max" else P.avg_pool(x, **full)


@pytest.fixture
def generic(monkeypatch):
    """Run the impls' array-module path (CuPy's) on NumPy buffers."""
    monkeypatch.setattr(P, "_fast", lambda x: False)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("nsp", [1, 2])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_match_generic_path_and_loop(kind, nsp, dtype, monkeypatch):
    rng = np.random.default_rng(nsp * 10 + (kind == "max"))
    for _ in range(12):
        geo, spatial = _random_geometry(rng, nsp, kind)
        x = rng.standard_normal((2, 3) + spatial).astype(dtype)
        x[0, 0].reshape(-1)[1::3] = x[0, 0].reshape(-1)[0]  # ties
        want = _pool_ref(x, kind, **geo)
        fast = _call(kind, fnp.asarray(x), geo)
        with monkeypatch.context() as m:
            m.setattr(P, "_fast", lambda x: False)
            slow = _call(kind, fnp.asarray(x), geo)
        tol = 1e-5 if dtype == np.float32 else 1e-12
        for got in (fast, slow):
            for g, w in zip(fnx.tree.leaves(got), (want if kind == "max" else [want])):
                assert g.dtype == w.dtype, geo
                np.testing.assert_allclose(g.numpy(), w, rtol=tol, atol=tol, err_msg=str(geo))


@pytest.mark.parametrize("path", ["kernel", "generic"])
def test_max_pool_index_semantics(path, request):
    if path == "generic":
        request.getfixturevalue("generic")
    nan, inf = np.nan, np.inf
    x = np.array([[[2.0, 5.0, 5.0, 1.0, nan, 3.0, nan, -inf, -inf, -inf, -inf, 0.0]]])
    out, idx = F.max_pool1d(fnp.asarray(x), 2, return_indices=True)
    # a tie keeps the first, the last NaN of a window wins, a window of -inf points at its
    # first element
    np.testing.assert_array_equal(idx.numpy(), [[[1, 2, 4, 6, 8, 11]]])
    np.testing.assert_array_equal(out.numpy(), [[[5.0, 5.0, nan, nan, -inf, 0.0]]])
    # padding is never chosen: a window of -inf values reaching into the padding points at
    # its first in-bounds element
    out, idx = F.max_pool2d(fnx.full((1, 1, 3, 3), -np.inf, dtype=fnx.float64), 3, 2, padding=1,
                            return_indices=True)
    np.testing.assert_array_equal(idx.numpy(), [[[[0, 1], [3, 4]]]])
    nan_first = np.array([[[[nan, 1.0], [nan, 7.0]]]])
    assert F.max_pool2d(fnp.asarray(nan_first), 2, return_indices=True)[1].item() == 2


@pytest.mark.parametrize("path", ["kernel", "generic"])
def test_max_pool_window_wholly_in_padding_gets_no_gradient(path, request):
    # Dilation can step a window over a small input. Derived by hand: L = 2, kernel 2,
    # dilation 3, padding 2 (at most half the dilated window) gives windows at -2, -1, 0
    # reading positions {-2, 1} -> {1}, {-1, 2} -> {} and {0, 3} -> {0}. The empty one is
    # -inf at PyTorch's index (its first position past the low padding: 2, outside the plane)
    # and its cotangent reaches no input; before, its index was clipped to 1 and the cotangent
    # was added to x[..., 1].
    if path == "generic":
        request.getfixturevalue("generic")
    x = fnp.asarray([[[1.0, 4.0], [3.0, 2.0]]], dtype=fnp.float64)  # (N, C, L) = (1, 2, 2)
    ct = fnp.asarray([[[10.0, 20.0, 30.0], [40.0, 50.0, 60.0]]], dtype=fnp.float64)

    def pool(v):
        return F.max_pool1d(v, 2, 1, padding=2, dilation=3)

    out, idx = F.max_pool1d(x, 2, 1, padding=2, dilation=3, return_indices=True)
    assert out.tolist() == [[[4.0, -np.inf, 1.0], [2.0, -np.inf, 3.0]]]
    assert idx.tolist() == [[[1, 2, 0], [1, 2, 0]]]
    want = [[[30.0, 10.0], [60.0, 40.0]]]
    assert fnx.vjp(pool, x)[1](ct)[0].tolist() == want
    assert fnx.jit(lambda v: fnx.vjp(pool, v)[1](ct)[0])(x).tolist() == want
    leaf = x.clone().requires_grad_()
    pool(leaf).backward(ct)  # the eager tape
    assert leaf.grad.tolist() == want
    # forward mode: the empty window's tangent is 0
    assert fnx.jvp(pool, (x,), (fnp.ones_like(x),))[1].tolist() == [[[1.0, 0.0, 1.0]] * 2]
    # second order: d/dct of the pullback is the gather, 0 at the empty window
    assert fnx.vjp(lambda c: fnx.vjp(pool, x)[1](c)[0], ct)[1](fnp.ones_like(x))[0].tolist() \
        == [[[1.0, 0.0, 1.0]] * 2]
    ints = F.max_pool1d(fnp.asarray([[[1, 4]]], dtype=fnp.int32), 2, 1, padding=2, dilation=3,
                        return_indices=True)
    assert [t.tolist() for t in ints] == [[[[4, np.iinfo(np.int32).min, 1]]], [[[1, 2, 0]]]]
    # 2-D, the columns of the middle window wholly padding: PyTorch's index would be
    # h * W + w = 0 * 2 + 2, the next row's first element; fnx's is the plane size, 4
    x2 = fnp.asarray([[[[1.0, 4.0], [3.0, 2.0]]]], dtype=fnp.float64)

    def pool2(v):
        return F.max_pool2d(v, 2, 1, padding=(0, 2), dilation=(1, 3))

    out, idx = F.max_pool2d(x2, 2, 1, padding=(0, 2), dilation=(1, 3), return_indices=True)
    assert out.tolist() == [[[[4.0, -np.inf, 3.0]]]] and idx.tolist() == [[[[1, 4, 2]]]]
    ct2 = fnp.asarray([[[[10.0, 20.0, 30.0]]]], dtype=fnp.float64)
    assert fnx.vjp(pool2, x2)[1](ct2)[0].tolist() == [[[[0.0, 10.0], [30.0, 0.0]]]]


@pytest.mark.parametrize("path", ["kernel", "generic"])
def test_index_primitives_ignore_indices_outside_the_plane(path, request):
    if path == "generic":  # the array-module path agrees with the kernels' bounds checks
        request.getfixturevalue("generic")
    t = fnp.asarray([[1.0, 2.0, 3.0]], dtype=fnp.float64)
    idx = fnp.asarray([[2, 3, 7, 0]], dtype=fnp.int64)
    assert P.pool_gather_p.bind(t, idx, nsp=1).tolist() == [[3.0, 0.0, 0.0, 1.0]]
    ct = fnp.asarray([[1.0, 10.0, 100.0, 1000.0]], dtype=fnp.float64)
    assert P.pool_scatter_add_p.bind(ct, idx, in_spatial=(3,)).tolist() == [[1000.0, 0.0, 1.0]]


def test_integer_max_pool_and_average_of_integers():
    x = np.arange(24, dtype=np.int32).reshape(1, 2, 3, 4)[..., ::-1].copy()
    out, idx = F.max_pool2d(fnp.asarray(x), 2, return_indices=True)
    want, want_idx = _pool_ref(x, "max", window=(2, 2), strides=(2, 2), padding=(0, 0))
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.numpy(), want)
    np.testing.assert_array_equal(idx.numpy(), want_idx)
    avg = F.avg_pool2d(fnp.asarray(x), 2)
    assert avg.dtype == np.float32
    np.testing.assert_allclose(avg.numpy(), _pool_ref(x.astype(np.float32), "avg",
                                                      window=(2, 2), strides=(2, 2),
                                                      padding=(0, 0)))


GRAD_CASES = [
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1, dilation=(1, 2), ceil_mode=True)),
    ("max_pool1d", lambda x: F.max_pool1d(x[0], 2)),
    ("adaptive_max", lambda x: F.adaptive_max_pool2d(x, (4, 2))),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, (3, 2), (2, 1), 1, ceil_mode=True,
                                          count_include_pad=False)),
    ("avg_divisor", lambda x: F.avg_pool2d(x, 2, 1, divisor_override=3)),
    ("adaptive_avg", lambda x: F.adaptive_avg_pool2d(x, (4, 3))),
]


@pytest.mark.parametrize("name,fn", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_to_second_order(name, fn):
    del name  # unused
    x = np.random.default_rng(0).standard_normal((2, 2, 5, 6))
    # the output times a fixed random weight, squared: a nonzero second derivative
    w = np.random.default_rng(1).standard_normal(fn(fnp.asarray(x)).shape)
    check_grads(lambda v: fnp.sum((fn(v) * fnp.asarray(w)) ** 2), (fnp.asarray(x),), order=2)
    check_grads(fn, (fnp.asarray(x),), order=2)


def test_hessian_of_a_max_pool_loss():
    x = fnp.asarray(np.random.default_rng(2).standard_normal((1, 1, 4, 4)))

    def loss(v):
        return fnp.sum(F.max_pool2d(v, 2) ** 3)

    hess = fnx.hessian(loss)(x).numpy().reshape(16, 16)
    _, idx = F.max_pool2d(x, 2, return_indices=True)
    want = np.zeros((16, 16))
    for i in idx.numpy().reshape(-1):  # d2/dx_i2 of x_i**3 at each window's maximum
        want[i, i] = 6 * x.numpy().reshape(-1)[i]
    np.testing.assert_allclose(hess, want, atol=1e-12)


VMAP_CASES = [
    ("max_values", lambda x: F.max_pool2d(x, 2, 1, 1)),
    ("max_indices", lambda x: F.max_pool2d(x, 3, 2, 1, return_indices=True)[1]),
    ("avg", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)),
    ("adaptive_avg_grad", fnx.grad(lambda x: fnp.sum(F.adaptive_avg_pool2d(x, 3) ** 2))),
    ("max_grad", fnx.grad(lambda x: fnp.sum(F.max_pool2d(x, 2, 1) ** 2))),
]


@pytest.mark.parametrize("name,fn", VMAP_CASES, ids=[c[0] for c in VMAP_CASES])
@pytest.mark.parametrize("axis", [0, 2, -1])
def test_vmap_matches_loop(name, fn, axis):
    del name  # unused
    xs = np.random.default_rng(3).standard_normal((3, 2, 2, 5, 6))
    got = fnx.vmap(fn, in_axes=axis)(fnp.asarray(np.moveaxis(xs, 0, axis)))
    want = np.stack([fn(fnp.asarray(x)).numpy() for x in xs])
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (1, 0)])
@pytest.mark.parametrize("prim", ["gather", "scatter"])
def test_index_primitives_vmap_with_batched_indices(prim, in_axes):
    rng = np.random.default_rng(4)
    b = 3
    shapes = {"gather": ((2, 6), (2, 4)), "scatter": ((2, 4), (2, 4))}[prim]
    vals = [rng.standard_normal(shapes[0]) for _ in range(b)]
    idxs = [rng.integers(0, 6, shapes[1]) for _ in range(b)]

    def op(v, i):
        if prim == "gather":
            return P.pool_gather_p.bind(v, i, nsp=1)
        return P.pool_scatter_add_p.bind(v, i, in_spatial=(6,))

    def arg(items, ax):
        return fnp.asarray(items[0] if ax is None else np.moveaxis(np.stack(items), 0, ax))

    got = fnx.vmap(op, in_axes=in_axes)(arg(vals, in_axes[0]), arg(idxs, in_axes[1]))
    want = [op(fnp.asarray(vals[0 if in_axes[0] is None else j]),
               fnp.asarray(idxs[0 if in_axes[1] is None else j])).numpy() for j in range(b)]
    np.testing.assert_allclose(got.numpy(), np.stack(want), rtol=1e-12)


def _primitives(fn, *args):
    return {e.primitive.name for e in fnx.make_ir(fn)(*args).program.eqns}


def test_backward_is_one_scatter_or_spread_back():
    x = fnp.asarray(np.random.default_rng(5).standard_normal((2, 3, 8, 8)).astype(np.float32))
    names = _primitives(fnx.grad(lambda v: fnp.sum(F.max_pool2d(v, 2))), x)
    assert {"max_pool", "pool_scatter_add"} <= names
    assert not names & {"pad", "select_n", "slice", "gather", "scatter_add"}, names
    names = _primitives(fnx.grad(lambda v: fnp.sum(F.avg_pool2d(v, 3, 2, 1))), x)
    assert "avg_pool_transpose" in names and not names & {"pad", "slice"}, names


def test_jit_matches_eager_and_new_batch_compiles_nothing():
    from fnx.jit import cache

    rng = np.random.default_rng(6)

    def loss(x):
        y = F.max_pool2d(F.relu(x), 2) + F.avg_pool2d(x, 2)
        return fnp.sum(F.adaptive_avg_pool2d(y, 3) ** 2)

    step = fnx.jit(fnx.value_and_grad(loss))
    x = fnp.asarray(rng.standard_normal((4, 3, 8, 8)).astype(np.float32))
    got, want = step(x), fnx.value_and_grad(loss)(x)
    for a, b in zip(fnx.tree.leaves(got), fnx.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    before = cache.STATS["kernels_compiled"]
    step(fnp.asarray(rng.standard_normal((7, 3, 8, 8)).astype(np.float32)))
    assert cache.STATS["kernels_compiled"] == before


def test_interpolate_area_of_5d_input_is_adaptive_average():
    x = np.random.default_rng(7).standard_normal((1, 2, 5, 4, 6))
    got = F.interpolate(fnp.asarray(x), size=(3, 4, 2), mode="area")
    np.testing.assert_allclose(got.numpy(), _pool_ref(x, "avg", output_size=(3, 4, 2)),
                               rtol=1e-12)


@pytest.mark.parametrize("call,error,match", [
    (lambda: P.max_pool(fnx.ones(2, 4), (2,), (2,), (0,), output_size=(2,)), ValueError,
     r"max_pool: give either window"),
    (lambda: P.avg_pool(fnx.ones(4, dtype=fnx.int32), (2,), (2,), (0,)), DTypeError,
     r"avg_pool: dtype int32 is not supported"),
    (lambda: P.pool_gather_p.bind(fnx.ones(2, 4), fnx.zeros(3, 2, dtype=fnx.int64), nsp=1),
     ShapeError, r"pool_gather: values \(2, 4\) and indices \(3, 2\)"),
    (lambda: F.avg_pool2d(fnx.ones(1, 1, 4, 4), 2, divisor_override=0), ValueError,
     r"avg_pool2d: divisor_override must be non-zero"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
