"""The compiled convolution kernels (fnx/jit/kernels/conv.py) and the three conv primitives they
serve: the Numba im2col/col2im path against the array-module path and a direct loop, over
random geometries (strides, negative and asymmetric padding, both dilations, groups, 1-D and
2-D, float32/float64); the input and weight gradients against finite differences (to second
order), vmap against a loop, jit against eager; conv_transpose through conv_lhs_grad."""

import itertools

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.ops import conv as C
from fnx.testing import check_grads
from test_conv import conv_reference


def _random_geometry(rng, nsp):
    """A valid random convolution: shapes, params (possibly with negative padding, lhs
    dilation, groups) whose output is non-empty."""
    while True:
        g = int(rng.choice([1, 1, 2, 3]))
        n = int(rng.integers(1, 4))
        c, o = g * int(rng.integers(1, 4)), g * int(rng.integers(1, 4))
        sp = tuple(int(v) for v in rng.integers(1, 9, nsp))
        window = tuple(int(v) for v in rng.integers(1, 4, nsp))
        params = dict(
            window_strides=tuple(int(v) for v in rng.integers(1, 4, nsp)),
            padding=tuple((int(lo), int(hi)) for lo, hi in rng.integers(-2, 4, (nsp, 2))),
            lhs_dilation=tuple(int(v) for v in rng.choice([1, 1, 1, 2, 3], nsp)),
            rhs_dilation=tuple(int(v) for v in rng.choice([1, 1, 2], nsp)),
            feature_group_count=g)
        lhs_shape, rhs_shape = (n, c) + sp, (o, c // g) + window
        out = C.conv_output_shape(lhs_shape, rhs_shape, params["window_strides"],
                                  params["padding"], params["lhs_dilation"],
                                  params["rhs_dilation"])
        if all(s > 0 for s in out):
            return lhs_shape, rhs_shape, (n, o) + out, params


def _generic(monkeypatch):
    monkeypatch.setattr(C, "_fast", lambda buf, nsp, lhs_dilation: False)


GEOMETRIES = [_random_geometry(np.random.default_rng(seed), nsp)
              for nsp in (1, 2) for seed in range(12)]
GEOMETRIES += [  # the stride-1 'same' shapes whose rows merge into one run per tap
    ((2, 3, 8, 8), (4, 3, 3, 3), (2, 4, 8, 8), dict(
        window_strides=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1),
        rhs_dilation=(1, 1), feature_group_count=1)),
    ((2, 2, 6, 5), (2, 2, 3, 3), (2, 2, 6, 5), dict(
        window_strides=(1, 1), padding=((2, 0), (0, 2)), lhs_dilation=(1, 1),
        rhs_dilation=(1, 1), feature_group_count=1)),
    ((1, 2, 7, 6), (3, 2, 3, 3), (1, 3, 7, 6), dict(
        window_strides=(1, 1), padding=((2, 2), (2, 2)), lhs_dilation=(1, 1),
        rhs_dilation=(2, 2), feature_group_count=1)),
    ((3, 2, 9), (2, 1, 5), (3, 2, 9), dict(
        window_strides=(1,), padding=((2, 2),), lhs_dilation=(1,), rhs_dilation=(1,),
        feature_group_count=2)),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_kernels_match_generic_path_and_loop(geometry, dtype, monkeypatch):
    lhs_shape, rhs_shape, out_shape, params = geometry
    rng = np.random.default_rng(0)
    x, w, ct = (rng.standard_normal(s).astype(dtype) for s in (lhs_shape, rhs_shape, out_shape))
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == "float32" else dict(rtol=1e-11, atol=1e-11)
    fast = [C._conv_impl(x, w, **params),
            C._conv_lhs_grad_impl(ct, w, lhs_shape=lhs_shape[2:], **params),
            C._conv_rhs_grad_impl(x, ct, rhs_shape=rhs_shape[2:], **params)]
    _generic(monkeypatch)
    generic = [C._conv_impl(x, w, **params),
               C._conv_lhs_grad_impl(ct, w, lhs_shape=lhs_shape[2:], **params),
               C._conv_rhs_grad_impl(x, ct, rhs_shape=rhs_shape[2:], **params)]
    for a, b, shape in zip(fast, generic, (out_shape, lhs_shape, rhs_shape), strict=True):
        assert a.shape == shape and a.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, b, **tol)
    ref = conv_reference(x.astype(np.float64), w.astype(np.float64), params["window_strides"],
                         params["padding"], params["lhs_dilation"], params["rhs_dilation"],
                         params["feature_group_count"])
    np.testing.assert_allclose(fast[0], ref, **tol)
    # the gradients are the adjoints of the forward map: <ct, conv(x, w)> = <dx, x> = <dw, w>
    inner = np.vdot(ct.astype(np.float64), ref)
    np.testing.assert_allclose(np.vdot(fast[1].astype(np.float64), x), inner, **tol)
    np.testing.assert_allclose(np.vdot(fast[2].astype(np.float64), w), inner, **tol)


def test_kernels_loop_over_images_and_groups(monkeypatch):
    # one compiled call walks every image and group, reusing one image's column buffer
    lhs_shape, rhs_shape = (5, 4, 4, 4), (6, 2, 3, 3)
    params = dict(window_strides=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1),
                  rhs_dilation=(1, 1), feature_group_count=2)
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(lhs_shape), rng.standard_normal(rhs_shape)
    ct = rng.standard_normal((5, 6, 4, 4))
    fast = [C._conv_impl(x, w, **params),
            C._conv_lhs_grad_impl(ct, w, lhs_shape=(4, 4), **params),
            C._conv_rhs_grad_impl(x, ct, rhs_shape=(3, 3), **params)]
    _generic(monkeypatch)
    generic = [C._conv_impl(x, w, **params),
               C._conv_lhs_grad_impl(ct, w, lhs_shape=(4, 4), **params),
               C._conv_rhs_grad_impl(x, ct, rhs_shape=(3, 3), **params)]
    for a, b in zip(fast, generic, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_kernel_zeroes_every_column_entry():
    # im2col must write every entry (the scratch is reused across images and calls); after a
    # forward call the scratch holds the last image's columns
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    cols = np.full(9 * 9, np.nan, np.float32)
    C._kernel(np.dtype("float32"))(0, 1, 1, 1, 1, 3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 3, 3,
                                   C._read_only(x).reshape(-1), C._read_only(w).reshape(-1),
                                   cols, C._read_only(cols), np.empty(9, np.float32))
    cols = cols.reshape(9, 9)
    assert not np.isnan(cols).any()
    # 'same' padding: the centre tap sees every input, a corner tap a 2x2 block, an edge 2x3
    np.testing.assert_array_equal(cols.sum(1), [4, 6, 4, 6, 9, 6, 4, 6, 4])


def _bind(prim, **params):
    return lambda a, b: prim.bind(a, b, **params)


GRAD_CASES = [GEOMETRIES[i] for i in (0, 5, 13, 17, len(GEOMETRIES) - 4)]


@pytest.mark.parametrize("geometry", GRAD_CASES)
def test_gradient_primitives_second_order(geometry):
    lhs_shape, rhs_shape, out_shape, params = geometry
    rng = np.random.default_rng(2)
    x, w, ct = (fnp.asarray(rng.standard_normal(s)) for s in (lhs_shape, rhs_shape, out_shape))
    check_grads(_bind(C.conv_lhs_grad_p, lhs_shape=lhs_shape[2:], **params), (ct, w), order=2)
    check_grads(_bind(C.conv_rhs_grad_p, rhs_shape=rhs_shape[2:], **params), (x, ct), order=2)


def test_hessian_of_conv_loss_matches_finite_differences():
    rng = np.random.default_rng(3)
    x = fnp.asarray(rng.standard_normal((2, 2, 5, 5)))
    w = fnp.asarray(rng.standard_normal((3, 2, 3, 3)))

    def loss(w):
        return fnp.sum(fnp.tanh(C.conv_general_dilated(x, w, (2, 1), ((1, 0), (1, 1)))) ** 2)

    hess = fnx.hessian(loss)(w).numpy().reshape(w.size, w.size)
    grad = fnx.grad(loss)
    eps = 1e-5
    basis = np.eye(w.size).reshape((w.size,) + w.shape)
    fd = np.stack([(grad(w + eps * e).numpy() - grad(w - eps * e).numpy()).ravel() / (2 * eps)
                   for e in basis])
    np.testing.assert_allclose(hess, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("prim", ["lhs", "rhs"])
@pytest.mark.parametrize("in_axes", list(itertools.product([None, 0, 1], repeat=2))[1:])
def test_gradient_primitives_vmap_matches_loop(prim, in_axes):
    lhs_shape, rhs_shape, out_shape, params = GEOMETRIES[17]
    if prim == "lhs":
        f = _bind(C.conv_lhs_grad_p, lhs_shape=lhs_shape[2:], **params)
        shapes = (out_shape, rhs_shape)
    else:
        f = _bind(C.conv_rhs_grad_p, rhs_shape=rhs_shape[2:], **params)
        shapes = (lhs_shape, out_shape)
    rng = np.random.default_rng(4)
    b = 3
    args = []
    for shape, ax in zip(shapes, in_axes, strict=True):
        full = list(shape)
        if ax is not None:
            full.insert(ax, b)
        args.append(rng.standard_normal(full))
    out = fnx.vmap(f, in_axes=in_axes)(*[fnp.asarray(a) for a in args])
    loop = [f(*[fnp.asarray(a if ax is None else np.take(a, i, axis=ax))
                for a, ax in zip(args, in_axes, strict=True)]).numpy() for i in range(b)]
    np.testing.assert_allclose(out.numpy(), np.stack(loop), rtol=1e-12, atol=1e-12)


def test_jit_matches_eager_and_new_batch_compiles_nothing():
    from fnx.jit import cache

    rng = np.random.default_rng(5)
    w = fnp.asarray(rng.standard_normal((8, 3, 3, 3)).astype(np.float32))

    def loss(x, w):
        return fnp.sum(fnx.nn.functional.relu(C.conv_general_dilated(
            x, w, (1, 1), ((1, 1), (1, 1)))) ** 2)

    step = fnx.jit(fnx.value_and_grad(loss, argnums=(0, 1)))
    x = fnp.asarray(rng.standard_normal((4, 3, 6, 6)).astype(np.float32))
    got = step(x, w)
    want = fnx.value_and_grad(loss, argnums=(0, 1))(x, w)
    for a, b in zip(fnx.tree.leaves(got), fnx.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-4)
    before = cache.STATS["kernels_compiled"]
    step(fnp.asarray(rng.standard_normal((7, 3, 6, 6)).astype(np.float32)), w)
    assert cache.STATS["kernels_compiled"] == before


def test_conv_transpose_is_the_input_gradient():
    # F.conv_transpose2d binds conv_lhs_grad: no zero-dilated input, the adjoint of conv2d
    F = fnx.nn.functional
    rng = np.random.default_rng(6)
    x = fnp.asarray(rng.standard_normal((2, 4, 5, 4)))
    w = fnp.asarray(rng.standard_normal((4, 3, 3, 2)))
    out = F.conv_transpose2d(x, w, stride=(2, 3), padding=(1, 0), output_padding=(1, 2),
                             groups=2, dilation=(1, 2))
    prims = {e.primitive.name for e in fnx.make_ir(
        lambda x, w: F.conv_transpose2d(x, w, stride=2, groups=2))(x, w).program.eqns}
    assert "conv_lhs_grad" in prims and "conv_general_dilated" not in prims
    y = fnp.asarray(rng.standard_normal(out.shape))
    fwd = F.conv2d(y, w, stride=(2, 3), padding=(1, 0), groups=2, dilation=(1, 2))
    np.testing.assert_allclose(np.vdot(out.numpy(), y.numpy()),
                               np.vdot(x.numpy(), fwd.numpy()[:, :, :5, :4]), rtol=1e-10)


def test_one_kernel_signature_for_read_only_and_writeable_buffers():
    # fnx arrays' buffers are read-only, intermediate ones writeable: both take the one
    # compiled signature (the kernel reads its input through a read-only view)
    params = dict(window_strides=(1, 1), padding=((1, 1), (1, 1)), lhs_dilation=(1, 1),
                  rhs_dilation=(1, 1), feature_group_count=1)
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    ct = rng.standard_normal((2, 4, 5, 5))
    frozen = [a.copy() for a in (x, ct)]
    for a in frozen:
        a.flags.writeable = False
    for x_, ct_ in ((x, ct), tuple(frozen)):
        C._conv_impl(x_, w, **params)
        C._conv_lhs_grad_impl(ct_, w, lhs_shape=(5, 5), **params)
        C._conv_rhs_grad_impl(x_, ct_, rhs_shape=(3, 3), **params)
    sigs = [sig for sig in C._kernel(np.dtype("float64")).signatures
            if str(sig[-1].dtype) == "float64"]
    assert len(sigs) == 1
    # the images / cotangent / weight it reads, and the read-only view of its column scratch
    assert [not t.mutable for t in sigs[0][17:]] == [True, True, False, True, False]
