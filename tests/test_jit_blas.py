"""fnx.jit.blas: matrix products from Numba code through NumPy's BLAS, and the compiled-loop
stand-in used where NumPy's BLAS exports no CBLAS symbol."""

import ctypes
import itertools

import numpy as np
import pytest

numba = pytest.importorskip("numba")

from fnx.jit.blas import NO_TRANS, ROW_MAJOR, TRANS, _loop_gemm, gemm  # noqa: E402


@numba.njit
def _product(a, b, out):
    gemm(a, b, out)


def _layouts(x):
    """The same matrix as C order, F order and a transposed view of a C array."""
    return [x, np.asfortranarray(x), np.ascontiguousarray(x.T).T]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(3, 4, 5), (1, 7, 1), (5, 1, 3), (33, 65, 17),
                                   (0, 3, 2), (4, 3, 0), (3, 0, 2)])
def test_gemm_matches_numpy_in_every_layout(dtype, m, k, n):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for a_view, b_view in itertools.product(_layouts(a), _layouts(b)):
        out = np.full((m, n), np.nan, dtype)
        _product(a_view, b_view, out)
        np.testing.assert_allclose(out, a @ b, rtol=tol, atol=tol)


def test_gemm_reads_and_writes_blocks_of_larger_arrays():
    rng = np.random.default_rng(1)
    big = rng.standard_normal((6, 9)).astype(np.float32)
    b = rng.standard_normal((5, 4)).astype(np.float32)
    out = np.zeros((5, 8), np.float32)
    _product(big[1:5, 2:7], b, out[:4, 3:7])
    np.testing.assert_allclose(out[:4, 3:7], big[1:5, 2:7] @ b, rtol=1e-5, atol=1e-5)
    assert not out[:4, :3].any() and not out[4].any() and not out[:, 7].any()


def test_gemm_rejects_mismatched_shapes():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match="shapes do not match"):
        _product(a, np.ones((4, 2)), np.empty((2, 2)))


def test_gemm_in_python_is_matmul():
    a = np.arange(6.0).reshape(2, 3)
    out = np.empty((2, 2))
    gemm(a, a.T, out)
    np.testing.assert_array_equal(out, a @ a.T)


@pytest.mark.parametrize("dtype,c_type", [(np.float32, ctypes.c_float),
                                          (np.float64, ctypes.c_double)])
def test_loop_stand_in_follows_the_cblas_contract(dtype, c_type):
    """alpha * op(A) op(B) + beta * C with either operand transposed, as cblas_?gemm."""
    address = _loop_gemm(numba.from_dtype(np.dtype(dtype)))
    loop = ctypes.CFUNCTYPE(None, *[ctypes.c_int64] * 6, c_type, ctypes.c_void_p,
                            ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64, c_type,
                            ctypes.c_void_p, ctypes.c_int64)(address)
    rng = np.random.default_rng(2)
    m, k, n = 4, 3, 5
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    for trans_a, trans_b in itertools.product((NO_TRANS, TRANS), repeat=2):
        a_stored = a if trans_a == NO_TRANS else np.ascontiguousarray(a.T)
        b_stored = b if trans_b == NO_TRANS else np.ascontiguousarray(b.T)
        c = np.ones((m, n), dtype)
        loop(ROW_MAJOR, trans_a, trans_b, m, n, k, 2.0, a_stored.ctypes.data,
             a_stored.shape[1], b_stored.ctypes.data, b_stored.shape[1], 0.5, c.ctypes.data, n)
        np.testing.assert_allclose(c, 2 * a @ b + 0.5, rtol=1e-5)


_PROBE = """
import numba, numpy as np
from fnx.core import blas
from fnx.jit.blas import gemm

@numba.njit
def product(a, b, out):
    gemm(a, b, out)

a = np.arange(12, dtype=np.float32).reshape(3, 4)
out = np.empty((3, 3), np.float32)
product(a, a.T, out)
assert np.array_equal(out, a @ a.T), out
print(blas.provider())
"""


@pytest.mark.parametrize("choice", ["numpy", "mkl"])
def test_kernels_use_the_selected_provider(choice):
    """FNX_BLAS picks the routine that compiled kernels link to, in a fresh process (the
    symbol is registered once per process)."""
    import os
    import subprocess
    import sys

    from fnx.core import blas

    if choice == "mkl" and blas._find_mkl() is None:
        pytest.skip("oneMKL not installed")
    env = dict(os.environ, FNX_BLAS=choice)
    done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == choice


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_packed_step_product_matches_numpy_in_every_layout(dtype):
    """fnx.core.blas.pack_b + the recurrence kernels' step product: oneMKL's packed product
    for each layout of b (the weight argument then an empty stand-in); NumPy's BLAS packs
    nothing and the same call multiplies by gemm."""
    from fnx.core import blas
    from fnx.jit import cache

    product = cache.load_library("rnn")._product
    rng = np.random.default_rng(0)
    for m, k, n in [(3, 4, 5), (32, 16, 40), (1, 7, 1)]:
        a = rng.standard_normal((m, k)).astype(dtype)
        for b in _layouts(rng.standard_normal((k, n)).astype(dtype)):
            packed = blas.pack_b(b, m)
            assert packed.dtype == np.uint8 and (packed.size > 0) == (blas.provider() == "mkl")
            weight = np.empty((0, 0), dtype) if packed.size else np.ascontiguousarray(b)
            out = np.full((m, n), np.nan, dtype)
            product(a, weight, packed, out)
            np.testing.assert_allclose(out, a @ b, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_gemm_rejects_layouts_blas_cannot_read():
    b = np.ones((4, 3))
    with pytest.raises(ValueError, match="strides do not fit BLAS"):
        _product(np.broadcast_to(np.arange(4.0), (5, 4)), b, np.empty((5, 3)))
    with pytest.raises(ValueError, match="strides do not fit BLAS"):
        _product(np.ones((10, 8))[::2, ::2], b, np.empty((5, 3)))


def test_gemm_refuses_an_output_blas_would_write_past():
    a, b = np.ones((5, 4)), np.ones((4, 3))
    buf = np.zeros((5, 3))
    with pytest.raises(ValueError, match="strides do not fit BLAS"):
        _product(a, b, buf[::-1])  # negative row stride
    assert not buf.any()
