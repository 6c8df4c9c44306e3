"""Derivatives where random draws do not go, against central differences in float64, forward
and reverse mode (the conventions are in docs/transforms.md, "Gradient conventions at kinks"):

* every differentiable op_db record at size-1, 0-d and 1-d variants of its shape cases (which
  test_ops_grad draws), wherever NumPy's reference takes the variant (a reduction over a
  size-1 axis, a contraction of length 1, a scalar through ``dot`` or ``kron``);
* tied values. With two tied, the even split of the conventions (as JAX: ``max``, ``min``,
  ``maximum``, ``cummax``, ``clip`` at a bound, scatter_max) *is* the central difference, so it
  is checked like any derivative; with three tied, against the stated split;
* kinks whose convention is the central difference (``abs``, norms and ``hypot`` at 0, ``std``
  at zero variance) and smooth functions written with branches or shifts (``logaddexp``,
  ``logsumexp``, ``softmax``, ``sinc``, ``erfc``, ``log_ndtr``, ``xlogy``), to second order at
  their branch points.
"""

import warnings

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
import fnx.scipy.special as sps
from fnx.core.ops import elementwise as ew
from fnx.core.ops import indexing as ix
from fnx.core.ops import reduction as rd
from fnx.core.ops import sorting as so
from fnx.testing import check_grads
from op_db import RECORDS, sample_args


def f64(x):
    return fnp.asarray(np.asarray(x, dtype=np.float64))


# --- every record at size-1, 0-d and 1-d variants of its shapes --------------------------------


def _variants(rec):
    """The record's non-empty shape cases with every dimension 1, with every operand 0-d and
    with every non-scalar operand of shape (3,) (test_ops_grad draws the cases themselves)."""
    out = []
    for shapes in rec.shapes:
        if any(0 in s for s in shapes):
            continue
        for v in (tuple(tuple(1 for _ in s) for s in shapes), tuple(() for _ in shapes),
                  tuple((3,) if s else () for s in shapes)):
            if v not in out and v not in rec.shapes:
                out.append(v)
    return out


def _leaves(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _applies(rec, args):
    """Whether ``rec`` takes these operands as NumPy's reference does (same output shapes, all
    non-empty and finite): variants of the record's shapes are not valid for every op (the
    reference tests check what the op does with the others)."""
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            expected = _leaves(rec.ref(*args))
            out = _leaves(rec.op(*[fnp.asarray(a) for a in args]))
    except Exception:  # noqa: BLE001 -- not a valid input for this op
        return False
    return len(out) == len(expected) and all(
        np.shape(o) == np.shape(e) and np.size(e) > 0 and np.all(np.isfinite(e))
        for o, e in zip(out, expected))


EDGE_RECORDS = [r for r in RECORDS if r.grad > 0 and r.ref is not None and _variants(r)]


@pytest.mark.parametrize("rec", EDGE_RECORDS, ids=lambda r: r.name)
def test_grads_at_size1_scalar_and_vector_shapes(rec):
    for shapes in _variants(rec):
        try:
            args = sample_args(np.random.default_rng(0), rec, shapes, rec.grad_dtype,
                               rec.grad_domains)
        except (IndexError, ValueError):  # a domain that needs more dimensions (matrices)
            continue
        if _applies(rec, args):
            check_grads(rec.op, tuple(fnp.asarray(a) for a in args), order=1,
                        modes=rec.grad_modes)


# --- the functions of the issue, at the shapes that went wrong ----------------------------------


@pytest.mark.parametrize("shapes", [((), (3,)), ((3,), ()), ((), ()), ((1,), (1,)), ((3,), (3,)),
                                    ((3,), (3, 2)), ((2, 3), (3,)), ((1, 1), (1,))])
def test_dot_with_scalar_and_vector_operands(shapes):
    rng = np.random.default_rng(1)
    check_grads(fnp.dot, tuple(f64(rng.standard_normal(s)) for s in shapes), order=2)


@pytest.mark.parametrize("shapes", [((2, 2), (3, 1)), ((2,), (3,)), ((), (3,)), ((1,), (2, 2)),
                                    ((1, 1), (1, 1))])
def test_kron(shapes):
    rng = np.random.default_rng(2)
    check_grads(fnp.kron, tuple(f64(rng.standard_normal(s)) for s in shapes), order=2)


@pytest.mark.parametrize("fn", [fnp.mod, fnp.remainder, fnp.fmod])
def test_remainders_with_divisors_of_both_signs(fn):
    x = f64([2.5, -2.5, 0.7, -5.3])
    y = f64([0.7, 0.7, -1.1, -1.1])
    check_grads(fn, (x, y), order=2)
    check_grads(fn, (f64(2.5), f64([0.7, -0.9])), order=2)


def test_remainder_at_exact_multiples_keeps_the_derivative_between_the_jumps():
    # a zero result takes the divisor's sign, but its derivative stays d/dx1 = 1,
    # d/dx2 = -floor(x1 / x2), as everywhere else (copysign's kink at 0 gave 0)
    x, y = f64([6.0, -6.0, 6.0, -6.0]), f64([3.0, 3.0, -3.0, -3.0])
    _, t = fnx.jvp(fnp.remainder, (x, y), (fnp.ones_like(x), fnp.zeros_like(y)))
    np.testing.assert_array_equal(t, [1.0, 1.0, 1.0, 1.0])
    _, t = fnx.jvp(fnp.remainder, (x, y), (fnp.zeros_like(x), fnp.ones_like(y)))
    np.testing.assert_array_equal(t, [-2.0, 2.0, 2.0, -2.0])
    np.testing.assert_array_equal(np.signbit(fnp.remainder(x, y)), [False, False, True, True])


def test_einsum_under_jvp_in_both_forms():
    rng = np.random.default_rng(3)
    a, b = f64(rng.standard_normal((2, 3))), f64(rng.standard_normal((3, 4)))
    check_grads(lambda a, b: fnp.einsum("ij,jk->ik", a, b), (a, b), order=2)
    check_grads(lambda a, b: fnp.einsum(a, [0, 1], b, [1, 2], [2, 0]), (a, b), order=2)
    _, t = fnx.jvp(lambda a: fnp.einsum(a, [0, 1], b, [1, 2]), (a,), (fnp.ones_like(a),))
    np.testing.assert_allclose(t, np.ones((2, 3)) @ np.asarray(b))
    check_grads(lambda x: fnp.einsum(x, [Ellipsis, 0, 0]), (f64(rng.standard_normal((2, 3, 3))),))


# --- ties: even splits, as JAX -------------------------------------------------------------------

# two maxima and two minima in every row and in the whole array
_PAIRS = f64([[1.0, 3.0, 3.0, 1.0], [2.0, 0.5, 2.0, 0.5]])

TIE2 = {
    "max": lambda x: fnp.max(x), "min": lambda x: fnp.min(x),
    "amax_axis1": lambda x: fnp.amax(x, axis=1), "amin_axis1": lambda x: fnp.amin(x, axis=1),
    "nanmax": lambda x: fnp.nanmax(x, axis=1), "nanmin": lambda x: fnp.nanmin(x, axis=1),
    "reduce_max_p": lambda x: rd.reduce_max_p.bind(x, axes=(1,)),
    "reduce_min_p": lambda x: rd.reduce_min_p.bind(x, axes=(0, 1)),
    "max_keepdims": lambda x: fnp.max(x, axis=-1, keepdims=True),
    "vector_norm_inf": lambda x: fnp.linalg.vector_norm(x - 1.5, ord=np.inf, axis=1),
    "cummax": lambda x: fnp.cummax(x, axis=1),
    "cummin": lambda x: fnp.cummin(x, axis=1),
    "cummax_reverse": lambda x: so.cummax_p.bind(x, axis=1, reverse=True),
    "cummin_reverse": lambda x: so.cummin_p.bind(x, axis=1, reverse=True),
    "relu_at_0": lambda x: fnp.maximum(x - 2.0, 0.0),
    "clip_at_bounds": lambda x: fnp.clip(x, 1.0, 2.0),
}
# elementwise pairs, equal at positions 0 and 2
_A, _B = f64([1.0, 3.0, 2.0, 0.5]), f64([1.0, 2.0, 2.0, 4.0])
TIE2_BINARY = {
    "maximum": fnp.maximum, "minimum": fnp.minimum, "fmax": fnp.fmax, "fmin": fnp.fmin,
    "max_p": ew.max_p.bind, "min_p": ew.min_p.bind,
    "clip_array_bounds": lambda x, lo: fnp.clip(x, lo[:1], lo[2:3]),
}


@pytest.mark.parametrize("name", list(TIE2))
def test_two_way_ties_split_evenly_as_central_differences(name):
    check_grads(TIE2[name], (_PAIRS,), order=1)


@pytest.mark.parametrize("name", list(TIE2_BINARY))
def test_two_way_elementwise_ties_split_evenly(name):
    check_grads(TIE2_BINARY[name], (_A, _B), order=1)


def test_scatter_max_tie_between_operand_and_update():
    x = f64([[1.0, 5.0], [2.0, 2.0], [0.0, 1.0]])
    idx = fnp.asarray(np.array([[1], [0]], dtype=np.int32))
    upd = f64([[2.0, 1.0], [3.0, 5.0]])  # ties with x[1, 0] and x[0, 1]
    for prim in (ix.scatter_max_p, ix.scatter_min_p):
        check_grads(lambda x, u: prim.bind(x, idx, u, oob="clip"), (x, upd), order=1)


def test_three_way_ties_get_a_third_each():
    x = f64([2.0, 2.0, 2.0, 1.0])
    third = [1 / 3, 1 / 3, 1 / 3, 0.0]
    np.testing.assert_allclose(fnx.grad(fnp.max)(x), third)
    np.testing.assert_allclose(fnx.grad(lambda v: fnp.min(-v))(x), [-t for t in third])
    np.testing.assert_allclose(fnx.grad(lambda v: fnp.cummax(v)[-1])(x), third)
    # running maxima: position i averages the tied elements seen so far
    np.testing.assert_allclose(fnx.grad(lambda v: fnp.sum(fnp.cummax(v)))(x),
                               [1 + 1 / 2 + 2 / 3, 1 / 2 + 2 / 3, 2 / 3, 0.0])
    np.testing.assert_allclose(fnx.jit(fnx.grad(fnp.max))(x), third)


def test_pytorch_style_relu_has_gradient_0_at_0():
    # fnx.relu / Tensor.relu follow PyTorch (and jax.nn.relu); fnp.maximum(x, 0) splits the tie
    x = f64([-1.0, 0.0, 2.0])
    for relu in (fnx.relu, lambda v: v.relu()):
        np.testing.assert_array_equal(fnx.grad(lambda v: fnp.sum(relu(v)))(x), [0.0, 0.0, 1.0])
    np.testing.assert_array_equal(fnx.grad(lambda v: fnp.sum(fnp.maximum(v, 0.0)))(x),
                                  [0.0, 0.5, 1.0])


def test_sort_ties_follow_the_stable_permutation():
    # sort's derivative permutes the tangents, as JAX; at a tie the central difference would
    # average the tied tangents instead (documented)
    w = f64([1.0, 10.0, 100.0])
    g = fnx.grad(lambda v: fnp.sum(fnp.sort(v) * w))(f64([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(g, [10.0, 100.0, 1.0])


# --- kinks whose convention is the central difference; smooth branches to second order ---------


KINKS = {
    "abs_at_0": (fnp.abs, f64([0.0, -1.5, 2.0])),
    "std_zero_variance": (fnp.std, f64([2.0, 2.0, 2.0])),
    "std_single_element": (lambda x: fnp.std(x, axis=1), f64([[1.0], [2.0]])),
    "std_0d": (fnp.std, f64(2.0)),
    "vector_norm_at_0": (fnp.linalg.norm, f64([0.0, 0.0])),
    "matrix_norm_at_0": (fnp.linalg.matrix_norm, f64([[0.0, 0.0]])),
    "norm_of_one_element": (fnp.linalg.norm, f64([0.0])),
    "p_norm_at_0": (lambda x: fnp.linalg.vector_norm(x, ord=3), f64([0.0, 0.0])),
    "hypot_at_0": (lambda x: fnp.hypot(x[0], x[1]), f64([[0.0, 3.0], [0.0, -4.0]])),
}


@pytest.mark.parametrize("name", list(KINKS))
def test_kinks_take_the_central_difference(name):
    fn, x = KINKS[name]
    check_grads(fn, (x,), order=1)


SMOOTH = {
    "logaddexp_tie": (fnp.logaddexp, (f64([1.0, -3.0]), f64([1.0, 2.0]))),
    "logaddexp2_tie": (fnp.logaddexp2, (f64([1.0]), f64([1.0]))),
    "logaddexp_inf": (fnp.logaddexp, (f64([-np.inf]), f64([0.5]))),
    "logsumexp_ties": (sps.logsumexp, (f64([1.0, 1.0, 1.0, -2.0]),)),
    "logsumexp_axis_ties": (lambda x: sps.logsumexp(x, axis=1), (_PAIRS,)),
    "softmax_ties": (lambda x: sps.softmax(x, axis=1), (_PAIRS,)),
    "log_softmax_ties": (lambda x: sps.log_softmax(x, axis=1), (_PAIRS,)),
    "sinc_at_0": (fnp.sinc, (f64([0.0, 0.03, -0.04, 0.5]),)),
    "erfc_at_3": (sps.erfc, (f64([3.0, 2.5]),)),
    "xlogy_at_x_0": (sps.xlogy, (f64([0.0, 1.5]), f64([2.0, 0.3]))),
    "xlog1py_at_x_0": (sps.xlog1py, (f64([0.0, 1.5]), f64([0.3, -0.4]))),
    "complex_abs": (fnp.abs, (fnp.asarray(np.array([3 + 4j, -1 + 0.5j])),)),
    "complex_sign": (fnp.sign, (fnp.asarray(np.array([3 + 4j, -1 + 0.5j])),)),
}


@pytest.mark.parametrize("name", list(SMOOTH))
def test_smooth_functions_at_their_branch_points_to_second_order(name):
    fn, args = SMOOTH[name]
    check_grads(fn, args, order=2)


def test_log_ndtr_gradient_in_the_far_tail():
    # the unselected branch's log1p(-1) gave 0 * inf = nan in the reverse pass below x = -9
    import scipy.special

    x = np.array([-40.0, -20.0, -10.0, -9.5, -5.0, 0.0, 3.0])
    g = fnx.vmap(fnx.grad(sps.log_ndtr))(f64(x))
    expected = np.exp(-x * x / 2 - scipy.special.log_ndtr(x)) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(g, expected, rtol=1e-6)
    check_grads(sps.log_ndtr, (f64([-20.0, -9.0, 3.0]),), order=2)


def test_eigh_derivative_at_a_diagonal_matrix():
    # the eigenvectors of diag(1, 2) turn under an off-diagonal perturbation; differentiating
    # the Jacobi sweeps gave 0 there
    _, dv = fnx.jvp(lambda a: fnp.linalg.eigh(a)[1], (f64(np.diag([1.0, 2.0])),),
                    (f64([[0.0, 1.0], [1.0, 0.0]]),))
    np.testing.assert_allclose(dv, [[0.0, 1.0], [-1.0, 0.0]], atol=1e-12)
    check_grads(lambda a: fnp.linalg.eigh(a)[1], (f64(np.diag([1.0, 2.0])),), order=1)


@pytest.mark.parametrize("seed", range(6))
def test_jit_grad_of_a_row_max_over_a_recomputed_value_has_its_tie(seed):
    """The max's gradient tests ``x == max(x)`` in a later pass of the fused row kernel than
    the max: ``x`` is kept in a row buffer, not recomputed (a recomputation may round
    differently, leaving no tie and a 0/0 row of NaN)."""
    F = fnx.nn.functional
    r = np.random.default_rng(seed)
    a, b = fnx.asarray(r.standard_normal((6, 6))), fnx.asarray(r.standard_normal((6, 6)))

    def loss(a, b):
        v = F.softmax(b, -1) * b
        return (v.max(axis=-1) * a[:, 0]).sum() + (v * v).sum()

    want = np.asarray(fnx.grad(loss, argnums=1)(a, b))
    got = np.asarray(fnx.jit(fnx.grad(loss, argnums=1))(a, b))
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
