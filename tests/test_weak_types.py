"""Weak types (docs/transforms.md "Dtypes under transforms"): Python scalars promote weakly
the same way eagerly and under jit, vmap, grad and jvp, whether they are closed over or
passed as arguments; NumPy scalars are strong; one rule decides eager and traced dtypes."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core import tracing
from fnx.core.errors import DTypeError, TraceError

ARRAY_DTYPES = [np.int8, np.int32, np.uint8, np.float16, np.float32, np.float64, np.complex64]
PY_SCALARS = [3, 2.5, 1 + 2j, True]
NP_SCALARS = [np.float64(1.5), np.int32(3), np.float32(2.0)]
SCALARS = PY_SCALARS + NP_SCALARS


def _array(dt, shape=(3,)):
    return fnp.asarray(np.arange(1, 1 + int(np.prod(shape))).reshape(shape).astype(dt))


def _scalar_id(s):
    return f"{type(s).__name__}({s})"


def _ops(x, c):
    """Mixed-operand expressions users write: both operand orders, and the fnp functions."""
    return [x * c, c + x, x - c, fnp.multiply(c, x)]


@pytest.mark.parametrize("dt", ARRAY_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("c", SCALARS, ids=_scalar_id)
def test_eager_jit_vmap_jvp_agree_on_dtypes(dt, c):
    x = _array(dt)
    eager = [o.dtype for o in _ops(x, c)]
    as_arg = fnx.jit(lambda x, c: _ops(x, c))(x, c)
    closed = fnx.jit(lambda x: _ops(x, c))(x)
    batched = fnx.vmap(lambda x, c: _ops(x, c), in_axes=(0, None))(_array(dt, (2, 3)), c)
    assert [o.dtype for o in as_arg] == eager
    assert [o.dtype for o in closed] == eager
    assert [o.dtype for o in batched] == eager
    if np.dtype(dt).kind in "fc":
        _, tangents = fnx.jvp(lambda x: _ops(x, c), (x,), (fnp.ones_like(x),))
        assert [o.dtype for o in tangents] == eager


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64], ids=lambda d: d.__name__)
@pytest.mark.parametrize("c", [2.5, 3, np.float64(1.5), np.float32(2.0)], ids=_scalar_id)
def test_grad_sees_the_eager_dtypes(dt, c):
    x = _array(dt)
    seen = []

    def loss(x, c):
        y = x * c
        seen.append(y.dtype)
        return y.sum().astype(fnp.float32)

    fnx.grad(loss)(x, c)
    if isinstance(c, float):  # differentiated, the scalar is converted like any argument
        fnx.grad(loss, argnums=1)(x, c)
    assert set(seen) == {(x * c).dtype}


@pytest.mark.parametrize("dt", ARRAY_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("c", SCALARS, ids=_scalar_id)
def test_same_kind_promotion_matches_numpy(dt, c):
    # NEP 50 (NumPy 2): Python scalars are weak, NumPy scalars strong, as in fnx. Where a
    # NumPy scalar is of the array's kind, or a Python scalar's kind does not exceed it, fnx
    # gives NumPy's dtype; across kinds it follows JAX/PyTorch (int64 + float32 -> float32)
    order = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}
    kind, akind = np.asarray(c).dtype.kind, np.dtype(dt).kind
    python = type(c) in (bool, int, float, complex)
    if not (kind == akind or python and order[kind] <= order[akind]):
        pytest.skip("across kinds fnx follows JAX/PyTorch, not NumPy")
    x = np.arange(1, 4).astype(dt)
    assert (_array(dt) * c).dtype == (x * c).dtype


@pytest.mark.parametrize("expr, dtype", [
    (lambda: _array(np.int32) * 2, np.int32),
    (lambda: _array(np.float16) * 2.0, np.float16),
    (lambda: _array(np.int8) * 2.5, np.float32),
    (lambda: _array(np.uint8) + 3, np.uint8),
    (lambda: _array(np.float16) * 1j, np.complex64),
    (lambda: _array(np.float64) * 1j, np.complex128),
    (lambda: _array(np.bool_) + 1, np.int64),
    (lambda: _array(np.int8) + True, np.int8),
    (lambda: _array(np.float32) * np.float64(2.0), np.float64),
    (lambda: _array(np.float16) * np.float32(2.0), np.float32),
    (lambda: _array(np.int8) * np.int32(2), np.int32),
    (lambda: fnp.add(np.float64(1.5), 2.0), np.float64),
    (lambda: fnp.add(np.float32(1.5), 2), np.float32),
    (lambda: fnp.asarray(np.float64(1.5)) * _array(np.float32), np.float64),
    (lambda: fnp.asarray(np.ones((), np.float64)) * _array(np.float32), np.float64),
])
def test_result_dtypes(expr, dtype):
    assert expr().dtype == np.dtype(dtype)


def test_learning_rate_as_an_argument_keeps_float16():
    p = fnp.asarray([1.0, 2.0], dtype=fnp.float16)
    step = fnx.jit(lambda p, lr: p - lr * p)
    assert step(p, 0.1).dtype == fnp.float16
    assert fnx.vmap(lambda p, lr: p - lr * p, in_axes=(0, None))(p, 0.1).dtype == fnp.float16

    def sgd(p, lr):
        g = fnx.grad(lambda p: (p.astype(fnp.float32) ** 2).sum())(p)
        return p - lr * g

    out = fnx.jit(sgd)(p, 0.1)
    assert out.dtype == fnp.float16
    np.testing.assert_allclose(np.asarray(out), np.asarray(sgd(p, 0.1)))
    # a differentiated Python-scalar argument is weak too
    g = fnx.grad(lambda lr, p: (p - lr * p).astype(fnp.float32).sum())(0.1, p)
    assert g.item() == pytest.approx(-3.0)


def test_jit_trace_key_has_weak_types():
    x = _array(np.int32)
    f = fnx.jit(lambda x, n: x * n)
    assert f(x, 2).dtype == fnp.int32
    assert f(x, np.int64(2)).dtype == fnp.int64  # strong: a different trace
    assert f(x, fnp.asarray(2)).dtype == fnp.int32  # a weak 0-d array: the first trace again
    assert f(x, fnp.asarray(2, dtype=fnp.int64)).dtype == fnp.int64
    info = f.cache_info()
    assert info.traces == 2 and info.hits == 2, info
    assert "weak types" in info.misses[1]


def test_results_of_weak_operands_stay_weak():
    f16 = _array(np.float16)
    assert fnp.sin(2.0).aval.weak_type
    assert (fnp.sin(2.0) * f16).dtype == fnp.float16
    assert (fnp.asarray(2) * 2.5).aval.weak_type  # int and float weak: a weak float
    assert fnx.jit(lambda c: fnp.sin(c) * 3)(2.0).aval.weak_type
    assert (fnx.jit(lambda c: fnp.sin(c) * 3)(2.0) * f16).dtype == fnp.float16
    assert fnx.vmap(lambda x, c: x + c * 2.0, in_axes=(0, None))(f16, 1.0).dtype == fnp.float16
    ir = str(fnx.make_ir(lambda c, d: c * d)(2, 3.0))
    assert "a:i64[]{weak}" in ir and "weak_type=True" in ir


def test_explicit_conversions_are_strong():
    f16 = _array(np.float16)
    for strong in (fnp.asarray(2.0, dtype=fnp.float32), fnp.asarray(2.0).astype(fnp.float32),
                   fnp.asarray(np.float32(2.0)), fnx.lax.convert_element_type(
                       fnp.asarray(2.0), fnp.float32)):
        assert not strong.aval.weak_type
        assert (strong * f16).dtype == fnp.float32
    assert fnx.jit(lambda c: c.astype(fnp.float32) * f16)(2.0).dtype == fnp.float32
    assert fnx.jit(lambda c: fnp.astype(c, fnp.float32) * f16)(2.0).dtype == fnp.float32
    assert (fnp.astype(fnp.asarray(2.0), fnp.float32, copy=False) * f16).dtype == fnp.float32


def _python_scan(f, init, xs):
    carry, ys = init, []
    for x in xs:
        carry, y = f(carry, x)
        ys.append(y)
    return carry, fnp.stack(ys)


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.int32], ids=lambda d: d.__name__)
@pytest.mark.parametrize("init", [0, 0.0, np.float32(0)], ids=_scalar_id)
def test_loops_carry_what_the_python_loop_would(dt, init):
    # a carry started from a Python scalar takes its update's dtype (JAX's rule)
    xs = _array(dt, (4,))
    body = lambda c, x: (c + x, c * 2)  # noqa: E731
    expected = _python_scan(body, init, xs)
    for scan in (fnx.lax.scan, fnx.jit(fnx.lax.scan, static_argnums=0)):
        carry, ys = scan(body, init, xs)
        assert (carry.dtype, ys.dtype) == (expected[0].dtype, expected[1].dtype)
        np.testing.assert_array_equal(np.asarray(carry), np.asarray(expected[0]))
    loop = fnx.lax.fori_loop(0, 4, lambda i, c: c + xs[i] * i, init)
    while_ = fnx.lax.while_loop(lambda c: c[0] < 4, lambda c: (c[0] + 1, c[1] + xs[c[0]]),
                                (0, init))[1]
    assert loop.dtype == while_.dtype == expected[0].dtype


def test_control_flow_weak_types():
    f16 = _array(np.float16)
    xs = fnp.arange(4.0)
    carry, _ = fnx.lax.scan(lambda c, x: (c + x, c * x), 0.0, xs)
    assert carry.item() == 6.0 and carry.dtype == fnp.float32
    assert fnx.lax.while_loop(lambda c: c < 10.0, lambda c: c * 2.0, 1.0).item() == 16.0
    out = fnx.lax.cond(True, lambda: 1.0, lambda: 2.0)
    assert out.aval.weak_type and (out * f16).dtype == fnp.float16
    out = fnx.jit(lambda p: fnx.lax.cond(p, lambda: 1.0, lambda: fnp.ones(())))(True)
    assert not out.aval.weak_type
    # an operand promotes inside a branch as it would outside
    assert fnx.lax.cond(True, lambda c: c * f16, lambda c: f16, 2.0).dtype == fnp.float16
    assert fnx.lax.fori_loop(0, 3, lambda i, x: x + i, _array(np.int8)).dtype == fnp.int8


@pytest.mark.parametrize("op, ref", [("add", np.add), ("multiply", np.multiply)])
def test_bool_arithmetic_is_the_same_eagerly_and_traced(op, ref):
    a = np.array([True, True, False, False])
    b = np.array([True, False, True, False])
    f = getattr(fnp, op)
    expected = ref(a, b)
    x, y = fnp.asarray(a), fnp.asarray(b)
    for out in (f(x, y), fnx.jit(f)(x, y), fnx.vmap(f)(x, y), f(x, True),
                fnx.lax.scan(lambda c, xy: (f(c, xy[0]), f(xy[0], xy[1])), False,
                             fnp.stack([x, y], axis=1))[1]):
        assert out.dtype == fnp.bool_
    np.testing.assert_array_equal(np.asarray(fnx.jit(f)(x, y)), expected)
    np.testing.assert_array_equal(np.asarray(f(x, y)), expected)
    scanned = fnx.jit(lambda x, y: fnx.lax.scan(
        lambda c, xy: (c, f(xy[0], xy[1])), 0.0, fnp.stack([x, y], axis=1))[1])(x, y)
    np.testing.assert_array_equal(np.asarray(scanned), expected)


def test_bool_subtract_raises_everywhere():
    x = fnp.asarray([True, False])
    with pytest.raises(DTypeError, match="sub: dtype bool is not supported"):
        x - x
    with pytest.raises(DTypeError, match="sub: dtype bool is not supported"):
        fnx.jit(lambda x: x - x)(x)


@pytest.mark.parametrize("transform", [fnx.jit, fnx.vmap, fnx.grad])
def test_item_assignment_on_a_traced_array(transform):
    def f(x):
        x[0] = 1.0
        return x.sum()

    with pytest.raises(TraceError, match=r"arrays are immutable values: use the out-of-place "
                                         r"form x = x\.at\[0\]\.set\(1\.0\)"):
        transform(f)(fnp.ones((2, 3)))


def test_check_rules_catches_an_impl_that_disagrees_with_its_rule(monkeypatch):
    from fnx.core.abstract import ShapedArray
    from fnx.core.primitive import PRIMITIVES, Primitive

    bad_p = Primitive("test_disagreeing_impl")
    try:
        bad_p.impl = lambda x: x.astype(np.float64)
        bad_p.abstract_eval = lambda x: ShapedArray(x.shape, x.dtype)
        monkeypatch.setattr(tracing, "check_rules", True)
        with pytest.raises(AssertionError, match="test_disagreeing_impl: impl and abstract_eval "
                                                 r"disagree.*impl gave \['f64\[2\]'\]"):
            bad_p.bind(fnp.ones(2))
        monkeypatch.setattr(tracing, "check_rules", False)
        assert bad_p.bind(fnp.ones(2)).dtype == fnp.float64  # unchecked: the impl's answer
    finally:
        del PRIMITIVES["test_disagreeing_impl"]


def test_eager_scalar_fast_path_types_like_the_general_path(monkeypatch):
    # `array op python_scalar` skips promotion eagerly; with check_rules (as in this suite)
    # it takes the general path, so compare the two here
    cases = [(_array(np.float16), 2.0), (fnp.asarray(2.0), 3.0), (fnp.asarray(2.0), 3),
             (_array(np.complex64), 0.5)]
    general = [(x * c, c - x) for x, c in cases]
    monkeypatch.setattr(tracing, "check_rules", False)
    fast = [(x * c, c - x) for x, c in cases]
    for outs_fast, outs_general in zip(fast, general, strict=True):
        for a, b in zip(outs_fast, outs_general, strict=True):
            assert a.aval == b.aval  # shape, dtype and weak type
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("f", [fnp.sqrt, fnp.cos, fnp.exp, fnp.log, lambda t: fnp.true_divide(t, 3),
                               lambda t: fnp.asarray(t) / 2],
                         ids=["sqrt", "cos", "exp", "log", "true_divide", "asarray_div"])
def test_float_op_of_weak_int_stays_weak(f):
    # the op's own int->float promotion of a weak value keeps it weak (JAX: f32[]{weak})
    for out in (f(3), fnx.jit(f)(3)):
        assert out.aval.dtype == np.float32 and out.aval.weak_type
    assert not f(np.int32(3)).aval.weak_type  # a strong int stays strong
    h = fnp.ones(2, dtype=fnp.float16)
    assert (h * f(3)).dtype == np.float16


def test_lr_schedule_from_python_int_step_keeps_float16():
    p = fnp.asarray(np.array([1.0, 2.0], np.float16))
    g = fnp.asarray(np.array([0.5, -1.0], np.float16))

    def step(p, g, lr, t):
        return p - lr / fnp.sqrt(t) * g

    expected = np.array([1.0, 2.0], np.float16) - np.float16(0.1 / np.sqrt(3)) * \
        np.array([0.5, -1.0], np.float16)
    for out in (step(p, g, 0.1, 3), fnx.jit(step)(p, g, 0.1, 3)):
        assert out.dtype == np.float16
        np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-3)


def test_gradient_with_respect_to_a_python_scalar_is_weak():
    f = lambda x: x * x  # noqa: E731
    h16 = fnp.ones(2, dtype=fnp.float16)
    for transform in (fnx.grad, fnx.jacrev, lambda g: fnx.jit(fnx.grad(g))):
        g = transform(f)(2.0)
        assert g.aval.weak_type and (h16 * g).dtype == fnp.float16
    assert not fnx.grad(f)(fnp.asarray(2.0, dtype=fnp.float32)).aval.weak_type
    # the cotangent's weak type does not leak into a strong primal's gradient
    assert not fnx.vjp(f, fnp.asarray(2.0, dtype=fnp.float32))[1](1.0)[0].aval.weak_type


# --- Python scalar arguments keep their exact value (a float is a weak float64) --------------


@pytest.mark.parametrize("dt", [np.float16, np.float32, np.float64], ids=lambda d: d.__name__)
def test_python_float_argument_is_exact_under_jit_vmap_and_grad(dt):
    x = fnp.asarray(np.array([1.0, -2.0, 3.0], dt))
    f = lambda x, c: (x * c, c - x, fnp.where(x > 0, c, x))  # noqa: E731
    eager = f(x, 0.1)
    ref = np.array([1.0, -2.0, 3.0], dt)
    # the scalar converts straight to the array's dtype, as NumPy does with a Python float
    np.testing.assert_array_equal(np.asarray(eager[0]), ref * 0.1)
    for got in (fnx.jit(f)(x, 0.1), fnx.vmap(f, in_axes=(0, None))(x, 0.1)):
        for g, e in zip(got, eager, strict=True):
            assert g.dtype == e.dtype == np.dtype(dt) and not g.aval.weak_type
            np.testing.assert_array_equal(np.asarray(g), np.asarray(e))
    # the gradient with respect to the array sees the exact scalar too
    g = fnx.grad(lambda x, c: (x * c).astype(fnp.float64).sum())(x, 0.1)
    assert g.dtype == np.dtype(dt)
    np.testing.assert_array_equal(np.asarray(g), np.full(3, dt(0.1)))


def test_python_float_argument_as_float64_value():
    x = fnp.asarray([1.0, 2.0], dtype=fnp.float64)
    assert fnx.jit(lambda x, c: x * c)(x, 0.1).tolist() == [0.1, 0.2]
    assert fnx.jit(lambda x, c: x * (c * 3.0))(x, 0.1).tolist() == [0.1 * 3.0, 2 * (0.1 * 3.0)]
    # a differentiated Python float is a weak float64: its gradient is exact and weak
    g = fnx.grad(lambda c, x: (x * c * c).sum())(0.1, x)
    assert g.aval == fnx.core.abstract.ShapedArray((), np.dtype(np.float64), True)
    assert g.item() == 2 * 0.1 * 3.0
    # complex arguments keep theirs as a weak complex128
    z = fnx.jit(lambda x, c: x * c)(x, 0.1 + 0.2j)
    assert z.dtype == fnp.complex128 and z.tolist() == [0.1 + 0.2j, 0.2 + 0.4j]


def test_python_int_argument_is_weak_and_exact():
    x8 = fnp.asarray([1, 2], dtype=fnp.int8)
    big = fnp.asarray([0, 1], dtype=fnp.int64)
    f = fnx.jit(lambda x, n: x * n)
    assert f(x8, 3).dtype == fnp.int8
    assert f(big, 2**40 + 1).tolist() == [0, 2**40 + 1]
    assert fnx.vmap(lambda x, n: x + n, in_axes=(0, None))(big, 2**40 + 1).tolist() == \
        [2**40 + 1, 2**40 + 2]


def test_jit_does_not_retrace_per_python_scalar_value():
    x = fnp.asarray([1.0, 2.0], dtype=fnp.float64)
    f = fnx.jit(lambda x, c, n: x * c + n)
    for c, n in ((0.1, 1), (0.2, 2), (1e-300, -5), (3.0, 0)):
        assert f(x, c, n).tolist() == (np.array([1.0, 2.0]) * c + n).tolist()
    info = f.cache_info()
    assert info.traces == 1 and info.hits == 3, info
    # a static scalar is a new trace per value; a float vs an int argument is a new trace
    g = fnx.jit(lambda x, c: x * c, static_argnums=1)
    g(x, 0.1), g(x, 0.2)
    assert g.cache_info().traces == 2
    f(x, 1, 1)
    assert f.cache_info().traces == 2 and "weak" not in f.cache_info().misses[-1]


def test_python_scalar_tangent_takes_its_primal_dtype():
    x = fnp.ones(2)  # float32
    y, t = fnx.jvp(lambda x: x * 2.0, (x,), (fnp.ones(2),))
    _, t1 = fnx.jvp(lambda x: x.sum() * 2.0, (fnp.asarray(1.0, dtype=fnp.float32),), (1.0,))
    assert t.dtype == t1.dtype == fnp.float32
    _, t2 = fnx.jvp(lambda c: c * 3.0, (0.1,), (1.0,))
    assert t2.dtype == fnp.float64 and t2.item() == 3.0
    _, f_jvp = fnx.linearize(lambda x: x * 2.0, fnp.asarray(1.0, dtype=fnp.float32))
    assert f_jvp(1.0).dtype == fnp.float32


def test_jacobians_with_respect_to_a_python_scalar_are_weak_like_grad():
    f = lambda c: c ** 3  # noqa: E731
    for transform in (fnx.grad, fnx.jacrev, fnx.jacfwd, fnx.hessian,
                      lambda g: fnx.jit(fnx.jacfwd(g))):
        out = transform(f)(0.5)
        assert out.aval.weak_type and out.dtype == fnp.float64, transform
    for transform in (fnx.jacrev, fnx.jacfwd, fnx.hessian):
        assert not transform(f)(fnp.asarray(0.5, dtype=fnp.float32)).aval.weak_type
    assert fnx.hessian(f)(0.5).item() == 6 * 0.5
