"""Vectorizable elementwise math for fnx's generated Numba kernels.

Why this module exists
----------------------
Inside ``@njit`` code, Numba lowers ``np.exp``, ``np.log``, ``np.tanh``,
``math.erf`` ... to calls of the scalar C math library.  LLVM cannot
vectorize a loop containing such a call (there is no SVML/libmvec mapping
through llvmlite), so a fused elementwise kernel that contains a single
transcendental runs one element at a time: on the reference machine
``tanh`` over 2**24 float32 took 280 ms inside Numba against 6.5 ms in
numpy (see shared/numba-notes.md).

This module implements those functions in plain arithmetic (range reduction,
polynomials, a few bit casts) so that LLVM can inline them into the caller's
loop and vectorize the whole loop body (AVX2/AVX-512 on x86).

Usage (from generated kernels)::

    from fnx.jit.vecmath import vexp, vtanh

    @njit(cache=True, error_model='numpy', fastmath={'contract'})
    def kernel(a0, out):
        for i in range(a0.size):
            out[i] = vtanh(a0[i]) * vexp(a0[i])

Every helper takes one float32 or float64 scalar and returns the same type
(integers and bools are computed in float64).  They are also callable from
plain Python on scalars.  ``NAMES`` maps fnx op names to helper names for
the code generator.  Numba's cache does not notice changes in functions that a
cached kernel calls, so fnx's kernel cache keys every kernel on the content of
this file (``fnx.jit.cache.RUNTIME_SOURCES``).

Design notes
------------
* Each helper is a Numba dispatcher compiled with ``forceinline=True``
  (LLVM ``alwaysinline``), ``error_model='numpy'`` and
  ``fastmath={'contract'}``.  LLVM inlines it into the kernel's loop, where
  it vectorizes.  We deliberately do *not* use Numba's IR-level
  ``inline='always'``: IR inlining re-lowers the body with the *caller's*
  fastmath flags, so a kernel compiled with ``reassoc`` (sum reductions) or
  ``fastmath=True`` could re-associate the exact/compensated steps below or
  drop their NaN/Inf handling.  With LLVM-level inlining the helper's
  instructions keep their own flags.  (IR inlining was also 3-5x slower to
  compile.)
* Helpers are compiled once per process and dtype, and are ``cache=True``
  (the cache lives beside this file, or under ``NUMBA_CACHE_DIR`` / the
  user-wide Numba cache when the package is read-only), so in a later
  process a freshly generated kernel only links them: first use of a helper
  costs ~0.1-0.4 s cold and ~2 ms cached.  The cached code keeps its LLVM
  IR, so it is still inlined and vectorized.  That cache is keyed on this
  file's content, and so are fnx's kernels that *call* the helpers.
* Integer bit manipulation (2**n scaling, exponent/mantissa split) is done
  inside tiny ``@intrinsic`` s so that float32 code does not get promoted to
  int64/float64 by Numba's typing rules.  Rounding, fma and copysign map to
  LLVM intrinsics, which vectorize (``llvm.fma`` needs hardware FMA to be
  fast; without it it is a correct but slow libm call).
* Every float32 constant is a ``np.float32``: a plain Python float would
  promote the float32 path to float64 and halve the vector width.
* Polynomial coefficients are near-minimax fits (Chebyshev nodes + Lawson
  iterations in 50-digit mpmath); the fit error is noted next to each table.

Accuracy: maximum error measured against mpmath (float64, ~10^5 random
points over the whole range) and against float64 libm for every third
float32 bit pattern (every pattern for sin/cos), in ulps of the result type:

=========  =============================  ==============================
function   float64                        float32
=========  =============================  ==============================
vexp       0.94                           1.05
vexpm1     1.78                           1.58
vlog       1.09                           0.91
vlog1p     1.32                           1.20
vtanh      2.17                           1.33
vsigmoid   2.08                           2.40
verf       1.08                           1.15
vsin       1.20 (|x| <= 2**45, else nan)  0.92 (all finite x)
vcos       1.36 (|x| <= 2**45, else nan)  0.92 (all finite x)
=========  =============================  ==============================

Special values follow C99/numpy: exp overflow -> inf, underflow -> 0 (with
gradual underflow through the subnormal range), log(0) -> -inf,
log(x<0) -> nan, log(inf) -> inf, expm1/log1p/tanh/erf/sin keep the sign of
zero, tanh -> +-1 and sigmoid -> 1 / 0 (or the subnormal value) at large
|x|, NaN propagates, subnormal inputs are handled exactly.

Limitations:

* float64 ``vsin``/``vcos`` use a 3-part Cody-Waite reduction that is exact
  for |x| < 2**45 (~3.5e13); beyond that they return NaN instead of a wrong
  number (a full Payne-Hanek reduction needs table gathers).  The float32
  versions reduce in float64 against 4 doubles of 2/pi and are accurate for
  every finite float32.  If float64 sin/cos of enormous arguments matter,
  keep ``np.sin``/``np.cos`` (libm) for them.
* Everything vectorizes (checked by tests/test_vecmath.py), but float32
  ``vsin``/``vcos`` run their reduction and polynomials in float64 lanes
  (half the vector width): ~2x slower than numpy's standalone SIMD sin,
  still far faster than a libm call per element inside a fused loop.
* ``pow`` is not provided: an accurate float64 pow needs a double-double log
  (errors scale with |y*log(x)|) plus numpy's many integer-exponent special
  cases.  The code generator should emit ``x*x`` etc. for small integer
  powers and ``vexp(y*vlog(x))`` only where ~|y log x| ulp accuracy is fine.
* A kernel compiled with ``fastmath=True`` keeps its own flags for its own
  arithmetic; the helpers' results are still IEEE-correct, but the kernel's
  own NaN/Inf assumptions apply to what it does with them.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic, overload

__all__ = [
    "NAMES",
    "vexp", "vexpm1", "vlog", "vlog1p", "vtanh", "vsigmoid", "verf",
    "vsin", "vcos",
]

#: fnx op name -> helper name in this module (for the code generator).
NAMES = {
    "exp": "vexp",
    "expm1": "vexpm1",
    "log": "vlog",
    "log1p": "vlog1p",
    "tanh": "vtanh",
    "logistic": "vsigmoid",
    "sigmoid": "vsigmoid",
    "erf": "verf",
    "sin": "vsin",
    "cos": "vcos",
}

_F = np.float32

_PUBLIC_OPTS = dict(forceinline=True, error_model="numpy", fastmath={"contract"})
# Internal pieces: same flags, no Python/cfunc wrappers (never called from Python).
_INTERNAL_OPTS = dict(_PUBLIC_OPTS, no_cpython_wrapper=True, no_cfunc_wrapper=True)


def _cached_njit(**opts):
    """njit(cache=True, ...), or uncached where no cache directory is writable."""
    def deco(fn):
        try:
            return njit(cache=True, **opts)(fn)
        except RuntimeError:    # "cannot cache function ...: no locator available"
            return njit(**opts)(fn)
    return deco


_inl = _cached_njit(**_INTERNAL_OPTS)


# ---------------------------------------------------------------------------
# LLVM intrinsics (all generic over float32 / float64)
# ---------------------------------------------------------------------------

def _is_float(t):
    return isinstance(t, types.Float) and t.bitwidth in (32, 64)


def _llvm_unary(name):
    def codegen(context, builder, sig, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic(name, [ty], ir.FunctionType(ty, [ty]))
        return builder.call(fn, args)
    return codegen


@intrinsic
def _rint(typingctx, x):
    """Round to nearest integer, ties to even (llvm.rint)."""
    if not _is_float(x):
        return None
    return x(x), _llvm_unary("llvm.rint")


@intrinsic
def _floor(typingctx, x):
    """floor(x) as a float (llvm.floor)."""
    if not _is_float(x):
        return None
    return x(x), _llvm_unary("llvm.floor")


@intrinsic
def _fma(typingctx, a, b, c):
    """a*b + c with a single rounding (llvm.fma)."""
    if not (_is_float(a) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic(
            "llvm.fma", [ty], ir.FunctionType(ty, [ty, ty, ty]))
        return builder.call(fn, args)
    return a(a, b, c), codegen


@intrinsic
def _copysign(typingctx, mag, sgn):
    """|mag| with the sign bit of sgn (llvm.copysign)."""
    if not (_is_float(mag) and mag == sgn):
        return None

    def codegen(context, builder, sig, args):
        ty = args[0].type
        fn = builder.module.declare_intrinsic(
            "llvm.copysign", [ty], ir.FunctionType(ty, [ty, ty]))
        return builder.call(fn, args)
    return mag(mag, sgn), codegen


def _fmt(llty):
    """(int type, mantissa bits, exponent bias) for an LLVM float type."""
    if isinstance(llty, ir.FloatType):
        return ir.IntType(32), 23, 127
    return ir.IntType(64), 52, 1023


@intrinsic
def _ldexp(typingctx, p, n):
    """p * 2**n for integral float n, |n| <= 2044 (float64) or 252 (float32).

    The scale is applied as two powers of two, 2**(n>>1) * 2**(n - (n>>1)),
    so that n may run past the normal exponent range: results overflow to
    inf and underflow gradually through subnormals with a single rounding.
    NaN n is mapped to 0 before the conversion (no poison values); callers
    keep n in range by clamping x.  (``llvm.fptosi.sat`` would do both but
    is scalarized on x86, costing 4x in exp.)
    """
    if not (_is_float(p) and p == n):
        return None

    def codegen(context, builder, sig, args):
        pv, nv = args
        ity, mbits, bias = _fmt(pv.type)
        i32 = ir.IntType(32)
        is_num = builder.fcmp_ordered("ord", nv, nv)
        nv = builder.select(is_num, nv, ir.Constant(nv.type, 0.0))
        ni = builder.fptosi(nv, i32)
        n1 = builder.ashr(ni, ir.Constant(i32, 1))
        n2 = builder.sub(ni, n1)

        def pow2(k):
            if ity.width != 32:
                k = builder.sext(k, ity)
            e = builder.add(k, ir.Constant(ity, bias))
            return builder.bitcast(builder.shl(e, ir.Constant(ity, mbits)), pv.type)
        return builder.fmul(builder.fmul(pv, pow2(n1)), pow2(n2))
    return p(p, n), codegen


@intrinsic
def _pow2i(typingctx, n):
    """2**n for integral float n in the normal exponent range (no checks: callers clamp).

    One conversion, add and shift: the cheap scaling for callers whose n cannot
    leave [-126, 127] (float32) / [-1022, 1023] (float64), unlike ``_ldexp``.
    """
    if not _is_float(n):
        return None

    def codegen(context, builder, sig, args):
        (nv,) = args
        ity, mbits, bias = _fmt(nv.type)
        e = builder.add(builder.fptosi(nv, ity), ir.Constant(ity, bias))
        return builder.bitcast(builder.shl(e, ir.Constant(ity, mbits)), nv.type)
    return n(n), codegen


@intrinsic
def _logsplit(typingctx, x):
    """For positive normal x return (k, m) with x = 2**k * m, m in [sqrt(.5), sqrt(2)).

    k is returned as a float of x's type.  Garbage (but no poison) for zero,
    negative, subnormal, inf and nan inputs: callers fix those up.
    """
    if not _is_float(x):
        return None

    def codegen(context, builder, sig, args):
        (xv,) = args
        ity, mbits, bias = _fmt(xv.type)
        if ity.width == 32:
            sqrt_half, one = 0x3F3504F3, 0x3F800000
        else:
            sqrt_half, one = 0x3FE6A09E667F3BCD, 0x3FF0000000000000
        ix = builder.bitcast(xv, ity)
        ix = builder.add(ix, ir.Constant(ity, one - sqrt_half))
        k = builder.sub(builder.ashr(ix, ir.Constant(ity, mbits)), ir.Constant(ity, bias))
        kf = builder.sitofp(k, xv.type)
        mant = builder.and_(ix, ir.Constant(ity, (1 << mbits) - 1))
        m = builder.bitcast(builder.add(mant, ir.Constant(ity, sqrt_half)), xv.type)
        return context.make_tuple(builder, sig.return_type, (kf, m))
    return types.UniTuple(x, 2)(x), codegen


@intrinsic
def _to_f64(typingctx, x):
    """float32 -> float64 (exact)."""
    if x != types.float32:
        return None

    def codegen(context, builder, sig, args):
        return builder.fpext(args[0], ir.DoubleType())
    return types.float64(x), codegen


@intrinsic
def _to_f32(typingctx, x):
    """float64 -> float32 (round to nearest)."""
    if x != types.float64:
        return None

    def codegen(context, builder, sig, args):
        return builder.fptrunc(args[0], ir.FloatType())
    return types.float32(x), codegen


# ---------------------------------------------------------------------------
# Constants and polynomial tables
# ---------------------------------------------------------------------------

_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471805599453          # ln2 = _LN2_HI + _LN2_LO
_LN2_LO = 2.3190468138462996e-17
_LOG2E_32 = _F(1.4426950408889634)
_LN2_HI_32 = _F(0.6931471824645996)
_LN2_LO_32 = _F(-1.9046542121259336e-09)

_NAN64 = np.float64(np.nan)
_INF64 = np.float64(np.inf)
_NAN32 = _F(np.nan)
_INF32 = _F(np.inf)

# exp/expm1: expm1(r) = r + r*r*Q(r), |r| <= ln2/2 * 1.01
# fit error (relative, on Q) ~2^-58.2
_QEXP64 = (
    0.5,
    0.1666666666666667,
    0.041666666666666616,
    0.008333333333325574,
    0.0013888888888920377,
    0.0001984126987677799,
    2.4801587242282283e-05,
    2.755725292744401e-06,
    2.7557350875299015e-07,
    2.510624063967071e-08,
    2.0889620343421245e-09,
)
# fit error ~2^-22.9 (times |r*r*Q| / |result| <= 0.06)
_QEXP32 = (
    _F(0.5),
    _F(0.16666573286056519),
    _F(0.04166686162352562),
    _F(0.008363739587366581),
    _F(0.0013901517959311604),
)

# log (float64, fdlibm scheme): log1p(f) = f - hf + s*(hf + z*R(z)),
# s = f/(2+f), z = s*s, hf = f*f/2, z <= 0.0295.  fit error ~2^-58.2
_LOGR64 = (
    0.6666666666666666,
    0.4000000000000089,
    0.28571428570794277,
    0.2222222239379039,
    0.18181795421782074,
    0.15386251417406505,
    0.13268463122724308,
    0.130898345898314,
)
# log (float32, no division): log1p(f) = f - f*f/2 + f**3 * P(f),
# f in [sqrt(.5)-1, sqrt(2)-1].  fit error ~2^-23.8 (times |f**3 P|/|log1p| <= 0.07)
_LOG1P32 = (
    _F(0.3333333134651184),
    _F(-0.24999994039535522),
    _F(0.20000728964805603),
    _F(-0.16668109595775604),
    _F(0.1424882411956787),
    _F(-0.12418440729379654),
    _F(0.1168055310845375),
    _F(-0.11529508978128433),
    _F(0.07046891003847122),
)

# tanh (float32), |x| < 0.625: tanh(x) = x + x**3 T(x*x).  fit error ~2^-27.6
_TANH32 = (
    _F(-0.3333333432674408),
    _F(0.13333304226398468),
    _F(-0.05395926162600517),
    _F(0.021768944337964058),
    _F(-0.008344022557139397),
    _F(0.0022928237449377775),
)

# sin(r) = r + r**3 S(r*r), cos(r) = 1 - r*r/2 + r**4 C(r*r)
# float64: |r| <= pi/4 * 1.02, fit errors ~2^-63.2 (S), ~2^-54.5 (C)
_SIN64 = (
    -0.16666666666666666,
    0.008333333333333331,
    -0.00019841269841263973,
    2.7557319218511108e-06,
    -2.505210595185698e-08,
    1.6058488192291144e-10,
    -7.584195629071958e-13,
)
_COS64 = (
    0.041666666666666664,
    -0.001388888888888706,
    2.480158729826677e-05,
    -2.7557317019239754e-07,
    2.087609486975281e-09,
    -1.1379012555492315e-11,
)
# float32 results (evaluated in float64): |r| <= pi/4, errors ~2^-32.4, ~2^-34.0
_SIN32 = (
    -0.1666666666381497,
    0.008333331862775099,
    -0.00019840081492488254,
    2.724934974082298e-06,
)
_COS32 = (
    0.041666666664299114,
    -0.0013888887665407846,
    2.4800597445732155e-05,
    -2.7300634190715084e-07,
)
# pi/2 = _PIO2_1 + _PIO2_2 + _PIO2_3 (float64 Cody-Waite with fma)
_PIO2_1 = 1.5707963267948966
_PIO2_2 = 6.123233995736766e-17
_PIO2_3 = -1.4973849048591698e-33
_TWO_OVER_PI = 0.6366197723675814
_SINCOS_LIMIT64 = 2.0 ** 45
# 2/pi as a sum of 4 doubles (float32 Payne-Hanek-style reduction)
_TOPI_0 = float.fromhex("0x1.45f306dc9c883p-1")
_TOPI_1 = float.fromhex("-0x1.6b01ec5417056p-55")
_TOPI_2 = float.fromhex("-0x1.6447e493ad4cep-109")
_TOPI_3 = float.fromhex("0x1.e21c820ff28b2p-163")

# erf, |x| < 0.84375: erf(x) = x + x*Q(x*x).  abs fit error ~2^-56.5 / ~2^-27.4
_ERF_SMALL = 0.84375
_ERFQ64 = (
    0.12837916709551256,
    -0.3761263890318341,
    0.1128379167093567,
    -0.026866170640844258,
    0.005223977576965519,
    -0.0008548323821965145,
    0.00012055200924147443,
    -1.4922140984882858e-05,
    1.6401861347472655e-06,
    -1.571599153908117e-07,
    1.0730870877092631e-08,
)
_ERFQ32 = (
    _F(0.12837916612625122),
    _F(-0.3761258125305176),
    _F(0.11282824724912643),
    _F(-0.026807019487023354),
    _F(0.005058675073087215),
    _F(-0.0006359975086525083),
)
# erf, 0.84375 <= |x| <= X_MAX: erf(x) = 1 - exp(-x*x) * R(t), t = (x - c)/h,
# R fitted to erfc(x)*exp(x*x) with weight exp(-x*x) (i.e. absolute error
# of erf): ~2^-58.5 (float64, x <= 6), ~2^-29.3 (float32, x <= 4).
_ERFR64_C = 3.421875
_ERFR64_INVH = 0.3878787878787879      # 1 / 2.578125
_ERF_XMAX64 = 6.0
_ERFR64 = (
    0.15858842991685637,
    -0.11096146837504543,
    0.0751897812954911,
    -0.0494699269598495,
    0.03167066271046772,
    -0.01976548085739219,
    0.012045024044272089,
    -0.007176998483652591,
    0.0041789552994637965,
    -0.0024141503918491884,
    0.001343184743447691,
    -0.0005968507814755358,
    0.0007404358610091652,
    -4.7007756201700426e-05,
    -0.0006475606015929965,
    -0.0018525085675520088,
    -0.001448268180466548,
    0.0005071456607982246,
    0.0024981681097094766,
    0.002741656882458365,
    0.0016279742139444521,
    0.0005326109505595651,
    7.830593510494954e-05,
)
_ERFR32_C = _F(2.421875)
_ERFR32_INVH = _F(0.6336633663366337)  # 1 / 1.578125
_ERF_XMAX32 = _F(4.0)
_ERFR32 = (
    _F(0.2167707234621048),
    _F(-0.12372481822967529),
    _F(0.06697387248277664),
    _F(-0.034614939242601395),
    _F(0.01789966970682144),
    _F(-0.006806159857660532),
    _F(0.0037367993500083685),
    _F(-0.005353898741304874),
    _F(-0.004010050557553768),
    _F(-0.002497240900993347),
)


# ---------------------------------------------------------------------------
# Shared pieces: polynomials, dtype dispatch
# ---------------------------------------------------------------------------
#
# Where the float32 and float64 algorithms are the same, one factory below
# builds both variants; its closure holds only numbers and tuples of numbers
# (Numba freezes them as constants and keys its cache on them; a closure over
# a dispatcher would miss the cache in every new process).  Variants call
# each other through the ``_by_dtype`` functions, which njit code resolves by
# the argument's type.

@intrinsic
def _horner(typingctx, c, x):
    """c[0] + x*(c[1] + x*(c[2] + ...)) with one fma per coefficient.

    An intrinsic so that the chain is always unrolled (a loop over a long
    tuple stays a loop, which stops the caller's loop from vectorizing).
    """
    if not (_is_float(x) and isinstance(c, types.UniTuple) and c.dtype == x):
        return None

    def codegen(context, builder, sig, args):
        cv, xv = args
        ty = xv.type
        fma = builder.module.declare_intrinsic(
            "llvm.fma", [ty], ir.FunctionType(ty, [ty, ty, ty]))
        p = builder.extract_value(cv, len(c) - 1)
        for i in range(len(c) - 2, -1, -1):
            p = builder.call(fma, [p, xv, builder.extract_value(cv, i)])
        return p
    return x(c, x), codegen


def _select(x, impl32, impl64):
    """Overload body of the ``_by_dtype`` functions."""
    if x == types.float32:
        return lambda x: impl32(x)
    if x == types.float64:
        return lambda x: impl64(x)
    if isinstance(x, (types.Integer, types.Boolean)):
        return lambda x: impl64(np.float64(x))
    return None


def _by_dtype(impl32, impl64):
    """A function for njit code that calls impl32 or impl64 (ints and bools: float64)."""
    def by_dtype(x):
        raise NotImplementedError  # typing-only: resolved by the overload

    @overload(by_dtype, jit_options=_INTERNAL_OPTS)
    def _ol(x):
        return _select(x, impl32, impl64)
    return by_dtype


# ---------------------------------------------------------------------------
# exp / expm1
# ---------------------------------------------------------------------------

def _make_expm1_reduced(log2e, ln2_hi, ln2_lo, q):
    @_inl
    def expm1_reduced(x):
        """Return (n, em) with x = n*ln2 + r and em = expm1(r); x pre-clamped."""
        n = _rint(x * log2e)
        r = _fma(-n, ln2_hi, x)
        r = _fma(-n, ln2_lo, r)
        return n, _fma(r * r, _horner(q, r), r)
    return expm1_reduced


_expm1_reduced = _by_dtype(
    _make_expm1_reduced(_LOG2E_32, _LN2_HI_32, _LN2_LO_32, _QEXP32),
    _make_expm1_reduced(_LOG2E, _LN2_HI, _LN2_LO, _QEXP64))


# Largest x whose exp is finite (as NumPy rounds it). Past it the result is set to inf
# explicitly: the overflow of _ldexp's final product is not enough, because under the
# kernels' fastmath 'contract' LLVM fuses that product with the caller's next add into one
# fma, which does not overflow (exp(inf) - inf came out -inf, exp(x) - 1e308 finite).
_EXP_FINITE_MAX = {np.float32: np.float32(88.72283), np.float64: np.float64(709.782712893384)}


def _make_exp(ft, x_max, x_min):
    """exp for float type ft; x is clamped to [x_min, x_max] (past overflow / underflow)."""
    one, x_max, x_min, x_ovf, inf = ft(1.0), ft(x_max), ft(x_min), _EXP_FINITE_MAX[ft], ft(np.inf)

    @_inl
    def exp(x):
        xc = x
        if xc > x_max:
            xc = x_max
        if xc < x_min:
            xc = x_min
        n, em = _expm1_reduced(xc)
        res = _ldexp(em + one, n)
        if x > x_ovf:
            res = inf
        return res
    return exp


def _make_expm1(ft, x_max, x_min):
    """expm1 for float type ft; x is clamped to [x_min, x_max] (expm1(x_min) rounds to -1)."""
    zero, one, x_max, x_min = ft(0.0), ft(1.0), ft(x_max), ft(x_min)
    x_ovf, inf = _EXP_FINITE_MAX[ft], ft(np.inf)

    @_inl
    def expm1(x):
        xc = x
        if xc > x_max:
            xc = x_max
        if xc < x_min:
            xc = x_min
        n, em = _expm1_reduced(xc)
        # 2**n * (1 + em) - 1 == 2**n * (em + (1 - 2**-n)); (1 - 2**-n) is exact
        # for |n| <= 53 and the scaling by 2**n is exact (overflow: see _EXP_FINITE_MAX).
        res = _ldexp(em + (one - _ldexp(one, -n)), n)
        if x > x_ovf:
            res = inf
        if x == zero:
            res = x                     # keep the sign of zero
        return res
    return expm1


_exp32 = _make_exp(np.float32, x_max=89.0, x_min=-104.0)
_exp64 = _make_exp(np.float64, x_max=710.0, x_min=-746.0)
_exp = _by_dtype(_exp32, _exp64)
_expm1 = _by_dtype(_make_expm1(np.float32, x_max=89.0, x_min=-20.0),
                   _make_expm1(np.float64, x_max=710.0, x_min=-50.0))


# ---------------------------------------------------------------------------
# log / log1p
# ---------------------------------------------------------------------------

@_inl
def _log1p_core64(f):
    """log(1+f) for f in [sqrt(.5)-1, sqrt(2)-1] (fdlibm scheme)."""
    hfsq = 0.5 * f * f
    s = f / (2.0 + f)
    z = s * s
    R = _horner(_LOGR64, z) * z
    return f - (hfsq - s * (hfsq + R))


@_inl
def _log1p_core32(f):
    """log(1+f) for f in [sqrt(.5)-1, sqrt(2)-1], division free."""
    p = _horner(_LOG1P32, f)
    return _fma(f * f, _fma(f, p, _F(-0.5)), f)


_log1p_core = _by_dtype(_log1p_core32, _log1p_core64)


def _make_log(ft, ln2_hi, ln2_lo, tiny, scale_log2):
    """log for float type ft; inputs below tiny (subnormals) are scaled by 2**scale_log2."""
    zero, one, inf, nan = ft(0.0), ft(1.0), ft(np.inf), ft(np.nan)
    tiny, scale, shift = ft(tiny), ft(2.0 ** scale_log2), ft(scale_log2)

    @_inl
    def log(x):
        sub = x < tiny
        xs = x
        if sub:
            xs = x * scale
        k, m = _logsplit(xs)
        if sub:
            k = k - shift
        lp = _log1p_core(m - one)
        res = _fma(k, ln2_hi, _fma(k, ln2_lo, lp))
        if x == zero:
            res = -inf
        if x == inf:
            res = x
        if not (x >= zero):
            res = nan                   # x < 0 or nan
        return res
    return log


def _make_log1p(ft, ln2_hi, ln2_lo, lo, hi):
    """log1p for float type ft; (lo, hi) bounds x where 1 + x is in [sqrt(.5), sqrt(2))."""
    zero, one, two, inf, nan = ft(0.0), ft(1.0), ft(2.0), ft(np.inf), ft(np.nan)
    lo, hi = ft(lo), ft(hi)

    @_inl
    def log1p(x):
        u = one + x
        k, m = _logsplit(u)
        # rounding error of u = 1 + x, divided by u (fdlibm's correction term);
        # u - x is exact for u >= 2, u - 1 is exact for u < 2 (Sterbenz)
        if u >= two:
            c = one - (u - x)
        else:
            c = x - (u - one)
        c = c / u
        f = m - one
        # 1 + x in [sqrt(.5), sqrt(2)): use x itself, no rounding at all
        if x > lo and x < hi:
            f = x
            k = zero
            c = zero
        lp = _log1p_core(f) + c
        res = _fma(k, ln2_hi, _fma(k, ln2_lo, lp))
        if x == zero:
            res = x
        if x == -one:
            res = -inf
        if x == inf:
            res = x
        if not (x >= -one):
            res = nan
        return res
    return log1p


_log = _by_dtype(
    _make_log(np.float32, _LN2_HI_32, _LN2_LO_32, tiny=1.1754943508222875e-38, scale_log2=25),
    _make_log(np.float64, _LN2_HI, _LN2_LO, tiny=2.2250738585072014e-308, scale_log2=54))
_log1p = _by_dtype(
    _make_log1p(np.float32, _LN2_HI_32, _LN2_LO_32, lo=-0.29289320, hi=0.41421354),
    _make_log1p(np.float64, _LN2_HI, _LN2_LO, lo=-0.2928932188134524, hi=0.41421356237309503))


# ---------------------------------------------------------------------------
# tanh / sigmoid
# ---------------------------------------------------------------------------

@_inl
def _tanh64(x):
    ax = abs(x)
    if ax > 20.0:                       # tanh(20) == 1 in float64; keeps nan
        ax = 20.0
    em = _expm1(2.0 * ax)
    return _copysign(em / (em + 2.0), x)


@_inl
def _tanh32(x):
    # |x| < 0.625: odd polynomial; above: 1 - 2/(exp(2|x|) + 1), no cancellation
    # there (tanh >= 0.55).  1.3 ulp, vs 2.5 ulp for the expm1 form, same speed.
    # exp(2|x|) is inlined without _exp32's clamps and two-step scaling: 2|x| is in
    # [0, 20], so n <= 29 and one exponent-bits scaling is exact (same results, ~25% faster).
    ax = abs(x)
    if not (ax <= _F(10.0)):            # tanh(10) == 1 in float32; nan -> 10 (no poison
        ax = _F(10.0)                   # in the float->int conversion), restored below
    z = ax * ax
    p = _horner(_TANH32, z)
    n, em = _expm1_reduced(_F(2.0) * ax)
    s = _pow2i(n)
    res = _F(1.0) - _F(2.0) / (_fma(em, s, s) + _F(1.0))
    if ax < _F(0.625):
        res = _fma(ax * z, p, ax)
    if x != x:
        res = x
    return _copysign(res, x)


def _make_sigmoid(ft):
    zero, one = ft(0.0), ft(1.0)

    @_inl
    def sigmoid(x):
        e = _exp(-abs(x))
        num = e
        if x >= zero:
            num = one
        return num / (one + e)
    return sigmoid


_tanh = _by_dtype(_tanh32, _tanh64)
_sigmoid = _by_dtype(_make_sigmoid(np.float32), _make_sigmoid(np.float64))


# ---------------------------------------------------------------------------
# erf
# ---------------------------------------------------------------------------

def _make_erf(ft, q, r, r_c, r_invh, x_max):
    """erf for float type ft from the tables Q, R above; erf(x_max) rounds to 1."""
    one, small_max = ft(1.0), ft(_ERF_SMALL)

    @_inl
    def erf(x):
        ax = abs(x)
        if ax > x_max:                  # keeps nan
            ax = x_max
        z = ax * ax
        small = _fma(ax, _horner(q, z), ax)
        # erfc(ax) = exp(-ax*ax) * R(t); ax*ax = z + lo exactly
        lo = _fma(ax, ax, -z)
        e = _exp(-z)
        e = _fma(-e, lo, e)
        res = _fma(-e, _horner(r, (ax - r_c) * r_invh), one)
        if ax < small_max:
            res = small
        return _copysign(res, x)
    return erf


_erf = _by_dtype(
    _make_erf(np.float32, _ERFQ32, _ERFR32, _ERFR32_C, _ERFR32_INVH, _ERF_XMAX32),
    _make_erf(np.float64, _ERFQ64, _ERFR64, _ERFR64_C, _ERFR64_INVH, _ERF_XMAX64))


# ---------------------------------------------------------------------------
# sin / cos
# ---------------------------------------------------------------------------

@_inl
def _sin_quadrant(q, sn, cs):
    """sin(n*pi/2 + r) from q = n mod 4, sn = sin(r), cs = cos(r)."""
    res = sn
    if q == 1.0 or q == 3.0:
        res = cs
    if q >= 2.0:
        res = -res
    return res


@_inl
def _cos_quadrant(q, sn, cs):
    """cos(n*pi/2 + r) from q = n mod 4, sn = sin(r), cs = cos(r)."""
    res = cs
    if q == 1.0 or q == 3.0:
        res = sn
    if q == 1.0 or q == 2.0:
        res = -res
    return res


@_inl
def _sincos_poly64(r):
    """(sin(r), cos(r)) for |r| <= pi/4 * 1.02."""
    z = r * r
    sn = _fma(r * z, _horner(_SIN64, z), r)
    k = _horner(_COS64, z)
    hz = 0.5 * z
    w = 1.0 - hz
    corr = (1.0 - w) - hz               # rounding error of w
    cs = w + _fma(z * z, k, corr)
    return sn, cs


@_inl
def _reduce64(ax):
    """ax = n*pi/2 + r, returns (n mod 4, r); exact for ax < 2**45."""
    n = _rint(ax * _TWO_OVER_PI)
    r = _fma(-n, _PIO2_1, ax)
    r = _fma(-n, _PIO2_2, r)
    r = _fma(-n, _PIO2_3, r)
    q = n - 4.0 * _floor(n * 0.25)
    return q, r


@_inl
def _sin64(x):
    ax = abs(x)
    q, r = _reduce64(ax)
    sn, cs = _sincos_poly64(r)
    res = _sin_quadrant(q, sn, cs)
    if not (ax <= _SINCOS_LIMIT64):
        res = _NAN64                    # inf, nan, or beyond exact reduction
    return res * _copysign(1.0, x)


@_inl
def _cos64(x):
    ax = abs(x)
    q, r = _reduce64(ax)
    sn, cs = _sincos_poly64(r)
    res = _cos_quadrant(q, sn, cs)
    if not (ax <= _SINCOS_LIMIT64):
        res = _NAN64
    return res


@_inl
def _mod4_part(v):
    """v - 4*rint(v/4): exact, in [-2, 2]; v == that (mod 4)."""
    return _fma(-4.0, _rint(v * 0.25), v)


@_inl
def _reduce32(ax):
    """ax (a float32 value held in a float64) = n*pi/2 + r.

    Returns (n mod 4, r) with |r| <= pi/4.  ax * 2/pi is formed exactly as
    a sum of 8 doubles (4 two-products with 2/pi split into 4 doubles),
    each reduced mod 4 exactly, so this is correct for every finite float32.
    """
    h0 = ax * _TOPI_0
    l0 = _fma(ax, _TOPI_0, -h0)
    h1 = ax * _TOPI_1
    l1 = _fma(ax, _TOPI_1, -h1)
    h2 = ax * _TOPI_2
    l2 = _fma(ax, _TOPI_2, -h2)
    h3 = ax * _TOPI_3
    # |l2|, |h3| < 2**-31 and the rest (|l3| < 2**-84) cannot matter
    w = _mod4_part(h0) + _mod4_part(l0)
    w = w + (_mod4_part(h1) + _mod4_part(l1))
    w = w + (_mod4_part(h2) + (l2 + h3))
    n = _rint(w)
    f = w - n
    q = n - 4.0 * _floor(n * 0.25)
    return q, f * _PIO2_1


@_inl
def _sincos_poly32(r):
    """(sin(r), cos(r)) in float64 to float32 accuracy, |r| <= pi/4."""
    z = r * r
    sn = _fma(r * z, _horner(_SIN32, z), r)
    cs = _fma(z * z, _horner(_COS32, z), 1.0 - 0.5 * z)
    return sn, cs


@_inl
def _sin32(x):
    q, r = _reduce32(_to_f64(abs(x)))
    sn, cs = _sincos_poly32(r)
    return _copysign(_F(1.0), x) * _to_f32(_sin_quadrant(q, sn, cs))


@_inl
def _cos32(x):
    q, r = _reduce32(_to_f64(abs(x)))
    sn, cs = _sincos_poly32(r)
    return _to_f32(_cos_quadrant(q, sn, cs))


_sin = _by_dtype(_sin32, _sin64)
_cos = _by_dtype(_cos32, _cos64)


# ---------------------------------------------------------------------------
# Public helpers (LLVM-level forced inlining, cached)
# ---------------------------------------------------------------------------

_public = _cached_njit(**_PUBLIC_OPTS)


@_public
def vexp(x):
    """exp(x) for a float32/float64 scalar (ints -> float64)."""
    return _exp(x)


@_public
def vexpm1(x):
    """exp(x) - 1, accurate near 0."""
    return _expm1(x)


@_public
def vlog(x):
    """Natural log: log(0) = -inf, log(x < 0) = nan, log(inf) = inf."""
    return _log(x)


@_public
def vlog1p(x):
    """log(1 + x), accurate near 0; log1p(-1) = -inf."""
    return _log1p(x)


@_public
def vtanh(x):
    """Hyperbolic tangent."""
    return _tanh(x)


@_public
def vsigmoid(x):
    """Logistic sigmoid 1 / (1 + exp(-x)) without overflow."""
    return _sigmoid(x)


@_public
def verf(x):
    """Error function."""
    return _erf(x)


@_public
def vsin(x):
    """sin(x); the float64 version returns nan for |x| > 2**45 (see module doc)."""
    return _sin(x)


@_public
def vcos(x):
    """cos(x); the float64 version returns nan for |x| > 2**45 (see module doc)."""
    return _cos(x)
