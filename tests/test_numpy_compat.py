"""NumPy compatibility of ``fnx.numpy`` beyond the signatures (test_numpy_signatures.py): calls
written with NumPy's keyword names, NumPy's own functions given fnx arrays (``np.sum(x)``
calls ``x.sum(axis=None, out=None)``), the ufunc keywords ``out``/``dtype``, the sign of a
zero remainder, and the functions added for NumPy code, against NumPy, jit vs eager and by
finite differences."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.errors import AxisError, ConcretizationError, DTypeError
from fnx.numpy._ufunc import OutArgumentError
from fnx.testing import check_grads
from op_db import by_name, sample_args

RNG = np.random.default_rng(0)
A = RNG.standard_normal((3, 4))
X = fnp.asarray(A)


def _close(actual, expected, rtol=1e-6, atol=1e-6):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)


# --- NumPy's keyword names and positional arguments -----------------------------------------

KEYWORD_CALLS = [
    ("tile", (), dict(reps=(2, 1))),
    ("repeat", (), dict(repeats=2, axis=1)),
    ("swapaxes", (), dict(axis1=0, axis2=1)),
    ("moveaxis", (), dict(source=0, destination=1)),
    ("rollaxis", (), dict(axis=1)),
    ("var", (), dict(ddof=1, axis=0)),
    ("std", (), dict(ddof=1)),
    ("std", (1, None, None, 1, True), {}),  # axis, dtype, out, ddof, keepdims by position
    ("clip", (), dict(a_min=-0.5, a_max=0.5)),
    ("clip", (), dict(min=-0.5, max=0.5)),
    ("clip", (-0.5, None), {}),
    ("sum", (1, None, None, True), {}),
    ("sum", (), dict(axis=0, initial=1.5, where=A > 0)),
    ("max", (), dict(axis=1, initial=0.25, where=A < 1)),
    ("mean", (), dict(axis=1, where=A > -1)),
    ("prod", (0,), dict(keepdims=True)),
    ("cumsum", (1,), {}),
    ("diff", (), dict(n=2, axis=1)),
    ("roll", (), dict(shift=1, axis=0)),
    ("flip", (), dict(m=None)),
    ("squeeze", (), dict(axis=None)),
    ("sort", (), dict(axis=None, kind="stable")),
    ("argsort", (0, "mergesort"), {}),
    ("take", ([0, 5, -1],), dict(mode="wrap")),
    ("take", ([0, 5, -1],), dict(mode="clip", axis=1)),
    ("diagonal", (1,), {}),
    ("trace", (), dict(offset=-1)),
    ("tril", (1,), {}),
    ("triu", (), dict(k=-1)),
    ("ravel", ("F",), {}),
    ("reshape", ((2, 6), "F"), {}),
    ("gradient", (), dict(axis=1, edge_order=2)),
]


@pytest.mark.parametrize("name,args,kw", KEYWORD_CALLS,
                         ids=[f"{c[0]}{i}" for i, c in enumerate(KEYWORD_CALLS)])
def test_numpy_keyword_calls(name, args, kw):
    fnx_kw = {k: fnp.asarray(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    first = {"flip": "m"}.get(name)
    if first:  # the array itself by NumPy's keyword name
        _close(getattr(fnp, name)(**{first: X}, **{k: v for k, v in fnx_kw.items()
                                                   if k != first}), getattr(np, name)(A))
        return
    _close(getattr(fnp, name)(X, *args, **fnx_kw), getattr(np, name)(A, *args, **kw))


def test_creation_takes_dtype_positionally():
    assert fnp.zeros((2,), "int32").dtype == np.int32
    assert fnp.ones(3, np.int8).dtype == np.int8
    assert fnp.empty((1, 2), "float64").shape == (1, 2)
    assert fnp.full((2,), 3, "int16").tolist() == [3, 3]
    assert fnp.eye(2, 3, 1, "int32").tolist() == np.eye(2, 3, 1, "int32").tolist()
    assert fnp.zeros_like(X, "int8", "K", True, (5,)).shape == (5,)
    assert fnp.asarray([1, 2], "float64", "C").dtype == np.float64
    assert fnp.array([1, 2], ndmin=3).shape == (1, 1, 2)
    _close(fnp.linspace(0.0, 1.0, 4, False, False, "float64"),
           np.linspace(0.0, 1.0, 4, False, False, "float64"))


def test_linspace_array_endpoints_axis_retstep():
    lo, hi = RNG.standard_normal(3), RNG.standard_normal((2, 3))
    for axis in (0, 1, -1):
        _close(fnp.linspace(fnp.asarray(lo), fnp.asarray(hi), 5, axis=axis),
               np.linspace(lo, hi, 5, axis=axis), rtol=1e-5)
    out, step = fnp.linspace(2.0, 3.0, 5, retstep=True)
    assert step.item() == np.linspace(2.0, 3.0, 5, retstep=True)[1]
    _close(fnp.linspace(-3, 10, 4, dtype=int), np.linspace(-3, 10, 4, dtype=int))
    check_grads(lambda a, b: fnp.linspace(a, b, 4, axis=-1),
                (fnp.asarray(lo), fnp.asarray(hi)), order=1)


def test_cross_axes():
    a, b = RNG.standard_normal((3, 5)), RNG.standard_normal((5, 3))
    for kw in (dict(axisa=0), dict(axisa=0, axisc=0), dict(axisa=0, axisb=-1, axisc=1)):
        _close(fnp.cross(fnp.asarray(a), fnp.asarray(b), **kw), np.cross(a, b, **kw))
    _close(fnp.cross(fnp.asarray(b.T), fnp.asarray(a), axis=0), np.cross(b.T, a, axis=0))
    check_grads(lambda x, y: fnp.cross(x, y, axisa=0), (fnp.asarray(a), fnp.asarray(b)),
                order=1)


def test_linalg_numpy_arguments():
    m = RNG.standard_normal((4, 4))
    _close(fnp.linalg.svd(fnp.asarray(m), compute_uv=False), np.linalg.svd(m, compute_uv=False),
           rtol=1e-8)
    for uplo in ("L", "U"):
        # only one triangle is read, so a non-symmetric input gives NumPy's answer
        _close(fnp.linalg.eigh(fnp.asarray(m), uplo).eigenvalues, np.linalg.eigh(m, uplo)[0],
               rtol=1e-8)
        _close(fnp.linalg.eigvalsh(fnp.asarray(m), UPLO=uplo), np.linalg.eigvalsh(m, UPLO=uplo),
               rtol=1e-8)
    low_rank = m[:, :2] @ m[:2, :]
    # an absolute tolerance (the default relative one is below the Gram-matrix SVD's accuracy)
    assert fnp.linalg.matrix_rank(fnp.asarray(low_rank), tol=1e-6).item() == 2
    assert fnp.linalg.matrix_rank(fnp.asarray(m), 1e3).item() == 0
    assert fnp.linalg.matrix_rank(fnp.asarray([0.0, 2.0])).item() == 1
    _close(fnp.linalg.pinv(fnp.asarray(low_rank), rcond=1e-8), np.linalg.pinv(low_rank, 1e-8),
           rtol=1e-6, atol=1e-8)
    _close(fnp.fft.fft(fnp.asarray(m), None, 0, None), np.fft.fft(m, None, 0, None), rtol=1e-8)


# --- NumPy functions on fnx arrays -----------------------------------------------------------

NP_REDUCTIONS = [
    ("sum", {}), ("sum", dict(axis=1, keepdims=True)), ("sum", dict(where=A > 0, initial=1.0)),
    ("prod", dict(axis=0)), ("mean", {}), ("mean", dict(axis=0)), ("std", {}),
    ("std", dict(ddof=1, axis=1)), ("var", dict(ddof=1)), ("max", {}), ("max", dict(axis=0)),
    ("min", dict(axis=1, keepdims=True)), ("amax", {}), ("amin", dict(axis=0)),
    ("argmax", {}), ("argmin", dict(axis=1)), ("all", dict(axis=0)), ("any", {}),
    ("clip", dict(a_min=-0.1, a_max=0.1)), ("round", dict(decimals=1)),
]


@pytest.mark.parametrize("name,kw", NP_REDUCTIONS,
                         ids=[f"{n}{i}" for i, (n, _) in enumerate(NP_REDUCTIONS)])
def test_numpy_functions_on_fnx_arrays(name, kw):
    x = X > 0 if name in ("all", "any") else X
    a = A > 0 if name in ("all", "any") else A
    out = getattr(np, name)(x, **kw)
    assert isinstance(out, fnx.Array), type(out)  # computed by fnx, not converted to NumPy
    _close(out, getattr(np, name)(a, **kw))


def test_numpy_functions_on_tracers():
    _close(fnx.jit(lambda x: np.sum(x, axis=0) + np.max(x))(X), A.sum(0) + A.max())
    _close(fnx.grad(lambda x: np.mean(x ** 2))(X), 2 * A / A.size)


@pytest.mark.parametrize("call", [
    lambda: np.sum(X, out=np.empty(())), lambda: np.mean(X, axis=0, out=np.empty(4)),
    lambda: fnp.add(X, X, out=X), lambda: fnp.sin(X, X), lambda: fnp.cumsum(X, out=X),
    lambda: fnp.matmul(X, X.T, out=X), lambda: fnp.linalg.svd(X) and fnp.fft.fft(X, out=X),
])
def test_out_arrays_are_refused(call):
    with pytest.raises(OutArgumentError, match="fnx arrays are immutable values.*Assign the "
                                               "result instead"):
        call()


def _ufunc_names():
    return sorted(n for n in dir(fnp) if isinstance(getattr(np, n, None), np.ufunc)
                  and callable(getattr(fnp, n)))


@pytest.mark.parametrize("name", _ufunc_names())
def test_every_ufunc_takes_out_none_and_refuses_arrays(name):
    nin = getattr(np, name).nin
    x = fnp.asarray([0.5, 1.5]) if name not in ("bitwise_and", "bitwise_or", "bitwise_xor",
                                                 "bitwise_left_shift", "bitwise_right_shift",
                                                 "bitwise_invert", "bitwise_not", "invert",
                                                 "left_shift", "right_shift") \
        else fnp.asarray([1, 2])
    args = (x,) * nin
    expected = getattr(fnp, name)(*args)
    _close(getattr(fnp, name)(*args, out=None), expected)
    _close(getattr(fnp, name)(*args, None), expected)  # out is positional, as in NumPy
    with pytest.raises(OutArgumentError, match=": out= cannot be an array"):
        getattr(fnp, name)(*args, out=fnp.zeros(2))


def test_ufunc_dtype_computes_in_that_dtype():
    big = fnp.asarray([100, 120], dtype=fnp.int8)
    out = fnp.add(big, big, dtype=fnp.int64)
    assert out.dtype == np.int64 and out.tolist() == [200, 240]  # no int8 wrap-around
    assert fnp.sin(fnp.asarray([1.0]), dtype="float64").dtype == np.float64
    assert fnp.less(X, 0.0, dtype=bool).dtype == np.bool_
    assert fnp.multiply(X, 2, dtype=fnp.float16).dtype == np.float16
    with pytest.raises(DTypeError, match="less: no implementation gives a float32 result"):
        fnp.less(X, 0.0, dtype=fnp.float32)
    with pytest.raises(DTypeError, match="sin: no implementation gives a int32 result"):
        fnp.sin(X, dtype=fnp.int32)


# --- the sign of a zero remainder ------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_remainder_sign_of_zero(dtype):
    # array API 2024.12: a zero result has the divisor's sign (NumPy and Python agree)
    x1 = [-0.0, 0.0, 6.0, -6.0, 5.0, -5.0, 0.0, -0.0, 7.5]
    x2 = [3.0, -3.0, -3.0, 3.0, 2.5, -2.5, 3.0, -3.0, -2.0]
    expected = np.remainder(np.asarray(x1, dtype), np.asarray(x2, dtype))
    fns = {"%": lambda a, b: a % b, "remainder": fnp.remainder, "mod": fnp.mod,
           "jit %": fnx.jit(lambda a, b: a % b)}
    for what, f in fns.items():
        out = np.asarray(f(fnp.asarray(x1, dtype=dtype), fnp.asarray(x2, dtype=dtype)))
        np.testing.assert_array_equal(out, expected, err_msg=what)
        np.testing.assert_array_equal(np.signbit(out), np.signbit(expected), err_msg=what)
    assert not np.signbit((fnp.asarray(-0.0, dtype=dtype) % 3.0).item())
    assert np.signbit((fnp.asarray(0.0, dtype=dtype) % -3.0).item())


# --- the new functions -----------------------------------------------------------------------

NEW_RECORDS = ["fnp.fabs", "fnp.fmax", "fnp.fmin", "fnp.logaddexp2", "fnp.angle", "fnp.append",
               "fnp.append_axis", "fnp.select", "fnp.rollaxis", "fnp.partition",
               "fnp.argpartition", "fnp.gradient", "fnp.gradient_edge2",
               "fnp.gradient_coordinates"]


@pytest.mark.parametrize("name", NEW_RECORDS)
def test_new_functions_jit_matches_eager(name):
    # op_db checks these against NumPy, by finite differences and under vmap; here jit
    rec = by_name(name)
    for i, shapes in enumerate(rec.shapes):
        args = [fnp.asarray(a) for a in
                sample_args(np.random.default_rng(i), rec, shapes, np.float32)]
        eager, compiled = rec.op(*args), fnx.jit(rec.op)(*args)
        _close(compiled, eager, rtol=1e-5, atol=1e-6)
        assert np.asarray(compiled).dtype == np.asarray(eager).dtype


def test_fmax_fmin_ignore_nan():
    nan = np.nan
    a = np.array([1.0, nan, nan, -0.5, np.inf])
    b = np.array([2.0, 3.0, nan, nan, 1.0])
    for name in ("fmax", "fmin"):
        _close(getattr(fnp, name)(fnp.asarray(a), fnp.asarray(b)), getattr(np, name)(a, b))
        assert getattr(fnp, name)(fnp.asarray([1, 5]), 3).tolist() == \
            getattr(np, name)([1, 5], 3).tolist()
    # the gradient goes to the number where the other input is NaN
    g = fnx.grad(lambda x: fnp.sum(fnp.fmax(x, fnp.asarray([nan, 0.0]))))(fnp.asarray([1.0, 2.0]))
    assert g.tolist() == [1.0, 1.0]


def test_logaddexp2_special_values():
    inf = np.inf
    a = np.array([-inf, inf, inf, 1000.0, -1000.0, 0.0])
    b = np.array([-inf, inf, 1.0, 1000.0, -1000.0, -inf])
    _close(fnp.logaddexp2(fnp.asarray(a), fnp.asarray(b)), np.logaddexp2(a, b))


def test_fabs_angle_real_if_close():
    assert fnp.fabs(fnp.asarray([-2, 3])).tolist() == [2.0, 3.0]
    with pytest.raises(DTypeError, match="fabs: not defined for complex"):
        fnp.fabs(fnp.asarray([1j]))
    z = np.array([1 + 1j, -1.0, -1j, 0.0, -0.0])
    _close(fnp.angle(fnp.asarray(z)), np.angle(z))
    _close(fnp.angle(fnp.asarray(z), deg=True), np.angle(z, deg=True), rtol=1e-5)
    _close(fnp.angle(fnp.asarray([-3.0, 0.0, 2.0])), np.angle([-3.0, 0.0, 2.0]))
    for tol in (100, 1e-3):
        for v in (np.array([1 + 1e-12j, 2.0]), np.array([1 + 1e-4j, 2.0])):
            got = fnp.real_if_close(fnp.asarray(v.astype(np.complex128)), tol=tol)
            want = np.real_if_close(v, tol=tol)
            assert np.asarray(got).dtype == want.dtype
            _close(got, want)
    assert fnp.real_if_close(X) is X
    with pytest.raises(ConcretizationError, match="real_if_close: whether the result is real"):
        fnx.jit(fnp.real_if_close)(fnp.asarray([1 + 0j]))


def test_append_select_errors():
    _close(fnp.append(X, [[1.0, 2.0, 3.0, 4.0]], axis=0), np.append(A, [[1, 2, 3, 4]], axis=0))
    with pytest.raises(ValueError, match="select: 2 conditions for 1 choices"):
        fnp.select([X > 0, X < 0], [X])
    with pytest.raises(TypeError, match="select: condition 0 has dtype float"):
        fnp.select([X], [X])
    x = np.arange(10.0)
    _close(fnp.select([fnp.asarray(x) < 3, fnp.asarray(x) > 5], [fnp.asarray(x), 2.0]),
           np.select([x < 3, x > 5], [x, 2.0]))


@pytest.mark.parametrize("kth", [0, 2, -1, [1, 3]])
def test_partition_property(kth):
    a = RNG.standard_normal((3, 5))
    out = np.asarray(fnp.partition(fnp.asarray(a), kth, axis=1))
    idx = np.asarray(fnp.argpartition(fnp.asarray(a), kth, axis=1))
    want = np.partition(a, kth, axis=1)
    for k in np.atleast_1d(kth):
        np.testing.assert_array_equal(out[:, k], want[:, k])
        assert (out[:, :k % 5] <= out[:, [k]]).all() and (out[:, k % 5:] >= out[:, [k]]).all()
        np.testing.assert_array_equal(np.take_along_axis(a, idx, 1)[:, k], want[:, k])
    _close(fnp.partition(fnp.asarray(a), 2, axis=None), np.sort(a, axis=None))
    with pytest.raises(ValueError, match="partition: kth=5 is out of bounds"):
        fnp.partition(fnp.asarray(a), 5)


def test_rollaxis_matches_numpy():
    a = np.ones((2, 3, 4, 5))
    for axis in range(-4, 4):
        for start in range(-4, 5):
            assert fnp.rollaxis(fnp.asarray(a), axis, start).shape == \
                np.rollaxis(a, axis, start).shape
    with pytest.raises(AxisError, match="rollaxis: start must be in"):
        fnp.rollaxis(fnp.asarray(a), 0, 5)


GRADIENT_CASES = [
    ((7,), (), {}), ((7,), (0.3,), dict(edge_order=2)), ((2,), (), {}),
    ((4, 5), (), {}), ((4, 5), (2.0,), dict(axis=-1)), ((4, 5), (1.0, 0.5), dict(edge_order=2)),
    ((4, 5), ("x0", "x1"), {}), ((4, 5), ("x0", 0.25), dict(edge_order=2)),
    ((3, 4, 5), ("x2",), dict(axis=2, edge_order=2)), ((3, 4, 5), (), dict(axis=(0, 2))),
]


@pytest.mark.parametrize("shape,spacing,kw", GRADIENT_CASES,
                         ids=[str(i) for i in range(len(GRADIENT_CASES))])
def test_gradient_matches_numpy(shape, spacing, kw):
    f = RNG.standard_normal(shape)
    coords = {f"x{i}": np.cumsum(RNG.uniform(0.2, 1.0, n)) for i, n in enumerate(shape)}
    np_args = [coords[s] if isinstance(s, str) else s for s in spacing]
    got = fnp.gradient(fnp.asarray(f), *[fnp.asarray(s) if isinstance(s, np.ndarray) else s
                                         for s in np_args], **kw)
    want = np.gradient(f, *np_args, **kw)
    if isinstance(want, tuple):
        assert isinstance(got, tuple) and len(got) == len(want)
        for g, w in zip(got, want):
            _close(g, w, rtol=1e-10, atol=1e-12)
    else:
        _close(got, want, rtol=1e-10, atol=1e-12)


def test_gradient_derivatives_and_errors():
    f = fnp.asarray(RNG.standard_normal((4, 3)))
    x = fnp.asarray(np.cumsum(RNG.uniform(0.5, 1.0, 4)))
    check_grads(lambda f, x: fnp.gradient(f, x, 1.0, edge_order=2), (f, x), order=2)
    with pytest.raises(ValueError, match="gradient: axis 0 of shape .* has 2 points; "
                                         "edge_order=2 needs at least 3"):
        fnp.gradient(fnp.ones((2, 3)), edge_order=2)
    with pytest.raises(TypeError, match="gradient: 3 spacings given for 2 axes"):
        fnp.gradient(f, 1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="coordinates of shape \\(3,\\) for axis 0 of length 4"):
        fnp.gradient(f, fnp.ones(3), 1.0)


R_CASES = [
    lambda m: m.r_[1:4, 0, m.asarray([7, 8])],
    lambda m: m.r_[-1:1:5j],
    lambda m: m.r_[0:10:3, 2.5],
    lambda m: m.r_["0,2", [1, 2], [3, 4]],
    lambda m: m.r_["-1,2,0", [1, 2], [3, 4]],
    lambda m: m.r_["1,3", m.ones((2, 2)), m.zeros((2, 2))],
    lambda m: m.r_["0,3,0", m.asarray([[1, 2, 3], [4, 5, 6]])],
    lambda m: m.r_["0,3,1", [1, 2]],
    lambda m: m.r_["0,2,1", [1, 2, 3]],
    lambda m: m.c_[m.asarray([1, 2, 3]), m.asarray([4, 5, 6])],
    lambda m: m.c_[m.ones((2, 2)), m.zeros(2)],
    lambda m: m.r_[m.ones((2, 3)), m.zeros((1, 3))],
]


@pytest.mark.parametrize("case", R_CASES, ids=[str(i) for i in range(len(R_CASES))])
def test_r_and_c_match_numpy(case):
    got, want = case(fnp), case(np)
    _close(got, want)
    assert np.asarray(got).dtype.kind == want.dtype.kind


def test_r_c_under_jit_and_errors():
    f = fnx.jit(lambda a, b: fnp.c_[a, b] * 2)
    _close(f(fnp.asarray([1.0, 2.0]), fnp.asarray([3.0, 4.0])), [[2, 6], [4, 8]])
    with pytest.raises(ValueError, match="matrix directive 'r' is not supported"):
        fnp.r_["r", [1, 2]]
    with pytest.raises(ValueError, match="a string directive must come first"):
        fnp.r_[[1], "0"]


def test_hypot_scales_instead_of_squaring_and_converts_ints_first():
    from fnx.testing import check_grads

    cases = [(np.float32([3e30, 0, 3, 1e-30]), np.float32([4e30, -0.0, -4, 1e-30])),
             (np.float16([300]), np.float16([400])),
             (np.float64([np.inf, np.nan, -np.inf, np.nan]), np.float64([np.nan, np.inf, 1, 2]))]
    for x, y in cases:
        for f in (fnp.hypot, fnx.jit(fnp.hypot)):
            out = f(fnp.asarray(x), fnp.asarray(y))
            assert out.dtype == x.dtype
            np.testing.assert_allclose(np.asarray(out), np.hypot(x, y), rtol=1e-6)
    # ints convert (to fnx's default float; NumPy picks float16 for int8) before squaring:
    # int8 127**2 and int64 3e9**2 wrap otherwise
    for x, y in [(np.int8([12, 127]), np.int8([0, -128])),
                 (np.int64([3_000_000_000]), np.int64([4_000_000_000]))]:
        expected = np.hypot(x.astype(np.float64), y.astype(np.float64))
        for f in (fnp.hypot, fnx.jit(fnp.hypot)):
            np.testing.assert_allclose(np.asarray(f(fnp.asarray(x), fnp.asarray(y))), expected,
                                       rtol=1e-6)
    check_grads(fnp.hypot, (np.array([3.0, -0.5, 2.0]), np.array([-4.0, 1.5, 2.0])), order=2)
    g = fnx.grad(lambda x, y: fnp.hypot(x, y), argnums=(0, 1))(0.0, 0.0)  # docs/transforms.md
    assert [float(v) for v in g] == [0.0, 0.0]


def test_floating_point_errors_are_silent_and_the_callers_state_is_kept():
    # overflow, 0/0 and log(-1) give inf/nan without a warning (as JAX and PyTorch), under any
    # NumPy error state the caller set, which is in force again after each op
    x = fnp.asarray([0.0, 1.0, 1e30], dtype=fnp.float32)
    with np.errstate(all="raise"):
        out = [fnp.exp(x), 1 / x, fnp.log(x - 1), x.astype(fnp.float16), (-x).sigmoid()]
        with pytest.raises(FloatingPointError):
            np.float32(1) / np.float32(0)
    np.testing.assert_array_equal(np.asarray(out[0]), np.exp(np.float32([0, 1, np.inf])))
    assert np.asarray(out[1])[0] == np.inf and np.isnan(np.asarray(out[2])[0:2]).sum() == 1
    assert np.asarray(out[3])[2] == np.inf
