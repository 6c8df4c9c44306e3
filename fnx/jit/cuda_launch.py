"""The low-overhead CUDA launch path: compiled kernels loaded once through CuPy, one
``LaunchPlan`` per (kernel, sizes) with its parameters packed ahead, and cuBLAS called through
CuPy's low-level handle; everything on CuPy's current stream.

Numba's dispatcher costs tens of microseconds per launch given CuPy arrays (it exports each
array through DLPack twice, types the arguments and builds a launch configuration). Here a
kernel is compiled at a raw-pointer signature (``cuda_compile``), its module is loaded once
(``CupyDriver.function``), and a ``LaunchPlan`` holds everything that does not change between
calls of one executable: the function handle, grid, block, shared memory and a buffer of 64-bit
parameter words with the sizes already written. A call writes the buffers' device pointers
into their slots and calls ``cuLaunchKernel`` (``cupy.cuda.driver.launchKernel``) with the
parameter array: a few microseconds of host time.

Order: kernels, cuBLAS and CuPy's own operations all run on CuPy's current stream (kernels are
launched on ``stream()``, cuBLAS is handed the same stream), so they are ordered without
synchronisation, and CuPy's memory pool reuses a freed buffer only after the work queued on
that stream before the free.

``driver`` is any object with ``function(ptx_kernel) -> handle``, ``launch(fn, grid, block,
smem, stream, params)`` and ``stream() -> int``: tests use a recording one without a GPU.
"""

import ctypes
import functools

import numpy as np

from .cuda_compile import PARAM_BYTES, param_kinds

_WIDE = {"u64", "s64", "b64"}  # PTX types of one 64-bit parameter word


class LaunchPlanError(RuntimeError):
    """A compiled kernel's PTX parameter list does not match the words its plan packs."""


def check_params(ptx_params, ndim, nin, nout):
    """Raise ``LaunchPlanError`` unless the PTX parameters are exactly the raw ABI's words: one
    64-bit word per size, input and output, in that order. A mismatch would make the GPU read
    sizes as pointers, so it is checked once per compiled kernel, before any launch."""
    kinds = param_kinds(ndim, nin, nout)
    bad = [i for i, t in enumerate(ptx_params) if t not in _WIDE]
    if len(ptx_params) != len(kinds) or bad:
        raise LaunchPlanError(
            f"kernel parameters {list(ptx_params)} do not match the launch plan's "
            f"{len(kinds)} 64-bit words ({2 + ndim} sizes, {nin} inputs, {nout} outputs)"
            + (f"; not 64-bit: positions {bad}" if bad else ""))


class LaunchPlan:
    """One kernel launch at fixed sizes. ``launch(pointers, stream)`` writes the buffers'
    device pointers (inputs then outputs) after the packed sizes and launches."""

    __slots__ = ("fn", "grid", "block", "smem", "words", "first", "params", "_argv", "driver",
                 "sizes")

    def __init__(self, driver, fn, grid, block, sizes, nbuffers, smem=0):
        self.driver, self.fn = driver, fn
        self.grid, self.block, self.smem = int(grid), int(block), int(smem)
        self.sizes = tuple(int(s) for s in sizes)
        n = len(self.sizes) + nbuffers
        self.words = (ctypes.c_uint64 * n)(*[s & 0xFFFFFFFFFFFFFFFF for s in self.sizes])
        base = ctypes.addressof(self.words)
        # cuLaunchKernel's kernelParams: an array of n pointers, one to each parameter's value
        self._argv = (ctypes.c_void_p * n)(*[base + PARAM_BYTES * i for i in range(n)])
        self.params = ctypes.addressof(self._argv)
        self.first = len(self.sizes)

    def launch(self, pointers, stream):
        words, i = self.words, self.first
        for p in pointers:
            words[i] = p
            i += 1
        self.driver.launch(self.fn, self.grid, self.block, self.smem, stream, self.params)

    def packed(self):
        """The parameter words as the GPU would read them through ``params`` (for tests)."""
        n = len(self.words)
        argv = (ctypes.c_void_p * n).from_address(self.params)
        return [ctypes.c_uint64.from_address(argv[i]).value for i in range(n)]


class ChainedPlan:
    """Launch plans run in order on one stream over the same buffers followed by scratch
    buffers the chain owns (a split reduction: partials, then the finishing fold). Reusing the
    scratch at every call is safe because every launch is ordered on the one stream."""

    __slots__ = ("plans", "scratch", "_extra")

    def __init__(self, plans, scratch):
        self.plans, self.scratch = list(plans), list(scratch)
        self._extra = [b.data.ptr for b in self.scratch]

    def launch(self, pointers, stream):
        pointers = [*pointers, *self._extra]
        for p in self.plans:
            p.launch(pointers, stream)


class CupyDriver:
    """Modules and launches through CuPy's driver API wrappers, on CuPy's current stream."""

    def __init__(self):
        from ..core.devices import cupy_module

        self.cp = cupy_module()
        self._functions = {}  # PtxKernel.key -> (module, function): the module stays loaded

    def compute_capability(self):
        cc = self.cp.cuda.Device().compute_capability  # e.g. '90'
        return int(cc[:-1]), int(cc[-1])

    def function(self, k):
        got = self._functions.get(k.key)
        if got is None:
            mod = self.cp.cuda.Module()
            mod.load(k.cubin if k.cubin is not None else k.ptx.encode())
            got = self._functions[k.key] = (mod, mod.get_function(k.entry))
        return got[1].ptr

    def launch(self, fn, grid, block, smem, stream, params):
        self.cp.cuda.driver.launchKernel(fn, grid, 1, 1, block, 1, 1, smem, stream, params, 0)

    def stream(self):
        return self.cp.cuda.get_current_stream().ptr


@functools.cache
def driver():
    return CupyDriver()


# --- cuBLAS through CuPy's handle ----------------------------------------------------------------

# cuBLAS operation codes (cublasOperation_t)
OP_N, OP_T = 0, 1
_ONE = {np.dtype(np.float32): np.ones(1, np.float32), np.dtype(np.float64): np.ones(1)}
_ZERO = {np.dtype(np.float32): np.zeros(1, np.float32), np.dtype(np.float64): np.zeros(1)}


def gemm_args(a_shape, b_shape, ta, tb):
    """cuBLAS (column-major) arguments ``(transa, transb, m, n, k, lda, ldb, ldc)`` and the
    output shape for the row-major product ``op(A) @ op(B)`` of C-contiguous A, B (``op``
    transposes when ``ta``/``tb``). Row-major C is column-major C^T = op(B)^T op(A)^T, so B is
    cuBLAS's first operand: a row-major (r, c) buffer is the column-major (c, r) matrix."""
    m, ka = (a_shape[1], a_shape[0]) if ta else a_shape
    kb, n = (b_shape[1], b_shape[0]) if tb else b_shape
    if ka != kb:
        raise ValueError(f"gemm: contracting sizes differ: {a_shape} (ta={ta}) and "
                         f"{b_shape} (tb={tb})")
    return ((OP_T if tb else OP_N), (OP_T if ta else OP_N), n, m, ka, b_shape[1], a_shape[1],
            n), (m, n)


def gemm(blas, handle, dtype, a_ptr, b_ptr, c_ptr, args):
    """``C = op(A) @ op(B)`` through ``blas.sgemm``/``blas.dgemm`` (CuPy's
    ``cupy_backends.cuda.libs.cublas``) with host-side alpha = 1, beta = 0."""
    transa, transb, m, n, k, lda, ldb, ldc = args
    dt = np.dtype(dtype)
    fn = blas.sgemm if dt == np.float32 else blas.dgemm
    fn(handle, transa, transb, m, n, k, _ONE[dt].ctypes.data, b_ptr, lda, a_ptr, ldb,
       _ZERO[dt].ctypes.data, c_ptr, ldc)


class CupyBlas:
    """Matrix products of C-contiguous 2-D float32/float64 CuPy arrays through cuBLAS's
    low-level entry points on CuPy's current stream (``cupy.matmul`` checks and dispatches
    in Python first); anything else goes to ``cupy.matmul``."""

    def __init__(self, cp):
        try:
            from cupy_backends.cuda.libs import cublas
        except ImportError:  # a CuPy without that module: its matmul does the same, slower
            cublas = None
        self.cp, self.lib = cp, cublas
        self._args = {}

    def matmul(self, a, b, ta=False, tb=False):
        cp = self.cp
        if (self.lib is None or a.ndim != 2 or b.ndim != 2 or a.dtype != b.dtype
                or a.dtype not in _ONE
                or not (a.flags.c_contiguous and b.flags.c_contiguous) or 0 in a.shape
                or 0 in b.shape):
            return cp.matmul(a.T if ta else a, b.T if tb else b)
        key = (a.shape, b.shape, ta, tb)
        got = self._args.get(key)
        if got is None:
            got = self._args[key] = gemm_args(a.shape, b.shape, ta, tb)
        args, shape = got
        out = cp.empty(shape, a.dtype)
        handle = cp.cuda.device.get_cublas_handle()
        self.lib.setStream(handle, cp.cuda.get_current_stream().ptr)
        gemm(self.lib, handle, a.dtype, a.data.ptr, b.data.ptr, out.data.ptr, args)
        return out


__all__ = ["ChainedPlan", "CupyBlas", "CupyDriver", "LaunchPlan", "LaunchPlanError",
           "check_params", "driver", "gemm", "gemm_args"]
