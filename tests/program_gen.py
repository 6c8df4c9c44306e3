"""Random array programs for the property-based tests in ``tests/test_programs.py``.

A program is built as data by a :class:`Builder` that draws one operation at a time over the
values in scope. Each value records its shape, dtype and a conservative interval holding all
its elements, so every generated program is valid by construction: shapes agree, ``log`` and
``sqrt`` see positive arguments, nothing overflows, and no ``max``/``argmax`` reduces an empty
axis (NumPy raises there). Result dtypes are never predicted by a table of our own: they are
probed once by running the same fnx.numpy expression eagerly on one-element arrays, so the
generator follows whatever promotion rules eager fnx has (eager is the oracle of the tests).

The program is rendered as a self-contained script (``f``, ``make_args(rng)``, ``args``); its
``str`` is that script, which the tests attach as a hypothesis note, so a failing example
prints code a person can paste:

    >>> print(program)                                          # doctest: +SKIP
    import numpy as np
    import fnx
    import fnx.numpy as fnp
    from fnx.scipy.special import logsumexp

    def f(x1):
        v2 = fnp.sum(x1, axis=0, keepdims=True)
        v3 = x1 - v2
        return v3
    ...

``smooth=True`` generates programs that are differentiable everywhere on their input domain
(no comparisons of differentiable values, no abs/max/argmax/int casts of them, positive
arguments bounded away from zero), for checks against finite differences.
"""

import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
from hypothesis import strategies as st

FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
DTYPES = FLOATS + INTS + ("bool",)

# Bounds on the magnitude of any generated value: float32 keeps ~4 significant digits of
# headroom for fused-vs-eager rounding differences; integers never approach int32 overflow.
FLOAT_BOUND = 1e4
INT_BOUND = 2 ** 20
# Positive arguments (log, sqrt, fractional powers, denominators) stay this far from zero so
# derivatives and finite differences stay well conditioned.
POSITIVE = 0.25

# Generator features switched off because they hit a known, not yet fixed bug (issue 7).
# Each entry names the bug; delete it once the bug is fixed and the xfail regression case in
# tests/test_programs.py passes.
KNOWN_BUGS = {}

HEADER = ("import numpy as np\nimport fnx\nimport fnx.numpy as fnp\n"
          "from fnx.scipy.special import logsumexp\n")

_NS = {}


def _namespace():
    if not _NS:
        exec(HEADER, _NS)  # noqa: S102  (our own fixed header)
    return _NS


_PROBES = {}


def probe_dtype(template, *operands):
    """The dtype eager fnx gives ``template`` (``{0}``, ``{1}`` ... for the operands).

    ``operands`` are dtype names (one-element arrays of that dtype) or literal source text
    (Python/NumPy scalars, kept as written so weak typing is probed too). Returns None when
    eager fnx rejects the combination; the caller then draws something else.
    """
    key = (template, operands)
    if key not in _PROBES:
        ns = dict(_namespace())
        fnp = ns["fnp"]
        ops = [fnp.ones((1,), dtype=o) if o in DTYPES else eval(o, ns) for o in operands]  # noqa: S307
        ns["_ops"] = ops
        try:
            out = eval(template.format(*[f"_ops[{i}]" for i in range(len(ops))]), ns)  # noqa: S307
            _PROBES[key] = str(out.dtype)
        except Exception:  # noqa: BLE001  (a rejected combination is simply not generated)
            _PROBES[key] = None
    return _PROBES[key]


def kind(dtype):
    return np.dtype(dtype).kind


@dataclass(frozen=True)
class Val:
    """A value in scope: an array variable or a scalar literal (``literal=True``)."""

    name: str
    shape: tuple
    dtype: str
    lo: float
    hi: float
    diff: bool = False       # depends on a differentiable (float) argument
    literal: bool = False

    @property
    def kind(self):
        return kind(self.dtype)

    @property
    def probe(self):
        return self.name if self.literal else self.dtype

    @property
    def mag(self):
        return max(abs(self.lo), abs(self.hi))

    @property
    def size(self):
        return math.prod(self.shape)


@dataclass
class Config:
    dtypes: tuple = DTYPES
    smooth: bool = False
    min_ops: int = 1
    max_ops: int = 6
    control_flow: bool = True
    scalar_args: bool = True
    allow_empty: bool = True
    specials: bool = False   # float inputs may hold nan, +-inf and -0.0
    while_loops: bool = False   # traced trip counts (no reverse mode: not for grad checks)
    big_dims: bool = True    # dims of 17 and 33 besides 0-5 (off for the CUDA simulator)
    avoid: dict = field(default_factory=lambda: dict(KNOWN_BUGS))


def _bounded(lo, hi, dtype):
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return False
    limit = FLOAT_BOUND if kind(dtype) == "f" else INT_BOUND
    return max(abs(lo), abs(hi)) <= limit


def _mul_iv(a, b):
    ps = [a[0] * b[0], a[0] * b[1], a[1] * b[0], a[1] * b[1]]
    return min(ps), max(ps)


def _hull(*ivs):
    return min(i[0] for i in ivs), max(i[1] for i in ivs)


def _bshape(*shapes):
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        return None


def _shape_of(fn, *shapes):
    """Result shape of a NumPy expression on zero arrays of ``shapes`` (None if invalid)."""
    try:
        return tuple(fn(*[np.zeros(s) for s in shapes]).shape)
    except (ValueError, IndexError, TypeError):
        return None


LITERALS = {
    "f": ("0.5", "2.0", "-1.5", "np.float32(0.25)", "np.float64(1.5)"),
    "i": ("2", "3", "-1", "np.int32(2)", "np.int64(3)"),
    "b": ("True",),
}


def literal_val(text):
    v = eval(text, _namespace())  # noqa: S307
    dt = {bool: "bool", int: "int64", float: "float64"}.get(type(v), str(np.asarray(v).dtype))
    return Val(text, (), dt, float(v), float(v), literal=True)


class Builder:
    """Draws a program (or a control-flow body) one operation at a time."""

    def __init__(self, draw, cfg, root=None, scope=(), indent=1, depth=0):
        self.draw, self.cfg = draw, cfg
        self.root = root or self
        self.scope = list(scope)
        self.lines = []
        self.indent, self.depth = indent, depth
        if root is None:
            self.inputs = []     # (Val, source of its make_args expression)
            self.counter = 0
            self.precision = "float64"   # float32 once any value is float32
            self.used = set()            # names some expression reads
            # Once an input holds nan/inf, no float is cast to an integer (undefined in C and
            # NumPy alike): comparisons turn floats into integers instead.
            self.has_special = False

    # --- drawing helpers ------------------------------------------------------------------

    def choice(self, seq):
        return self.draw(st.sampled_from(list(seq)))

    def flag(self, p):
        """True with probability ~p; shrinks to False."""
        return self.draw(st.integers(0, 99)) >= round(100 * (1 - p))

    def integer(self, lo, hi):
        return self.draw(st.integers(lo, hi))

    def pick(self, pred=lambda v: True, literals=False):
        """A value in scope satisfying ``pred`` (recent values first), or None."""
        cands = [v for v in self.scope if pred(v) and (literals or not v.literal)]
        if not cands:
            return None
        return cands[-1 - self.integer(0, len(cands) - 1)]

    def fresh(self, prefix="v"):
        self.root.counter += 1
        return f"{prefix}{self.root.counter}"

    def line(self, text):
        self.lines.append("    " * self.indent + text)

    def emit(self, expr, shape, dtype, lo, hi, diff):
        name = self.fresh()
        self.line(f"{name} = {expr}")
        self.note_dtype(dtype)
        self.root.used.update(re.findall(r"\b[vxac]\d+\b", expr))
        v = Val(name, tuple(shape), dtype, float(lo), float(hi), diff)
        self.scope.append(v)
        return v

    def note_dtype(self, dtype):
        if dtype == "float32":
            self.root.precision = "float32"

    # --- inputs and constants ---------------------------------------------------------------

    def new_input(self, shape, dtype, lo=-2.0, hi=2.0):
        root = self.root
        name = root.fresh("x")
        shape = tuple(shape)
        # Sometimes a transposed (non-contiguous) buffer, as a NumPy view handed to fnx.
        transposed = len(shape) >= 2 and self.flag(0.15)
        gen_shape, t = (shape[::-1], ".T") if transposed else (shape, "")
        if kind(dtype) == "f" and self.cfg.specials and self.flag(0.3):
            special = self.choice(("np.nan", "np.inf", "-np.inf", "-0.0"))
            self.root.has_special = True
            src = (f"fnp.asarray(np.where(rng.random({gen_shape}) < 0.3, {special}, "
                   f'rng.uniform({lo}, {hi}, {gen_shape})){t}, dtype="{dtype}")')
        elif kind(dtype) == "f":
            src = f'fnp.asarray(rng.uniform({lo}, {hi}, {gen_shape}){t}, dtype="{dtype}")'
        elif kind(dtype) == "i":
            lo, hi = int(math.ceil(lo)), int(math.floor(hi))
            src = f'fnp.asarray(rng.integers({lo}, {hi + 1}, {gen_shape}){t}, dtype="{dtype}")'
        else:
            lo, hi = 0, 1
            src = f"fnp.asarray(rng.random({gen_shape}){t} < 0.5)"
        v = Val(name, shape, dtype, float(lo), float(hi), diff=kind(dtype) == "f")
        self.note_dtype(dtype)
        root.inputs.append((v, src))
        root.scope.append(v)
        if self is not root:
            self.scope.append(v)
        return v

    def new_scalar_arg(self):
        """A Python or NumPy scalar passed as an argument (weakly typed if Python's), drawn
        anew by each ``make_args`` call so a second jitted call sees a new value.

        It is in scope as a literal: only ever an operand of a binary op or ``where``, as
        users pass a learning rate or a scale."""
        src, probe, lo, hi = self.choice((
            ("float(rng.uniform(0.5, 2.0))", "1.5", 0.5, 2.0),
            ("int(rng.integers(1, 4))", "2", 1, 3),
            ("np.float32(rng.uniform(0.5, 2.0))", "np.float32(0.75)", 0.5, 2.0),
            ("np.int32(rng.integers(1, 4))", "np.int32(3)", 1, 3),
            ("np.float64(rng.uniform(0.5, 2.0))", "np.float64(0.75)", 0.5, 2.0)))
        root = self.root
        v = replace(literal_val(probe), name=root.fresh("x"), lo=lo, hi=hi)
        root.inputs.append((v, src))
        root.scope.append(v)
        root.scalar_probe[v.name] = probe
        return v

    def probe(self, template, *vals):
        ops = []
        for v in vals:
            if isinstance(v, Val):
                ops.append(self.root.scalar_probe.get(v.name, v.probe))
            else:
                ops.append(v)
        return probe_dtype(template, *ops)

    def smooth_ok(self, *vals):
        """In smooth programs, non-smooth ops may only touch non-differentiable values."""
        return not self.cfg.smooth or not any(v.diff for v in vals)

    def dtype_allowed(self, dtype):
        return dtype is not None and dtype in self.cfg.dtypes

    # --- the program ------------------------------------------------------------------------

    def build_program(self):
        self.scalar_probe = {}
        self.base = self.draw_shape()
        first = self.float_dtype()
        self.new_input(self.base, first)
        for _ in range(self.integer(0, 2)):
            self.new_input(self.variant(self.base), self.choice(self.cfg.dtypes))
        if self.cfg.scalar_args and self.flag(0.2):
            self.new_scalar_arg()
        self.gen_ops(self.integer(self.cfg.min_ops, self.cfg.max_ops))
        outs = self.choose_outputs()
        return self.render(outs)

    def draw_shape(self):
        rank = self.integer(0, 3)
        dims = []
        for _ in range(rank):
            d = self.choice((3, 2, 1, 4, 0, 5, 17) if self.cfg.big_dims else (3, 2, 1, 4, 0))
            if d == 0 and not (self.cfg.allow_empty and self.flag(0.3)):
                d = 2
            if d == 17 and self.flag(0.5):
                d = 33     # longer than a SIMD vector: remainder loops of the kernels
            dims.append(d)
        return tuple(dims)

    def variant(self, shape):
        """A shape that broadcasts against ``shape``."""
        shape = list(shape)
        if shape and self.flag(0.3):
            shape = shape[self.integer(1, len(shape)):]
        return tuple(1 if self.flag(0.2) else d for d in shape)

    def gen_ops(self, n):
        for _ in range(n):
            for _ in range(6):
                op = self.choice(OPS)
                if getattr(self, "op_" + op)():
                    break
            else:
                self.op_squash()

    def choose_outputs(self):
        vals = [v for v in self.scope if not v.literal]
        # Every value nothing reads is an output (jit would otherwise drop it as dead code).
        outs = [v for v in vals if v.name not in self.used and v.name.startswith("v")][-4:]
        outs = outs or [vals[-1]]
        for _ in range(self.integer(0, 1)):
            v = self.pick()
            if v not in outs or self.flag(0.2):   # the same value twice: two output buffers
                outs.append(v)
        if not any(v.kind == "f" for v in outs):
            floats = [v for v in vals if v.kind == "f"]
            if floats:
                outs.append(floats[-1])
        return outs

    def render(self, outs):
        params = ", ".join(v.name for v, _ in self.inputs)
        if len(outs) == 1:
            ret = outs[0].name if self.flag(0.5) else f"({outs[0].name},)"
        else:
            ret = ", ".join(v.name for v in outs)
        body = "\n".join(self.lines)
        args = "\n".join(f"    {v.name} = {src}" for v, src in self.inputs)
        names = params + ("," if len(self.inputs) == 1 else "")
        return (f"{HEADER}\n\ndef f({params}):\n{body}\n    return {ret}\n\n\n"
                f"def make_args(rng):\n{args}\n    return {names}\n\n\n"
                f"args = make_args(np.random.default_rng(0))\n")

    # --- elementwise ----------------------------------------------------------------------

    def op_squash(self):
        """Always applicable: tanh/sin of some value (casting ints and bools)."""
        v = self.pick(lambda v: v.kind in "fi") or self.pick()
        fn = self.choice(("tanh", "sin"))
        if v.kind == "b" or not self.dtype_allowed(self.probe(f"fnp.{fn}({{0}})", v)):
            ft = self.float_dtype()
            return self.emit(f"fnp.{fn}({v.name}.astype('{ft}'))", v.shape, ft, -1, 1, False)
        return self.emit(f"fnp.{fn}({v.name})", v.shape, self.probe(f"fnp.{fn}({{0}})", v),
                         -1, 1, v.diff)

    def float_dtype(self):
        return self.choice([d for d in self.cfg.dtypes if kind(d) == "f"])

    def op_unary(self):
        v = self.pick(lambda v: v.kind in "fi")
        if v is None:
            return False
        fn = self.choice(("tanh", "exp", "log", "sin", "sqrt", "neg", "square", "pow", "abs",
                          "cos", "floor", "sign", "clip"))
        lo, hi, m = v.lo, v.hi, v.mag
        pos = lo >= POSITIVE
        smooth_pos = f"{v.name} * {v.name} + 1.0"
        pos_iv = (1.0 + (0 if lo <= 0 <= hi else min(lo * lo, hi * hi)), 1.0 + m * m)
        if fn == "tanh":
            expr, iv = f"fnp.tanh({v.name})", (math.tanh(lo), math.tanh(hi))
        elif fn in ("sin", "cos"):
            expr, iv = f"fnp.{fn}({v.name})", (-1, 1)
        elif fn == "exp":
            if hi > 3:
                return False
            expr, iv = f"fnp.exp({v.name})", (math.exp(lo), math.exp(hi))
        elif fn in ("log", "sqrt"):
            f_ = math.log if fn == "log" else math.sqrt
            if pos:
                expr, iv = f"fnp.{fn}({v.name})", (f_(lo), f_(hi))
            elif self.cfg.smooth or self.flag(0.5):
                expr, iv = f"fnp.{fn}({smooth_pos})", (f_(pos_iv[0]), f_(pos_iv[1]))
            elif fn == "log":
                expr, iv = f"fnp.log(fnp.abs({v.name}) + 0.5)", (math.log(0.5), math.log(m + 0.5))
            else:
                expr, iv = f"fnp.sqrt(fnp.abs({v.name}))", (0, math.sqrt(m))
        elif fn == "neg":
            expr, iv = self.choice((f"-{v.name}", f"fnp.negative({v.name})")), (-hi, -lo)
        elif fn == "square":
            sq = (0 if lo <= 0 <= hi else min(lo * lo, hi * hi), m * m)
            expr, iv = self.choice((f"fnp.square({v.name})", f"{v.name} * {v.name}")), sq
        elif fn == "pow":
            p = self.choice(("2", "3", "0.5", "-1.0", "1.5"))
            if p in ("0.5", "-1.0", "1.5"):
                if not pos or (p == "-1.0" and v.kind == "i"):
                    return False
                e = float(p)
                iv = _hull((lo ** e, lo ** e), (hi ** e, hi ** e))
            else:
                e = int(p)
                iv = (0 if e == 2 and lo <= 0 <= hi else min(lo ** e, hi ** e),
                      max(lo ** e, hi ** e, 0 if e == 2 else hi ** e))
            expr = self.choice((f"{v.name} ** {p}", f"fnp.power({v.name}, {p})"))
        elif not self.smooth_ok(v):
            return False
        elif fn == "floor":
            # Scaled so that values that saturate at an integer (tanh -> 1) sit away from the
            # steps, where float32 rounding differences between jit and eager would show.
            expr, iv = self.choice((f"fnp.floor({v.name} * 3.7)", f"fnp.round({v.name} * 3.7)")
                                   ), (math.floor(3.7 * lo), math.ceil(3.7 * hi))
        elif fn == "sign":
            expr, iv = f"fnp.sign({v.name})", (-1, 1)
        elif fn == "clip":
            expr, iv = f"fnp.clip({v.name}, -1, 1)", (max(-1, min(lo, 1)), min(1, max(hi, -1)))
        else:  # abs
            expr, iv = f"fnp.abs({v.name})", (0 if lo <= 0 <= hi else min(abs(lo), abs(hi)), m)
        dt = self.probe(expr.replace(v.name, "{0}"), v)
        if not self.dtype_allowed(dt) or not _bounded(*iv, dt):
            return False
        return self.emit(expr, v.shape, dt, *iv, v.diff)

    def pick_partner(self, a, kinds="fib", literal_p=0.3):
        """A value broadcasting against ``a`` (or a scalar literal or scalar argument)."""
        if self.flag(literal_p):
            arg = self.pick(lambda v: v.literal and v.kind in kinds, literals=True)
            if arg is not None and self.flag(0.5):
                return arg
            return literal_val(self.choice(LITERALS[self.choice([k for k in kinds if k != "b"]
                                                                 or ["b"])]))
        return self.pick(lambda v: v.kind in kinds and _bshape(a.shape, v.shape) is not None)

    def op_binary(self):
        a = self.pick(lambda v: v.kind in "fib")
        if a is None:
            return False
        b = self.pick_partner(a)
        if b is None:
            return False
        if self.flag(0.3):
            a, b = b, a          # literal on the left: exercises the reflected operators
        return bool(self.binary(a, b, self.choice(("add", "mul", "sub", "div", "maximum",
                                                   "minimum", "floordiv", "mod"))))

    def binary(self, a, b, op):
        shape = _bshape(a.shape, b.shape)
        if a.kind == "b" and b.kind == "b":
            if op != "add" and op != "mul" or "bool_arith" in self.cfg.avoid:
                return None
        ia, ib = (a.lo, a.hi), (b.lo, b.hi)
        sym = {"add": "+", "sub": "-", "mul": "*", "div": "/", "floordiv": "//", "mod": "%"}
        bexpr = b.name
        if op == "add":
            iv = (ia[0] + ib[0], ia[1] + ib[1])
        elif op == "sub":
            if a.kind == "b" and b.kind == "b":
                return None
            iv = (ia[0] - ib[1], ia[1] - ib[0])
        elif op == "mul":
            iv = _mul_iv(ia, ib)
        elif op == "div":
            if b.lo >= POSITIVE:
                inv = (1 / b.hi, 1 / b.lo)
            elif b.literal and b.lo != 0:
                inv = (1 / b.lo, 1 / b.lo)
            elif b.kind == "b":
                bexpr, inv = f"({b.name} + 1.0)", (0.5, 1.0)
            elif self.cfg.smooth or self.flag(0.5):
                bexpr = f"({b.name} * {b.name} + 1.0)"
                inv = (1 / (1 + b.mag ** 2), 1.0)
            else:
                bexpr = f"(fnp.abs({b.name}) + 1.0)"
                inv = (1 / (1 + b.mag), 1.0)
            iv = _mul_iv(ia, inv)
        elif op in ("maximum", "minimum"):
            if not self.smooth_ok(a, b):
                return None
            f_ = max if op == "maximum" else min
            iv = (f_(ia[0], ib[0]), f_(ia[1], ib[1]))
        else:  # floordiv / mod: integers with a positive divisor, or float mod (non-smooth)
            if not self.smooth_ok(a, b) or b.lo < 1 or a.kind == "b" or b.kind == "b":
                return None
            if (a.kind == "f" or b.kind == "f") and ("float_mod" in self.cfg.avoid
                                                     or op == "floordiv"):
                return None
            iv = (-a.mag, a.mag) if op == "floordiv" else (min(0, -b.mag), b.mag)
        if op in ("maximum", "minimum") or self.flag(0.3):
            fname = {"add": "add", "sub": "subtract", "mul": "multiply", "div": "divide",
                     "floordiv": "floor_divide", "mod": "mod"}.get(op, op)
            template = f"fnp.{fname}({{0}}, {bexpr.replace(b.name, '{1}')})"
        else:
            template = f"{{0}} {sym[op]} {bexpr.replace(b.name, '{1}')}"
        dt = self.probe(template, a, b)
        if not self.dtype_allowed(dt) or not _bounded(*iv, dt):
            return None
        if kind(dt) == "b":
            iv = (0, 1)
        expr = template.format(a.name, b.name)
        return self.emit(expr, shape, dt, *iv, a.diff or b.diff)

    def op_compare(self):
        a = self.pick(lambda v: v.kind in "fib" and self.smooth_ok(v))
        if a is None:
            return False
        b = self.pick_partner(a, kinds="fi" if a.kind != "b" else "b")
        if b is None or not self.smooth_ok(b):
            return False
        op = self.choice((">", "<", ">=", "<=", "==", "!="))
        template = f"{{0}} {op} {{1}}" if self.flag(0.7) else {
            ">": "fnp.greater({0}, {1})", "<": "fnp.less({0}, {1})",
            ">=": "fnp.greater_equal({0}, {1})", "<=": "fnp.less_equal({0}, {1})",
            "==": "fnp.equal({0}, {1})", "!=": "fnp.not_equal({0}, {1})"}[op]
        dt = self.probe(template, a, b)
        if dt != "bool":
            return False
        return self.emit(template.format(a.name, b.name), _bshape(a.shape, b.shape), dt, 0, 1,
                         False)

    def op_logical(self):
        a = self.pick(lambda v: v.kind == "b")
        if a is None:
            return False
        if self.flag(0.3):
            return self.emit(self.choice((f"~{a.name}", f"fnp.logical_not({a.name})")),
                             a.shape, "bool", 0, 1, False)
        b = self.pick(lambda v: v.kind == "b" and _bshape(a.shape, v.shape) is not None)
        op = self.choice(("&", "|", "^", "fnp.logical_and", "fnp.logical_or"))
        expr = f"{op}({a.name}, {b.name})" if op.startswith("fnp") else f"{a.name} {op} {b.name}"
        return self.emit(expr, _bshape(a.shape, b.shape), "bool", 0, 1, False)

    def op_where(self):
        c = self.pick(lambda v: v.kind == "b")
        if c is None and not self.op_compare():
            return False
        c = c or self.scope[-1]
        a = self.pick_partner(c, kinds="fi")
        if a is None:
            return False
        b = self.pick_partner(a, kinds="fi" if a.kind != "b" else "b")
        if b is None or _bshape(c.shape, a.shape, b.shape) is None:
            return False
        dt = self.probe("fnp.where({0}, {1}, {2})", c, a, b)
        iv = _hull((a.lo, a.hi), (b.lo, b.hi))
        if not self.dtype_allowed(dt) or not _bounded(*iv, dt):
            return False
        return self.emit(f"fnp.where({c.name}, {a.name}, {b.name})",
                         _bshape(c.shape, a.shape, b.shape), dt, *iv, a.diff or b.diff)

    def op_astype(self):
        v = self.pick()
        dt = self.choice(self.cfg.dtypes)
        if dt == v.dtype or (kind(dt) != "f" and not self.smooth_ok(v)):
            return False
        if kind(dt) == "i" and v.kind == "f" and self.root.has_special:
            return False
        if kind(dt) == "b":
            iv = (0, 1)
        elif kind(dt) == "i":
            iv = (math.floor(v.lo), math.ceil(v.hi)) if v.kind != "f" else (
                -math.floor(v.mag) - 1, math.floor(v.mag) + 1)
        else:
            iv = (v.lo, v.hi)
        expr = self.choice((f"{v.name}.astype('{dt}')", f"fnp.asarray({v.name}, dtype='{dt}')"))
        return self.emit(expr, v.shape, dt, *iv, v.diff and kind(dt) == "f")

    def op_const(self):
        """An array created inside ``f`` (a constant to jit), combined with a value."""
        v = self.pick(lambda v: v.kind in "fi")
        if v is None:
            return False
        dt = self.choice(self.cfg.dtypes)
        how = self.choice(("ones", "zeros_like", "full", "arange", "eye"))
        shape, iv = v.shape, (0, 1)
        if how == "ones":
            expr = f"fnp.ones({v.shape}, dtype='{dt}')"
        elif how == "zeros_like":
            expr = self.choice((f"fnp.zeros_like({v.name})", f"fnp.ones_like({v.name})"))
            dt, iv = v.dtype, (0, 1)
        elif how == "full":
            expr, iv = f"fnp.full({v.shape}, 2, dtype='{dt}')", (2, 2)
        elif how == "arange":
            if not v.shape:
                return False
            shape = v.shape[-1:]
            expr, iv = f"fnp.arange({shape[0]}, dtype='{dt}')", (0, max(shape[0] - 1, 0))
        else:
            if len(v.shape) < 2:
                return False
            shape = v.shape[-2:]
            expr = f"fnp.eye({shape[0]}, {shape[1]}, dtype='{dt}')"
        if kind(dt) == "b":
            iv = (0, 1)
        c = self.emit(expr, shape, dt, *iv, False)
        return bool(self.binary(v, c, self.choice(("add", "mul", "sub")))) or True

    # --- reductions -----------------------------------------------------------------------

    def draw_axes(self, rank, single=False):
        """axis=None, an int (maybe negative) or a tuple of two axes."""
        if rank == 0 or self.flag(0.2):
            return None
        if single or rank == 1 or self.flag(0.7):
            ax = self.integer(0, rank - 1)
            return ax - rank if self.flag(0.3) else ax
        a, b = sorted(self.draw(st.permutations(range(rank)))[:2])
        return (a, b)

    def op_reduce(self):
        v = self.pick(lambda v: v.kind in "fib")
        if v is None:
            return False
        fn = self.choice(("sum", "max", "mean", "min", "logsumexp", "var", "argmax", "argmin"))
        axis = self.draw_axes(len(v.shape), single=fn in ("argmax", "argmin"))
        keep = self.flag(0.5)
        axes = (range(len(v.shape)) if axis is None else
                [axis] if isinstance(axis, int) else axis)
        n = math.prod(v.shape[a] for a in axes)
        if n == 0 and fn != "sum" or n == 1 and fn == "var":
            return False   # x.var() is unbiased (torch): one element gives nan
        if fn in ("max", "min", "argmax", "argmin") and not self.smooth_ok(v):
            return False
        if fn in ("logsumexp", "var") and v.kind != "f":
            return False
        kw = ("" if axis is None else f", axis={axis}") + (", keepdims=True" if keep else "")
        if fn == "logsumexp":
            expr = f"logsumexp({v.name}{kw})"
        elif self.flag(0.4) and v.kind != "b":
            expr = f"{v.name}.{fn}({kw[2:]})"
        else:
            expr = f"fnp.{fn}({v.name}{kw})"
        shape = _shape_of(lambda z: np.sum(z, axis=axis, keepdims=keep), v.shape)
        dt = self.probe("fnp.%s({0})" % fn if fn != "logsumexp" else "logsumexp({0})", v)
        if not self.dtype_allowed(dt):
            return False
        lo, hi = v.lo, v.hi
        iv = {"sum": (n * lo, n * hi), "mean": (lo, hi), "max": (lo, hi), "min": (lo, hi),
              "var": (0, (hi - lo) ** 2 / 2),
              "logsumexp": (lo, hi + math.log(max(n, 1))),
              "argmax": (0, n - 1), "argmin": (0, n - 1)}[fn]
        if not _bounded(*iv, dt):
            return False
        r = self.emit(expr, shape, dt, *iv, v.diff and kind(dt) == "f")
        # Broadcast back into the elementwise computation (softmax-style ``x - max(x)``).
        if fn not in ("argmax", "argmin") and _bshape(v.shape, shape) is not None and \
                self.flag(0.5):
            self.binary(v, r, self.choice(("sub", "add", "mul", "div")))
        return True

    def op_cumsum(self):
        v = self.pick(lambda v: v.kind in "fi")
        if v is None:
            return False
        rank = len(v.shape)
        axis = None if rank == 0 or self.flag(0.2) else self.integer(-rank, rank - 1)
        n = v.size if axis is None else v.shape[axis]
        shape = (v.size,) if axis is None else v.shape
        iv = (min(0, n * v.lo), max(0, n * v.hi))
        kw = "" if axis is None else f", axis={axis}"
        dt = self.probe("fnp.cumsum({0})", v)
        if not self.dtype_allowed(dt) or not _bounded(*iv, dt):
            return False
        return self.emit(f"fnp.cumsum({v.name}{kw})", shape, dt, *iv, v.diff)

    # --- linear algebra -------------------------------------------------------------------

    def partner_or_input(self, shape, like):
        """A numeric value of exactly ``shape`` in scope, or a new float input."""
        v = self.pick(lambda v: v.shape == tuple(shape) and v.kind in "fi")
        if v is not None and self.flag(0.6):
            return v
        dt = like.dtype if like.kind == "f" else self.float_dtype()
        return self.new_input(shape, dt, -1.0, 1.0)

    def op_matmul(self):
        a = self.pick(lambda v: v.kind in "fi" and len(v.shape) >= 1)
        if a is None:
            return False
        k = a.shape[-1]
        b = self.pick(lambda v: v.kind in "fi" and len(v.shape) >= 1
                      and _shape_of(np.matmul, a.shape, v.shape) is not None)
        if b is None or self.flag(0.5):
            b = self.partner_or_input((k,) if self.flag(0.3) else (k, self.choice((2, 3, 1))), a)
        if self.flag(0.2) and len(a.shape) >= 2 and len(b.shape) >= 2:
            return False
        shape = _shape_of(np.matmul, a.shape, b.shape)
        if shape is None:
            return False
        iv = (-k * a.mag * b.mag, k * a.mag * b.mag)
        forms = ["{0} @ {1}", "fnp.matmul({0}, {1})"]
        if len(a.shape) <= 2 and len(b.shape) <= 2:
            forms.append("fnp.dot({0}, {1})")      # the same product for 1-D and 2-D
        template = self.choice(forms)
        dt = self.probe(template, a, b)
        if not self.dtype_allowed(dt) or not _bounded(*iv, dt):
            return False
        return self.emit(template.format(a.name, b.name), shape, dt, *iv, a.diff or b.diff)

    EINSUM = {1: ("i->", "i,i->", "i,j->ij", "i,ij->j"),
              2: ("ij->ji", "ij->i", "ij,jk->ik", "ij,ij->i", "ij,j->i", "ij,ik->jk", "ij->"),
              3: ("bij,bjk->bik", "bij->bji", "bij->b", "bij,jk->bik", "bij,bij->bj")}

    def op_einsum(self):
        a = self.pick(lambda v: v.kind in "fi" and 1 <= len(v.shape) <= 3)
        if a is None or "einsum" in self.cfg.avoid:
            return False
        spec = self.choice(self.EINSUM[len(a.shape)])
        ins, out = spec.split("->")
        ins = ins.split(",")
        sizes = dict(zip(ins[0], a.shape, strict=True))
        operands = [a]
        if len(ins) == 2:
            for c in ins[1]:
                if c not in sizes:
                    sizes[c] = self.choice((2, 3, 1))
            operands.append(self.partner_or_input(tuple(sizes[c] for c in ins[1]), a))
        summed = math.prod(sizes[c] for c in set("".join(ins)) - set(out))
        m = math.prod(o.mag for o in operands)
        iv = (-summed * m, summed * m)
        template = f"fnp.einsum('{spec}', " + ", ".join(
            f"{{{i}}}" for i in range(len(operands))) + ")"
        dt = self.probe_einsum(spec, operands)
        if not self.dtype_allowed(dt) or not _bounded(*iv, dt):
            return False
        shape = tuple(sizes[c] for c in out)
        return self.emit(template.format(*[o.name for o in operands]), shape, dt, *iv,
                         any(o.diff for o in operands))

    def probe_einsum(self, spec, operands):
        # Probe on all-ones operands with every letter of size 1.
        ins = spec.split("->")[0].split(",")
        ns = dict(_namespace())
        fnp = ns["fnp"]
        key = ("einsum", spec, tuple(o.dtype for o in operands))
        if key not in _PROBES:
            try:
                ops = [fnp.ones((1,) * len(s), dtype=o.dtype) for s, o in zip(
                    ins, operands, strict=True)]
                _PROBES[key] = str(fnp.einsum(spec, *ops).dtype)
            except Exception:  # noqa: BLE001
                _PROBES[key] = None
        return _PROBES[key]

    # --- layout ---------------------------------------------------------------------------

    def op_transpose(self):
        v = self.pick(lambda v: len(v.shape) >= 2)
        if v is None:
            return False
        r = len(v.shape)
        how = self.choice(("T", "perm", "swapaxes", "moveaxis"))
        if how == "T":
            expr, fn = f"{v.name}.T", lambda z: z.T
        elif how == "perm":
            perm = tuple(self.draw(st.permutations(range(r))))
            expr, fn = f"fnp.transpose({v.name}, {perm})", lambda z: np.transpose(z, perm)
        else:
            i, j = self.integer(0, r - 1), self.integer(-r, r - 1)
            expr = f"fnp.{how}({v.name}, {i}, {j})"
            fn = getattr(np, how)
            fn = (lambda f_: lambda z: f_(z, i, j))(fn)
        return self.emit(expr, _shape_of(fn, v.shape), v.dtype, v.lo, v.hi, v.diff)

    def op_reshape(self):
        v = self.pick()
        s = list(v.shape)
        how = self.choice(("flatten", "merge", "split", "expand", "squeeze", "none_index"))
        if how == "flatten":
            new = (v.size,)
            expr = self.choice((f"{v.name}.reshape(-1)", f"fnp.ravel({v.name})")) \
                if v.size else f"{v.name}.reshape({new})"
        elif how == "merge":
            if len(s) < 2:
                return False
            i = self.integer(0, len(s) - 2)
            new = tuple(s[:i] + [s[i] * s[i + 1]] + s[i + 2:])
            expr = f"fnp.reshape({v.name}, {new})"
        elif how == "split":
            cands = [i for i, d in enumerate(s) if d in (4, 6, 2)]
            if not cands:
                return False
            i = self.choice(cands)
            new = tuple(s[:i] + [2, s[i] // 2] + s[i + 1:])
            expr = f"{v.name}.reshape{new}" if len(new) > 1 else f"{v.name}.reshape({new})"
        elif how == "expand":
            ax = self.integer(0, len(s))
            new = tuple(s[:ax] + [1] + s[ax:])
            expr = f"fnp.expand_dims({v.name}, {ax})"
        elif how == "squeeze":
            ones = [i for i, d in enumerate(s) if d == 1]
            if not ones:
                return False
            ax = self.choice(ones)
            new = tuple(s[:ax] + s[ax + 1:])
            expr = f"fnp.squeeze({v.name}, axis={ax})"
        else:
            ax = self.integer(0, len(s))
            new = tuple(s[:ax] + [1] + s[ax:])
            expr = f"{v.name}[{', '.join([':'] * ax + ['None'])}]"
        if v.literal:
            return False
        return self.emit(expr, new, v.dtype, v.lo, v.hi, v.diff)

    def op_slice(self):
        v = self.pick(lambda v: len(v.shape) >= 1)
        if v is None:
            return False
        parts = []
        for d in v.shape[: self.integer(1, len(v.shape))]:
            opts = [":", "1:", ":-1", "::2", "::-1", "1::2"] + (["0", "-1"] if d > 0 else [])
            parts.append(self.choice(opts))
        if self.flag(0.2):
            parts = ["..."] + parts[len(parts) - 1:] if len(parts) < len(v.shape) else parts
        idx = ", ".join(parts)
        shape = _shape_of(lambda z: eval(f"z[{idx}]"), v.shape)  # noqa: S307
        if shape is None:
            return False
        return self.emit(f"{v.name}[{idx}]", shape, v.dtype, v.lo, v.hi, v.diff)

    def op_concat(self):
        a = self.pick(lambda v: len(v.shape) >= 1)
        if a is None:
            return False
        r = len(a.shape)
        axis = self.integer(0, r - 1)

        def fits(v):
            return len(v.shape) == r and all(
                d == e for i, (d, e) in enumerate(zip(v.shape, a.shape, strict=True))
                if i != axis)
        b = self.pick(fits)
        stack = self.flag(0.2)
        if stack:
            if b.shape != a.shape:
                return False
            template = f"fnp.stack([{{0}}, {{1}}], axis={axis})"
            shape = tuple(a.shape[:axis]) + (2,) + tuple(a.shape[axis:])
        else:
            template = self.choice((f"fnp.concatenate([{{0}}, {{1}}], axis={axis})",
                                    f"fnp.concatenate(({{0}}, {{1}}), {axis})"))
            shape = list(a.shape)
            shape[axis] += b.shape[axis]
        dt = self.probe(template.replace(f"axis={axis}", "axis=0").replace(f", {axis})", ", 0)"),
                        a, b)
        iv = _hull((a.lo, a.hi), (b.lo, b.hi))
        if not self.dtype_allowed(dt) or not _bounded(*iv, dt):
            return False
        if kind(dt) == "b":
            iv = (0, 1)
        return self.emit(template.format(a.name, b.name), shape, dt, *iv, a.diff or b.diff)

    def op_layout(self):
        """flip / roll / tile / repeat / pad / sort along an axis."""
        v = self.pick(lambda v: len(v.shape) >= 1)
        if v is None:
            return False
        r = len(v.shape)
        axis = self.integer(-r, r - 1)
        how = self.choice(("flip", "roll", "tile", "repeat", "pad", "sort"))
        if how == "flip":
            expr, fn = f"fnp.flip({v.name}, {axis})", lambda z: np.flip(z, axis)
        elif how == "roll":
            expr, fn = f"fnp.roll({v.name}, 1, axis={axis})", lambda z: np.roll(z, 1, axis)
        elif how == "tile":
            reps = tuple(self.choice((1, 2)) for _ in range(r))
            expr, fn = f"fnp.tile({v.name}, {reps})", lambda z: np.tile(z, reps)
        elif how == "repeat":
            expr, fn = f"fnp.repeat({v.name}, 2, axis={axis})", lambda z: np.repeat(z, 2, axis)
        elif how == "pad":
            widths = tuple((self.integer(0, 2), self.integer(0, 1)) for _ in range(r))
            expr, fn = f"fnp.pad({v.name}, {widths})", lambda z: np.pad(z, widths)
        else:
            # sort is continuous, but its derivative jumps where elements tie
            if not self.smooth_ok(v) or v.kind == "b":
                return False
            expr, fn = f"fnp.sort({v.name}, axis={axis})", lambda z: np.sort(z, axis)
        lo, hi = (min(v.lo, 0), max(v.hi, 0)) if how == "pad" else (v.lo, v.hi)
        return self.emit(expr, _shape_of(fn, v.shape), v.dtype, lo, hi, v.diff)

    # --- indexing -------------------------------------------------------------------------

    def op_gather(self):
        """Integer-array indexing ``v[idx]`` / ``v[:, idx]`` / ``fnp.take``."""
        v = self.pick(lambda v: len(v.shape) >= 1 and v.size > 0)
        if v is None:
            return False
        axis = self.integer(0, min(len(v.shape), 2) - 1)
        n = v.shape[axis]
        picks = [self.integer(-n, n - 1) for _ in range(self.integer(1, 3))]
        idx = f"fnp.asarray({picks})"
        how = self.choice(("index", "take"))
        if how == "take":
            expr = f"fnp.take({v.name}, {idx}, axis={axis})"
        else:
            expr = f"{v.name}[{':, ' * axis}{idx}]"
        shape = _shape_of(lambda z: np.take(z, picks, axis=axis), v.shape)
        return self.emit(expr, shape, v.dtype, v.lo, v.hi, v.diff)

    def op_take_along(self):
        v = self.pick(lambda v: len(v.shape) >= 1 and v.size > 0 and v.kind in "fi")
        if v is None:
            return False
        r = len(v.shape)
        axis = self.integer(0, r - 1)
        n = v.shape[axis]
        if n == 0:
            return False
        if self.smooth_ok(v) and self.flag(0.5):
            fn = self.choice(("argmax", "argmin"))
            idx = self.emit(f"fnp.{fn}({v.name}, axis={axis}, keepdims=True)",
                            v.shape[:axis] + (1,) + v.shape[axis + 1:],
                            self.probe(f"fnp.{fn}({{0}})", v), 0, n - 1, False)
        else:
            shape = list(v.shape)
            shape[axis] = self.choice((1, 2, 3))
            idx = self.new_input(shape, self.choice([d for d in INTS if d in self.cfg.dtypes]
                                                    or ["int64"]), 0, n - 1)
        return self.emit(f"fnp.take_along_axis({v.name}, {idx.name}, axis={axis})",
                         idx.shape, v.dtype, v.lo, v.hi, v.diff)

    def op_at(self):
        v = self.pick(lambda v: len(v.shape) >= 1 and v.shape[0] > 0 and v.kind in "fi")
        if v is None:
            return False
        how = self.choice(("set", "add"))
        d0 = v.shape[0]
        kind_ = self.choice(("int", "slice", "col", "array"))
        if kind_ == "int":
            idx, slab = self.choice(("0", "-1")), v.shape[1:]
        elif kind_ == "slice":
            idx, slab = "1:", (d0 - 1,) + v.shape[1:]
        elif kind_ == "col":
            if len(v.shape) < 2 or v.shape[1] == 0:
                return False
            idx, slab = ":, 0", (d0,) + v.shape[2:]
        else:
            picks = [0, d0 - 1] if how == "set" else [0, d0 - 1, 0]
            if how == "set" and d0 == 1:
                picks = [0]
            idx = f"fnp.asarray({picks})"
            slab = (len(picks),) + v.shape[1:]
        w = self.pick(lambda u: u.kind in "fi" and _bshape(u.shape, slab) == tuple(slab)
                      and not (u.kind == "f" and v.kind == "i" and self.root.has_special))
        if w is None or self.flag(0.3):
            w = literal_val(self.choice(LITERALS["f" if v.kind == "f" else "i"]))
        iv = (_hull((v.lo, v.hi), (w.lo, w.hi)) if how == "set"
              else (v.lo + min(0, 2 * w.lo), v.hi + max(0, 2 * w.hi)))
        if v.kind == "i":
            iv = (math.floor(iv[0]) - 1, math.ceil(iv[1]) + 1)
        if not _bounded(*iv, v.dtype):
            return False
        return self.emit(f"{v.name}.at[{idx}].{how}({w.name})", v.shape, v.dtype, *iv,
                         v.diff or (w.diff and v.kind == "f"))

    # --- control flow ---------------------------------------------------------------------

    def sub(self, params):
        return Builder(self.draw, self.cfg, self.root, self.scope + list(params),
                       self.indent + 1, self.depth + 1)

    def carry_spec(self, v):
        """The (shape, dtype, interval) a loop carry or branch output is held to."""
        if v.kind == "f":
            return v.shape, v.dtype, _hull((v.lo, v.hi), (-1, 1))
        if v.kind == "i":
            return v.shape, v.dtype, (math.floor(min(v.lo, -3)), math.ceil(max(v.hi, 3)))
        return v.shape, v.dtype, (0, 1)

    def coerce(self, v, spec, mix=None):
        """A value of exactly ``spec`` computed from ``v`` (squashed into its interval)."""
        shape, dtype, (lo, hi) = spec
        if v.shape == shape and v.dtype == dtype and lo <= v.lo and v.hi <= hi:
            return v
        e, vkind = v.name, v.kind
        if _bshape(v.shape, shape) != tuple(shape):
            e, vkind = f"fnp.sum({e})", "i" if vkind == "b" else vkind
        if vkind == "b":
            e = e if kind(dtype) == "b" else f"{e}.astype('{dtype}')"
        elif kind(dtype) == "f":
            e = f"fnp.tanh({e})"
            if mix is not None and self.flag(0.5):
                e = f"0.5 * {mix.name} + 0.5 * {e}"
        elif kind(dtype) == "i" and vkind == "f" and self.root.has_special:
            e = f"({e} > 0)"
        elif kind(dtype) == "i":
            e = f"fnp.clip({e}, {int(lo)}, {int(hi)})"
        else:
            e = f"({e} > 0)"
        if v.shape != tuple(shape):
            e = f"fnp.broadcast_to({e}, {tuple(shape)})"
        return self.emit(f"({e}).astype('{dtype}')", shape, dtype, lo, hi,
                         v.diff and kind(dtype) == "f")

    def body_output(self, sub):
        """The value a body returns: recent, float in smooth programs."""
        own = [v for v in sub.scope[len(self.scope):] if not v.literal]
        if self.cfg.smooth:
            own = [v for v in own if v.kind == "f"]
        return own[-1] if own and self.flag(0.8) else sub.pick(
            lambda v: not self.cfg.smooth or v.kind == "f")

    def write_def(self, name, params, sub, ret):
        self.root.used.update(re.findall(r"\b[vxac]\d+\b", ret))
        self.line(f"def {name}({', '.join(params)}):")
        sub.line(f"return {ret}")
        self.lines.extend(sub.lines)

    def op_cond(self):
        """``fnx.lax.cond`` (or ``switch`` over three branches) with generated branches."""
        if not self.cfg.control_flow or self.depth >= 2:
            return False
        ops = [self.pick()]
        if self.flag(0.4):
            ops.append(self.pick())
        p = self.pick(lambda v: self.smooth_ok(v) and v.kind in "fib")
        if p is None:
            p = self.new_input((), "bool")
        nbranch = 3 if self.flag(0.25) else 2
        if nbranch == 3:    # switch clamps its index, so any integer will do
            total = f"fnp.sum({p.name})"
            pred = (f"{total}.astype('int32')" if p.kind != "f" else
                    f"({total} > 0).astype('int32') + {self.choice(('0', '1'))}")
        elif self.flag(0.5) or p.kind == "b" and p.shape == ():
            pred = p.name if p.kind == "b" and p.shape == () else self.choice(("True", "False"))
        else:
            pred = f"fnp.sum({p.name}) > 0" if p.kind != "b" else f"fnp.any({p.name})"
        params = [self.fresh("a") for _ in ops]
        pvals = [replace(v, name=n) for v, n in zip(ops, params, strict=True)]
        spec, outs, names = None, [], []
        for k in range(nbranch):
            br = self.sub(pvals)
            br.gen_ops(self.integer(1 if k == 0 else 0, 3 if k == 0 else 2))
            w = self.body_output(br)
            if spec is None:    # the first branch's output decides the type of all
                spec = self.carry_spec(w)
                if self.cfg.smooth and w.kind != "f":
                    spec = (w.shape, "float64", (-1, 1))
            w = br.coerce(w, spec)
            names.append(self.fresh("branch"))
            self.write_def(names[-1], params, br, w.name)
            outs.append(w)
        operands = ", ".join(v.name for v in ops)
        if nbranch == 3:
            expr = f"fnx.lax.switch({pred}, [{', '.join(names)}], {operands})"
        else:
            expr = f"fnx.lax.cond({pred}, {names[0]}, {names[1]}, {operands})"
        shape, dtype, iv = spec
        return self.emit(expr, shape, dtype, *iv, any(w.diff for w in outs))

    def op_while(self):
        """``fori_loop`` with a traced trip count: a while loop (forward mode only)."""
        if not (self.cfg.control_flow and self.cfg.while_loops) or self.depth >= 2:
            return False
        init = self.pick()
        p = self.pick(lambda v: v.kind in "ib")
        if p is None:
            p = self.new_input((), self.choice([d for d in INTS if d in self.cfg.dtypes]
                                               or ["int64"]), 0, 3)
        n = self.emit(f"fnp.clip(fnp.sum({p.name}), 0, 3)",
                      (), self.probe("fnp.clip(fnp.sum({0}), 0, 3)", p), 0, 3, False)
        i_dtype = str(np.result_type(probe_dtype("fnp.asarray(0)"), n.dtype))
        return self.fori(init, n.name, i_dtype, 2)

    def fori(self, init, upper, i_dtype, i_max):
        """``fnx.lax.fori_loop(0, upper, body, init)`` with a generated body."""
        spec = self.carry_spec(init)
        c = replace(init, name=self.fresh("c"), lo=spec[2][0], hi=spec[2][1])
        i = Val(self.fresh("i"), (), i_dtype, 0, i_max)
        body = self.sub([i, c])
        body.gen_ops(self.integer(1, 3))
        new_c = body.coerce(self.body_output(body), spec, mix=c if init.kind == "f" else None)
        name = self.fresh("body")
        self.write_def(name, [i.name, c.name], body, new_c.name)
        return self.emit(f"fnx.lax.fori_loop(0, {upper}, {name}, {init.name})", *spec[:2],
                         *spec[2], new_c.diff or init.diff)

    def op_scan(self):
        if not self.cfg.control_flow or self.depth >= 2:
            return False
        init = self.pick(lambda v: v.kind == "f" or not self.cfg.smooth)
        xs = self.pick(lambda v: len(v.shape) >= 1)
        if init is None:
            return False
        spec = self.carry_spec(init)
        c = replace(init, name=self.fresh("c"), lo=spec[2][0], hi=spec[2][1])
        params = [c]
        if xs is not None and self.flag(0.8):
            x = replace(xs, name=self.fresh("x_"), shape=xs.shape[1:])
            params.append(x)
            length = xs.shape[0]
        else:
            x, length = None, self.integer(0, 3)
        body = self.sub(params)
        body.gen_ops(self.integer(1, 3))
        y = self.body_output(body)
        new_c = body.coerce(self.body_output(body), spec, mix=c if init.kind == "f" else None)
        name = self.fresh("body")
        self.write_def(name, [c.name, x.name if x is not None else "_"], body,
                       f"{new_c.name}, {y.name}")
        rev = ", reverse=True" if self.flag(0.2) else ""
        xs_src = xs.name if x is not None else f"None, length={length}"
        carry_name, ys_name = self.fresh(), self.fresh()
        self.line(f"{carry_name}, {ys_name} = fnx.lax.scan({name}, {init.name}, {xs_src}{rev})")
        diff = new_c.diff or init.diff
        self.scope.append(Val(carry_name, spec[0], spec[1], *spec[2], diff))
        self.scope.append(Val(ys_name, (length,) + tuple(y.shape), y.dtype, y.lo, y.hi,
                              y.diff or diff))
        return True

    def op_fori(self):
        if not self.cfg.control_flow or self.depth >= 2:
            return False
        init = self.pick(lambda v: v.kind == "f" or not self.cfg.smooth)
        if init is None:
            return False
        n = self.integer(0, 3)
        return self.fori(init, n, probe_dtype("fnp.asarray(0)"), max(n - 1, 0))


# Draw weights by repetition; the simplest ops come first, so hypothesis shrinks toward them.
OPS = (["unary"] * 2 + ["binary"] * 6 + ["reduce"] * 4 + ["compare"] * 2 + ["where"] * 2
       + ["matmul"] * 2 + ["einsum", "transpose", "reshape", "slice", "concat", "cumsum",
                           "take_along", "at", "astype", "logical", "const", "cond", "scan",
                           "fori", "layout", "gather", "while"])


class Program:
    """A generated program: ``str`` is the standalone script that reproduces it.

    ``precision`` is the least precise float dtype any of its values has: a float64 output
    computed through float32 values is compared at float32's tolerance.
    """

    def __init__(self, source, precision="float32"):
        self.source = source
        self.precision = precision

    def __str__(self):
        return self.source

    def __repr__(self):
        # short, since the tests note the whole script (hypothesis indents a long repr)
        return f"<Program: {self.source.count(chr(10))}-line script in the note below>"

    def load(self):
        """``(f, make_args)`` from executing the script."""
        ns = {}
        exec(compile(self.source, "<fnx program>", "exec"), ns)  # noqa: S102
        return ns["f"], ns["make_args"]


@st.composite
def programs(draw, **config):
    """Hypothesis strategy of :class:`Program` (``config``: the fields of :class:`Config`)."""
    b = Builder(draw, Config(**config))
    source = b.build_program()
    return Program(source, b.precision)
