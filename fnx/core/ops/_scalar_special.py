"""Scalar special functions in Numba, written once and used three times: by the eager ufuncs of
``elementwise.py`` (``numba.vectorize``), by jit's fused CPU kernels (``fnx.jit._rt``), and, as
source text, by jit's CUDA kernels (``fnx.jit.codegen.cuda`` emits each function's Python body
as a ``cuda.jit(device=True)`` helper, so keep them plain ``math.*`` code).

They are ``inline="always"`` njit functions, so each caller compiles them into its own loop.
Numba's caches do not see edits to called functions; fnx's kernel cache keys every kernel and
eager ufunc on this file's content (``fnx.jit.cache.RUNTIME_SOURCES``).
"""

import math

from numba import njit

_inl = njit(inline="always", error_model="numpy")


@_inl
def digamma(x):
    # reflection for x < 0.5, recurrence up to x >= 6, then the asymptotic series
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
    # Giles' single-precision polynomial, refined by two Newton steps for float64 accuracy
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
