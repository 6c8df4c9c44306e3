"""fnx.jit and state: arrays a jitted function reads from its closure or globals are inputs
of every call, in-place updates are seen, tracers of enclosing transforms are never cached,
donated arrays are gone, and outputs are fresh arrays."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.jit.api import DonatedArrayError


def test_in_place_updates_of_closed_over_arrays_are_seen():
    w, s = fnp.ones(3), fnp.asarray(1.0)
    f = fnx.jit(lambda x: x * w + s)
    np.testing.assert_allclose(f(fnp.ones(3)).numpy(), [2, 2, 2])
    w.mul_(5.0)
    s.add_(100.0)
    np.testing.assert_allclose(f(fnp.ones(3)).numpy(), [106, 106, 106])
    np.testing.assert_allclose(f(fnp.ones((1, 3))).numpy(), [[106, 106, 106]])
    w[1] = -1.0  # item assignment is an in-place update too
    np.testing.assert_allclose(f(fnp.ones(3)).numpy(), [106, 100, 106])


def test_unchanged_state_does_not_retrace():
    w, s = fnp.ones(3), fnp.asarray(2.0)
    f = fnx.jit(lambda x: x * w * s)
    for _ in range(3):
        f(fnp.ones(3))
    assert f.cache_info().traces == 1
    w.add_(1.0)  # a non-scalar array is re-read: no new trace
    np.testing.assert_allclose(f(fnp.ones(3)).numpy(), [4, 4, 4])
    assert f.cache_info().traces == 1
    s.add_(1.0)  # a 0-d array was baked in as a literal: one new trace
    np.testing.assert_allclose(f(fnp.ones(3)).numpy(), [6, 6, 6])
    info = f.cache_info()
    assert info.traces == 2 and "updated in place" in info.misses[-1]


def test_literal_in_a_control_flow_body_and_an_inner_jit_is_guarded():
    s = fnp.asarray(2.0)
    inner = fnx.jit(lambda x: x * s)
    scan_f = fnx.jit(lambda x: fnx.lax.fori_loop(0, 3, lambda i, c: c * s, x))
    outer = fnx.jit(lambda x: inner(x) + 1.0)
    x = fnp.ones(2)
    np.testing.assert_allclose(scan_f(x).numpy(), [8, 8])
    np.testing.assert_allclose(outer(x).numpy(), [3, 3])
    s.mul_(3.0)
    np.testing.assert_allclose(scan_f(x).numpy(), [216, 216])
    np.testing.assert_allclose(outer(x).numpy(), [7, 7])
    np.testing.assert_allclose(inner(x).numpy(), [6, 6])


def test_parameter_swap_under_grad_sees_the_tracer():
    class Model:
        pass

    m = Model()
    m.w = fnp.asarray(7.0)
    fwd = fnx.jit(lambda x: x * m.w)

    def loss(w):  # a functional_call-style parameter swap
        old, m.w = m.w, w
        try:
            return fwd(fnp.asarray(3.0))
        finally:
            m.w = old

    assert fnx.grad(loss)(fnp.asarray(2.0)).item() == 3.0
    assert fwd(fnp.asarray(3.0)).item() == 21.0
    assert fnx.grad(loss)(fnp.asarray(2.0)).item() == 3.0
    assert fnx.jit(fnx.grad(loss))(fnp.asarray(2.0)).item() == 3.0
    assert fwd(fnp.asarray(3.0)).item() == 21.0
    np.testing.assert_allclose(
        fnx.vmap(loss)(fnp.asarray([1.0, 2.0])).numpy(), [3.0, 6.0])


def test_closure_over_a_transform_value_is_not_cached():
    def outer(a):
        f = fnx.jit(lambda x: x * a)
        return f(fnp.asarray(2.0))

    assert fnx.grad(outer)(fnp.asarray(5.0)).item() == 2.0
    assert fnx.grad(outer)(fnp.asarray(1.0)).item() == 2.0


def test_donated_array_captured_by_another_function_is_gone():
    w = fnp.ones(3)
    reads_w = fnx.jit(lambda x: x + w)
    reads_w(fnp.ones(3))
    consume = fnx.jit(lambda a: a * 2.0, donate_argnums=0)
    np.testing.assert_allclose(consume(w).numpy(), [2, 2, 2])
    with pytest.raises(DonatedArrayError, match="donated"):
        reads_w(fnp.ones(3))
    with pytest.raises(DonatedArrayError):
        w.numpy()


def test_donation_by_keyword():
    consume = fnx.jit(lambda a, b: a * b, donate_argnums=0)
    a = fnp.ones(2)
    consume(a=a, b=fnp.ones(2))
    with pytest.raises(DonatedArrayError):
        a + 1.0


def test_constant_outputs_are_fresh_arrays():
    f = fnx.jit(lambda x: (x.sum(), fnp.zeros(()), fnp.asarray(1.5)))
    _, zero, c = f(fnp.ones(3))
    np.asarray(zero)[...] = 5.0
    np.asarray(c)[...] = -1.0
    _, zero2, c2 = f(fnp.ones(3))
    assert zero2.item() == 0.0 and c2.item() == 1.5


def test_static_argnums_passed_by_keyword():
    x = fnp.ones(2)
    f = fnx.jit(lambda x, n: x * n, static_argnums=1)
    np.testing.assert_allclose(f(x, n=3).numpy(), [3, 3])
    np.testing.assert_allclose(f(x, 4).numpy(), [4, 4])
    g = fnx.jit(lambda x, n: fnp.full((n,), 1.0) * x[0], static_argnames="n")
    assert g(x, 3).shape == (3,) and g(x, n=2).shape == (2,)
    h = fnx.jit(lambda x, n: x * n, static_argnums=-1)
    np.testing.assert_allclose(h(x, n=5).numpy(), [5, 5])


def test_non_array_output_names_function_and_position():
    def returns_a_string(x):
        return x, "hello"

    with pytest.raises(TypeError, match=r"jit\(returns_a_string\).*returned a str.*leaf 1"):
        fnx.jit(returns_a_string)(fnp.ones(2))


def test_global_generator_inside_jit_draws_fresh_numbers_as_eager():
    fnx.manual_seed(0)
    eager = [fnx.rand(3).numpy() for _ in range(3)]
    fnx.manual_seed(0)
    f = fnx.jit(lambda x: x * fnx.rand(3))
    compiled = [f(fnp.ones(3)).numpy() for _ in range(3)]
    np.testing.assert_array_equal(compiled, eager)  # the key is program state
    assert f.cache_info().traces == 1
    after = fnx.rand(2)  # the generator advanced concretely: no leaked tracer
    assert type(after) is fnx.Array and after.shape == (2,)
    g = fnx.grad(lambda x: (x * fnx.randn(())).sum())
    assert type(g(fnp.ones(2))) is fnx.Array


def test_outputs_never_share_a_buffer_with_constants_or_inputs():
    f = fnx.jit(lambda x: (x + 1, fnp.asarray(np.arange(3.0, dtype=np.float32))))
    _, t = f(fnp.zeros(2))
    np.asarray(t)[0] = -100.0
    assert f(fnp.zeros(2))[1].tolist() == [0.0, 1.0, 2.0]
    c = fnp.asarray([1.0, 2.0, 3.0])
    g = fnx.jit(lambda x: c * 1)  # the simplifier removes the multiply
    np.asarray(g(fnp.zeros(2)))[...] = -7.0
    assert c.tolist() == [1.0, 2.0, 3.0]
    x = fnp.ones(2)
    np.asarray(fnx.jit(lambda x: x)(x))[...] = 5.0
    assert x.tolist() == [1.0, 1.0]


def test_python_scalar_literals_do_not_force_retraces_under_transforms():
    f = fnx.jit(lambda x: fnp.tanh(x) * 2.0)
    x = fnp.ones(3)
    for _ in range(4):
        fnx.grad(lambda x: fnp.sum(f(x)))(x)
    assert f.cache_info().traces == 1


def test_values_read_in_python_while_tracing_are_guarded():
    # int(n), if flag:, .item(), indexing with a 0-d array, loop bounds: all read a concrete
    # value at trace time, so an in-place update must re-trace
    n, flag, step, bound = fnp.asarray(2), fnp.asarray(True), fnp.asarray(0), fnp.asarray(3)
    table = fnp.asarray([0.0, 0.5, 0.75])
    funcs = {
        "int": lambda x: x * int(n),
        "bool": lambda x: x if flag else -x,
        "index": lambda x: x * table[step],
        "fori": lambda x: fnx.lax.fori_loop(0, bound, lambda i, c: c + 1.0, x),
    }
    jitted = {k: fnx.jit(f) for k, f in funcs.items()}
    x = fnp.ones(2)
    for k in funcs:
        jitted[k](x)
    n.add_(3)
    flag.fill_(False)
    step.add_(2)
    bound.add_(2)
    for k, f in funcs.items():
        np.testing.assert_array_equal(jitted[k](x).numpy(), f(x).numpy(), err_msg=k)


def test_augmented_assignment_updates_in_place():
    w = fnp.asarray([1.0, 2.0])
    alias = w
    f = fnx.jit(lambda x: x * w)
    f(fnp.ones(2))
    w -= 0.5 * fnp.ones(2)
    assert alias is w and alias.tolist() == [0.5, 1.5]
    assert f(fnp.ones(2)).tolist() == [0.5, 1.5]
    i = fnp.asarray([3, 4])
    i //= 2
    assert i.dtype == np.int64 and i.tolist() == [1, 2]
    w.data = fnp.asarray([9.0, 9.0])
    assert alias.tolist() == [9.0, 9.0]
    with pytest.raises(fnx.core.errors.ShapeError):
        w += fnp.ones((2, 2))
    # inside a transform, += rebinds a traced value (arrays are immutable there)
    def g(x):
        x += 1.0
        return x.sum()
    assert fnx.grad(g)(fnp.ones(2)).tolist() == [1.0, 1.0]


def test_non_array_outputs_named_by_every_transform():
    for transform in (fnx.grad, fnx.vmap, fnx.jit):
        with pytest.raises(TypeError, match="returned a str"):
            transform(lambda x: (x.sum(), "tag"))(fnp.ones(2))
