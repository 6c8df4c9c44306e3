"""Family helpers (R2): they fill in the shared rules so a common primitive is a few lines.

Elementwise primitives are strict: every operand has the same shape and dtype. ``fnx.numpy``
inserts ``broadcast_in_dim`` and ``convert_element_type`` explicitly, which keeps transposes
trivial (the transpose of a broadcast is a sum) and gives fusion explicit index maps.
"""

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero, add_tangents
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive

KINDS = {
    "bool": "b",
    "int": "iu",
    "intbool": "biu",
    "float": "f",
    "inexact": "fc",
    "real": "biuf",
    "numeric": "iufc",
    "any": "biufc",
}


def check_same_avals(name, avals):
    first = avals[0]
    for a in avals[1:]:
        if a.shape != first.shape:
            shapes = ", ".join(str(x.shape) for x in avals)
            raise ShapeError(
                f"{name}: operands must have equal shapes, got {shapes}; use fnx.numpy."
                f"{name} (which broadcasts) or fnp.broadcast_to first"
            )
        if a.dtype != first.dtype:
            dts = ", ".join(str(x.dtype) for x in avals)
            raise DTypeError(
                f"{name}: operands must have equal dtypes, got {dts}; convert with .astype()"
            )


def elementwise(name, nargs, impl, scalar_expr, kinds="any", out_dtype=None, differentiable=True):
    """An elementwise primitive over ``nargs`` same-shape, same-dtype operands.

    ``scalar_expr`` is a template over ``{0}``, ``{1}``... in the scalar vocabulary of
    ``fnx/jit/scalar.py``; ``out_dtype`` (a dtype) fixes the result dtype (comparisons -> bool).
    """
    prim = Primitive(name)
    allowed = KINDS[kinds]

    def abstract_eval(*avals, **params):
        del params  # unused
        if len(avals) != nargs:
            raise TypeError(f"{name} takes {nargs} operands, got {len(avals)}")
        check_same_avals(name, avals)
        dt = avals[0].dtype
        if dt.kind not in allowed:
            unsupported(dt)
        return ShapedArray(avals[0].shape, out_dtype or dt)

    def unsupported(dt):
        raise DTypeError(f"{name}: dtype {dt} is not supported (expected a {kinds} dtype)")

    prim.impl = impl
    prim.dtype_kinds = allowed
    prim.abstract_eval = abstract_eval
    prim.batch = lambda axis_size, args, dims, **params: elementwise_batch(
        prim, axis_size, args, dims, **params
    )
    prim.fusion_kind = "elementwise"
    prim.scalar_expr = scalar_expr
    prim.differentiable = differentiable and out_dtype is None
    return prim


def elementwise_batch(prim, axis_size, args, dims, **params):
    """Batch rule of every elementwise primitive: align batch dims at 0, broadcasting the
    unbatched operands."""
    first = dims[0]
    if all(d == first for d in dims) and first is not None:
        return prim.bind(*args, **params), first
    from .shape import broadcast_batched, move_axis

    aligned = [
        broadcast_batched(x, axis_size) if d is None else move_axis(x, d, 0)
        for x, d in zip(args, dims, strict=True)
    ]
    return prim.bind(*aligned, **params), 0


def defjvp(prim, *rules):
    """Per-operand JVP rules ``rule(x_dot, ans, *primals, **params) -> tangent contribution``
    (``None`` for operands with no derivative); contributions of Zero tangents are skipped."""

    def jvp(primals, tangents, **params):
        ans = prim.bind(*primals, **params)
        out = Zero(_aval(ans))
        for rule, t in zip(rules, tangents, strict=True):
            if rule is not None and type(t) is not Zero:
                out = add_tangents(out, rule(t, ans, *primals, **params))
        return ans, out

    prim.jvp = jvp


def deflinear(prim, transpose):
    """A primitive linear in all its operands: its JVP applies it to the tangents."""

    def jvp(primals, tangents, **params):
        ans = prim.bind(*primals, **params)
        if all(type(t) is Zero for t in tangents):
            return ans, Zero(_aval(ans))
        from ..ad_util import instantiate

        return ans, prim.bind(*[instantiate(t) for t in tangents], **params)

    prim.jvp = jvp
    prim.linear = True
    prim.transpose = transpose


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


try:  # NumPy >= 2 keeps its floating-point error state in a context variable
    from numpy._core.umath import _extobj_contextvar as _fp_state, _make_extobj

    _FP_IGNORE = _make_extobj(all="ignore")
except ImportError:  # NumPy 1.x
    _fp_state = None


def errstate(fn):
    """``fn`` (a NumPy implementation) run without floating-point warnings, as
    ``np.errstate(all="ignore")``: JAX and PyTorch do not warn on overflow or 0/0 either.

    >>> from fnx.core.ops.family import errstate
    >>> errstate(np.divide)(np.ones(1), np.zeros(1))
    array([inf])
    """
    if _fp_state is None:
        def impl(*args, **kwargs):
            with np.errstate(all="ignore"):
                return fn(*args, **kwargs)
    else:
        # np.errstate's enter and exit take ~1.2 us, more than a small op itself; setting the
        # context variable to a state made once takes ~0.25 us (that state keeps the buffer
        # size and error callback of import time: neither matters when every error is ignored)
        def impl(*args, **kwargs):
            token = _fp_state.set(_FP_IGNORE)
            try:
                return fn(*args, **kwargs)
            finally:
                _fp_state.reset(token)

    impl.__name__ = getattr(fn, "__name__", "impl")
    return impl


def formula_jvp(formula, single=False):
    """A JVP rule that differentiates ``formula(fnp, *args, **params)``, the primitive's
    math written in ``fnx.numpy`` (for the higher derivatives of fused kernels: rarely hot,
    so one formula serves every order). ``single``: the primitive has one result."""

    def jvp(primals, tangents, **params):
        from fnx import numpy as fnp

        from ...transforms.jvp import jvp_flat

        outs, touts = jvp_flat(lambda *a: list(formula(fnp, *a, **params)), list(primals),
                               list(tangents))
        return (outs[0], touts[0]) if single else (outs, touts)

    return jvp


def formula_batch(formula, single=False):
    """A batching rule that runs ``formula`` (as in ``formula_jvp``) under vmap."""

    # (the batch dims are ``in_dims``: ``dims`` may be one of the primitive's params)
    def batch(axis_size, args, in_dims, **params):
        from fnx import numpy as fnp

        from ...transforms.vmap import vmap_flat

        outs, out_dims = vmap_flat(lambda *a: list(formula(fnp, *a, **params)),
                                   list(in_dims), axis_size, list(args))
        return (outs[0], out_dims[0]) if single else (outs, out_dims)

    return batch
