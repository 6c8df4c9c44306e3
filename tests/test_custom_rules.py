"""stop_gradient, custom_jvp, custom_vjp and checkpoint/remat: values, derivatives (first and
second order), nondiff_argnums, pytrees, vmap, staging, recomputation, and the errors."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx import lax
from fnx.core.errors import TraceError
from fnx.core.ops import elementwise as ew
from fnx.core.pytree import PyTreeError


def arr(x):
    return fnp.asarray(np.asarray(x, dtype=np.float64))


def close(a, b, tol=1e-7):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --- stop_gradient -----------------------------------------------------------------------------


def test_stop_gradient():
    x = arr([1.0, 2.0])
    close(fnx.stop_gradient(x), x)
    close(fnx.grad(lambda x: (x * fnx.stop_gradient(x)).sum())(x), x)
    tree = fnx.stop_gradient({"a": x, "b": (x, 3.0)})
    close(tree["b"][1], 3.0)
    _, t = fnx.jvp(lambda x: fnx.stop_gradient(x) * 2.0, (x,), (arr([1.0, 1.0]),))
    close(t, [0.0, 0.0])
    close(fnx.vmap(lambda x: fnx.stop_gradient(x) * x)(x), [1.0, 4.0])
    assert "stop_gradient" in str(fnx.make_ir(fnx.stop_gradient)(x))
    assert fnx.lax.stop_gradient is fnx.stop_gradient


# --- custom_jvp ------------------------------------------------------------------------------


@fnx.custom_jvp
def log1pexp(x):
    return fnp.log(1.0 + fnp.exp(x))


@log1pexp.defjvp
def _log1pexp_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return log1pexp(x), t * (1.0 - 1.0 / (1.0 + fnp.exp(x)))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the naive version's nan
def test_custom_jvp_numerically_safe_log1pexp():
    x = arr([-3.0, 0.0, 2.0, 1000.0])
    close(log1pexp(x[:3]), np.log1p(np.exp(np.asarray(x[:3]))))
    g = fnx.grad(lambda x: log1pexp(x).sum())(x)
    assert np.all(np.isfinite(np.asarray(g)))  # the naive derivative is nan at 100
    close(g, _sigmoid(np.asarray(x)))
    naive = fnx.grad(lambda x: fnp.log(1.0 + fnp.exp(x)).sum())(x)
    assert np.isnan(np.asarray(naive)[-1])
    _, t = fnx.jvp(log1pexp, (x,), (arr([1.0, 1.0, 1.0, 1.0]),))
    close(t, _sigmoid(np.asarray(x)))


def test_custom_jvp_rule_is_used_and_grad_of_grad():
    @fnx.custom_jvp
    def f(x):
        return fnp.sin(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        (x,), (t,) = primals, tangents
        return f(x), 2.0 * fnp.cos(x) * t  # deliberately twice the true derivative

    x = arr(0.5)
    close(f(x), np.sin(0.5))
    close(fnx.grad(f)(x), 2 * np.cos(0.5))
    # second order: the rule is differentiated; the inner f uses its rule again
    close(fnx.grad(fnx.grad(f))(x), -2 * np.sin(0.5))
    close(fnx.jacfwd(fnx.grad(f))(x), -2 * np.sin(0.5))
    close(fnx.grad(fnx.grad(lambda x: log1pexp(x).sum()))(arr(0.3)),
          _sigmoid(0.3) * (1 - _sigmoid(0.3)))


def test_custom_jvp_nondiff_argnums_pytrees_and_kwargs():
    from functools import partial

    @partial(fnx.custom_jvp, nondiff_argnums=(0,))
    def apply(fn, xs):
        return {"y": fn(xs["a"]) * xs["b"]}

    @apply.defjvp
    def apply_jvp(fn, primals, tangents):
        (xs,), (ts,) = primals, tangents
        out = apply(fn, xs)
        return out, {"y": 10.0 * ts["a"] + ts["b"]}

    xs = {"a": arr(1.0), "b": arr(2.0)}
    close(apply(fnp.sin, xs)["y"], 2 * np.sin(1.0))
    g = fnx.grad(lambda xs: apply(fnp.sin, xs)["y"])(xs)
    close(g["a"], 10.0)
    close(g["b"], 1.0)
    close(apply(fnp.sin, xs=xs)["y"], 2 * np.sin(1.0))  # keyword call

    @fnx.custom_jvp
    def two(x, y):
        return x * y

    two.defjvps(lambda t, ans, x, y: t * y * 3.0, lambda t, ans, x, y: t * x)
    close(fnx.grad(two, (0, 1))(arr(2.0), arr(5.0)), [15.0, 2.0])


def test_custom_jvp_vmap():
    xs = arr([-1.0, 0.0, 50.0])
    close(fnx.vmap(log1pexp)(xs[:2]), np.log1p(np.exp(np.asarray(xs[:2]))))
    close(fnx.vmap(fnx.grad(log1pexp))(xs), _sigmoid(np.asarray(xs)))
    close(fnx.grad(lambda x: fnx.vmap(log1pexp)(x).sum())(xs), _sigmoid(np.asarray(xs)))
    close(fnx.jacfwd(fnx.vmap(log1pexp))(xs), np.diag(_sigmoid(np.asarray(xs))))

    @fnx.custom_jvp
    def scale(x, s):
        return x * s

    @scale.defjvp
    def scale_jvp(primals, tangents):
        (x, s), (tx, ts) = primals, tangents
        return scale(x, s), tx * s + ts * x * 7.0

    ss = arr([1.0, 2.0, 3.0])
    # unbatched x, batched s: the rule sees every argument batched
    g = fnx.vmap(fnx.grad(scale, 1), in_axes=(None, 0))(arr(2.0), ss)
    close(g, [14.0, 14.0, 14.0])
    g = fnx.grad(lambda x: fnx.vmap(scale, in_axes=(None, 0))(x, ss).sum())(arr(2.0))
    close(g, 6.0)


def test_custom_jvp_staged_and_closure():
    text = str(fnx.make_ir(log1pexp)(arr(1.0)))
    assert "custom_jvp_call" in text and "exp" in text
    c = arr(3.0)

    @fnx.custom_jvp
    def f(x):
        return x * c

    f.defjvp(lambda p, t: (f(p[0]), t[0] * c * 2.0))
    close(f(arr(2.0)), 6.0)
    close(fnx.grad(f)(arr(2.0)), 3.0 * 2.0)  # the rule's derivative, not the function's 3
    close(fnx.grad(lambda x: lax.cond(True, f, lambda x: x, x))(arr(2.0)), 6.0)


def test_custom_jvp_errors():
    @fnx.custom_jvp
    def f(x):
        return x * 2.0

    with pytest.raises(AttributeError, match="No JVP defined"):
        f(arr(1.0))
    f.defjvp(lambda p, t: (f(p[0]), fnp.ones(3)))
    with pytest.raises(TypeError, match="tangent output 0 has shape"):
        fnx.grad(f)(arr(1.0))
    f.defjvp(lambda p, t: f(p[0]))
    with pytest.raises(TypeError, match="must return a pair"):
        fnx.jvp(f, (arr(1.0),), (arr(1.0),))
    f.defjvp(lambda p, t: ((f(p[0]),), t[0]))
    with pytest.raises(TypeError, match="structure"):
        fnx.grad(f)(arr(1.0))

    from functools import partial

    @partial(fnx.custom_jvp, nondiff_argnums=(0,))
    def g(n, x):
        return x * n

    g.defjvp(lambda n, p, t: (g(n, p[0]), t[0] * n))
    with pytest.raises(TraceError, match="nondiff_argnums but is a traced array"):
        fnx.grad(lambda n: g(n, arr(1.0)))(arr(2.0))


# --- custom_vjp ------------------------------------------------------------------------------


@fnx.custom_vjp
def clip_gradient(lo, hi, x):
    return x


def _clip_fwd(lo, hi, x):
    return x, (lo, hi)


def _clip_bwd(res, g):
    lo, hi = res
    return None, None, fnp.clip(g, lo, hi)


clip_gradient.defvjp(_clip_fwd, _clip_bwd)


def test_custom_vjp_clip_gradient():
    x = arr([2.0, -3.0, 0.1])
    lo, hi = arr(-1.0), arr(1.0)
    close(clip_gradient(lo, hi, x), x)
    g = fnx.grad(lambda x: (5.0 * clip_gradient(lo, hi, x)).sum())(x)
    close(g, [1.0, 1.0, 1.0])  # the cotangent 5 arriving at the output is clipped to 1
    g = fnx.grad(lambda x: clip_gradient(lo, hi, 5.0 * x).sum())(x)
    close(g, [5.0, 5.0, 5.0])
    g = fnx.grad(lambda x: clip_gradient(lo, hi, x * x * 3.0).sum())(x)
    close(g, np.clip(1.0, -1, 1) * 6.0 * np.asarray(x))
    g = fnx.grad(lambda x: (clip_gradient(lo, hi, x) * 4.0).sum())(x)
    close(g, [1.0, 1.0, 1.0])
    # the None cotangents for lo/hi are zeros
    glo = fnx.grad(lambda lo: clip_gradient(lo, hi, x).sum())(lo)
    close(glo, 0.0)


def test_custom_vjp_bwd_runs_exactly_once_and_pytree_residuals():
    calls = {"fwd": 0, "bwd": 0}

    @fnx.custom_vjp
    def f(x, y):
        return {"p": x * y, "q": fnp.sin(x)}

    def f_fwd(x, y):
        calls["fwd"] += 1
        return f(x, y), {"x": x, "pair": (y, fnp.cos(x)), "none": None}

    def f_bwd(res, g):
        calls["bwd"] += 1
        x, (y, cx) = res["x"], res["pair"]
        return g["p"] * y + g["q"] * cx, g["p"] * x

    f.defvjp(f_fwd, f_bwd)
    x, y = arr([1.0, 2.0]), arr([3.0, -1.0])
    out, f_vjp = fnx.vjp(f, x, y)
    assert calls == {"fwd": 1, "bwd": 0}
    gx, gy = f_vjp({"p": arr([1.0, 1.0]), "q": arr([2.0, 0.0])})
    assert calls == {"fwd": 1, "bwd": 1}
    close(gx, np.asarray(y) + np.array([2.0, 0.0]) * np.cos(np.asarray(x)))
    close(gy, x)
    calls.update(fwd=0, bwd=0)
    g = fnx.grad(lambda x: (f(x, y)["p"] + f(x, y)["q"]).sum())(x)
    assert calls == {"fwd": 2, "bwd": 2}  # two calls of f, one bwd each
    close(g, np.asarray(y) + np.cos(np.asarray(x)))


def test_custom_vjp_nondiff_argnums():
    from functools import partial

    @partial(fnx.custom_vjp, nondiff_argnums=(0,))
    def app(fn, x):
        return fn(x)

    def app_fwd(fn, x):
        return fn(x), x

    def app_bwd(fn, x, g):
        return (g * 100.0,)

    app.defvjp(app_fwd, app_bwd)
    close(app(fnp.sin, arr(1.0)), np.sin(1.0))
    close(fnx.grad(lambda x: app(fnp.sin, x))(arr(1.0)), 100.0)


def test_custom_vjp_vmap_and_forward_mode_error():
    lo, hi = arr(-1.0), arr(1.0)
    xs = arr([2.0, 0.1, -4.0])
    close(fnx.vmap(lambda x: clip_gradient(lo, hi, x))(xs), xs)
    # vmap of grad and grad of vmap (per-example cotangents are clipped separately)
    close(fnx.vmap(fnx.grad(lambda x: clip_gradient(lo, hi, 5.0 * x)))(xs), [5.0] * 3)
    g = fnx.grad(lambda x: (fnx.vmap(lambda x: clip_gradient(lo, hi, x))(x) * arr(
        [3.0, 0.5, -2.0])).sum())(xs)
    close(g, [1.0, 0.5, -1.0])
    close(fnx.jacrev(lambda x: clip_gradient(lo, hi, x) * 3.0)(xs), np.eye(3))
    with pytest.raises(TraceError, match="forward-mode autodiff.*custom_vjp"):
        fnx.jvp(lambda x: clip_gradient(lo, hi, x), (xs,), (xs,))


def test_custom_vjp_inside_control_flow_and_staged():
    lo, hi = arr(-1.0), arr(1.0)

    def f(xs):
        c, _ = lax.scan(lambda c, x: (c + clip_gradient(lo, hi, x * c), None), arr(1.0), xs)
        return c

    xs = arr([2.0, 3.0])
    # c1 = 1 + 2*1 = 3, c2 = 3 + 3*3: dc2/dx via clipped cotangent paths
    g = fnx.grad(f)(xs)
    assert np.all(np.isfinite(np.asarray(g)))
    text = str(fnx.make_ir(fnx.grad(lambda x: clip_gradient(lo, hi, x * 2.0)))(arr(1.0)))
    # the user's bwd (fnp.clip: maximum then minimum) was traced into the backward pass
    assert " max " in text and " min " in text
    close(fnx.grad(lambda x: clip_gradient(lo, hi, x * 2.0))(arr(1.0)), 2.0)


def test_custom_vjp_errors():
    @fnx.custom_vjp
    def f(x, y):
        return x * y

    with pytest.raises(AttributeError, match="No VJP defined"):
        f(arr(1.0), arr(2.0))
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: g * res[1])
    with pytest.raises(TypeError, match="one cotangent per differentiable argument"):
        fnx.grad(f)(arr(1.0), arr(2.0))
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (g, g, g))
    with pytest.raises(TypeError, match="tuple with one cotangent.*got tuple of length 3"):
        fnx.grad(f)(arr(1.0), arr(2.0))
    f.defvjp(lambda x, y: (x * y, (x, y)), lambda res, g: (fnp.ones(3), g))
    with pytest.raises(TypeError, match="cotangent of shape"):
        fnx.grad(f)(arr(1.0), arr(2.0))

    @fnx.custom_vjp
    def h(t):
        return t["a"]

    h.defvjp(lambda t: (t["a"], None), lambda res, g: ({"b": g},))
    with pytest.raises(PyTreeError):
        fnx.grad(h)({"a": arr(1.0)})


# --- checkpoint / remat ---------------------------------------------------------------------


def _count_sin(monkeypatch):
    counter = {"n": 0}
    impl = ew.sin_p.impl

    def counting(x, **params):
        counter["n"] += 1
        return impl(x, **params)

    monkeypatch.setattr(ew.sin_p, "impl", counting)
    return counter


def _deep(x):
    return fnp.sin(fnp.sin(fnp.sin(x)))


def test_checkpoint_gradients_match():
    x = arr([0.3, 1.1])
    f = lambda x: fnx.checkpoint(_deep)(x).sum()  # noqa: E731
    close(f(x), _deep(x).sum())
    close(fnx.grad(f)(x), fnx.grad(lambda x: _deep(x).sum())(x), 1e-12)
    close(fnx.hessian(f)(x), fnx.hessian(lambda x: _deep(x).sum())(x), 1e-10)
    close(fnx.vmap(fnx.grad(f))(arr([[0.3, 1.1], [0.2, 0.1]])),
          [fnx.grad(lambda x: _deep(x).sum())(arr(v)) for v in ([0.3, 1.1], [0.2, 0.1])],
          1e-12)
    close(fnx.jvp(fnx.checkpoint(_deep), (x,), (arr([1.0, 0.0]),))[1],
          fnx.jvp(_deep, (x,), (arr([1.0, 0.0]),))[1], 1e-12)
    assert fnx.remat is fnx.checkpoint


def test_checkpoint_recomputes_forward_in_backward(monkeypatch):
    x = arr([0.3, 1.1])
    counter = _count_sin(monkeypatch)
    fnx.grad(lambda x: _deep(x).sum())(x)
    plain = counter["n"]
    counter["n"] = 0
    fnx.grad(lambda x: fnx.checkpoint(_deep)(x).sum())(x)
    remat = counter["n"]
    # forward (3 sins), then in the backward pass the forward again, up to what the
    # derivative needs (sin(x) and sin(sin(x)); the last sin is only the primal output)
    assert plain == 3 and remat == 3 + 2
    # the staged program shows the recomputation: sin appears in the forward checkpoint and
    # again in the backward pass
    text = str(fnx.make_ir(fnx.grad(lambda x: fnx.checkpoint(_deep)(x).sum()))(x))
    assert "checkpoint[" in text and text.count("sin ") == 5
    text_plain = str(fnx.make_ir(fnx.grad(lambda x: _deep(x).sum()))(x))
    assert text_plain.count("sin ") == 3


def test_checkpoint_pytrees_static_argnums_and_scan():
    def layer(params, x, act):
        return {"h": act(params["w"] * x + params["b"])}

    params = {"w": arr([1.0, 2.0]), "b": arr([0.5, -0.5])}
    x = arr([0.3, 0.4])
    ck = fnx.checkpoint(layer, static_argnums=(2,))
    g = fnx.grad(lambda p: ck(p, x, fnp.tanh)["h"].sum())(params)
    g_ref = fnx.grad(lambda p: layer(p, x, fnp.tanh)["h"].sum())(params)
    close(g["w"], g_ref["w"], 1e-12)
    close(g["b"], g_ref["b"], 1e-12)

    def body(c, xi):
        return fnx.checkpoint(lambda c: fnp.sin(c) * xi)(c), None

    def f(c):
        return lax.scan(body, c, arr([1.0, 2.0, 0.5]))[0]

    def f_py(c):
        for xi in (1.0, 2.0, 0.5):
            c = fnp.sin(c) * xi
        return c

    close(fnx.grad(f)(arr(0.4)), fnx.grad(f_py)(arr(0.4)), 1e-12)


def test_checkpoint_policy_not_supported():
    with pytest.raises(NotImplementedError, match="policies"):
        fnx.checkpoint(_deep, policy=lambda *a: True)
