"""Scalar helpers called from generated CPU kernels (``_cm.<name>``) where the code generator
needs other LLVM lowering than NumPy-style Python gives.

* ``fmaximum``/``fminimum``: ``llvm.maximum``/``llvm.minimum`` (NaN-propagating, like NumPy's
  ``maximum``/``max``). LLVM vectorizes reductions over them without fast-math flags; the
  ``a if (a > b or a != a) else b`` form never vectorized (row max 7.2 ms -> 0.5 ms).

Numba's cache does not track this file; fnx's kernel cache keys kernels on its content
(``fnx.jit.cache.RUNTIME_SOURCES``).
"""

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


def _is_float(t):
    return isinstance(t, types.Float) and t.bitwidth in (32, 64)


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
