"""The scalar vocabulary of ``prim.scalar_expr`` templates: ONE table.

Each entry maps a vocabulary name to

* ``cpu``: Numba source for one scalar (a function of the operand source strings, the operand
  dtypes, the result dtype and the static arguments);
* ``cuda``: ``numba.cuda`` source (``math.*`` and device helpers), for the CUDA backend, or
  None where it has no lowering;
* ``ref``: a pure-Python/NumPy-scalar reference evaluator, the oracle of the codegen tests;
* ``result``: the result-dtype rule; ``kinds``: operand dtype kinds the CPU backend lowers
  (anything else makes the equation fall back to its eager impl).

Templates are parsed once (``parse``) into a small expression tree over ``Arg``/``Const``/
``Op`` nodes, which both the code generators and ``evaluate`` (the reference) walk.
"""

import ast
import functools
import math
from typing import Callable, NamedTuple

import numpy as np

BOOL = np.dtype(bool)


class ScalarOp(NamedTuple):
    nargs: int          # array operands
    nstatic: int        # trailing static arguments (dtypes, ints) after the operands
    cpu: Callable       # (args, in_dtypes, out_dtype, statics) -> source
    cuda: Callable      # same signature, CUDA source
    ref: Callable       # (*numpy scalars, out_dtype=..., statics=...) -> numpy scalar
    result: Callable    # (in_dtypes, statics) -> dtype
    kinds: str = "biufc"
    costly: bool = False  # a transcendental: worth keeping in a buffer over recomputing


def npname(dt):
    """Source name of a NumPy scalar type usable inside njit (``np.float32``)."""
    return f"np.{np.dtype(dt).name}"


def _wrap(src, out):
    # Numba promotes small ints (int32 + int32 -> int64): cast back to keep exact dtypes.
    return f"{npname(out)}({src})" if out.kind in "iu" else src


def _same(dts, st):
    return dts[0]


def _bool(dts, st):
    return BOOL


def _real(dts, st):
    return {np.dtype("complex64"): np.dtype("float32"),
            np.dtype("complex128"): np.dtype("float64")}.get(dts[0], dts[0])


def _complex(dts, st):
    return np.dtype("complex64") if dts[0] == np.float32 else np.dtype("complex128")


def _param_dtype(dts, st):
    return np.dtype(st[0])


def _idx_dtype(dts, st):
    return np.dtype(st[1])


def _ref_np(fn):
    def ref(*xs, out, statics):
        with np.errstate(all="ignore"):
            return np.asarray(fn(*xs)).astype(out)[()]

    return ref


def _cu(src, out):
    # CUDA: results are cast to the exact dtype (math.* and Python-int arithmetic promote)
    return src if out.kind == "b" else f"{npname(out)}({src})"


def _binop(sym, bool_sym=None):
    """An infix operator; ``bool_sym``: the CUDA spelling on booleans (``or`` for ``+``)."""

    def cpu(a, dts, out, st):
        return _wrap(f"({a[0]} {sym} {a[1]})", out)

    def cuda(a, dts, out, st):
        if bool_sym is not None and out.kind == "b":
            return f"({a[0]} {bool_sym} {a[1]})"
        return _cu(f"({a[0]} {sym} {a[1]})", out)

    return cpu, cuda


def _u(cpu_cuda, ref, result=_same, kinds="biufc", nargs=1, nstatic=0):
    cpu, cuda = cpu_cuda
    return ScalarOp(nargs, nstatic, cpu, cuda, ref, result, kinds)


# --- reference helpers (Python semantics of the C-like ops) --------------------------------


def _ref_div(x, y, out, statics):
    if out.kind in "iu":
        if int(y) == 0:
            return out.type(0)
        q = abs(int(x)) // abs(int(y))
        return np.array(q if (int(x) < 0) == (int(y) < 0) else -q).astype(out)[()]
    with np.errstate(all="ignore"):
        return np.asarray(np.divide(x, y)).astype(out)[()]


def _ref_fmod(x, y, out, statics):
    if out.kind in "iu":
        if int(y) == 0:
            return out.type(0)
        r = abs(int(x)) % abs(int(y))
        return np.array(-r if int(x) < 0 else r).astype(out)[()]
    with np.errstate(all="ignore"):
        return np.asarray(np.fmod(x, y)).astype(out)[()]


def _ref_ipow(x, out, statics):
    n = statics[0]
    with np.errstate(all="ignore"):
        if out.kind == "b":
            return x
        acc = out.type(1)
        base = x
        for _ in range(abs(n)):
            acc = out.type(acc * base)
        return out.type(1) / acc if n < 0 and out.kind in "fc" else acc


def _ref_minmax(fn):
    def ref(x, y, out, statics):
        return np.asarray(fn(x, y)).astype(out)[()]

    return ref


def _ref_shift(left):
    def ref(x, y, out, statics):
        bits = out.itemsize * 8
        y = int(y)
        if y < 0 or y >= bits:
            return out.type(-1 if (not left and out.kind == "i" and x < 0) else 0)
        with np.errstate(all="ignore"):
            return (np.left_shift if left else np.right_shift)(x, out.type(y)).astype(out)[()]

    return ref


def _ref_cast(x, out, statics):
    if np.asarray(x).dtype.kind == "c" and out.kind != "c":
        x = np.real(x)
    with np.errstate(all="ignore"):
        return np.asarray(x).astype(out)[()]


def _ref_popcount(x, out, statics):
    return out.type(bin(abs(int(x))).count("1"))


def _ref_erf(x, out, statics):
    return out.type(math.erf(float(x)))


def _ref_lgamma(x, out, statics):
    try:
        return out.type(math.lgamma(float(x)))
    except (ValueError, OverflowError):
        return out.type(np.inf)


def _ref_digamma(x, out, statics):
    from fnx.core.ops import _scalar_special

    return out.type(_scalar_special.digamma(float(x)))


def _ref_erf_inv(x, out, statics):
    from fnx.core.ops import _scalar_special

    return out.type(_scalar_special.erf_inv(float(x)))


def _ref_logistic(x, out, statics):
    with np.errstate(all="ignore"):
        return out.type(1 / (1 + np.exp(-x)))


# --- CPU (Numba) and CUDA (numba.cuda) source of the dtype-dependent ops ----------------------
#
# A ``cuda`` rule returns None where the CUDA backend has no lowering (the fused group is then a
# compile error naming the op). CUDA device helpers (``_idiv``, ``_fmax_nan``, ...) are called by
# name; ``codegen/cuda.py`` emits the ones a kernel uses.


def _float_only(cuda):
    """A CUDA rule for float operands only (complex has no ``math.*`` lowering)."""

    def rule(a, dts, out, st):
        return cuda(a, dts, out, st) if dts[0].kind == "f" else None

    return rule


def _cuda_call(fn):
    """CUDA ``fn(args)`` (a ``math.*`` function or a device helper), cast to the result."""
    return _float_only(lambda a, dts, out, st: _cu(f"{fn}({', '.join(a)})", out))


def _cpu_div(a, dts, out, st):
    if out.kind in "iu":
        return f"{npname(out)}(_rt.{'i' if out.kind == 'i' else 'u'}div({a[0]}, {a[1]}))"
    return f"({a[0]} / {a[1]})"


def _cuda_div(a, dts, out, st):
    if out.kind in "iu":
        return _cu(f"_{'i' if out.kind == 'i' else 'u'}div({a[0]}, {a[1]})", out)
    return _cu(f"({a[0]} / {a[1]})", out)


def _cpu_truediv(a, dts, out, st):
    return f"({a[0]} / {a[1]})"


def _cpu_fmod(a, dts, out, st):
    if out.kind in "iu":
        return f"{npname(out)}(_rt.irem({a[0]}, {a[1]}))"
    return f"np.fmod({a[0]}, {a[1]})"


def _cuda_fmod(a, dts, out, st):
    if out.kind in "iu":
        return _cu(f"_irem({a[0]}, {a[1]})", out)
    return _cu(f"math.fmod({a[0]}, {a[1]})", out)


def _cpu_power(a, dts, out, st):
    return f"{npname(out)}({a[0]} ** {a[1]})"


def _cpu_ipow(a, dts, out, st):
    if out.kind == "b":
        return a[0]
    return f"{npname(out)}(_rt.ipow({a[0]}, {int(st[0])}))"


def _cuda_ipow(a, dts, out, st):
    if out.kind == "b":
        return a[0]
    return _cu(f"_ipow({a[0]}, {int(st[0])})", out)


def _minmax(fn, helper, bool_sym):
    """maximum/minimum: NaN-propagating helpers on floats, Python's max/min on integers."""

    def cpu(a, dts, out, st):
        name = f"_rt.{helper}" if out.kind == "f" else fn
        return _wrap(f"{name}({a[0]}, {a[1]})", out)

    def cuda(a, dts, out, st):
        if out.kind == "b":
            return f"({a[0]} {bool_sym} {a[1]})"
        return _cu(f"{'_' + helper if out.kind == 'f' else fn}({a[0]}, {a[1]})", out)

    return cpu, cuda


def _cpu_logistic(a, dts, out, st):
    if dts[0].kind == "f":
        return f"_vm.vsigmoid({a[0]})"
    one = f"{npname(out)}(1)"
    return f"({one} / ({one} + np.exp(-{a[0]})))"


def _cuda_logistic(a, dts, out, st):
    one = f"{npname(out)}(1.0)"
    return _cu(f"({one} / ({one} + math.exp(-{a[0]})))", out)


def _cpu_sign(a, dts, out, st):
    if out.kind in "iu":  # ints, not bools, are subtracted: NumPy's booleans (a loop-free
        # group runs as plain Python on NumPy scalars, codegen.cpu.host_kernel) refuse it;
        # np.int64, not the int builtin, which would send the group to Numba (a free name)
        return f"{npname(out)}(np.int64({a[0]} > 0) - np.int64({a[0]} < 0))" \
            if out.kind == "i" else \
            f"{npname(out)}({a[0]} > 0)"
    return f"(np.sign({a[0]}) + {npname(out)}(0))"  # + 0 turns sign(-0.0) into +0.0, as NumPy


def _cuda_sign(a, dts, out, st):
    if out.kind == "f":
        return _cu(f"_fsign({a[0]})", out)
    if out.kind == "i":  # ints, not bools, are subtracted (NumPy booleans, as the simulator
        return _cu(f"(int({a[0]} > 0) - int({a[0]} < 0))", out)   # runs them, refuse it)
    return _cu(f"({a[0]} > 0)", out)


def _cpu_abs(a, dts, out, st):
    return _wrap(f"abs({a[0]})", out) if dts[0].kind != "c" else f"{npname(out)}(abs({a[0]}))"


def _cpu_real(a, dts, out, st):
    return f"{a[0]}.real" if dts[0].kind == "c" else a[0]


def _cpu_imag(a, dts, out, st):
    return f"{a[0]}.imag" if dts[0].kind == "c" else f"{npname(out)}(0)"


def _cpu_conj(a, dts, out, st):
    return f"np.conj({a[0]})" if dts[0].kind == "c" else a[0]


def _real_only(cpu):
    """The CUDA rule of real/imag/conj: the CPU spelling for real operands, none for complex."""

    def cuda(a, dts, out, st):
        return cpu(a, dts, out, st) if dts[0].kind != "c" else None

    return cuda


def _cpu_complex(a, dts, out, st):
    return f"{npname(out)}(complex({a[0]}, {a[1]}))"


def _pred(fn, int_value):
    """isfinite/isnan/isinf: constant on integers and booleans."""

    def cpu(a, dts, out, st):
        return int_value if dts[0].kind in "biu" else f"np.{fn}({a[0]})"

    def cuda(a, dts, out, st):
        return int_value if dts[0].kind in "biu" else f"math.{fn}({a[0]})"

    return cpu, cuda


def _bnot(cast):
    def rule(a, dts, out, st):
        return f"(not {a[0]})" if dts[0].kind == "b" else cast(f"(~{a[0]})", out)

    return rule


def _shift(left):
    fn = "shl" if left else "shr"

    def cpu(a, dts, out, st):
        # branch-free, not _rt's helper with its range test: Numba's SSA and liveness passes
        # grow with basic blocks, and the Threefry kernel's 40 rotations made 80 of them
        # (1.7 s of cold compile). A count outside [0, bits) is clamped to bits - 1 (as an
        # unsigned value, a negative count is huge): an arithmetic right shift by bits - 1
        # is the sign fill such a count gives; a left or logical shift is masked to 0.
        # (CUDA kernels keep _rt's shl/shr source as device functions.)
        x, y, bits = a[0], a[1], out.itemsize * 8
        count = f"np.int64(min(np.uint64({y}), np.uint64({bits - 1})))"
        if not left and out.kind == "i":
            return f"{npname(out)}(({x}) >> {count})"
        inside = f"np.uint64({y}) < np.uint64({bits})"
        return f"{npname(out)}((({x}) {'<<' if left else '>>'} {count}) * ({inside}))"

    def cuda(a, dts, out, st):
        return _cu(f"_{fn}({a[0]}, {a[1]}, {out.itemsize * 8})", out)

    return cpu, cuda


def _cpu_popcount(a, dts, out, st):
    return f"{npname(out)}(_rt.popcount({a[0]}))"


def _where(a, dts, out, st):
    return f"({a[1]} if {a[0]} else {a[2]})"


def _cpu_cast(a, dts, out, st):
    src = a[0]
    if dts[0].kind == "c" and out.kind != "c":
        src = f"{src}.real"
    if out.kind == "b":
        return f"({src} != 0)"
    return f"{npname(out)}({src})"


def _cuda_cast(a, dts, out, st):
    if dts[0].kind == "c":
        return None
    return f"({a[0]} != 0)" if out.kind == "b" else _cu(a[0], out)


def _cpu_bitcast(a, dts, out, st):
    if out == dts[0]:
        return a[0]
    return f"_rt.bitcast({a[0]}, {npname(out)})"


def _transcendental(np_name, vec=None, cuda="math", kinds="fc", result=_same, ref=None,
                    vec_dtypes="f", costly=True):
    """A float math function: vecmath when it has one for the dtype, NumPy otherwise (CPU);
    ``cuda``: its CUDA function (``math.<np name>`` by default, a device helper ``_name``, or
    a rule). ``vec_dtypes`` is 'f' (float32 and float64) or 'f4' (float32 only); ``costly``:
    not a single instruction (rounding, sqrt)."""

    def cpu(a, dts, out, st):
        if vec is not None and dts[0].kind == "f" and (
                vec_dtypes == "f" or dts[0].itemsize == 4):
            return f"_vm.{vec}({a[0]})"
        return f"{npname(out)}({np_name}({a[0]}))"

    if cuda == "math":
        cuda = "math." + np_name.split(".")[-1]
    fn = getattr(np, np_name.split(".")[-1], None)
    return ScalarOp(1, 0, cpu, _cuda_call(cuda) if isinstance(cuda, str) else cuda,
                    ref or _ref_np(fn), result, kinds, costly)


def _no_cuda(a, dts, out, st):
    return None


OPS = {
    # operators (template syntax)
    "+": _u(_binop("+", "or"), _ref_np(np.add), nargs=2, kinds="biufc"),
    "-": _u(_binop("-"), _ref_np(np.subtract), nargs=2, kinds="iufc"),
    "*": _u(_binop("*", "and"), _ref_np(np.multiply), nargs=2, kinds="biufc"),
    "/": ScalarOp(2, 0, _cpu_truediv, _cuda_div, _ref_np(np.true_divide), _same, "fc"),
    "%": _u(_binop("%"), _ref_np(np.remainder), nargs=2, kinds="iuf"),
    "&": _u(_binop("&", "and"), _ref_np(np.bitwise_and), nargs=2, kinds="biu"),
    "|": _u(_binop("|", "or"), _ref_np(np.bitwise_or), nargs=2, kinds="biu"),
    "^": _u(_binop("^"), _ref_np(np.bitwise_xor), nargs=2, kinds="biu"),
    "<": _u(_binop("<"), _ref_np(np.less), _bool, "biuf", nargs=2),
    "<=": _u(_binop("<="), _ref_np(np.less_equal), _bool, "biuf", nargs=2),
    ">": _u(_binop(">"), _ref_np(np.greater), _bool, "biuf", nargs=2),
    ">=": _u(_binop(">="), _ref_np(np.greater_equal), _bool, "biuf", nargs=2),
    "==": _u(_binop("=="), _ref_np(np.equal), _bool, nargs=2),
    "!=": _u(_binop("!="), _ref_np(np.not_equal), _bool, nargs=2),
    "neg": ScalarOp(1, 0, lambda a, d, o, s: _wrap(f"(-{a[0]})", o),
                    lambda a, d, o, s: _cu(f"(-{a[0]})", o), _ref_np(np.negative), _same, "iufc"),
    # functions
    "div": ScalarOp(2, 0, _cpu_div, _cuda_div, _ref_div, _same, "iufc"),
    "fmod": ScalarOp(2, 0, _cpu_fmod, _cuda_fmod, _ref_fmod, _same, "iuf"),
    "power": ScalarOp(2, 0, _cpu_power, _cuda_call("math.pow"), _ref_np(np.power), _same, "fc",
                      True),
    "ipow": ScalarOp(1, 1, _cpu_ipow, _cuda_ipow, _ref_ipow, _same, "biufc"),
    "maximum": _u(_minmax("max", "fmax_nan", "or"), _ref_minmax(np.maximum), nargs=2,
                  kinds="biuf"),
    "minimum": _u(_minmax("min", "fmin_nan", "and"), _ref_minmax(np.minimum), nargs=2,
                  kinds="biuf"),
    "arctan2": ScalarOp(2, 0, lambda a, d, o, s: f"{npname(o)}(np.arctan2({a[0]}, {a[1]}))",
                        _cuda_call("math.atan2"), _ref_np(np.arctan2), _same, "f"),
    "nextafter": ScalarOp(2, 0, lambda a, d, o, s: f"{npname(o)}(np.nextafter({a[0]}, {a[1]}))",
                          _no_cuda, _ref_np(np.nextafter), _same, "f"),
    "copysign": ScalarOp(2, 0, lambda a, d, o, s: f"{npname(o)}(np.copysign({a[0]}, {a[1]}))",
                         _cuda_call("math.copysign"), _ref_np(np.copysign), _same, "f"),
    "exp": _transcendental("np.exp", "vexp"),
    "exp2": _transcendental("np.exp2", cuda=_float_only(
        lambda a, d, o, s: _cu(f"math.pow({npname(o)}(2.0), {a[0]})", o))),
    "log": _transcendental("np.log", "vlog"),
    "expm1": _transcendental("np.expm1", "vexpm1", kinds="f"),
    "log1p": _transcendental("np.log1p", "vlog1p", kinds="f"),
    "tanh": _transcendental("np.tanh", "vtanh"),
    "logistic": ScalarOp(1, 0, _cpu_logistic, _float_only(_cuda_logistic), _ref_logistic, _same,
                         "fc", True),
    # float64 vsin/vcos give NaN beyond |x| > 2**45 (no table-based reduction): libm keeps
    # jit equal to eager there
    "sin": _transcendental("np.sin", "vsin", vec_dtypes="f4"),
    "cos": _transcendental("np.cos", "vcos", vec_dtypes="f4"),
    "tan": _transcendental("np.tan"),
    "arcsin": _transcendental("np.arcsin", cuda="math.asin"),
    "arccos": _transcendental("np.arccos", cuda="math.acos"),
    "arctan": _transcendental("np.arctan", cuda="math.atan"),
    "sinh": _transcendental("np.sinh"),
    "cosh": _transcendental("np.cosh"),
    "arcsinh": _transcendental("np.arcsinh", cuda="math.asinh"),
    "arccosh": _transcendental("np.arccosh", cuda="math.acosh"),
    "arctanh": _transcendental("np.arctanh", cuda="math.atanh"),
    "sqrt": _transcendental("np.sqrt", costly=False),
    "cbrt": _transcendental("np.cbrt", kinds="f", cuda=_float_only(
        lambda a, d, o, s: _cu(f"math.copysign(math.pow(abs({a[0]}), 1.0 / 3.0), {a[0]})", o))),
    "erf": _transcendental("math.erf", "verf", kinds="f", ref=_ref_erf),
    "erf_inv": _transcendental("_rt.erf_inv", kinds="f", cuda="_erf_inv", ref=_ref_erf_inv),
    "lgamma": _transcendental("math.lgamma", kinds="f", ref=_ref_lgamma),
    "digamma": _transcendental("_rt.digamma", kinds="f", cuda="_digamma", ref=_ref_digamma),
    "sign": ScalarOp(1, 0, _cpu_sign, _cuda_sign, _ref_np(np.sign), _same, "iuf"),
    # math.floor/ceil/trunc return int64 in Numba CUDA (Python semantics): device helpers
    "floor": _transcendental("np.floor", kinds="f", cuda="_ffloor", costly=False),
    "ceil": _transcendental("np.ceil", kinds="f", cuda="_fceil", costly=False),
    "rint": _transcendental("np.rint", kinds="f", cuda="_rint", costly=False),
    "trunc": _transcendental("np.trunc", kinds="f", cuda="_ftrunc", costly=False),
    "abs": ScalarOp(1, 0, _cpu_abs, _real_only(lambda a, d, o, s: _cu(f"abs({a[0]})", o)),
                    _ref_np(np.abs), _real, "iufc"),
    "real": ScalarOp(1, 0, _cpu_real, _real_only(_cpu_real), _ref_np(np.real), _real),
    "imag": ScalarOp(1, 0, _cpu_imag, _real_only(_cpu_imag), _ref_np(np.imag), _real),
    "conj": ScalarOp(1, 0, _cpu_conj, _real_only(_cpu_conj), _ref_np(np.conjugate), _same),
    "complex": ScalarOp(2, 0, _cpu_complex, _no_cuda, _ref_np(lambda x, y: x + 1j * y),
                        _complex, "f"),
    "isfinite": _u(_pred("isfinite", "True"), _ref_np(np.isfinite), _bool),
    "isnan": _u(_pred("isnan", "False"), _ref_np(np.isnan), _bool),
    "isinf": _u(_pred("isinf", "False"), _ref_np(np.isinf), _bool),
    "bnot": ScalarOp(1, 0, _bnot(_wrap), _bnot(_cu),
                     _ref_np(lambda x: np.logical_not(x) if x.dtype == BOOL else np.invert(x)),
                     _same, "biu"),
    "shl": _u(_shift(True), _ref_shift(True), nargs=2, kinds="iu"),
    "shr": _u(_shift(False), _ref_shift(False), nargs=2, kinds="iu"),
    "popcount": ScalarOp(1, 0, _cpu_popcount, lambda a, d, o, s: _cu(f"_popcount({a[0]})", o),
                         _ref_popcount, _same, "iu"),
    "where": ScalarOp(3, 0, _where, _where, lambda c, x, y, out, statics: x if c else y,
                      lambda dts, st: dts[1]),
    "cast": ScalarOp(1, 1, _cpu_cast, _cuda_cast, _ref_cast, _param_dtype),
    "bitcast": ScalarOp(1, 1, _cpu_bitcast, lambda a, d, o, s: a[0] if o == d[0] else None,
                        lambda x, out, statics: np.asarray(x).view(out)[()], _param_dtype,
                        "iuf"),
    # index(dim): the loop index along a domain axis; code generators substitute it.
    "index": ScalarOp(0, 2, lambda a, d, o, s: f"{npname(o)}({a[0]})",
                      lambda a, d, o, s: a[0], None, _idx_dtype),
}

# Reducers (``prim.reducer[0]``) -> the vocabulary op that folds an element into the
# accumulator; both code generators spell combines through it.
REDUCER_OPS = {"add": "+", "mul": "*", "max": "maximum", "min": "minimum", "and": "&",
               "or": "|"}

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Mod: "%",
           ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^"}
_CMPOPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


class Arg(NamedTuple):
    index: int


class Const(NamedTuple):
    value: object


class Static(NamedTuple):
    value: object


class Op(NamedTuple):
    name: str
    children: tuple  # Arg / Const / Op, then Static


@functools.lru_cache(maxsize=None)
def _parse_template(template):
    src = template
    for token in set(__import__("re").findall(r"\{(\w+)\}", template)):
        src = src.replace("{" + token + "}", f"_p_{token}")
    return ast.parse(src, mode="eval").body


def parse(template, params):
    """Parse a ``scalar_expr`` template into an ``Op`` tree (params become ``Static``)."""
    return _convert(_parse_template(template), params)


def _convert(node, params):
    if isinstance(node, ast.Name) and node.id.startswith("_p_"):
        key = node.id[3:]
        if key.isdigit():
            return Arg(int(key))
        return Static(params[key])
    if isinstance(node, ast.Constant):
        return Const(node.value)
    if isinstance(node, ast.BinOp):
        return Op(_BINOPS[type(node.op)], (_convert(node.left, params),
                                          _convert(node.right, params)))
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return Op(_CMPOPS[type(node.ops[0])], (_convert(node.left, params),
                                              _convert(node.comparators[0], params)))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _convert(node.operand, params)
        if isinstance(inner, Const):
            return Const(-inner.value)
        return Op("neg", (inner,))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in OPS:
        return Op(node.func.id, tuple(_convert(a, params) for a in node.args))
    raise ValueError(f"scalar template: unsupported syntax {ast.dump(node)}")


def split_children(op):
    entry = OPS[op.name]
    kids = op.children
    return kids[:entry.nargs], [k.value for k in kids[entry.nargs:]]


def infer(op, arg_dtypes):
    """Annotate an ``Op`` tree with dtypes: returns ``(dtype, {id(node): dtype})``."""
    types = {}

    def go(node, hint):
        if isinstance(node, Arg):
            return arg_dtypes[node.index]
        if isinstance(node, Const):
            dt = np.dtype(hint) if hint is not None else np.asarray(node.value).dtype
            types[id(node)] = dt
            return dt
        kids, statics = split_children(node)
        dts = [None if isinstance(k, Const) else go(k, None) for k in kids]
        # weak constants take the dtype of the (last) array operand beside them
        known = [d for d in dts if d is not None]
        h = known[-1] if known else hint
        dts = [go(k, h) if d is None else d for k, d in zip(kids, dts, strict=True)]
        out = np.dtype(OPS[node.name].result(dts, statics))
        types[id(node)] = out
        types[("in", id(node))] = dts
        return out

    return go(op, None), types


def evaluate(template, params, args, index=None):
    """Reference: evaluate a template on NumPy scalars (``index``: iota values by axis)."""
    tree = parse(template, params)
    arg_dtypes = [np.asarray(a).dtype for a in args]
    _, types = infer(tree, arg_dtypes)

    def go(node):
        if isinstance(node, Arg):
            return args[node.index]
        if isinstance(node, Const):
            return np.asarray(node.value).astype(types[id(node)])[()]
        kids, statics = split_children(node)
        out = types[id(node)]
        if node.name == "index":
            return out.type(index[statics[0]])
        return OPS[node.name].ref(*[go(k) for k in kids], out=out, statics=statics)

    return go(tree)
