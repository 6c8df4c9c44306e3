"""Loop nest -> Python source for ``numba.njit`` (the CPU backend).

Rules from shared/numba-notes.md: ``error_model='numpy'``; dtype-exact constants; fastmath
``contract`` (+ ``reassoc`` for float sum/product reductions); transcendentals through
``fnx.jit.vecmath``; flat C-contiguous buffers indexed with explicit strides (broadcasting is
index arithmetic, never a broadcast view); serial loops in memory order.
"""

import math

import numpy as np

from .. import scalar
from ..scalar import npname

CODEGEN_VERSION = "3"


def const_src(value, dt):
    dt = np.dtype(dt)
    if dt.kind == "b":
        return "True" if value else "False"
    if dt.kind == "f":
        v = float(value)
        if math.isnan(v):
            s = "np.nan"
        elif math.isinf(v):
            s = "np.inf" if v > 0 else "-np.inf"
        else:
            s = repr(v)
        return f"{npname(dt)}({s})"
    return f"{npname(dt)}({int(value)})"


def _index(axes):
    axes = list(axes)
    if not axes:
        return "0"
    terms = []
    for j, a in enumerate(axes):
        terms.append(" * ".join([f"i{a}"] + [f"n{b}" for b in axes[j + 1:]]))
    return " + ".join(terms)


def _combine(op, acc, v, dt):
    dt = np.dtype(dt)
    if op == "add":
        src = f"{acc} + {v}"
    elif op == "mul":
        src = f"{acc} * {v}"
    elif op in ("max", "min"):
        # llvm.maximum/minimum: NaN-propagating and vectorizable as a reduction
        fn = {"max": "_cm.fmaximum", "min": "_cm.fminimum"}[op] if dt.kind == "f" else op
        src = f"{fn}({acc}, {v})"
    elif op == "and":
        src = f"{acc} and {v}" if dt.kind == "b" else f"{acc} & {v}"
    elif op == "or":
        src = f"{acc} or {v}" if dt.kind == "b" else f"{acc} | {v}"
    else:
        raise AssertionError(op)
    return f"{npname(dt)}({src})" if dt.kind in "iu" else src


def _arg_identity(op, dt):
    dt = np.dtype(dt)
    if dt.kind == "f":
        return const_src(-np.inf if op == "argmax" else np.inf, dt)
    if dt.kind == "b":
        return "False" if op == "argmax" else "True"
    info = np.iinfo(dt)
    return const_src(info.min if op == "argmax" else info.max, dt)


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


def render(nest):
    """Python source of a module defining ``kernel(n0.., a0_.., o0_..)`` for ``nest``.

    Every array argument is a flat (1-D, C-contiguous) buffer, indexed with strides computed
    from the sizes ``n*``: one compiled signature serves every rank that collapses to the
    same nest (an Adam update of a matrix and of a bias), and no reshape is typed."""
    by = {s.name: s for s in nest.stmts}
    nin, nout = len(nest.inputs), len(nest.outputs)
    args = ([f"n{i}" for i in range(nest.ndim)] + [f"a{k}_" for k in range(nin)]
            + [f"o{j}_" for j in range(nout)])
    flags = sorted(fastmath_flags(nest))
    lines = [
        "@numba.njit(cache=True, error_model='numpy', nogil=True, "
        f"fastmath={{{', '.join(repr(f) for f in flags)}}})",
        f"def kernel({', '.join(args)}):",
    ]
    body = []
    out_of = {}
    for j, (dt, axes, name, space) in enumerate(nest.outputs):
        out_of.setdefault(name, []).append(j)

    def stmt_src(s):
        if s.kind == "load":
            k = s.args[0]
            return [f"{s.name} = a{k}_[{_index(nest.inputs[k][1])}]"]
        if s.kind == "const":
            return [f"{s.name} = {const_src(s.value, s.dtype)}"]
        if s.kind == "index":
            return [f"{s.name} = {npname(s.dtype)}(i{s.statics[0]})"]
        if s.kind == "op":
            return [f"{s.name} = {op_src(s)}"]
        raise AssertionError(s.kind)

    def store(j, name):
        return f"o{j}_[{_index(nest.outputs[j][1])}] = {name}"

    def loops(axes, depth):
        return [("    " * (depth + i)) + f"for i{a} in range(n{a}):" for i, a in enumerate(axes)]

    def indent(src_lines, depth):
        return [("    " * depth) + ln for ln in src_lines]

    all_axes = list(range(nest.ndim))
    reduces = [s for s in nest.stmts if s.kind == "reduce"]
    if nest.mode in ("map", "acc"):
        for s in reduces:
            for j in out_of.get(s.name, []):
                body.append(f"o{j}_[:] = {const_src(s.value, s.dtype)}")
        # loads of 0-d inputs go before the loops: inside, LLVM must assume the output
        # stores may alias them, and the runtime alias checks of a many-array loop are
        # over its budget, which blocks vectorization
        hoisted = {s.name for s in nest.stmts if s.kind == "load" and not
                   nest.inputs[s.args[0]][1]} if all_axes else set()
        body += [ln for s in nest.stmts if s.name in hoisted for ln in stmt_src(s)]
        body += loops(all_axes, 0)
        d = len(all_axes)
        for s in nest.stmts:
            if s.name in hoisted:
                for j in out_of.get(s.name, []):
                    body += indent([store(j, s.name)], d)
                continue
            if s.kind == "reduce":
                v = s.args[0]
                for j in out_of.get(s.name, []):
                    idx = _index(nest.outputs[j][1])
                    body += indent([f"o{j}_[{idx}] = "
                                    f"{_combine(s.op, f'o{j}_[{idx}]', v, s.dtype)}"], d)
                continue
            body += indent(stmt_src(s), d)
            for j in out_of.get(s.name, []):
                body += indent([store(j, s.name)], d)
        if not all_axes and not nest.stmts:
            body.append("pass")
    else:
        kept = [a for a in all_axes if not nest.reduced[a]]
        red = [a for a in all_axes if nest.reduced[a]]
        body += loops(kept, 0)
        d0 = len(kept)
        outer = [s for s in nest.stmts if s.outer and s.kind != "reduce"]
        body += indent([ln for s in outer if s.level == 0 for ln in stmt_src(s)], d0)
        for p in range(nest.npasses):
            in_pass = [s for s in reduces if by[s.args[0]].level == p]
            stores = [(j, o[2]) for j, o in enumerate(nest.outputs)
                      if o[3] == "full" and by[o[2]].level == p]
            needed = set()
            todo = [s.args[0] for s in in_pass] + [name for _, name in stores]
            while todo:
                name = todo.pop()
                st = by[name]
                if st.outer or name in needed:
                    continue
                needed.add(name)
                todo.extend(st.args if st.kind == "op" else [])
            for s in in_pass:
                if s.op in ("argmax", "argmin"):
                    body += indent([f"{s.name}v = {_arg_identity(s.op, s.in_dtypes[0])}",
                                    f"{s.name} = {npname(s.dtype)}(0)"], d0)
                else:
                    body += indent([f"{s.name} = {const_src(s.value, s.dtype)}"], d0)
            body += loops(red, d0)
            d = d0 + len(red)
            for s in nest.stmts:
                if s.name in needed:
                    body += indent(stmt_src(s), d)
            for s in in_pass:
                v = s.args[0]
                if s.op in ("argmax", "argmin"):
                    cmp = ">" if s.op == "argmax" else "<"
                    fdt = np.dtype(s.in_dtypes[0])
                    nan = f" or ({v} != {v} and {s.name}v == {s.name}v)" if fdt.kind == "f" \
                        else ""
                    body += indent([f"if {v} {cmp} {s.name}v{nan}:",
                                    f"    {s.name}v = {v}",
                                    f"    {s.name} = {npname(s.dtype)}(i{red[0]})"], d)
                else:
                    body += indent([f"{s.name} = {_combine(s.op, s.name, v, s.dtype)}"], d)
            body += indent([store(j, name) for j, name in stores], d)
            if not red:
                pass
            body += indent([ln for s in outer if s.level == p + 1 for ln in stmt_src(s)], d0)
        body += indent([store(j, o[2]) for j, o in enumerate(nest.outputs) if o[3] == "outer"],
                       d0)
    lines += ["    " + ln for ln in body]
    return "\n".join(lines) + "\n"


def header(version):
    return (f"# fnx generated kernel; backend {version}\n"
            "import math  # noqa: F401\n"
            "import numba\n"
            "import numpy as np  # noqa: F401\n"
            "from fnx.jit import _rt  # noqa: F401\n"
            "from fnx.jit import vecmath as _vm  # noqa: F401\n"
            "from fnx.jit.codegen import cpu_math as _cm  # noqa: F401\n\n\n")
