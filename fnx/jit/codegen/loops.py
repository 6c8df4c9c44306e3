"""Fused group -> backend-neutral loop nest, and the statement emission both code generators
(cpu.py, cuda.py) build their kernels from.

A ``LoopNest`` knows nothing about sizes: it has a rank, which axes are reduced, and for every
input/output array the (sorted) domain axes its dimensions follow; the code generator indexes
flat buffers with strides computed from the run-time sizes ``n0..n{rank-1}``. Adjacent domain
axes that every array treats alike are collapsed, so a same-shape elementwise chain of any rank
is a single flat loop. Statements are SSA scalars:

* ``load``  (input k), ``const`` (value), ``index`` (domain axis), ``op`` (vocabulary name),
* ``reduce`` (reducer name over the reduced axes, row/acc modes),
* ``pick`` (row mode: ``args`` = (z, label), ``statics`` = (reduced axis,)): the outer value
  ``z`` at column ``label`` of the row, 0 when the label is out of range; the statements ``z``
  needs are recomputed once at that column (``Emitter.pick``), not in the row loop.

Each statement has ``outer`` (does not vary over reduced axes, row mode) and a pass number:
full statements run in pass ``p`` of the row loop, outer ones become available after pass
``p - 1``. Outputs record the statement they store.

A backend spells statements through an ``Emitter`` (buffer names, constants, ops, reducer
combines); ``Emitter.passes`` is the pass structure of a row (one output row per iteration of
the backend's own loop over the kept axes) that both backends share. The CPU backend adds two
options to it: the next row's pass 0 running ahead inside the last pass (``ahead_parts``), and
row buffers for costly statements several passes need (``Emitter.memo``).
"""

import math

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
        # elements in one row of the reduced axes (``build`` sets it from the traced shape;
        # None: unknown). Codegen may choose by it, never by the kept sizes (a batch size).
        self.row_size = None
        # output j -> input k whose buffer it is stored into (``donate``); CPU kernels only
        self.donated = {}

    def key(self):
        return repr((self.mode, self.ndim, self.reduced, self.inputs, self.outputs,
                     [repr(s) for s in self.stmts], sorted(self.donated.items())))


def donatable_pairs(nest):
    """``[(output j, input k)]`` of ``nest`` that may share one buffer: a map/acc nest (one
    loop body, no passes) whose full-shape output j has input k's dtype and axes (every
    element stored where it was read, in the same iteration) and whose load of k comes before
    the statement j stores (later statements use the loaded scalar, never the memory). Each
    input at most once. Whether input k's buffer is free to take is the caller's question."""
    if nest.mode not in ("map", "acc") or not nest.ndim:
        return []
    full = tuple(range(nest.ndim))
    order = {s.name: i for i, s in enumerate(nest.stmts)}
    loads = {s.args[0]: order[s.name] for s in nest.stmts if s.kind == "load"}
    pairs, taken = [], set()
    for j, (dt, axes, stmt, space) in enumerate(nest.outputs):
        if space != "full" or axes != full:
            continue
        for k, (kdt, kaxes) in enumerate(nest.inputs):
            if k not in taken and kdt == dt and kaxes == full and k in loads \
                    and loads[k] <= order[stmt]:
                pairs.append((j, k))
                taken.add(k)
                break
    return pairs


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
    from ...core.ops.indexing import onehot_pick_p

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
        if p is onehot_pick_p:
            z, lab = eqn.inputs
            s = new("pick", out.aval.dtype, args=(read(z, z.aval.shape),
                                                  read(lab, lab.aval.shape)),
                    in_dtypes=(z.aval.dtype, lab.aval.dtype), statics=(n - 1,))
            env[out] = s.name
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
    nest.row_size = math.prod(s for s, r in zip(sizes, nest.reduced, strict=True) if r)
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
        elif s.kind == "pick":  # z is computable at the outer level once its level is
            s.outer = True
            s.level = max(by[a].level for a in s.args)
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
    nest.npasses = max(passes, default=0 if any(s.kind == "pick" for s in nest.stmts) else 1)


def _collapse(nest, sizes):
    """Merge adjacent domain axes that every array and index treats alike, after dropping the
    size-1 axes that no reduction or index names (their index is always 0): the update of a
    (1, 64, 128) parameter from its (64, 128) gradient is then the flat loop every other
    parameter's update runs, not a kernel of its own. (A batch of one already traces other
    programs; a batch size above one keeps its kernels.)"""
    axis_sets = [set(ax) for _, ax in nest.inputs] + [set(o[1]) for o in nest.outputs]
    pinned = {s.statics[0] for s in nest.stmts if s.kind in ("index", "pick")}
    keep = [a for a in range(nest.ndim)
            if sizes[a] != 1 or nest.reduced[a] or a in pinned]
    groups = [keep[:1]] if keep else []
    for a in keep[1:]:
        prev = groups[-1][-1]
        ok = (nest.reduced[a] == nest.reduced[prev] and a not in pinned and prev not in pinned
              and all((a in s) == (prev in s) for s in axis_sets))
        if ok:
            groups[-1].append(a)
        else:
            groups.append([a])
    new_of = {a: i for i, g in enumerate(groups) for a in g}

    def remap(axes):
        return tuple(sorted({new_of[a] for a in axes if a in new_of}))

    nest.inputs = [(dt, remap(ax)) for dt, ax in nest.inputs]
    nest.outputs = [(dt, remap(ax), name, sp) for dt, ax, name, sp in nest.outputs]
    for s in nest.stmts:
        if s.kind == "index":
            s.statics = [new_of[s.statics[0]], s.statics[1]]
        elif s.kind == "pick":
            s.statics = [new_of[s.statics[0]]]
    nest.reduced = [nest.reduced[g[0]] for g in groups]
    nest.ndim = len(groups)
    sizes[:] = [int(np.prod([sizes[a] for a in g], dtype=np.int64)) for g in groups]


# --- statement emission shared by the code generators --------------------------------------


def index_src(axes, sub=None):
    """Flat C-order index over domain ``axes`` from loop indices ``i<a>`` (or the variable
    ``sub[a]``) and sizes ``n<a>``."""
    axes = list(axes)
    sub = sub or {}
    if not axes:
        return "0"
    terms = []
    for j, a in enumerate(axes):
        terms.append(" * ".join([sub.get(a, f"i{a}")] + [f"n{b}" for b in axes[j + 1:]]))
    return " + ".join(terms)


def indent(lines, depth):
    return [("    " * depth) + ln for ln in lines]


def nested(loops, inner):
    """``loops`` (``for`` headers, outermost first) around ``inner``."""
    out = []
    for d, ln in enumerate(loops):
        out += indent([ln], d)
    return out + indent(inner or ["pass"], len(loops))


class Emitter:
    """How one backend spells a nest's statements. Subclasses set the buffer names and the
    spelling of NaN/inf and define ``op(stmt)`` (from the scalar table)."""

    inp = "a{}_"  # input buffer k
    out = "o{}_"  # output buffer j
    nan, inf = "np.nan", "np.inf"

    def __init__(self, nest=None):
        self.nest = nest
        self.by = {s.name: s for s in nest.stmts} if nest is not None else {}
        self.sub = {}  # domain axis -> the variable standing for its index (``pick``)
        self.memo = {}  # row statement -> the pass that computes it into a row buffer (CPU)

    def op(self, s):
        raise NotImplementedError

    def combine(self, op, acc, v, dt):
        """Source folding ``v`` into accumulator ``acc`` of reducer ``op`` (dtype ``dt``): the
        reducer's vocabulary op (``scalar.REDUCER_OPS``)."""
        dt = np.dtype(dt)
        return self.op(Stmt("", "op", dt, scalar.REDUCER_OPS[op], (acc, v), (dt, dt)))

    def const(self, value, dt):
        dt = np.dtype(dt)
        if dt.kind == "b":
            return "True" if value else "False"
        if dt.kind == "f":
            v = float(value)
            if math.isnan(v):
                s = self.nan
            elif math.isinf(v):
                s = self.inf if v > 0 else "-" + self.inf
            else:
                s = repr(v)
            return f"np.{dt.name}({s})"
        return f"np.{dt.name}({int(value)})"

    def arg_identity(self, op, dt):
        dt = np.dtype(dt)
        if dt.kind == "f":
            return self.const(-np.inf if op == "argmax" else np.inf, dt)
        if dt.kind == "b":
            return "False" if op == "argmax" else "True"
        info = np.iinfo(dt)
        return self.const(info.min if op == "argmax" else info.max, dt)

    def index(self, axes, sub=None):
        """Source of the flat index over ``axes`` (``index_src``) as this backend spells it."""
        return index_src(axes, sub)

    def stmt(self, s):
        """Source lines of a load/const/index/op/pick statement."""
        if s.kind == "load":
            k = s.args[0]
            idx = self.index(self.nest.inputs[k][1], self.sub)
            return [f"{s.name} = {self.inp.format(k)}[{idx}]"]
        if s.kind == "const":
            return [f"{s.name} = {self.const(s.value, s.dtype)}"]
        if s.kind == "index":
            a = s.statics[0]
            return [f"{s.name} = np.{s.dtype.name}({self.sub.get(a, f'i{a}')})"]
        if s.kind == "op":
            return [f"{s.name} = {self.op(s)}"]
        if s.kind == "pick":
            return self.pick(s)
        raise AssertionError(s.kind)

    def pick(self, s):
        """Lines of ``pick`` statement ``s`` (at the outer level of a row): the row statements
        that its ``z`` needs, renamed ``<name>_<pick>`` and evaluated once with the picked
        axis's index set to the label, under a range guard (0 outside)."""
        z, lab = s.args
        a = s.statics[0]
        col = f"{s.name}c"
        chain, todo = set(), [z]
        while todo:
            name = todo.pop()
            st = self.by[name]
            if st.outer or name in chain:
                continue
            chain.add(name)
            todo.extend(st.args if st.kind == "op" else [])
        ren = {n: f"{n}_{s.name}" for n in chain}
        guard = f"{lab} < n{a}"
        if np.dtype(s.in_dtypes[1]).kind == "i":
            guard = f"{lab} >= 0 and {guard}"
        inner = [f"{col} = np.int64({lab})"]
        self.sub = {a: col}
        try:
            for st in self.nest.stmts:
                if st.name in chain:
                    copy = Stmt(ren[st.name], st.kind, st.dtype, st.op,
                                [ren.get(x, x) for x in st.args] if st.kind == "op" else
                                st.args, st.in_dtypes, st.statics, st.value)
                    inner += self.stmt(copy)
        finally:
            self.sub = {}
        inner.append(f"{s.name} = {ren.get(z, z)}")
        return ([f"{s.name} = {self.const(0, s.dtype)}", f"if {guard}:"]
                + indent(inner, 1))

    def store(self, j, name):
        k = self.nest.donated.get(j)
        buf = self.out.format(j) if k is None else self.inp.format(k)
        return f"{buf}[{self.index(self.nest.outputs[j][1])}] = {name}"

    def pass_parts(self, p, levels):
        """Pass ``p``: its reductions, its full-output stores ``(j, stmt name)``, the names of
        the non-outer statements they need, and of those read back from their row buffer
        (``self.memo``: computed in an earlier pass)."""
        nest, by = self.nest, self.by
        in_pass = [s for s in nest.stmts if s.kind == "reduce" and levels[s.args[0]] == p]
        stores = [(j, o[2]) for j, o in enumerate(nest.outputs)
                  if o[3] == "full" and levels[o[2]] == p]
        needed, reload = set(), set()
        todo = [s.args[0] for s in in_pass] + [name for _, name in stores]
        while todo:
            name = todo.pop()
            st = by[name]
            if st.outer or name in needed or name in reload:
                continue
            if self.memo.get(name, p) < p:
                reload.add(name)
                continue
            needed.add(name)
            todo.extend(st.args if st.kind == "op" else [])
        return in_pass, stores, needed, reload

    def row_stmts(self, p, needed, reload):
        """Lines of pass ``p``'s statements inside the reduced loops, in program order; a
        memoized one is stored to its row buffer ``_m<name>`` in the pass that computes it and
        read back in later passes."""
        red = [a for a in range(self.nest.ndim) if self.nest.reduced[a]]
        idx = self.index(red)
        lines = []
        for s in self.nest.stmts:
            if s.name in reload:
                lines.append(f"{s.name} = _m{s.name}[{idx}]")
            elif s.name in needed:
                lines += self.stmt(s)
                if self.memo.get(s.name) == p:
                    lines.append(f"_m{s.name}[{idx}] = {s.name}")
        return lines

    def reduce_init(self, s, arg_index="0", pos=None):
        """Accumulator initialisation of reduce ``s`` (argmax/argmin: the value ``<name>v``,
        and the position, ``pos`` or ``<name>``, set to ``arg_index``)."""
        if s.op in ("argmax", "argmin"):
            return [f"{s.name}v = {self.arg_identity(s.op, s.in_dtypes[0])}",
                    f"{pos or s.name} = {arg_index}"]
        return [f"{s.name} = {self.const(s.value, s.dtype)}"]

    def reduce_update(self, s, v, position, pos=None):
        """Fold element ``v`` into reduce ``s``; argmax/argmin record ``position`` in ``pos``
        or ``<name>`` (NaN wins, the first of equals stays)."""
        if s.op in ("argmax", "argmin"):
            cmp = ">" if s.op == "argmax" else "<"
            nan = f" or ({v} != {v} and {s.name}v == {s.name}v)" if \
                np.dtype(s.in_dtypes[0]).kind == "f" else ""
            return [f"if {v} {cmp} {s.name}v{nan}:",
                    f"    {s.name}v = {v}",
                    f"    {pos or s.name} = {position}"]
        return [f"{s.name} = {self.combine(s.op, s.name, v, s.dtype)}"]

    def ahead_parts(self, levels, axis):
        """Pass 0 of the next row (kept axis ``axis`` at index ``i<axis>n``), its statements
        renamed ``<name>_n``, for software pipelining (``passes(ahead=...)``): ``(pre, init,
        inner, carry)``, the lines before the reduced loops (the outer statements it reads;
        its accumulators' initialisation), inside them, and those handing its results to the
        row that uses them. None where pass 0 cannot run ahead: it has no reduction, stores,
        or reads a one-hot pick."""
        in0, stores, needed, _ = self.pass_parts(0, levels)
        if not in0 or stores:
            return None

        def reads(st):
            return st.args if st.kind in ("op", "pick", "reduce") else []

        deps, todo = set(), [a for n in needed for a in reads(self.by[n])] + [
            s.args[0] for s in in0]
        while todo:
            name = todo.pop()
            st = self.by[name]
            if not st.outer or name in deps:
                continue
            if st.kind == "pick":
                return None
            deps.add(name)
            todo.extend(reads(st))
        ren = {n: f"{n}_n" for n in deps | needed | {s.name for s in in0}}

        def renamed(st):
            return Stmt(ren[st.name], st.kind, st.dtype, st.op,
                        [ren.get(a, a) for a in reads(st)] or st.args, st.in_dtypes,
                        st.statics, st.value)

        self.sub = {axis: f"i{axis}n"}
        try:
            pre = [ln for st in self.nest.stmts if st.name in deps
                   for ln in self.stmt(renamed(st))]
            inner = [ln for st in self.nest.stmts if st.name in needed
                     for ln in self.stmt(renamed(st))]
        finally:
            self.sub = {}
        red = [a for a in range(self.nest.ndim) if self.nest.reduced[a]]
        init = []
        for s in in0:
            c = renamed(s)
            init += self.reduce_init(c, f"np.{s.dtype.name}(0)")
            inner += self.reduce_update(c, c.args[0], f"np.{s.dtype.name}(i{red[0]})")
        return pre, init, inner, [f"{s.name} = {ren[s.name]}" for s in in0]

    def passes(self, d0, levels, npasses, ahead=None):
        """The body of one output row at depth ``d0`` (the kept-axis indices ``i<a>`` are set):
        the outer statements of level 0, then per pass the accumulator initialisation, serial
        loops over the reduced axes (statements, folds, full stores) and the outer statements
        the pass makes available; last the outer-output stores.

        ``ahead``: ``(axis, ahead_parts(levels, axis))``: this row's pass 0 ran during the
        previous row's last pass, whose results ``carry`` hands over, and this row's last pass
        runs the next row's pass 0, so the next row streams in from memory while this one
        computes (a softmax's max pass and exp pass: ~20% faster on a 16 MB input)."""
        nest = self.nest
        red = [a for a in range(nest.ndim) if nest.reduced[a]]
        outer = [s for s in nest.stmts if s.outer and s.kind != "reduce"]
        body = indent([ln for s in outer if levels[s.name] == 0 for ln in self.stmt(s)], d0)
        first = 0
        if ahead is not None:
            axis, (pre, init0, inner0, carry) = ahead
            body += indent(carry + [ln for s in outer if levels[s.name] == 1
                                    for ln in self.stmt(s)], d0)
            first = 1
        for p in range(first, npasses):
            in_pass, stores, needed, reload = self.pass_parts(p, levels)
            for s in in_pass:
                body += indent(self.reduce_init(s, f"np.{s.dtype.name}(0)"), d0)
            inner = self.row_stmts(p, needed, reload)
            for s in in_pass:
                inner += self.reduce_update(s, s.args[0], f"np.{s.dtype.name}(i{red[0]})"
                                            if red else None)
            inner += [self.store(j, n) for j, n in stores]
            loops = [f"for i{a} in range(n{a}):" for a in red]
            if ahead is not None and p == npasses - 1:
                # two copies of the loop: LLVM vectorizes neither with a clamped next index
                nxt = f"i{axis}n"
                body += indent([f"{nxt} = i{axis} + 1"] + init0 + [f"if {nxt} < n{axis}:"], d0)
                body += indent(pre + nested(loops, inner + inner0), d0 + 1)
                body += indent(["else:"], d0) + indent(nested(loops, inner), d0 + 1)
            else:
                body += indent(nested(loops, inner), d0)
            body += indent([ln for s in outer if levels[s.name] == p + 1
                            for ln in self.stmt(s)], d0)
        body += indent([self.store(j, o[2]) for j, o in enumerate(nest.outputs)
                        if o[3] == "outer"], d0)
        return body


__all__ = ["Emitter", "Group", "LoopNest", "Stmt", "build", "index_src", "indent", "nested",
           "structural_const"]
