"""Each transform on its own: hand-derived values and argument handling. The blocks of
docs/transforms.md run in tests/test_docs.py, which also checks the IR listings they print."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp


def f64(x):
    return fnp.asarray(np.asarray(x, dtype=np.float64))


def close(a, b, tol=1e-10):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=tol, atol=tol)


# --- jvp / linearize ---------------------------------------------------------------------------


def test_jvp_values_and_zero_tangent_for_unused_input():
    y, t = fnx.jvp(lambda x, y: x * fnp.exp(y), (f64(2.0), f64(0.0)), (f64(1.0), f64(0.0)))
    close(y, 2.0)
    close(t, 1.0)
    # an output independent of the inputs has a zero tangent (instantiated)
    _, t = fnx.jvp(lambda x: fnp.ones(3), (f64(1.0),), (f64(1.0),))
    close(t, np.zeros(3))


def test_jvp_integer_primal_has_no_tangent():
    _, t = fnx.jvp(lambda x, n: x * n, (f64(2.0), fnp.asarray(3)), (f64(1.0), fnp.asarray(0)))
    close(t, 3.0)


def test_linearize_reuses_linear_program():
    y, f_lin = fnx.linearize(lambda x: fnp.sin(x) * x, f64([0.1, 0.2]))
    for v in ([1.0, 0.0], [0.0, 2.0]):
        xs = np.array([0.1, 0.2])
        close(f_lin(f64(v)), (np.cos(xs) * xs + np.sin(xs)) * np.array(v))


# --- vjp / grad -------------------------------------------------------------------------------


def test_vjp_multiple_outputs():
    y, f_vjp = fnx.vjp(lambda x: (x * 2, fnp.sum(x ** 2)), f64([1.0, 2.0]))
    (g,) = f_vjp((f64([1.0, 1.0]), f64(1.0)))
    close(g, [2 + 2, 2 + 4])


def test_grad_of_constant_function_is_zero():
    close(fnx.grad(lambda x: fnp.asarray(1.0, dtype=fnp.float64))(f64([1.0, 2.0])), [0, 0])
    close(fnx.grad(lambda x, y: fnp.sum(y))(f64(1.0), f64([1.0])), 0.0)


def test_grad_dtype_follows_input():
    assert fnx.grad(lambda x: x * x)(fnp.asarray(1.0, dtype=fnp.float32)).dtype == np.float32
    assert fnx.grad(lambda x: x * x)(f64(1.0)).dtype == np.float64


def test_value_and_grad():
    v, g = fnx.value_and_grad(lambda x: fnp.sum(x ** 3))(f64([1.0, 2.0]))
    close(v, 9.0)
    close(g, [3.0, 12.0])


def test_grad_through_matmul_broadcast_and_reductions():
    a = f64(np.arange(6.0).reshape(2, 3))
    g = fnx.grad(lambda a: fnp.mean(fnp.sum(a @ a.T, axis=0) + a[:, :1]))(a)
    # d/da sum(a a^T) = 2 * (column sums of a broadcast); mean adds 1/2 to column 0 entries
    expected = 2 * np.broadcast_to(np.asarray(a).sum(0), (2, 3)) / 2
    expected = expected.copy()
    expected[:, 0] += 1 / 2 * 2 / 2
    close(g, expected)


# --- jacobians ----------------------------------------------------------------------------------


def test_jacfwd_jacrev_multiple_args_and_outputs():
    def f(x, y):
        return {"p": x * y, "s": fnp.sum(x)}

    x, y = f64([1.0, 2.0]), f64([3.0, 4.0])
    for jac in (fnx.jacfwd, fnx.jacrev):
        j = jac(f, argnums=(0, 1))(x, y)
        close(j["p"][0], np.diag([3.0, 4.0]))
        close(j["p"][1], np.diag([1.0, 2.0]))
        close(j["s"][0], [1.0, 1.0])
        close(j["s"][1], [0.0, 0.0])


def test_jacobian_of_scalar_to_matrix():
    j = fnx.jacrev(lambda t: fnp.stack([fnp.sin(t), fnp.cos(t)]))(f64(0.3))
    close(j, [np.cos(0.3), -np.sin(0.3)])
    close(fnx.jacfwd(lambda t: fnp.stack([fnp.sin(t), fnp.cos(t)]))(f64(0.3)), j)


# --- vmap ----------------------------------------------------------------------------------------


def test_vmap_out_axes_and_in_axes_list():
    xs = f64(np.arange(6.0).reshape(2, 3))
    out = fnx.vmap(lambda x: x * 2, in_axes=[1], out_axes=1)(xs)
    close(out, np.asarray(xs) * 2)
    out = fnx.vmap(lambda x: fnp.stack([x, x]), out_axes=-1)(xs)
    assert out.shape == (2, 3, 2)


def test_vmap_unbatched_output_broadcasts():
    out = fnx.vmap(lambda x: f64(1.0))(f64([1.0, 2.0, 3.0]))
    close(out, [1.0, 1.0, 1.0])


def test_vmap_size_zero():
    out = fnx.vmap(lambda x: fnp.sum(x * 2))(fnp.zeros((0, 3)))
    assert out.shape == (0,)


# --- make_ir ------------------------------------------------------------------------------------


def test_make_ir_lists_primitives_and_static_args():
    ir = fnx.make_ir(lambda x, n: x * n, static_argnums=1)(fnp.ones(2), 3)
    text = str(ir)
    assert "mul" in text and "3" in text
    assert [a.shape for a in ir.program.in_avals] == [(2,)]


def test_make_ir_of_vjp_program_is_typechecked():
    from fnx.core.ir import typecheck

    ir = fnx.make_ir(fnx.grad(lambda x: fnp.sum(fnp.sin(x) * x)))(fnp.ones(3))
    assert typecheck(ir.program)[0].shape == (3,)
    prims = {e.primitive.name for e in ir.program.eqns}
    assert {"sin", "cos", "mul"} <= prims


@pytest.mark.parametrize("transform", ["grad", "vmap", "jvp"])
def test_make_ir_eval_matches_eager(transform):
    from fnx.core.ir import eval_program

    f = lambda x: fnp.sum(fnp.tanh(x) ** 2)  # noqa: E731
    g = {"grad": fnx.grad(f), "vmap": fnx.vmap(fnp.tanh),
         "jvp": lambda x: fnx.jvp(f, (x,), (fnp.ones_like(x),))[1]}[transform]
    x = f64([0.1, -0.4, 2.0])
    ir = fnx.make_ir(g)(x)
    (out,) = eval_program(ir.program, [*ir.consts, x])
    close(out, g(x))
