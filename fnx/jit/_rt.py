"""Scalar runtime helpers called from generated CPU kernels (``_rt.<name>`` in the vocabulary).

Inlined at the Numba IR level so they vectorize inside the caller's loop. Bump
``RT_VERSION`` whenever a result can change: Numba's cache does not see edits here.
"""

import math

import numpy as np
from llvmlite import ir  # noqa: F401
from numba import njit, types
from numba.extending import intrinsic

RT_VERSION = "1"

_inl = njit(inline="always", error_model="numpy")


@_inl
def idiv(x, y):
    # C-style truncating integer division; x / 0 gives 0 (as the eager impl)
    if y == 0:
        return x - x
    q = x // y
    if (x % y != 0) and ((x < 0) != (y < 0)):
        q += 1
    return q


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


@_inl
def digamma(x):
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


@_inl
def erf_inv(y):
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
