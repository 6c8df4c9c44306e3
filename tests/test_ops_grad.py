"""Derivatives of every differentiable op_db record: ``fnx.testing.check_grads`` in float64,
forward and reverse mode, up to the record's order (2 where smooth), plus JVP-vs-VJP
consistency (``<u, J v>`` computed by jvp equals ``<J^T u, v>`` computed by vjp)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx
import fnx.numpy as fnp
from fnx.testing import check_grads
from op_db import RECORDS, sample_args

GRAD_RECORDS = [r for r in RECORDS if r.grad > 0]


def _nonempty(shapes):
    return [s for s in shapes if all(0 not in shape for shape in s)] or list(shapes)


def _args(rec, data):
    shapes = data.draw(st.sampled_from(_nonempty(rec.shapes)), label="shapes")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    args = sample_args(np.random.default_rng(seed), rec, shapes, rec.grad_dtype,
                       rec.grad_domains)
    return tuple(fnp.asarray(a) for a in args)


@pytest.mark.parametrize("rec", GRAD_RECORDS, ids=lambda r: r.name)
@settings(max_examples=3, deadline=None)
@given(data=st.data())
def test_check_grads(rec, data):
    args = _args(rec, data)
    check_grads(rec.op, args, order=rec.grad, modes=rec.grad_modes)


@pytest.mark.parametrize("rec", GRAD_RECORDS, ids=lambda r: r.name)
@settings(max_examples=2, deadline=None)
@given(data=st.data())
def test_jvp_vjp_consistency(rec, data):
    if set(rec.grad_modes) != {"fwd", "rev"}:
        pytest.skip(f"{rec.name}: only {rec.grad_modes} mode(s): {rec.why}")
    args = _args(rec, data)
    rng = np.random.default_rng(1)
    diff = [i for i, a in enumerate(args) if a.dtype.kind == "f"]

    def f(*d):
        full = list(args)
        for i, v in zip(diff, d):
            full[i] = v
        return rec.op(*full)

    primals = tuple(args[i] for i in diff)
    tangents = tuple(fnp.asarray(rng.standard_normal(p.shape)) for p in primals)
    out, t_out = fnx.jvp(f, primals, tangents)
    out_l, tree = fnx.tree.flatten(out)
    cts = [fnp.asarray(rng.standard_normal(o.shape)) for o in out_l]
    _, f_vjp = fnx.vjp(f, *primals)
    ct_in = f_vjp(fnx.tree.unflatten(tree, cts))
    lhs = sum(float(np.sum(np.asarray(c) * np.asarray(t)))
              for c, t in zip(cts, fnx.tree.leaves(t_out)))
    rhs = sum(float(np.sum(np.asarray(c) * np.asarray(t))) for c, t in zip(ct_in, tangents))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-9)


# --- explicit edge points (kinks): order 1, conventions documented in docs/transforms.md ------


def test_check_grads_catches_wrong_rule():
    from fnx.core.ops import elementwise as ew
    from fnx.core.ops.family import defjvp, elementwise

    bad = elementwise("test_bad_sin", 1, np.sin, "sin({0})", "inexact")
    defjvp(bad, lambda t, ans, x: t * ew.sin_p.bind(x))  # wrong: should be cos
    try:
        with pytest.raises(AssertionError, match="finite differences"):
            check_grads(bad.bind, (fnp.asarray([0.3, 1.0]),), order=1, modes=("fwd",))
        with pytest.raises(AssertionError, match="inner-product"):
            check_grads(bad.bind, (fnp.asarray([0.3, 1.0]),), order=1, modes=("rev",))
    finally:
        from fnx.core.primitive import PRIMITIVES

        PRIMITIVES.pop("test_bad_sin", None)


def test_check_grads_order2_catches_wrong_second_derivative():
    # the first derivative is right, its own JVP is not: cos'(x) claimed to be +sin(x)
    from fnx.core.ops import elementwise as ew
    from fnx.core.ops.family import defjvp, elementwise
    from fnx.core.primitive import PRIMITIVES

    fake_cos = elementwise("test_fake_cos", 1, np.cos, "cos({0})", "inexact")
    defjvp(fake_cos, lambda t, ans, x: t * ew.sin_p.bind(x))
    my_sin = elementwise("test_my_sin", 1, np.sin, "sin({0})", "inexact")
    defjvp(my_sin, lambda t, ans, x: t * fake_cos.bind(x))
    try:
        check_grads(my_sin.bind, (fnp.asarray([0.3, 1.0]),), order=1)
        with pytest.raises(AssertionError):
            check_grads(my_sin.bind, (fnp.asarray([0.3, 1.0]),), order=2)
    finally:
        PRIMITIVES.pop("test_fake_cos", None)
        PRIMITIVES.pop("test_my_sin", None)


def test_check_grads_pytree_args_and_int_leaves():
    def f(params, n):
        return fnp.sum(fnp.tanh(params["w"] @ params["b"])) * n

    params = {"w": fnp.asarray(np.random.default_rng(0).standard_normal((3, 2))),
              "b": fnp.asarray(np.array([0.5, -1.0]))}
    check_grads(f, (params, fnp.asarray(3)), order=2)


def test_check_grads_rejects_bad_mode():
    with pytest.raises(ValueError, match="unknown mode"):
        check_grads(fnp.sin, (fnp.asarray(1.0),), modes=("bwd",))
