"""Elementwise primitives: each section is the primitive with all its rules side by side.

JVP rules are written with Array operators (which bind primitives), so they are themselves
differentiable and higher derivatives come for free.
"""

import math

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero, instantiate, is_undefined
from ..errors import DTypeError
from ..primitive import Primitive
from .family import deflinear, defjvp, elementwise, errstate


def _unbroadcast_none(ct):
    return ct


# --- arithmetic -----------------------------------------------------------------------------

neg_p = elementwise("neg", 1, np.negative, "(-{0})", "numeric")
deflinear(neg_p, lambda ct, x: [neg_p.bind(ct)])

add_p = elementwise("add", 2, np.add, "({0} + {1})", "numeric")
deflinear(add_p, lambda ct, x, y: [ct, ct])

sub_p = elementwise("sub", 2, np.subtract, "({0} - {1})", "numeric")
deflinear(sub_p, lambda ct, x, y: [ct, neg_p.bind(ct)])


def _skip_zero_jvp(prim, only_y):
    """add/sub tangents without materializing a zero: ``t + 0 = t``, ``t - 0 = t``,
    ``0 - t = -t`` (keeps linearized programs free of zero arrays and their transposes)."""
    dense = prim.jvp

    def jvp(primals, tangents, **params):
        tx, ty = tangents
        if (type(tx) is Zero) != (type(ty) is Zero):
            ans = prim.bind(*primals, **params)
            return ans, (only_y(ty) if type(tx) is Zero else tx)
        return dense(primals, tangents, **params)

    prim.jvp = jvp


_skip_zero_jvp(add_p, lambda ty: ty)
_skip_zero_jvp(sub_p, lambda ty: neg_p.bind(ty))

mul_p = elementwise("mul", 2, np.multiply, "({0} * {1})", "numeric")
defjvp(mul_p, lambda t, ans, x, y: t * y, lambda t, ans, x, y: x * t)


def _mul_transpose(ct, x, y):
    if is_undefined(x) and is_undefined(y):
        raise TypeError("mul: transpose of a product of two linear values (not linear)")
    if is_undefined(x):
        return [mul_p.bind(ct, y), None]
    return [None, mul_p.bind(x, ct)]


mul_p.transpose = _mul_transpose


@errstate
def _div_impl(x, y):
    if x.dtype.kind in "iu":
        # integer division rounds toward zero, as C and jax.lax.div
        q = np.floor_divide(x, y)
        fix = (np.remainder(x, y) != 0) & ((x < 0) != (y < 0))
        return np.where(fix, q + 1, q).astype(x.dtype)
    return np.divide(x, y)


div_p = elementwise("div", 2, _div_impl, "div({0}, {1})", "numeric")
defjvp(div_p, lambda t, ans, x, y: t / y, lambda t, ans, x, y: -t * ans / y)


def _div_transpose(ct, x, y):
    if is_undefined(y):
        raise TypeError("div: transpose with respect to the denominator (not linear)")
    return [div_p.bind(ct, y), None]


div_p.transpose = _div_transpose


@errstate
def _rem_impl(x, y):
    return np.fmod(x, y)  # sign of the dividend, as C and jax.lax.rem


rem_p = elementwise("rem", 2, _rem_impl, "fmod({0}, {1})", "real")
defjvp(rem_p, lambda t, ans, x, y: t, lambda t, ans, x, y: -t * trunc_p.bind(x / y))

pow_p = elementwise("pow", 2, errstate(np.power), "power({0}, {1})", "inexact")


def _pow_jvp_x(t, ans, x, y):
    # y * x**(y-1), defined as 0 where y == 0 (so d/dx x**0 = 0 even at x = 0)
    from fnx import numpy as fnp

    return t * fnp.where(y == 0, 0.0, y * pow_p.bind(x, y - 1))


def _pow_jvp_y(t, ans, x, y):
    from fnx import numpy as fnp

    # log(x) * x**y, with 0 where x == 0 (the limit from the right for y > 0)
    safe_x = fnp.where(x == 0, 1.0, x)
    return t * fnp.where(x == 0, 0.0, ans * log_p.bind(safe_x))


defjvp(pow_p, _pow_jvp_x, _pow_jvp_y)


@errstate
def _integer_pow_impl(x, *, y):
    if x.dtype.kind in "iu" and y < 0:
        raise DTypeError(f"integer_pow: integer base to a negative power {y}; use floats")
    return np.power(x, x.dtype.type(y)) if x.dtype.kind != "b" else x


integer_pow_p = elementwise("integer_pow", 1, _integer_pow_impl, "ipow({0}, {y})", "numeric")
def _integer_pow_jvp(t, ans, x, *, y):
    if y == 0:
        return t * 0
    if y == 1:
        return t
    return t * (y * (x if y == 2 else integer_pow_p.bind(x, y=y - 1)))


defjvp(integer_pow_p, _integer_pow_jvp)

max_p = elementwise("max", 2, np.maximum, "maximum({0}, {1})", "real")
min_p = elementwise("min", 2, np.minimum, "minimum({0}, {1})", "real")


def _minmax_jvp(prim, pick_left):
    # Ties split the tangent evenly between both sides (JAX's convention for max/min).
    def left(t, ans, x, y):
        from fnx import numpy as fnp

        return t * fnp.where(pick_left(x, y), 1.0, fnp.where(x == y, 0.5, 0.0)).astype(t.dtype)

    def right(t, ans, x, y):
        from fnx import numpy as fnp

        return t * fnp.where(pick_left(y, x), 1.0, fnp.where(x == y, 0.5, 0.0)).astype(t.dtype)

    defjvp(prim, left, right)


_minmax_jvp(max_p, lambda a, b: a > b)
_minmax_jvp(min_p, lambda a, b: a < b)

atan2_p = elementwise("atan2", 2, np.arctan2, "arctan2({0}, {1})", "float")
defjvp(
    atan2_p,
    lambda t, ans, x, y: t * (y / (x * x + y * y)),
    lambda t, ans, x, y: t * (-x / (x * x + y * y)),
)

nextafter_p = elementwise("nextafter", 2, np.nextafter, "nextafter({0}, {1})", "float",
                          differentiable=False)
copysign_p = elementwise("copysign", 2, np.copysign, "copysign({0}, {1})", "float")
defjvp(copysign_p, lambda t, ans, x, y: t * sign_p.bind(x) * sign_p.bind(ans), None)

# --- unary math -----------------------------------------------------------------------------


def _unary(name, impl, expr, jvp, kinds="inexact"):
    prim = elementwise(name, 1, errstate(impl), expr, kinds)
    if jvp is not None:
        defjvp(prim, jvp)
    return prim


exp_p = _unary("exp", np.exp, "exp({0})", lambda t, ans, x: t * ans)
exp2_p = _unary("exp2", np.exp2, "exp2({0})", lambda t, ans, x: t * (ans * math.log(2.0)))
log_p = _unary("log", np.log, "log({0})", lambda t, ans, x: t / x)
expm1_p = _unary("expm1", np.expm1, "expm1({0})", lambda t, ans, x: t * (ans + 1))
log1p_p = _unary("log1p", np.log1p, "log1p({0})", lambda t, ans, x: t / (x + 1))
tanh_p = _unary("tanh", np.tanh, "tanh({0})", lambda t, ans, x: t * (1 - ans * ans))


@errstate
def _logistic_impl(x):
    # 1/(1+exp(-x)) overflows harmlessly to 0 for very negative x
    return (1 / (1 + np.exp(-x))).astype(x.dtype)


logistic_p = elementwise("logistic", 1, _logistic_impl, "logistic({0})", "inexact")
defjvp(logistic_p, lambda t, ans, x: t * (ans * (1 - ans)))

sin_p = _unary("sin", np.sin, "sin({0})", lambda t, ans, x: t * cos_p.bind(x))
cos_p = _unary("cos", np.cos, "cos({0})", lambda t, ans, x: -t * sin_p.bind(x))
tan_p = _unary("tan", np.tan, "tan({0})", lambda t, ans, x: t * (1 + ans * ans))
asin_p = _unary("asin", np.arcsin, "arcsin({0})", lambda t, ans, x: t * rsqrt_p.bind(1 - x * x))
acos_p = _unary("acos", np.arccos, "arccos({0})", lambda t, ans, x: -t * rsqrt_p.bind(1 - x * x))
atan_p = _unary("atan", np.arctan, "arctan({0})", lambda t, ans, x: t / (1 + x * x))
sinh_p = _unary("sinh", np.sinh, "sinh({0})", lambda t, ans, x: t * cosh_p.bind(x))
cosh_p = _unary("cosh", np.cosh, "cosh({0})", lambda t, ans, x: t * sinh_p.bind(x))
asinh_p = _unary("asinh", np.arcsinh, "arcsinh({0})", lambda t, ans, x: t * rsqrt_p.bind(x * x + 1))
acosh_p = _unary("acosh", np.arccosh, "arccosh({0})", lambda t, ans, x: t * rsqrt_p.bind(x * x - 1))
atanh_p = _unary("atanh", np.arctanh, "arctanh({0})", lambda t, ans, x: t / (1 - x * x))
sqrt_p = _unary("sqrt", np.sqrt, "sqrt({0})", lambda t, ans, x: t / (ans * 2))


def _rsqrt_impl(x):
    return (1 / np.sqrt(x)).astype(x.dtype)


rsqrt_p = _unary("rsqrt", _rsqrt_impl, "(1 / sqrt({0}))", lambda t, ans, x: t * (ans / x) * -0.5)
cbrt_p = _unary("cbrt", np.cbrt, "cbrt({0})", lambda t, ans, x: t / (3 * ans * ans), "float")

# erf / lgamma / digamma / erf_inv are not in NumPy: Numba ufuncs are their eager kernels,
# built (or loaded from the kernel cache) on first use so that `import fnx` does not import
# Numba. They live in generated modules keyed by content, like jit's kernels, so an edit to
# _scalar_special invalidates them too (fnx.jit.cache).
_F = ["float32(float32)", "float64(float64)"]


def _numba_unary(expr):
    """The eager impl computing ``expr``, Python source in the scalar ``x``."""
    ufunc = []
    imports = ["from fnx.core.ops import _scalar_special"] if "_scalar_special." in expr else []

    def impl(x):
        if not ufunc:
            from ...jit import cache

            ufunc.append(cache.load_ufunc(expr, _F, imports))
        if x.dtype == np.float16:
            return ufunc[0](x.astype(np.float32)).astype(np.float16)
        return ufunc[0](x) if isinstance(x, np.ndarray) else _cuda_fallback(ufunc[0], x)

    return impl


def _cuda_fallback(ufunc, x):
    # CuPy buffers: round-trip through the host (eager only; jit lowers these natively)
    import cupy

    return cupy.asarray(ufunc(x.get()))


_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
erf_p = _unary("erf", _numba_unary("math.erf(x)"), "erf({0})",
               lambda t, ans, x: t * (_TWO_OVER_SQRT_PI * exp_p.bind(-(x * x))), "float")
erf_inv_p = _unary("erf_inv", _numba_unary("_scalar_special.erf_inv(x)"), "erf_inv({0})",
                   lambda t, ans, x: t * ((math.sqrt(math.pi) / 2) * exp_p.bind(ans * ans)),
                   "float")
lgamma_p = _unary("lgamma", _numba_unary("math.lgamma(x)"), "lgamma({0})",
                  lambda t, ans, x: t * digamma_p.bind(x), "float")
digamma_p = _unary("digamma", _numba_unary("_scalar_special.digamma(x)"), "digamma({0})", None,
                   "float")
digamma_p.differentiable = False  # polygamma(1) is not a primitive yet

# Nonsmooth ops: sign, floor, ceil, round have zero derivative almost everywhere.
sign_p = elementwise("sign", 1, np.sign, "sign({0})", "numeric")


def _sign_jvp(t, ans, x):
    # piecewise constant for reals; a complex sign(x) = x / |x| moves on the unit circle:
    # d sign = (dx - sign Re(conj(sign) dx)) / |x| (0 at x == 0, as abs)
    if _get_aval(x).dtype.kind == "c":
        from fnx import numpy as fnp

        r = fnp.abs(x)
        return (t - ans * fnp.real(fnp.conj(ans) * t)) / fnp.where(r == 0, 1, r)
    return t * 0


defjvp(sign_p, _sign_jvp)
floor_p = elementwise("floor", 1, np.floor, "floor({0})", "float")
defjvp(floor_p, lambda t, ans, x: t * 0)
ceil_p = elementwise("ceil", 1, np.ceil, "ceil({0})", "float")
defjvp(ceil_p, lambda t, ans, x: t * 0)
round_p = elementwise("round", 1, np.rint, "rint({0})", "float")  # half to even, as NumPy
defjvp(round_p, lambda t, ans, x: t * 0)
trunc_p = elementwise("trunc", 1, np.trunc, "trunc({0})", "float")
defjvp(trunc_p, lambda t, ans, x: t * 0)


def _abs_impl(x):
    return np.abs(x)


def _abs_abstract_eval(x):
    if x.dtype.kind == "b":
        raise DTypeError("abs: dtype bool is not supported")
    out = {np.dtype("complex64"): np.float32, np.dtype("complex128"): np.float64}.get(x.dtype)
    return ShapedArray(x.shape, out or x.dtype)


abs_p = elementwise("abs", 1, _abs_impl, "abs({0})", "numeric")
abs_p.abstract_eval = _abs_abstract_eval


def _abs_jvp(t, ans, x):
    # d|x| = sign(x): 0 at x == 0, the convention of JAX and PyTorch (and the central
    # difference there). |x| is real for complex x too: its tangent is Re(conj(x) dx) / |x|.
    if _get_aval(x).dtype.kind == "c":
        from fnx import numpy as fnp

        return fnp.real(fnp.conj(x) * t) / fnp.where(ans == 0, 1, ans)
    return t * sign_p.bind(x)


defjvp(abs_p, _abs_jvp)

# --- complex parts ----------------------------------------------------------------------------


def _complex_part(name, impl, expr):
    prim = elementwise(name, 1, impl, expr, "any")

    def abstract_eval(x):
        dt = {np.dtype("complex64"): np.float32, np.dtype("complex128"): np.float64}.get(x.dtype)
        return ShapedArray(x.shape, dt or x.dtype)

    prim.abstract_eval = abstract_eval
    return prim


real_p = _complex_part("real", lambda x: np.real(x).copy(), "real({0})")
imag_p = _complex_part("imag", lambda x: np.imag(x).copy(), "imag({0})")
conj_p = elementwise("conj", 1, np.conjugate, "conj({0})", "any")
deflinear(conj_p, lambda ct, x: [conj_p.bind(ct)])
deflinear(real_p, lambda ct, x: [convert_element_type(ct, x.aval.dtype)])
deflinear(imag_p, lambda ct, x: [
    convert_element_type(ct, x.aval.dtype) * np.array(-1j, x.aval.dtype)])


def _complex_impl(x, y):
    out = np.empty(x.shape, np.complex64 if x.dtype == np.float32 else np.complex128)
    out.real, out.imag = x, y
    return out


complex_p = elementwise("complex", 2, _complex_impl, "complex({0}, {1})", "float")


def _complex_abstract_eval(x, y):
    from .family import check_same_avals

    check_same_avals("complex", [x, y])
    return ShapedArray(x.shape, np.complex64 if x.dtype == np.float32 else np.complex128)


complex_p.abstract_eval = _complex_abstract_eval
deflinear(complex_p, lambda ct, x, y: [real_p.bind(ct), neg_p.bind(imag_p.bind(ct))])

# --- predicates and logic (no derivatives) ---------------------------------------------------

BOOL = np.dtype(bool)


def _pred(name, impl, expr, kinds="any", nargs=1):
    return elementwise(name, nargs, impl, expr, kinds, out_dtype=BOOL)


is_finite_p = _pred("is_finite", np.isfinite, "isfinite({0})")
is_nan_p = _pred("is_nan", np.isnan, "isnan({0})")
is_inf_p = _pred("is_inf", np.isinf, "isinf({0})")
eq_p = _pred("eq", np.equal, "({0} == {1})", nargs=2)
ne_p = _pred("ne", np.not_equal, "({0} != {1})", nargs=2)
lt_p = _pred("lt", np.less, "({0} < {1})", "real", nargs=2)
le_p = _pred("le", np.less_equal, "({0} <= {1})", "real", nargs=2)
gt_p = _pred("gt", np.greater, "({0} > {1})", "real", nargs=2)
ge_p = _pred("ge", np.greater_equal, "({0} >= {1})", "real", nargs=2)

not_p = elementwise("not", 1, lambda x: np.logical_not(x) if x.dtype == BOOL else np.invert(x),
                    "bnot({0})", "intbool", differentiable=False)
and_p = elementwise("and", 2, np.bitwise_and, "({0} & {1})", "intbool", differentiable=False)
or_p = elementwise("or", 2, np.bitwise_or, "({0} | {1})", "intbool", differentiable=False)
xor_p = elementwise("xor", 2, np.bitwise_xor, "({0} ^ {1})", "intbool", differentiable=False)


def _shift_impl(np_fn):
    @errstate
    def impl(x, y):
        # out-of-range shift counts give 0 (or -1 for arithmetic right shifts of negatives)
        bits = x.dtype.itemsize * 8
        big = (y < 0) | (y >= bits)
        out = np_fn(x, np.where(big, 0, y).astype(x.dtype))
        if np_fn is np.right_shift and x.dtype.kind == "i":
            fill = np.where(x < 0, -1, 0).astype(x.dtype)
        else:
            fill = np.zeros((), x.dtype)
        return np.where(big, fill, out).astype(x.dtype)

    return impl


shift_left_p = elementwise("shift_left", 2, _shift_impl(np.left_shift), "shl({0}, {1})", "int",
                           differentiable=False)
shift_right_p = elementwise("shift_right", 2, _shift_impl(np.right_shift), "shr({0}, {1})",
                            "int", differentiable=False)
population_count_p = elementwise(
    "population_count", 1, lambda x: np.bitwise_count(x).astype(x.dtype), "popcount({0})",
    "int", differentiable=False)

# --- select -------------------------------------------------------------------------------


def _select_abstract_eval(pred, on_true, on_false):
    from .family import check_same_avals

    if pred.dtype != BOOL:
        raise DTypeError(f"select: the predicate must be bool, got {pred.dtype}")
    if pred.shape != on_true.shape:
        raise DTypeError(f"select: predicate shape {pred.shape} != operand shape {on_true.shape}")
    check_same_avals("select", [on_true, on_false])
    return on_true


select_p = elementwise("select", 3, lambda p, a, b: np.where(p, a, b), "where({0}, {1}, {2})")
select_p.abstract_eval = _select_abstract_eval


def _select_jvp(primals, tangents):
    pred, a, b = primals
    _, ta, tb = tangents
    ans = select_p.bind(pred, a, b)
    if type(ta) is Zero and type(tb) is Zero:
        return ans, Zero(ta.aval)
    return ans, select_p.bind(pred, instantiate(ta), instantiate(tb))


def _select_transpose(ct, pred, a, b):
    if is_undefined(pred):
        raise TypeError("select: the predicate cannot be linear")
    zeros = full(ct.shape, 0, ct.dtype)
    return [
        None,
        select_p.bind(pred, ct, zeros) if is_undefined(a) else None,
        select_p.bind(pred, zeros, ct) if is_undefined(b) else None,
    ]


select_p.jvp = _select_jvp
select_p.transpose = _select_transpose

# --- dtype conversion ---------------------------------------------------------------------


@errstate
def _convert_impl(x, *, new_dtype, weak_type=False):
    del weak_type  # unused: only the aval carries it
    if x.dtype.kind == "c" and new_dtype.kind != "c":
        x = x.real
    return x.astype(new_dtype)


convert_element_type_p = Primitive("convert_element_type")
convert_element_type_p.impl = _convert_impl
convert_element_type_p.abstract_eval = lambda x, *, new_dtype, weak_type=False: ShapedArray(
    x.shape, new_dtype)
# Explicit conversions make strong values; fnx.numpy's promotion of weak operands among
# themselves (``weak_int * 2.5``) passes ``weak_type=True`` to keep the result weak.
convert_element_type_p.weak_type_rule = lambda weak, *, new_dtype, weak_type=False: weak_type
convert_element_type_p.batch = lambda axis_size, args, dims, **params: (
    convert_element_type_p.bind(*args, **params), dims[0])
convert_element_type_p.fusion_kind = "elementwise"
convert_element_type_p.scalar_expr = "cast({0}, {new_dtype})"


def _convert_jvp(primals, tangents, *, new_dtype, **weak):
    (x,), (t,) = primals, tangents
    ans = convert_element_type_p.bind(x, new_dtype=new_dtype, **weak)
    if type(t) is Zero or new_dtype.kind not in "fc" or x.dtype.kind not in "fc":
        return ans, Zero(ShapedArray(x.shape, new_dtype))
    return ans, convert_element_type_p.bind(t, new_dtype=new_dtype)


def _convert_transpose(ct, x, *, new_dtype, weak_type=False):
    del new_dtype, weak_type  # unused
    return [convert_element_type_p.bind(ct, new_dtype=x.aval.dtype)]


convert_element_type_p.jvp = _convert_jvp
convert_element_type_p.linear = True
convert_element_type_p.transpose = _convert_transpose


def convert_element_type(x, dtype):
    """Convert ``x`` to ``dtype`` (a no-op when it already has it).

    >>> fnx.lax.convert_element_type(fnp.asarray([1.7, -1.7]), fnp.int32).tolist()
    [1, -1]
    """
    # hot path: a module-level check, no per-call import or ShapedArray for concrete arrays;
    # a weak value is converted even to its own dtype (explicit conversions make it strong)
    if type(x) is _Array:
        if x._buf.dtype == dtype and not x._weak:
            return x
    else:
        aval = _get_aval(x)
        if aval.dtype == dtype and not aval.weak_type:
            return x
    dtype = np.dtype(dtype)
    return convert_element_type_p.bind(x, new_dtype=dtype)


def _bitcast_abstract_eval(x, *, new_dtype):
    if x.dtype.itemsize != new_dtype.itemsize:
        raise DTypeError(f"bitcast_convert_type: {x.dtype} and {new_dtype} differ in size")
    return ShapedArray(x.shape, new_dtype)


bitcast_convert_type_p = Primitive("bitcast_convert_type")
bitcast_convert_type_p.impl = lambda x, *, new_dtype: x.view(new_dtype)
bitcast_convert_type_p.abstract_eval = _bitcast_abstract_eval
bitcast_convert_type_p.batch = lambda axis_size, args, dims, **params: (
    bitcast_convert_type_p.bind(*args, **params), dims[0])
bitcast_convert_type_p.fusion_kind = "elementwise"
bitcast_convert_type_p.scalar_expr = "bitcast({0}, {new_dtype})"
bitcast_convert_type_p.differentiable = False


def full(shape, value, dtype):
    """An array of ``shape`` filled with the Python scalar ``value`` (a broadcast constant).

    >>> fnx.lax.full((2,), 3.0, fnp.float32).tolist()
    [3.0, 3.0]
    """
    from ..array import wrap
    from .shape import broadcast_in_dim

    scalar = wrap(np.array(value, dtype=dtype))
    if tuple(shape) == ():
        return scalar
    return broadcast_in_dim(scalar, tuple(shape), ())


from ..array import Array as _Array  # noqa: E402  (after the primitives: import cycle)
from ..tracing import get_aval as _get_aval  # noqa: E402
