"""Matrix products inside compiled kernels, through the BLAS of fnx's host products.

Layer kernels that run many small products in a loop (a recurrence: one (B, H) x (H, 4H)
product per time step) call ``gemm`` from Numba code. Numba's own ``np.dot`` goes through
SciPy's BLAS: SciPy is not an fnx dependency, and its OpenBLAS measured 65-90 µs per LSTM
step product (32x128 @ 128x512, one thread) against 49-55 µs for the library NumPy links.

At import this module takes the CBLAS ``sgemm``/``dgemm`` that ``fnx.core.blas.gemm_address``
names (oneMKL's ILP64 entry points, or NumPy's BLAS's, with 64-bit integer arguments) and
registers it with LLVM under a fixed name, so machine code that Numba cached in another
process links against the same routine here. Where no CBLAS symbol exists, a plain compiled
loop stands in (correct, slower).

A kernel module that imports this one must be loaded through ``fnx.jit.cache`` (this file
is one of its ``RUNTIME_SOURCES``, so an edit here recompiles those kernels).
"""

import functools

import llvmlite.binding as llvm
import numba
import numpy as np
from numba import types
from numba.extending import overload

from fnx.core.blas import (NO_TRANS, PACKED, ROW_MAJOR, TRANS, compute_address,  # noqa: F401
                           gemm_address, matrix_layout)

_I64 = types.int64


def _signature(scalar, pointer=_I64):
    # cblas_?gemm(order, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    # kernels pass the pointers as int64 addresses (the same register or stack slot)
    return types.void(_I64, _I64, _I64, _I64, _I64, _I64, scalar, pointer, _I64, pointer, _I64,
                      scalar, pointer, _I64)


@functools.cache  # one stand-in per type, whichever symbols it stands in for
def _loop_gemm(scalar):
    """The stand-in where NumPy's BLAS exports no CBLAS symbol: a Numba ``cfunc`` with the
    CBLAS row-major signature (every argument combination that ``gemm`` below passes)."""
    zero = numba.np.numpy_support.as_dtype(scalar).type(0)

    @numba.cfunc(_signature(scalar, types.CPointer(scalar)), cache=True)
    def loop_gemm(order, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc):
        A = numba.carray(a, (m * lda if trans_a == NO_TRANS else k * lda,))
        B = numba.carray(b, (k * ldb if trans_b == NO_TRANS else n * ldb,))
        C = numba.carray(c, (m * ldc,))
        for i in range(m):
            for j in range(n):
                acc = zero
                for p in range(k):
                    x = A[i * lda + p] if trans_a == NO_TRANS else A[p * lda + i]
                    y = B[p * ldb + j] if trans_b == NO_TRANS else B[j * ldb + p]
                    acc += x * y
                C[i * ldc + j] = alpha * acc + (beta * C[i * ldc + j] if beta != zero else zero)

    return loop_gemm.address


def _register(routine, address_of, signature):
    """``{float type: ExternalFunction}`` of the CBLAS ``?<routine>`` at ``address_of(type)``,
    registered with LLVM as ``fnx_cblas_?<routine>`` (a fixed name: cached machine code links
    to it in any process)."""
    functions = {}
    for np_type in (np.float32, np.float64):
        scalar = numba.from_dtype(np.dtype(np_type))
        symbol = f"fnx_cblas_{np.dtype(np_type).char}{routine}"
        llvm.add_symbol(symbol, address_of(np_type, scalar))
        functions[np_type] = types.ExternalFunction(symbol, signature(scalar))
    return functions


def _gemm_address(np_type, scalar):
    address = gemm_address(np_type)
    return address if address is not None else _loop_gemm(scalar)


def _compute_signature(scalar):
    # cblas_?gemm_compute(order, trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc),
    # pointers as int64 addresses
    return types.void(_I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, _I64, scalar, _I64,
                      _I64)


def _compute_address(np_type, scalar):
    # NumPy's BLAS packs nothing (pack_b returns an empty buffer), so kernels never call it
    # then; the symbol must still resolve for their machine code: the plain ?gemm stands in
    address = compute_address(np_type)
    return address if address is not None else _gemm_address(np_type, scalar)


_GEMM = _register("gemm", _gemm_address, _signature)

# oneMKL's products with a packed B (``fnx.core.blas.pack_b``): ``SGEMM_COMPUTE(ROW_MAJOR,
# trans_a, PACKED, m, n, k, a_address, lda, packed_address, n, beta, c_address, ldc)``; only
# for a non-empty packed buffer.
_COMPUTE = _register("gemm_compute", _compute_address, _compute_signature)
SGEMM_COMPUTE, DGEMM_COMPUTE = _COMPUTE[np.float32], _COMPUTE[np.float64]
# The raw routines, ``SGEMM(ROW_MAJOR, trans_a, trans_b, m, n, k, alpha, a_address, lda,
# b_address, ldb, beta, c_address, ldc)`` (addresses and sizes as int64), for kernels that
# pass flags and a beta themselves: a call site compiles once whatever its operands' array
# types, where the typed ``gemm`` below compiles its checks once per combination (~1 s cold).
SGEMM, DGEMM = _GEMM[np.float32], _GEMM[np.float64]


def gemm(a, b, out):
    """``out[...] = a @ b`` for 2-D float32 or float64 arrays, callable from Numba code
    (NumPy's BLAS, no SciPy needed). Each operand must have one unit-stride axis (C order, F
    order, or a row block or transposed view of one); ``out`` must be row-contiguous.

    >>> import numba, numpy as np
    >>> from fnx.jit.blas import gemm
    >>> @numba.njit
    ... def product(a, b):
    ...     out = np.empty((a.shape[0], b.shape[1]), a.dtype)
    ...     gemm(a, b, out)
    ...     return out
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> bool(np.allclose(product(a, a.T), a @ a.T))
    True
    """
    np.matmul(a, b, out=out)  # the Python meaning; compiled code uses the overload below


_layout = numba.njit(inline="always")(matrix_layout)


@overload(gemm, jit_options={"nogil": True})
def _gemm_impl(a, b, out):
    arrays = (a, b, out)
    if not (all(isinstance(x, types.Array) and x.ndim == 2 and x.dtype == a.dtype for x in arrays)
            and a.dtype.name in ("float32", "float64")):
        return None
    dtype = numba.np.numpy_support.as_dtype(a.dtype)
    routine = _GEMM[dtype.type]
    one, zero = dtype.type(1), dtype.type(0)

    def impl(a, b, out):
        m, k = a.shape
        n = b.shape[1]
        if b.shape[0] != k or out.shape[0] != m or out.shape[1] != n:
            raise ValueError("fnx.jit.blas.gemm: operand shapes do not match")
        if m == 0 or n == 0:
            return
        if k == 0:
            for i in range(m):
                for j in range(n):
                    out[i, j] = zero
            return
        ta, lda = _layout(m, k, a.strides[0], a.strides[1], a.itemsize)
        tb, ldb = _layout(k, n, b.strides[0], b.strides[1], b.itemsize)
        tc, ldc = _layout(m, n, out.strides[0], out.strides[1], out.itemsize)
        if ta == 0 or tb == 0 or tc != NO_TRANS:
            raise ValueError("fnx.jit.blas.gemm: an operand's strides do not fit BLAS")
        routine(ROW_MAJOR, ta, tb, m, n, k, one, a.ctypes.data, lda, b.ctypes.data, ldb,
                zero, out.ctypes.data, ldc)

    return impl
