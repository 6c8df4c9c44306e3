"""The primitive contract (docs/architecture.md): every registered primitive has impl +
abstract_eval + a batching rule + (jvp | linear+transpose | non-differentiable), hashable
params, an op_db record; and impl outputs match abstract_eval on every op_db sample."""

import numpy as np
import pytest

import fnx  # noqa: F401
import fnx.numpy as fnp
from fnx.core.ir import Literal
from fnx.core.primitive import PRIMITIVES
from op_db import RECORDS, UNRECORDED, covered_primitives, sample_args

# Primitives that legitimately have no batch rule.
NO_BATCH_RULE = {
    "iota": "has no operands, so vmap never sees it with a batched argument",
}
# Opaque primitives that jit never runs from its orchestrator (so they declare no call_kind).
NOT_ORCHESTRATED = {
    "jit_call": "nested jit calls are inlined into the caller (fnx/jit/passes.py)",
    "custom_lin": "linearized custom_vjp rules are transposed before jit sees a program",
}
# Primitives defined by tests (e.g. deliberately wrong rules) are not part of the library.
_TEST_PREFIX = "test_"


def _library_prims():
    return sorted(n for n in PRIMITIVES if not n.startswith(_TEST_PREFIX))


@pytest.mark.parametrize("name", _library_prims())
def test_primitive_has_all_rules(name):
    prim = PRIMITIVES[name]
    assert callable(prim.impl), f"{name}: no impl"
    assert callable(prim.abstract_eval), f"{name}: no abstract_eval"
    if name not in NO_BATCH_RULE and not getattr(prim, "no_batch_reason", None):
        assert callable(prim.batch), f"{name}: no batch rule"
    if prim.differentiable:
        if prim.linear:
            assert callable(prim.transpose), f"{name}: linear but no transpose rule"
        else:
            assert callable(prim.jvp), (
                f"{name}: differentiable but no jvp rule (set linear=True + transpose, or "
                f"differentiable=False)")
    assert prim.fusion_kind in ("elementwise", "reduce", "layout", "opaque"), prim.fusion_kind
    if prim.fusion_kind == "elementwise":
        assert prim.scalar_expr, f"{name}: elementwise but no scalar_expr"
    if prim.fusion_kind == "reduce":
        assert prim.reducer is not None, f"{name}: reduce but no reducer"
    assert prim.call_kind in (None, "impl", "view", "blas"), prim.call_kind
    if prim.fusion_kind == "opaque" and name not in NOT_ORCHESTRATED:
        # jit runs it from the orchestrator: the primitive says how (no silent fallback)
        assert prim.call_kind or prim.lower or prim.call_program, (
            f"{name}: opaque with no jit lowering; set call_kind='impl' (its eager impl), "
            f"'view' or 'blas', a compiled lower(eqn), or call_program")


def test_every_primitive_has_an_op_db_record():
    missing = set(_library_prims()) - covered_primitives() - set(UNRECORDED)
    assert not missing, (
        f"primitives without an op_db record: {sorted(missing)}; add one to tests/op_db.py "
        f"(or to UNRECORDED with a reason)")


def _staged(rec, args):
    return fnx.make_ir(rec.op)(*[fnp.asarray(a) for a in args])


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: r.name)
def test_params_hashable(rec):
    rng = np.random.default_rng(0)
    listing = _staged(rec, sample_args(rng, rec, rec.shapes[0], rec.dtypes[0]))
    for eqn in listing.program.eqns:
        hash(tuple(sorted(eqn.params.items())))


@pytest.mark.parametrize("rec", RECORDS, ids=lambda r: r.name)
def test_impl_matches_abstract_eval(rec):
    """Stage the op, then run every equation's ``impl`` on concrete buffers and compare its
    outputs with the avals ``abstract_eval`` gave the equation's binders."""
    rng = np.random.default_rng(0)
    for dtype in rec.dtypes:
        for shapes in rec.shapes:
            args = sample_args(rng, rec, shapes, dtype)
            listing = _staged(rec, args)
            program = listing.program
            env = {}
            consts = [np.asarray(c) for c in listing.consts]
            for v, val in zip(program.in_binders, consts + list(args), strict=True):
                env[v] = np.asarray(val)
            for eqn in program.eqns:
                ins = [np.asarray(x.val) if isinstance(x, Literal) else env[x]
                       for x in eqn.inputs]
                out = eqn.primitive.impl(*ins, **eqn.params)
                outs = out if eqn.primitive.multiple_results else [out]
                for v, o in zip(eqn.out_binders, outs, strict=True):
                    assert tuple(o.shape) == tuple(v.aval.shape), (eqn, o.shape, v.aval)
                    assert np.dtype(o.dtype) == np.dtype(v.aval.dtype), (eqn, o.dtype, v.aval)
                    env[v] = np.asarray(o)


@pytest.mark.parametrize("rec", [r for r in RECORDS if r.kind == "primitive" and r.prims
                                 and r.nargs > 0], ids=lambda r: r.name)
def test_eager_bind_matches_abstract_eval_under_staging(rec):
    # the staged (make_ir) type of the op equals the eager result's type
    rng = np.random.default_rng(0)
    args = [fnp.asarray(a) for a in sample_args(rng, rec, rec.shapes[0], rec.dtypes[0])]
    eager = rec.op(*args)
    listing = fnx.make_ir(rec.op)(*args)
    outs = eager if isinstance(eager, (tuple, list)) else [eager]
    for o, aval in zip(outs, listing.program.out_avals, strict=True):
        assert tuple(o.shape) == tuple(aval.shape)
        assert o.dtype == aval.dtype
