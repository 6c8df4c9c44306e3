"""Loop nest -> Python source for ``numba.njit`` (the CPU backend).

Rules from shared/numba-notes.md: ``error_model='numpy'``; dtype-exact constants; fastmath
``contract`` (+ ``reassoc`` for float sum/product reductions); transcendentals through
``fnx.jit.vecmath``; flat C-contiguous buffers indexed with explicit strides (broadcasting is
index arithmetic, never a broadcast view); serial loops in memory order.

Row groups of several passes over a single kept axis (rows of ``PIPELINE_MIN_ROW`` elements
or more) are software-pipelined: the next row's first pass (a max or a sum that streams the
row in from memory) runs inside this row's last pass, which computes from cache; and a costly
value that several passes need (the exp of a softmax gradient) is kept in a row buffer instead
of recomputed (``Emitter.ahead_parts``, ``_memo``). On (4096, 1000) float32 cross-entropy this
made the value ~20% faster and its value and gradient ~2x (docs/benchmarks.md).
"""

import ast
import functools

import numpy as np

from .. import scalar
from ..scalar import npname
from . import loops
from .loops import indent


# Rows shorter than this are not software-pipelined: a row of a few cache lines gains nothing
# from streaming the next one in early, and the pipelined nest (three copies of the first
# pass) doubled the compile time of a cross-entropy over 10 classes.
PIPELINE_MIN_ROW = 256


def const_src(value, dt):
    """Source of a dtype-exact constant (``np.float32(0.5)``)."""
    return _NO_NEST.const(value, dt)


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def op_src(s):
    """Source of an ``op`` statement: the scalar vocabulary, except for the ops that
    ``cpu_math`` lowers better (llvm.maximum/minimum)."""
    dts = [np.dtype(d) for d in s.in_dtypes]
    if dts and dts[0] in _FLOATS and all(d == s.dtype for d in dts):
        if s.op in ("maximum", "minimum"):
            return f"_cm.f{s.op}({s.args[0]}, {s.args[1]})"
    return scalar.OPS[s.op].cpu(s.args, s.in_dtypes, s.dtype, s.statics)


def fastmath_flags(nest):
    flags = {"contract"}
    if any(s.kind == "reduce" and s.op in ("add", "mul") and s.dtype.kind == "f"
           for s in nest.stmts):
        flags.add("reassoc")
    return flags


def scalar_inputs(nest):
    """Positions of the inputs that ``kernel`` takes as scalars, not buffers: those read at no
    axis (learning rates, Adam's bias corrections). Each array argument costs ~10 ms of cold
    compile (its unboxing in Numba's wrapper; an AdamW update reads nine such values) and more
    per call than a scalar."""
    return [k for k, (_, axes) in enumerate(nest.inputs) if not axes]


class _Cpu(loops.Emitter):
    def op(self, s):
        if s.op in ("shl", "shr"):
            # a constant count in range (Threefry's rotations): a plain shift, no range test
            # for Numba to type (the Threefry kernel: ~0.4 s less cold compile)
            count = self._constants.get(s.args[1])
            if count is not None and 0 <= count < s.dtype.itemsize * 8:
                shift = "<<" if s.op == "shl" else ">>"
                return f"{npname(s.dtype)}(({s.args[0]}) {shift} {int(count)})"
        return op_src(s)

    @functools.cached_property
    def _constants(self):
        """``name -> value`` of the nest's constant statements."""
        return {c.name: c.value for c in self.nest.stmts if c.kind == "const"}

    def stmt(self, s):
        if s.kind == "load" and not self.nest.inputs[s.args[0]][1]:  # see scalar_inputs
            return [f"{s.name} = {self.inp.format(s.args[0])}"]
        return super().stmt(s)

    def index(self, axes, sub=None):
        # Unsigned: Numba wraps a negative signed index around (``idx += len``), a branch
        # LLVM cannot remove from ``i0 * n1 + i1``, and it kept every such loop from
        # vectorizing (ReLU's backward with the bias gradient 3x slower, a bias + ReLU 5x)
        src = loops.index_src(axes, sub)
        return src if src == "0" else f"np.uint64({src})"


_NO_NEST = _Cpu()


def render(nest):
    """Python source of a module defining ``kernel(n0.., a0_.., o0_..)`` for ``nest``.

    An output donated to an input (``nest.donated``) has no argument: it is stored into that
    input's buffer. Every array argument is a flat (1-D, C-contiguous) buffer, indexed with
    strides computed from the sizes ``n*``: one compiled signature serves every rank that
    collapses to the same nest (an Adam update of a matrix and of a bias), and no reshape is
    typed. Inputs read at no axis are scalars (``scalar_inputs``)."""
    em = _Cpu(nest)
    nin, nout = len(nest.inputs), len(nest.outputs)
    args = ([f"n{i}" for i in range(nest.ndim)] + [f"a{k}_" for k in range(nin)]
            + [f"o{j}_" for j in range(nout) if j not in nest.donated])
    flags = sorted(fastmath_flags(nest))
    lines = [
        # no_cfunc_wrapper: kernels are only called through their dispatcher; the C-ABI
        # wrapper Numba builds by default cost 25-50 ms of cold compile per kernel
        "@numba.njit(cache=True, error_model='numpy', nogil=True, no_cfunc_wrapper=True, "
        f"fastmath={{{', '.join(repr(f) for f in flags)}}})",
        f"def kernel({', '.join(args)}):",
    ]
    all_axes = list(range(nest.ndim))

    def for_loops(axes, depth):
        return [("    " * (depth + i)) + f"for i{a} in range(n{a}):" for i, a in enumerate(axes)]

    if nest.mode in ("map", "acc"):
        body = []
        out_of = {}
        for j, o in enumerate(nest.outputs):
            out_of.setdefault(o[2], []).append(j)
        # accumulators start at the identity in a loop, not ``o[:] = c``: Numba lowers a
        # slice assignment through its generic broadcasting setitem, ~80 ms of cold compile
        # per kernel (LLVM turns the loop into the same memset)
        for s in nest.stmts:
            if s.kind == "reduce":
                for j in out_of.get(s.name, []):
                    body += [f"for _z in range(len(o{j}_)):",
                             f"    o{j}_[np.uint64(_z)] = {const_src(s.value, s.dtype)}"]
        # Each statement goes in the outermost loop over the axes it varies over (loads of
        # 0-d inputs before all loops): LLVM's vectorizer, given a chain of inlined
        # transcendentals that is invariant in the inner loop (a broadcast operand), took
        # minutes to compile four tanh; and inside the loops LLVM must assume the output
        # stores may alias a 0-d load, whose runtime alias checks in a many-array loop are
        # over its budget and block vectorization.
        d = len(all_axes)
        depth = _loop_depths(nest)
        # With the innermost axis reduced, each reduction runs in a local accumulator. An
        # accumulator in memory is a store that LLVM must check at run time against the
        # inputs: its two versions of the loop (vectorized, scalar) add in different orders
        # under ``reassoc`` and made a sum's low bits depend on where the buffers sat (runs
        # not bit-reproducible), and the scalar one ran 5x slower (ReLU's mask times the
        # cotangent beside the bias gradient's sum). Full-shape outputs stored beside it are
        # fresh buffers the size of the loop's rows, so their overlap check always passes.
        local = d > 0 and nest.reduced[d - 1]
        reductions = [(s, j, em.index(nest.outputs[j][1])) for s in nest.stmts
                      if s.kind == "reduce" for j in out_of.get(s.name, [])]
        for level in range(d + 1):
            inner = []
            if local and level == d - 1:
                inner += [f"_r{j} = o{j}_[{idx}]" for _, j, idx in reductions]
            for s in nest.stmts:
                if s.kind == "reduce" and level == d:
                    v = s.args[0]
                    for j in out_of.get(s.name, []):
                        idx = em.index(nest.outputs[j][1])
                        acc = f"_r{j}" if local else f"o{j}_[{idx}]"
                        inner.append(f"{acc} = {em.combine(s.op, acc, v, s.dtype)}")
                    continue
                if s.kind != "reduce" and depth[s.name] == level:
                    inner += em.stmt(s)
                if level == d:
                    inner += [em.store(j, s.name) for j in out_of.get(s.name, [])]
            body += indent(inner, level)
            if level < d:
                body += for_loops([level], level)
        if local:
            body += indent([f"o{j}_[{idx}] = _r{j}" for _, j, idx in reductions], d - 1)
        if not all_axes and not nest.stmts:
            body.append("pass")
    else:  # row: one row per iteration of the kept-axis loops, reduced axes walked in passes
        kept = [a for a in all_axes if not nest.reduced[a]]
        red = [a for a in all_axes if nest.reduced[a]]
        levels = {s.name: s.level for s in nest.stmts}
        # software pipelining over a single kept axis: the next row's first pass (which reads
        # the row from memory) runs inside this row's last pass (which computes from cache)
        parts = em.ahead_parts(levels, kept[0]) if nest.npasses >= 2 and len(kept) == 1 \
            and (nest.row_size is None or nest.row_size >= PIPELINE_MIN_ROW) else None
        body = []
        if kept:
            em.memo = _memo(em, levels, nest.npasses, 0 if parts is None else 1)
            size = " * ".join(f"n{r}" for r in red)
            body += [f"_m{n} = np.empty({size}, np.{em.by[n].dtype.name})" for n in em.memo]
        if parts is not None:  # the first row's pass 0 (with no rows, its identities)
            a = kept[0]
            pre, init, inner, _ = parts
            body += init + [f"if n{a} > 0:"] + indent([f"i{a}n = 0"] + pre, 1)
            body += indent(loops.nested([f"for i{r} in range(n{r}):" for r in red], inner), 1)
        body += for_loops(kept, 0)
        body += em.passes(len(kept), levels, nest.npasses,
                          None if parts is None else (kept[0], parts))
    lines += ["    " + ln for ln in body]
    return "\n".join(lines) + "\n"


def host_kernel(nest, body):
    """The kernel of loop-free ``nest`` (a scalar chain: AdamW's step counter and bias
    corrections) as plain Python on NumPy scalars, when its source ``body`` (from ``render``)
    names nothing but ``np``; else None. Numba's floor is ~50 ms of cold compile per kernel
    (five such kernels in a Transformer's AdamW step) for a call ~3 us faster than this one
    (~90 calls per step). The statements are the same: exact-dtype NumPy scalar arithmetic,
    with NumPy's floating-point warnings off as in a compiled kernel."""
    if nest.ndim:
        return None
    return _host_function(body)


@functools.lru_cache(maxsize=None)
def _host_function(body):
    tree = ast.parse(body)
    fn = tree.body[0]
    bound = {a.arg for a in fn.args.args} | {
        n.id for n in ast.walk(fn) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    free = {n.id for stmt in fn.body for n in ast.walk(stmt)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)} - bound
    if free - {"np"}:  # helpers (_rt, _vm, _cm, math) exist for Numba only
        return None
    fn.decorator_list = []
    quiet = ast.parse('np.errstate(all="ignore")', mode="eval").body
    fn.body = [ast.With(items=[ast.withitem(context_expr=quiet)], body=fn.body)]
    ns = {"np": np}
    exec(compile(ast.fix_missing_locations(tree), "<fnx.jit scalar kernel>", "exec"), ns)
    return ns["kernel"]


def _loop_depths(nest):
    """Per statement of a map/acc nest, how many of the loops (over axes 0, 1, ..) it must sit
    in: one more than the last axis it varies over."""
    depth = {}
    for s in nest.stmts:
        if s.kind == "load":
            depth[s.name] = max(nest.inputs[s.args[0]][1], default=-1) + 1
        elif s.kind == "index":
            depth[s.name] = s.statics[0] + 1
        elif s.kind == "op":
            depth[s.name] = max((depth.get(a, nest.ndim) for a in s.args), default=0)
        elif s.kind == "const":
            depth[s.name] = 0
        else:
            depth[s.name] = nest.ndim
    return depth


def _memo(em, levels, npasses, first):
    """Row statements to keep in a row buffer (``Emitter.memo``: name -> the pass computing
    it): costly ones (transcendentals) that passes ``first``.. all need, so later passes
    read them back instead of recomputing (a softmax gradient's exp: 3 exps per element -> 1),
    and any compound value a comparison reads in several passes: a max's gradient tests
    ``x == max`` in a later pass than the max, and a recomputed ``x = (e / s) * b`` may round
    differently there (LLVM vectorizes, contracts and reassociates each loop on its own),
    leaving no tie and a 0/0 gradient. One operation on loaded values (a cross-entropy's
    ``logits + bias``) recomputes exactly and keeps no buffer (a row buffer costs its kernel
    ~0.1-0.2 s of cold compile).
    Not those of pass 0 when it runs ahead for the next row (``Emitter.ahead_parts``)."""
    first_use, count = {}, {}
    for p in range(first, npasses):
        needed = em.pass_parts(p, levels)[2]
        # program order, not the set's: the kernel text (its disk-cache key) must not depend
        # on the process's string hash seed
        for n in (s.name for s in em.nest.stmts if s.name in needed):
            first_use.setdefault(n, p)
            count[n] = count.get(n, 0) + 1
    def compound(n):  # an op over another row op: the kind LLVM may contract or reassociate
        return any(em.by[a].kind == "op" and not em.by[a].outer for a in em.by[n].args)

    compared = {a for s in em.nest.stmts if s.kind == "op" and s.op in _COMPARISONS
                for a in s.args}
    return {n: p for n, p in first_use.items() if count[n] > 1 and em.by[n].kind == "op"
            and (scalar.OPS[em.by[n].op].costly or (n in compared and compound(n)))}


_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})


def header(version):
    return (f"# fnx generated kernel; backend {version}\n"
            "import math  # noqa: F401\n"
            "import numba\n"
            "import numpy as np  # noqa: F401\n"
            "from fnx.jit import _rt  # noqa: F401\n"
            "from fnx.jit import vecmath as _vm  # noqa: F401\n"
            "from fnx.jit.codegen import cpu_math as _cm  # noqa: F401\n\n\n")
