"""Fused group -> backend-neutral loop nest (consumed by cpu.py, and by a CUDA generator).

A ``LoopNest`` knows nothing about sizes: it has a rank, which axes are reduced, and for every
input/output array the (sorted) domain axes its dimensions follow; the code generator indexes
flat buffers with strides computed from the run-time sizes ``n0..n{rank-1}``. Adjacent domain
axes that every array treats alike are collapsed, so a same-shape elementwise chain of any rank
is a single flat loop. Statements are SSA scalars:

* ``load``  (input k), ``const`` (value), ``index`` (domain axis), ``op`` (vocabulary name),
* ``reduce`` (reducer name over the reduced axes, row/acc modes).

Each statement has ``outer`` (does not vary over reduced axes, row mode) and a pass number:
full statements run in pass ``p`` of the row loop, outer ones become available after pass
``p - 1``. Outputs record the statement they store.
"""

import numpy as np

from .. import scalar
from ..fusion import Group


class Stmt:
    __slots__ = ("name", "kind", "op", "args", "dtype", "in_dtypes", "statics", "outer",
                 "level", "value")

    def __init__(self, name, kind, dtype, op=None, args=(), in_dtypes=(), statics=(),
                 value=None):
        self.name, self.kind, self.dtype, self.op = name, kind, np.dtype(dtype), op
        self.args, self.in_dtypes, self.statics, self.value = (list(args), list(in_dtypes),
                                                              list(statics), value)
        self.outer = False
        self.level = 0

    def __repr__(self):
        return f"{self.name} = {self.kind} {self.op or ''} {self.args} {self.statics}"


class LoopNest:
    def __init__(self, mode, ndim, reduced, inputs, outputs, stmts):
        self.mode = mode
        self.ndim = ndim
        self.reduced = list(reduced)  # per domain axis
        self.inputs = inputs          # [(dtype, axes)]
        self.outputs = outputs        # [(dtype, axes, stmt name, space)]  space: full|outer
        self.stmts = stmts
        self.npasses = 1

    def key(self):
        return repr((self.mode, self.ndim, self.reduced, self.inputs, self.outputs,
                     [repr(s) for s in self.stmts]))


# Float literals emitted into kernel source as constants; every other float literal is passed
# as a run-time 0-d input, so one kernel serves every batch size and hyperparameter value.
STRUCTURAL_FLOATS = frozenset({0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5, float("inf"),
                               float("-inf")})


def structural_const(v):
    """Whether the 0-d literal ``v`` is written into the kernel source (ints, bools, and the
    few float values above, which codegen and LLVM simplify), not passed at run time."""
    if v.dtype.kind != "f":
        return True
    f = float(v.reshape(()))
    return f != f or f in STRUCTURAL_FLOATS


def build(group, plan, outputs):
    """The loop nest of ``group``; ``outputs``: its vars read outside it.

    Returns ``(nest, input_vars, sizes)``: the arrays (Vars/Literals) to pass for the nest's
    inputs and the domain sizes after collapsing.
    """
    from ...core.ir import Literal

    domain = group.domain
    n = len(domain)
    red = set(group.reduce_axes)
    kept = tuple(i for i in range(n) if i not in red)
    stmts, env, loads = [], {}, {}
    inputs, input_vars = [], []
    counter = [0]

    def new(kind, dtype, **kw):
        s = Stmt(f"t{counter[0]}", kind, dtype, **kw)
        counter[0] += 1
        stmts.append(s)
        return s

    def shape_axes(shape):
        shape = tuple(shape)
        if shape == domain:
            return tuple(range(n))
        if shape == group.outer_shape:
            return kept
        if shape == group.keepdims_shape:
            return tuple(None if i in red else i for i in range(n))
        raise AssertionError(f"shape {shape} does not fit domain {domain}")

    def load(src, axes_of_dims):
        # axes_of_dims: per array dim, the domain axis or None (size 1)
        axes = tuple(a for a in axes_of_dims if a is not None)
        key = (id(src), axes)
        if key not in loads:
            k = len(inputs)
            inputs.append((np.dtype(src.aval.dtype).str, axes))
            input_vars.append(src)
            loads[key] = new("load", src.aval.dtype, args=(k,))
        return loads[key].name

    def read(x, shape):
        if isinstance(x, Literal):
            v = np.asarray(x.val._buf if hasattr(x.val, "_buf") else x.val)
            if not structural_const(v):
                v = v.astype(x.aval.dtype)
                # a run-time 0-d input: the kernel source (and its compiled code) does not
                # depend on sizes (a mean's 1/B) or hyperparameters (a learning rate)
                key = ("lit", v.dtype.str, v.tobytes())
                if key not in loads:
                    k = len(inputs)
                    inputs.append((v.dtype.str, ()))
                    input_vars.append(x)
                    loads[key] = new("load", v.dtype, args=(k,))
                return loads[key].name
            return new("const", v.dtype, value=v.reshape(()).item()).name
        if x in group.internal:
            return env[x]
        lz = plan.lazy.get(x)
        sa = shape_axes(shape)
        if lz is not None and lz.iota is not None:
            return new("index", x.aval.dtype, op="index", statics=(sa[lz.iota], x.aval.dtype)).name
        if lz is not None:
            src = lz.src
            if isinstance(src, Literal):
                return read(src, ())
            return load(src, tuple(None if d is None else sa[d] for d in lz.dims))
        return load(x, sa)

    for eqn in group.eqns:
        p = eqn.primitive
        out = eqn.out_binders[0]
        if p.fusion_kind == "layout":  # outer <-> keepdims reshape, outer -> full broadcast
            env[out] = env[eqn.inputs[0]]
            continue
        if p.fusion_kind == "reduce":
            x = read(eqn.inputs[0], eqn.inputs[0].aval.shape)
            s = new("reduce", out.aval.dtype, op=p.reducer[0], args=(x,),
                    in_dtypes=(eqn.inputs[0].aval.dtype,))
            s.value = None if p.reducer[1] is None else p.reducer[1](eqn.inputs[0].aval.dtype)
            env[out] = s.name
            continue
        args = [read(x, x.aval.shape) for x in eqn.inputs]
        arg_dts = [np.dtype(x.aval.dtype) for x in eqn.inputs]
        tree = scalar.parse(p.scalar_expr, eqn.params)
        _, types = scalar.infer(tree, arg_dts)

        def emit(node):
            if isinstance(node, scalar.Arg):
                return args[node.index]
            if isinstance(node, scalar.Const):
                return new("const", types[id(node)], value=node.value).name
            kids, statics = scalar.split_children(node)
            names = [emit(k) for k in kids]
            return new("op", types[id(node)], op=node.name, args=names,
                       in_dtypes=types[("in", id(node))], statics=statics).name

        env[out] = emit(tree)

    by_name = {s.name: s for s in stmts}
    outs = []
    for v in outputs:
        s = by_name[env[v]]
        space = group.internal[v]
        axes = tuple(a for a in shape_axes(v.aval.shape) if a is not None)
        outs.append((np.dtype(v.aval.dtype).str, axes, s.name, "full" if space == "full"
                     else "outer"))
    nest = LoopNest(group.mode, n, [i in red for i in range(n)], inputs, outs, stmts)
    _levels(nest)
    sizes = list(domain)
    _collapse(nest, sizes)
    return nest, input_vars, sizes


def _levels(nest):
    """Mark statements outer/full and assign passes (row mode)."""
    by = {s.name: s for s in nest.stmts}
    red = {i for i, r in enumerate(nest.reduced) if r}
    for s in nest.stmts:
        if s.kind == "load":
            s.outer = not (set(nest.inputs[s.args[0]][1]) & red)
            s.level = 0
        elif s.kind == "const":
            s.outer, s.level = True, 0
        elif s.kind == "index":
            s.outer, s.level = s.statics[0] not in red, 0
        elif s.kind == "reduce":
            src = by[s.args[0]]
            s.outer = True
            s.level = (src.level + 1) if not src.outer else src.level + 1
        else:
            deps = [by[a] for a in s.args]
            s.outer = all(d.outer for d in deps)
            s.level = max([d.level for d in deps], default=0)
    if nest.mode != "row":
        for s in nest.stmts:
            s.level = 0
        return
    passes = [by[s.args[0]].level + 1 for s in nest.stmts if s.kind == "reduce"]
    passes += [by[o[2]].level + 1 for o in nest.outputs if o[3] == "full"]
    nest.npasses = max(passes, default=1)


def _collapse(nest, sizes):
    """Merge adjacent domain axes that every array and index treats alike."""
    axis_sets = [set(ax) for _, ax in nest.inputs] + [set(o[1]) for o in nest.outputs]
    pinned = {s.statics[0] for s in nest.stmts if s.kind == "index"}
    groups = [[0]] if nest.ndim else []
    for a in range(1, nest.ndim):
        prev = groups[-1][-1]
        ok = (nest.reduced[a] == nest.reduced[prev] and a not in pinned and prev not in pinned
              and all((a in s) == (prev in s) for s in axis_sets))
        if ok:
            groups[-1].append(a)
        else:
            groups.append([a])
    new_of = {a: i for i, g in enumerate(groups) for a in g}

    def remap(axes):
        return tuple(sorted({new_of[a] for a in axes}))

    nest.inputs = [(dt, remap(ax)) for dt, ax in nest.inputs]
    nest.outputs = [(dt, remap(ax), name, sp) for dt, ax, name, sp in nest.outputs]
    for s in nest.stmts:
        if s.kind == "index":
            s.statics = [new_of[s.statics[0]], s.statics[1]]
    nest.reduced = [nest.reduced[g[0]] for g in groups]
    nest.ndim = len(groups)
    sizes[:] = [int(np.prod([sizes[a] for a in g], dtype=np.int64)) for g in groups]


__all__ = ["Group", "LoopNest", "Stmt", "build", "structural_const"]
