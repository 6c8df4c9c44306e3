"""fnx.lax control flow (cond, switch, while_loop, fori_loop, scan, map) and the program-level
transforms under it: each primitive against its Python equivalent, under jvp / grad (finite
differences in float64 and the unrolled Python loop's grad) / vmap (vs a Python loop) /
make_ir, plus the error messages."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx
import fnx.numpy as fnp
from fnx import lax
from fnx.core.abstract import ShapedArray
from fnx.core.ad_util import UndefinedPrimal
from fnx.core.errors import BatchingError, ShapeError, TraceError
from fnx.core.ir import ClosedProgram, make_program
from fnx.transforms import program_transforms as pt
from fnx.transforms.partial_eval import backward_pass, linearize_flat

F64 = "float64"


def arr(x):
    return fnp.asarray(np.asarray(x, dtype=np.float64))


def num_grad(f, x, eps=1e-6):
    """Central finite differences of a scalar function of one float64 array."""
    x = np.asarray(x, dtype=np.float64)
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[idx] = eps
        g[idx] = (float(f(arr(x + e))) - float(f(arr(x - e)))) / (2 * eps)
    return g


def close(a, b, tol=1e-6):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --- program transforms ------------------------------------------------------------------------


def _program(f, *avals):
    program, consts = make_program(f, list(avals))
    return ClosedProgram(program, consts)


A23 = ShapedArray((2, 3), np.float64)


def _sample_program():
    c = arr(np.arange(6.0).reshape(2, 3))

    def f(x, y):
        return [fnp.sin(x) * y + c.sum(), x, fnp.cos(y).sum(axis=0), y * 2.0]

    return _program(f, A23, A23), f


def test_jvp_program_matches_jvp():
    prog, f = _sample_program()
    rng = np.random.default_rng(0)
    x, y, tx = (arr(rng.standard_normal((2, 3))) for _ in range(3))
    jp, nz_out = pt.jvp_program(prog, [True, False])
    assert nz_out == [True, True, False, False]
    outs = pt.closed_call(jp, [x, y, tx])
    ref_out, ref_t = fnx.jvp(lambda x: f(x, y), (x,), (tx,))
    for o, r in zip(outs[:4], ref_out):
        close(o, r)
    close(outs[4], ref_t[0])
    close(outs[5], ref_t[1])
    jp_inst, nz_inst = pt.jvp_program(prog, [True, False], instantiate=True)
    assert nz_inst == [True] * 4
    close(pt.closed_call(jp_inst, [x, y, tx])[-1], np.zeros((2, 3)))


def test_vmap_program_matches_loop():
    prog, f = _sample_program()
    rng = np.random.default_rng(1)
    xs, y = arr(rng.standard_normal((4, 2, 3))), arr(rng.standard_normal((2, 3)))
    bp, out_dims = pt.vmap_program(prog, 4, [0, None])
    assert out_dims == [0, 0, None, None]
    outs = pt.closed_call(bp, [xs, y])
    for i in range(4):
        ref = f(xs[i], y)
        close(outs[0][i], ref[0])
        close(outs[2], ref[2])
    bp2, dims2 = pt.vmap_program(prog, 4, [1, None], [0, 2, 0, None])
    assert dims2 == [0, 2, 0, None]
    outs2 = pt.closed_call(bp2, [fnp.moveaxis(xs, 0, 1), y])
    assert outs2[1].shape == (2, 3, 4) and outs2[2].shape == (4, 3)
    close(fnp.moveaxis(outs2[1], 2, 0), xs)


def test_partial_eval_program_handles_passthrough_literals_and_known_residuals():
    prog, f = _sample_program()
    rng = np.random.default_rng(2)
    x, y = arr(rng.standard_normal((2, 3))), arr(rng.standard_normal((2, 3)))
    known, unknown, out_uk, num_res = pt.partial_eval_program(prog, [False, True])
    assert out_uk == [True, False, True, True]
    kouts = pt.closed_call(known, [x])
    assert len(kouts) == 1 + num_res
    close(kouts[0], x)  # output that is a (known) input
    uouts = pt.closed_call(unknown, [*kouts[1:], y])
    ref = f(x, y)
    for o, r in zip(uouts, [ref[0], ref[2], ref[3]]):
        close(o, r)
    # instantiate: a known output becomes unknown, passed through as a residual
    known2, unknown2, out_uk2, nres2 = pt.partial_eval_program(prog, [False, True], True)
    assert out_uk2 == [True] * 4
    k2 = pt.closed_call(known2, [x])
    close(pt.closed_call(unknown2, [*k2, y])[1], x)
    # everything unknown / everything known
    k3, u3, uk3, n3 = pt.partial_eval_program(prog, [True, True])
    assert uk3 == [True] * 4  # residuals: what depends on the program's constants only
    close(pt.closed_call(u3, [*pt.closed_call(k3, []), x, y])[0], ref[0])
    k4, _, uk4, n4 = pt.partial_eval_program(prog, [False, False])
    assert uk4 == [False] * 4 and n4 == 0
    close(pt.closed_call(k4, [x, y])[2], ref[2])


def test_partial_eval_plus_transpose_reproduce_vjp():
    rng = np.random.default_rng(3)
    w = arr(rng.standard_normal((3, 3)))

    def f(x, y):
        return [fnp.tanh(w @ x) * y, (x * x).sum() * 3.0]

    avals = [ShapedArray((3,), np.float64)] * 2
    prog = _program(f, *avals)
    x, y = arr(rng.standard_normal(3)), arr(rng.standard_normal(3))
    ct = [arr(rng.standard_normal(3)), arr(1.5)]
    # linearize as program transforms: jvp, then split known primal / unknown tangent part
    jp, _ = pt.jvp_program(prog, [True, True], instantiate=True)
    known, lin, out_uk, num_res = pt.partial_eval_program(jp, [False, False, True, True])
    assert out_uk == [False, False, True, True]
    kouts = pt.closed_call(known, [x, y])
    res = kouts[2:]
    # the linear program maps (residuals, tangents) -> tangents; transpose its linear inputs
    tp = pt.transpose_program(lin, [False] * num_res + [True, True])
    cts = pt.closed_call(tp, [*res, *ct])
    _, f_vjp = fnx.vjp(lambda x, y: f(x, y), x, y)
    ref = f_vjp(ct)
    close(cts[0], ref[0])
    close(cts[1], ref[1])


def test_transpose_program_of_linear_map():
    rng = np.random.default_rng(4)
    m = arr(rng.standard_normal((2, 3)))
    prog = _program(lambda x, s: [m @ x * s, x], ShapedArray((3,), np.float64),
                    ShapedArray((), np.float64))
    tp = pt.transpose_program(prog, [True, False])
    ct0, ct1 = arr(rng.standard_normal(2)), arr(rng.standard_normal(3))
    (out,) = pt.closed_call(tp, [arr(2.0), ct0, ct1])
    close(out, np.asarray(m).T @ np.asarray(ct0) * 2.0 + np.asarray(ct1))


def test_dce_program():
    prog, f = _sample_program()
    d, used = pt.dce_program(prog, [False, False, True, False])
    assert used == [False, True]
    assert len(d.program.in_binders) == 1 + len(d.consts)
    assert [e.primitive.name for e in d.program.eqns] == ["cos", "reduce_sum"]
    y = arr(np.ones((2, 3)))
    close(pt.closed_call(d, [y])[0], f(y, y)[2])
    d2, used2 = pt.dce_program(prog, [False, True, False, False], instantiate=True)
    assert used2 == [True, False] and not d2.program.eqns
    assert len(d2.program.in_binders) == 2
    plain, _ = pt.dce_program(prog.program if not prog.consts else _program(
        lambda x: [x * 2.0, x + 1.0], ShapedArray((), np.float64)).program, [True, False])
    assert len(plain.outs) == 1


# --- cond / switch -----------------------------------------------------------------------------


def _branchy(p, x):
    return lax.cond(p, lambda x: fnp.sin(x).sum() * x[0], lambda x: (x * x).sum(), x)


def _branchy_py(p, x):
    return fnp.sin(x).sum() * x[0] if p else (x * x).sum()


@pytest.mark.parametrize("pred", [True, False])
def test_cond_matches_python_and_grad(pred):
    x = arr([0.3, -1.2, 2.0])
    close(_branchy(pred, x), _branchy_py(pred, x))
    g = fnx.grad(_branchy, 1)(pred, x)
    close(g, fnx.grad(_branchy_py, 1)(pred, x))
    close(g, num_grad(lambda x: _branchy(pred, x), x), 1e-5)
    # second order through the staged cond
    h = fnx.hessian(lambda x: _branchy(pred, x))(x)
    close(h, fnx.hessian(lambda x: _branchy_py(pred, x))(x), 1e-8)


def test_cond_traced_predicate_grad_and_jvp():
    f = lambda x: _branchy(x.sum() > 1.0, x)  # noqa: E731
    for x in (arr([0.3, -1.2, 2.0]), arr([0.1, 0.2, 0.3])):
        close(fnx.grad(f)(x), num_grad(f, x), 1e-5)
        t = arr([1.0, 0.5, -1.0])
        _, jt = fnx.jvp(f, (x,), (t,))
        close(jt, num_grad(f, x) @ np.asarray(t), 1e-5)


def test_cond_pytrees_closures_and_multiple_operands():
    w = arr([1.0, 2.0])

    def f(p, a, b):
        return lax.cond(p, lambda a, b: {"s": a["u"] * w, "t": b},
                        lambda a, b: {"s": a["u"] + w, "t": b * 2.0}, a, b)

    a, b = {"u": arr([3.0, 4.0])}, arr(1.5)
    out = f(True, a, b)
    close(out["s"], [3.0, 8.0])
    close(out["t"], 1.5)
    out = f(False, a, b)
    close(out["s"], [4.0, 6.0])
    close(out["t"], 3.0)
    # gradient w.r.t. a closed-over outer value flows through the hoisted constants
    g = fnx.grad(lambda w_: lax.cond(True, lambda x: (x * w_).sum(), lambda x: x.sum(),
                                     arr([3.0, 4.0])))(w)
    close(g, [3.0, 4.0])


def test_cond_output_is_operand_or_constant_under_grad():
    def f(x, p):
        y, z, k = lax.cond(p, lambda x: (x, x * 2.0, arr(1.0)),
                           lambda x: (x * 3.0, x, arr(2.0)), x)
        return (y * z).sum() + k

    x = arr([1.0, 2.0])
    close(fnx.grad(f)(x, True), 4.0 * np.asarray(x))
    close(fnx.grad(f)(x, False), 6.0 * np.asarray(x))


def test_switch_clamps_and_matches_python():
    branches = [lambda x: x + 1.0, lambda x: x * 2.0, lambda x: -x]
    x = arr([1.0, 2.0])
    for i in range(-2, 6):
        close(lax.switch(i, branches, x), branches[min(max(i, 0), 2)](x))
    g = fnx.grad(lambda x: lax.switch(1, branches, x).sum())(x)
    close(g, [2.0, 2.0])
    # a traced index
    f = lambda x: lax.switch((x.sum() > 2.5).astype("int32") * 2, branches, x).sum()  # noqa
    close(fnx.grad(f)(x), [-1.0, -1.0])
    close(fnx.grad(f)(arr([0.5, 0.5])), [1.0, 1.0])


def test_cond_vmap_batched_predicate_selects():
    xs = arr(np.array([[1.0, 1.0, 0.0], [2.0, 2.0, 2.0], [-1.0, 0.5, 0.2]]))
    f = lambda x: _branchy(x.sum() > 1.0, x)  # noqa: E731
    out = fnx.vmap(f)(xs)
    close(out, [_branchy_py(bool(np.asarray(x).sum() > 1.0), x) for x in xs])
    g = fnx.vmap(fnx.grad(f))(xs)
    close(g, np.stack([num_grad(f, x) for x in xs]), 1e-5)
    g2 = fnx.grad(lambda xs: fnx.vmap(f)(xs).sum())(xs)
    close(g2, g, 1e-10)


def test_cond_vmap_unbatched_predicate_and_switch():
    xs = arr(np.arange(6.0).reshape(3, 2))
    out = fnx.vmap(lambda x: _branchy(True, fnp.concatenate([x, x])))(xs)
    close(out, [_branchy_py(True, fnp.concatenate([x, x])) for x in xs])
    idx = fnp.asarray(np.array([0, 1, 2, 7]), dtype="int32")
    branches = [lambda x: x + 1.0, lambda x: x * 2.0, lambda x: -x]
    ys = arr([1.0, 2.0, 3.0, 4.0])
    close(fnx.vmap(lambda i, y: lax.switch(i, branches, y))(idx, ys), [2.0, 4.0, -3.0, -4.0])
    close(fnx.vmap(lambda i: lax.switch(i, branches, arr(5.0)))(idx), [6.0, 10.0, -5.0, -5.0])


def test_cond_make_ir_shows_both_branches():
    text = str(fnx.make_ir(lambda x: _branchy(x.sum() > 1.0, x))(arr([1.0, 2.0])))
    assert "cond[" in text and "sin" in text and "mul" in text
    text = str(fnx.make_ir(fnx.grad(lambda x: _branchy(x.sum() > 1.0, x)))(arr([1.0, 2.0])))
    assert text.count("cond[") >= 2  # the known (primal + residuals) and the transposed cond


def test_cond_errors():
    x = arr([1.0, 2.0])
    with pytest.raises(TypeError, match="identical types"):
        lax.cond(True, lambda x: x, lambda x: x.sum(), x)
    with pytest.raises(TypeError, match="pytree structure"):
        lax.cond(True, lambda x: (x, x), lambda x: [x, x], x)
    with pytest.raises(ShapeError, match="predicate must be a scalar"):
        lax.cond(arr([True, False]) > 0, lambda x: x, lambda x: x, x)
    with pytest.raises(TypeError, match="must be callables"):
        lax.cond(True, x, x)
    with pytest.raises(TypeError, match="index must be an integer scalar"):
        lax.switch(arr(1.0), [lambda x: x], x)


def test_python_control_flow_still_works():
    def f(x):
        return x * 2.0 if x.sum() > 0 else x * 3.0

    close(fnx.grad(lambda x: f(x).sum())(arr([1.0, 2.0])), [2.0, 2.0])
    with pytest.raises(BatchingError, match="batched by fnx.vmap"):
        fnx.vmap(lambda x: f(x).sum())(arr(np.ones((2, 2))))


# --- while_loop -------------------------------------------------------------------------------


def _while_fn(x):
    return lax.while_loop(lambda c: c[0] < 5, lambda c: (c[0] + 1, fnp.sin(c[1]) * 1.1),
                          (0, x))[1]


def _while_py(x):
    for _ in range(5):
        x = fnp.sin(x) * 1.1
    return x


def test_while_loop_matches_python():
    assert int(lax.while_loop(lambda i: i < 10, lambda i: i + 3, 0)) == 12
    x = arr([0.7, -0.2])
    close(_while_fn(x), _while_py(x))
    out = lax.while_loop(lambda c: c["n"] < 3, lambda c: {"n": c["n"] + 1, "v": c["v"] * 2.0},
                         {"n": 0, "v": arr(1.0)})
    assert int(out["n"]) == 3
    close(out["v"], 8.0)
    # zero iterations
    close(lax.while_loop(lambda v: v > 100.0, lambda v: v * 2.0, arr(1.0)), 1.0)


def test_while_loop_jvp_and_linearize():
    x = arr([0.7, -0.2])
    t = arr([1.0, 2.0])
    y, jt = fnx.jvp(_while_fn, (x,), (t,))
    _, ref = fnx.jvp(_while_py, (x,), (t,))
    close(y, _while_py(x))
    close(jt, ref)
    close(fnx.jacfwd(_while_fn)(x), fnx.jacfwd(_while_py)(x))
    _, f_lin = fnx.linearize(_while_fn, x)
    close(f_lin(t), ref)
    # a closed-over value differentiated in forward mode
    g = lambda s: lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * s),  # noqa
                                 (0, arr(1.0)))[1]
    close(fnx.jvp(g, (arr(2.0),), (arr(1.0),))[1], 12.0)


def test_while_loop_reverse_mode_error():
    with pytest.raises(TraceError, match="Reverse-mode differentiation does not work for "
                                         "fnx.lax.while_loop.*fori_loop"):
        fnx.grad(lambda x: _while_fn(x).sum())(arr([0.7, -0.2]))


def test_while_loop_vmap_batched_and_unbatched_predicate():
    def h(n, x):
        return lax.while_loop(lambda c: c[0] < n, lambda c: (c[0] + 1, c[1] * 2.0 + 1.0),
                              (0, x))[1]

    def h_py(n, x):
        for _ in range(int(n)):
            x = x * 2.0 + 1.0
        return x

    ns = fnp.asarray(np.array([0, 1, 2, 5]))
    xs = arr([1.0, 2.0, 3.0, 4.0])
    close(fnx.vmap(h)(ns, xs), [h_py(n, x) for n, x in zip(np.asarray(ns), np.asarray(xs))])
    close(fnx.vmap(h, (None, 0))(3, xs), [h_py(3, x) for x in np.asarray(xs)])
    close(fnx.vmap(h, (0, None))(ns, arr(1.0)), [h_py(n, 1.0) for n in np.asarray(ns)])
    # forward-mode derivative of the batched-predicate loop
    jac = fnx.jacfwd(lambda x: fnx.vmap(h)(ns, x))(xs)
    close(jac, np.diag([2.0 ** n for n in np.asarray(ns)]))
    # staged: make_ir shows one while, not an unrolled loop
    text = str(fnx.make_ir(lambda x: fnx.vmap(h)(ns, x))(xs))
    assert text.count("while[") == 1 and "reduce_or" in text


def test_while_loop_errors():
    with pytest.raises(TypeError, match="boolean scalar"):
        lax.while_loop(lambda v: v, lambda v: v, arr(1.0))
    with pytest.raises(TypeError, match="identical types"):
        lax.while_loop(lambda v: v < 3, lambda v: v + 1.0, np.int64(0))
    # a carry started from a Python scalar takes its update's dtype instead (as JAX)
    assert lax.while_loop(lambda v: v < 3, lambda v: v + 1.0, 0).item() == 3.0
    with pytest.raises(TypeError, match="same pytree structure"):
        lax.while_loop(lambda v: v[0] < 3, lambda v: [v[0] + 1, v[1]], (0, 1))


def test_make_ir_shows_while_not_unrolled():
    text = str(fnx.make_ir(_while_fn)(arr([0.7, -0.2])))
    assert text.count("while[") == 1 and text.count("sin") == 1
    assert "cond_program" in text and "body_program" in text


# --- fori_loop --------------------------------------------------------------------------------


def test_fori_loop_static_and_traced_bounds():
    assert int(lax.fori_loop(0, 4, lambda i, x: x + i, 0)) == 6
    assert int(lax.fori_loop(fnp.asarray(2), fnp.asarray(5), lambda i, x: x + i, 0)) == 9
    assert int(lax.fori_loop(5, 2, lambda i, x: x + i, 0)) == 0
    text = str(fnx.make_ir(lambda x: lax.fori_loop(0, 3, lambda i, c: c * x, x))(arr(2.0)))
    assert "scan[" in text and "while[" not in text
    text = str(fnx.make_ir(lambda n, x: lax.fori_loop(0, n, lambda i, c: c * x, x))(
        fnp.asarray(3), arr(2.0)))
    assert "while[" in text


def test_fori_loop_grad_matches_unrolled_and_finite_differences():
    def g(x):
        return lax.fori_loop(0, 5, lambda i, c: fnp.sin(c) * x + i, x).sum()

    def g_py(x):
        c = x
        for i in range(5):
            c = fnp.sin(c) * x + i
        return c.sum()

    x = arr([0.3, -0.4])
    close(g(x), g_py(x))
    close(fnx.grad(g)(x), fnx.grad(g_py)(x), 1e-10)
    close(fnx.grad(g)(x), num_grad(g, x), 1e-5)
    close(fnx.hessian(g)(x), fnx.hessian(g_py)(x), 1e-8)


# --- scan -------------------------------------------------------------------------------------


def _rnn_setup(seed=0, n=4):
    rng = np.random.default_rng(seed)
    w = arr(rng.standard_normal((3, 3)) * 0.5)
    return w, arr(rng.standard_normal(3)), arr(rng.standard_normal((n, 3)))


def _rnn(w, h0, xs):
    def step(h, x):
        h = fnp.tanh(w @ h + x * x[0])
        return h, {"e": (h * h).sum(), "s": fnp.sin(h)}

    h, ys = lax.scan(step, h0, xs)
    return (h * h).sum() + ys["e"].sum() + (ys["s"] ** 2).sum()


def _rnn_py(w, h0, xs):
    h, total = h0, 0.0
    for i in range(xs.shape[0]):
        h = fnp.tanh(w @ h + xs[i] * xs[i][0])
        total = total + (h * h).sum() + (fnp.sin(h) ** 2).sum()
    return (h * h).sum() + total


def test_scan_matches_python():
    c, ys = lax.scan(lambda c, x: (c + x, c * x), 0.0, fnp.arange(3.0))
    close(c, 3.0)
    close(ys, [0.0, 0.0, 2.0])
    c, ys = lax.scan(lambda c, x: (c + x, c), 0.0, fnp.arange(4.0), reverse=True)
    close(c, 6.0)
    close(ys, [6.0, 5.0, 3.0, 0.0])
    c, ys = lax.scan(lambda c, _: (c + 1, c), 0, None, length=3)
    assert int(c) == 3 and np.asarray(ys).tolist() == [0, 1, 2]
    c, ys = lax.scan(lambda c, x: (c, x), arr(0.0), arr(np.zeros((0, 2))))
    assert ys.shape == (0, 2)
    w, h0, xs = _rnn_setup()
    close(_rnn(w, h0, xs), _rnn_py(w, h0, xs))
    close(lax.map(lambda x: x * 2.0, fnp.arange(3.0)), [0.0, 2.0, 4.0])


def test_scan_grad_matches_unrolled_and_finite_differences():
    w, h0, xs = _rnn_setup(1)
    g = fnx.grad(_rnn, (0, 1, 2))(w, h0, xs)
    g_py = fnx.grad(_rnn_py, (0, 1, 2))(w, h0, xs)
    for a, b in zip(g, g_py):
        close(a, b, 1e-10)
    close(g[2], num_grad(lambda xs: _rnn(w, h0, xs), xs), 1e-5)
    close(g[0], num_grad(lambda w: _rnn(w, h0, xs), w), 1e-5)


def test_scan_reverse_grad_and_jvp():
    def f(xs):
        c, ys = lax.scan(lambda c, x: (fnp.sin(c) * x, c * x), arr(0.5), xs, reverse=True)
        return c + (ys * ys).sum()

    def f_py(xs):
        c, ys = arr(0.5), []
        for i in reversed(range(xs.shape[0])):
            ys.append(c * xs[i])
            c = fnp.sin(c) * xs[i]
        return c + (fnp.stack(ys) ** 2).sum()

    xs = arr([0.3, 1.2, -0.7, 2.0])
    close(f(xs), f_py(xs))
    close(fnx.grad(f)(xs), fnx.grad(f_py)(xs), 1e-10)
    t = arr([1.0, -1.0, 0.5, 0.25])
    close(fnx.jvp(f, (xs,), (t,))[1], fnx.jvp(f_py, (xs,), (t,))[1], 1e-10)


def test_scan_higher_order_and_jacrev():
    w, h0, xs = _rnn_setup(2, n=3)
    f = lambda xs: _rnn(w, h0, xs)  # noqa: E731
    f_py = lambda xs: _rnn_py(w, h0, xs)  # noqa: E731
    close(fnx.hessian(f)(xs), fnx.hessian(f_py)(xs), 1e-8)
    close(fnx.jacrev(fnx.grad(f))(xs), fnx.hessian(f_py)(xs), 1e-8)


def test_scan_vmap_matches_loop():
    w, h0, _ = _rnn_setup(3)
    xsb = arr(np.random.default_rng(3).standard_normal((5, 4, 3)))
    out = fnx.vmap(lambda xs: _rnn(w, h0, xs))(xsb)
    close(out, [_rnn_py(w, h0, xsb[i]) for i in range(5)])
    # batched along a non-leading axis, batched carry, unbatched xs
    out2 = fnx.vmap(lambda xs: _rnn(w, h0, xs), in_axes=1)(fnp.moveaxis(xsb, 0, 1))
    close(out2, out)
    h0s = arr(np.random.default_rng(4).standard_normal((5, 3)))
    out3 = fnx.vmap(lambda h: _rnn(w, h, xsb[0]))(h0s)
    close(out3, [_rnn_py(w, h0s[i], xsb[0]) for i in range(5)])
    gb = fnx.vmap(fnx.grad(lambda xs: _rnn(w, h0, xs)))(xsb)
    close(gb, np.stack([fnx.grad(lambda xs: _rnn_py(w, h0, xs))(xsb[i]) for i in range(5)]),
          1e-10)
    # a carry that only becomes batched inside the body (fixed point on batching)
    ys = fnx.vmap(lambda x: lax.scan(lambda c, _: (c + x, c), arr(0.0), None, length=3)[1])(
        arr([1.0, 2.0]))
    close(ys, [[0.0, 1.0, 2.0], [0.0, 2.0, 4.0]])


def test_scan_make_ir_is_not_unrolled():
    w, h0, xs = _rnn_setup()
    text = str(fnx.make_ir(lambda xs: _rnn(w, h0, xs))(xs))
    assert text.count("scan[") == 1 and text.count("tanh") == 1
    text = str(fnx.make_ir(fnx.grad(lambda xs: _rnn(w, h0, xs)))(xs))
    assert text.count("scan[") == 2 and "reverse=True" in text
    # loop-invariant residuals (the weights) are not stacked per iteration
    assert "f64[4,3,3]" not in text
    # a residual that is the x slice itself is read from xs, not restacked by the forward scan
    listing = fnx.make_ir(fnx.grad(lambda xs: lax.scan(lambda c, x: (c * x, None), arr(1.0),
                                                      xs)[0]))(arr([1.0, 2.0, 3.0]))
    first_scan = [e for e in listing.program.eqns if e.primitive.name == "scan"][0]
    assert len(first_scan.out_binders) == 2  # final carry + the carries (c) per iteration


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4), st.booleans(), st.integers(0, 10_000))
def test_scan_grad_property(n, reverse, seed):
    rng = np.random.default_rng(seed)
    xs = arr(rng.uniform(-1, 1, (n, 2)))
    c0 = arr(rng.uniform(-1, 1, 2))

    def f(c0, xs):
        c, ys = lax.scan(lambda c, x: (c * fnp.cos(x) + x, (c * x).sum()), c0, xs,
                         reverse=reverse)
        return c.sum() + (ys * ys).sum()

    close(fnx.grad(f)(c0, xs), num_grad(lambda c: f(c, xs), c0), 1e-5)
    close(fnx.grad(f, 1)(c0, xs), num_grad(lambda x: f(c0, x), xs), 1e-5)


def test_scan_errors():
    with pytest.raises(TypeError, match="carry output must have the same types"):
        lax.scan(lambda c, x: (c + x, None), np.int64(0), arr([1.0, 2.0]))
    with pytest.raises(ShapeError, match="different leading axis sizes"):
        lax.scan(lambda c, x: (c, None), 0.0, (arr([1.0]), arr([1.0, 2.0])))
    with pytest.raises(ValueError, match="pass length="):
        lax.scan(lambda c, x: (c, None), 0.0, None)
    with pytest.raises(TypeError, match="must return a pair"):
        lax.scan(lambda c, x: c, 0.0, arr([1.0]))
    with pytest.raises(TypeError, match="same pytree structure"):
        lax.scan(lambda c, x: ((c, c), None), (0.0, 0.0), arr([1.0]))


def test_nested_control_flow_under_grad():
    def f(x):
        def body(c, xi):
            c = lax.cond(xi > 0.0, lambda c: c * xi, lambda c: fnp.sin(c) - xi, c)
            return c, c
        c, ys = lax.scan(body, x, arr([0.5, -1.0, 2.0]))
        return c + ys.sum()

    def f_py(x):
        c, total = x, 0.0
        for xi in (0.5, -1.0, 2.0):
            c = c * xi if xi > 0 else fnp.sin(c) - xi
            total = total + c
        return c + total

    x = arr(0.8)
    close(f(x), f_py(x))
    close(fnx.grad(f)(x), fnx.grad(f_py)(x), 1e-10)
    close(fnx.vmap(fnx.grad(f))(arr([0.8, -0.3])),
          [fnx.grad(f_py)(arr(v)) for v in (0.8, -0.3)], 1e-10)


def test_control_flow_linearize_backward_pass_directly():
    # the linear program of a scan transposes through backward_pass
    xs = arr([0.3, 1.2])
    f = lambda xs: [lax.scan(lambda c, x: (c * x, c), arr(1.0), xs)[0]]  # noqa: E731
    outs, program, consts = linearize_flat(f, [xs])
    (ct,) = backward_pass(program, [*consts, UndefinedPrimal(ShapedArray((2,), np.float64))],
                          [arr(1.0)])
    close(ct, [1.2, 0.3])
