"""Elementwise functions of the array API, each a thin wrapper over a primitive."""

import math
import re

import numpy as np

from ..core import dtypes
from ..core.array import ArrayOps
from ..core.errors import DTypeError
from ..core.ops import elementwise as ew
from ._core import binary, promote_args, broadcast_args, convert_keep_weak, to_array, unary
from ._ufunc import call_ufunc, check_out


# docstring examples of the factory-made functions: op -> (argument lists, result of .tolist())
_EXAMPLES = {
    "exp": (("[0.0]",), "[1.0]"),
    "exp2": (("[3.0]",), "[8.0]"),
    "expm1": (("[0.0]",), "[0.0]"),
    "log": (("[1.0]",), "[0.0]"),
    "log1p": (("[0.0]",), "[0.0]"),
    "sin": (("[0.0]",), "[0.0]"),
    "cos": (("[0.0]",), "[1.0]"),
    "tan": (("[0.0]",), "[0.0]"),
    "asin": (("[0.0]",), "[0.0]"),
    "acos": (("[1.0]",), "[0.0]"),
    "atan": (("[0.0]",), "[0.0]"),
    "sinh": (("[0.0]",), "[0.0]"),
    "cosh": (("[0.0]",), "[1.0]"),
    "tanh": (("[0.0]",), "[0.0]"),
    "asinh": (("[0.0]",), "[0.0]"),
    "acosh": (("[1.0]",), "[0.0]"),
    "atanh": (("[0.0]",), "[0.0]"),
    "sqrt": (("[4.0, 9.0]",), "[2.0, 3.0]"),
    "rsqrt": (("[4.0]",), "[0.5]"),
    "cbrt": (("[8.0]",), "[2.0]"),
    "add": (("[1, 2]", "[3, 4]"), "[4, 6]"),
    "subtract": (("[1, 2]", "[3, 4]"), "[-2, -2]"),
    "multiply": (("[1, 2]", "[3, 4]"), "[3, 8]"),
    "maximum": (("[1, 5]", "[3, 4]"), "[3, 5]"),
    "minimum": (("[1, 5]", "[3, 4]"), "[1, 4]"),
    "equal": (("[1, 2]", "[1, 3]"), "[True, False]"),
    "not_equal": (("[1, 2]", "[1, 3]"), "[False, True]"),
    "less": (("[1, 2]", "[2, 2]"), "[True, False]"),
    "less_equal": (("[1, 3]", "[2, 2]"), "[True, False]"),
    "greater": (("[1, 3]", "[2, 2]"), "[False, True]"),
    "greater_equal": (("[1, 2]", "[2, 2]"), "[False, True]"),
    "bitwise_and": (("[12, 5]", "[10, 3]"), "[8, 1]"),
    "bitwise_or": (("[12, 5]", "[10, 3]"), "[14, 7]"),
    "bitwise_xor": (("[12, 5]", "[10, 3]"), "[6, 6]"),
    "bitwise_left_shift": (("[1, 3]", "[2, 1]"), "[4, 6]"),
    "bitwise_right_shift": (("[8, 7]", "[2, 1]"), "[2, 3]"),
    "copysign": (("[1.0, 2.0]", "[-1.0, 1.0]"), "[-1.0, 2.0]"),
    "nextafter": (("[1.0]", "[2.0]"), "[1.0000001192092896]"),
    "divide": (("[1, 6]", "[2, 4]"), "[0.5, 1.5]"),
    "pow": (("[2.0, 3.0]", "[2.0, 2.0]"), "[4.0, 9.0]"),
    "atan2": (("[0.0, 0.0]", "[1.0, -1.0]"), "[0.0, 3.1416]"),
    "floor": (("[-1.5, 1.5]",), "[-2.0, 1.0]"),
    "ceil": (("[-1.5, 1.5]",), "[-1.0, 2.0]"),
    "trunc": (("[-1.5, 1.5]",), "[-1.0, 1.0]"),
    "isfinite": (("[1.0, inf, nan]",), "[True, False, False]"),
    "isnan": (("[1.0, inf, nan]",), "[False, False, True]"),
    "isinf": (("[1.0, -inf, nan]",), "[False, True, False]"),
    "logical_and": (("[True, True, False]", "[True, False, False]"), "[True, False, False]"),
    "logical_or": (("[True, True, False]", "[True, False, False]"), "[True, True, False]"),
    "logical_xor": (("[True, True, False]", "[True, False, False]"), "[False, True, False]"),
}


def _example(op):
    """The ``>>>`` example of a factory-made function (``inf``/``nan`` are fnx.numpy's; a
    result with 4-decimal floats is the rounded one)."""
    args, result = _EXAMPLES[op]
    call = ", ".join(f"fnx.numpy.asarray({a})" for a in args)
    call = re.sub(r"\b(inf|nan)\b", r"fnx.numpy.\1", f"fnx.numpy.{op}({call})")
    if re.search(r"\.\d{4}\b", result):
        return f">>> [round(v, 4) for v in {call}.tolist()]\n    {result}"
    return f">>> {call}.tolist()\n    {result}"


def _float_unary(op, prim):
    def fn(x, /, out=None, *, dtype=None):
        if out is not None or dtype is not None:
            return call_ufunc(op, fn, out, dtype, x)
        return unary(op, prim, x, float_only=True)

    fn.__name__ = op
    fn.__doc__ = f"""Elementwise ``{op}`` (integer inputs are promoted to the default float dtype).

    {_example(op)}
    """
    return fn


exp = _float_unary("exp", ew.exp_p)
exp2 = _float_unary("exp2", ew.exp2_p)
_expm1_real = _float_unary("expm1", ew.expm1_p)


def expm1(x, /, out=None, *, dtype=None):
    """``exp(x) - 1``, accurate near 0 (complex inputs follow the array API special cases).

    >>> fnx.numpy.expm1(fnx.numpy.asarray([0.0])).tolist()
    [0.0]
    """
    if out is not None or dtype is not None:
        return call_ufunc("expm1", expm1, out, dtype, x)
    x = to_array(x)
    if x.dtype.kind != "c":
        return _expm1_real(x)
    a, b = real(x), imag(x)
    inf = float("inf")
    # expm1(a) cos(b) + (cos(b) - 1) keeps accuracy near 0; infinities need explicit cases
    cos_b = cos(b)
    re = _expm1_real(a) * cos_b - 2 * sin(b / 2) ** 2
    im = exp(a) * sin(b)
    b_bad = ~isfinite(b)
    re = where((a == 0) & (b == 0), 0.0, re)
    re = where(a == -inf, -1.0, where((a == inf) & b_bad, inf, re))
    im = where(b == 0, b, where(a == -inf, 0.0, where((a == inf) & b_bad, float("nan"), im)))
    return ew.complex_p.bind(re, im)
log = _float_unary("log", ew.log_p)
log1p = _float_unary("log1p", ew.log1p_p)
sin = _float_unary("sin", ew.sin_p)
cos = _float_unary("cos", ew.cos_p)
tan = _float_unary("tan", ew.tan_p)
asin = _float_unary("asin", ew.asin_p)
acos = _float_unary("acos", ew.acos_p)
atan = _float_unary("atan", ew.atan_p)
sinh = _float_unary("sinh", ew.sinh_p)
cosh = _float_unary("cosh", ew.cosh_p)
tanh = _float_unary("tanh", ew.tanh_p)
asinh = _float_unary("asinh", ew.asinh_p)
acosh = _float_unary("acosh", ew.acosh_p)
atanh = _float_unary("atanh", ew.atanh_p)
sqrt = _float_unary("sqrt", ew.sqrt_p)
rsqrt = _float_unary("rsqrt", ew.rsqrt_p)
cbrt = _float_unary("cbrt", ew.cbrt_p)
arcsin, arccos, arctan = asin, acos, atan
arcsinh, arccosh, arctanh = asinh, acosh, atanh


def log2(x, /, out=None, *, dtype=None):
    """Base-2 logarithm. ``fnp.log2(fnp.asarray([8.0]))`` -> ``[3.]``

    >>> fnp.log2(fnp.asarray([1.0, 8.0])).round().tolist()
    [0.0, 3.0]
    """
    if out is not None or dtype is not None:
        return call_ufunc("log2", log2, out, dtype, x)
    x = to_array(x)
    return log(x) / math.log(2.0)


def log10(x, /, out=None, *, dtype=None):
    """Base-10 logarithm.

    >>> fnp.log10(fnp.asarray([1.0, 100.0])).round().tolist()
    [0.0, 2.0]
    """
    if out is not None or dtype is not None:
        return call_ufunc("log10", log10, out, dtype, x)
    return log(x) / math.log(10.0)


def logaddexp(x1, x2, /, out=None, *, dtype=None):
    """``log(exp(x1) + exp(x2))`` without overflow.

    >>> round(fnp.logaddexp(fnp.asarray(0.0), fnp.asarray(0.0)).item(), 4)
    0.6931
    """
    if out is not None or dtype is not None:
        return call_ufunc("logaddexp", logaddexp, out, dtype, x1, x2)
    return _logaddexp("logaddexp", x1, x2, base2=False)


def logaddexp2(x1, x2, /, out=None, *, dtype=None):
    """``log2(2**x1 + 2**x2)`` without overflow.

    >>> fnp.logaddexp2(fnp.asarray([1.0, -fnp.inf]), fnp.asarray([1.0, 3.0])).tolist()
    [2.0, 3.0]
    """
    if out is not None or dtype is not None:
        return call_ufunc("logaddexp2", logaddexp2, out, dtype, x1, x2)
    return _logaddexp("logaddexp2", x1, x2, base2=True)


def _logaddexp(op, x1, x2, base2):
    x1, x2 = broadcast_args(op, *promote_args(op, x1, x2))
    if x1.dtype.kind not in "fc":
        x1, x2 = x1.astype(dtypes.default_float()), x2.astype(dtypes.default_float())
    # Select the larger operand instead of taking maximum(x1, x2) and |x1 - x2|: their kinks
    # at x1 == x2 cancel in the value but not in the derivative rules (the second derivative
    # came out 0 at ties). Each selected expression here is smooth.
    first = x1 >= x2
    hi, lo = where(first, x1, x2), where(first, x2, x1)
    finite = isfinite(hi)
    # equal infinities give inf - inf = nan; their gap is 0 (log(2 e^inf) = inf)
    gap = where(finite | (lo != hi), lo - hi, 0)
    tail = log1p(exp2(gap)) / math.log(2.0) if base2 else log1p(exp(gap))
    return where(finite, hi, 0) + tail + where(finite, 0, hi)


def fabs(x, /, out=None, *, dtype=None):
    """Absolute value of real numbers as floats (integers promote to the default float
    dtype; complex inputs are refused, as NumPy: use ``abs`` for their modulus).

    >>> fnp.fabs(fnp.asarray([-1.5, 2])).tolist()
    [1.5, 2.0]
    """
    if out is not None or dtype is not None:
        return call_ufunc("fabs", fabs, out, dtype, x)
    x = to_array(x)
    if x.dtype.kind == "c":
        raise DTypeError(f"fabs: not defined for complex input ({x.dtype}); use fnp.abs for "
                         f"the modulus")
    if x.dtype.kind != "f":
        x = x.astype(dtypes.default_float())
    return ew.abs_p.bind(x)


def _nan_ignoring(op, pick):
    def fn(x1, x2, /, out=None, *, dtype=None):
        if out is not None or dtype is not None:
            return call_ufunc(op, fn, out, dtype, x1, x2)
        x1, x2 = broadcast_args(op, *promote_args(op, x1, x2))
        both = pick(x1, x2)
        if x1.dtype.kind not in "fc":
            return both
        # a NaN loses to a number; two NaNs give NaN (pick propagates NaN)
        return where(isnan(x2), x1, where(isnan(x1), x2, both))

    fn.__name__ = op
    word = "maximum" if op == "fmax" else "minimum"
    fn.__doc__ = f"""Elementwise {word} that ignores NaNs: where one input is NaN the other is
    returned (NaN only where both are).

    >>> fnp.{op}(fnp.asarray([1.0, fnp.nan, fnp.nan]), fnp.asarray([2.0, 3.0, fnp.nan])).tolist()
    {[2.0 if op == "fmax" else 1.0, 3.0, float("nan")]}
    """
    return fn


def _binary(op, prim):
    fn = binary(op, prim)
    fn.__module__ = __name__
    fn.__doc__ = f"""Elementwise ``{op}`` with broadcasting and array-API type promotion.

    {_example(op)}
    """
    return fn


add = _binary("add", ew.add_p)
subtract = _binary("subtract", ew.sub_p)
multiply = _binary("multiply", ew.mul_p)
maximum = _binary("maximum", ew.max_p)
minimum = _binary("minimum", ew.min_p)
equal = _binary("equal", ew.eq_p)
not_equal = _binary("not_equal", ew.ne_p)
less = _binary("less", ew.lt_p)
less_equal = _binary("less_equal", ew.le_p)
greater = _binary("greater", ew.gt_p)
greater_equal = _binary("greater_equal", ew.ge_p)
bitwise_and = _binary("bitwise_and", ew.and_p)
bitwise_or = _binary("bitwise_or", ew.or_p)
bitwise_xor = _binary("bitwise_xor", ew.xor_p)
fmax = _nan_ignoring("fmax", maximum)
fmin = _nan_ignoring("fmin", minimum)


def _converting_binary(op, prim, kinds, to, doc):
    """A binary op whose promoted inputs convert to ``to()`` unless of a kind in ``kinds``."""

    def convert(x1, x2):
        return convert_keep_weak(x1, to()), convert_keep_weak(x2, to())

    fn = binary(op, prim, kinds, convert)
    fn.__module__ = __name__
    fn.__doc__ = f"""Elementwise ``{op}``; {doc}.

    {_example(op)}
    """
    return fn


def _float_binary(op, prim):
    # NumPy promotes integer and bool inputs to a float (fnx: the default float)
    return _converting_binary(op, prim, "fc", dtypes.default_float,
                              "integer inputs promote to the default float dtype")


_INT8 = np.dtype(np.int8)
bitwise_left_shift = _converting_binary(
    "bitwise_left_shift", ew.shift_left_p, "iu", lambda: _INT8,
    "bool inputs promote to int8, as NumPy")
bitwise_right_shift = _converting_binary(
    "bitwise_right_shift", ew.shift_right_p, "iu", lambda: _INT8,
    "bool inputs promote to int8, as NumPy")
copysign = _float_binary("copysign", ew.copysign_p)
nextafter = _float_binary("nextafter", ew.nextafter_p)


divide = _float_binary("divide", ew.div_p)
true_divide = divide
pow = _float_binary("pow", ew.pow_p)
atan2 = _float_binary("atan2", ew.atan2_p)
arctan2 = atan2


def power(x1, x2, /, out=None, *, dtype=None):
    """``x1 ** x2``; integer arrays to integer powers stay integers (as NumPy).

    >>> fnp.pow(fnp.asarray([2, 3]), 2).tolist()
    [4, 9]
    """
    if out is not None or dtype is not None:
        return call_ufunc("power", power, out, dtype, x1, x2)
    if isinstance(x2, int) and not isinstance(x2, bool):
        x1 = to_array(x1)
        if x1.dtype.kind in "iu" and x2 < 0:
            raise DTypeError("pow: integers to negative integer powers are not allowed")
        return ew.integer_pow_p.bind(x1, y=x2)
    x1, x2 = promote_args("pow", x1, x2)
    if x1.dtype.kind in "iub":
        return _int_pow(*broadcast_args("pow", x1, x2))
    return ew.pow_p.bind(*broadcast_args("pow", x1, x2))


def _int_pow(x, y):
    # exponentiation by squaring over the bits of y, in primitives
    result = ones_like(x)
    base = x
    y = where(y < 0, 0, y)
    for _ in range(x.dtype.itemsize * 8):
        result = where((y & 1) == 1, result * base, result)
        base = base * base
        y = y >> 1
    return result


pow = power  # noqa: A001  (array API name)


def negative(x, /, out=None, *, dtype=None):
    """``-x``.

    >>> fnp.negative(fnp.asarray([1, -2])).tolist()
    [-1, 2]
    """
    if out is not None or dtype is not None:
        return call_ufunc("negative", negative, out, dtype, x)
    x = to_array(x)
    if x.dtype == dtypes.bool_:
        raise DTypeError("negative: not defined for bool arrays; use logical_not")
    return ew.neg_p.bind(x)


def positive(x, /, out=None, *, dtype=None):
    """``+x``: ``x`` as an array, unchanged.

    >>> fnp.positive(fnp.asarray([-1, 2])).tolist()
    [-1, 2]
    """
    if out is not None or dtype is not None:
        return call_ufunc("positive", positive, out, dtype, x)
    return to_array(x)


def abs(x, /, out=None, *, dtype=None):  # noqa: A001
    """Absolute value; for complex inputs the modulus (a real array).

    >>> fnp.abs(fnp.asarray([-2, 3])).tolist()
    [2, 3]
    """
    if out is not None or dtype is not None:
        return call_ufunc("abs", abs, out, dtype, x)
    x = to_array(x)
    if x.dtype == dtypes.bool_:
        return x
    if x.dtype.kind == "u":
        return x
    return ew.abs_p.bind(x)


absolute = abs


def sign(x, /, out=None, *, dtype=None):
    """Elementwise sign: -1, 0 or 1 (``x / abs(x)`` for complex inputs).

    >>> fnp.sign(fnp.asarray([-3, 0, 2])).tolist()
    [-1, 0, 1]
    """
    if out is not None or dtype is not None:
        return call_ufunc("sign", sign, out, dtype, x)
    x = to_array(x)
    if x.dtype.kind == "c":
        mag = abs(x)
        return where(mag == 0, 0, x / where(mag == 0, 1, mag).astype(x.dtype))
    return ew.sign_p.bind(x)


def _integer_passthrough(op, prim):
    def fn(x, /, out=None, *, dtype=None):
        if out is not None or dtype is not None:
            return call_ufunc(op, fn, out, dtype, x)
        x = to_array(x)
        if x.dtype.kind in "biu":
            return x
        return prim.bind(x)

    fn.__name__ = op
    fn.__doc__ = f"""Elementwise ``{op}`` (integers are returned unchanged).

    {_example(op)}
    """
    return fn


floor = _integer_passthrough("floor", ew.floor_p)
ceil = _integer_passthrough("ceil", ew.ceil_p)
trunc = _integer_passthrough("trunc", ew.trunc_p)


def round(a, decimals=0, out=None):  # noqa: A001
    """Round half to even, as NumPy.

    >>> fnp.round(fnp.asarray([0.5, 1.5, 2.25]), decimals=0).tolist()
    [0.0, 2.0, 2.0]
    """
    check_out("round", out)
    x = to_array(a)
    if x.dtype.kind in "biu":
        return x
    if x.dtype.kind == "c":
        return ew.complex_p.bind(round(real(x), decimals=decimals), round(imag(x), decimals=decimals))
    if decimals:
        scale = 10.0 ** decimals
        return ew.round_p.bind(x * scale) / scale
    return ew.round_p.bind(x)


def square(x, /, out=None, *, dtype=None):
    """Elementwise ``x * x`` (keeps ``x``'s dtype).

    >>> fnp.square(fnp.asarray([2, -3])).tolist()
    [4, 9]
    """
    if out is not None or dtype is not None:
        return call_ufunc("square", square, out, dtype, x)
    x = to_array(x)
    return x * x


def reciprocal(x, /, out=None, *, dtype=None):
    """Elementwise ``1 / x`` (integer inputs give floats).

    >>> fnp.reciprocal(fnp.asarray([2.0, 4.0])).tolist()
    [0.5, 0.25]
    """
    if out is not None or dtype is not None:
        return call_ufunc("reciprocal", reciprocal, out, dtype, x)
    return 1.0 / to_array(x)


def floor_divide(x1, x2, /, out=None, *, dtype=None):
    """Floor division (``//``), rounding toward minus infinity as Python.

    >>> fnp.floor_divide(fnp.asarray([7, -7]), 2).tolist()
    [3, -4]
    """
    if out is not None or dtype is not None:
        return call_ufunc("floor_divide", floor_divide, out, dtype, x1, x2)
    x1, x2 = broadcast_args("floor_divide", *promote_args("floor_divide", x1, x2))
    if x1.dtype.kind in "iu":
        q = ew.div_p.bind(x1, x2)
        fix = (ew.rem_p.bind(x1, x2) != 0) & ((x1 < 0) != (x2 < 0))
        return where(fix, q - 1, q)
    if x1.dtype.kind == "b":
        raise DTypeError("floor_divide: not defined for bool arrays")
    return ew.floor_p.bind(ew.div_p.bind(x1, x2))


def remainder(x1, x2, /, out=None, *, dtype=None):
    """Remainder with the sign of the divisor (``%``), as Python and NumPy.

    >>> fnp.remainder(fnp.asarray([7, -7]), 3).tolist()
    [1, 2]
    """
    if out is not None or dtype is not None:
        return call_ufunc("remainder", remainder, out, dtype, x1, x2)
    x1, x2 = broadcast_args("remainder", *promote_args("remainder", x1, x2))
    if x1.dtype.kind == "b":
        raise DTypeError("remainder: not defined for bool arrays")
    r = ew.rem_p.bind(x1, x2)
    fix = (r != 0) & ((r < 0) != (x2 < 0))
    out = where(fix, r + x2, r)
    if out.dtype.kind == "f":
        # a zero result takes the divisor's sign (-0.0 % 3.0 == +0.0, 0.0 % -3.0 == -0.0), as
        # Python, NumPy and the array API's special cases; fmod gave it the dividend's.
        # Subtracting the zero ``stop_gradient(out) - out`` keeps that sign and restores out's
        # derivative (1 in x1, as between the jumps), which copysign's kink at 0 would drop.
        from ..transforms.custom import stop_gradient_p

        signed = ew.copysign_p.bind(out, x2) - (stop_gradient_p.bind(out) - out)
        out = where(out == 0, signed, out)
    return out


mod = remainder


fmod = binary("fmod", ew.rem_p)
fmod.__module__ = __name__
fmod.__doc__ = """C-style remainder with the sign of the dividend.

    >>> fnp.fmod(fnp.asarray([7, -7]), 3).tolist()
    [1, -1]
    """


def hypot(x1, x2, /, out=None, *, dtype=None):
    """Elementwise ``sqrt(x1**2 + x2**2)`` (the hypotenuse), with broadcasting.

    >>> fnp.hypot(fnp.asarray([3.0]), fnp.asarray([4.0])).tolist()
    [5.0]
    """
    if out is not None or dtype is not None:
        return call_ufunc("hypot", hypot, out, dtype, x1, x2)
    x1, x2 = promote_args("hypot", x1, x2)
    if x1.dtype.kind not in "fc":  # NumPy converts ints first (squaring int8 127 wraps)
        x1 = convert_keep_weak(x1, dtypes.default_float())
        x2 = convert_keep_weak(x2, dtypes.default_float())
    a, b = abs(x1), abs(x2)
    # scale by the larger magnitude so the square neither overflows (3e30 in float32) nor
    # underflows: big * sqrt(1 + (small / big)**2); big == 0 gives 0 with derivative 0 at
    # (0, 0), as a 2-norm (abs has derivative 0 at 0). Select rather than maximum/minimum:
    # big * sqrt(1 + (small / big)**2) equals sqrt(big**2 + small**2) for any order, so
    # derivatives of every order are exact, also at ties (maximum's tie rule averages)
    a_big = a >= b
    big, small = where(a_big, a, b), where(a_big, b, a)
    ratio = small / where(big == 0, 1, big)
    out = big * sqrt(1 + ratio * ratio)
    return where(isinf(a) | isinf(b), float("inf"), out)  # inf even beside a NaN, as NumPy


def _float_test(op, prim, integer_result):
    def fn(x, /, out=None, *, dtype=None):
        if out is not None or dtype is not None:
            return call_ufunc(op, fn, out, dtype, x)
        x = to_array(x)
        if x.dtype.kind in "biu":
            return full_like(x, integer_result, dtype=dtypes.bool_)
        return prim.bind(x)

    fn.__name__ = op
    fn.__doc__ = f"""Elementwise ``{op}`` (always {integer_result} for integers and booleans).

    {_example(op)}
    """
    return fn


isfinite = _float_test("isfinite", ew.is_finite_p, True)
isnan = _float_test("isnan", ew.is_nan_p, False)
isinf = _float_test("isinf", ew.is_inf_p, False)


def signbit(x, /, out=None, *, dtype=None):
    """Whether the sign bit is set (True for -0.0 and negative values).

    >>> fnp.signbit(fnp.asarray([-0.0, 0.0, -2.0])).tolist()
    [True, False, True]
    """
    if out is not None or dtype is not None:
        return call_ufunc("signbit", signbit, out, dtype, x)
    x = to_array(x)
    if x.dtype.kind in "biu":
        return x < 0
    return ew.copysign_p.bind(ones_like(x), x) < 0


def logical_not(x, /, out=None, *, dtype=None):
    """Elementwise logical NOT (non-zero values count as true).

    >>> fnp.logical_not(fnp.asarray([0, 2])).tolist()
    [True, False]
    """
    if out is not None or dtype is not None:
        return call_ufunc("logical_not", logical_not, out, dtype, x)
    return ew.not_p.bind(to_array(x, dtypes.bool_) if to_array(x).dtype != dtypes.bool_ else to_array(x))


def _logical(op, prim):
    def fn(x1, x2, /, out=None, *, dtype=None):
        if out is not None or dtype is not None:
            return call_ufunc(op, fn, out, dtype, x1, x2)
        x1, x2 = to_array(x1), to_array(x2)
        x1 = x1 if x1.dtype == dtypes.bool_ else (x1 != 0)
        x2 = x2 if x2.dtype == dtypes.bool_ else (x2 != 0)
        return prim.bind(*broadcast_args(op, x1, x2))

    fn.__name__ = op
    fn.__doc__ = f"""Elementwise ``{op}`` on truth values (non-zero numbers count as true).

    {_example(op)}
    """
    return fn


logical_and = _logical("logical_and", ew.and_p)
logical_or = _logical("logical_or", ew.or_p)
logical_xor = _logical("logical_xor", ew.xor_p)


def bitwise_invert(x, /, out=None, *, dtype=None):
    """Elementwise bitwise NOT (``~x``; logical NOT for booleans).

    >>> fnp.bitwise_invert(fnp.asarray([0, 5], dtype=fnp.uint8)).tolist()
    [255, 250]
    """
    if out is not None or dtype is not None:
        return call_ufunc("bitwise_invert", bitwise_invert, out, dtype, x)
    return ew.not_p.bind(to_array(x))


bitwise_not = invert = bitwise_invert


def real(val):
    """The real part (real inputs are returned unchanged).

    >>> fnp.real(fnp.asarray([1 + 2j])).tolist()
    [1.0]
    """
    x = to_array(val)
    return ew.real_p.bind(x) if x.dtype.kind == "c" else x


def imag(val):
    """The imaginary part (zeros for real inputs).

    >>> fnp.imag(fnp.asarray([1 + 2j])).tolist()
    [2.0]
    """
    x = to_array(val)
    return ew.imag_p.bind(x) if x.dtype.kind == "c" else zeros_like(x)


def conj(x, /, out=None, *, dtype=None):
    """Complex conjugate (real inputs are returned unchanged).

    >>> fnp.conj(fnp.asarray([1 + 2j])).tolist()
    [(1-2j)]
    """
    if out is not None or dtype is not None:
        return call_ufunc("conj", conj, out, dtype, x)
    x = to_array(x)
    return ew.conj_p.bind(x) if x.dtype.kind == "c" else x


conjugate = conj


def clip(a, a_min=None, a_max=None, out=None, *, min=None, max=None):  # noqa: A002
    """Clamp ``a`` to ``[min, max]`` (either bound may be None), keeping ``a``'s dtype.
    The bounds go by NumPy's names ``a_min``/``a_max`` or the array API's ``min``/``max``.

    >>> fnp.clip(fnp.asarray([-1, 5, 10]), 0, 6).tolist()
    [0, 5, 6]
    >>> fnp.clip(fnp.asarray([-1, 5, 10]), a_max=6).tolist()
    [-1, 5, 6]
    """
    check_out("clip", out)
    if a_min is not None and min is not None or a_max is not None and max is not None:
        raise TypeError("clip: pass each bound once, as a_min/a_max (NumPy) or min/max "
                        "(array API), not both")
    min = a_min if min is None else min  # noqa: A001
    max = a_max if max is None else max  # noqa: A001
    x = to_array(a)
    out = x
    # maximum/minimum, as NumPy and JAX: a NaN bound gives NaN, and at a bound the derivative
    # is split evenly between a and the bound (the central difference there)
    if min is not None:
        out = maximum(out, min if isinstance(min, (int, float)) else to_array(min).astype(x.dtype))
    if max is not None:
        out = minimum(out, max if isinstance(max, (int, float)) else to_array(max).astype(x.dtype))
    return out


def where(condition, x=None, y=None, /):
    """Select ``x`` where ``condition`` is true, else ``y`` (broadcasting all three); with
    ``condition`` alone, ``nonzero(condition)``.

    >>> fnp.where(fnp.asarray([True, False]), fnp.asarray([1, 2]), fnp.asarray([8, 9])).tolist()
    [1, 9]
    """
    if x is None and y is None:
        from ._searching_sorting import nonzero

        return nonzero(condition)
    if x is None or y is None:
        raise ValueError("where: pass both x and y, or neither (then it is nonzero(condition))")
    condition = to_array(condition)
    if condition.dtype != dtypes.bool_:
        condition = condition != 0
    x1, x2 = promote_args("where", x, y)
    condition, x1, x2 = broadcast_args("where", condition, x1, x2)
    return ew.select_p.bind(condition, x1, x2)


def _install_operators():
    """Make these functions the Array and tracer operators themselves (fnx.core.array cannot
    import them), so ``x + y`` runs one Python frame before its primitive."""
    for name, fn in (("add", add), ("sub", subtract), ("mul", multiply), ("truediv", divide),
                     ("and", bitwise_and), ("or", bitwise_or), ("xor", bitwise_xor),
                     ("lshift", bitwise_left_shift), ("rshift", bitwise_right_shift)):
        setattr(ArrayOps, f"__{name}__", fn)
        setattr(ArrayOps, f"__r{name}__", _reflected(fn))
    for name, fn in (("lt", less), ("le", less_equal), ("gt", greater), ("ge", greater_equal),
                     ("eq", equal), ("ne", not_equal)):
        setattr(ArrayOps, f"__{name}__", fn)


def _reflected(fn):
    def method(self, other):
        return fn(other, self)

    method.__name__ = f"reflected_{fn.__name__}"
    return method


_install_operators()

from ._creation import full_like, ones_like, zeros_like  # noqa: E402


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
