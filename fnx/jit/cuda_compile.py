"""Generated CUDA kernels -> PTX (and a cubin where ``ptxas`` is at hand), with no GPU needed,
cached on disk; and the raw-pointer ABI that the launch path (``cuda_launch``) packs.

Numba is the compiler. A kernel module from ``codegen.cuda.render`` defines ``kernel(M, R, n0..,
a0.., o0..)``; Numba's dispatcher types array arguments as arrays (5 + 2*ndim parameters each,
exported through DLPack at every launch), so the launch path compiles the same Python function
once more with ``numba.cuda.compile_ptx`` at a raw-pointer signature (``raw_signature``): int64
sizes, then one ``CPointer(dtype)`` per input and per output buffer. Every parameter is then one
64-bit word (``param_kinds``), which ``cuda_launch.LaunchPlan`` packs once and patches with
pointers per call. Bool buffers are passed as ``uint8`` pointers (Numba loads a ``boolean``
pointer's byte as a 1-bit value and fails to lower the branch on it); the generated loads read
them as ``x != 0``, which means the same in both compilations.

``compile_ptx(source, signature, cc, load_pyfunc)`` returns a ``PtxKernel`` (entry name, PTX,
its parameter types read back from the PTX, and a cubin when ``ptxas`` of the same toolkit
exists). Both are written atomically to ``<fnx cache dir>/cuda/ptx/<key>.{ptx,cubin}``, the key
being a hash of the kernel source, the signature, the compute capability and
``toolchain_key()`` (Numba's version, libNVVM's file and version, libdevice's file), like the
CPU kernels' ``cache.backend_key``. A second process with the same kernel reads the files and
compiles nothing.

Compiling needs libNVVM and libdevice (a CUDA toolkit, or the ``nvidia-cuda-nvcc-cu12`` wheel
found by numba-cuda), never a GPU: ``toolchain()`` is None when they cannot be loaded, and the
tests that compile every kernel kind skip then.
"""

import contextlib
import functools
import hashlib
import os
import re
import subprocess
import tempfile
import threading
import types
from typing import NamedTuple

import numpy as np

PARAM_BYTES = 8  # every raw-signature parameter (int64 size or pointer) is one 64-bit word

_lock = threading.Lock()
_memo = {}  # cache key -> PtxKernel
STATS = {"ptx_compiled": 0, "ptx_loaded": 0}


class CudaToolchainError(RuntimeError):
    """libNVVM/libdevice could not be loaded: generated kernels cannot be compiled to PTX."""


class PtxKernel(NamedTuple):
    entry: str         # the mangled name of the kernel in the PTX
    ptx: str
    params: tuple      # PTX parameter types in order ('u64', 'f32', ...)
    cubin: bytes | None  # ptxas output for ``cc`` (None when no ptxas of the toolkit exists)
    key: str
    cc: tuple


# --- the raw-pointer ABI -----------------------------------------------------------------------


def buffer_dtype(dt):
    """The element type a kernel's pointer to a ``dt`` buffer has (bool -> uint8)."""
    dt = np.dtype(dt)
    return np.dtype(np.uint8) if dt.kind == "b" else dt


def raw_signature(ndim, in_dtypes, out_dtypes):
    """Numba argument types of ``kernel(M, R, n0.., a0.., o0..)`` with raw pointers."""
    from numba import types as nt

    def ptr(dt):
        return nt.CPointer(getattr(nt, buffer_dtype(dt).name))

    return ((nt.int64,) * (2 + ndim) + tuple(ptr(d) for d in in_dtypes)
            + tuple(ptr(d) for d in out_dtypes))


def param_kinds(ndim, nin, nout):
    """What each 64-bit parameter of the raw signature holds, in order: ``('size', i)`` for
    M, R, n0.. (i = 0, 1, 2..), ``('in', k)``, ``('out', j)``."""
    return ([("size", i) for i in range(2 + ndim)] + [("in", k) for k in range(nin)]
            + [("out", j) for j in range(nout)])


_ENTRY = re.compile(r"\.visible\s+\.entry\s+([\w$]+)\s*\(([^)]*)\)", re.S)
_PARAM = re.compile(r"\.param\s+\.(\w+)\s+(?:\.ptr\s+[.\w\s]*?)?[\w$]+")


def entry_params(ptx):
    """``(entry name, parameter types)`` of the one kernel entry in ``ptx``."""
    entries = _ENTRY.findall(ptx)
    if len(entries) != 1:
        raise ValueError(f"expected one .entry in the PTX, found {len(entries)}")
    name, plist = entries[0]
    return name, tuple(_PARAM.findall(plist))


# --- the toolchain -----------------------------------------------------------------------------


@functools.cache
def toolchain():
    """``{'numba', 'nvvm', 'libnvvm', 'libdevice', 'ptxas'}`` of the CUDA compiler Numba uses,
    or None when libNVVM/libdevice cannot be loaded (then nothing can be compiled to PTX)."""
    try:
        from . import cuda_runtime

        cuda_runtime.cuda()  # numba.cuda, with its NumPy 2.5 import shim
        import numba
        from numba.cuda.cudadrv import nvvm
        from numba.cuda.cudadrv.libs import get_libdevice

        lib = nvvm.NVVM()  # loads libNVVM: raises when there is none
        try:
            version = (tuple(lib.get_version()), tuple(lib.get_ir_version()))
        except Exception:  # noqa: BLE001 -- only part of the cache key; the files stamp it too
            version = None
        libdevice = get_libdevice()
        if not libdevice or not os.path.exists(libdevice):
            return None
    except Exception:  # noqa: BLE001 -- any failure to load the toolkit means "not available"
        return None
    libnvvm = _loaded_library("libnvvm")
    return {"numba": numba.__version__, "nvvm": version, "libnvvm": libnvvm,
            "libdevice": libdevice, "ptxas": _ptxas(libnvvm, libdevice)}


def _loaded_library(stem):
    """Real path of the shared library ``stem`` this process has mapped (Linux), else None."""
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.rsplit(None, 1)[-1]
                if os.path.basename(path).startswith(stem + ".so"):
                    return os.path.realpath(path)
    except OSError:
        pass
    return None


def _ptxas(libnvvm, libdevice):
    """``ptxas`` of the toolkit libNVVM came from (a newer PTX ISA than an older ptxas reads),
    else None: the driver then compiles the PTX itself at load time."""
    roots = []
    for p in (libnvvm, libdevice):
        if p:  # <root>/nvvm/lib64/libnvvm.so, <root>/lib/libnvvm.so, <root>/nvvm/libdevice/x.bc
            d = os.path.dirname(os.path.realpath(p))
            roots += [os.path.dirname(d), os.path.dirname(os.path.dirname(d))]
    for root in roots:
        exe = os.path.join(root, "bin", "ptxas")
        if os.access(exe, os.X_OK):
            return exe
    return None


def available():
    """True when generated kernels can be compiled to PTX on this machine (no GPU needed)."""
    return toolchain() is not None


@functools.cache
def toolchain_key():
    """What a compiled kernel depends on besides its source, signature and target: Numba's
    version, libNVVM's (file, size, versions), libdevice's (file, size) and ptxas's path."""
    tc = toolchain()
    if tc is None:
        raise CudaToolchainError(_NO_TOOLCHAIN)

    def stamp(p):
        return f"{p}:{os.path.getsize(p)}" if p and os.path.exists(p) else str(p)

    return (f"numba={tc['numba']} nvvm={tc['nvvm']} libnvvm={stamp(tc['libnvvm'])} "
            f"libdevice={stamp(tc['libdevice'])} ptxas={stamp(tc['ptxas'])}")


_NO_TOOLCHAIN = (
    "fnx.jit (CUDA): libNVVM/libdevice could not be loaded, so generated kernels cannot be "
    "compiled to PTX. Install a CUDA toolkit (or `pip install 'fnx[cuda]'`, which brings "
    "numba-cuda with the nvidia-cuda-nvcc wheel), or set CUDA_HOME to the toolkit's root.")


# --- compiling --------------------------------------------------------------------------------


@contextlib.contextmanager
def _device_cc(cc):
    """Numba compiles a kernel's device helpers (``@cuda.jit(device=True)``) for the *current
    device's* compute capability, which needs a GPU context; compile them for ``cc`` instead
    (their IR is then linked into the kernel and compiled for ``cc`` anyway)."""
    from numba.core.compiler_lock import global_compiler_lock
    from numba.cuda import dispatcher

    with global_compiler_lock:
        real = dispatcher.get_current_device
        dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
        try:
            yield
        finally:
            dispatcher.get_current_device = real


def cache_key(source, signature, cc):
    h = hashlib.sha256()
    for part in (source, repr(tuple(signature)), repr(tuple(cc)), toolchain_key()):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


def _path(key, ext):
    from . import cache

    return os.path.join(cache.cache_dir(), "cuda", "ptx", f"{key}.{ext}")


def compile_ptx(source, signature, cc, load_pyfunc):
    """The ``PtxKernel`` of kernel module ``source`` at raw ``signature`` for compute capability
    ``cc``: from memory, from the disk cache, or compiled (``load_pyfunc()`` returns the kernel's
    Python function; it is only called on a miss)."""
    cc = tuple(int(c) for c in cc)
    key = cache_key(source, signature, cc)
    k = _memo.get(key)
    if k is not None:
        return k
    with _lock:
        k = _memo.get(key)
        if k is None:
            k = _memo[key] = _load(key, cc) or _compile(key, signature, cc, load_pyfunc)
    return k


def _load(key, cc):
    try:
        with open(_path(key, "ptx")) as f:
            ptx = f.read()
        entry, params = entry_params(ptx)
    except (OSError, ValueError):
        return None
    cubin = None
    if os.path.exists(_path(key, "cubin")):
        with open(_path(key, "cubin"), "rb") as f:
            cubin = f.read()
    STATS["ptx_loaded"] += 1
    return PtxKernel(entry, ptx, params, cubin, key, cc)


def _compile(key, signature, cc, load_pyfunc):
    from numba import cuda

    from . import cache

    pyfunc = load_pyfunc()
    with _device_cc(cc):
        ptx, _ = cuda.compile_ptx(pyfunc, tuple(signature), cc=cc)
    entry, params = entry_params(ptx)
    cubin = _assemble(ptx, cc)
    if cubin is not None:
        cache._write_atomic(_path(key, "cubin"), cubin)
    cache._write_atomic(_path(key, "ptx"), ptx)  # last: its presence marks a complete entry
    STATS["ptx_compiled"] += 1
    return PtxKernel(entry, ptx, params, cubin, key, cc)


def _assemble(ptx, cc):
    """``ptx`` assembled for ``sm_<cc>`` by the toolkit's ptxas, or None (no ptxas, or it
    failed: the driver JIT-compiles the PTX at load time instead)."""
    exe = toolchain()["ptxas"]
    if exe is None:
        return None
    with tempfile.TemporaryDirectory() as d:
        src, out = os.path.join(d, "k.ptx"), os.path.join(d, "k.cubin")
        with open(src, "w") as f:
            f.write(ptx)
        r = subprocess.run([exe, f"-arch=sm_{cc[0]}{cc[1]}", "-O3", "-o", out, src],
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0 or not os.path.exists(out):
            return None
        with open(out, "rb") as f:
            return f.read()


__all__ = ["CudaToolchainError", "PtxKernel", "PARAM_BYTES", "available", "buffer_dtype",
           "compile_ptx", "entry_params", "param_kinds", "raw_signature", "toolchain",
           "toolchain_key"]
