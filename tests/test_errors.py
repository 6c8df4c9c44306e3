"""Transform-related error messages (R13): each documented misuse raises the documented message."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.errors import BatchingError, ConcretizationError, ShapeError, TraceError


def test_grad_integer_input():
    with pytest.raises(TypeError, match=r"grad requires floating-point inputs.*int.*astype"):
        fnx.grad(lambda x: x * 2.0)(fnp.asarray(3))


def test_grad_non_scalar_output():
    with pytest.raises(TypeError, match=r"grad requires a function with a scalar output.*"
                                        r"\.sum\(\).*fnx\.vjp"):
        fnx.grad(lambda x: x * 2.0)(fnp.ones(3))


def test_grad_integer_output():
    with pytest.raises(TypeError, match="floating-point output"):
        fnx.grad(lambda x: fnp.sum(x).astype(fnp.int32))(fnp.ones(3))


def test_grad_has_aux_wrong_return():
    with pytest.raises(TypeError, match=r"has_aux=True.*\(value, aux\)"):
        fnx.grad(lambda x: fnp.sum(x), has_aux=True)(fnp.ones(3))


def test_grad_argnums_out_of_range():
    with pytest.raises(ValueError, match="argnums 2 out of range for 1"):
        fnx.grad(lambda x: x, argnums=2)(fnp.asarray(1.0))


def test_grad_non_array_argument():
    with pytest.raises(TypeError, match="arguments must be arrays or pytrees of arrays.*str"):
        fnx.grad(lambda x: 1.0)("hello")


def test_jvp_arguments_must_be_tuples():
    with pytest.raises(TypeError, match="primals and tangents must be tuples"):
        fnx.jvp(fnp.sin, fnp.ones(2), fnp.ones(2))


def test_jvp_tangent_shape_and_dtype():
    with pytest.raises(ValueError, match=r"primal shape \(2,\) and tangent shape \(3,\)"):
        fnx.jvp(fnp.sin, (fnp.ones(2),), (fnp.ones(3),))
    with pytest.raises(TypeError, match="primal dtype float32 and tangent dtype float64"):
        fnx.jvp(fnp.sin, (fnp.ones(2),), (fnp.ones(2, dtype=fnp.float64),))


def test_jvp_structure_mismatch():
    with pytest.raises(ValueError, match="differ in structure"):
        fnx.jvp(lambda a, b: a, (fnp.ones(2), fnp.ones(2)), (fnp.ones(2),))


def test_vjp_cotangent_shape_and_structure():
    _, f_vjp = fnx.vjp(fnp.sin, fnp.ones(3))
    with pytest.raises(ShapeError, match=r"cotangent shape \(2,\) does not match the output "
                                         r"shape \(3,\)"):
        f_vjp(fnp.ones(2))
    with pytest.raises(ValueError, match="cotangent structure"):
        f_vjp((fnp.ones(3), fnp.ones(3)))


def test_linearize_tangent_structure():
    _, f_lin = fnx.linearize(lambda a, b: a * b, fnp.ones(2), fnp.ones(2))
    with pytest.raises(ValueError, match="tangents .* do not match primals"):
        f_lin(fnp.ones(2))


def test_vmap_branch_on_batched_value():
    with pytest.raises(BatchingError, match=r"batched by fnx\.vmap.*fnp\.where\(cond, a, b\).*"
                                            r"fnx\.lax\.cond"):
        fnx.vmap(lambda x: x if x > 0 else -x)(fnp.ones(3))


def test_vmap_mismatched_sizes():
    with pytest.raises(ValueError, match="mapped axes have different sizes"):
        fnx.vmap(lambda a, b: a + b)(fnp.ones(3), fnp.ones(4))


def test_vmap_axis_out_of_range():
    with pytest.raises(ValueError, match=r"in_axes 2 is out of range for an argument of shape"):
        fnx.vmap(lambda a: a, in_axes=2)(fnp.ones((3, 2)))


def test_vmap_nothing_mapped():
    with pytest.raises(ValueError, match="no argument is mapped.*axis_size"):
        fnx.vmap(lambda a: a, in_axes=None)(fnp.ones(3))


def test_vmap_in_axes_length():
    with pytest.raises(ValueError, match="in_axes has 1 entries for 2 positional arguments"):
        fnx.vmap(lambda a, b: a, in_axes=(0,))(fnp.ones(3), fnp.ones(3))


def test_vmap_in_axes_bad_spec():
    with pytest.raises(TypeError, match="axis specs must be ints or None"):
        fnx.vmap(lambda d: d["a"], in_axes=({"a": "x"},))({"a": fnp.ones(3)})


def test_vmap_out_axes_none_for_batched_output():
    with pytest.raises(ValueError, match="out_axes=None for an output that depends on the mapped"):
        fnx.vmap(lambda a: a, out_axes=None)(fnp.ones(3))


def test_make_ir_branch_on_traced_value():
    with pytest.raises(ConcretizationError, match=r"Abstract tracer value bool\[\].*"
                                                  r"static_argnums.*fnx\.lax\.cond"):
        fnx.make_ir(lambda x: x if x > 0 else -x)(fnp.asarray(1.0))


def test_leaked_tracer():
    leaked = []

    def f(x):
        leaked.append(x)
        return x * 2

    fnx.grad(f)(fnp.asarray(1.0))
    with pytest.raises(TraceError, match="leaked tracer|after its transform returned"):
        fnp.sin(leaked[0]) + 1.0


def test_while_loop_reverse_mode():
    with pytest.raises(TraceError, match="Reverse-mode differentiation does not work for "
                                         "fnx.lax.while_loop.*scan.*fori_loop"):
        fnx.grad(lambda x: fnx.lax.while_loop(lambda c: c < 10.0, lambda c: c * x, x))(
            fnp.asarray(2.0))


def test_nondifferentiable_primitive_without_rule():
    from fnx.core.ops.family import elementwise
    from fnx.core.primitive import PRIMITIVES

    prim = elementwise("test_no_jvp", 1, np.sin, "sin({0})", "inexact")
    try:
        with pytest.raises(TraceError, match="test_no_jvp has no JVP rule.*custom_jvp"):
            fnx.grad(lambda x: prim.bind(x))(fnp.asarray(1.0))
    finally:
        PRIMITIVES.pop("test_no_jvp", None)


def test_primitive_shape_errors_name_the_op():
    from fnx.core.ops.elementwise import add_p
    from fnx.core.ops.linalg import dot_general_p

    with pytest.raises(ShapeError,
                       match=r"add: operands must have equal shapes.*fnp\.broadcast_to"):
        fnx.vmap(lambda a: add_p.bind(a, fnp.ones(4)))(fnp.ones((2, 3)))
    with pytest.raises(ShapeError, match=r"dot_general: shapes \(2, 3\) and \(4,\)"):
        fnx.grad(lambda a: fnp.sum(dot_general_p.bind(
            a, fnp.ones(4), dimension_numbers=(((1,), (0,)), ((), ())))))(fnp.ones((2, 3)))


def test_item_and_bool_of_a_traced_value_inside_jit_name_the_line_and_the_fix():
    def uses_item(x):
        return x * x.sum().item()

    def uses_bool(x):
        return x if x.sum() > 0 else -x

    line_item = uses_item.__code__.co_firstlineno + 1
    line_bool = uses_bool.__code__.co_firstlineno + 1
    for fn, line in [(uses_item, line_item), (uses_bool, line_bool)]:
        with pytest.raises(ConcretizationError,
                           match=rf"in the function '{fn.__name__}' compiled by fnx\.jit.*"
                                 rf"test_errors\.py:{line} \({fn.__name__}\).*"
                                 rf"static_argnums.*fnp\.where.*fnx\.lax\.cond"):
            fnx.jit(fn)(fnp.ones(3))


def test_integer_arrays_cannot_require_grad():
    for make in [lambda: fnx.tensor([1, 2], requires_grad=True),
                 lambda: fnx.zeros(3, dtype=fnx.int64, requires_grad=True),
                 lambda: fnx.nn.Parameter(fnx.tensor([1, 2]))]:
        with pytest.raises(TypeError, match=r"only floating-point and complex arrays can "
                                            r"require gradients, got dtype int64"):
            make()


def test_a_failing_impl_runs_once_and_reports_the_error(monkeypatch):
    """The eager fast path reports an impl's failure itself: running the impl again on the
    general path repeated its effects (a collective made a second MPI call)."""
    from fnx.core import tracing
    from fnx.core.abstract import ShapedArray
    from fnx.core.primitive import PRIMITIVES, Primitive

    monkeypatch.setattr(tracing, "check_rules", False)  # the fast path runs only without it
    calls = []

    def impl(x):
        calls.append(1)
        raise ValueError("boom")

    p = Primitive("fails_once_test")
    PRIMITIVES.pop("fails_once_test")  # a test primitive, not one of fnx's (contract tests)
    p.impl = impl
    p.abstract_eval = lambda x: ShapedArray(x.shape, x.dtype)
    with pytest.raises(Exception, match="fails_once_test"):
        p.bind(fnx.ones(2))
    assert len(calls) == 1
