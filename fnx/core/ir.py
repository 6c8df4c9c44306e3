"""The typed IR: ``Var``, ``Literal``, ``Eqn``, ``Program``; ``typecheck``, the pretty-printer,
``eval_program``, and the staging trace that turns a Python function into a Program.

A ``Program`` is what ``fnx.make_ir`` prints, what ``linearize`` produces, what control-flow
and jit primitives carry as params, and what ``fnx/jit`` optimises and compiles.
"""

import itertools
import weakref

import numpy as np

from .abstract import ShapedArray, typematch
from .array import Array, AutogradSurface, wrap, wrap_weak
from .errors import ConcretizationError, TraceError
from . import tracing
from .tracing import (Trace, Tracer, bind, concretization_message, full_raise, get_aval,
                      new_dynamic, new_main, note_inlined)

_var_ids = itertools.count()


class Var:
    """An IR variable: a name for a value of type ``aval``."""

    __slots__ = ("aval", "id")

    def __init__(self, aval):
        self.aval = aval
        self.id = next(_var_ids)

    def __repr__(self):
        return f"Var({self.id}:{self.aval.str_short()})"


class Literal:
    """A constant inlined in an equation (a scalar or a small array)."""

    __slots__ = ("val", "aval")

    def __init__(self, val):
        self.val = val
        self.aval = get_aval(val)

    def __repr__(self):
        return f"Literal({self.val!r})"


class Eqn:
    """One primitive application: ``out_binders = primitive(*inputs, **params)``."""

    __slots__ = ("primitive", "inputs", "params", "out_binders")

    def __init__(self, primitive, inputs, params, out_binders):
        self.primitive, self.inputs, self.params, self.out_binders = (
            primitive, list(inputs), dict(params), list(out_binders))

    def __repr__(self):
        return f"Eqn({self.primitive.name})"


class Program:
    """A straight-line typed program: ``in_binders``, ``eqns``, ``outs``.

    >>> fnx.make_ir(lambda x: x * 2.0)(fnx.numpy.ones(3))   # doctest: +SKIP
    { lambda a:f32[3] . let b:f32[3] = mul a 2.0 in ( b ) }
    """

    __slots__ = ("in_binders", "eqns", "outs", "__weakref__")

    def __init__(self, in_binders, eqns, outs):
        self.in_binders, self.eqns, self.outs = list(in_binders), list(eqns), list(outs)

    @property
    def in_avals(self):
        return [v.aval for v in self.in_binders]

    @property
    def out_avals(self):
        return [x.aval for x in self.outs]

    def __repr__(self):
        return pp_program(self)

    def __str__(self):
        return pp_program(self)


class ClosedProgram:
    """A Program together with the values of its leading constant inputs."""

    __slots__ = ("program", "consts")

    def __init__(self, program, consts):
        self.program, self.consts = program, list(consts)

    def __call__(self, *args):
        return eval_program(self.program, [*self.consts, *args])

    def __repr__(self):
        return pp_program(self.program)


# --- typecheck ---------------------------------------------------------------------------------


def typecheck(program):
    """Re-run every equation's ``abstract_eval`` and check every variable is defined once."""
    env = set()
    for v in program.in_binders:
        if v in env:
            raise TypeError(f"typecheck: variable {v} bound twice")
        env.add(v)
    for eqn in program.eqns:
        in_avals = []
        for x in eqn.inputs:
            if isinstance(x, Var) and x not in env:
                raise TypeError(f"typecheck: {eqn.primitive.name} reads unbound variable {x}")
            in_avals.append(x.aval)
        out = eqn.primitive.out_avals(in_avals, eqn.params)
        out = out if eqn.primitive.multiple_results else [out]
        for v, aval in zip(eqn.out_binders, out, strict=True):
            # Weak types are not checked (JAX's typecompat): they steer promotion while a
            # program is traced, and what flows into an input may differ in them alone (a
            # strong cotangent for a weakly typed output; a pass that drops a no-op convert).
            if not typematch(v.aval, aval):
                raise TypeError(f"typecheck: {eqn.primitive.name} produces {aval}, "
                                f"binder says {v.aval}")
            if v in env:
                raise TypeError(f"typecheck: variable {v} bound twice")
            env.add(v)
    for x in program.outs:
        if isinstance(x, Var) and x not in env:
            raise TypeError(f"typecheck: output {x} is unbound")
    return [x.aval for x in program.outs]


# --- pretty-printing ---------------------------------------------------------------------------


def _names():
    for n in itertools.count():
        s, k = "", n
        while True:
            s = chr(ord("a") + k % 26) + s
            k = k // 26 - 1
            if k < 0:
                break
        yield s


def pp_program(program, indent=0):
    """A readable listing, one equation a line (the format of ``fnx.make_ir``)."""
    names = {}
    gen = _names()

    def name(x):
        if isinstance(x, Literal):
            v = x.val._buf if type(x.val) is Array else x.val
            return repr(np.asarray(v).item()) if np.ndim(v) == 0 else f"const{tuple(np.shape(v))}"
        if x not in names:
            names[x] = next(gen)
        return names[x]

    def binder(v):
        return f"{name(v)}:{v.aval.str_short()}"

    pad = " " * indent
    lines = [f"{pad}{{ lambda {', '.join(binder(v) for v in program.in_binders)} ."]
    for eqn in program.eqns:
        outs = " ".join(binder(v) for v in eqn.out_binders)
        params = " ".join(f"{k}={_pp_param(v, indent + 4)}" for k, v in sorted(eqn.params.items()))
        args = " ".join(name(x) for x in eqn.inputs)
        lhs = f"{pad}  {outs} = " if eqn.out_binders else f"{pad}  _ = "
        lines.append(lhs + eqn.primitive.name + (f"[{params}]" if params else "") + " " + args)
    lines.append(f"{pad}  in ( {', '.join(name(x) for x in program.outs)} ) }}")
    return "\n".join(lines)


def _pp_param(value, indent):
    if isinstance(value, ClosedProgram):
        value = value.program
    if isinstance(value, Program):
        return "\n" + pp_program(value, indent)
    if isinstance(value, (tuple, list)) and value and all(
            isinstance(v, (Program, ClosedProgram)) for v in value):
        return "(" + ",".join(_pp_param(v, indent) for v in value) + ")"
    if isinstance(value, np.dtype):
        return value.name
    return repr(value)


# --- evaluation ----------------------------------------------------------------------------------


def eval_program(program, args):
    """Run ``program`` on ``args`` by binding each equation (so evaluation is traceable)."""
    env = {}

    def read(x):
        return x.val if isinstance(x, Literal) else env[x]

    for v, a in zip(program.in_binders, args, strict=True):
        env[v] = a
    for eqn in program.eqns:
        outs = bind(eqn.primitive, *[read(x) for x in eqn.inputs], **eqn.params)
        if not eqn.primitive.multiple_results:
            outs = [outs]
        for v, o in zip(eqn.out_binders, outs, strict=True):
            env[v] = o
    return [read(x) for x in program.outs]


# --- staging: Python function -> Program ----------------------------------------------------


class StagingTracer(Tracer, AutogradSurface):
    """A value of a program being staged. Inside a compiled PyTorch-style step it also takes
    part in the eager autograd tape (``_autograd``, as a concrete Array's), so
    ``loss.backward()`` works on it and stages the backward pass into the same program."""

    __slots__ = ("_aval", "_autograd")

    def __init__(self, trace, aval):
        self._trace = trace
        self._aval = aval
        self._autograd = None

    aval = property(lambda self: self._aval)

    def concrete_value(self):
        raise ConcretizationError(concretization_message(self))

    def _become(self, new):
        """In-place update of a staged value (``x[i] = v``, ``x.relu_()``, the guide's
        ``grad_input[input < 0] = 0``): this tracer now stands for ``new`` in the program
        being staged, so every holder of it sees the update, as with a concrete array.
        Returns False when ``new`` belongs to another trace."""
        builder = self._trace.main.global_data
        if builder is None:
            return False
        var = builder.tracer_to_var.get(id(self))
        if var is None or var in builder.const_vals or var in builder.arg_vars:
            # an argument or a closed-over array: updating it in place would have to change
            # the caller's array (arguments: use the out-of-place form)
            return False
        if not isinstance(new, Tracer):
            new = self._trace.pure(new)
        if not isinstance(new, StagingTracer) or new._trace.main is not self._trace.main \
                or new.aval.shape != self._aval.shape:
            return False
        if new.aval.dtype != self._aval.dtype:
            new = new.astype(self._aval.dtype)
        self._check_leaf_update(new, "in-place update")
        mine, theirs = self._autograd, new._autograd
        builder.tracer_to_var[id(self)] = builder.get_var(new)
        self._aval = new.aval
        if theirs is not None or (mine is not None and mine.grad_fn is not None):
            self._autograd = theirs  # the array now stands for the recorded result
        return True

    def __setitem__(self, idx, value):
        if not self._become(self.at[idx].set(value)):
            super().__setitem__(idx, value)


class _Builder:
    def __init__(self):
        self.eqns = []
        self.tracer_to_var = {}
        self.const_tracers = {}  # id(value) -> tracer
        self.const_vals = {}  # var -> value
        self.tracers = []
        self.journal = None  # fnx.core.state.Journal of a jit traced at the top level
        self.arg_vars = set()

    def new_tracer(self, trace, aval):
        t = StagingTracer(trace, aval)
        self.tracers.append(t)
        return t

    def add_var(self, tracer):
        v = Var(tracer.aval)
        self.tracer_to_var[id(tracer)] = v
        return v

    def get_var(self, tracer):
        return self.tracer_to_var[id(tracer)]


class StagingTrace(Trace):
    """Records every primitive application as an equation (used by jit and make_ir)."""

    def new_arg(self, aval):
        builder = self.main.global_data
        t = builder.new_tracer(self, aval)
        builder.arg_vars.add(builder.add_var(t))
        return t

    def get_or_make_const_tracer(self, val):
        builder = self.main.global_data
        t = builder.const_tracers.get(id(val))
        if t is None:
            t = builder.new_tracer(self, get_aval(val))
            builder.const_tracers[id(val)] = t
            builder.const_vals[builder.add_var(t)] = val
            meta = getattr(val, "_autograd", None)
            if meta is not None and builder.journal is not None:
                # a compiled PyTorch-style step records parameters on the tape; whether one
                # requires grad shapes the program
                t._autograd = meta
                builder.journal.guard(
                    f"requires_grad of an array {t.aval.str_short()} changed",
                    lambda: meta.requires_grad, meta.requires_grad)
        return t

    pure = lift = get_or_make_const_tracer

    def process_primitive(self, primitive, tracers, params):
        builder = self.main.global_data
        avals_in = [t.aval for t in tracers]
        avals_out = primitive.out_avals(avals_in, params)
        avals_out = avals_out if primitive.multiple_results else [avals_out]
        out_tracers = [builder.new_tracer(self, a) for a in avals_out]
        inputs = [builder.get_var(t) for t in tracers]
        outs = [builder.add_var(t) for t in out_tracers]
        builder.eqns.append(Eqn(primitive, inputs, params, outs))
        out = out_tracers if primitive.multiple_results else out_tracers[0]
        if builder.journal is not None and tracing._recorder is not None:
            for t in tracers:
                if t._autograd is not None:
                    tracing._recorder(primitive, params, tracers, tracers, out)
                    break
        return out


def substitute_inputs(program, in_binders, subst):
    """``program`` taking ``in_binders``, with every read of a Var in ``subst`` replaced by
    its value there (a Var or a Literal)."""

    def sub(x):
        return subst.get(x, x) if isinstance(x, Var) else x

    eqns = [Eqn(e.primitive, [sub(x) for x in e.inputs], e.params, e.out_binders)
            for e in program.eqns]
    return Program(in_binders, eqns, [sub(x) for x in program.outs])


def _inline_scalar_literals(program, consts, keep=()):
    """Turn scalar constants into Literals so the printed IR and the fused kernels see values
    (except the ids in ``keep``: values re-read at every call)."""
    keep_binders, keep_consts, lits, baked = [], [], {}, []
    n_consts = len(consts)
    for v, val in zip(program.in_binders[:n_consts], consts, strict=True):
        if v.aval.shape == () and type(val) is Array and id(val) not in keep:
            # a snapshot (in-place updates of val retrace) of the same (weak) type
            lits[v] = Literal((wrap_weak if val._weak else wrap)(val._buf))
            baked.append((weakref.ref(val), val._version))
        else:
            keep_binders.append(v)
            keep_consts.append(val)
    new = substitute_inputs(program, keep_binders + program.in_binders[n_consts:], lits)
    note_inlined(baked)  # a jit being traced re-traces when one of them is updated in place
    return new, keep_consts


def make_program(f, in_avals):
    """Trace ``f`` (a function of flat arrays returning a flat list of arrays) at ``in_avals``.

    Returns ``(program, consts)``: the program's first ``len(consts)`` inputs are the
    constants (closed-over arrays, outer tracers) that ``f`` used.
    """
    builder = _Builder()
    with new_main(StagingTrace, builder) as main:
        with new_dynamic(main):
            trace = StagingTrace(main)
            tracers_in = [trace.new_arg(aval) for aval in in_avals]
            outs = f(*tracers_in)
            tracers_out = [full_raise(trace, out) for out in outs]
            if any(t._trace.main is not main for t in tracers_out):
                raise TraceError("make_program: an output escaped its trace")
    const_vars = list(builder.const_vals)
    consts = [builder.const_vals[v] for v in const_vars]
    in_vars = [builder.get_var(t) for t in tracers_in]
    out_vars = [builder.get_var(t) for t in tracers_out]
    program = Program(const_vars + in_vars, builder.eqns, out_vars)
    # the builder, its tracers and the main trace form a cycle: drop it, so the trace's
    # temporaries (and the weak guards jit keeps on them) die now, not at the next gc
    # state a compiled step reads or updates is re-read at every call, never baked in
    keep = builder.journal.live_ids() if builder.journal is not None else ()
    main.global_data = None
    builder.__init__()
    program, consts = _inline_scalar_literals(program, consts, keep)
    typecheck(program)
    return program, consts


def to_shaped(x):
    aval = get_aval(x)
    return ShapedArray(aval.shape, aval.dtype)
