"""fnx.core.blas: host matrix products through the selected BLAS (oneMKL when installed,
else NumPy's), equal to np.matmul for every layout, batch form and ``out``."""

import numpy as np
import pytest

from fnx.core import blas


def _providers():
    out = [pytest.param(("numpy", None), id="numpy")]
    path = blas._find_mkl()
    out.append(pytest.param(("mkl", blas._load_mkl(path)) if path else None, id="mkl",
                            marks=() if path else pytest.mark.skip("oneMKL not installed")))
    return out


@pytest.fixture(params=_providers())
def provider(request, monkeypatch):
    monkeypatch.setattr(blas, "_state", request.param)
    monkeypatch.setattr(blas, "_MKL_MIN_WORK", 0)  # small products here take the MKL path too
    return request.param[0]


def test_small_products_stay_with_numpy(monkeypatch):
    """Below the work threshold MKL's call overhead loses: np.matmul takes the product."""
    calls = []
    monkeypatch.setattr(blas, "_state", ("mkl", object()))  # any MKL call would fail
    monkeypatch.setattr(blas.np, "matmul", lambda *a, **k: calls.append(a) or "numpy")
    assert blas.matmul(np.ones((8, 8), np.float32), np.ones((8, 8), np.float32)) == "numpy"
    assert len(calls) == 1


def _layouts(x):
    """C order, F order (a transposed view), and a strided block of a larger array."""
    big = np.zeros(x.shape[:-1] + (x.shape[-1] + 3,), x.dtype)
    big[..., 1:x.shape[-1] + 1] = x
    return [x, np.asfortranarray(x) if x.ndim == 2 else np.swapaxes(
        np.ascontiguousarray(np.swapaxes(x, -1, -2)), -1, -2), big[..., 1:x.shape[-1] + 1]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("a_shape,b_shape", [
    ((5, 7), (7, 3)), ((1, 4), (4, 1)), ((6, 1), (1, 2)),     # matrices
    ((2, 3, 5, 4), (4, 6)), ((3, 5, 4), (3, 4, 2)),           # stack @ matrix, batch @ batch
    ((5, 4), (3, 4, 2)), ((2, 1, 5, 4), (2, 3, 4, 2)),        # matrix @ stack, broadcast batch
    ((0, 4), (4, 3)), ((3, 0), (0, 2)), ((2, 0, 4), (4, 3)),  # empty
])
def test_matmul_equals_numpy(provider, dtype, a_shape, b_shape):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(a_shape).astype(dtype)
    b = rng.standard_normal(b_shape).astype(dtype)
    want = np.matmul(a, b)
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for a_view in _layouts(a):
        for b_view in _layouts(b):
            got = blas.matmul(a_view, b_view)
            assert got.shape == want.shape and got.dtype == want.dtype
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol)


def test_matmul_writes_out(provider):
    rng = np.random.default_rng(1)
    a = rng.standard_normal((4, 6, 5)).astype(np.float32)
    b = rng.standard_normal((5, 3)).astype(np.float32)
    out = np.full((4, 6, 3), np.nan, np.float32)
    assert blas.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=2e-5, atol=2e-5)
    strided = np.full((4, 6, 6), np.nan, np.float32)[..., ::2]  # not C-contiguous
    blas.matmul(a, b, out=strided)
    np.testing.assert_allclose(strided, a @ b, rtol=2e-5, atol=2e-5)


def test_other_dtypes_and_mixed_dtypes_are_numpys(provider):
    ints = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(blas.matmul(ints, ints.T), ints @ ints.T)
    mixed = blas.matmul(ints.astype(np.float32), ints.T.astype(np.float64))
    assert mixed.dtype == np.float64
    np.testing.assert_allclose(mixed, ints @ ints.T)
    c = (ints + 1j).astype(np.complex64)
    np.testing.assert_allclose(blas.matmul(c, c.T), c @ c.T, rtol=1e-6)


def test_fnx_blas_setting_is_checked(monkeypatch):
    monkeypatch.setattr(blas, "_state", None)
    monkeypatch.setenv("FNX_BLAS", "openblas")
    with pytest.raises(ValueError, match="FNX_BLAS='openblas'"):
        blas.provider()
    monkeypatch.setattr(blas, "_state", None)
    monkeypatch.setenv("FNX_BLAS", "numpy")
    assert blas.provider() == "numpy"
    assert blas.describe().startswith("numpy")
    monkeypatch.setattr(blas, "_state", None)
    monkeypatch.setenv("FNX_BLAS", "mkl")
    if blas._find_mkl() is None:
        with pytest.raises(ImportError, match='pip install "fnx\\[mkl\\]"'):
            blas.provider()
    else:
        assert blas.provider() == "mkl" and blas.describe().startswith("mkl")
    monkeypatch.setattr(blas, "_state", None)  # the next test selects again


def test_broadcast_negative_and_overlapping_operands(provider):
    rng = np.random.default_rng(3)
    row = rng.standard_normal(4).astype(np.float32)
    b = rng.standard_normal((4, 3)).astype(np.float32)
    broadcast = np.broadcast_to(row, (5, 4))  # row stride 0
    np.testing.assert_allclose(blas.matmul(broadcast, b), broadcast @ b, rtol=2e-5)
    flipped = rng.standard_normal((5, 4)).astype(np.float32)[::-1, ::-1]
    np.testing.assert_allclose(blas.matmul(flipped, b), flipped @ b, rtol=2e-5, atol=2e-5)
    batch = np.broadcast_to(b, (2, 4, 3))  # batch stride 0
    a = rng.standard_normal((2, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(blas.matmul(a, batch), a @ batch, rtol=2e-5, atol=2e-5)
    square = rng.standard_normal((4, 4)).astype(np.float32)
    want = square @ square
    blas.matmul(square, square, out=square)  # the output is an operand
    np.testing.assert_allclose(square, want, rtol=2e-5, atol=2e-5)


def test_threads_share_the_library(provider):
    import concurrent.futures

    rng = np.random.default_rng(4)
    pairs = [(rng.standard_normal((64, 48)).astype(np.float32),
              rng.standard_normal((48, 32)).astype(np.float32)) for _ in range(32)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda ab: blas.matmul(*ab), pairs))
    for (a, b), got in zip(pairs, results):
        np.testing.assert_allclose(got, a @ b, rtol=2e-5, atol=2e-5)


def test_stack_times_a_matrix_blas_cannot_read(provider):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 10)).astype(np.float32)[:, ::2]  # column stride 2
    got = blas.matmul(a, w)
    assert got.shape == (4, 7, 5)
    np.testing.assert_allclose(got, a @ w, rtol=2e-5, atol=2e-5)


def test_byte_swapped_operands(provider):
    a = np.arange(6, dtype=">f4").reshape(2, 3)
    b = np.arange(12, dtype=">f4").reshape(3, 4)
    np.testing.assert_array_equal(blas.matmul(a, b), a.astype(np.float32) @ b.astype(np.float32))


_THREADS_PROBE = """
import os, threading, numpy as np
from fnx.core import blas
a = np.ones((256, 256), np.float32)
blas.matmul(a, a)
before = len(os.listdir("/proc/self/task"))
for _ in range(40):
    t = threading.Thread(target=blas.matmul, args=(a, a))
    t.start()
    t.join()
print(blas.provider(), len(os.listdir("/proc/self/task")) - before)
"""


def test_short_lived_threads_leave_no_blas_threads_behind():
    """Multi-threaded MKL runs on GNU OpenMP: Intel's runtime kept a worker team for every
    thread that had called it (a DataLoader's workers leaked threads every epoch)."""
    import os
    import subprocess
    import sys

    if not os.path.isdir("/proc/self/task"):
        pytest.skip("needs /proc")
    env = dict(os.environ, MKL_NUM_THREADS="2")
    done = subprocess.run([sys.executable, "-c", _THREADS_PROBE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    provider, grown = done.stdout.split()
    assert int(grown) <= 2, f"{provider}: {grown} threads left behind by 40 threads"
