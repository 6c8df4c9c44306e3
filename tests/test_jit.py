"""fnx.jit vs eager: every elementwise primitive, reductions, compositions, errors."""

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx
import fnx.numpy as fnp
from fnx.core.errors import ConcretizationError
from fnx.core.primitive import PRIMITIVES
from fnx.jit import scalar

ELEMENTWISE = sorted(name for name, p in PRIMITIVES.items()
                     if p.fusion_kind == "elementwise" and p.scalar_expr and name != "iota")
SPECIAL_PARAMS = {"convert_element_type": dict(new_dtype=np.dtype("int32")),
                  "bitcast_convert_type": dict(new_dtype=np.dtype("int32")),
                  "integer_pow": dict(y=3)}
INT_ONLY = {"shift_left", "shift_right", "population_count", "and", "or", "xor", "not"}
NARGS = {"select": 3}


def _inputs(name, rng, shape=(3, 5)):
    prim = PRIMITIVES[name]
    n = NARGS.get(name, 2 if prim.scalar_expr.count("{1}") else 1)
    if name in INT_ONLY:
        xs = [rng.integers(-20, 20, shape).astype(np.int32) for _ in range(n)]
        if name.startswith("shift"):
            xs[1] = rng.integers(-2, 40, shape).astype(np.int32)
        return xs
    xs = [rng.uniform(0.1, 0.9, shape).astype(np.float32) for _ in range(n)]
    if name == "select":
        xs[0] = rng.uniform(size=shape) > 0.5
    if name in ("acosh",):
        xs[0] = xs[0] + 1.5
    return xs


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_elementwise_primitive_jit_matches_eager(name, rng):
    prim = PRIMITIVES[name]
    params = SPECIAL_PARAMS.get(name, {})
    xs = [fnp.asarray(x) for x in _inputs(name, rng)]
    f = fnx.jit(lambda *a: prim.bind(*a, **params))
    got, want = f(*xs), prim.bind(*xs, **params)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_allclose(np.asarray(got._buf, np.complex128),
                               np.asarray(want._buf, np.complex128), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_scalar_reference_evaluator_matches_impl(name, rng):
    prim = PRIMITIVES[name]
    params = SPECIAL_PARAMS.get(name, {})
    xs = _inputs(name, rng, shape=(4,))
    want = prim.impl(*xs, **params)
    for i in range(4):
        got = scalar.evaluate(prim.scalar_expr, params, [x[i] for x in xs])
        np.testing.assert_allclose(np.complex128(got), np.complex128(want[i]), rtol=2e-6, atol=1e-7)


def test_vocabulary_table_is_complete():
    for name in ["div", "fmod", "power", "ipow", "maximum", "minimum", "arctan2", "nextafter",
                 "copysign", "exp", "exp2", "log", "expm1", "log1p", "tanh", "logistic", "sin",
                 "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "arcsinh",
                 "arccosh", "arctanh", "sqrt", "cbrt", "erf", "erf_inv", "lgamma", "digamma",
                 "sign", "floor", "ceil", "rint", "trunc", "abs", "real", "imag", "conj",
                 "complex", "isfinite", "isnan", "isinf", "bnot", "shl", "shr", "popcount",
                 "where", "cast", "bitcast", "index", "+", "-", "*", "/", "%", "&", "|", "^",
                 "<", "<=", ">", ">=", "==", "!="]:
        entry = scalar.OPS[name]
        assert callable(entry.cpu) and callable(entry.cuda)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.int64])
def test_integer_arithmetic_keeps_dtype_and_wraps(dtype, rng):
    x = fnp.asarray(rng.integers(-100, 100, (7,)).astype(dtype))
    y = fnp.asarray(rng.integers(1, 9, (7,)).astype(dtype))
    f = fnx.jit(lambda a, b: (a * b + a) // b - a % b)
    np.testing.assert_array_equal(f(x, y)._buf, ((x * y + x) // y - x % y)._buf)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.sampled_from([np.float32, np.float64]))
def test_fused_chain_with_broadcasting(n, m, dtype):
    rng = np.random.default_rng(n * 7 + m)
    x = fnp.asarray(rng.standard_normal((n, m)).astype(dtype))
    b = fnp.asarray(rng.standard_normal((m,)).astype(dtype))

    def f(x, b):
        return fnp.tanh(x * 0.5 + b) * fnx.numpy.exp(-x) + 0.1 * x * x

    np.testing.assert_allclose(fnx.jit(f)(x, b)._buf, f(x, b)._buf, rtol=1e-5, atol=1e-6)


REDUCTIONS = [
    lambda x: fnp.sum(x, axis=1), lambda x: fnp.sum(x, axis=0), lambda x: fnp.sum(x),
    lambda x: fnp.max(x, axis=1), lambda x: fnp.min(x, axis=0), lambda x: fnp.mean(x, axis=-1),
    lambda x: fnp.argmax(x, axis=1), lambda x: fnp.argmin(x, axis=1),
    lambda x: fnp.prod(x, axis=1),
    lambda x: fnp.sum(fnp.exp(x - fnp.max(x, axis=1, keepdims=True)), axis=1),
]


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 5), st.integers(1, 7), st.integers(0, len(REDUCTIONS) - 1))
def test_reductions_match_eager(n, m, k):
    rng = np.random.default_rng(n + 10 * m)
    x = fnp.asarray(rng.standard_normal((n, m)).astype(np.float32))
    f = REDUCTIONS[k]
    np.testing.assert_allclose(fnx.jit(f)(x)._buf, f(x)._buf, rtol=1e-5, atol=1e-5)


def test_max_reduction_propagates_nan():
    x = fnp.asarray(np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 0.0]], np.float32))
    got = fnx.jit(lambda x: fnp.max(x, axis=1))(x)._buf
    assert np.isnan(got[0]) and got[1] == 2.0


def _mlp_loss(params, x, y):
    (w1, b1), (w2, b2) = params
    h = fnp.maximum(x @ w1 + b1, 0.0)
    logits = h @ w2 + b2
    m = fnp.max(logits, axis=1, keepdims=True)
    lse = fnp.log(fnp.sum(fnp.exp(logits - m), axis=1)) + m[:, 0]
    onehot = (y[:, None] == fnp.arange(logits.shape[1])[None, :]).astype(logits.dtype)
    return fnp.mean(lse - fnp.sum(logits * onehot, axis=1))


@pytest.fixture
def mlp(rng):
    params = [(fnp.asarray(rng.standard_normal((6, 8)).astype(np.float32) * 0.3),
               fnp.asarray(rng.standard_normal(8).astype(np.float32) * 0.1)),
              (fnp.asarray(rng.standard_normal((8, 4)).astype(np.float32) * 0.3),
               fnp.asarray(rng.standard_normal(4).astype(np.float32) * 0.1))]
    x = fnp.asarray(rng.standard_normal((5, 6)).astype(np.float32))
    y = fnp.asarray(rng.integers(0, 4, 5))
    return params, x, y


def _close(a, b, tol=1e-5):
    for u, v in zip(fnx.tree.leaves(a), fnx.tree.leaves(b), strict=True):
        np.testing.assert_allclose(u._buf, v._buf, rtol=tol, atol=tol)


def test_jit_of_grad_and_grad_of_jit(mlp):
    params, x, y = mlp
    want = fnx.grad(_mlp_loss)(params, x, y)
    _close(fnx.jit(fnx.grad(_mlp_loss))(params, x, y), want)
    _close(fnx.grad(fnx.jit(_mlp_loss))(params, x, y), want)
    _close(fnx.jit(fnx.grad(fnx.jit(_mlp_loss)))(params, x, y), want)


def test_vmap_of_jit_and_jit_of_vmap_of_grad(mlp):
    params, x, y = mlp
    xs = fnp.stack([x, x * 2.0, -x])
    per = [_mlp_loss(params, xs[i], y) for i in range(3)]
    got = fnx.vmap(fnx.jit(_mlp_loss), in_axes=(None, 0, None))(params, xs, y)
    np.testing.assert_allclose(got._buf, np.array([p._buf for p in per]), rtol=1e-5)
    g = fnx.jit(fnx.vmap(fnx.grad(_mlp_loss), in_axes=(None, 0, None)))(params, xs, y)
    for i in range(3):
        gi = fnx.grad(_mlp_loss)(params, xs[i], y)
        _close(fnx.tree.map(lambda a: a[i], g), gi)


def test_jvp_of_jit_and_jit_inside_jit(rng):
    f = fnx.jit(lambda x: fnp.sin(x) * x)
    x = fnp.asarray(rng.standard_normal(5).astype(np.float32))
    t = fnp.ones(5)
    y, ty = fnx.jvp(f, (x,), (t,))
    np.testing.assert_allclose(ty._buf, (fnp.cos(x) * x + fnp.sin(x))._buf, rtol=1e-5)
    outer = fnx.jit(lambda x: f(x) + f(2.0 * x))
    np.testing.assert_allclose(outer(x)._buf, (f(x) + f(2.0 * x))._buf, rtol=1e-6)
    assert "jit_call" not in outer.lower(x).ir  # inlined


def test_pytrees_static_args_and_kwargs():
    def f(d, n, scale=1.0):
        return {"s": (d["a"] * n + d["b"]) * scale, "n": d["a"].sum()}

    jf = fnx.jit(f, static_argnums=(1,), static_argnames=("scale",))
    d = {"a": fnp.ones(3), "b": fnp.arange(3.0)}
    out = jf(d, 2, scale=3.0)
    np.testing.assert_allclose(out["s"]._buf, [6.0, 9.0, 12.0])
    assert float(out["n"]) == 3.0
    jf(d, 3, scale=3.0)
    assert any("static" in r for r in jf.cache_info().misses)


def test_python_control_flow_on_traced_value_names_the_function():
    def branchy(x):
        if x.sum() > 0:
            return x
        return -x

    with pytest.raises(ConcretizationError, match="branchy.*(static_argnums|fnp.where)"):
        fnx.jit(branchy)(fnp.ones(3))


def test_fallback_warning_names_primitive(monkeypatch):
    from fnx.core.ops.elementwise import sin_p
    from fnx.jit import executable

    monkeypatch.setattr(sin_p, "fusion_kind", "opaque")
    monkeypatch.setattr(executable, "_warned", set())
    with pytest.warns(UserWarning, match="primitive 'sin' has no compiled lowering"):
        out = fnx.jit(lambda x: fnp.sin(x) + 1.0)(fnp.zeros(2))
    np.testing.assert_allclose(out._buf, [1.0, 1.0])


def test_lower_exposes_ir_kernels_and_source():
    f = fnx.jit(lambda x: fnp.exp(x * 2.0) + 1.0)
    lo = f.lower(fnp.ones((2, 3)))
    assert "exp" in lo.ir and "kernel 0" in lo.kernels
    assert "@numba.njit(cache=True" in lo.source and "_vm.vexp" in lo.source
    assert lo.compile() is f


def test_float16_and_complex_run_eagerly_inside_jit():
    x = fnp.asarray(np.array([1.0, 2.0], np.float16))
    np.testing.assert_allclose(fnx.jit(lambda x: x * 2.0 + 1.0)(x)._buf, [3.0, 5.0])
    z = fnp.asarray(np.array([1 + 2j], np.complex64))
    np.testing.assert_allclose(fnx.jit(lambda z: z * z)(z)._buf, [(1 + 2j) ** 2])


def test_no_warnings_for_declared_lowerings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f = fnx.jit(lambda x: fnp.transpose(x) @ x + fnp.arange(3.0))
        f(fnp.ones((3, 3)))


# --- integer division and remainder edge cases, float remainder's sign of zero (issue 7) -------

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


def _edge_pairs(dtype):
    """Every pair of the edge values of an integer dtype (its extremes, 0, +-1, 7)."""
    info = np.iinfo(dtype)
    vals = {int(info.min), int(info.min) + 1, 0, 1, 7, int(info.max) - 1, int(info.max)}
    if info.min < 0:
        vals |= {-1, -7}
    vals = sorted(vals)
    a = np.array([x for x in vals for _ in vals], dtype)
    b = np.array([y for _ in vals for y in vals], dtype)
    return a, b


def _div(x, y):
    from fnx.core.ops.elementwise import div_p

    return div_p.bind(x, y)


def _rem(x, y):
    from fnx.core.ops.elementwise import rem_p

    return rem_p.bind(x, y)


@pytest.mark.parametrize("dtype", INT_DTYPES)
def test_integer_division_edge_cases_jit_matches_eager_and_numpy(dtype):
    # INT_MIN // -1 wraps to INT_MIN and x // 0 == x % 0 == 0, as NumPy (jit gave 0 for
    # INT64_MIN // -1, and lost precision on uint64 quotients above 2**53)
    a, b = _edge_pairs(dtype)
    fa, fb = fnp.asarray(a), fnp.asarray(b)
    with np.errstate(all="ignore"):
        cases = [(fnp.floor_divide, np.floor_divide(a, b)), (fnp.remainder, np.remainder(a, b)),
                 (fnp.fmod, np.fmod(a, b)), (_rem, np.fmod(a, b)), (_div, None)]
    for f, ref in cases:
        eager, jitted = f(fa, fb)._buf, fnx.jit(f)(fa, fb)._buf
        assert jitted.dtype == eager.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(jitted, eager, err_msg=f"{f.__name__} {a} {b}")
        if ref is not None:
            np.testing.assert_array_equal(eager, ref, err_msg=f"{f.__name__} {a} {b}")
    assert fnx.jit(_div)(fa, fb)._buf[(a == np.iinfo(dtype).max) & (b == 1)].item() == \
        np.iinfo(dtype).max


def _same_floats(x, y):
    return np.array_equal(x, y, equal_nan=True) and np.array_equal(np.signbit(x), np.signbit(y))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_remainder_sign_of_zero_jit_matches_eager(dtype):
    # array API 2024.12: -0.0 % 3.0 is +0.0 and 0.0 % -3.0 is -0.0 (the divisor's sign);
    # fmod keeps the dividend's
    vals = [-0.0, 0.0, 3.0, -3.0, 6.0, -6.0, 1.5, np.inf, -np.inf, np.nan]
    a = np.array([x for x in vals for _ in vals], dtype)
    b = np.array([y for _ in vals for y in vals], dtype)
    fa, fb = fnp.asarray(a), fnp.asarray(b)
    for f, ref in [(fnp.remainder, np.remainder), (fnp.fmod, np.fmod), (_rem, np.fmod)]:
        eager, jitted = f(fa, fb)._buf, fnx.jit(f)(fa, fb)._buf
        with np.errstate(all="ignore"):
            want = ref(a, b)
        assert _same_floats(jitted, eager) and _same_floats(eager, want), f.__name__
    got = fnx.jit(lambda x, y: x % y)(fnp.asarray(np.array([-0.0, 0.0], dtype)),
                                      fnp.asarray(np.array([3.0, -3.0], dtype)))._buf
    assert got.tolist() == [0.0, 0.0] and np.signbit(got).tolist() == [False, True]


def test_remainder_template_matches_numpy_remainder():
    # the scalar vocabulary's '%' (Python's remainder: the divisor's sign, also on zeros)
    from fnx.core.ops.family import elementwise

    prim = elementwise("test_pymod", 2, np.remainder, "({0} % {1})", "real")
    try:
        f = fnx.jit(lambda x, y: prim.bind(x, y))
        for dtype in (np.float32, np.float64, np.int32, np.int64, np.uint8):
            if np.dtype(dtype).kind == "f":
                a = np.array([-0.0, 0.0, 7.0, -7.0, 7.0, np.inf, 2.0], dtype)
                b = np.array([3.0, -3.0, -3.0, 3.0, np.inf, 3.0, 0.0], dtype)
            else:
                a, b = _edge_pairs(dtype)
            with np.errstate(all="ignore"):
                want = np.remainder(a, b)
            got = f(fnp.asarray(a), fnp.asarray(b))._buf
            assert _same_floats(got, want), (dtype, got, want)
            for i in range(len(a)):
                ref = scalar.evaluate("({0} % {1})", {}, [a[i], b[i]])
                assert _same_floats(np.asarray(ref), want[i:i + 1][0]), (a[i], b[i], ref)
    finally:
        PRIMITIVES.pop("test_pymod", None)


ZERO_D_VALUES = {np.int32: [-7, -1, 0, 1, 5], np.float32: [-2.5, -0.0, 0.0, 0.5, np.nan],
                 np.bool_: [False, True]}


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_every_elementwise_primitive_on_0d_operands_jit_matches_eager(name):
    # a loop-free group runs its rendered statements as plain Python on NumPy scalars
    # (codegen.cpu.host_kernel), not in Numba: the templates must mean the same there
    prim = PRIMITIVES[name]
    params = SPECIAL_PARAMS.get(name, {})
    n = NARGS.get(name, 2 if prim.scalar_expr.count("{1}") else 1)
    f = fnx.jit(lambda *a: prim.bind(*a, **params))
    for dtype, values in ZERO_D_VALUES.items():
        for i in range(len(values)):
            xs = [fnp.asarray(np.array(values[(i + k) % len(values)], dtype)) for k in range(n)]
            if name == "select":
                xs[0] = fnp.asarray(np.array(values[i] != 0))
            try:
                want = prim.bind(*xs, **params)
            except Exception:  # not defined for this dtype
                break
            got = f(*xs)
            assert got.dtype == want.dtype and got.shape == want.shape == ()
            np.testing.assert_allclose(np.complex128(got._buf), np.complex128(want._buf),
                                       rtol=2e-6, atol=1e-7, equal_nan=True,
                                       err_msg=f"{name} of {[x._buf for x in xs]}")


def test_integer_sign_of_a_0d_value_runs_as_plain_python():
    # the loop-free group stays off Numba (no helper or builtin in its template)
    x = fnp.asarray(np.array([-3, 0, 4], np.int32))
    f = fnx.jit(fnp.sign)
    assert "# plain Python" in f.lower(x[0]).source
    np.testing.assert_array_equal([f(x[i])._buf for i in range(3)], [-1, 0, 1])
    np.testing.assert_array_equal(f(x)._buf, [-1, 0, 1])  # the Numba kernel: same template


@pytest.mark.parametrize("dtype", ["int8", "int16", "int32", "int64", "uint8", "uint16",
                                   "uint32", "uint64"])
def test_shifts_with_out_of_range_counts_jit_matches_eager(dtype):
    """The branch-free shift template: counts of 0 .. bits - 1, bits and beyond, and negative
    ones give eager's results (0, or the sign fill of an arithmetic right shift) in kernels and
    in the 0-d plain-Python path, in the operands' dtype."""
    info, bits = np.iinfo(dtype), np.dtype(dtype).itemsize * 8
    xs = [0, 1, 3, info.max, info.min, -5 if info.min < 0 else 5]
    counts = [0, 1, bits // 2, bits - 1, bits, bits + 1, 100]
    counts += [-1, -bits, info.min] if info.min < 0 else [info.max]
    x, y = (a.ravel().astype(dtype) for a in np.meshgrid(xs, counts))
    for op in (fnp.bitwise_left_shift, fnp.bitwise_right_shift):
        want = np.asarray(op(fnp.asarray(x), fnp.asarray(y)))
        got = fnx.jit(op)(fnp.asarray(x), fnp.asarray(y))._buf
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        for i in (0, len(x) // 2, len(x) - 1):  # 0-d: plain Python on NumPy scalars
            np.testing.assert_array_equal(fnx.jit(op)(fnp.asarray(x[i]), fnp.asarray(y[i]))._buf,
                                          want[i])


@pytest.mark.parametrize("dtype", ["int8", "int32", "uint16", "uint64"])
def test_shifts_by_constant_counts_jit_matches_eager(dtype):
    """A count known when the kernel is generated (in range: a plain shift; out of range or
    negative: the general template) gives eager's results."""
    info, bits = np.iinfo(dtype), np.dtype(dtype).itemsize * 8
    x = fnp.asarray(np.array([0, 1, 5, info.max, info.min, info.max // 7], dtype))
    counts = [0, 1, bits - 1, bits, bits + 3] + ([-1, -bits] if info.min < 0 else [])
    for c in counts:
        count = np.array(c, dtype)
        for op in (fnp.bitwise_left_shift, fnp.bitwise_right_shift):
            want = np.asarray(op(x, count))
            got = fnx.jit(lambda v, op=op, count=count: op(v, count))(x)._buf
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
