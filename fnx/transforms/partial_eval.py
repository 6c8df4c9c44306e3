"""Partial evaluation and transposition: the machinery behind ``linearize``, ``vjp`` and
``grad`` (Autodidax part 4). Known values are computed now (by binding below this trace);
unknown ones are recorded as a linear Program, which ``backward_pass`` runs in reverse with
each primitive's ``transpose`` rule."""

from ..core.abstract import ShapedArray
from ..core.ad_util import UndefinedPrimal, Zero, add_tangents, instantiate
from ..core.errors import TraceError
from ..core.ir import Eqn, Literal, Program, Var, typecheck
from ..core.tracing import Trace, Tracer, bind, full_raise, get_aval, new_main


class PartialVal:
    """Either a known value (``const``) or an unknown of type ``aval``."""

    __slots__ = ("aval", "const")

    def __init__(self, aval, const):
        self.aval, self.const = aval, const

    @classmethod
    def known(cls, val):
        return cls(get_aval(val), val)

    @classmethod
    def unknown(cls, aval):
        return cls(aval, None)

    is_known = property(lambda self: self.const is not None)
    is_unknown = property(lambda self: self.const is None)


class _LambdaBinding:
    __slots__ = ()


class _ConstRecipe:
    __slots__ = ("val",)

    def __init__(self, val):
        self.val = val


class _EqnRecipe:
    __slots__ = ("prim", "tracers_in", "params", "avals_out", "tracer_refs_out")

    def __init__(self, prim, tracers_in, params, avals_out, tracer_refs_out):
        self.prim, self.tracers_in, self.params = prim, tracers_in, params
        self.avals_out, self.tracer_refs_out = avals_out, tracer_refs_out


class PartialEvalTracer(Tracer):
    __slots__ = ("pval", "recipe", "__weakref__")

    def __init__(self, trace, pval, recipe):
        self._trace, self.pval, self.recipe = trace, pval, recipe

    aval = property(lambda self: self.pval.aval)

    def primal_value(self):
        return self.pval.const if self.pval.is_known else None

    def full_lower(self):
        if self.pval.is_known:
            from ..core.tracing import full_lower

            return full_lower(self.pval.const)
        return self

    def concrete_value(self):
        if self.pval.is_known:
            return self.pval.const.concrete_value()
        return super().concrete_value()


class PartialEvalTrace(Trace):
    def new_arg(self, pval):
        return PartialEvalTracer(self, pval, _LambdaBinding())

    def lift(self, val):
        return PartialEvalTracer(self, PartialVal.known(val), None)

    pure = lift

    def instantiate_const(self, tracer):
        if tracer.pval.is_unknown:
            return tracer
        aval = tracer.pval.aval
        return PartialEvalTracer(self, PartialVal.unknown(aval), _ConstRecipe(tracer.pval.const))

    def process_primitive(self, primitive, tracers, params):
        if all(t.pval.is_known for t in tracers):
            return bind(primitive, *[t.pval.const for t in tracers], **params)
        if primitive.partial_eval is not None:
            return primitive.partial_eval(self, tracers, **params)
        return self.default_process(primitive, tracers, params)

    def default_process(self, primitive, tracers, params):
        tracers_in = [self.instantiate_const(t) for t in tracers]
        avals_in = [t.aval for t in tracers_in]
        avals_out = primitive.out_avals(avals_in, params)
        avals_out = avals_out if primitive.multiple_results else [avals_out]
        tracers_out = [PartialEvalTracer(self, PartialVal.unknown(a), None) for a in avals_out]
        import weakref

        recipe = _EqnRecipe(primitive, tracers_in, params, avals_out,
                            [weakref.ref(t) for t in tracers_out])
        for t in tracers_out:
            t.recipe = recipe
        return tracers_out if primitive.multiple_results else tracers_out[0]


def partial_eval_flat(f, pvals_in, instantiate_out):
    """Run ``f`` with some inputs known; return the Program of the unknown part.

    Returns ``(program, pvals_out, consts)``; outputs whose ``instantiate_out`` flag is set
    are always unknown (program outputs), the rest may come back known; ``instantiate_out``
    may be a function of the number of outputs.
    """
    with new_main(PartialEvalTrace) as main:
        trace = PartialEvalTrace(main)
        tracers_in = [trace.new_arg(pval) for pval in pvals_in]
        outs = f(*tracers_in)
        tracers_out = [full_raise(trace, out) for out in outs]
        if callable(instantiate_out):
            instantiate_out = instantiate_out(len(tracers_out))
        tracers_out = [trace.instantiate_const(t) if inst else t
                       for t, inst in zip(tracers_out, instantiate_out, strict=True)]
        pvals_out = [t.pval for t in tracers_out]
        unk_in = [t for t in tracers_in if t.pval.is_unknown]
        unk_out = [t for t in tracers_out if t.pval.is_unknown]
        program, consts = tracers_to_program(unk_in, unk_out)
    return program, pvals_out, consts


def _toposort(out_nodes, parents):
    order, seen = [], set()
    stack = [(n, False) for n in reversed(out_nodes)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for p in reversed(parents(node)):
            if id(p) not in seen:
                stack.append((p, False))
    return order


def tracers_to_program(tracers_in, tracers_out):
    """Build a Program from the recipes reachable from ``tracers_out``."""
    tracer_to_var = {id(t): Var(t.aval) for t in tracers_in}
    const_vars, const_vals = [], []
    eqns, processed = [], set()

    def parents(t):
        r = t.recipe
        return list(r.tracers_in) if isinstance(r, _EqnRecipe) else []

    for t in _toposort(tracers_out, parents):
        r = t.recipe
        if isinstance(r, _LambdaBinding):
            if id(t) not in tracer_to_var:
                raise TraceError("partial_eval: an unknown input that is not an argument")
        elif isinstance(r, _ConstRecipe):
            v = Var(t.aval)
            tracer_to_var[id(t)] = v
            const_vars.append(v)
            const_vals.append(r.val)
        elif isinstance(r, _EqnRecipe):
            if id(r) in processed:
                continue
            processed.add(id(r))
            outs = []
            for ref, aval in zip(r.tracer_refs_out, r.avals_out, strict=True):
                v = Var(aval)
                out_t = ref()
                if out_t is not None:
                    tracer_to_var[id(out_t)] = v
                outs.append(v)
            ins = [tracer_to_var[id(x)] for x in r.tracers_in]
            eqns.append(Eqn(r.prim, ins, r.params, outs))
    in_binders = const_vars + [tracer_to_var[id(t)] for t in tracers_in]
    program = Program(in_binders, eqns, [tracer_to_var[id(t)] for t in tracers_out])
    typecheck(program)
    return program, const_vals


# --- transposition ---------------------------------------------------------------------------


def backward_pass(program, args, cts_out):
    """Transpose a linear ``program``: ``args`` are values or ``UndefinedPrimal`` for linear
    inputs; returns the cotangents of the linear inputs (symbolic ``Zero`` where none flowed)."""
    primal_env, ct_env = {}, {}

    def read_primal(x):
        if isinstance(x, Literal):
            return x.val
        return primal_env.get(x, UndefinedPrimal(x.aval))

    def write_ct(v, ct):
        if type(ct) is Zero or ct is None:
            return
        ct_env[v] = add_tangents(ct_env[v], ct) if v in ct_env else ct

    for v, x in zip(program.in_binders, args, strict=True):
        if type(x) is not UndefinedPrimal:
            primal_env[v] = x
    for x, ct in zip(program.outs, cts_out, strict=True):
        if isinstance(x, Var):
            write_ct(x, ct)

    for eqn in program.eqns:  # forward pass over the non-linear equations on known inputs
        if all(isinstance(x, Literal) or x in primal_env for x in eqn.inputs):
            outs = bind(eqn.primitive, *[read_primal(x) for x in eqn.inputs], **eqn.params)
            outs = outs if eqn.primitive.multiple_results else [outs]
            for v, o in zip(eqn.out_binders, outs, strict=True):
                primal_env[v] = o

    for eqn in reversed(program.eqns):
        if all(v in primal_env for v in eqn.out_binders):
            continue
        cts = [ct_env.pop(v, None) for v in eqn.out_binders]
        if all(ct is None for ct in cts):
            continue
        prim = eqn.primitive
        if prim.transpose is None:
            raise TraceError(f"{prim.name} has no transpose rule, so it cannot appear in a "
                             f"reverse-mode derivative")
        primals_in = [read_primal(x) for x in eqn.inputs]
        if prim.multiple_results:
            cts = [instantiate(Zero(v.aval)) if ct is None else ct
                   for ct, v in zip(cts, eqn.out_binders)]
            cts_in = prim.transpose(cts, *primals_in, **eqn.params)
        else:
            cts_in = prim.transpose(cts[0], *primals_in, **eqn.params)
        for x, ct in zip(eqn.inputs, cts_in, strict=True):
            if isinstance(x, Var) and ct is not None and x not in primal_env:
                write_ct(x, ct)
    return [ct_env.get(v, Zero(v.aval))
            for v, x in zip(program.in_binders, args, strict=True)
            if type(x) is UndefinedPrimal]


def linearize_flat(f, primals):
    """``(primals_out, f_lin_program, consts)`` for the linearization of ``f`` at ``primals``."""
    from .jvp import jvp_flat

    n = len(primals)
    pvals_in = ([PartialVal.known(x) for x in primals]
                + [PartialVal.unknown(_tangent_aval(x)) for x in primals])

    def f_jvp(*args):
        outs, tangents = jvp_flat(f, args[:n], args[n:])
        return [*outs, *tangents]

    program, pvals_out, consts = partial_eval_flat(
        f_jvp, pvals_in, instantiate_out=lambda n_outs: [i >= n_outs // 2 for i in range(n_outs)])
    n_out = len(pvals_out) // 2
    primal_pvals = pvals_out[:n_out]
    if any(p.is_unknown for p in primal_pvals):
        raise TraceError("linearize: a primal output depends on a tangent (a bug in a JVP rule)")
    return [p.const for p in primal_pvals], program, consts


def _tangent_aval(x):
    aval = get_aval(x)
    return ShapedArray(aval.shape, aval.dtype)
