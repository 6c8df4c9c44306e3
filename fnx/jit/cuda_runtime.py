"""Host-side runtime of the CUDA backend: which buffers live on the GPU, the buffer layer the
generated orchestrator calls (allocation, constants, BLAS, eager impls), launch configuration
and the stream.

Two buffer layers share one interface (``backend()``):

* ``CupyBackend`` (a real GPU): buffers are CuPy arrays. Kernels launch through the launch
  path when a PTX toolchain is there (``raw_driver``: ``cuda_compile`` + ``cuda_launch``, the
  buffers' device pointers patched into pre-packed parameters), else through Numba's
  dispatcher, which receives them through ``__cuda_array_interface__``
  (``numba.cuda.as_cuda_array``, zero copy, no stream sync); matrix products go to cuBLAS
  through CuPy's low-level handle (``cuda_launch.CupyBlas``); opaque primitives run their
  eager impl on CuPy buffers (impls dispatch with ``devices.array_module``); everything runs on
  CuPy's current stream, so it is ordered with CuPy's own work (docs/cuda.md).
* ``SimBackend`` (``NUMBA_ENABLE_CUDASIM=1``, no CuPy): buffers are Numba device arrays; BLAS
  and eager impls round-trip through host NumPy. It exists to test the generated kernels and
  the orchestrator on machines without a GPU (it is given ``shfl_xor_sync``, which it lacks,
  for the warp kernels).

Nothing here imports ``numba.cuda`` until a CUDA buffer is actually seen.
"""

import functools
import math
import os

import numpy as np

# threads per block; reductions use shared arrays of this size (a power of two)
BLOCK = 256
SIM_BLOCK = 16   # the simulator runs one Python thread per CUDA thread: keep blocks small
WARP = 32
# row groups: rows of fewer than ROW_WARP_MIN reduced elements get a thread each, rows of up
# to ROW_BLOCK_MIN - 1 a warp each (shuffle reductions, no shared memory or barriers), longer
# rows a block each
ROW_WARP_MIN = 32
ROW_BLOCK_MIN = 1025


def simulator():
    """True when Numba's CUDA simulator is on (``NUMBA_ENABLE_CUDASIM=1``)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return True
    try:
        from numba import config

        return bool(config.ENABLE_CUDASIM)
    except Exception:  # noqa: BLE001
        return False


@functools.cache
def cuda():
    """``numba.cuda`` (imported on first use)."""
    if not hasattr(np, "row_stack"):
        # numba-cuda <= 0.30 registers an overload for np.row_stack, which NumPy 2.5 removed;
        # without the alias its kernel compiler fails to import (seen on an H200 machine).
        np.row_stack = np.vstack
    from numba import cuda as nbcuda

    if simulator():
        _simulate_shuffles()
    return nbcuda


def _simulate_shuffles():
    """Give the CUDA simulator ``cuda.shfl_xor_sync``, which it lacks, so the warp reductions
    of generated kernels run there. Each thread publishes its value and reads its partner's
    between two barriers; the simulator's ``syncthreads`` waits for the threads still alive,
    and every lane of a warp runs the same shuffles (warp-uniform loops), so it is exact."""
    import threading

    from numba.cuda.simulator.kernelapi import FakeCUDAModule

    def shfl_xor_sync(self, mask, value, lane_mask):
        del mask  # unused: all lanes take part
        t = threading.current_thread()
        slots = t._manager.__dict__.setdefault("_fnx_shfl", {})
        slots[t.thread_id] = value
        t.syncthreads()
        got = slots[t.thread_id ^ lane_mask]
        t.syncthreads()
        return got

    FakeCUDAModule.shfl_xor_sync = shfl_xor_sync


def block_size(strategy="thread"):
    """Threads per block of a kernel variant (the simulator's: small, but whole warps where
    shuffles are used: one for a warp per row, two for a block per row)."""
    if simulator():
        return {"warp": WARP, "block": 2 * WARP}.get(strategy, SIM_BLOCK)
    return BLOCK


def rows_per_block(strategy, block):
    """Rows one block handles at a time: a block's (``block``), a warp's (``warp``), or one
    per thread (``thread``)."""
    return {"block": 1, "warp": block // WARP}.get(strategy, block)


_raw = []  # [driver or None], decided once per process


def raw_driver():
    """The ``cuda_launch`` driver when kernels launch through the raw path (a real GPU, CuPy,
    and a CUDA toolkit Numba can compile PTX with), else None: Numba's dispatcher launches
    them (the simulator, no toolkit, or ``FNX_CUDA_LAUNCH=numba``)."""
    if not _raw:
        drv = None
        if (not simulator() and os.environ.get("FNX_CUDA_LAUNCH", "raw") != "numba"
                and isinstance(backend(), CupyBackend)):
            from . import cuda_compile, cuda_launch

            if cuda_compile.available():
                drv = cuda_launch.driver()
        _raw.append(drv)
    return _raw[0]


def is_cuda_buffer(buf):
    """True for a GPU buffer: a CuPy array, a Numba device array (or a simulator one), or any
    object exporting ``__cuda_array_interface__``."""
    if isinstance(buf, np.ndarray) or isinstance(buf, (int, float, complex, bool, np.generic)):
        return False
    if hasattr(buf, "__cuda_array_interface__"):
        return True
    mod = type(buf).__module__
    return mod.startswith("numba.cuda.simulator") or mod.startswith("cupy")


def device_kind(bufs):
    """'cuda' when any of ``bufs`` is a GPU buffer, else 'cpu' (the orchestrator's dispatch)."""
    for b in bufs:
        if is_cuda_buffer(b):
            return "cuda"
    return "cpu"


# --- launch configuration ----------------------------------------------------------------------


@functools.cache
def _max_blocks():
    if simulator():
        return 4
    try:
        dev = cuda().get_current_device()
        return int(dev.MULTIPROCESSOR_COUNT) * 32
    except Exception:  # noqa: BLE001
        return 4096


# split reductions (a full or column reduction over many blocks): each of G threads per output
# folds every G-th reduced element (at least SPLIT_MIN_CHUNK of them), a second kernel folds the
# G partials in order; G brings the threads of the first kernel to about SPLIT_THREADS_PER_SM
# per SM
SPLIT_MIN_CHUNK = 64
SPLIT_THREADS_PER_SM = 2048


def split_count(M, R, width):
    """How many partials (G) to split each of ``M`` reductions over ``R`` elements into, when
    the unsplit kernel would run ``width`` threads per output; 1 when those ``M * width``
    threads already fill a quarter of the GPU or the rows are too short."""
    target = _max_blocks() * SPLIT_THREADS_PER_SM // 32  # _max_blocks: 32 per SM
    if M * width * 4 >= target:
        return 1
    g = min(R // SPLIT_MIN_CHUNK, target // max(M, 1))
    return g if g >= 2 else 1


def grid_for(n, per_block):
    """Blocks for ``n`` work items at ``per_block`` items a block (grid-stride loops do the
    rest): at least 1, at most ~32 blocks per SM."""
    return max(1, min(_max_blocks(), math.ceil(n / per_block)))


# --- buffer layers --------------------------------------------------------------------------------


def _c_order(host):
    """``host`` as a C-contiguous NumPy array of its own shape (``np.ascontiguousarray`` turns
    a 0-d array into shape (1,), so a 0-d constant or eager result came back 1-d)."""
    a = np.asarray(host)
    return a if a.flags.c_contiguous else np.ascontiguousarray(a)


class CupyBackend:
    name = "cupy"

    def __init__(self):
        from ..core.devices import cupy_module

        self.cp = cupy_module()
        self._streams = {}
        self._blas = None

    def stream(self):
        """Numba's handle on CuPy's current stream (the legacy default stream when unset)."""
        ptr = self.cp.cuda.get_current_stream().ptr
        s = self._streams.get(ptr)
        if s is None:
            s = cuda().default_stream() if ptr == 0 else cuda().external_stream(ptr)
            self._streams[ptr] = s
        return s

    def empty(self, shape, dtype):
        return self.cp.empty(shape, dtype)

    def contiguous(self, x):
        if isinstance(x, np.ndarray):
            return self.cp.asarray(_c_order(x))
        return x if x.flags.c_contiguous else self.cp.ascontiguousarray(x)

    def on_device(self, x):
        """Host arrays/scalars (a NumPy constant) are copied over; GPU buffers pass as is."""
        return self.cp.asarray(x) if isinstance(x, (np.ndarray, np.generic)) else x

    def const(self, host):
        return self.cp.asarray(_c_order(host))

    def kernel_arg(self, x):
        # a flat view, handed over zero-copy; sync=False: ordering comes from the shared stream
        return cuda().as_cuda_array(x.reshape(x.size), sync=False)

    def matmul(self, a, b, ta=False, tb=False):
        if self._blas is None:
            from .cuda_launch import CupyBlas

            self._blas = CupyBlas(self.cp)
        return self._blas.matmul(a, b, ta, tb)

    def dot(self, a, b):
        return self.cp.asarray(self.cp.dot(a, b))

    def eager(self, fn, *bufs):
        return fn(*bufs)

    def to_host(self, x):
        return self.cp.asnumpy(x)

    def synchronize(self):
        self.cp.cuda.get_current_stream().synchronize()


class SimBackend:
    """Numba device arrays, host round trips for everything that is not a generated kernel."""

    name = "sim"

    def stream(self):
        return 0

    def empty(self, shape, dtype):
        return cuda().device_array(tuple(shape), np.dtype(dtype))

    def on_device(self, x):
        return self.const(x) if isinstance(x, (np.ndarray, np.generic)) else x

    contiguous = on_device  # its device buffers are made contiguous where they are created

    def const(self, host):
        return cuda().to_device(_c_order(host))

    def kernel_arg(self, x):
        return x.reshape(x.size)

    def _host(self, x):
        return x.copy_to_host() if is_cuda_buffer(x) else x

    def _dev(self, x):
        if isinstance(x, (list, tuple)):
            return type(x)(self._dev(y) for y in x)
        return cuda().to_device(_c_order(x))

    def matmul(self, a, b, ta=False, tb=False):
        a, b = self._host(a), self._host(b)
        return self._dev(np.matmul(a.T if ta else a, b.T if tb else b))

    def dot(self, a, b):
        return self._dev(np.asarray(np.dot(self._host(a), self._host(b))))

    def eager(self, fn, *bufs):
        return self._dev(fn(*[self._host(b) for b in bufs]))

    def to_host(self, x):
        return self._host(x)

    def synchronize(self):
        pass


@functools.cache
def backend():
    """The buffer layer for this process: the simulator's when it is on, else CuPy's."""
    return SimBackend() if simulator() else CupyBackend()


def to_device(host):
    """A host array on the GPU in this process's buffer type (CuPy, or a simulator array)."""
    return backend().const(host)


def to_host(buf):
    return backend().to_host(buf)


def synchronize():
    backend().synchronize()


__all__ = ["BLOCK", "simulator", "cuda", "is_cuda_buffer", "device_kind", "grid_for", "raw_driver",
           "backend", "CupyBackend", "SimBackend", "to_device", "to_host", "synchronize"]
