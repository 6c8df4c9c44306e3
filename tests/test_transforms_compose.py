"""Transforms composed with each other: higher-order derivatives, vmap of grad and grad of vmap,
pytrees in and out, argnums/has_aux, in_axes/out_axes, the Autodidax stress tests
(compositionality, perturbation confusion), Python control flow under transforms, and the
gradient conventions at kinks (documented in docs/transforms.md)."""

import collections
import dataclasses

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.errors import BatchingError
from fnx.testing import check_grads


def f64(x):
    return fnp.asarray(np.asarray(x, dtype=np.float64))


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


RNG = np.random.default_rng(0)
X3 = f64(RNG.standard_normal(3))
M34 = f64(RNG.standard_normal((3, 4)))


# --- higher order ------------------------------------------------------------------------------


def test_grad_of_grad():
    f = lambda x: fnp.sin(x) * x  # noqa: E731
    d2 = fnx.grad(fnx.grad(f))
    for x in (0.3, -1.2, 2.0):
        close(d2(f64(x)), 2 * np.cos(x) - x * np.sin(x))
    d3 = fnx.grad(fnx.grad(fnx.grad(fnp.tanh)))
    t = np.tanh(0.4)
    close(d3(f64(0.4)), -2 * (1 - t * t) ** 2 + 4 * t * t * (1 - t * t))


def test_jacfwd_of_jacrev_is_hessian():
    def f(x):
        return fnp.sum(x ** 3) + x[0] * x[1] * x[2]

    x = f64([1.0, 2.0, -0.5])
    expected = np.diag(6 * np.asarray(x)) + np.array(
        [[0, x[2].item(), x[1].item()], [x[2].item(), 0, x[0].item()],
         [x[1].item(), x[0].item(), 0]])
    close(fnx.jacfwd(fnx.jacrev(f))(x), expected)
    close(fnx.jacrev(fnx.jacfwd(f))(x), expected)
    close(fnx.hessian(f)(x), expected)
    close(fnx.jacrev(fnx.jacrev(f))(x), expected)


def test_hessian_of_quadratic_form():
    a = f64(RNG.standard_normal((3, 3)))
    f = lambda x: x @ a @ x  # noqa: E731
    close(fnx.hessian(f)(X3), np.asarray(a) + np.asarray(a).T)


def test_jacobian_shapes():
    f = lambda x: fnp.tanh(M34 @ x)  # noqa: E731
    x = f64(RNG.standard_normal(4))
    jf, jr = fnx.jacfwd(f)(x), fnx.jacrev(f)(x)
    assert jf.shape == jr.shape == (3, 4)
    close(jf, jr)
    expected = (1 - np.tanh(np.asarray(M34) @ np.asarray(x)) ** 2)[:, None] * np.asarray(M34)
    close(jf, expected)


def test_jvp_of_vjp_and_vjp_of_jvp():
    def f(x):
        return fnp.sin(x) * fnp.exp(x)

    x = X3
    u = f64([1.0, -2.0, 0.5])
    v = f64([0.3, 0.1, -1.0])

    def pullback(x):
        return fnx.vjp(f, x)[1](u)[0]

    # forward-over-reverse: H-vector product of <u, f(x)>
    _, hvp = fnx.jvp(pullback, (x,), (v,))
    xs = np.asarray(x)
    d2 = 2 * np.cos(xs) * np.exp(xs)  # (sin * exp)'' = 2 cos exp
    close(hvp, np.asarray(u) * d2 * np.asarray(v))

    def push(x):
        return fnx.jvp(f, (x,), (v,))[1]

    _, pb = fnx.vjp(push, x)
    close(pb(u)[0], np.asarray(u) * d2 * np.asarray(v))


def test_linearize_matches_jvp():
    f = lambda x: fnp.sum(fnp.tanh(x) ** 2)  # noqa: E731
    y, f_lin = fnx.linearize(f, X3)
    v = f64([1.0, 0.0, 2.0])
    close(f_lin(v), fnx.jvp(f, (X3,), (v,))[1])
    close(y, f(X3))


# --- vmap with derivatives ----------------------------------------------------------------------


def test_vmap_of_grad_is_per_example_gradient():
    w = f64(RNG.standard_normal(4))
    xs = f64(RNG.standard_normal((5, 4)))
    loss = lambda w, x: fnp.tanh(x @ w) ** 2  # noqa: E731
    per_ex = fnx.vmap(fnx.grad(loss), in_axes=(None, 0))(w, xs)
    loop = np.stack([np.asarray(fnx.grad(loss)(w, xs[i])) for i in range(5)])
    close(per_ex, loop)


def test_grad_of_vmap():
    xs = f64(RNG.standard_normal((5, 3)))
    g = fnx.grad(lambda xs: fnp.sum(fnx.vmap(lambda x: fnp.sum(fnp.sin(x) * x))(xs)))(xs)
    xs_np = np.asarray(xs)
    close(g, np.cos(xs_np) * xs_np + np.sin(xs_np))


def test_vmap_of_vmap_and_hessian_batch():
    xs = f64(RNG.standard_normal((2, 3, 4)))
    out = fnx.vmap(fnx.vmap(lambda x: fnp.sum(x ** 2)))(xs)
    close(out, np.sum(np.asarray(xs) ** 2, axis=-1))
    out2 = fnx.vmap(fnx.vmap(lambda x: fnp.sum(x ** 2), in_axes=1), in_axes=-1)(xs)
    close(out2, np.sum(np.asarray(xs) ** 2, axis=0).T)
    hs = fnx.vmap(fnx.hessian(lambda x: fnp.sum(x ** 3)))(xs[0])
    close(hs, np.stack([np.diag(6 * r) for r in np.asarray(xs[0])]))


def test_vmap_of_jacfwd_and_jacrev():
    xs = f64(RNG.standard_normal((4, 3)))
    f = lambda x: fnp.sin(x) * fnp.sum(x)  # noqa: E731
    jf = fnx.vmap(fnx.jacfwd(f))(xs)
    jr = fnx.vmap(fnx.jacrev(f))(xs)
    loop = np.stack([np.asarray(fnx.jacfwd(f)(xs[i])) for i in range(4)])
    close(jf, loop)
    close(jr, loop)


def test_check_grads_through_vmap():
    check_grads(fnx.vmap(lambda x: fnp.tanh(x) * fnp.sum(x)), (f64(RNG.standard_normal((3, 2))),))


# --- pytrees ------------------------------------------------------------------------------------

Point = collections.namedtuple("Point", ["x", "y"])


@dataclasses.dataclass
class Params:
    w: object
    b: object


fnx.tree.register_node(Params, lambda p: ((p.w, p.b), None), lambda aux, ch: Params(*ch))


def test_grad_pytrees_in():
    def loss(p):
        return fnp.sum(p["a"] ** 2) + fnp.sum(p["t"][0] * p["t"][1]) + p["pt"].x * p["pt"].y

    p = {"a": X3, "t": (f64([1.0, 2.0]), f64([3.0, 4.0])), "pt": Point(f64(2.0), f64(5.0))}
    g = fnx.grad(loss)(p)
    close(g["a"], 2 * np.asarray(X3))
    close(g["t"][0], [3.0, 4.0])
    close(g["t"][1], [1.0, 2.0])
    assert isinstance(g["pt"], Point)
    close(g["pt"].x, 5.0)
    close(g["pt"].y, 2.0)


def test_grad_dataclass_pytree():
    p = Params(f64([[1.0, 2.0], [3.0, 4.0]]), f64([0.5, -0.5]))
    g = fnx.grad(lambda p, x: fnp.sum(fnp.tanh(x @ p.w + p.b)))(p, f64([1.0, -1.0]))
    assert isinstance(g, Params)
    h = np.asarray(f64([1.0, -1.0])) @ np.asarray(p.w) + np.asarray(p.b)
    d = 1 - np.tanh(h) ** 2
    close(g.b, d)
    close(g.w, np.outer([1.0, -1.0], d))


def test_vjp_and_jvp_pytrees_in_out():
    def f(p):
        return {"s": p.x * p.y, "pair": (fnp.sin(p.x), p.y ** 2)}

    p = Point(f64(0.5), f64(3.0))
    out, t = fnx.jvp(f, (p,), (Point(f64(1.0), f64(0.0)),))
    close(t["s"], 3.0)
    close(t["pair"][0], np.cos(0.5))
    close(t["pair"][1], 0.0)
    out, f_vjp = fnx.vjp(f, p)
    (ct,) = f_vjp({"s": f64(1.0), "pair": (f64(0.0), f64(1.0))})
    assert isinstance(ct, Point)
    close(ct.x, 3.0)
    close(ct.y, 0.5 + 6.0)


def test_vmap_pytrees_and_axes_pytrees():
    xs = {"a": f64(RNG.standard_normal((3, 5))), "b": f64(RNG.standard_normal((5,)))}
    out = fnx.vmap(lambda d: (d["a"].sum(), d["b"] * 2), in_axes=({"a": 1, "b": 0},),
                   out_axes=(0, -1))(xs)
    close(out[0], np.asarray(xs["a"]).sum(0))
    close(out[1], np.asarray(xs["b"]) * 2)
    # out_axes=None for an unbatched output; negative in_axes
    out = fnx.vmap(lambda x, c: (x * c, c), in_axes=(-1, None), out_axes=(1, None))(
        f64(RNG.standard_normal((2, 4))), f64(3.0))
    assert out[0].shape == (2, 4)
    close(out[1], 3.0)


def test_vmap_axis_size_with_no_mapped_input():
    out = fnx.vmap(lambda c: c * 2.0, in_axes=None, axis_size=4)(f64(1.5))
    close(out, np.full(4, 3.0))


def test_vmap_namedtuple_output():
    out = fnx.vmap(lambda x: Point(x, -x))(X3)
    assert isinstance(out, Point)
    close(out.y, -np.asarray(X3))


# --- argnums / has_aux -----------------------------------------------------------------------


def test_argnums_tuple_and_negative():
    f = lambda x, y, z: fnp.sum(x * y) + z  # noqa: E731
    gx, gy = fnx.grad(f, argnums=(0, 1))(X3, 2 * X3, f64(1.0))
    close(gx, 2 * np.asarray(X3))
    close(gy, np.asarray(X3))
    close(fnx.grad(f, argnums=-1)(X3, X3, f64(1.0)), 1.0)
    (v, g) = fnx.value_and_grad(f, argnums=(2,))(X3, X3, f64(1.0))
    close(v, np.sum(np.asarray(X3) ** 2) + 1)
    assert isinstance(g, tuple) and len(g) == 1


def test_has_aux():
    def f(x):
        y = fnp.sum(x ** 2)
        return y, {"y": y, "n": 3}

    g, aux = fnx.grad(f, has_aux=True)(X3)
    close(g, 2 * np.asarray(X3))
    assert aux["n"] == 3
    (v, aux2), g2 = fnx.value_and_grad(f, has_aux=True)(X3)
    close(v, aux2["y"])
    _, f_vjp, aux3 = fnx.vjp(f, X3, has_aux=True)
    close(f_vjp(f64(1.0))[0], 2 * np.asarray(X3))
    _, t, aux4 = fnx.jvp(f, (X3,), (X3,), has_aux=True)
    close(t, 2 * np.sum(np.asarray(X3) ** 2))
    jac, aux5 = fnx.jacrev(f, has_aux=True)(X3)
    close(jac, 2 * np.asarray(X3))


# --- Autodidax stress tests --------------------------------------------------------------------


def test_perturbation_confusion():
    # Autodidax2: the inner grad's perturbation must not be confused with the outer one.
    f = lambda x: fnx.grad(lambda y: x * y)(f64(3.0))  # noqa: E731
    assert float(fnx.grad(f)(f64(2.0))) == 1.0
    # Siskind & Pearlmutter's classic: d/dx (x * d/dy (x + y)) = 1
    g = lambda x: x * fnx.grad(lambda y: x + y)(f64(1.0))  # noqa: E731
    close(fnx.grad(g)(f64(5.0)), 1.0)


def test_compositionality_stress():
    # Autodidax part 3's test in spirit: a function using every transform inside every other.
    def f(x):
        y = fnp.sin(x) * 2.0
        z = -y + x
        return z

    def deriv(f):
        return lambda x: fnx.jvp(f, (x,), (fnp.ones_like(x),))[1]

    x = f64(3.0)
    close(deriv(f)(x), 2 * -np.cos(3.0) + 1)
    close(deriv(deriv(f))(x), 2 * np.sin(3.0))
    close(fnx.grad(deriv(f))(x), 2 * np.sin(3.0))
    close(deriv(fnx.grad(f))(x), 2 * np.sin(3.0))
    xs = f64(np.arange(3.0))
    close(fnx.vmap(deriv(f))(xs), 2 * -np.cos(np.arange(3.0)) + 1)
    close(fnx.vmap(fnx.grad(fnx.grad(f)))(xs), 2 * np.sin(np.arange(3.0)))
    close(fnx.grad(lambda x: fnp.sum(fnx.vmap(fnx.grad(f))(x)))(xs), 2 * np.sin(np.arange(3.0)))
    close(fnx.jacfwd(fnx.vmap(f))(xs), np.diag(2 * -np.cos(np.arange(3.0)) + 1))
    if hasattr(fnx, "jit"):
        close(fnx.jit(fnx.grad(fnx.jit(deriv(f))))(x), 2 * np.sin(3.0))
        close(fnx.vmap(fnx.jit(fnx.grad(f)))(xs), 2 * -np.cos(np.arange(3.0)) + 1)


def test_closure_over_outer_tracers():
    def outer(x):
        def inner(y):
            return fnp.sum(x * fnp.sin(y))  # closes over the outer tracer x

        return fnp.sum(fnx.grad(inner)(x) * x)  # d/dx sum(x^2 cos x)

    xs = np.asarray(X3)
    close(fnx.grad(outer)(X3), 2 * xs * np.cos(xs) - xs ** 2 * np.sin(xs))
    # vmap closing over a grad tracer and the reverse
    h = lambda w: fnp.sum(fnx.vmap(lambda r: fnp.sum(r * w))(M34))  # noqa: E731
    close(fnx.grad(h)(f64(np.ones(4))), np.asarray(M34).sum(0))
    k = fnx.vmap(lambda r: fnx.grad(lambda w: fnp.sum(fnp.tanh(r * w)))(f64(np.ones(4))))(M34)
    close(k, np.asarray(M34) * (1 - np.tanh(np.asarray(M34)) ** 2))


def test_python_control_flow_on_concrete_values_under_grad():
    def f(x):
        if x > 0:  # concrete under grad (eager)
            return x ** 2
        return -x

    close(fnx.grad(f)(f64(3.0)), 6.0)
    close(fnx.grad(f)(f64(-3.0)), -1.0)

    def loop(x):
        n = 0
        while x < 10:  # data-dependent trip count: fine under grad, the primal is concrete
            x = x * 2
            n += 1
        return x

    close(fnx.grad(loop)(f64(1.5)), 8.0)
    close(fnx.jvp(loop, (f64(1.5),), (f64(1.0),))[1], 8.0)


def test_vmap_branch_on_batched_value_raises():
    def f(x):
        return x if x > 0 else -x

    with pytest.raises(BatchingError, match=r"fnp\.where.*fnx\.lax\.cond"):
        fnx.vmap(f)(X3)
    # branching on an unbatched value is fine
    close(fnx.vmap(lambda x, c: x if c > 0 else -x, in_axes=(0, None))(X3, f64(1.0)), X3)


def test_grad_integer_input_raises():
    with pytest.raises(TypeError, match="floating-point inputs.*int"):
        fnx.grad(lambda x: x * 2.0)(fnp.asarray(3))
    with pytest.raises(TypeError, match="floating-point"):
        fnx.jacrev(lambda x: x * 2.0)(fnp.asarray([1, 2]))


def test_grad_non_scalar_output_raises():
    with pytest.raises(TypeError, match=r"scalar output.*\(3,\).*vjp"):
        fnx.grad(lambda x: x * 2.0)(X3)


# --- conventions at kinks (docs/transforms.md) -------------------------------------------------


def test_relu_gradient_at_zero_is_half():
    # maximum(x, 0) at x == 0 is a tie: the tangent is split evenly, as in JAX
    relu = lambda x: fnp.maximum(x, 0.0)  # noqa: E731
    close(fnx.grad(relu)(f64(0.0)), 0.5)
    close(fnx.grad(relu)(f64(2.0)), 1.0)
    close(fnx.grad(relu)(f64(-2.0)), 0.0)
    # the where-based relu has gradient 0 at 0
    close(fnx.grad(lambda x: fnp.where(x > 0, x, 0.0))(f64(0.0)), 0.0)


def test_abs_gradient_at_zero_is_zero():
    close(fnx.grad(fnp.abs)(f64(0.0)), 0.0)
    close(fnx.grad(fnp.abs)(f64(-2.0)), -1.0)
    close(fnx.grad(fnp.sqrt)(f64(4.0)), 0.25)


def test_max_ties_split_evenly():
    g = fnx.grad(lambda x: fnp.max(x))(f64([1.0, 3.0, 3.0, 2.0]))
    close(g, [0.0, 0.5, 0.5, 0.0])
    g = fnx.grad(lambda x: fnp.min(x))(f64([1.0, 1.0, 1.0]))
    close(g, [1 / 3, 1 / 3, 1 / 3])
    g = fnx.grad(lambda x, y: fnp.maximum(x, y), argnums=(0, 1))(f64(1.0), f64(1.0))
    close(g[0], 0.5)
    close(g[1], 0.5)


def test_per_example_gradients_are_vectorized():
    # vmap(grad) must not fall back to a per-example loop: the dot_general batch rule folds
    # the batch into the free dims instead of broadcasting the weights (bench_transforms.py
    # measures ~100x+ at batch 512; this loose bound only guards against a regression to a loop).
    import time

    rng = np.random.default_rng(0)
    w = fnp.asarray(rng.standard_normal((20, 8)))
    xs = fnp.asarray(rng.standard_normal((64, 20)))
    loss = lambda w, x: fnp.sum(fnp.tanh(x @ w) ** 2)  # noqa: E731
    vg = fnx.vmap(fnx.grad(loss), in_axes=(None, 0))
    g = fnx.grad(loss)
    vg(w, xs)
    t0 = time.perf_counter()
    out = vg(w, xs)
    t_vmap = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop = [g(w, xs[i]) for i in range(64)]
    t_loop = time.perf_counter() - t0
    close(out, np.stack([np.asarray(x) for x in loop]))
    assert t_vmap * 5 < t_loop, (t_vmap, t_loop)
    # and the staged batched program has no broadcast of w to the batch size
    ir = fnx.make_ir(vg)(w, xs)
    for eqn in ir.program.eqns:
        if eqn.primitive.name == "broadcast_in_dim":
            assert eqn.params["shape"] != (64, 20, 8), str(ir)


def test_aux_outputs_are_plain_arrays_not_tracers():
    """has_aux values leave every transform as concrete Arrays (never a finished tracer)."""
    x = fnp.asarray([1.0, 2.0])

    def f(x):
        return (x ** 2).sum(), {"double": x * 2, "total": x.sum()}

    def vec(x):
        return x * 3.0, x.sum()

    results = [
        fnx.grad(f, has_aux=True)(x)[1],
        fnx.value_and_grad(f, has_aux=True)(x)[0][1],
        fnx.vjp(f, x, has_aux=True)[2],
        fnx.jvp(f, (x,), (fnp.ones(2),), has_aux=True)[2],
        fnx.jacfwd(vec, has_aux=True)(x)[1],
        fnx.jacrev(vec, has_aux=True)(x)[1],
        fnx.jit(fnx.grad(f, has_aux=True))(x)[1],
    ]
    for aux in results:
        for leaf in fnx.tree.leaves(aux):
            assert type(leaf) is fnx.Array, type(leaf)
    np.testing.assert_allclose(results[0]["double"].numpy(), [2.0, 4.0])
    assert results[4].item() == 3.0 and results[5].item() == 3.0
    batched = fnx.vmap(fnx.grad(f, has_aux=True))(fnp.ones((3, 2)))[1]["total"]
    assert type(batched) is fnx.Array and batched.tolist() == [2.0, 2.0, 2.0]
