"""The BLAS behind fnx's float32/float64 matrix products on the host.

Two providers, one chosen per process at the first product:

* ``"mkl"`` -- Intel oneMKL, when its wheel is installed (``pip install "fnx[mkl]"``, x86-64):
  the library PyTorch's CPU build links. At the shapes of small networks (K of 27-128:
  convolutions over few channels, LSTM and Transformer layers) it measured 1.3-1.8x faster
  than OpenBLAS on one thread (docs/benchmarks.md, "Layer kernels"). MKL runs on one thread
  without an OpenMP runtime, on GNU OpenMP with more.
* ``"numpy"`` -- the BLAS NumPy links (OpenBLAS in NumPy's wheels), through ``np.matmul``.

``FNX_BLAS=numpy`` or ``FNX_BLAS=mkl`` overrides the default (MKL when installed). MKL runs
as many threads as ``MKL_NUM_THREADS`` says, else as many as NumPy's OpenBLAS
(``OPENBLAS_NUM_THREADS``), so one setting governs both. Compiled kernels that multiply
inside a loop reach the same routine through ``fnx.jit.blas``; products of other dtypes, of
CuPy arrays or of layouts BLAS cannot take go to ``np.matmul`` unchanged.
"""

import ctypes
import ctypes.util
import glob
import math
import os
import sys
import threading
import warnings

import numpy as np

_LAYER_SEQUENTIAL, _LAYER_GNU = 1, 3  # MKL_Set_Threading_Layer
ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112  # CBLAS's order and transpose flags
B_MATRIX, PACKED = 162, 151  # oneMKL's packed products: which operand, and its flag
# NumPy's CBLAS ?gemm: PyPI wheels bundle OpenBLAS with 64-bit-integer symbols
# (``scipy_cblas_sgemm64_`` since NumPy 2, ``cblas_sgemm64_`` in 1.26); other builds export the
# plain ``cblas_sgemm``. Callers pass 64-bit integers: for an LP64 library (32-bit ``int``) the
# x86-64 and AArch64 Linux calling conventions pass each in a 64-bit register or stack slot
# whose low half the callee reads, which holds every size below 2**31.
_NUMPY_GEMM = {"f": ("scipy_cblas_sgemm64_", "cblas_sgemm64_", "scipy_cblas_sgemm",
                     "cblas_sgemm"),
               "d": ("scipy_cblas_dgemm64_", "cblas_dgemm64_", "scipy_cblas_dgemm",
                     "cblas_dgemm")}
_lock = threading.Lock()
_state = None  # (name, library or None), set once
# Below this many multiply-adds per matrix (m * n * k) NumPy's BLAS takes the product: MKL's
# call costs ~8 µs plus ~15 µs of argument handling here, OpenBLAS's small-matrix kernels and
# np.matmul's ~4 µs; above it MKL wins (measured on 2-D and batched products, one thread).
_MKL_MIN_WORK = 1 << 20


def _numpy_blas_handle():
    """A ctypes handle whose symbol lookup searches NumPy's extension module and the libraries
    it links (dlsym on a handle walks its dependencies): NumPy's BLAS."""
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # NumPy 1.x
        from numpy.core import _multiarray_umath as umath
    return ctypes.CDLL(umath.__file__)


def _find_mkl():
    """The path of oneMKL's single dynamic library (the wheel puts it in ``<prefix>/lib``)."""
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix)):
        found = glob.glob(os.path.join(prefix, "lib", "libmkl_rt.so*"))
        if found:  # the newest (a leftover libmkl_rt.so.2 may sit beside .so.3)
            return max(found, key=lambda p: [int(x) for x in p.split(".so")[-1].split(".")
                                             if x.isdigit()])
    return None


def _numpy_threads():
    """How many threads NumPy's OpenBLAS runs (1 when that cannot be asked)."""
    handle = _numpy_blas_handle()
    for name in ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
                 "openblas_get_num_threads"):
        if hasattr(handle, name):
            return max(1, int(getattr(handle, name)()))
    return 1


def _load_mkl(path):
    lib = ctypes.CDLL(path)
    env = os.environ.get("MKL_NUM_THREADS")
    threads = int(env) if env and env.isdigit() else _numpy_threads()
    # GNU OpenMP, not Intel's: libiomp5 keeps a worker team for every thread that ever called
    # it, so short-lived threads (DataLoader workers, a thread per request) leaked one each
    if threads <= 1 or ctypes.util.find_library("gomp") is None:
        lib.MKL_Set_Threading_Layer(_LAYER_SEQUENTIAL)  # no OpenMP runtime loaded at all
    else:
        lib.MKL_Set_Threading_Layer(_LAYER_GNU)
        lib.MKL_Set_Num_Threads(threads)
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    for char, scalar in (("s", ctypes.c_float), ("d", ctypes.c_double)):
        gemm = getattr(lib, f"cblas_{char}gemm_64")  # the 64-bit-integer (ILP64) entry points
        gemm.restype = None
        gemm.argtypes = [i64] * 6 + [scalar, ptr, i64, ptr, i64, scalar, ptr, i64]
        size = getattr(lib, f"cblas_{char}gemm_pack_get_size_64")
        size.restype = ctypes.c_size_t
        size.argtypes = [i64] * 4
        pack = getattr(lib, f"cblas_{char}gemm_pack_64")
        pack.restype = None
        pack.argtypes = [i64] * 6 + [scalar, ptr, i64, ptr]
        batch = getattr(lib, f"cblas_{char}gemm_batch_strided_64")
        batch.restype = None
        batch.argtypes = ([i64] * 6 + [scalar, ptr, i64, i64, ptr, i64, i64, scalar, ptr, i64,
                                       i64, i64])
    return lib


def _select():
    global _state
    if _state is not None:
        return _state
    with _lock:
        if _state is not None:
            return _state
        choice = os.environ.get("FNX_BLAS", "").strip().lower()
        if choice not in ("", "auto", "mkl", "numpy"):
            raise ValueError(f"FNX_BLAS={choice!r}: expected 'mkl' or 'numpy' (or unset)")
        path = None if choice == "numpy" else _find_mkl()
        if choice == "mkl" and path is None:
            raise ImportError("FNX_BLAS=mkl, but oneMKL is not installed in this environment: "
                              "pip install \"fnx[mkl]\" (x86-64), or unset FNX_BLAS")
        library = None
        if path is not None:
            try:
                library = _load_mkl(path)
            except (OSError, AttributeError) as e:  # an MKL without the ILP64 entry points
                if choice == "mkl":
                    raise ImportError(f"FNX_BLAS=mkl: {path} cannot be used ({e}); "
                                      f"pip install \"mkl>=2024\"") from e
                warnings.warn(f"fnx: oneMKL at {path} cannot be used ({e}); matrix products "
                              f"use NumPy's BLAS (pip install \"mkl>=2024\")", stacklevel=3)
        _state = ("mkl", library) if library is not None else ("numpy", None)
        return _state


def provider():
    """The BLAS that fnx's host matrix products run on: ``"mkl"`` or ``"numpy"``.

    >>> from fnx.core import blas
    >>> blas.provider() in ("mkl", "numpy")
    True
    """
    return _select()[0]


def describe():
    """The provider with its version, for benchmark tables: ``"mkl (Intel(R) oneAPI Math
    Kernel Library Version 2026.2 ...)"`` or ``"numpy (scipy-openblas 0.3.31...)"``."""
    lib = _select()[1]
    if lib is None:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"numpy ({blas.get('name')} {blas.get('version')})"
    buf = ctypes.create_string_buffer(256)
    lib.mkl_get_version_string(buf, len(buf))
    return f"mkl ({buf.value.decode().strip()})"


def gemm_address(dtype):
    """The address of the CBLAS ``?gemm`` for ``dtype`` (float32/float64) that fnx's products
    run on: oneMKL's ILP64 entry point, or NumPy's BLAS's; None where NumPy's BLAS exports no
    CBLAS symbol. Arguments are 64-bit integers (see ``_NUMPY_GEMM``)."""
    char = np.dtype(dtype).char
    lib = _select()[1]
    if lib is not None:
        fn = lib.cblas_sgemm_64 if char == "f" else lib.cblas_dgemm_64
    else:
        handle = _numpy_blas_handle()
        fn = next((getattr(handle, n) for n in _NUMPY_GEMM[char] if hasattr(handle, n)), None)
        if fn is None:
            return None
    return ctypes.cast(fn, ctypes.c_void_p).value


def compute_address(dtype):
    """The address of oneMKL's ``cblas_?gemm_compute_64`` for ``dtype`` (products with an
    operand that ``pack_b`` packed), or None where the provider is NumPy's BLAS."""
    lib = _select()[1]
    if lib is None:
        return None
    fn = lib.cblas_sgemm_compute_64 if np.dtype(dtype).char == "f" else lib.cblas_dgemm_compute_64
    return ctypes.cast(fn, ctypes.c_void_p).value


def pack_b(b, m):
    """``b (k, n)`` (float32/float64, any layout BLAS reads) packed by oneMKL for products
    ``a @ b`` of ``m``-row ``a`` (``fnx.jit.blas.SGEMM_COMPUTE``): a uint8 buffer, empty where
    the provider is NumPy's BLAS or the layout does not fit. A recurrence multiplies by the
    same weight at every step: packing it once made each (32, 128) x (128, 512) step product
    ~25% faster (one thread).

    >>> import numpy as np
    >>> from fnx.core import blas
    >>> packed = blas.pack_b(np.ones((3, 4), np.float32), 2)
    >>> packed.dtype, (packed.size > 0) == (blas.provider() == "mkl")
    (dtype('uint8'), True)
    """
    lib = _select()[1]
    if lib is None or type(b) is not np.ndarray or b.dtype.char not in "fd" or b.ndim != 2:
        return np.empty(0, np.uint8)
    k, n = b.shape
    flag, ld = matrix_layout(k, n, *b.strides, b.itemsize)
    if flag == 0 or min(m, n, k) == 0 or not b.dtype.isnative:
        return np.empty(0, np.uint8)
    char = "s" if b.dtype.char == "f" else "d"
    size = getattr(lib, f"cblas_{char}gemm_pack_get_size_64")(B_MATRIX, m, n, k)
    raw = np.empty(size + 64, np.uint8)
    buf = raw[(-raw.ctypes.data) % 64:][:size]  # 64-byte aligned, as MKL's own allocator
    getattr(lib, f"cblas_{char}gemm_pack_64")(ROW_MAJOR, B_MATRIX, flag, m, n, k, 1.0,
                                             b.ctypes.data, ld, buf.ctypes.data)
    return buf


def matrix_layout(rows, cols, row_step, col_step, size):
    """(CBLAS transpose flag, leading dimension) of a ``rows x cols`` matrix with these byte
    strides and item size, or (0, 0) where BLAS cannot read it as it lies (no unit-stride
    axis; a leading dimension that does not step past a whole row or column: broadcast, or
    negative). Plain Python that ``fnx.jit.blas`` also compiles for kernels."""
    if (col_step == size or cols == 1) and (rows == 1 or row_step >= cols * size):
        return NO_TRANS, (row_step // size if rows > 1 else cols)
    if (row_step == size or rows == 1) and (cols == 1 or col_step >= rows * size):
        return TRANS, (col_step // size if cols > 1 else rows)
    return 0, 0


def _operand(x):
    """(CBLAS transpose flag, leading dimension, batch stride) of a stack of matrices whose
    batch axes collapse into one stride, or None."""
    size = x.itemsize
    if any(step % size for step in x.strides):
        return None
    flag, ld = matrix_layout(*x.shape[-2:], *x.strides[-2:], size)
    if flag == 0:
        return None
    stride = expected = None  # batch axes must collapse into one stride (size-1 axes aside)
    for count, step in zip(reversed(x.shape[:-2]), reversed(x.strides[:-2])):
        if count == 1:
            continue
        if stride is None:
            stride = step
        elif step != expected:
            return None
        expected = step * count
    if stride is None:
        return flag, ld, 0
    if stride < 0:
        return None
    return flag, ld, stride // size


def matmul(a, b, out=None):
    """``np.matmul(a, b, out=out)`` through the selected BLAS.

    >>> import numpy as np
    >>> from fnx.core import blas
    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> blas.matmul(a, a.T).tolist()
    [[5.0, 14.0], [14.0, 50.0]]
    """
    lib = _select()[1]
    if (lib is None or type(a) is not np.ndarray or type(b) is not np.ndarray
            or a.dtype != b.dtype or a.dtype.char not in "fd" or not a.dtype.isnative
            or a.ndim < 2 or b.ndim < 2
            or a.shape[-1] != b.shape[-2]
            or a.shape[-2] * a.shape[-1] * b.shape[-1] < _MKL_MIN_WORK
            or (a.ndim > 2 and b.ndim > 2 and a.shape[:-2] != b.shape[:-2])):
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    m, k = a.shape[-2:]
    n = b.shape[-1]
    shape = (a.shape if a.ndim >= b.ndim else b.shape)[:-2] + (m, n)
    if out is None:
        result = np.empty(shape, a.dtype)
    elif (type(out) is np.ndarray and out.shape == shape and out.dtype == a.dtype
          and out.flags.c_contiguous and out.flags.writeable
          and not np.may_share_memory(out, a) and not np.may_share_memory(out, b)):
        result = out  # (np.matmul buffers an output that overlaps an operand)
    else:
        return np.matmul(a, b, out=out)
    ob = _operand(b)
    if ob is not None and b.ndim == 2 and a.ndim > 2 and a.flags.c_contiguous:
        a = a.reshape(-1, k)  # a stack times one matrix: one product of all its rows
    oa = _operand(a)
    if oa is None or ob is None:
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    (ta, lda, sa), (tb, ldb, sb) = oa, ob
    single = a.dtype.char == "f"
    if a.ndim == 2 and b.ndim == 2:
        (lib.cblas_sgemm_64 if single else lib.cblas_dgemm_64)(
            ROW_MAJOR, ta, tb, a.shape[0], n, k, 1.0, a.ctypes.data, lda, b.ctypes.data, ldb,
            0.0, result.ctypes.data, n)
    else:  # a batch; a 2-D operand repeats (batch stride 0)
        (lib.cblas_sgemm_batch_strided_64 if single else lib.cblas_dgemm_batch_strided_64)(
            ROW_MAJOR, ta, tb, m, n, k, 1.0, a.ctypes.data, lda, sa, b.ctypes.data, ldb, sb,
            0.0, result.ctypes.data, n, m * n, math.prod(shape[:-2]))
    return result
