"""IR passes run by jit before fusion: inlining of nested jit calls (and custom-rule /
checkpoint calls, constant-index conds), DCE, CSE, constant folding and algebraic
simplification. Each pass returns a new Program and ends with ``typecheck``."""

import numpy as np

from ..core.array import Array, wrap
from ..core.ir import ClosedProgram, Eqn, Literal, Program, Var, typecheck


def _subst(x, env):
    while isinstance(x, Var) and x in env:
        x = env[x]
    return x


def _rebuild(program, eqns, env):
    new_eqns = [Eqn(e.primitive, [_subst(x, env) for x in e.inputs], e.params, e.out_binders)
                for e in eqns]
    out = Program(program.in_binders, new_eqns, [_subst(x, env) for x in program.outs])
    typecheck(out)
    return out


# Higher-order primitives whose (constant-free) program param is spliced into the caller: once
# compiled, no transform will see them again, so only their primal program matters.
_CALL_PARAMS = {"custom_jvp_call": "call", "custom_vjp_call": "call", "checkpoint": "program"}


def _inlinable(e):
    """``(program, inputs)`` to splice in place of equation ``e``, or None."""
    from .api import jit_call_p

    if e.primitive is jit_call_p:
        return e.params["program"], e.inputs
    name = e.primitive.name
    if name in _CALL_PARAMS:
        closed = e.params[_CALL_PARAMS[name]]
        inputs = e.inputs
    elif name == "cond" and isinstance(e.inputs[0], Literal):
        # a constant branch index (e.g. a Python bool predicate): keep only that branch
        branches = e.params["branches"]
        i = min(max(int(_buf(e.inputs[0])), 0), len(branches) - 1)
        closed, inputs = branches[i], e.inputs[1:]
    else:
        return None
    if isinstance(closed, Program):
        return closed, inputs
    if isinstance(closed, ClosedProgram) and not closed.consts:
        return closed.program, inputs
    return None  # programs with constants stay calls (compiled by control_flow.runner)


def inline_jit_calls(program):
    """Splice nested ``jit_call`` programs into the caller (jit inside jit compiles as one),
    and likewise constant-free ``custom_jvp_call`` / ``custom_vjp_call`` / ``checkpoint``
    programs and ``cond``s with a constant index, so they fuse with their surroundings."""
    if not any(_inlinable(e) is not None for e in program.eqns):
        return program
    eqns, env = [], {}
    for e in program.eqns:
        found = _inlinable(e)
        if found is None:
            eqns.append(Eqn(e.primitive, [_subst(x, env) for x in e.inputs], e.params,
                            e.out_binders))
            continue
        inner = inline_jit_calls(found[0])
        inner_env = {v: _subst(x, env) for v, x in zip(inner.in_binders, found[1], strict=True)}
        ren = {}

        def read(x):
            if isinstance(x, Literal):
                return x
            return ren.get(x, inner_env.get(x, x))

        for ie in inner.eqns:
            outs = [Var(v.aval) for v in ie.out_binders]
            ren.update(zip(ie.out_binders, outs))
            eqns.append(Eqn(ie.primitive, [read(x) for x in ie.inputs], ie.params, outs))
        for v, x in zip(e.out_binders, inner.outs, strict=True):
            env[v] = read(x)
    return _rebuild(program, eqns, env)


def dce(program):
    """Drop equations whose results are never used (every primitive is pure)."""
    live = {x for x in program.outs if isinstance(x, Var)}
    kept = []
    for e in reversed(program.eqns):
        if any(v in live for v in e.out_binders):
            kept.append(e)
            live.update(x for x in e.inputs if isinstance(x, Var))
    kept.reverse()
    return _rebuild(program, kept, {})


def _lit_key(x):
    v = x.val._buf if type(x.val) is Array else np.asarray(x.val)
    return ("lit", v.dtype.str, v.shape, v.tobytes())


def _param_key(params):
    return tuple(sorted((k, v if not isinstance(v, np.ndarray) else v.tobytes())
                        for k, v in params.items()))


def cse(program):
    """Merge equations with the same primitive, inputs and params."""
    env, seen, eqns = {}, {}, []
    for e in program.eqns:
        ins = [_subst(x, env) for x in e.inputs]
        try:
            key = (e.primitive, tuple(_lit_key(x) if isinstance(x, Literal) else x for x in ins),
                   _param_key(e.params))
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in seen:
            for v, w in zip(e.out_binders, seen[key], strict=True):
                env[v] = w
            continue
        if key is not None:
            seen[key] = e.out_binders
        eqns.append(Eqn(e.primitive, ins, e.params, e.out_binders))
    return _rebuild(program, eqns, env)


def _scalar_of(x, bcast):
    """The scalar Literal behind ``x`` (a Literal or a broadcast of one), else None."""
    if isinstance(x, Literal):
        return x if np.ndim(_buf(x)) == 0 else None
    return bcast.get(x)


def _buf(lit):
    return lit.val._buf if type(lit.val) is Array else np.asarray(lit.val)


def fold_constants(program):
    """Evaluate elementwise ops on scalar constants (or broadcasts of them) at compile time."""
    from ..core.ops.shape import broadcast_in_dim_p

    bcast, env, eqns = {}, {}, []
    for e in program.eqns:
        ins = [_subst(x, env) for x in e.inputs]
        if e.primitive is broadcast_in_dim_p and isinstance(ins[0], Literal) and \
                np.ndim(_buf(ins[0])) == 0:
            bcast[e.out_binders[0]] = ins[0]
        elif (e.primitive.fusion_kind == "elementwise" and ins and not
              e.primitive.multiple_results and
              all(_scalar_of(x, bcast) is not None for x in ins)):
            scalars = [_buf(_scalar_of(x, bcast)) for x in ins]
            with np.errstate(all="ignore"):
                val = np.asarray(e.primitive.impl(*scalars, **e.params))
            lit = Literal(wrap(val))
            out = e.out_binders[0]
            if out.aval.shape == ():
                env[out] = lit
                continue
            bcast[out] = lit
            e = Eqn(broadcast_in_dim_p, [lit], dict(shape=out.aval.shape,
                                                    broadcast_dimensions=()), [out])
            eqns.append(e)
            continue
        eqns.append(Eqn(e.primitive, ins, e.params, e.out_binders))
    return _rebuild(program, eqns, env)


def _is_value(lit, value):
    b = _buf(lit)
    return b.dtype.kind != "b" and bool(b == value)


def simplify(program):
    """x*1, x+0, x-0, x/1, converts to the same dtype, transpose of transpose, reshape of
    reshape and broadcast of broadcast."""
    from ..core.ops import elementwise as ew
    from ..core.ops import shape as sh

    bcast, producer, env, eqns = {}, {}, {}, []
    identities = {ew.mul_p: (1, (0, 1)), ew.add_p: (0, (0, 1)), ew.sub_p: (0, (1,)),
                  ew.div_p: (1, (1,))}
    for e in program.eqns:
        ins = [_subst(x, env) for x in e.inputs]
        p, out = e.primitive, e.out_binders[0] if e.out_binders else None
        if p is sh.broadcast_in_dim_p and isinstance(ins[0], Literal):  # noqa: SIM114
            bcast[out] = ins[0]
        if p in identities:
            value, positions = identities[p]
            for pos in positions:
                s = _scalar_of(ins[pos], bcast)
                other = ins[1 - pos]
                if s is not None and _is_value(s, value) and other.aval == out.aval:
                    env[out] = other
                    break
            if out in env:
                continue
        if p is ew.convert_element_type_p and ins[0].aval.dtype == e.params["new_dtype"]:
            env[out] = ins[0]
            continue
        if p in (sh.reshape_p, sh.squeeze_p) and ins[0].aval.shape == out.aval.shape:
            env[out] = ins[0]
            continue
        src = producer.get(ins[0]) if ins and isinstance(ins[0], Var) else None
        if p is sh.transpose_p and src is not None and src.primitive is sh.transpose_p:
            inner = src.params["permutation"]
            perm = tuple(inner[i] for i in e.params["permutation"])
            x = src.inputs[0]
            if perm == tuple(range(len(perm))):
                env[out] = x
                continue
            e = Eqn(sh.transpose_p, [x], dict(permutation=perm), [out])
            ins = [x]
        elif p is sh.reshape_p and src is not None and src.primitive in (sh.reshape_p,
                                                                          sh.squeeze_p):
            x = src.inputs[0]
            if x.aval.shape == out.aval.shape:
                env[out] = x
                continue
            ins = [x]
        elif p is sh.broadcast_in_dim_p and src is not None and \
                src.primitive is sh.broadcast_in_dim_p:
            dims = e.params["broadcast_dimensions"]
            inner = src.params["broadcast_dimensions"]
            x = src.inputs[0]
            new_dims = tuple(dims[d] for d in inner)
            # only compose when no size-1 dim of the middle value was expanded
            mid = ins[0].aval.shape
            if all(mid[i] == out.aval.shape[d] for i, d in enumerate(dims)):
                e = Eqn(sh.broadcast_in_dim_p, [x], dict(shape=out.aval.shape,
                                                        broadcast_dimensions=new_dims), [out])
                ins = [x]
                if isinstance(x, Literal):
                    bcast[out] = x
        for v in e.out_binders:
            producer[v] = e
        eqns.append(Eqn(e.primitive, ins, e.params, e.out_binders))
    return _rebuild(program, eqns, env)


def optimize(program):
    """The pass pipeline jit runs before fusion."""
    program = inline_jit_calls(program)
    program = simplify(fold_constants(program))
    inlined = inline_jit_calls(program)  # conds whose index folded to a constant
    if inlined is not program:
        program = simplify(fold_constants(inlined))
    program = dce(cse(program))
    return program
