"""Scalar helpers called from generated CPU kernels (``_cm.<name>``) where the code generator
needs different LLVM lowering than ``fnx.jit.vecmath`` gives today.

* ``exp``/``expm1``/``tanh``/``sigmoid``: the same algorithms (and the same range reduction
  and polynomials, imported from ``vecmath``) as ``vecmath``, bit-identical results, but the
  final ``2**n`` scaling converts ``n`` with a plain ``fptosi`` after mapping NaN to 0 with a
  select. ``vecmath._ldexp`` uses ``llvm.fptosi.sat``, which LLVM's x86 backend scalarizes
  (one ``vcvttss2si`` + two ``cmov`` per lane, then ``vpinsrd`` to rebuild the vector): the
  loop still "vectorizes" but runs 3-6x slower (2^24 f32: exp 32 -> 10 ms, tanh 115 -> 17 ms).
  ``n`` is already clamped by the callers (|n| <= ~1100), so ``fptosi`` cannot overflow.
* ``fmaximum``/``fminimum``: ``llvm.maximum``/``llvm.minimum`` (NaN-propagating, like NumPy's
  ``maximum``/``max``). LLVM vectorizes reductions over them without fast-math flags; the
  ``a if (a > b or a != a) else b`` form never vectorized (row max 7.2 ms -> 0.5 ms).

Helpers are LLVM-level ``forceinline`` (they keep their own fastmath flags inside a
``reassoc`` kernel) and ``cache=True``. Bump ``CPU_MATH_VERSION`` when a result can change:
it is part of the kernel backend version, Numba's cache does not track this file.
"""

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .. import vecmath as _vm

CPU_MATH_VERSION = "1"

_F = np.float32
_OPTS = dict(forceinline=True, error_model="numpy", fastmath={"contract"},
             no_cpython_wrapper=True, no_cfunc_wrapper=True)


def _njit(fn):
    try:
        return njit(cache=True, **_OPTS)(fn)
    except RuntimeError:  # no writable cache location
        return njit(**_OPTS)(fn)


def _is_float(t):
    return isinstance(t, types.Float) and t.bitwidth in (32, 64)


@intrinsic
def _ldexp(typingctx, p, n):
    """p * 2**n for integral float n with |n| < 2**31 (NaN n counts as 0), vectorizable."""
    if not (_is_float(p) and p == n):
        return None

    def codegen(context, builder, sig, args):
        pv, nv = args
        if isinstance(pv.type, ir.FloatType):
            ity, mbits, bias = ir.IntType(32), 23, 127
        else:
            ity, mbits, bias = ir.IntType(64), 52, 1023
        i32 = ir.IntType(32)
        nv = builder.select(builder.fcmp_ordered("ord", nv, nv), nv, ir.Constant(nv.type, 0.0))
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


def _binary_intrinsic(name):
    @intrinsic
    def fn(typingctx, a, b):
        if not (_is_float(a) and a == b):
            return None

        def codegen(context, builder, sig, args):
            ty = args[0].type
            f = builder.module.declare_intrinsic(name, [ty], ir.FunctionType(ty, [ty, ty]))
            return builder.call(f, args)

        return a(a, b), codegen

    return fn


fmaximum = _binary_intrinsic("llvm.maximum")
fminimum = _binary_intrinsic("llvm.minimum")


@_njit
def exp32(x):
    xc = x
    if xc > _F(89.0):
        xc = _F(89.0)
    if xc < _F(-104.0):
        xc = _F(-104.0)
    n, em = _vm._expm1_reduced32(xc)
    return _ldexp(em + _F(1.0), n)


@_njit
def exp64(x):
    xc = x
    if xc > 710.0:
        xc = 710.0
    if xc < -746.0:
        xc = -746.0
    n, em = _vm._expm1_reduced64(xc)
    return _ldexp(em + 1.0, n)


@_njit
def expm1_32(x):
    xc = x
    if xc > _F(89.0):
        xc = _F(89.0)
    if xc < _F(-20.0):
        xc = _F(-20.0)
    n, em = _vm._expm1_reduced32(xc)
    res = _ldexp(em + (_F(1.0) - _ldexp(_F(1.0), -n)), n)
    if x == _F(0.0):
        res = x
    return res


@_njit
def expm1_64(x):
    xc = x
    if xc > 710.0:
        xc = 710.0
    if xc < -50.0:
        xc = -50.0
    n, em = _vm._expm1_reduced64(xc)
    res = _ldexp(em + (1.0 - _ldexp(1.0, -n)), n)
    if x == 0.0:
        res = x
    return res


@_njit
def tanh32(x):
    ax = abs(x)
    if ax > _F(10.0):
        ax = _F(10.0)
    em = expm1_32(_F(2.0) * ax)
    return _vm._copysign(em / (em + _F(2.0)), x)


@_njit
def tanh64(x):
    ax = abs(x)
    if ax > 20.0:
        ax = 20.0
    em = expm1_64(2.0 * ax)
    return _vm._copysign(em / (em + 2.0), x)


@_njit
def sigmoid32(x):
    e = exp32(-abs(x))
    num = e
    if x >= _F(0.0):
        num = _F(1.0)
    return num / (_F(1.0) + e)


@_njit
def sigmoid64(x):
    e = exp64(-abs(x))
    num = e
    if x >= 0.0:
        num = 1.0
    return num / (1.0 + e)


def _vecmath_ldexp_is_slow():
    import inspect

    try:
        return "llvm.fptosi.sat" in inspect.getsource(_vm._ldexp._defn)
    except (AttributeError, OSError, TypeError):
        return "llvm.fptosi.sat" in inspect.getsource(_vm)


#: True while vecmath still scales with ``llvm.fptosi.sat``: the code generator then calls
#: the helpers below for exp/expm1/tanh/sigmoid; once vecmath is fixed it calls vecmath.
USE_FOR_EXP = _vecmath_ldexp_is_slow()

#: vocabulary op -> helper stem; float32 uses ``<stem>32``, float64 ``<stem>64``
UNARY = {"exp": ("exp32", "exp64"), "expm1": ("expm1_32", "expm1_64"),
         "tanh": ("tanh32", "tanh64"), "logistic": ("sigmoid32", "sigmoid64")}
