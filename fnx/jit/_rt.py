"""Scalar runtime helpers called from generated CPU kernels (``_rt.<name>`` in the vocabulary).

Inlined at the Numba IR level so they vectorize inside the caller's loop. Numba's cache does
not see edits here; fnx's kernel cache keys kernels on this file's content
(``fnx.jit.cache.RUNTIME_SOURCES``), so a new import from fnx must be added there.

The CUDA backend emits the Python source of the plain scalar helpers here (``codegen.cuda
._SHARED``: idiv, udiv, irem, ipow, fmax_nan, fmin_nan, shl, shr, digamma, erf_inv) as its device
functions, so those must stay code that ``numba.cuda`` compiles too (``math.*``, no
intrinsics); edits reach CUDA kernels through their source hash.
"""

import numpy as np
from llvmlite import ir  # noqa: F401
from numba import njit, types
from numba.extending import intrinsic

_inl = njit(inline="always", error_model="numpy")


@_inl
def idiv(x, y):
    # C-style truncating signed division, as the eager impl: x / 0 gives 0 and INT_MIN / -1
    # wraps to INT_MIN (as NumPy; Numba's // gives 0 there)
    if y == 0:
        return x - x
    if y == -1:
        return -x
    q = x // y
    if (x % y != 0) and ((x < 0) != (y < 0)):
        q += 1
    return q


@_inl
def udiv(x, y):
    # unsigned division, x / 0 gives 0; not idiv, whose ``q += 1`` would make Numba compute a
    # uint64 quotient in float64
    if y == 0:
        return x - x
    return x // y


@_inl
def irem(x, y):
    if y == 0:
        return x - x
    r = x % y
    if r != 0 and ((r < 0) != (x < 0)):
        r -= y
    return r


@_inl
def ipow(x, n):
    m = n if n >= 0 else -n
    if m == 0:
        # x ** 0 is 1, also for +-inf and NaN (x - x is NaN); a conditional, not
        # max(1, x - x + 1): Numba's CUDA target cannot type max(int, float)
        return x - x + 1 if x - x == 0 else 1
    # the product starts from x's lowest needed power, not from x - x + 1: that is NaN for
    # +-inf, which made inf ** 2 NaN
    base = x
    while not (m & 1):
        base = base * base
        m >>= 1
    acc = base
    m >>= 1
    while m > 0:
        base = base * base
        if m & 1:
            acc = acc * base
        m >>= 1
    if n < 0:
        return 1 / acc
    return acc


@_inl
def fmax_nan(a, b):
    return a if (a > b or a != a) else b


@_inl
def fmin_nan(a, b):
    return a if (a < b or a != a) else b


@_inl
def shl(x, y, bits):
    if y < 0 or y >= bits:
        return x - x
    return x << y


@_inl
def shr(x, y, bits):
    if y < 0 or y >= bits:
        if x < 0:
            return x - x - 1
        return x - x
    return x >> y


@_inl
def popcount(x):
    v = abs(np.int64(x)) if x < 0 else np.uint64(x)
    v = np.uint64(v)
    c = 0
    while v:
        v &= v - np.uint64(1)
        c += 1
    return c


@intrinsic
def bitcast(typingctx, x, dt):
    to = dt.instance_type if isinstance(dt, types.NumberClass) else dt.dtype

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], context.get_value_type(to))

    return to(x, dt), codegen


# digamma / erf_inv: the one scalar implementation, shared with the eager ufuncs.
from ..core.ops._scalar_special import digamma, erf_inv  # noqa: E402,F401
