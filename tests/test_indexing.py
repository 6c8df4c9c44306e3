"""Indexing: gather/scatter/dynamic_slice/dynamic_update_slice primitives and NumPy-style
``x[idx]`` / ``x.at[idx]`` on top of them (vs NumPy, vmap vs loops, gradients)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx
import fnx.numpy as fnp
from fnx.core.abstract import ShapedArray
from fnx.core.ad_util import UndefinedPrimal
from fnx.core.errors import ConcretizationError, DTypeError, FnxIndexError, ShapeError
from fnx.core.ops import indexing as ix
from fnx.testing import check_grads

A = np.arange(3 * 4 * 5 * 6).reshape(3, 4, 5, 6)

INDICES = [
    (0,),
    (-1, slice(None, None, -2)),
    ([0, 2],),
    ([[0, 2], [1, -1]],),
    (slice(None), [0, 1], None, [0, 1]),           # separated by None: advanced first
    ([0, 1], None, slice(None), [0, 1]),
    (0, slice(None), [0, 1]),                        # int + array separated: advanced first
    (slice(None), 0, [0, 1]),                        # adjacent: stays in place
    (Ellipsis, [-1, 2]),
    (slice(1, None, -1), [0]),
    (None, [1], Ellipsis, [2]),
    (slice(None, None, -2), [[1], [2]], slice(1, 4, 2), [0, 3]),
    (A[:, 0, 0, 0] > 100,),
    (slice(None), A[0, :, :, 0] % 3 == 0),
    (Ellipsis, A[0, 0, 0] % 2 == 0),
    (True,),
    (False,),
    (np.array([], dtype=np.int64),),
    (1, [2, 0], slice(1, 3), -1),
    (np.array(2), [1, 1, 1]),
]


@pytest.mark.parametrize("idx", INDICES, ids=range(len(INDICES)))
def test_getitem_matches_numpy(idx):
    out = fnp.asarray(A)[idx]
    expected = A[idx]
    assert out.shape == expected.shape
    np.testing.assert_array_equal(out.numpy(), expected)


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "float32", "complex64"])
def test_getitem_dtypes(dtype):
    a = (np.arange(12).reshape(3, 4) % 5).astype(dtype)
    x = fnp.asarray(a)
    for idx in [([2, 0],), (slice(None), [3, 3]), (a.real > 1 if dtype != "bool" else a,)]:
        out = x[idx]
        assert out.dtype == a.dtype
        np.testing.assert_array_equal(out.numpy(), a[idx])


def test_getitem_empty_and_0d():
    x = fnp.zeros((0, 3))
    assert x[[]].shape == (0, 3)
    assert x[:, [0, 2]].shape == (0, 2)
    s = fnp.asarray(5.0)
    assert s[None].shape == (1,)
    assert s[()].item() == 5.0
    assert s[True].shape == (1,) and s[False].shape == (0,)
    assert s[...].shape == ()


@pytest.mark.parametrize("idx", INDICES, ids=range(len(INDICES)))
@pytest.mark.parametrize("mode", ["set", "add", "mul", "min", "max"])
def test_at_updates_match_numpy(idx, mode):
    sel = A[idx]
    values = (np.arange(sel.size).reshape(sel.shape) * 7) % 11 - 5
    out = getattr(fnp.asarray(A).at[idx], mode)(fnp.asarray(values))
    expected = A.copy()
    if mode == "set":
        expected[idx] = values
    else:
        ufunc = {"add": np.add, "mul": np.multiply, "min": np.minimum, "max": np.maximum}[mode]
        ufunc.at(expected, idx, values)
    np.testing.assert_array_equal(out.numpy(), expected)


def test_at_duplicates():
    x = fnp.zeros(4)
    idx = fnp.asarray([0, 2, 0, 0])
    np.testing.assert_array_equal(x.at[idx].add(1.0).numpy(), [3, 0, 1, 0])
    got = x.at[idx].set(fnp.asarray([1.0, 2.0, 3.0, 4.0])).numpy()
    assert got[0] in (1.0, 3.0, 4.0) and got[2] == 2.0 and got[1] == got[3] == 0
    np.testing.assert_array_equal(fnp.ones(3).at[[1, 1]].mul(3.0).numpy(), [1, 9, 1])
    np.testing.assert_array_equal(fnp.zeros(3).at[[1, 1]].max(fnp.asarray([2.0, 5.0])).numpy(),
                                  [0, 5, 0])
    np.testing.assert_array_equal(fnp.zeros(3).at[[1, 1]].min(fnp.asarray([2.0, -5.0])).numpy(),
                                  [0, -5, 0])


def test_at_broadcasts_values_and_casts_dtype():
    x = fnp.zeros((3, 4), dtype="int32")
    out = x.at[:, [1, 3]].set(2.7)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out.numpy(), np.array([[0, 2, 0, 2]] * 3))
    out = x.at[1:].add(fnp.asarray([1, 2, 3, 4]))
    np.testing.assert_array_equal(out.numpy()[1:], [[1, 2, 3, 4]] * 2)
    assert x.at[0].get().shape == (4,)
    # leading size-1 dims of values are allowed, as NumPy
    assert x.at[0].set(fnp.ones((1, 4), dtype="int32")).numpy()[0].tolist() == [1, 1, 1, 1]


def test_at_mask_with_scalar_works_traced():
    x = fnp.asarray([1.0, -2.0, 3.0, -4.0])
    relu = fnx.vmap(lambda r: r.at[r < 0].set(0.0))(fnp.stack([x, -x]))
    np.testing.assert_array_equal(relu.numpy(), [[1, 0, 3, 0], [0, 2, 0, 4]])
    np.testing.assert_array_equal(x.at[x > 0].add(10.0).numpy(), [11, -2, 13, -4])


def test_index_errors():
    x = fnp.asarray(A)
    with pytest.raises(FnxIndexError, match="index 3 is out of bounds for axis 0 with size 3"):
        x[3]
    with pytest.raises(FnxIndexError, match="index 7 is out of bounds for axis 1 with size 4"):
        x[:, [0, 7]]
    with pytest.raises(FnxIndexError, match="index -5 is out of bounds"):
        x.at[:, [-5]].set(0)
    with pytest.raises(FnxIndexError, match="too many indices"):
        x[0, 0, 0, 0, 0]
    with pytest.raises(FnxIndexError, match="could not be broadcast together"):
        x[[0, 1], [0, 1, 2]]
    with pytest.raises(FnxIndexError, match="boolean index of shape \\(2,\\) does not match"):
        x[np.array([True, False])]
    with pytest.raises(FnxIndexError, match="integer or boolean type"):
        x[np.array([0.5])]
    with pytest.raises(FnxIndexError, match="only integers, slices"):
        x[1.5]
    with pytest.raises(FnxIndexError, match="single ellipsis"):
        x[..., 0, ...]
    with pytest.raises(ShapeError, match="cannot broadcast values of shape \\(3,\\)"):
        x.at[0, 0].set(fnp.ones(3))


def test_bool_mask_under_tracing_raises():
    x = fnp.arange(4.0)
    with pytest.raises(ConcretizationError, match="boolean index of shape \\(4,\\)"):
        fnx.vmap(lambda r: r[r > 1.0])(fnp.stack([x, x]))
    with pytest.raises(ConcretizationError, match="depends on how many entries are True"):
        fnx.make_ir(lambda r: r[r > 1.0])(x)


def test_traced_integer_index_uses_dynamic_slice():
    x = fnp.arange(12.0).reshape(3, 4)
    out = fnx.vmap(lambda i: x[i, 1:])(fnp.asarray([2, -1, 0]))
    np.testing.assert_array_equal(out.numpy(), np.arange(12.0).reshape(3, 4)[[2, -1, 0], 1:])
    ir = str(fnx.make_ir(lambda x, i: x[i])(x, fnp.asarray(1)))
    assert "dynamic_slice" in ir and "gather" not in ir


# --- the primitives -------------------------------------------------------------------------


def test_gather_oob_modes():
    x = fnp.asarray(np.arange(12.0).reshape(3, 4))
    idx = fnp.asarray([[0], [2], [5], [-1]])
    np.testing.assert_array_equal(ix.gather(x, idx, "clip").numpy(),
                                  np.arange(12.0).reshape(3, 4)[[0, 2, 2, 0]])
    got = ix.gather(x, idx, "drop").numpy()
    np.testing.assert_array_equal(got[2:], 0)
    upd = fnp.ones((4, 4))
    np.testing.assert_array_equal(ix.scatter(fnp.zeros((3, 4)), idx, upd, "add", "drop").numpy(),
                                  [[1] * 4, [0] * 4, [1] * 4])
    np.testing.assert_array_equal(ix.scatter(fnp.zeros((3, 4)), idx, upd, "add", "clip").numpy(),
                                  [[2] * 4, [0] * 4, [2] * 4])


def test_gather_scatter_errors():
    x = fnp.zeros((3, 4))
    with pytest.raises(DTypeError, match="gather: indices must have an integer dtype"):
        ix.gather(x, fnp.zeros((2, 1)))
    with pytest.raises(ShapeError, match="index vectors of length 3"):
        ix.gather(x, fnp.zeros((2, 3), dtype="int64"))
    with pytest.raises(ShapeError, match="scatter_add: updates of shape \\(2, 5\\)"):
        ix.scatter(x, fnp.zeros((2, 1), dtype="int64"), fnp.zeros((2, 5)), "add")
    with pytest.raises(DTypeError, match="updates dtype int64 differs"):
        ix.scatter(x, fnp.zeros((2, 1), dtype="int64"), fnp.zeros((2, 4), dtype="int64"))
    with pytest.raises(ValueError, match="oob must be one of"):
        ix.gather(x, fnp.zeros((2, 1), dtype="int64"), "wrap")


@pytest.mark.parametrize("oob", ["clip", "drop"])
def test_gather_scatter_add_are_transposes(oob, rng):
    shape, idx = (4, 3, 2), fnp.asarray(rng.integers(-2, 6, size=(5, 2)))
    t = fnp.asarray(rng.standard_normal(shape))
    ct = fnp.asarray(rng.standard_normal((5, 2)))
    (ct_x, none) = ix.gather_p.transpose(ct, UndefinedPrimal(ShapedArray(shape, np.float64)),
                                         idx, oob=oob)
    assert none is None
    lhs = np.vdot(ct.numpy(), ix.gather(t, idx, oob).numpy())
    np.testing.assert_allclose(lhs, np.vdot(ct_x.numpy(), t.numpy()))
    _, _, ct_u = ix.scatter_add_p.transpose(t, fnp.zeros(shape, dtype="float64"), idx,
                                            UndefinedPrimal(ShapedArray((5, 2), np.float64)),
                                            oob=oob)
    lhs = np.vdot(t.numpy(), ix.scatter(fnp.zeros(shape, dtype="float64"), idx, ct, "add",
                                        oob).numpy())
    np.testing.assert_allclose(lhs, np.vdot(ct_u.numpy(), ct.numpy()))


def test_scatter_set_transpose_with_duplicates(rng):
    shape = (5, 2)
    idx = fnp.asarray([[1], [3], [1], [9]])
    t_op = fnp.asarray(rng.standard_normal(shape))
    t_u = fnp.asarray(rng.standard_normal((4, 2)))
    ct = fnp.asarray(rng.standard_normal(shape))
    ct_op, _, ct_u = ix.scatter_p.transpose(
        ct, UndefinedPrimal(ShapedArray(shape, np.float64)), idx,
        UndefinedPrimal(ShapedArray((4, 2), np.float64)), oob="drop")
    lhs = np.vdot(ct.numpy(), ix.scatter(t_op, idx, t_u, "set", "drop").numpy())
    rhs = np.vdot(ct_op.numpy(), t_op.numpy()) + np.vdot(ct_u.numpy(), t_u.numpy())
    np.testing.assert_allclose(lhs, rhs)


@pytest.mark.parametrize("mode", ["set", "add", "mul", "min", "max"])
def test_scatter_grads(mode, rng):
    idx = fnp.asarray([[0], [2], [2], [4]]) if mode in ("add", "set") else fnp.asarray(
        [[0], [2], [4], [1]])
    x = fnp.asarray(rng.standard_normal((5, 3)))
    u = fnp.asarray(rng.standard_normal((4, 3)))
    check_grads(lambda x, u: ix.scatter(x, idx, u, mode, "drop"), (x, u), order=2)


def test_scatter_mul_grad_with_duplicates_nonzero(rng):
    idx = fnp.asarray([[1], [1], [3]])
    x = fnp.asarray(rng.standard_normal((4, 2)))
    u = fnp.asarray(rng.standard_normal((3, 2)) + 3.0)
    check_grads(lambda x, u: ix.scatter(x, idx, u, "mul"), (x, u), order=1)


def test_scatter_mul_grad_exact_at_zero_update():
    # a zero update, unique index: the mul rule must not divide by it
    idx = fnp.asarray([[0], [1]])
    x = fnp.asarray([2.0, 3.0], dtype="float64")
    g = fnx.grad(lambda u: fnp.sum(ix.scatter(x, idx, u, "mul")))(
        fnp.asarray([0.0, 1.0], dtype="float64"))
    np.testing.assert_allclose(g.numpy(), [2.0, 3.0])


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0), (1, 1)])
def test_gather_vmap_matches_loop(in_axes, rng):
    b = 3
    xs = rng.standard_normal((b, 4, 5) if in_axes[0] == 0 else (4, b, 5) if in_axes[0] == 1
                             else (4, 5))
    ids = rng.integers(0, 4, size=(b, 2, 1) if in_axes[1] == 0 else (2, b, 1)
                       if in_axes[1] == 1 else (2, 1))
    out = fnx.vmap(lambda x, i: ix.gather(x, i), in_axes=in_axes)(fnp.asarray(xs),
                                                                 fnp.asarray(ids))
    loop = [ix.gather(fnp.asarray(xs if in_axes[0] is None else np.take(xs, k, in_axes[0])),
                      fnp.asarray(ids if in_axes[1] is None else np.take(ids, k, in_axes[1])))
            .numpy() for k in range(b)]
    np.testing.assert_allclose(out.numpy(), np.stack(loop))


@pytest.mark.parametrize("mode", ["set", "add", "max"])
@pytest.mark.parametrize("in_axes", [(0, None, None), (None, 0, None), (None, None, 0),
                                     (0, 0, 0)])
def test_scatter_vmap_matches_loop(mode, in_axes, rng):
    b = 3
    shapes = [(4, 2), (3, 1), (3, 2)]
    args = [rng.standard_normal((b,) + s) if a == 0 else rng.standard_normal(s)
            for s, a in zip(shapes, in_axes)]
    args[1] = rng.integers(0, 4, size=args[1].shape)
    f = lambda x, i, u: ix.scatter(x, i, u, mode)  # noqa: E731
    out = fnx.vmap(f, in_axes=in_axes)(*[fnp.asarray(a) for a in args])
    loop = [f(*[fnp.asarray(a if ax is None else a[k]) for a, ax in zip(args, in_axes)]).numpy()
            for k in range(b)]
    if mode == "set":  # duplicates may pick any winner; compare only where unambiguous
        for k in range(b):
            i = (args[1] if in_axes[1] is None else args[1][k])[:, 0]
            if len(set(i.tolist())) < len(i):
                return
    np.testing.assert_allclose(out.numpy(), np.stack(loop))


def test_dynamic_slice_clamps_and_updates():
    x = fnp.arange(10.0)
    np.testing.assert_array_equal(ix.dynamic_slice(x, [8], [3]).numpy(), [7, 8, 9])
    np.testing.assert_array_equal(ix.dynamic_slice(x, [-4], [2]).numpy(), [0, 1])
    out = ix.dynamic_update_slice(x, fnp.asarray([-1.0, -2.0]), [9])
    np.testing.assert_array_equal(out.numpy()[-3:], [7, -1, -2])
    with pytest.raises(ShapeError, match="slice_sizes \\(11,\\) do not fit"):
        ix.dynamic_slice(x, [0], [11])
    with pytest.raises(ShapeError, match="got 2 start indices"):
        ix.dynamic_slice(x, [0, 0], [1])
    with pytest.raises(DTypeError, match="update dtype int64 differs"):
        ix.dynamic_update_slice(x, fnp.asarray([1]), [0])


@pytest.mark.parametrize("in_axes", [(0, None), (None, 0), (0, 0)])
def test_dynamic_slice_vmap_matches_loop(in_axes, rng):
    xs = rng.standard_normal((3, 6, 4) if in_axes[0] == 0 else (6, 4))
    starts = np.array([4, -1, 2]) if in_axes[1] == 0 else np.array(3)
    f = lambda x, s: ix.dynamic_slice(x, [s, fnp.asarray(1)], [3, 2])  # noqa: E731
    out = fnx.vmap(f, in_axes=in_axes)(fnp.asarray(xs), fnp.asarray(starts))
    loop = [f(fnp.asarray(xs[k] if in_axes[0] == 0 else xs),
              fnp.asarray(starts[k] if in_axes[1] == 0 else starts)).numpy() for k in range(3)]
    np.testing.assert_allclose(out.numpy(), np.stack(loop))
    g = lambda x, s: ix.dynamic_update_slice(x, fnp.ones((2, 2), dtype="float64"),  # noqa: E731
                                             [s, fnp.asarray(1)])
    out = fnx.vmap(g, in_axes=in_axes)(fnp.asarray(xs), fnp.asarray(starts))
    loop = [g(fnp.asarray(xs[k] if in_axes[0] == 0 else xs),
              fnp.asarray(starts[k] if in_axes[1] == 0 else starts)).numpy() for k in range(3)]
    np.testing.assert_allclose(out.numpy(), np.stack(loop))


def test_dynamic_slice_grads(rng):
    x = fnp.asarray(rng.standard_normal((5, 3)))
    u = fnp.asarray(rng.standard_normal((2, 3)))
    s = fnp.asarray(2)
    check_grads(lambda x: ix.dynamic_slice(x, [s, fnp.asarray(0)], [2, 2]), (x,), order=2)
    check_grads(lambda x, u: ix.dynamic_update_slice(x, u, [s, fnp.asarray(0)]), (x, u),
                order=2)


# --- gradients and batching through fnp indexing -------------------------------------------


@pytest.mark.parametrize("idx", [(slice(None), [0, 2, 2]), ([[1], [0]], slice(1, 3)),
                                 (fnp.asarray([2, -1]),), (1, slice(None, None, -1))])
def test_getitem_and_at_grads(idx, rng):
    x = fnp.asarray(rng.standard_normal((3, 4)))
    check_grads(lambda x: x[idx], (x,), order=2)
    v = fnp.asarray(rng.standard_normal(np.asarray(x)[idx if not hasattr(idx[0], "numpy")
                                                       else (idx[0].numpy(),)].shape))
    check_grads(lambda x, v: x.at[idx].add(v), (x, v), order=1)
    check_grads(lambda x, v: x.at[idx].set(v * 2), (x, v), order=1)


def test_getitem_vmap_with_batched_index_arrays(rng):
    x = rng.standard_normal((3, 5, 4))
    ids = rng.integers(-4, 4, size=(3, 2))
    out = fnx.vmap(lambda x, i: x[:, i][i])(fnp.asarray(x), fnp.asarray(ids))
    loop = np.stack([x[k][:, ids[k]][ids[k]] for k in range(3)])
    np.testing.assert_allclose(out.numpy(), loop)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(-4, 3), min_size=0, max_size=6),
       st.sampled_from(["set", "add", "min", "max"]))
def test_hypothesis_at_1d(ids, mode):
    base = np.arange(4.0) * 10
    vals = np.arange(len(ids), dtype=float) - 2
    out = getattr(fnp.asarray(base).at[np.array(ids, dtype=np.int64)], mode)(fnp.asarray(vals))
    exp = base.copy()
    if mode == "set":
        exp[np.array(ids, dtype=np.int64)] = vals
    else:
        {"add": np.add, "min": np.minimum, "max": np.maximum}[mode].at(
            exp, np.array(ids, dtype=np.int64), vals)
    np.testing.assert_allclose(out.numpy(), exp)
    np.testing.assert_allclose(fnp.asarray(base)[np.array(ids, dtype=np.int64)].numpy(),
                               base[np.array(ids, dtype=np.int64)])
