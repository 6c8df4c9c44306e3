"""Program-level transforms: jvp, vmap, partial evaluation, transposition and DCE of a
``ClosedProgram``. Higher-order primitives (``jit_call``, ``cond``, ``while``, ``scan``,
``custom_jvp_call``, ``checkpoint``) carry programs as params; their rules use these functions
to transform the carried program and re-bind the primitive (Autodidax part 3 ``jvp_jaxpr``,
``vmap_jaxpr``, part 4 ``partial_eval_jaxpr``, part 5 ``transpose_jaxpr``).

Every function accepts a ``Program`` (no constants) or a ``ClosedProgram`` and returns
``ClosedProgram`` objects. Each is built by tracing a function that runs the existing flat
machinery (``jvp_flat``, ``vmap_flat``, ``partial_eval_flat``, ``backward_pass``) over
``eval_program`` with ``make_program``, so nested higher-order primitives are handled by their
own rules. The constants of a returned ClosedProgram are concrete arrays when the input's are.

Conventions (all lists are flat, one entry per non-constant program input/output):

* ``jvp_program(p, nonzero_tangents_in, instantiate)`` -> ``(jp, nonzero_tangents_out)``;
  ``jp(*primals, *nonzero_tangents) -> [*primals_out, *nonzero_tangents_out]``.
* ``vmap_program(p, axis_size, in_dims, out_dims_wanted=None)`` -> ``(bp, out_dims)``;
  ``bp`` takes inputs batched at ``in_dims`` (``None`` = unbatched).
* ``partial_eval_program(p, in_unknowns, instantiate)`` ->
  ``(known, unknown, out_unknowns, num_res)``; ``known(*known_ins) -> [*known_outs, *res]``,
  ``unknown(*res, *unknown_ins) -> unknown_outs``.
* ``transpose_program(p, linear_in_mask)`` -> ``tp``;
  ``tp(*nonlinear_ins, *cts_out) -> cts of the linear inputs`` (zeros instantiated).
* ``dce_program(p, used_outputs, instantiate=False)`` -> ``(dp, used_inputs)``.
"""

from ..core.abstract import ShapedArray
from ..core.ad_util import UndefinedPrimal, Zero, instantiate as instantiate_zero
from ..core.ir import (ClosedProgram, Program, Var, eval_program, make_program,
                       substitute_inputs, typecheck)
from ..core.tracing import Tracer
from .jvp import jvp_flat
from .partial_eval import PartialVal, backward_pass, partial_eval_flat
from .vmap import move_batch_axis, vmap_flat

__all__ = ["as_closed", "in_avals", "out_avals", "jvp_program", "vmap_program",
           "partial_eval_program", "transpose_program", "dce_program", "reorder_program",
           "closed_call", "program_from_fun", "trace_hoisted"]


def as_closed(program):
    """A ``ClosedProgram`` for ``program`` (a Program gets no constants)."""
    if isinstance(program, ClosedProgram):
        return program
    if isinstance(program, Program):
        return ClosedProgram(program, [])
    raise TypeError(f"expected a Program or ClosedProgram, got {type(program).__name__}")


def in_avals(program):
    """Avals of the non-constant inputs of a (Closed)Program."""
    closed = as_closed(program)
    return closed.program.in_avals[len(closed.consts):]


def out_avals(program):
    return as_closed(program).program.out_avals


def closed_call(program, args):
    """Evaluate a (Closed)Program on ``args`` by binding each equation (traceable)."""
    closed = as_closed(program)
    return eval_program(closed.program, [*closed.consts, *args])


def _bools(flags, n, what):
    if isinstance(flags, bool):
        return [flags] * n
    flags = [bool(f) for f in flags]
    if len(flags) != n:
        raise ValueError(f"{what}: expected {n} flags, got {len(flags)}")
    return flags


def _shaped(aval):
    return ShapedArray(aval.shape, aval.dtype, aval.weak_type)


def _close(f, avals):
    program, consts = make_program(f, [_shaped(a) for a in avals])
    return ClosedProgram(program, consts)


# --- jvp ---------------------------------------------------------------------------------------


def jvp_program(program, nonzero_tangents_in, instantiate=False):
    """Forward-mode derivative of a program.

    Returns ``(jvp_prog, nonzero_out)``; ``jvp_prog`` takes ``(*primals, *tangents)`` with one
    tangent per ``True`` in ``nonzero_tangents_in`` and returns ``(*primals_out,
    *tangents_out)`` with one tangent per ``True`` in ``nonzero_out``. ``instantiate`` (a bool
    or one flag per output) forces those output tangents to be present (as zeros if needed).
    """
    closed = as_closed(program)
    avals = in_avals(closed)
    n_in, n_out = len(avals), len(closed.program.outs)
    nonzeros = _bools(nonzero_tangents_in, n_in, "jvp_program nonzero_tangents_in")
    inst = _bools(instantiate, n_out, "jvp_program instantiate")
    box = []

    def jvp_fun(*args):
        primals, nz_tangents = list(args[:n_in]), iter(args[n_in:])
        tangents = [next(nz_tangents) if nz else Zero(_shaped(a))
                    for a, nz in zip(avals, nonzeros, strict=True)]
        outs, tangents_out = jvp_flat(lambda *xs: closed_call(closed, xs), primals, tangents,
                                      instantiate_zeros=False)
        nz_out = [type(t) is not Zero or i for t, i in zip(tangents_out, inst, strict=True)]
        box.append(nz_out)
        return outs + [instantiate_zero(t) for t, nz in zip(tangents_out, nz_out) if nz]

    tangent_avals = [a for a, nz in zip(avals, nonzeros) if nz]
    return _close(jvp_fun, avals + tangent_avals), box[-1]


# --- vmap --------------------------------------------------------------------------------------


def _batched_aval(aval, dim, axis_size):
    if dim is None:
        return aval
    shape = list(aval.shape)
    shape.insert(dim, axis_size)
    return aval.update(shape=tuple(shape))


def vmap_program(program, axis_size, in_dims, out_dims_wanted=None):
    """Batch a program over a mapped axis of size ``axis_size``.

    ``in_dims``: one int (the batch axis of that input) or None (unbatched) per input.
    ``out_dims_wanted``: None to keep the dims the batching rules produce, or one entry per
    output: an int moves (or broadcasts, if unbatched) that output's batch axis there; None
    keeps what the rule produced. Returns ``(batched_prog, out_dims)``.
    """
    closed = as_closed(program)
    avals = in_avals(closed)
    in_dims = list(in_dims)
    if len(in_dims) != len(avals):
        raise ValueError(f"vmap_program: {len(in_dims)} in_dims for {len(avals)} inputs")
    n_out = len(closed.program.outs)
    wanted = [None] * n_out if out_dims_wanted is None else list(out_dims_wanted)
    if len(wanted) != n_out:
        raise ValueError(f"vmap_program: {len(wanted)} out_dims_wanted for {n_out} outputs")
    box = []

    def batched_fun(*args):
        vals, dims = vmap_flat(lambda *xs: closed_call(closed, xs), in_dims, axis_size, list(args))
        outs, out_dims = [], []
        for v, d, w in zip(vals, dims, wanted, strict=True):
            if w is not None:
                v, d = move_batch_axis(axis_size, d, w, v), w
            outs.append(v)
            out_dims.append(d)
        box.append(out_dims)
        return outs

    batched_avals = [_batched_aval(a, d, axis_size) for a, d in zip(avals, in_dims, strict=True)]
    return _close(batched_fun, batched_avals), box[-1]


# --- partial evaluation ----------------------------------------------------------------------


def partial_eval_program(program, in_unknowns, instantiate=False):
    """Split a program into the part computable from the known inputs and the rest.

    Returns ``(known, unknown, out_unknowns, num_res)``:
    ``known(*known_ins) -> [*known_outs, *residuals]`` and
    ``unknown(*residuals, *unknown_ins) -> unknown_outs`` (inputs keep their relative order).
    ``instantiate`` (bool or a flag per output) forces outputs to be unknown; such an output
    that is known becomes a residual passed straight through the unknown program.
    """
    closed = as_closed(program)
    avals = in_avals(closed)
    n_out = len(closed.program.outs)
    unknowns = _bools(in_unknowns, len(avals), "partial_eval_program in_unknowns")
    inst = _bools(instantiate, n_out, "partial_eval_program instantiate")
    box = []

    def known_fun(*known_args):
        it = iter(known_args)
        pvals = [PartialVal.unknown(_shaped(a)) if uk else PartialVal.known(next(it))
                 for a, uk in zip(avals, unknowns, strict=True)]
        prog_uk, pvals_out, res_vals = partial_eval_flat(
            lambda *xs: closed_call(closed, xs), pvals, inst)
        unknown, residuals = _close_unknown(prog_uk, res_vals)
        out_uk = [p.is_unknown for p in pvals_out]
        box.append((unknown, out_uk, len(residuals)))
        return [p.const for p in pvals_out if p.is_known] + residuals

    known = _close(known_fun, [a for a, uk in zip(avals, unknowns) if not uk])
    unknown, out_uk, num_res = box[-1]
    return known, unknown, out_uk, num_res


def _close_unknown(prog, res_vals):
    """Turn the residual inputs of ``prog`` into (constants, deduplicated residual inputs).

    Concrete residuals (arrays created while tracing) become constants of the unknown
    program; traced ones (values of the known program) become its leading inputs, once each.
    """
    n_res = len(res_vals)
    const_vars, const_vals, res_vars, residuals, subst, seen = [], [], [], [], {}, {}
    for v, val in zip(prog.in_binders[:n_res], res_vals, strict=True):
        if not isinstance(val, Tracer):
            const_vars.append(v)
            const_vals.append(val)
        elif id(val) in seen:
            subst[v] = seen[id(val)]
        else:
            seen[id(val)] = v
            res_vars.append(v)
            residuals.append(val)
    new = substitute_inputs(prog, const_vars + res_vars + prog.in_binders[n_res:], subst)
    typecheck(new)
    return ClosedProgram(new, const_vals), residuals


# --- transposition -----------------------------------------------------------------------------


def transpose_program(program, linear_in_mask):
    """Transpose a program that is linear in the inputs flagged by ``linear_in_mask``.

    Returns a ClosedProgram ``(*nonlinear_ins, *cts_out) -> cts of the linear inputs`` (in
    input order; cotangents that do not flow are instantiated as zeros).
    """
    closed = as_closed(program)
    avals = in_avals(closed)
    mask = _bools(linear_in_mask, len(avals), "transpose_program linear_in_mask")
    outs_avals = closed.program.out_avals
    n_nonlin = mask.count(False)

    def transposed_fun(*args):
        nonlin, cts = iter(args[:n_nonlin]), list(args[n_nonlin:])
        full_args = [*closed.consts] + [UndefinedPrimal(_shaped(a)) if lin else next(nonlin)
                                        for a, lin in zip(avals, mask, strict=True)]
        cts_in = backward_pass(closed.program, full_args, cts)
        return [instantiate_zero(ct) for ct in cts_in]

    nonlin_avals = [a for a, lin in zip(avals, mask) if not lin]
    return _close(transposed_fun, nonlin_avals + list(outs_avals))


# --- dead-code elimination ----------------------------------------------------------------


def dce_program(program, used_outputs, instantiate=False):
    """Drop the outputs not flagged in ``used_outputs`` and the equations they alone needed.

    Returns ``(new_program, used_inputs)``; ``new_program`` has the same type as ``program`` and
    takes only the used inputs, unless ``instantiate`` (a bool or a flag per input) keeps them.
    Equations are dropped whole (higher-order equations are not pruned inside).
    """
    closed_in = isinstance(program, ClosedProgram)
    closed = as_closed(program)
    prog, n_consts = closed.program, len(closed.consts)
    used_out = _bools(used_outputs, len(prog.outs), "dce_program used_outputs")
    keep_in = _bools(instantiate, len(prog.in_binders) - n_consts, "dce_program instantiate")
    live = {x for x, u in zip(prog.outs, used_out, strict=True) if u and isinstance(x, Var)}
    eqns = []
    for eqn in reversed(prog.eqns):
        if any(v in live for v in eqn.out_binders):
            eqns.append(eqn)
            live.update(x for x in eqn.inputs if isinstance(x, Var))
    eqns.reverse()
    const_binders = prog.in_binders[:n_consts]
    kept_consts = [(v, c) for v, c in zip(const_binders, closed.consts, strict=True) if v in live]
    used_inputs = [v in live for v in prog.in_binders[n_consts:]]
    in_binders = [v for v, u, k in zip(prog.in_binders[n_consts:], used_inputs, keep_in,
                                       strict=True) if u or k]
    new = Program([v for v, _ in kept_consts] + in_binders, eqns,
                  [x for x, u in zip(prog.outs, used_out) if u])
    typecheck(new)
    if closed_in:
        return ClosedProgram(new, [c for _, c in kept_consts]), used_inputs
    if kept_consts:
        raise AssertionError("dce_program: a Program without constants grew constants")
    return new, used_inputs


# --- plumbing ----------------------------------------------------------------------------------


def reorder_program(program, in_perm, out_perm=None):
    """Permute a program's inputs and select/permute its outputs: input ``k`` of the result
    is input ``in_perm[k]`` of ``program``; output ``k`` is output ``out_perm[k]``."""
    closed = as_closed(program)
    avals = in_avals(closed)
    in_perm = list(in_perm)
    if sorted(in_perm) != list(range(len(avals))):
        raise ValueError(f"reorder_program: {in_perm} is not a permutation of the inputs")
    n_out = len(closed.program.outs)
    out_perm = list(range(n_out)) if out_perm is None else list(out_perm)

    def fun(*args):
        orig = [None] * len(avals)
        for k, i in enumerate(in_perm):
            orig[i] = args[k]
        outs = closed_call(closed, orig)
        return [outs[j] for j in out_perm]

    return _close(fun, [avals[i] for i in in_perm])


def program_from_fun(f, avals):
    """Trace ``f`` (flat arrays -> flat list) to a ClosedProgram at ``avals``."""
    return _close(f, avals)



def trace_hoisted(f, avals):
    """Trace ``f`` at ``avals`` to ``(ClosedProgram, consts)`` whose program takes the
    constants as ordinary leading inputs (no constants of its own).

    User-facing higher-order functions (cond, scan, custom_jvp, checkpoint...) pass ``consts``
    as operands of the primitive, so values closed over from outer transforms (tracers) are
    seen by those transforms instead of being frozen into a param.
    """
    program, consts = make_program(f, [_shaped(a) for a in avals])
    return ClosedProgram(program, []), consts
