"""conv_general_dilated_p: impl vs a direct NumPy loop, shape errors, transposes (inner-product
identity), gradients by finite differences and vmap vs a Python loop."""

import itertools

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.testing import check_grads
from fnx.core.ad_util import UndefinedPrimal
from fnx.core.abstract import ShapedArray
from fnx.core.errors import DTypeError, ShapeError
from fnx.core.ops.conv import conv_general_dilated, conv_general_dilated_p


def conv_reference(lhs, rhs, strides, padding, lhs_dil, rhs_dil, groups):
    """Direct loop over output positions (no im2col)."""
    n, c = lhs.shape[:2]
    o, cg = rhs.shape[:2]
    nsp = lhs.ndim - 2
    # lhs dilation then padding (negative crops)
    dil_shape = tuple((s - 1) * d + 1 if s else 0 for s, d in zip(lhs.shape[2:], lhs_dil))
    x = np.zeros((n, c) + dil_shape, lhs.dtype)
    x[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dil)] = lhs
    for ax, (lo, hi) in enumerate(padding):
        ax += 2
        if lo < 0:
            x = np.take(x, range(-lo, x.shape[ax]), axis=ax)
        if hi < 0:
            x = np.take(x, range(0, x.shape[ax] + hi), axis=ax)
        widths = [(0, 0)] * x.ndim
        widths[ax] = (max(lo, 0), max(hi, 0))
        x = np.pad(x, widths)
    k = rhs.shape[2:]
    kd = tuple((s - 1) * d + 1 for s, d in zip(k, rhs_dil))
    out_sp = tuple(max((x.shape[2 + i] - kd[i]) // strides[i] + 1, 0) for i in range(nsp))
    out = np.zeros((n, o) + out_sp, lhs.dtype)
    og = o // groups
    for pos in itertools.product(*[range(s) for s in out_sp]):
        window = tuple(slice(p * s, p * s + kdd, d) for p, s, kdd, d in
                       zip(pos, strides, kd, rhs_dil))
        patch = x[(slice(None), slice(None)) + window]  # (N, C, *k)
        for g in range(groups):
            pg = patch[:, g * cg:(g + 1) * cg]
            wg = rhs[g * og:(g + 1) * og]
            out[(slice(None), slice(g * og, (g + 1) * og)) + pos] = np.tensordot(
                pg, wg, axes=(list(range(1, 2 + nsp)), list(range(1, 2 + nsp))))
    return out


CASES = [
    # (lhs shape, rhs shape, strides, padding, lhs_dil, rhs_dil, groups)
    ((2, 3, 7), (4, 3, 3), (1,), ((0, 0),), (1,), (1,), 1),
    ((2, 4, 9), (6, 2, 2), (2,), ((1, 2),), (1,), (2,), 2),
    ((1, 2, 5), (3, 2, 3), (1,), ((-1, 2),), (2,), (1,), 1),
    ((2, 3, 6, 5), (4, 3, 3, 2), (1, 2), ((1, 1), (0, 1)), (1, 1), (1, 1), 1),
    ((1, 4, 5, 6), (4, 1, 3, 3), (2, 1), ((1, 1), (1, 1)), (1, 1), (1, 2), 4),
    ((2, 2, 4, 4), (3, 2, 2, 2), (1, 1), ((1, 1), (0, 0)), (2, 1), (1, 1), 1),
    ((1, 2, 4, 3, 5), (2, 2, 2, 2, 3), (1, 1, 2), ((0, 1), (1, 0), (1, 1)), (1, 1, 1),
     (1, 1, 1), 1),
    ((1, 2, 3, 3, 3), (2, 1, 2, 1, 2), (2, 1, 1), ((0, 0),) * 3, (1, 2, 1), (1, 1, 2), 2),
]


def _run(lhs, rhs, case):
    _, _, strides, padding, lhs_dil, rhs_dil, groups = case
    return conv_general_dilated(lhs, rhs, strides, padding, lhs_dil, rhs_dil, groups)


@pytest.mark.parametrize("case", CASES)
def test_conv_matches_loop_reference(case, rng):
    lhs = rng.standard_normal(case[0])
    rhs = rng.standard_normal(case[1])
    out = _run(fnp.asarray(lhs), fnp.asarray(rhs), case)
    ref = conv_reference(lhs, rhs, *case[2:])
    assert out.shape == ref.shape
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "int64", "complex64"])
def test_conv_dtypes(dtype, rng):
    lhs = (rng.standard_normal((2, 3, 6)) * 3).astype(dtype)
    rhs = (rng.standard_normal((2, 3, 3)) * 3).astype(dtype)
    out = conv_general_dilated(fnp.asarray(lhs), fnp.asarray(rhs), (1,), ((1, 1),))
    assert out.dtype == np.dtype(dtype)
    ref = conv_reference(lhs, rhs, (1,), ((1, 1),), (1,), (1,), 1)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-4)


def test_conv_empty_and_window_larger_than_input():
    out = conv_general_dilated(fnp.zeros((0, 2, 5)), fnp.zeros((3, 2, 2)), (1,), ((0, 0),))
    assert out.shape == (0, 3, 4)
    out = conv_general_dilated(fnp.ones((1, 2, 2)), fnp.ones((3, 2, 4)), (1,), ((0, 0),))
    assert out.shape == (1, 3, 0)


def test_functional_conv_with_a_kernel_larger_than_the_input_is_an_error():
    # as PyTorch: F.conv* raise rather than hand back an empty output (the lax op above keeps
    # JAX's empty result); padding and dilation count, and 'same' always fits
    import fnx.nn.functional as F

    with pytest.raises(ShapeError, match=r"conv2d: the padded input size \(2, 2\) is smaller "
                                         r"than the dilated kernel size \(3, 3\)"):
        F.conv2d(fnx.ones(1, 1, 2, 2), fnx.ones(1, 1, 3, 3))
    with pytest.raises(ShapeError, match=r"conv1d: the padded input size \(4,\) is smaller "
                                         r"than the dilated kernel size \(5,\)"):
        F.conv1d(fnx.ones(1, 1, 4), fnx.ones(1, 1, 3), dilation=2)
    assert F.conv1d(fnx.ones(1, 1, 3), fnx.ones(1, 1, 3), padding=1).shape == (1, 1, 3)
    assert F.conv2d(fnx.ones(1, 1, 1, 1), fnx.ones(1, 1, 4, 4), padding="same").shape == \
        (1, 1, 1, 1)


def test_conv_errors():
    with pytest.raises(ShapeError, match="feature_group_count=2"):
        conv_general_dilated(fnp.ones((1, 3, 5)), fnp.ones((4, 2, 3)), (1,), ((0, 0),),
                             feature_group_count=2)
    with pytest.raises(ShapeError, match="one entry per spatial dim"):
        conv_general_dilated_p.bind(fnp.ones((1, 3, 5)), fnp.ones((4, 3, 3)),
                                    window_strides=(1, 1), padding=((0, 0),),
                                    lhs_dilation=(1,), rhs_dilation=(1,), feature_group_count=1)
    with pytest.raises(DTypeError, match="float32 != rhs dtype float64"):
        conv_general_dilated(fnp.ones((1, 3, 5)), fnp.ones((4, 3, 3), dtype="float64"), (1,),
                             ((0, 0),))
    with pytest.raises(ShapeError, match="rank >= 3"):
        conv_general_dilated(fnp.ones((3, 5)), fnp.ones((4, 3)), (), ())


@pytest.mark.parametrize("case", CASES)
def test_conv_transpose_inner_product_identity(case, rng):
    lhs = fnp.asarray(rng.standard_normal(case[0]))
    rhs = fnp.asarray(rng.standard_normal(case[1]))
    params = dict(window_strides=case[2], padding=case[3], lhs_dilation=case[4],
                  rhs_dilation=case[5], feature_group_count=case[6])
    out = conv_general_dilated_p.bind(lhs, rhs, **params)
    ct = fnp.asarray(rng.standard_normal(out.shape))
    t_lhs = fnp.asarray(rng.standard_normal(case[0]))
    t_rhs = fnp.asarray(rng.standard_normal(case[1]))
    # w.r.t. lhs: <ct, conv(t, rhs)> == <conv^T(ct), t>
    ct_lhs, none = conv_general_dilated_p.transpose(
        ct, UndefinedPrimal(ShapedArray(case[0], np.float64)), rhs, **params)
    assert none is None and ct_lhs.shape == case[0]
    lhs_side = np.vdot(ct.numpy(), conv_general_dilated_p.bind(t_lhs, rhs, **params).numpy())
    np.testing.assert_allclose(lhs_side, np.vdot(ct_lhs.numpy(), t_lhs.numpy()), rtol=1e-9)
    none, ct_rhs = conv_general_dilated_p.transpose(
        ct, lhs, UndefinedPrimal(ShapedArray(case[1], np.float64)), **params)
    assert none is None and ct_rhs.shape == case[1]
    rhs_side = np.vdot(ct.numpy(), conv_general_dilated_p.bind(lhs, t_rhs, **params).numpy())
    np.testing.assert_allclose(rhs_side, np.vdot(ct_rhs.numpy(), t_rhs.numpy()), rtol=1e-9)


@pytest.mark.parametrize("case", [CASES[1], CASES[3], CASES[4]])
def test_conv_grads_finite_differences(case, rng):
    lhs = fnp.asarray(rng.standard_normal(case[0]))
    rhs = fnp.asarray(rng.standard_normal(case[1]))
    check_grads(lambda a, b: _run(a, b, case), (lhs, rhs), order=1)


def test_conv_grad_of_sum_matches_reference(rng):
    # d/dw sum(conv(x, w)) = sum over positions of the input patches
    x = rng.standard_normal((2, 3, 6))
    w = rng.standard_normal((1, 3, 2))
    g = fnx.grad(lambda w: fnp.sum(conv_general_dilated(fnp.asarray(x), w, (1,), ((0, 0),))))(
        fnp.asarray(w))
    expected = np.stack([x[:, :, k:k + 5].sum(axis=(0, 2)) for k in range(2)], axis=-1)[None]
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-10)


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (1, 2)])
@pytest.mark.parametrize("case", [CASES[1], CASES[4]])
def test_conv_vmap_matches_loop(case, in_axes, rng):
    b = 3
    shapes = [case[0], case[1]]
    args = []
    for shape, ax in zip(shapes, in_axes):
        if ax is None:
            args.append(rng.standard_normal(shape))
        else:
            full = list(shape)
            full.insert(ax, b)
            args.append(rng.standard_normal(full))
    out = fnx.vmap(lambda a, w: _run(a, w, case), in_axes=in_axes)(
        *[fnp.asarray(a) for a in args])
    loop = []
    for i in range(b):
        a = [x if ax is None else np.take(x, i, axis=ax) for x, ax in zip(args, in_axes)]
        loop.append(conv_reference(a[0], a[1], *case[2:]))
    np.testing.assert_allclose(out.numpy(), np.stack(loop), rtol=1e-10, atol=1e-10)
