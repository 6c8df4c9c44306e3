"""Control flow under fnx.jit: compiled natively (never unrolled, never retraced per
iteration), composed with grad/vmap, structural executable caching, random keys, donation."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
import fnx.random as R
from fnx import lax
from fnx.core.errors import TraceError
from fnx.jit import control_flow as jcf
from fnx.jit.api import DonatedArrayError
from fnx.transforms.control_flow import cond_p, scan_p, while_p


def _close(a, b, tol=1e-5):
    for x, y in zip(fnx.tree.leaves(a), fnx.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=tol, atol=tol)


@pytest.fixture
def no_eager_control_flow(monkeypatch):
    """Fail if a control-flow primitive runs its eager impl (jit must lower it natively)."""
    def boom(*args, **kwargs):
        raise AssertionError("control flow ran its eager impl under jit")

    yield lambda: [monkeypatch.setattr(p, "impl", boom) for p in (cond_p, while_p, scan_p)]


# --- jit vs eager ------------------------------------------------------------------------------


def _cond_fn(p, x):
    return lax.cond(p > 0, lambda d: {"a": d["a"] * 2.0, "b": d["b"] + 1},
                    lambda d: {"a": -d["a"], "b": d["b"] - 1}, x)


def _switch_fn(i, x):
    return lax.switch(i, [lambda v: v + 1.0, lambda v: v * v, lambda v: fnp.sin(v)], x)


def _while_fn(x):
    return lax.while_loop(lambda c: c[0] < 10, lambda c: (c[0] + 1, c[1] * 1.5 + 0.25),
                          (fnp.asarray(0), x))


def _fori_static(x):
    return lax.fori_loop(0, 5, lambda i, v: v * 0.5 + i, x)


def _fori_traced(n, x):
    return lax.fori_loop(0, n, lambda i, v: v + i.astype(v.dtype), x)


def _scan_fn(init, xs):
    def step(c, x):
        new = {"s": c["s"] + x["u"] * c["w"], "w": c["w"] * 0.9}
        return new, (new["s"] * 2.0, x["v"] + 1)
    return lax.scan(step, init, xs)


def _scan_rev(xs):
    return lax.scan(lambda c, x: (c * 0.5 + x, c - x), fnp.zeros(3), xs, reverse=True)


def _scan_length_only(x):
    return lax.scan(lambda c, _: (c + 1.0, c * 2.0), x, None, length=4)


CASES = {
    "cond_true": (_cond_fn, lambda: (fnp.asarray(1.0),
                                     {"a": fnp.arange(3.0), "b": fnp.asarray(5)})),
    "cond_false": (_cond_fn, lambda: (fnp.asarray(-1.0),
                                      {"a": fnp.arange(3.0), "b": fnp.asarray(5)})),
    "switch_mid": (_switch_fn, lambda: (fnp.asarray(1), fnp.linspace(0.0, 1.0, 4))),
    "switch_clamped": (_switch_fn, lambda: (fnp.asarray(9), fnp.linspace(0.0, 1.0, 4))),
    "switch_negative": (_switch_fn, lambda: (fnp.asarray(-3), fnp.linspace(0.0, 1.0, 4))),
    "while_pytree": (_while_fn, lambda: (fnp.ones(4),)),
    "fori_static": (_fori_static, lambda: (fnp.arange(3.0),)),
    "fori_traced": (_fori_traced, lambda: (fnp.asarray(6), fnp.zeros(2))),
    "scan_pytree": (_scan_fn, lambda: ({"s": fnp.zeros(2), "w": fnp.ones(2)},
                                       {"u": fnp.arange(10.0).reshape(5, 2),
                                        "v": fnp.arange(5)})),
    "scan_reverse": (_scan_rev, lambda: (fnp.arange(12.0).reshape(4, 3),)),
    "scan_no_xs": (_scan_length_only, lambda: (fnp.asarray(1.5),)),
    "scan_empty": (_scan_rev, lambda: (fnp.zeros((0, 3)),)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_jit_matches_eager(name, no_eager_control_flow):
    f, make_args = CASES[name]
    args = make_args()
    expected = f(*args)
    no_eager_control_flow()
    got = fnx.jit(f)(*args)
    assert fnx.tree.structure(got) == fnx.tree.structure(expected)
    _close(got, expected)
    for g, e in zip(fnx.tree.leaves(got), fnx.tree.leaves(expected), strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape


def test_nested_control_flow(no_eager_control_flow):
    def f(x):
        def step(c, xi):
            c = lax.cond(xi > 2.0, lambda v: v + xi, lambda v: v * 0.5, c)
            inner = lax.while_loop(lambda v: v < 3.0, lambda v: v + 1.0, xi)
            return c, inner + c
        return lax.scan(step, fnp.asarray(1.0), x)

    x = fnp.arange(6.0)
    expected = f(x)
    no_eager_control_flow()
    _close(fnx.jit(f)(x), expected)


# --- compositions ------------------------------------------------------------------------------


def _scan_loss(w, xs):
    def step(c, x):
        c = fnp.tanh(c * w + x)
        return c, fnp.sum(c * c)
    c, ys = lax.scan(step, fnp.zeros_like(w), xs)
    return fnp.sum(ys) + fnp.sum(c)


def test_jit_of_grad_of_scan_matches_eager_and_finite_differences():
    w = fnp.asarray(np.array([0.3, -0.2, 0.5]))
    xs = fnp.asarray(np.random.default_rng(0).normal(size=(6, 3)))
    g_eager = fnx.grad(_scan_loss)(w, xs)
    g_jit = fnx.jit(fnx.grad(_scan_loss))(w, xs)
    _close(g_jit, g_eager)
    # float64 finite differences
    w64, xs64 = w.astype(fnx.float64), xs.astype(fnx.float64)
    g64 = np.asarray(fnx.jit(fnx.grad(_scan_loss))(w64, xs64))
    eps = 1e-6
    for i in range(3):
        d = np.zeros(3)
        d[i] = eps
        fd = (float(_scan_loss(w64 + d, xs64)) - float(_scan_loss(w64 - d, xs64))) / (2 * eps)
        assert abs(fd - g64[i]) < 1e-6


def test_grad_of_jit_with_scan_and_fori():
    def f(w, x):
        return fnp.sum(lax.fori_loop(0, 4, lambda i, v: fnp.sin(v * w), x))

    w, x = fnp.asarray(0.7), fnp.linspace(0.0, 1.0, 5)
    _close(fnx.grad(fnx.jit(f))(w, x), fnx.grad(f)(w, x))
    _close(fnx.jit(fnx.grad(fnx.jit(f), argnums=1))(w, x), fnx.grad(f, argnums=1)(w, x))


def test_jit_of_vmap_of_cond_with_batched_predicate():
    def f(p, x):
        return lax.cond(p, lambda v: v * 2.0 + 1.0, lambda v: -v, x)

    ps = fnp.asarray([True, False, True, False])
    xs = fnp.arange(8.0).reshape(4, 2)
    expected = fnx.vmap(f)(ps, xs)
    _close(fnx.jit(fnx.vmap(f))(ps, xs), expected)
    _close(expected, np.where(np.array([1, 0, 1, 0])[:, None] == 1,
                              np.arange(8.0).reshape(4, 2) * 2 + 1,
                              -np.arange(8.0).reshape(4, 2)))


def test_jit_of_vmap_of_while_with_batched_predicate():
    def collatz_steps(n):
        def body(c):
            k, s = c
            k = fnp.where(k % 2 == 0, k // 2, 3 * k + 1)
            return k, s + 1
        return lax.while_loop(lambda c: c[0] != 1, body, (n, fnp.asarray(0)))[1]

    ns = fnp.asarray([1, 6, 7, 27])
    expected = [0, 8, 16, 111]
    assert fnx.vmap(collatz_steps)(ns).tolist() == expected
    assert fnx.jit(fnx.vmap(collatz_steps))(ns).tolist() == expected
    assert fnx.vmap(fnx.jit(collatz_steps))(ns).tolist() == expected


def test_jvp_and_vmap_of_jit_with_unbatched_and_zero_inputs():
    def f(a, b):
        return lax.scan(lambda c, x: (c * b + x, c), a, fnp.arange(3.0))

    a, b = fnp.asarray(1.0), fnp.asarray(0.5)
    out, t = fnx.jvp(fnx.jit(f), (a, b), (fnp.asarray(1.0), fnp.asarray(0.0)))
    out_e, t_e = fnx.jvp(f, (a, b), (fnp.asarray(1.0), fnp.asarray(0.0)))
    _close(out, out_e)
    _close(t, t_e)
    bs = fnp.asarray([0.1, 0.2, 0.3])
    _close(fnx.vmap(fnx.jit(f), in_axes=(None, 0))(a, bs), fnx.vmap(f, in_axes=(None, 0))(a, bs))


def test_while_reverse_mode_error_under_jit():
    def f(x):
        return lax.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, x)

    with pytest.raises(TraceError, match="Reverse-mode differentiation does not work"):
        fnx.jit(fnx.grad(f))(fnp.asarray(1.0))


# --- compiled, not unrolled, compiled once -----------------------------------------------------


def test_scan_is_one_equation_not_unrolled():
    f = fnx.jit(lambda xs: lax.scan(lambda c, x: (c + x * 3.25, c), 0.0, xs))
    xs = fnp.arange(200.0)
    ir = f.lower(xs).ir
    assert ir.count("scan[") == 1
    assert len(ir.splitlines()) < 20  # independent of the 200 iterations
    traced = str(fnx.make_ir(lambda xs: lax.scan(lambda c, x: (c + x * 3.25, c), 0.0, xs))(xs))
    assert traced.count("scan[") == 1
    assert "scan" in f.lower(xs).kernels  # one orchestrator step


def test_scan_body_is_compiled_once_and_reused_across_batch_sizes():
    jcf.clear()

    def step(c, x):
        return c * 0.8125 + x, fnp.exp(c)

    f = fnx.jit(lambda xs: lax.scan(step, fnp.zeros(3), xs))
    f(fnp.ones((5, 3)))
    info = f.cache_info()
    assert info.executables_compiled == 2  # the function and the body
    f(fnp.ones((5, 3)) * 2.0)
    assert f.cache_info().executables_compiled == 2
    out = f(fnp.ones((9, 3)))  # new length: retrace, new outer program, same body
    info = f.cache_info()
    assert info.traces == 2 and info.executables_compiled == 3
    assert info.executables_reused >= 1
    _close(out, lax.scan(step, fnp.zeros(3), fnp.ones((9, 3))))


def test_two_jitted_functions_with_the_same_body_share_executables():
    jcf.clear()

    def body(x):
        return lax.while_loop(lambda v: fnp.sum(v) < 100.0, lambda v: v * 1.375 + 1.0, x)

    f1, f2 = fnx.jit(body), fnx.jit(lambda x: body(x))
    x = fnp.ones(4)
    _close(f1(x), f2(x))
    assert f1.cache_info().executables_compiled == 3  # outer, cond, body
    assert f2.cache_info().executables_compiled == 0
    assert f2.cache_info().executables_reused >= 1


def test_structural_key_is_structural():
    def f(x):
        return fnp.sin(x) * 2.0

    p1 = fnx.make_ir(f)(fnp.ones(3)).program
    p2 = fnx.make_ir(f)(fnp.ones(3)).program
    assert p1 is not p2 and jcf.structural_key(p1) == jcf.structural_key(p2)
    p3 = fnx.make_ir(lambda x: fnp.sin(x) * 3.0)(fnp.ones(3)).program
    p4 = fnx.make_ir(f)(fnp.ones(4)).program
    p5 = fnx.make_ir(f)(fnp.ones(3, dtype=fnx.float64)).program
    keys = {jcf.structural_key(p) for p in (p1, p3, p4, p5)}
    assert len(keys) == 4


# --- random keys -------------------------------------------------------------------------------


def test_random_keys_under_jit_give_identical_bits():
    def sample(key):
        k1, k2 = R.split(key)
        return (R.bits(k1, (7,)), R.normal(k2, (3, 2)), R.uniform(R.fold_in(key, 3), (5,)),
                R.randint(k1, (4,), 0, 10))

    key = R.PRNGKey(42)
    for e, j in zip(sample(key), fnx.jit(sample)(key), strict=True):
        assert e.dtype == j.dtype
        np.testing.assert_array_equal(np.asarray(e), np.asarray(j))


def test_random_keys_inside_jitted_scan_and_vmap():
    def walk(key):
        def step(c, i):
            return c + R.normal(R.fold_in(key, i), ()), c
        return lax.scan(step, fnp.asarray(0.0), fnp.arange(5))

    key = R.PRNGKey(7)
    # the bits are exact; the float transform may differ by an ulp (fma contraction of
    # u * 2 + lo, whose constants are run-time kernel inputs, see loops.structural_const)
    _close(fnx.jit(walk)(key), walk(key), tol=1e-6)
    keys = R.split(key, 3)
    np.testing.assert_array_equal(np.asarray(fnx.jit(fnx.vmap(R.bits))(keys)),
                                  np.asarray(fnx.vmap(R.bits)(keys)))


# --- donation ----------------------------------------------------------------------------------


def test_donated_argument_is_deleted_with_a_clear_error():
    f = fnx.jit(lambda p, g: {"w": p["w"] - 0.5 * g}, donate_argnums=0)
    params = {"w": fnp.ones(3)}
    g = fnp.arange(3.0)
    new = f(params, g)
    assert new["w"].tolist() == [1.0, 0.5, 0.0]
    assert g.tolist() == [0.0, 1.0, 2.0]  # not donated: still valid
    with pytest.raises(DonatedArrayError, match=r"donated to jit\(<lambda>\).*donate_argnums"):
        params["w"] + 1.0
    with pytest.raises(DonatedArrayError, match="donated"):
        f(params, g)
    again = f(new, g)  # outputs are ordinary arrays and can be donated in turn
    assert again["w"].tolist() == [1.0, 0.0, -1.0]


def test_donation_is_ignored_under_transforms():
    f = fnx.jit(lambda x: fnp.sum(x * x), donate_argnums=(0,))
    x = fnp.arange(3.0)
    assert fnx.grad(f)(x).tolist() == [0.0, 2.0, 4.0]
    assert x.tolist() == [0.0, 1.0, 2.0]


def test_constant_index_cond_and_custom_jvp_are_inlined_and_fused():
    @fnx.custom_jvp
    def softplus(x):
        return fnp.log1p(fnp.exp(x))

    softplus.defjvp(lambda primals, tangents: (softplus(primals[0]), tangents[0] * 0.5))

    def f(x):
        y = lax.cond(True, lambda v: v * 2.0, lambda v: v - 1.0, x)
        return softplus(y) + 1.0

    x = fnp.linspace(-1.0, 1.0, 5)
    lo = fnx.jit(f).lower(x)
    assert "cond" not in lo.ir and "custom_jvp_call" not in lo.ir
    assert "eager" not in lo.kernels
    _close(fnx.jit(f)(x), f(x))
    _close(fnx.jit(fnx.grad(lambda v: fnp.sum(f(v))))(x), np.full(5, 1.0))  # the custom rule
