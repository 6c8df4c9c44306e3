"""sort_p, the cumulative primitives, and fnx.numpy's sorting/searching/cumulative functions:
vs NumPy, gradients by finite differences, vmap vs Python loops, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx
import fnx.numpy as fnp
from fnx.core.errors import AxisError, ConcretizationError, DTypeError, FnxIndexError
from fnx.core.ops import sorting as so
from fnx.numpy._searching_sorting import (argsort, count_nonzero, cummax, cummin, cumprod,
                                          cumsum, cumulative_prod, cumulative_sum, nonzero,
                                          searchsorted, sort, take, take_along_axis)
from fnx.testing import check_grads

DTYPES = ["bool", "int8", "int32", "uint8", "float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, -1])
def test_sort_argsort_match_numpy(dtype, axis, rng):
    a = (rng.integers(0, 4, size=(5, 6))).astype(dtype)  # many ties: checks stability
    np.testing.assert_array_equal(sort(fnp.asarray(a), axis=axis).numpy(),
                                  np.sort(a, axis=axis))
    np.testing.assert_array_equal(argsort(fnp.asarray(a), axis=axis).numpy(),
                                  np.argsort(a, axis=axis, kind="stable"))


@pytest.mark.parametrize("dtype", ["int32", "float64"])
def test_sort_descending_is_stable(dtype, rng):
    a = rng.integers(0, 3, size=(4, 7)).astype(dtype)
    got = argsort(fnp.asarray(a), axis=1, descending=True).numpy()
    np.testing.assert_array_equal(got, np.argsort(-a, axis=1, kind="stable"))
    np.testing.assert_array_equal(sort(fnp.asarray(a), axis=1, descending=True).numpy(),
                                  -np.sort(-a, axis=1))


def test_sort_nan_last_and_edge_shapes():
    a = np.array([3.0, np.nan, 1.0, -np.inf])
    np.testing.assert_array_equal(sort(fnp.asarray(a)).numpy(), np.sort(a))
    np.testing.assert_array_equal(argsort(fnp.asarray(a)).numpy(), np.argsort(a))
    assert sort(fnp.zeros((0, 3)), axis=0).shape == (0, 3)
    assert argsort(fnp.zeros((2, 0))).shape == (2, 0)
    assert argsort(fnp.zeros((2, 0))).dtype == np.int64
    with pytest.raises(AxisError, match="out of bounds"):
        sort(fnp.asarray(1.0))
    with pytest.raises(DTypeError, match="complex keys"):
        so.sort([fnp.asarray([1j, 2j])], 0)


def test_sort_multiple_operands():
    keys = fnp.asarray([3, 1, 2, 1])
    vals = fnp.asarray([0.0, 1.0, 2.0, 3.0])
    k, v = so.sort([keys, vals], 0)
    assert k.tolist() == [1, 1, 2, 3] and v.tolist() == [1.0, 3.0, 2.0, 0.0]


def test_sort_grads_and_vmap(rng):
    x = fnp.asarray(rng.standard_normal((3, 5)))
    check_grads(lambda x: sort(x, axis=1), (x,), order=2)
    check_grads(lambda x: sort(x, axis=0, descending=True), (x,), order=1)
    out = fnx.vmap(lambda r: argsort(r), in_axes=1)(x)
    np.testing.assert_array_equal(out.numpy(), np.argsort(x.numpy().T, axis=-1))
    k, v = fnx.vmap(lambda a, b: so.sort([a, b], 0), in_axes=(0, None))(x, fnp.arange(5.0))
    np.testing.assert_array_equal(v.numpy(), np.argsort(x.numpy(), axis=1).astype(float))


# --- cumulative ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["cumsum", "cumprod"])
@pytest.mark.parametrize("dtype", ["bool", "int8", "int32", "uint16", "float32", "complex64"])
def test_cumsum_cumprod_match_numpy(name, dtype, rng):
    a = rng.integers(0, 3, size=(3, 4)).astype(dtype)
    f = {"cumsum": cumsum, "cumprod": cumprod}[name]
    ref = getattr(np, name)
    for axis in (None, 0, 1, -1):
        got = f(fnp.asarray(a), axis=axis)
        exp = ref(a, axis=axis)
        np.testing.assert_allclose(got.numpy(), exp, rtol=1e-6)
        assert got.dtype == exp.dtype or (dtype == "uint16" and got.dtype == np.uint64)


def test_cumulative_sum_array_api():
    x = fnp.asarray([[1, 2], [3, 4]])
    np.testing.assert_array_equal(cumulative_sum(x, axis=0, include_initial=True).numpy(),
                                  [[0, 0], [1, 2], [4, 6]])
    np.testing.assert_array_equal(cumulative_sum(fnp.asarray([1.0, 2.0])).numpy(), [1, 3])
    np.testing.assert_array_equal(cumulative_prod(x, axis=1, include_initial=True).numpy(),
                                  [[1, 1, 2], [1, 3, 12]])
    assert cumulative_sum(fnp.zeros((0,)), include_initial=True).tolist() == [0.0]
    assert cumulative_sum(x, axis=1, dtype="float64").dtype == np.float64
    with pytest.raises(ValueError, match="axis must be given for an array of rank 2"):
        cumulative_sum(x)
    with pytest.raises(AxisError):
        cumulative_sum(x, axis=2)


@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_primitives_reverse(reverse, rng):
    a = rng.standard_normal((3, 5))
    flip = (lambda v: v[:, ::-1]) if reverse else (lambda v: v)
    for prim, ref in [(so.cumsum_p, np.cumsum), (so.cumprod_p, np.cumprod),
                      (so.cummax_p, np.maximum.accumulate), (so.cummin_p, np.minimum.accumulate)]:
        got = prim.bind(fnp.asarray(a), axis=1, reverse=reverse).numpy()
        np.testing.assert_allclose(got, flip(ref(flip(a), axis=1)), rtol=1e-12)


def test_cummax_cummin(rng):
    a = rng.integers(-5, 5, size=(4, 6))
    np.testing.assert_array_equal(cummax(fnp.asarray(a), axis=1).numpy(),
                                  np.maximum.accumulate(a, axis=1))
    np.testing.assert_array_equal(cummin(fnp.asarray(a), axis=0).numpy(),
                                  np.minimum.accumulate(a, axis=0))


@pytest.mark.parametrize("reverse", [False, True])
def test_cumulative_grads(reverse, rng):
    x = fnp.asarray(rng.standard_normal((3, 6)))
    for prim in (so.cumsum_p, so.cumprod_p, so.cummax_p, so.cummin_p):
        check_grads(lambda x: prim.bind(x, axis=1, reverse=reverse), (x,),
                    order=2 if prim is not so.cummin_p else 1)


def test_cumprod_grad_exact_with_zeros():
    x = np.array([2.0, 0.0, 3.0, 0.0, 5.0])
    x_f = fnp.asarray(x)
    check_grads(lambda x: so.cumprod_p.bind(x, axis=0, reverse=False), (x_f,), order=2)
    jac = fnx.jacfwd(lambda x: so.cumprod_p.bind(x, axis=0, reverse=False))(x_f).numpy()
    expected = np.zeros((5, 5))
    for j in range(5):
        for i in range(j + 1):
            expected[j, i] = np.prod(np.delete(x[:j + 1], i))
    np.testing.assert_allclose(jac, expected)


def test_cummax_grad_follows_the_source_element():
    x = fnp.asarray([1.0, 3.0, 2.0, 4.0], dtype="float64")
    g = fnx.grad(lambda x: fnp.sum(cummax(x)))(x)
    np.testing.assert_array_equal(g.numpy(), [1, 2, 0, 1])
    g = fnx.grad(lambda x: fnp.sum(so.cummin_p.bind(x, axis=0, reverse=True)))(
        fnp.asarray([1.0, 3.0, 2.0, 4.0], dtype="float64"))
    np.testing.assert_array_equal(g.numpy(), [1, 0, 2, 1])


@pytest.mark.parametrize("in_axis", [0, 1])
def test_cumulative_vmap(in_axis, rng):
    x = rng.standard_normal((3, 4))
    for f, ref in [(lambda r: cumsum(r), np.cumsum), (lambda r: cumprod(r), np.cumprod),
                   (lambda r: cummax(r), np.maximum.accumulate)]:
        out = fnx.vmap(f, in_axes=in_axis)(fnp.asarray(x))
        np.testing.assert_allclose(out.numpy(), ref(np.moveaxis(x, in_axis, 0), axis=1))


def test_prod_gradient_uses_cumprod():
    if not hasattr(fnp, "cumprod"):
        pytest.skip("fnx.numpy does not re-export cumprod yet")
    x = fnp.asarray([[2.0, 0.0, 3.0], [1.0, 4.0, 5.0]], dtype="float64")
    g = fnx.grad(lambda x: fnp.sum(fnp.prod(x, axis=1)))(x)
    np.testing.assert_allclose(g.numpy(), [[0, 6, 0], [20, 5, 4]])


# --- searching -------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["left", "right"])
def test_searchsorted_matches_numpy(side, rng):
    a = np.sort(rng.integers(0, 6, size=8)).astype(float)
    a[-1] = np.nan
    v = np.array([[-1.0, 0.0, 2.0], [5.0, np.nan, 7.0]])
    np.testing.assert_array_equal(searchsorted(fnp.asarray(a), fnp.asarray(v), side=side).numpy(),
                                  np.searchsorted(a, v, side=side))
    b = np.array([3, 1, 2])
    sorter = np.argsort(b)
    np.testing.assert_array_equal(
        searchsorted(fnp.asarray(b), fnp.asarray([2, 3]), side=side,
                     sorter=fnp.asarray(sorter)).numpy(),
        np.searchsorted(b, [2, 3], side=side, sorter=sorter))
    assert searchsorted(fnp.asarray([1, 2]), 2).shape == ()
    with pytest.raises(ValueError, match="side must be"):
        searchsorted(fnp.asarray([1, 2]), 1, side="middle")


def test_nonzero_eager_sized_and_traced(rng):
    a = rng.integers(0, 2, size=(3, 4))
    got = nonzero(fnp.asarray(a))
    for g, e in zip(got, np.nonzero(a), strict=True):
        np.testing.assert_array_equal(g.numpy(), e)
        assert g.dtype == np.int64
    sized = nonzero(fnp.asarray(a), size=20, fill_value=-1)
    n = int(a.sum())
    for g, e in zip(sized, np.nonzero(a), strict=True):
        np.testing.assert_array_equal(g.numpy()[:n], e)
        assert (g.numpy()[n:] == -1).all()
    batched = fnx.vmap(lambda r: nonzero(r, size=2)[0])(fnp.asarray([[0, 5, 5], [1, 0, 0]]))
    np.testing.assert_array_equal(batched.numpy(), [[1, 2], [0, 0]])
    with pytest.raises(ConcretizationError, match="nonzero: the number of nonzero entries"):
        fnx.vmap(lambda r: nonzero(r))(fnp.asarray(a))
    with pytest.raises(ValueError, match="0-d"):
        nonzero(fnp.asarray(1))


def test_take_and_take_along_axis(rng):
    a = rng.standard_normal((3, 4, 5))
    x = fnp.asarray(a)
    np.testing.assert_array_equal(take(x, fnp.asarray([0, -1, 2]), axis=1).numpy(),
                                  np.take(a, [0, -1, 2], axis=1))
    np.testing.assert_array_equal(take(x, fnp.asarray([[7, 59]])).numpy(),
                                  np.take(a, [[7, 59]]))
    np.testing.assert_array_equal(take(x, 2, axis=2).numpy(), np.take(a, 2, axis=2))
    idx = rng.integers(-5, 5, size=(3, 4, 2))
    np.testing.assert_array_equal(take_along_axis(x, fnp.asarray(idx), axis=2).numpy(),
                                  np.take_along_axis(a, idx, axis=2))
    idx = rng.integers(0, 3, size=(2, 1, 5))  # broadcasts over axis 1
    np.testing.assert_array_equal(take_along_axis(x, fnp.asarray(idx), axis=0).numpy(),
                                  np.take_along_axis(a, idx, axis=0))
    with pytest.raises(FnxIndexError, match="out of bounds"):
        take(x, fnp.asarray([4]), axis=1)
    with pytest.raises(FnxIndexError, match="take_along_axis: index 5 is out of bounds"):
        take_along_axis(x, fnp.asarray(np.full((3, 4, 1), 5)), axis=2)
    with pytest.raises(FnxIndexError, match="indices must be integers"):
        take(x, fnp.asarray([1.0]))
    check_grads(lambda x: take_along_axis(x, fnp.asarray(idx), axis=0), (x,), order=1)


def test_count_nonzero():
    a = np.array([[0, 1, 2], [0, 0, 3]])
    assert count_nonzero(fnp.asarray(a)).item() == 3
    np.testing.assert_array_equal(count_nonzero(fnp.asarray(a), axis=0).numpy(), [0, 1, 2])
    assert count_nonzero(fnp.asarray(a), axis=1, keepdims=True).shape == (2, 1)
    assert count_nonzero(fnp.asarray([True, False])).item() == 1


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=0, max_size=8))
def test_hypothesis_sort_cumsum(values):
    a = np.array(values, dtype=np.int64)
    np.testing.assert_array_equal(sort(fnp.asarray(a)).numpy(), np.sort(a))
    np.testing.assert_array_equal(argsort(fnp.asarray(a)).numpy(),
                                  np.argsort(a, kind="stable"))
    np.testing.assert_array_equal(cumsum(fnp.asarray(a)).numpy(), np.cumsum(a))
    np.testing.assert_array_equal(searchsorted(fnp.asarray(np.sort(a)), 0).numpy(),
                                  np.searchsorted(np.sort(a), 0))
