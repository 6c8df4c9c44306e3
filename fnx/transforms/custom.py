"""User-defined derivative rules and rematerialization: ``stop_gradient``, ``custom_jvp``,
``custom_vjp`` and ``checkpoint`` (alias ``remat``), each a primitive with all its rules.

Primitives and params (programs take the hoisted constants first, then the argument leaves):

* ``stop_gradient_p(x)``: identity whose tangent is zero.
* ``custom_jvp_call_p(*consts, *leaves, call, jvp, num_consts)``: ``call`` is a
  ClosedProgram ``(*consts, *leaves) -> out_leaves``; ``jvp`` is a callable
  ``jvp(primals, tangents) -> (out_leaves, out_tangents)`` over flat lists (constants
  included; their tangents are ignored). Evaluation runs ``call``; the JVP runs ``jvp``.
* ``custom_vjp_call_p(*consts, *leaves, call, fwd, bwd, num_consts)``: ``fwd(primals) ->
  (out_leaves, res_leaves, res_tree)``; ``bwd(res_tree, res_leaves, cts) -> cts of the
  argument leaves``. Its JVP runs ``fwd`` and emits ``custom_lin_p`` on the tangents.
* ``custom_lin_p(*res, *tangents, num_res, bwd, out_avals)``: the linear stand-in for a
  custom_vjp function in linearized programs; its transpose calls ``bwd`` once. It cannot be
  evaluated (forward mode of a custom_vjp function is an error, as in JAX).
* ``checkpoint_p(*consts, *leaves, program)``: evaluates ``program``; under reverse mode it
  saves only its inputs and recomputes the forward pass during the backward pass.
"""

import functools
import inspect

import numpy as np

from ..core.abstract import ShapedArray
from ..core.ad_util import Zero, instantiate, is_undefined
from ..core.array import Array, wrap
from ..core.errors import TraceError
from ..core.ops.family import elementwise
from ..core.primitive import Primitive
from ..core.pytree import tree_flatten, tree_map, tree_unflatten, treedef_children
from ..core.tracing import Tracer, get_aval
from .program_transforms import (as_closed, closed_call, dce_program, jvp_program,
                                 partial_eval_program, trace_hoisted, transpose_program,
                                 vmap_program)
from .api import _as_arrays as as_arrays
from .vmap import move_batch_axis, vmap_flat

__all__ = ["stop_gradient", "custom_jvp", "custom_vjp", "checkpoint", "remat",
           "stop_gradient_p", "recorded_value_p", "custom_jvp_call_p", "custom_vjp_call_p",
           "custom_lin_p",
           "checkpoint_p"]


def _as_arrays(leaves, what, exact=True):
    return as_arrays(leaves, what, lists=False, exact=exact,
                     fix="pass non-array arguments through nondiff_argnums or close over them")


def _shaped(x):
    aval = get_aval(x)
    return ShapedArray(aval.shape, aval.dtype, aval.weak_type)


def _weak_outs(program):
    """The weak types of a program's outputs: those of the primitives that call it."""
    return [a.weak_type for a in as_closed(program).program.out_avals]


def _buffers_impl(program_param):
    """An impl evaluating the program param on buffers (eager: every bind goes to impl)."""

    def impl(*bufs, **params):
        outs = closed_call(params[program_param], [wrap(b) for b in bufs])
        return [o._buf if type(o) is Array else np.asarray(o) for o in outs]

    return impl


def _broadcast_all(axis_size, args, dims):
    """Every argument batched at axis 0 (the custom rules then see uniform batching)."""
    return [move_batch_axis(axis_size, d, 0, x) for x, d in zip(args, dims, strict=True)]


# --- stop_gradient -----------------------------------------------------------------------------

stop_gradient_p = elementwise("stop_gradient", 1, lambda x: x, "{0}", "any")
# its tangent is always zero: every transform (and the eager tape) treats it as it treats
# integer-valued primitives
stop_gradient_p.differentiable = False


# --- recorded_value -----------------------------------------------------------------------------

# ``recorded_value_p(x, saved)``: the value ``saved`` (``x``'s value, recorded earlier) with
# ``x``'s derivative. The eager tape's backward program feeds the buffers it recorded in the
# forward pass through it: the linearization points are those buffers, so the forward
# computation of ``x`` is dead and never runs again (no recomputation in backward()).
recorded_value_p = elementwise("recorded_value", 2, lambda x, saved: saved, "{1}", "any")


def _recorded_value_jvp(primals, tangents):
    x, saved = primals
    x_dot, _ = tangents
    return saved, (x_dot if type(x_dot) is not Zero else Zero(get_aval(saved)))


def _recorded_value_transpose(ct, x, saved):
    del x, saved  # unused: linear in x, the identity
    return [ct, None]


recorded_value_p.jvp = _recorded_value_jvp
recorded_value_p.transpose = _recorded_value_transpose


def stop_gradient(x):
    """The value of ``x`` (a pytree of arrays) with zero derivative.

    >>> fnx.grad(lambda x: x * fnx.stop_gradient(x))(fnx.numpy.asarray(3.0)).item()
    3.0
    """
    return tree_map(lambda leaf: stop_gradient_p.bind(_as_arrays([leaf], "stop_gradient")[0]), x)


# --- shared plumbing of the decorators ---------------------------------------------------------


def _resolve_args(fun, args, kwargs, what):
    if not kwargs:
        return tuple(args)
    try:
        bound = inspect.signature(fun).bind(*args, **kwargs)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{what}: cannot bind the arguments: {err}") from None
    bound.apply_defaults()
    if bound.kwargs:
        raise TypeError(f"{what}: keyword-only arguments are not supported; pass them "
                        f"positionally or close over them")
    return tuple(bound.args)


def _split_nondiff(args, nondiff_argnums, what):
    nums = tuple(a % len(args) if -len(args) <= a < len(args) else a for a in nondiff_argnums)
    for a in nums:
        if not 0 <= a < len(args):
            raise ValueError(f"{what}: nondiff_argnums {nondiff_argnums} out of range for "
                             f"{len(args)} arguments")
        if any(isinstance(leaf, Tracer) for leaf in tree_flatten(args[a])[0]):
            raise TraceError(
                f"{what}: argument {a} is in nondiff_argnums but is a traced array; "
                f"nondiff_argnums are for static Python values (functions, shapes, flags). "
                f"Pass arrays as ordinary arguments and return a zero cotangent for them")
    static = {a: args[a] for a in nums}
    diff = tuple(x for i, x in enumerate(args) if i not in static)
    return static, diff


def _merge(static, diff):
    it = iter(diff)
    return tuple(static[i] if i in static else next(it) for i in range(len(static) + len(diff)))


def _trace_call(fun, static, diff_leaves, in_tree, what):
    """Trace ``fun`` on the argument leaves: ``(call, consts, out_tree)``."""
    store = []

    def flat_fun(*leaves):
        out = fun(*_merge(static, tree_unflatten(in_tree, list(leaves))))
        out_leaves, out_tree = tree_flatten(out)
        store.append(out_tree)
        return _as_arrays(out_leaves, what, exact=False)

    call, consts = trace_hoisted(flat_fun, [_shaped(x) for x in diff_leaves])
    return call, consts, store[-1]


class _CustomFunction:
    """What custom_jvp and custom_vjp share: method binding and tracing the call."""

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    def _what(self):
        kind = type(self).__name__
        return f"{kind} {getattr(self.fun, '__name__', f'{kind} function')}"

    def _trace(self, args, kwargs, what):
        """``(static, diff, leaves, in_tree, call, consts, out_tree, out_avals)`` of a call."""
        args = _resolve_args(self.fun, args, kwargs, what)
        static, diff = _split_nondiff(args, self.nondiff_argnums, what)
        leaves, in_tree = tree_flatten(diff)
        leaves = _as_arrays(leaves, what)
        call, consts, out_tree = _trace_call(self.fun, static, leaves, in_tree, what)
        out_avals = as_closed(call).program.out_avals
        return static, diff, leaves, in_tree, call, consts, out_tree, out_avals


def _check_outs(what, expected, got_leaves, kind):
    for i, (e, g) in enumerate(zip(expected, got_leaves, strict=True)):
        ga = get_aval(g)
        if tuple(ga.shape) != tuple(e.shape):
            raise TypeError(f"{what}: the rule's {kind} output {i} has shape {ga.shape}, but the "
                            f"function's output has shape {e.shape}; they must match")


def _match_dtype(x, aval):
    from ..core.ops.elementwise import convert_element_type

    return x if get_aval(x).dtype == aval.dtype else convert_element_type(x, aval.dtype)


# --- custom_jvp -------------------------------------------------------------------------------

custom_jvp_call_p = Primitive("custom_jvp_call", multiple_results=True)
custom_jvp_call_p.impl = _buffers_impl("call")
custom_jvp_call_p.call_program = "call"
custom_jvp_call_p.abstract_eval = lambda *avals, call, jvp, num_consts: list(
    as_closed(call).program.out_avals)
custom_jvp_call_p.weak_type_rule = lambda weak, *, call, jvp, num_consts: _weak_outs(call)


def _custom_jvp_call_jvp(primals, tangents, *, call, jvp, num_consts):
    del num_consts  # unused
    tangents = [instantiate(t) for t in tangents]
    outs, tangents_out = jvp(list(primals), tangents)
    return outs, tangents_out


def _custom_jvp_call_batch(axis_size, args, dims, *, call, jvp, num_consts):
    args = _broadcast_all(axis_size, args, dims)
    n = len(args)
    batched_call, _ = vmap_program(call, axis_size, [0] * n,
                                   [0] * len(as_closed(call).program.outs))

    def batched_jvp(primals, tangents):
        def flat(*xs):
            o, t = jvp(list(xs[:n]), list(xs[n:]))
            return [*o, *t]

        vals, out_dims = vmap_flat(flat, [0] * (2 * n), axis_size, [*primals, *tangents])
        vals = [move_batch_axis(axis_size, d, 0, v) for v, d in zip(vals, out_dims, strict=True)]
        m = len(vals) // 2
        return vals[:m], vals[m:]

    outs = custom_jvp_call_p.bind(*args, call=batched_call, jvp=batched_jvp,
                                  num_consts=num_consts)
    return outs, [0] * len(outs)


custom_jvp_call_p.jvp = _custom_jvp_call_jvp
custom_jvp_call_p.batch = _custom_jvp_call_batch


class custom_jvp(_CustomFunction):
    """A function with a user-defined JVP rule (JAX semantics).

    >>> @fnx.custom_jvp
    ... def f(x):
    ...     return fnx.numpy.sin(x)
    >>> @f.defjvp
    ... def f_jvp(primals, tangents):
    ...     (x,), (t,) = primals, tangents
    ...     return f(x), 2.0 * t
    >>> fnx.grad(f)(fnx.numpy.asarray(0.0)).item()
    2.0

    ``nondiff_argnums`` are static Python values passed first to the rule:
    ``rule(*nondiff_args, primals, tangents)``. Values closed over by the function are treated
    as constants by the rule.
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.jvp_rule = None

    def defjvp(self, jvp):
        """Set the rule ``jvp(primals, tangents) -> (primal_out, tangent_out)``."""
        self.jvp_rule = jvp
        return jvp

    def defjvps(self, *jvps):
        """One rule per differentiable argument: ``jvp_i(tangent_i, primal_out, *primals)``
        (``None`` for an argument with zero derivative); contributions are summed."""

        def jvp(*args):
            primals, tangents = args[-2], args[-1]
            out = self.fun(*args[:-2], *primals)
            total = None
            for rule, t in zip(jvps, tangents, strict=True):
                if rule is None:
                    continue
                contrib = rule(t, out, *primals)
                total = contrib if total is None else tree_map(lambda a, b: a + b, total,
                                                                contrib)
            if total is None:
                total = tree_map(lambda o: o * 0, out)
            return out, total

        self.defjvp(jvp)

    def __call__(self, *args, **kwargs):
        what = self._what()
        if self.jvp_rule is None:
            raise AttributeError(f"No JVP defined for {what}: call defjvp before calling it")
        static, diff, leaves, in_tree, call, consts, out_tree, out_avals = self._trace(
            args, kwargs, what)
        rule, nc = self.jvp_rule, len(consts)
        static_args = tuple(static[i] for i in sorted(static))

        def jvp(primals, tangents):
            p_tree = tree_unflatten(in_tree, list(primals[nc:]))
            t_tree = tree_unflatten(in_tree, list(tangents[nc:]))
            res = rule(*static_args, p_tree, t_tree)
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(f"{what}: the JVP rule must return a pair (primal_out, "
                                f"tangent_out), got {type(res).__name__}")
            p_out, t_out = tree_flatten(res[0]), tree_flatten(res[1])
            for (leaves_out, tree), kind in ((p_out, "primal"), (t_out, "tangent")):
                if tree != out_tree:
                    raise TypeError(f"{what}: the JVP rule's {kind} output has structure "
                                    f"{tree}, but the function returns {out_tree}")
            p_leaves = _as_arrays(p_out[0], what, exact=False)
            t_leaves = _as_arrays(t_out[0], what, exact=False)
            _check_outs(what, out_avals, p_leaves, "primal")
            _check_outs(what, out_avals, t_leaves, "tangent")
            return ([_match_dtype(p, a) for p, a in zip(p_leaves, out_avals)],
                    [_match_dtype(t, a) for t, a in zip(t_leaves, out_avals)])

        outs = custom_jvp_call_p.bind(*consts, *leaves, call=call, jvp=jvp, num_consts=nc)
        return tree_unflatten(out_tree, outs)


# --- custom_vjp -------------------------------------------------------------------------------

_FORWARD_MODE_MSG = (
    "can't apply forward-mode autodiff (jvp) to a custom_vjp function: it only defines a "
    "reverse-mode rule. Use fnx.grad/vjp/jacrev, or define the function with fnx.custom_jvp")

custom_lin_p = Primitive("custom_lin", multiple_results=True)
custom_lin_p.abstract_eval = lambda *avals, num_res, bwd, out_avals: list(out_avals)
custom_lin_p.weak_type_rule = lambda weak, *, num_res, bwd, out_avals: [
    a.weak_type for a in out_avals]


def _custom_lin_impl(*bufs, num_res, bwd, out_avals):
    del bufs, num_res, bwd, out_avals  # unused
    raise TraceError(_FORWARD_MODE_MSG)


def _custom_lin_jvp(primals, tangents, **params):
    del primals, tangents, params  # unused
    raise TraceError(_FORWARD_MODE_MSG)


def _custom_lin_transpose(cts, *args, num_res, bwd, out_avals):
    res, lin = args[:num_res], args[num_res:]
    if any(is_undefined(r) for r in res):
        raise TraceError("custom_lin: a residual of a custom_vjp function is linear (an fnx bug)")
    cts = [instantiate(Zero(a)) if type(ct) is Zero else ct for ct, a in zip(cts, out_avals)]
    cts_in = bwd(list(res), cts)
    return [None] * num_res + [ct if is_undefined(x) else None
                               for ct, x in zip(cts_in, lin, strict=True)]


def _custom_lin_batch(axis_size, args, dims, *, num_res, bwd, out_avals):
    args = _broadcast_all(axis_size, args, dims)

    def batched_bwd(res, cts):
        r = len(res)

        def flat(*xs):
            return bwd(list(xs[:r]), list(xs[r:]))

        vals, out_dims = vmap_flat(flat, [0] * (r + len(cts)), axis_size, [*res, *cts])
        return [move_batch_axis(axis_size, d, 0, v) for v, d in zip(vals, out_dims, strict=True)]

    batched_avals = tuple(ShapedArray((axis_size,) + a.shape, a.dtype) for a in out_avals)
    outs = custom_lin_p.bind(*args, num_res=num_res, bwd=batched_bwd, out_avals=batched_avals)
    return outs, [0] * len(outs)


custom_lin_p.impl = _custom_lin_impl
custom_lin_p.jvp = _custom_lin_jvp
custom_lin_p.linear = True
custom_lin_p.transpose = _custom_lin_transpose
custom_lin_p.batch = _custom_lin_batch

custom_vjp_call_p = Primitive("custom_vjp_call", multiple_results=True)
custom_vjp_call_p.impl = _buffers_impl("call")
custom_vjp_call_p.call_program = "call"
custom_vjp_call_p.abstract_eval = lambda *avals, call, fwd, bwd, num_consts: list(
    as_closed(call).program.out_avals)
custom_vjp_call_p.weak_type_rule = lambda weak, *, call, fwd, bwd, num_consts: _weak_outs(call)


def _custom_vjp_call_jvp(primals, tangents, *, call, fwd, bwd, num_consts):
    outs, res, res_tree = fwd(list(primals))
    arg_tangents = [instantiate(t) for t in tangents[num_consts:]]
    out_avals = tuple(_shaped(o) for o in outs)

    def lin_bwd(res_leaves, cts):
        return bwd(res_tree, res_leaves, cts)

    tangents_out = custom_lin_p.bind(*res, *arg_tangents, num_res=len(res), bwd=lin_bwd,
                                     out_avals=out_avals)
    return outs, tangents_out


def _custom_vjp_call_batch(axis_size, args, dims, *, call, fwd, bwd, num_consts):
    args = _broadcast_all(axis_size, args, dims)
    n = len(args)
    batched_call, _ = vmap_program(call, axis_size, [0] * n,
                                   [0] * len(as_closed(call).program.outs))

    def batched_fwd(primals):
        box = []

        def flat(*xs):
            outs, res, res_tree = fwd(list(xs))
            box.append((len(outs), res_tree))
            return [*outs, *res]

        vals, out_dims = vmap_flat(flat, [0] * n, axis_size, list(primals))
        vals = [move_batch_axis(axis_size, d, 0, v) for v, d in zip(vals, out_dims, strict=True)]
        n_out, res_tree = box[-1]
        return vals[:n_out], vals[n_out:], res_tree

    def batched_bwd(res_tree, res, cts):
        r = len(res)

        def flat(*xs):
            return bwd(res_tree, list(xs[:r]), list(xs[r:]))

        vals, out_dims = vmap_flat(flat, [0] * (r + len(cts)), axis_size, [*res, *cts])
        return [move_batch_axis(axis_size, d, 0, v) for v, d in zip(vals, out_dims, strict=True)]

    outs = custom_vjp_call_p.bind(*args, call=batched_call, fwd=batched_fwd, bwd=batched_bwd,
                                  num_consts=num_consts)
    return outs, [0] * len(outs)


custom_vjp_call_p.jvp = _custom_vjp_call_jvp
custom_vjp_call_p.batch = _custom_vjp_call_batch


class custom_vjp(_CustomFunction):
    """A function with a user-defined reverse-mode rule (JAX semantics).

    >>> @fnx.custom_vjp
    ... def clip_gradient(x):
    ...     return x
    >>> clip_gradient.defvjp(lambda x: (x, None),
    ...                      lambda res, g: (fnx.numpy.clip(g, -1.0, 1.0),))
    >>> fnx.grad(lambda x: 5.0 * clip_gradient(x))(fnx.numpy.asarray(2.0)).item()
    1.0

    ``fwd(*args) -> (out, residuals)`` (residuals: any pytree of arrays);
    ``bwd(*nondiff_args, residuals, out_cotangent) -> tuple`` with one cotangent (a pytree
    like the argument, or None for zero) per differentiable argument. ``bwd`` runs exactly once
    per backward pass. Forward mode (jvp) of a custom_vjp function raises an error, as in JAX.
    """

    def __init__(self, fun, nondiff_argnums=()):
        functools.update_wrapper(self, fun)
        self.fun = fun
        self.nondiff_argnums = tuple(nondiff_argnums)
        self.fwd = self.bwd = None

    def defvjp(self, fwd, bwd):
        self.fwd, self.bwd = fwd, bwd

    def __call__(self, *args, **kwargs):
        what = self._what()
        if self.fwd is None:
            raise AttributeError(f"No VJP defined for {what}: call defvjp before calling it")
        static, diff, leaves, in_tree, call, consts, out_tree, out_avals = self._trace(
            args, kwargs, what)
        arg_avals = [_shaped(x) for x in leaves]
        user_fwd, user_bwd, nc = self.fwd, self.bwd, len(consts)
        static_args = tuple(static[i] for i in sorted(static))
        n_diff = len(diff)

        def fwd(primals):
            diff_args = tree_unflatten(in_tree, list(primals[nc:]))
            res = user_fwd(*_merge(static, diff_args))
            if not (isinstance(res, (tuple, list)) and len(res) == 2):
                raise TypeError(f"{what}: fwd must return a pair (output, residuals), got "
                                f"{type(res).__name__}")
            out_leaves, tree = tree_flatten(res[0])
            if tree != out_tree:
                raise TypeError(f"{what}: fwd's output has structure {tree}, but the function "
                                f"returns {out_tree}")
            out_leaves = _as_arrays(out_leaves, what)
            _check_outs(what, out_avals, out_leaves, "fwd")
            res_leaves, res_tree = tree_flatten(res[1])
            return ([_match_dtype(o, a) for o, a in zip(out_leaves, out_avals)],
                    _as_arrays(res_leaves, f"{what} residuals"), res_tree)

        def bwd(res_tree, res_leaves, cts):
            cts_in = user_bwd(*static_args, tree_unflatten(res_tree, list(res_leaves)),
                              tree_unflatten(out_tree, list(cts)))
            if not isinstance(cts_in, (tuple, list)) or len(cts_in) != n_diff:
                raise TypeError(
                    f"{what}: bwd must return a tuple with one cotangent per differentiable "
                    f"argument ({n_diff}), got {type(cts_in).__name__}"
                    + (f" of length {len(cts_in)}" if isinstance(cts_in, (tuple, list)) else "")
                    + "; wrap a single cotangent as (ct,)")
            flat = []
            for i, (sub_ct, sub_tree) in enumerate(zip(cts_in, treedef_children(in_tree))):
                if sub_ct is None:
                    flat.extend([None] * sub_tree.num_leaves)
                else:
                    flat.extend(sub_tree.flatten_up_to(sub_ct, what=f"{what} bwd output {i}"))
            out = []
            for ct, aval in zip(flat, arg_avals, strict=True):
                if ct is None:
                    out.append(instantiate(Zero(aval)))
                    continue
                ct = _as_arrays([ct], what)[0]
                if tuple(get_aval(ct).shape) != aval.shape:
                    raise TypeError(f"{what}: bwd returned a cotangent of shape "
                                    f"{get_aval(ct).shape} for an argument of shape {aval.shape}")
                out.append(_match_dtype(ct, aval))
            return out

        outs = custom_vjp_call_p.bind(*consts, *leaves, call=call, fwd=fwd, bwd=bwd,
                                      num_consts=nc)
        return tree_unflatten(out_tree, outs)


# --- checkpoint / remat ------------------------------------------------------------------------

checkpoint_p = Primitive("checkpoint", multiple_results=True)
checkpoint_p.impl = _buffers_impl("program")
checkpoint_p.call_program = "program"
checkpoint_p.abstract_eval = lambda *avals, program: list(as_closed(program).program.out_avals)
checkpoint_p.weak_type_rule = lambda weak, *, program: _weak_outs(program)


def _checkpoint_jvp(primals, tangents, *, program):
    nonzeros = [type(t) is not Zero for t in tangents]
    jvp_prog, nz_out = jvp_program(program, nonzeros, instantiate=False)
    outs = checkpoint_p.bind(*primals, *[t for t in tangents if type(t) is not Zero],
                             program=jvp_prog)
    n = len(outs) - sum(nz_out)
    it = iter(outs[n:])
    avals = as_closed(program).program.out_avals
    return outs[:n], [next(it) if nz else Zero(a) for nz, a in zip(nz_out, avals)]


def _checkpoint_batch(axis_size, args, dims, *, program):
    batched, out_dims = vmap_program(program, axis_size, dims)
    return checkpoint_p.bind(*args, program=batched), out_dims


def _checkpoint_partial_eval(trace, tracers, *, program):
    """Save only the inputs: the known outputs are computed now, and the unknown equation is
    the whole program (so its transpose recomputes the forward pass from the inputs)."""
    in_uk = [t.pval.is_unknown for t in tracers]
    known, _, out_uk, num_res = partial_eval_program(program, in_uk, instantiate=False)
    n_known = len(out_uk) - sum(out_uk)
    known_only, _ = dce_program(known, [True] * n_known + [False] * num_res, instantiate=True)
    known_vals = checkpoint_p.bind(*[t.pval.const for t in tracers if t.pval.is_known],
                                   program=known_only)
    unknown_prog, _ = dce_program(program, out_uk, instantiate=True)
    unknown_outs = trace.default_process(checkpoint_p, tracers, {"program": unknown_prog})
    kv, uv = iter(known_vals), iter(unknown_outs)
    return [next(uv) if uk else trace.lift(next(kv)) for uk in out_uk]


def _checkpoint_transpose(cts, *args, program):
    mask = [is_undefined(x) for x in args]
    transposed = transpose_program(program, mask)
    cts_in = closed_call(transposed, [*[x for x in args if not is_undefined(x)], *cts])
    it = iter(cts_in)
    return [next(it) if lin else None for lin in mask]


checkpoint_p.jvp = _checkpoint_jvp
checkpoint_p.batch = _checkpoint_batch
checkpoint_p.partial_eval = _checkpoint_partial_eval
checkpoint_p.transpose = _checkpoint_transpose


def checkpoint(fun, *, prevent_cse=True, policy=None, static_argnums=()):
    """Rematerialize ``fun`` under reverse mode: save its inputs, not its intermediates, and
    recompute its forward pass during the backward pass (trading compute for memory).

    >>> f = fnx.checkpoint(lambda x: fnx.numpy.sin(fnx.numpy.sin(x)))
    >>> round(fnx.grad(f)(fnx.numpy.asarray(0.0)).item(), 6)
    1.0
    """
    del prevent_cse  # unused: fnx has no CSE across the checkpoint boundary
    if policy is not None:
        raise NotImplementedError("checkpoint: policies are not supported; everything inside "
                                  "the checkpoint is recomputed")
    static_nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    @functools.wraps(fun)
    def remat_fun(*args, **kwargs):
        args = _resolve_args(fun, args, kwargs, "checkpoint")
        static = {i % len(args): args[i] for i in static_nums}
        diff = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, in_tree = tree_flatten(diff)
        leaves = _as_arrays(leaves, "checkpoint")
        call, consts, out_tree = _trace_call(fun, static, leaves, in_tree, "checkpoint")
        outs = checkpoint_p.bind(*consts, *leaves, program=call)
        return tree_unflatten(out_tree, outs)

    return remat_fun


remat = checkpoint
