"""Loop nest -> ``numba.cuda`` kernels (the CUDA backend), and the CUDA executable.

The same ``loops.LoopNest`` the CPU backend consumes becomes one of two kernels:

* ``thread``: one thread per outer index (a grid-stride loop over the kept axes); reduced axes,
  if any, are walked serially by that thread in the nest's passes. Map groups (no reduced axes)
  are plain grid-stride elementwise loops; acc groups (column sums) read coalesced because
  neighbouring threads own neighbouring outputs; short rows (fewer than
  ``cuda_runtime.ROW_BLOCK_MIN`` reduced elements) use it too.
* ``block``: row groups with long rows: one block per row (grid-stride over rows), threads
  stride over the reduced elements, and each reduction of each pass is a tree reduction in
  shared memory (argmax/argmin carry the index beside the value); the reduced value is then
  visible to every thread for the next pass (softmax, logsumexp, cross-entropy).

Buffers are passed flat (1-D views of C-contiguous arrays); broadcasting is index arithmetic
from the sizes ``n0..``. Transcendentals use ``math.*`` (CUDA libdevice), constants are typed
(``np.float32(c)``), and small device helpers (NaN-propagating max, C-style integer division,
...) are emitted into the kernel module that uses them.

Kernel modules are written to ``<fnx cache dir>/cuda/fnx_cuda_<sha256>.py`` and imported (never
exec'd), so Numba's ``cache=True`` can keep the PTX between processes on a real GPU.

Entry points: ``compile_nest(nest) -> CudaKernel`` (callable as ``k(n0.., a0.., o0..)``, the
CPU dispatcher's convention, on GPU buffers) and ``CudaExecutable(program, consts)`` (the CUDA
twin of ``executable.Executable``: same attributes, ``run(*gpu_buffers)``).
"""

import functools
import hashlib
import importlib.util
import math
import os
import sys
import threading
import warnings

import numpy as np

from .. import cuda_runtime as crt

CODEGEN_VERSION = "cuda-1"

_lock = threading.Lock()
_modules = {}  # source hash -> module
STATS = {"kernels_compiled": 0, "kernels_reused": 0}


class CudaLoweringError(NotImplementedError):
    """A statement of a fused group has no CUDA lowering."""


# --- scalar source --------------------------------------------------------------------------


def _tyname(dt):
    dt = np.dtype(dt)
    return "boolean" if dt.kind == "b" else dt.name


def _np(dt):
    return f"np.{np.dtype(dt).name}"


def const_src(value, dt):
    dt = np.dtype(dt)
    if dt.kind == "b":
        return "True" if value else "False"
    if dt.kind == "f":
        v = float(value)
        if math.isnan(v):
            s = "math.nan"
        elif math.isinf(v):
            s = "math.inf" if v > 0 else "-math.inf"
        else:
            s = repr(v)
        return f"{_np(dt)}({s})"
    return f"{_np(dt)}({int(value)})"


def _cast(src, out):
    out = np.dtype(out)
    if out.kind == "b":
        return src
    return f"{_np(out)}({src})"


_HELPERS = {
    "_fmax_nan": """
def _fmax_nan(a, b):
    return a if (a > b or a != a) else b
""",
    "_fmin_nan": """
def _fmin_nan(a, b):
    return a if (a < b or a != a) else b
""",
    "_idiv": """
def _idiv(x, y):
    if y == 0:
        return x - x
    q = x // y
    if (x % y != 0) and ((x < 0) != (y < 0)):
        q += 1
    return q
""",
    "_irem": """
def _irem(x, y):
    if y == 0:
        return x - x
    r = x % y
    if r != 0 and ((r < 0) != (x < 0)):
        r -= y
    return r
""",
    "_ipow": """
def _ipow(x, n):
    m = n if n >= 0 else -n
    acc = x - x + 1
    base = x
    while m > 0:
        if m & 1:
            acc = acc * base
        base = base * base
        m >>= 1
    if n < 0:
        return 1 / acc
    return acc
""",
    "_shl": """
def _shl(x, y, bits):
    if y < 0 or y >= bits:
        return x - x
    return x << y
""",
    "_shr": """
def _shr(x, y, bits):
    if y < 0 or y >= bits:
        if x < 0:
            return x - x - 1
        return x - x
    return x >> y
""",
    "_popcount": """
def _popcount(x):
    y = np.int64(x)
    if y < 0:
        y = -y
    v = np.uint64(y)
    c = 0
    while v:
        v &= v - np.uint64(1)
        c += 1
    return c
""",
    "_fsign": """
def _fsign(x):
    if x > 0:
        return x - x + 1
    if x < 0:
        return x - x - 1
    return x
""",
    "_ftrunc": """
def _ftrunc(x):
    if not (abs(x) < 4503599627370496.0):  # NaN, inf, or already integral
        return x
    return math.copysign(float(np.int64(x)), x)
""",
    "_ffloor": """
def _ffloor(x):
    t = _ftrunc(x)
    return t - 1.0 if t > x else t
""",
    "_fceil": """
def _fceil(x):
    t = _ftrunc(x)
    return t + 1.0 if t < x else t
""",
    "_rint": """
def _rint(x):
    r = _ffloor(x + 0.5)
    if r - x == 0.5 and _ftrunc(r * 0.5) * 2.0 != r:
        r -= 1.0
    return r
""",
    "_digamma": """
def _digamma(x):
    result = 0.0
    xx = float(x)
    if xx <= 0.0 and xx == math.floor(xx):
        return math.nan
    if xx < 0.5:
        result -= math.pi / math.tan(math.pi * xx)
        xx = 1.0 - xx
    while xx < 6.0:
        result -= 1.0 / xx
        xx += 1.0
    f = 1.0 / (xx * xx)
    series = f * (-1.0 / 12 + f * (1.0 / 120 + f * (-1.0 / 252 + f * (1.0 / 240 - f / 132))))
    return result + math.log(xx) - 0.5 / xx + series
""",
    "_erf_inv": """
def _erf_inv(y):
    y = float(y)
    if y <= -1.0:
        return -math.inf if y == -1.0 else math.nan
    if y >= 1.0:
        return math.inf if y == 1.0 else math.nan
    w = -math.log((1.0 - y) * (1.0 + y))
    if w < 5.0:
        w = w - 2.5
        p = 2.81022636e-08
        p = 3.43273939e-07 + p * w
        p = -3.5233877e-06 + p * w
        p = -4.39150654e-06 + p * w
        p = 0.00021858087 + p * w
        p = -0.00125372503 + p * w
        p = -0.00417768164 + p * w
        p = 0.246640727 + p * w
        p = 1.50140941 + p * w
    else:
        w = math.sqrt(w) - 3.0
        p = -0.000200214257
        p = 0.000100950558 + p * w
        p = 0.00134934322 + p * w
        p = -0.00367342844 + p * w
        p = 0.00573950773 + p * w
        p = -0.0076224613 + p * w
        p = 0.00943887047 + p * w
        p = 1.00167406 + p * w
        p = 2.83297682 + p * w
    x = p * y
    for _ in range(2):
        err = math.erf(x) - y
        x -= err / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
    return x
""",
}

# float functions with a direct math.* lowering (libdevice on the GPU)
_MATH = {
    "exp": "math.exp", "log": "math.log", "expm1": "math.expm1", "log1p": "math.log1p",
    "tanh": "math.tanh", "sin": "math.sin", "cos": "math.cos", "tan": "math.tan",
    "arcsin": "math.asin", "arccos": "math.acos", "arctan": "math.atan", "sinh": "math.sinh",
    "cosh": "math.cosh", "arcsinh": "math.asinh", "arccosh": "math.acosh",
    "arctanh": "math.atanh", "sqrt": "math.sqrt", "erf": "math.erf", "lgamma": "math.lgamma",
    "arctan2": "math.atan2", "copysign": "math.copysign", "power": "math.pow",
}
_HELPER_DEPS = {"_ffloor": ("_ftrunc",), "_fceil": ("_ftrunc",), "_rint": ("_ffloor", "_ftrunc")}
# math.floor/ceil/trunc return int64 in Numba (Python semantics): NaN/inf/huge values break
_ROUNDING = {"floor": "_ffloor", "ceil": "_fceil", "trunc": "_ftrunc", "rint": "_rint"}
_BIN = {"+", "-", "*", "%", "&", "|", "^"}
_CMP = {"<", "<=", ">", ">=", "==", "!="}


def op_src(op, a, dts, out, statics, use):
    """CUDA source of vocabulary op ``op`` on operand sources ``a``; ``use(h)`` records a
    helper. Raises CudaLoweringError for ops with no CUDA lowering."""
    dts = [np.dtype(d) for d in dts]
    out = np.dtype(out)
    k0 = dts[0].kind if dts else "f"

    def helper(name, *args):
        use(name)
        return f"{name}({', '.join(args)})"

    if op in _BIN:
        if out.kind == "b" and op in ("+", "*"):
            return f"({a[0]} {'or' if op == '+' else 'and'} {a[1]})"
        return _cast(f"({a[0]} {op} {a[1]})", out)
    if op in _CMP:
        return f"({a[0]} {op} {a[1]})"
    if op == "neg":
        return _cast(f"(-{a[0]})", out)
    if op in ("/", "div"):
        if out.kind in "iu":
            return _cast(helper("_idiv", *a), out)
        return _cast(f"({a[0]} / {a[1]})", out)
    if op == "fmod":
        if out.kind in "iu":
            return _cast(helper("_irem", *a), out)
        return _cast(f"math.fmod({a[0]}, {a[1]})", out)
    if op in _MATH and k0 == "f":
        return _cast(f"{_MATH[op]}({', '.join(a)})", out)
    if op == "exp2" and k0 == "f":
        return _cast(f"math.pow({_np(out)}(2.0), {a[0]})", out)
    if op == "cbrt" and k0 == "f":
        return _cast(f"math.copysign(math.pow(abs({a[0]}), 1.0 / 3.0), {a[0]})", out)
    if op in _ROUNDING and k0 == "f":
        return _cast(helper(_ROUNDING[op], *a), out)
    if op == "digamma" and k0 == "f":
        return _cast(helper("_digamma", *a), out)
    if op == "erf_inv" and k0 == "f":
        return _cast(helper("_erf_inv", *a), out)
    if op == "logistic" and k0 == "f":
        one = f"{_np(out)}(1.0)"
        return _cast(f"({one} / ({one} + math.exp(-{a[0]})))", out)
    if op == "ipow":
        if out.kind == "b":
            return a[0]
        return _cast(helper("_ipow", a[0], str(int(statics[0]))), out)
    if op in ("maximum", "minimum"):
        if out.kind == "f":
            return _cast(helper("_fmax_nan" if op == "maximum" else "_fmin_nan", *a), out)
        return _cast(f"{'max' if op == 'maximum' else 'min'}({a[0]}, {a[1]})", out)
    if op == "sign":
        if out.kind == "f":
            return _cast(helper("_fsign", *a), out)
        if out.kind == "i":
            return _cast(f"(({a[0]} > 0) - ({a[0]} < 0))", out)
        return _cast(f"({a[0]} > 0)", out)
    if op == "abs" and k0 in "biuf":
        return _cast(f"abs({a[0]})", out)
    if op == "real" and k0 != "c":
        return a[0]
    if op == "imag" and k0 != "c":
        return const_src(0, out)
    if op == "conj" and k0 != "c":
        return a[0]
    if op in ("isfinite", "isnan", "isinf"):
        if k0 in "biu":
            return "True" if op == "isfinite" else "False"
        return f"math.{op}({a[0]})"
    if op == "bnot":
        return f"(not {a[0]})" if k0 == "b" else _cast(f"(~{a[0]})", out)
    if op in ("shl", "shr"):
        return _cast(helper("_" + op, a[0], a[1], str(out.itemsize * 8)), out)
    if op == "popcount":
        return _cast(helper("_popcount", *a), out)
    if op == "where":
        return f"({a[1]} if {a[0]} else {a[2]})"
    if op == "cast":
        if k0 == "c":
            raise CudaLoweringError("cast from complex")
        if out.kind == "b":
            return f"({a[0]} != 0)"
        return _cast(a[0], out)
    if op == "bitcast" and out == dts[0]:
        return a[0]
    raise CudaLoweringError(f"no CUDA lowering for '{op}' on {[d.name for d in dts]}")


def _combine(op, acc, v, dt, use):
    dt = np.dtype(dt)
    if op == "add":
        return f"({acc} or {v})" if dt.kind == "b" else _cast(f"{acc} + {v}", dt)
    if op == "mul":
        return f"({acc} and {v})" if dt.kind == "b" else _cast(f"{acc} * {v}", dt)
    if op in ("max", "min"):
        if dt.kind == "f":
            fn = "_fmax_nan" if op == "max" else "_fmin_nan"
            use(fn)
            return f"{fn}({acc}, {v})"
        if dt.kind == "b":
            return f"({acc} or {v})" if op == "max" else f"({acc} and {v})"
        return _cast(f"{op}({acc}, {v})", dt)
    if op == "and":
        return f"({acc} and {v})" if dt.kind == "b" else _cast(f"{acc} & {v}", dt)
    if op == "or":
        return f"({acc} or {v})" if dt.kind == "b" else _cast(f"{acc} | {v}", dt)
    raise CudaLoweringError(f"no CUDA combine for reducer '{op}'")


def _arg_identity(op, dt):
    dt = np.dtype(dt)
    if dt.kind == "f":
        return const_src(-np.inf if op == "argmax" else np.inf, dt)
    if dt.kind == "b":
        return "False" if op == "argmax" else "True"
    info = np.iinfo(dt)
    return const_src(info.min if op == "argmax" else info.max, dt)


def _index(axes):
    axes = list(axes)
    if not axes:
        return "0"
    terms = []
    for j, a in enumerate(axes):
        terms.append(" * ".join([f"i{a}"] + [f"n{b}" for b in axes[j + 1:]]))
    return " + ".join(terms)


def _decompose(var, axes):
    """Lines that split flat index ``var`` (C order over ``axes``) into ``i<axis>``."""
    axes = list(axes)
    if not axes:
        return []
    if len(axes) == 1:
        return [f"i{axes[0]} = {var}"]
    lines = [f"_q = {var}"]
    for a in reversed(axes[1:]):
        lines += [f"i{a} = _q % n{a}", f"_q = _q // n{a}"]
    lines.append(f"i{axes[0]} = _q")
    return lines


# --- rendering ------------------------------------------------------------------------------


def render(nest, strategy="thread", block=None):
    """Python source of a module defining ``kernel(M, R, n0.., a0.., o0..)`` for ``nest``.

    ``M``/``R``: the product of the kept / reduced sizes. ``strategy``: 'thread' or 'block'
    (row groups only). ``block``: threads per block (the shared-array size of 'block')."""
    block = block or crt.block_size()
    if strategy == "block" and nest.mode != "row":
        raise ValueError("the block strategy is for row groups")
    by = {s.name: s for s in nest.stmts}
    nin, nout = len(nest.inputs), len(nest.outputs)
    helpers = set()

    def use(h):
        helpers.add(h)
        for dep in _HELPER_DEPS.get(h, ()):
            use(dep)
    args = (["M", "R"] + [f"n{i}" for i in range(nest.ndim)] + [f"a{k}" for k in range(nin)]
            + [f"o{j}" for j in range(nout)])
    all_axes = list(range(nest.ndim))
    kept = [a for a in all_axes if not nest.reduced[a]]
    red = [a for a in all_axes if nest.reduced[a]]
    reduces = [s for s in nest.stmts if s.kind == "reduce"]
    if nest.mode != "row":
        levels = {s.name: 0 for s in nest.stmts}
    else:
        levels = {s.name: s.level for s in nest.stmts}
    npasses = nest.npasses if nest.mode == "row" else 1

    def stmt_src(s):
        if s.kind == "load":
            k = s.args[0]
            return [f"{s.name} = a{k}[{_index(nest.inputs[k][1])}]"]
        if s.kind == "const":
            return [f"{s.name} = {const_src(s.value, s.dtype)}"]
        if s.kind == "index":
            return [f"{s.name} = {_np(s.dtype)}(i{s.statics[0]})"]
        if s.kind == "op":
            return [f"{s.name} = {op_src(s.op, s.args, s.in_dtypes, s.dtype, s.statics, use)}"]
        raise AssertionError(s.kind)

    def store(j, name):
        return f"o{j}[{_index(nest.outputs[j][1])}] = {name}"

    def ind(lines, depth):
        return [("    " * depth) + ln for ln in lines]

    outer = [s for s in nest.stmts if s.outer and s.kind != "reduce"]
    full_outs = [(j, o[2]) for j, o in enumerate(nest.outputs) if o[3] == "full"]
    outer_outs = [(j, o[2]) for j, o in enumerate(nest.outputs) if o[3] == "outer"]

    def needed_for(pass_reduces, stores):
        needed = set()
        todo = [s.args[0] for s in pass_reduces] + [name for _, name in stores]
        while todo:
            name = todo.pop()
            st = by[name]
            if st.outer or name in needed:
                continue
            needed.add(name)
            todo.extend(st.args if st.kind == "op" else [])
        return needed

    def arg_update(s, v, idx, d):
        cmp = ">" if s.op == "argmax" else "<"
        nan = f" or ({v} != {v} and {s.name}v == {s.name}v)" if \
            np.dtype(s.in_dtypes[0]).kind == "f" else ""
        return ind([f"if {v} {cmp} {s.name}v{nan}:",
                    f"    {s.name}v = {v}",
                    f"    {s.name} = {_np(s.dtype)}({idx})"], d)

    body = []
    if strategy == "thread":
        body += ["_q0 = cuda.grid(1)", "_step = cuda.gridsize(1)", "while _q0 < M:"]
        d0 = 1
        body += ind(_decompose("_q0", kept), d0)
        body += ind([ln for s in outer if levels[s.name] == 0 for ln in stmt_src(s)], d0)
        for p in range(npasses):
            in_pass = [s for s in reduces if levels[s.args[0]] == p]
            stores = [(j, n) for j, n in full_outs if levels[n] == p]
            needed = needed_for(in_pass, stores)
            for s in in_pass:
                if s.op in ("argmax", "argmin"):
                    body += ind([f"{s.name}v = {_arg_identity(s.op, s.in_dtypes[0])}",
                                 f"{s.name} = {_np(s.dtype)}(0)"], d0)
                else:
                    body += ind([f"{s.name} = {const_src(s.value, s.dtype)}"], d0)
            d = d0
            for a in red:
                body += ind([f"for i{a} in range(n{a}):"], d)
                d += 1
            inner = [ln for s in nest.stmts if s.name in needed for ln in stmt_src(s)]
            for s in in_pass:
                v = s.args[0]
                if s.op in ("argmax", "argmin"):
                    inner += arg_update(s, v, f"i{red[0]}", 0)
                else:
                    inner.append(f"{s.name} = {_combine(s.op, s.name, v, s.dtype, use)}")
            inner += [store(j, n) for j, n in stores]
            body += ind(inner or ["pass"], d)
            body += ind([ln for s in outer if levels[s.name] == p + 1 for ln in stmt_src(s)],
                        d0)
        body += ind([store(j, n) for j, n in outer_outs], d0)
        body += ind(["_q0 += _step"], d0)
    else:
        body += ["_tid = cuda.threadIdx.x", "_row = cuda.blockIdx.x"]
        for s in reduces:
            vt = _tyname(s.in_dtypes[0] if s.op in ("argmax", "argmin") else s.dtype)
            body.append(f"_sh_{s.name} = cuda.shared.array({block}, numba.{vt})")
            if s.op in ("argmax", "argmin"):
                body.append(f"_si_{s.name} = cuda.shared.array({block}, numba.int64)")
        body.append("while _row < M:")
        d0 = 1
        body += ind(_decompose("_row", kept), d0)
        body += ind([ln for s in outer if levels[s.name] == 0 for ln in stmt_src(s)], d0)
        for p in range(npasses):
            in_pass = [s for s in reduces if levels[s.args[0]] == p]
            stores = [(j, n) for j, n in full_outs if levels[n] == p]
            needed = needed_for(in_pass, stores)
            for s in in_pass:
                if s.op in ("argmax", "argmin"):
                    body += ind([f"{s.name}v = {_arg_identity(s.op, s.in_dtypes[0])}",
                                 f"{s.name}i = 0"], d0)
                else:
                    body += ind([f"{s.name} = {const_src(s.value, s.dtype)}"], d0)
            body += ind(["_r = _tid", "while _r < R:"], d0)
            d = d0 + 1
            inner = list(_decompose("_r", red))
            inner += [ln for s in nest.stmts if s.name in needed for ln in stmt_src(s)]
            for s in in_pass:
                v = s.args[0]
                if s.op in ("argmax", "argmin"):
                    cmp = ">" if s.op == "argmax" else "<"
                    nan = f" or ({v} != {v} and {s.name}v == {s.name}v)" if \
                        np.dtype(s.in_dtypes[0]).kind == "f" else ""
                    inner += [f"if {v} {cmp} {s.name}v{nan}:",
                              f"    {s.name}v = {v}",
                              f"    {s.name}i = _r"]
                else:
                    inner.append(f"{s.name} = {_combine(s.op, s.name, v, s.dtype, use)}")
            inner += [store(j, n) for j, n in stores]
            inner.append(f"_r += {block}")
            body += ind(inner, d)
            if in_pass:
                # tree reduction in shared memory, then every thread reads the row's value
                for s in in_pass:
                    if s.op in ("argmax", "argmin"):
                        body += ind([f"_sh_{s.name}[_tid] = {s.name}v",
                                     f"_si_{s.name}[_tid] = {s.name}i"], d0)
                    else:
                        body += ind([f"_sh_{s.name}[_tid] = {s.name}"], d0)
                body += ind(["cuda.syncthreads()", f"_s = {block // 2}", "while _s > 0:",
                             "    if _tid < _s:"], d0)
                d = d0 + 2
                for s in in_pass:
                    if s.op in ("argmax", "argmin"):
                        cmp = ">" if s.op == "argmax" else "<"
                        isf = np.dtype(s.in_dtypes[0]).kind == "f"
                        take = (f"(_bv {cmp} _av)" + (" or (_bv != _bv and _av == _av)" if isf
                                                      else "")
                                + " or ((_bv == _av" + (" or (_bv != _bv and _av != _av)"
                                                        if isf else "")
                                + ") and _bi < _ai)")
                        body += ind([f"_av = _sh_{s.name}[_tid]",
                                     f"_bv = _sh_{s.name}[_tid + _s]",
                                     f"_ai = _si_{s.name}[_tid]",
                                     f"_bi = _si_{s.name}[_tid + _s]",
                                     f"if {take}:",
                                     f"    _sh_{s.name}[_tid] = _bv",
                                     f"    _si_{s.name}[_tid] = _bi"], d)
                    else:
                        c = _combine(s.op, f"_sh_{s.name}[_tid]", f"_sh_{s.name}[_tid + _s]",
                                     s.dtype, use)
                        body += ind([f"_sh_{s.name}[_tid] = {c}"], d)
                body += ind(["cuda.syncthreads()", "_s //= 2"], d0 + 1)
                for s in in_pass:
                    if s.op in ("argmax", "argmin"):
                        body += ind([f"{s.name} = {_np(s.dtype)}(_si_{s.name}[0])"], d0)
                    else:
                        body += ind([f"{s.name} = _sh_{s.name}[0]"], d0)
                # nobody may overwrite the shared slots before everyone has read them
                body += ind(["cuda.syncthreads()"], d0)
            body += ind([ln for s in outer if levels[s.name] == p + 1 for ln in stmt_src(s)],
                        d0)
        if outer_outs:
            body += ind(["if _tid == 0:"] + ind([store(j, n) for j, n in outer_outs], 1), d0)
        body += ind(["_row += cuda.gridDim.x"], d0)

    lines = [f"@cuda.jit(cache={not crt.simulator()})",
             f"def kernel({', '.join(args)}):"]
    lines += ["    " + ln for ln in body]
    helper_src = "".join("\n@cuda.jit(device=True)" + _HELPERS[h] + "\n"
                         for h in sorted(helpers, key=_helper_rank))
    return helper_src + "\n" + "\n".join(lines) + "\n"


def _helper_rank(h):
    return (-len([k for k, deps in _HELPER_DEPS.items() if h in deps]), h)


def header():
    import numba

    return (f"# fnx generated CUDA kernel; backend {CODEGEN_VERSION} numba={numba.__version__}\n"
            "import math  # noqa: F401\n"
            "import numba  # noqa: F401\n"
            "import numpy as np  # noqa: F401\n"
            "from numba import cuda\n\n")


# --- loading and launching ------------------------------------------------------------------


def _load_module(source):
    from .. import cache

    h = hashlib.sha256(source.encode()).hexdigest()[:32]
    mod = _modules.get(h)
    if mod is not None:
        STATS["kernels_reused"] += 1
        return h, mod
    with _lock:
        d = os.path.join(cache.cache_dir(), "cuda")
        path = os.path.join(d, f"fnx_cuda_{h}.py")
        cache._write_atomic(path, source)
        name = f"fnx_cuda_kernels.fnx_cuda_{h}"
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
        _modules[h] = mod
        STATS["kernels_compiled"] += 1
    return h, mod


class CudaKernel:
    """A fused group on the GPU: ``k(n0.., a0.., o0..)`` with GPU buffers (C-contiguous, any
    shape), the CPU dispatcher's calling convention. Row groups pick the block-reduction
    kernel for rows of at least ``ROW_BLOCK_MIN`` elements, else the one-thread-per-row one;
    each variant is generated and compiled on first use."""

    def __init__(self, nest):
        self.nest = nest
        self.ndim = nest.ndim
        self.nin, self.nout = len(nest.inputs), len(nest.outputs)
        self.reduced = list(nest.reduced)
        self._variants = {}
        self.sources = {}
        self.launched = set()

    def variant(self, strategy):
        v = self._variants.get(strategy)
        if v is None:
            src = header() + render(self.nest, strategy)
            h, mod = _load_module(src)
            v = self._variants[strategy] = mod.kernel
            self.sources[strategy] = src
        return v

    def strategy_for(self, R):
        return "block" if self.nest.mode == "row" and R >= crt.ROW_BLOCK_MIN else "thread"

    def __call__(self, *args):
        sizes = [int(s) for s in args[:self.ndim]]
        bufs = args[self.ndim:]
        M = R = 1
        for s, r in zip(sizes, self.reduced, strict=True):
            if r:
                R *= s
            else:
                M *= s
        if M == 0:
            return
        strategy = self.strategy_for(R)
        kern = self.variant(strategy)
        self.launched.add(strategy)
        be = crt.backend()
        flat = [be.kernel_arg(b) for b in bufs]
        block = crt.block_size()
        grid = crt.grid_for(M, 1 if strategy == "block" else block)
        kern[grid, block, be.stream()](M, R, *sizes, *flat)


def compile_nest(nest, warm=False):
    """The CUDA kernel of a loop nest (from ``loops.build``); ``warm=True`` generates and
    imports the source now (CUDA compiles to PTX at the first launch of each signature)."""
    k = CudaKernel(nest)
    if warm:
        k.variant("thread")
        if nest.mode == "row":
            k.variant("block")
    return k


# --- the CUDA executable ----------------------------------------------------------------------


class CudaExecutable:
    """``run(*gpu_buffers) -> list of gpu buffers``: passes, the fusion plan, one CUDA kernel
    per fused group and a generated plain-Python orchestrator on the host that allocates GPU
    buffers, launches kernels, calls cuBLAS (``cupy.matmul``) and eager impls on GPU buffers.
    Same attributes as ``executable.Executable`` (``ir``, ``plan``, ``kernels``, ``source``,
    ``orchestrator``)."""

    device = "cuda"

    def __init__(self, program, consts):
        from .. import fusion, passes
        from ...core.ir import pp_program

        self.program = passes.optimize(program)
        self.ir = pp_program(self.program)
        self.plan = fusion.plan(self.program)
        self.kernel_sources = []
        self.cuda_kernels = []
        self.orchestrator = ""
        self.run = self._build(consts)

    @property
    def kernels(self):
        return self.plan.describe()

    @property
    def source(self):
        parts = [f"# kernel {i}\n{s}" for i, s in enumerate(self.kernel_sources)]
        return "\n".join(parts + ["# orchestrator\n" + self.orchestrator])

    def _build(self, consts):
        from .. import fusion
        from . import loops
        from ...core.array import Array
        from ...core.errors import CompileError
        from ...core.ir import Literal, Var
        from ...core.ops.linalg import _dot_general_impl

        program, plan = self.program, self.plan
        be = crt.backend()
        names, ns = {}, {"np": np, "_B": be, "functools": functools,
                         "_dot_general_impl": _dot_general_impl}
        n_consts = len(consts)

        def host(val):
            buf = val._buf if type(val) is Array else val
            if crt.is_cuda_buffer(buf):
                return buf
            return np.asarray(buf)

        def name(x):
            if isinstance(x, Literal):
                key = f"c{len(ns)}"
                v = host(x.val)
                ns[key] = v if crt.is_cuda_buffer(v) else be.const(v)
                return key
            if x not in names:
                names[x] = f"v{len(names)}"
            return names[x]

        params = []
        for i, v in enumerate(program.in_binders):
            if i < n_consts:
                c = host(consts[i])
                ns[name(v)] = be.contiguous(c) if crt.is_cuda_buffer(c) else be.const(c)
            else:
                params.append(name(v))

        needed = {x for x in program.outs if isinstance(x, Var)}
        skip = set()
        for step in reversed(plan.steps):
            if isinstance(step, fusion.Group):
                for e in step.eqns:
                    for x in e.inputs:
                        if not isinstance(x, Var) or x in step.internal:
                            continue
                        lz = plan.lazy.get(x)
                        if lz is None:
                            needed.add(x)
                        elif isinstance(lz.src, Var) and lz.iota is None:
                            needed.add(lz.src)
            else:
                outs = step.eqn.out_binders
                if outs and outs[0] in plan.lazy and outs[0] not in needed:
                    skip.add(id(step))
                    continue
                needed |= {x for x in step.eqn.inputs if isinstance(x, Var)}

        lines = [f"def run({', '.join(params)}):"]
        lines += [f"    {p} = _B.on_device({p})" for p in params]
        ready = set(program.in_binders[:n_consts])  # constants: already contiguous on device

        def as_kernel_input(v):
            n = name(v)
            if v in ready:
                return n
            ready.add(v)
            lines.append(f"    {n} = _B.contiguous({n})")
            return n

        k = 0
        for step in plan.steps:
            if isinstance(step, fusion.Group):
                outputs = [v for e in step.eqns for v in e.out_binders if v in needed]
                try:
                    nest, in_vars, sizes = loops.build(step, plan, outputs)
                    kern = compile_nest(nest, warm=True)
                except Exception as err:  # noqa: BLE001
                    shapes = ", ".join(f"{e.primitive.name}:" + ",".join(
                        x.aval.str_short() for x in e.inputs) for e in step.eqns)
                    raise CompileError(
                        f"fnx.jit could not compile fused group {step.describe()} for CUDA "
                        f"(inputs {shapes}): {type(err).__name__}: {err}. This is an fnx bug; "
                        f"please report it with this message.") from err
                self.kernel_sources.append("\n".join(kern.sources.values()))
                self.cuda_kernels.append(kern)
                kname = f"_k{k}"
                k += 1
                ns[kname] = kern
                ins = [as_kernel_input(v) if isinstance(v, Var) else name(v) for v in in_vars]
                outs = []
                for v in outputs:
                    on = name(v)
                    lines.append(f"    {on} = _B.empty({tuple(v.aval.shape)}, "
                                 f"np.{np.dtype(v.aval.dtype).name})")
                    outs.append(on)
                    ready.add(v)
                lines.append(f"    {kname}({', '.join(map(str, sizes + ins + outs))})")
                continue
            if id(step) in skip:
                continue
            eqn = step.eqn
            ins = [name(x) for x in eqn.inputs]
            outs = [name(v) for v in eqn.out_binders]
            lhs = ", ".join(outs) + ("," if len(outs) == 1 and eqn.primitive.multiple_results
                                     else "")
            if step.how == "blas":
                call = _blas_call(eqn, ins)
                ready.update(eqn.out_binders)
            else:
                if step.how == "fallback":
                    warnings.warn(f"fnx.jit (CUDA): primitive '{eqn.primitive.name}' has no "
                                  f"compiled lowering; it runs its eager implementation",
                                  stacklevel=4)
                fname = f"_impl{len(ns)}"
                ns[fname] = functools.partial(eqn.primitive.impl, **eqn.params)
                call = f"_B.eager({fname}{''.join(', ' + i for i in ins)})"
            lines.append(f"    {lhs} = {call}")
        outs = [name(x) for x in program.outs]
        lines.append(f"    return ({', '.join(outs)}{',' if len(outs) == 1 else ''})")
        src = "\n".join(lines) + "\n"
        self.orchestrator = src
        exec(compile(src, "<fnx.jit CUDA orchestrator>", "exec"), ns)  # plain Python
        return ns["run"]


def _blas_call(eqn, ins):
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    a, b = eqn.inputs
    if not lb and a.aval.ndim == 2 and b.aval.ndim == 2:
        return f"_B.matmul({ins[0]}, {ins[1]}, {lc == (0,)}, {rc == (1,)})"
    if not lb and a.aval.ndim == 2 and b.aval.ndim == 1 and lc == (1,):
        return f"_B.matmul({ins[0]}, {ins[1]})"
    if not lb and a.aval.ndim == 1 and b.aval.ndim == 2 and rc == (0,):
        return f"_B.matmul({ins[0]}, {ins[1]})"
    if not lb and a.aval.ndim == 1 and b.aval.ndim == 1:
        return f"_B.dot({ins[0]}, {ins[1]})"
    return (f"_B.eager(functools.partial(_dot_general_impl, dimension_numbers="
            f"{eqn.params['dimension_numbers']!r}), {ins[0]}, {ins[1]})")


__all__ = ["CudaExecutable", "CudaKernel", "CudaLoweringError", "compile_nest", "render",
           "op_src", "const_src"]
