"""Fusion planning: split an optimised Program into steps, each a fused loop group (one
kernel) or a call run by the orchestrator (BLAS, a NumPy view, an eager impl).

A ``Group`` iterates over a *domain* (a shape) and may reduce some of its axes:

* ``map``: elementwise chains (with broadcasts as index maps) over the domain;
* ``row``: the reduced axes are trailing; values that do not vary over them ("outer" values)
  live in scalar accumulators per outer index, so a reduction can feed elementwise ops that
  feed another reduction over the same axes (softmax, logsumexp, cross-entropy) in several
  passes over the row, all in one loop nest;
* ``acc``: other reduced axes (column sums): one pass in memory order, accumulating into the
  output arrays.

Steps run in creation order; an equation joins an existing group only if everything it reads
from outside the group is produced by an earlier step, which keeps that order valid.
"""

import math

import numpy as np

from ..core.ir import Literal, Var
from . import scalar


def _size(shape):
    """The number of elements of ``shape`` (a value of size <= 1 is a scalar to the planner).
    ``math.prod`` of Python ints: the planner asks ~15k times per Transformer step, and
    ``np.prod`` took ~0.1 s of its cold compile."""
    return math.prod(shape)


def _fusible_dtype(dt):
    # float16/bfloat16 cannot be passed to Numba, complex stays eager (documented gap)
    return dt.kind in "biuf" and dt != np.float16


class Group:
    def __init__(self, order, domain):
        self.order = order
        self.domain = tuple(domain)
        self.reduce_axes = ()
        self.mode = "map"
        self.eqns = []
        self.internal = {}  # var -> "full" | "outer"
        self.outputs = []   # filled by finish()
        self.clusters = set()  # dataflow clusters of its values (see _clusters)
        self.key = None  # a scalar group's key (see _scalar_keys)

    @property
    def outer_shape(self):
        return tuple(s for i, s in enumerate(self.domain) if i not in self.reduce_axes)

    @property
    def keepdims_shape(self):
        return tuple(1 if i in self.reduce_axes else s for i, s in enumerate(self.domain))

    def space_of_shape(self, shape):
        shape = tuple(shape)
        if shape == self.domain:
            return "full"
        if self.mode == "row" and shape in (self.outer_shape, self.keepdims_shape):
            return "outer"
        return None

    def describe(self):
        names = [e.primitive.name for e in self.eqns]
        red = f" reduce axes {self.reduce_axes}" if self.reduce_axes else ""
        return f"{self.mode}[{','.join(map(str, self.domain))}]{red}: {' '.join(names)}"


class Call:
    """An orchestrator step: ``how`` is 'blas', 'view', 'eager' or 'fallback'."""

    def __init__(self, order, eqn, how):
        self.order, self.eqn, self.how = order, eqn, how

    def describe(self):
        return f"{self.how}: {self.eqn.primitive.name}"


class Lazy:
    """A broadcast or iota not materialized: consumers index its source with a map."""

    def __init__(self, src, dims, shape, iota=None):
        # dims[i]: the output dim of source dim i, or None for an expanded size-1 dim
        self.src, self.dims, self.shape, self.iota = src, dims, tuple(shape), iota


class Plan:
    def __init__(self, program, steps, lazy, producer):
        self.program, self.steps, self.lazy, self.producer = program, steps, lazy, producer

    @property
    def groups(self):
        return [s for s in self.steps if isinstance(s, Group)]

    def describe(self):
        lines, k = [], 0
        for s in self.steps:
            if isinstance(s, Group):
                lines.append(f"kernel {k}: {s.describe()}")
                k += 1
            else:
                lines.append(s.describe())
        return "\n".join(lines)


def _eqn_fusible(eqn):
    p = eqn.primitive
    avals = [x.aval for x in eqn.inputs] + [v.aval for v in eqn.out_binders]
    if not all(_fusible_dtype(a.dtype) for a in avals):
        return None
    if p.fusion_kind == "elementwise" and p.scalar_expr is not None:
        try:
            tree = scalar.parse(p.scalar_expr, eqn.params)
        except (ValueError, KeyError):
            return None
        if not _tree_supported(tree, [x.aval.dtype for x in eqn.inputs]):
            return None
        return "elementwise"
    if p.fusion_kind == "reduce" and p.reducer is not None and (
            p.reducer[0] in scalar.REDUCER_OPS or p.reducer[0] in ("argmax", "argmin")):
        return "reduce"
    return None


def _call_how(eqn):
    """How the orchestrator runs ``eqn`` (see ``Primitive.call_kind``): 'blas', 'view',
    'eager' (a declared impl or compiled lowering; fused kinds that could not fuse) or
    'fallback' (undeclared: jit warns once)."""
    p = eqn.primitive
    if p.call_kind == "blas":
        return "blas" if all(_fusible_dtype(x.aval.dtype) for x in eqn.inputs) else "eager"
    if p.call_kind == "view":
        return "view"
    declared = p.call_kind is not None or p.lower is not None or p.call_program is not None
    return "eager" if declared or p.fusion_kind != "opaque" else "fallback"


def _tree_supported(tree, dts):
    try:
        _, types = scalar.infer(tree, dts)
    except Exception:  # noqa: BLE001  (an unknown combination: run it eagerly)
        return False

    def ok(node):
        if not isinstance(node, scalar.Op):
            return True
        kids, _ = scalar.split_children(node)
        in_dts = types[("in", id(node))]
        if any(d.kind not in scalar.OPS[node.name].kinds for d in in_dts):
            return False
        return all(ok(k) for k in kids)

    return ok(tree)


def plan(program):
    """Group the equations of ``program`` into fused loops and orchestrator calls."""
    from ..core.ops.indexing import onehot_pick_p
    from ..core.ops.shape import broadcast_in_dim_p, iota_p, reshape_p, squeeze_p

    steps, lazy, producer = [], {}, {}
    open_groups = []

    def order_of(x):
        if isinstance(x, Literal) or x not in producer:
            return -1
        return producer[x].order

    def ext_ok(g, x):
        # x must be readable by g: produced before g was created (or a lazy of such)
        if isinstance(x, Var) and x in lazy:
            return x not in g.internal and (lazy[x].src is None or ext_ok(g, lazy[x].src))
        return order_of(x) < g.order

    def input_ok(g, x, space):
        if isinstance(x, Literal):
            return np.ndim(x.val) == 0 or x.aval.shape == ()
        if x in g.internal:
            return True
        if not ext_ok(g, x):
            return False
        if x in lazy and lazy[x].iota is not None:
            return space == "full"
        return True

    def new_group(domain):
        g = Group(len(steps), domain)
        steps.append(g)
        open_groups.append(g)
        return g

    def add(g, eqn, space):
        """Put ``eqn`` into ``g`` at ``space`` if the emitter can express that (else False:
        the caller starts a new group, so a group is split where its loop nest would fail)."""
        if not _expressible(g, eqn, space):
            return False
        g.eqns.append(eqn)
        g.clusters.update(cluster(v) for v in eqn.out_binders)
        for v in eqn.out_binders:
            g.internal[v] = space
            producer[v] = g
        return True

    def reduce_into(g, eqn, axes):
        """Add reduction (or one-hot pick) ``eqn`` over ``axes`` to ``g``, which reduces them
        from now on (row mode for trailing axes, else acc)."""
        before = g.reduce_axes, g.mode
        if not g.reduce_axes:
            g.reduce_axes, g.mode = axes, _mode_for(g.domain, axes)
        if add(g, eqn, "outer" if g.mode == "row" else "acc"):
            return True
        g.reduce_axes, g.mode = before
        return False

    eqns = _schedule(program)
    cluster = _clusters(eqns)
    scalar_key = _scalar_keys(eqns)
    for eqn in eqns:
        p = eqn.primitive
        out = eqn.out_binders[0] if eqn.out_binders else None
        x0 = eqn.inputs[0] if eqn.inputs else None
        # broadcasts: an outer value re-entering a row group, or a lazy index map
        if p is broadcast_in_dim_p:
            g = producer.get(x0) if isinstance(x0, Var) else None
            if isinstance(g, Group) and g.internal.get(x0) == "outer" and \
                    tuple(out.aval.shape) == g.domain and _is_outer_bcast(g, eqn) and \
                    add(g, eqn, "full"):
                continue
            if _fusible_dtype(out.aval.dtype):
                bd = eqn.params["broadcast_dimensions"]
                dims = tuple(d if x0.aval.shape[i] == out.aval.shape[d] else None
                             for i, d in enumerate(bd))
                _add_lazy(lazy, out, x0, dims)
            steps.append(Call(len(steps), eqn, "view"))
            producer[out] = steps[-1]
            continue
        if p is iota_p and _fusible_dtype(out.aval.dtype):
            lazy[out] = Lazy(None, (), out.aval.shape, iota=eqn.params["dimension"])
            steps.append(Call(len(steps), eqn, "eager"))
            producer[out] = steps[-1]
            continue
        if p in (reshape_p, squeeze_p) and isinstance(x0, Var):
            g = producer.get(x0)
            if isinstance(g, Group) and g.internal.get(x0) == "outer" and \
                    g.space_of_shape(out.aval.shape) == "outer" and add(g, eqn, "outer"):
                continue
            m = _unit_reshape_map(x0.aval.shape, out.aval.shape)
            if m is not None and _fusible_dtype(out.aval.dtype):
                _add_lazy(lazy, out, x0, m)
                steps.append(Call(len(steps), eqn, "view"))
                producer[out] = steps[-1]
                continue
        if p is onehot_pick_p and all(_fusible_dtype(x.aval.dtype) for x in eqn.inputs):
            # a one-hot pick (passes.pick_onehot): an outer value of a row group over the
            # picked axis, like a reduction of it, computed from z at the label's column
            z, lab = eqn.inputs
            axes = (z.aval.ndim - 1,)
            g = producer.get(z) if isinstance(z, Var) else None
            if not (isinstance(g, Group) and z in g.internal):
                cands = [h for h in open_groups[-1:] if h.mode == "row"]
                g = cands[0] if cands else None
            if g is None or not (_can_reduce_in(g, z, axes, True) and input_ok(g, z, "full")
                                 and input_ok(g, lab, "outer")):
                g = new_group(z.aval.shape)
            if not reduce_into(g, eqn, axes):
                reduce_into(new_group(z.aval.shape), eqn, axes)
            continue
        kind = _eqn_fusible(eqn)
        if kind == "elementwise":
            shape = out.aval.shape
            small = _size(shape) <= 1
            # a scalar read by a large loop does not pull it into the scalar's group (a
            # ``b1 * 0`` computed beside one parameter's update would collect them all)
            cands = sorted({producer[x] for x in eqn.inputs
                            if isinstance(x, Var) and isinstance(producer.get(x), Group)
                            and x in producer[x].internal
                            and (small or _size(x.aval.shape) > 1)},
                           key=lambda g: -g.order)
            # then horizontal fusion into the latest open group of the same domain whose
            # external reads are all ready (Adam's m, v and parameter updates share a loop)
            # (only groups of the same dataflow cluster: unrelated same-shape chains stay
            # separate, so identical per-parameter loops share one compiled kernel)
            if small:
                # a scalar joins the loop whose outer value it reads (a mean's division), or
                # the scalar group of its key: the values it depends on. Each parameter's bias
                # corrections (from its own step counter) are then one small kernel whose text
                # is the same for every parameter, compiled once, instead of one long kernel
                # per model (AdamW's for 40 parameters took 3 s to compile)
                key = scalar_key(out)
                cands = [g for g in cands[:1] if g.key == key or _size(g.domain) > 1]
                cands += [g for g in reversed(open_groups)
                          if g.domain == tuple(shape) and g not in cands and g.key == key]
            else:
                key = None
                c = cluster(out)
                cands = cands[:1] + [g for g in reversed(open_groups)
                                     if g.domain == tuple(shape) and g not in cands[:1]
                                     and c in g.clusters]
            joined = False
            for g in cands:
                if joined:
                    break
                space = g.space_of_shape(shape)
                if space is None or not all(input_ok(g, x, space) for x in eqn.inputs):
                    continue
                joined = add(g, eqn, space)
            if not joined:
                g = new_group(shape)
                g.key = key
                add(g, eqn, "full")
            continue
        if kind == "reduce":
            axes = eqn.params["axes"] if "axes" in eqn.params else (eqn.params["axis"],)
            axes = tuple(sorted(axes))
            is_arg = "axis" in eqn.params
            g = producer.get(x0) if isinstance(x0, Var) else None
            if not (isinstance(g, Group) and x0 in g.internal):
                cands = [h for h in open_groups[-1:] if h.mode == "row"]
                g = cands[0] if cands else None
            if g is not None and _can_reduce_in(g, x0, axes, is_arg) and \
                    input_ok(g, x0, "full") and reduce_into(g, eqn, axes):
                continue
            # argmax/argmin fuse only over trailing axes (a row group); otherwise eager
            if not is_arg or _mode_for(x0.aval.shape, axes) == "row":
                reduce_into(new_group(x0.aval.shape), eqn, axes)
                continue
        # everything else runs from the orchestrator, as the primitive declares
        step = Call(len(steps), eqn, _call_how(eqn))
        steps.append(step)
        for v in eqn.out_binders:
            producer[v] = step
    steps = [s for s in steps if not (isinstance(s, Group) and not s.eqns)]
    return Plan(program, steps, lazy, producer)


def _schedule(program):
    """The equations in an order that suits fusion: small values computed from the program
    inputs alone (``1 - b1 ** t`` in Adam) move to the front, so that the loops reading them
    are not split by a late producer. Otherwise the program order is kept."""
    early = set(program.in_binders)
    front, rest = [], []
    for e in program.eqns:
        small = all(_size(v.aval.shape) <= 1 for v in e.out_binders)
        if small and e.out_binders and all(isinstance(x, Literal) or x in early
                                           for x in e.inputs):
            front.append(e)
            early.update(e.out_binders)
        else:
            rest.append(e)
    return front + rest


def _clusters(eqns):
    """Union-find of values connected through elementwise/layout equations, ignoring
    scalars, broadcasts of scalars and values computed from those alone (a shared learning
    rate, or ``b1 * zeros`` on Adam's first step, does not tie two parameters' updates
    together). Returns ``var -> cluster id``."""
    from ..core.ops.shape import broadcast_in_dim_p

    parent = {}

    def find(v):
        parent.setdefault(v, v)
        while parent[v] is not v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    constlike = set()
    for e in eqns:
        x0 = e.inputs[0] if e.inputs else None
        if e.primitive is broadcast_in_dim_p and (isinstance(x0, Literal)
                                                  or _size(x0.aval.shape) <= 1):
            constlike.update(e.out_binders)
            continue
        if e.primitive.fusion_kind not in ("elementwise", "layout"):
            continue
        if all(isinstance(x, Literal) or x in constlike or _size(x.aval.shape) <= 1
               for x in e.inputs):
            constlike.update(e.out_binders)
            continue
        vs = [v for v in list(e.inputs) + list(e.out_binders)
              if isinstance(v, Var) and v not in constlike and _size(v.aval.shape) > 1]
        for v in vs[1:]:
            a, b = find(vs[0]), find(v)
            if a is not b:
                parent[a] = b
    return lambda v: id(find(v))


def _scalar_keys(eqns):
    """``var -> frozenset`` of the values a scalar is computed from through scalar
    elementwise equations (program inputs, loop outputs). Scalars with one key share a
    group: ``-lr`` (from the learning rate alone) and each parameter's bias correction (from
    its step counter) fall in different groups."""
    deps = {}

    def sources(x):
        if isinstance(x, Literal):
            return frozenset()
        return deps.get(x, frozenset((x,)))

    for e in eqns:
        if e.primitive.fusion_kind == "elementwise" and all(_size(v.aval.shape) <= 1
                                                             for v in e.out_binders):
            key = frozenset().union(*(sources(x) for x in e.inputs))
            for v in e.out_binders:
                deps[v] = key
    return sources


def _unit_reshape_map(a, b):
    """Per dim of shape ``a``, its dim in ``b`` when they differ only by size-1 dims."""
    an = [i for i, s in enumerate(a) if s != 1]
    bn = [j for j, s in enumerate(b) if s != 1]
    if [a[i] for i in an] != [b[j] for j in bn]:
        return None
    m = [None] * len(a)
    for i, j in zip(an, bn, strict=True):
        m[i] = j
    return tuple(m)


def _add_lazy(lazy, out, x, dims):
    """``out`` = ``x`` with its dim i placed at out dim ``dims[i]`` (None: a size-1 dim)."""
    shape = out.aval.shape
    base = lazy.get(x) if isinstance(x, Var) else None
    if base is None:
        lazy[out] = Lazy(x, tuple(dims), shape)
    elif base.iota is not None:
        if dims[base.iota] is not None:
            lazy[out] = Lazy(None, (), shape, iota=dims[base.iota])
    else:
        lazy[out] = Lazy(base.src, tuple(None if d is None else dims[d] for d in base.dims),
                         shape)


def _is_outer_bcast(g, eqn):
    x = eqn.inputs[0]
    dims = eqn.params["broadcast_dimensions"]
    kept = tuple(i for i in range(len(g.domain)) if i not in g.reduce_axes)
    if tuple(x.aval.shape) == g.outer_shape:
        return tuple(dims) == kept
    if tuple(x.aval.shape) == g.keepdims_shape:
        return tuple(dims) == tuple(range(len(g.domain)))
    return False


def _mode_for(domain, axes):
    n = len(domain)
    if not axes:
        return "map"
    return "row" if tuple(axes) == tuple(range(n - len(axes), n)) else "acc"


def _can_reduce_in(g, x, axes, is_arg):
    if tuple(x.aval.shape) != g.domain:
        return False
    if x in g.internal and g.internal[x] != "full":
        return False
    if g.reduce_axes and tuple(g.reduce_axes) != tuple(axes):
        return False
    mode = g.mode if g.reduce_axes else _mode_for(g.domain, axes)
    return not (is_arg and mode != "row")


def _expressible(g, eqn, space):
    """Whether the loop-nest emitter (``codegen/loops.py``) can compute ``eqn`` inside group
    ``g`` at ``space`` ('full': over the domain; 'outer': once per kept index of a row group;
    'acc': accumulated over the reduced axes of an acc group). The planner adds nothing
    without asking, so it never builds a group the emitter cannot express.

    * map and acc groups are one pass over the domain in memory order; an acc reduction is
      complete only after that pass, so nothing in its group may read it (``x + sum(x * x,
      axis=0)``: the sum is a group output, the add another group).
    * row groups walk each row in passes: reductions and one-hot picks read full values,
      outer values come from outer values (and labels), full values read outer ones through
      a broadcast (the next pass).
    """
    from ..core.ops.indexing import onehot_pick_p

    def reads(xs, want):
        return all(g.internal.get(x, want) == want for x in xs if isinstance(x, Var))

    if g.mode != "row":
        return space != "outer" and reads(eqn.inputs, "full")
    if space == "acc":
        return False
    if space == "outer" and (eqn.primitive.fusion_kind == "reduce" or
                             eqn.primitive is onehot_pick_p):
        return reads(eqn.inputs[:1], "full") and reads(eqn.inputs[1:], "outer")
    if space == "full" and eqn.primitive.fusion_kind == "layout":
        return reads(eqn.inputs, "outer")
    return reads(eqn.inputs, space)

