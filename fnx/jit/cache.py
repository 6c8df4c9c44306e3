"""The kernel cache: generated sources on disk, Numba's own cache beside them, and an
in-process table of dispatchers.

Layout of ``FNX_CACHE_DIR`` (default ``$XDG_CACHE_HOME/fnx`` or ``~/.cache/fnx``)::

    fnx_<sha256 of the source>.py    one kernel module, written atomically (tmp + os.replace)
    __pycache__/                     Numba's cache (index + object code per signature)

Kernel sources are canonical (arguments ``n*/a*/o*``, temporaries ``t*``) and carry a backend
version header (fnx, numba, vecmath, runtime and codegen versions), so the same group in any
program or process maps to the same file and the same compiled code.
"""

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

import numba
import numpy as np
from numba.core import types as nbtypes

from .codegen import cpu

_lock = threading.Lock()
_modules = {}      # hash -> kernel dispatcher
_compiled = {}     # (hash, signature) -> dispatcher
STATS = {"kernels_compiled": 0, "kernels_loaded": 0, "kernels_reused": 0, "sources_written": 0}


def backend_version():
    from .. import __version__ as fnx_version
    from . import _rt, vecmath
    from .codegen import cpu_math

    return (f"fnx={fnx_version} numba={numba.__version__} vecmath={vecmath.VECMATH_VERSION} "
            f"rt={_rt.RT_VERSION} codegen={cpu.CODEGEN_VERSION} "
            f"cm={cpu_math.CPU_MATH_VERSION}")


def cache_dir():
    d = os.environ.get("FNX_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "fnx")
    return d


def source_hash(source):
    return hashlib.sha256(source.encode()).hexdigest()[:32]


def _write_atomic(path, text):
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    if os.path.exists(path):
        with open(path) as f:
            if f.read() == text:
                return
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_", suffix=".py")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    STATS["sources_written"] += 1


def load_kernel(body):
    """The dispatcher for a kernel body (from ``cpu.render``): written, imported, cached."""
    source = cpu.header(backend_version()) + body
    h = source_hash(source)
    disp = _modules.get(h)
    if disp is not None:
        return h, disp
    with _lock:
        d = cache_dir()
        path = os.path.join(d, f"fnx_{h}.py")
        _write_atomic(path, source)
        name = f"fnx_kernels.fnx_{h}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        disp = module.kernel
        _modules[h] = disp
    return h, disp


def numba_type(x):
    if isinstance(x, (int, np.integer)):
        return nbtypes.int64
    return nbtypes.Array(numba.from_dtype(x.dtype), x.ndim, "C")


def signature_of(shapes_dtypes, nsizes):
    """Signature from ``nsizes`` int64 sizes and ``(ndim, dtype)`` per array argument."""
    return tuple([nbtypes.int64] * nsizes + [nbtypes.Array(numba.from_dtype(np.dtype(dt)), nd,
                                                           "C") for nd, dt in shapes_dtypes])


def compile_kernel(h, disp, sig):
    """Compile ``disp`` for ``sig`` now (loading Numba's disk cache when it has it)."""
    key = (h, sig)
    if key in _compiled:
        STATS["kernels_reused"] += 1
        return _compiled[key]
    with _lock:
        before_hits = sum(disp.stats.cache_hits.values())
        disp.compile(sig)
        hits = sum(disp.stats.cache_hits.values())
        if hits > before_hits:
            STATS["kernels_loaded"] += 1
        else:
            STATS["kernels_compiled"] += 1
        _compiled[key] = disp
    return disp
