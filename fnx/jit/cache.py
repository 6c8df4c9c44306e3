"""The kernel cache: generated sources on disk, Numba's own cache beside them, and an
in-process table of dispatchers.

Layout of ``FNX_CACHE_DIR`` (default ``$XDG_CACHE_HOME/fnx`` or ``~/.cache/fnx``)::

    fnx_<sha256 of the source>.py    one kernel module, written atomically (tmp + os.replace)
    __pycache__/                     Numba's cache (index + object code per signature)

Keys are content: a kernel source is canonical (arguments ``n*/a*/o*``, temporaries ``t*``) and
starts with a header naming ``backend_key()`` -- a hash of the source text of every fnx module
whose code the generated kernels run (``RUNTIME_SOURCES``) plus the numba, llvmlite, NumPy and
Python versions. So the same group in any program or process maps to the same file, and any
edit to a helper a kernel calls (Numba's cache only sees the kernel's own file) or a new Numba
gives new files instead of stale machine code. The eager ufuncs of ``fnx.core.ops`` go through
the same path (``load_ufunc``).

Numba is imported by the first kernel load, never by ``import fnx``.
"""

import gc
import hashlib
import importlib.util
import os
import sys
import tempfile
import threading

import numpy as np

_lock = threading.Lock()
_modules = {}      # source hash -> imported kernel module
_compiled = {}     # (hash, signature) -> dispatcher
_libraries = {}    # kernel library name -> source hash
STATS = {"kernels_compiled": 0, "kernels_loaded": 0, "kernels_reused": 0, "sources_written": 0}


# The fnx modules whose code runs inside generated kernels, relative to the fnx package: what
# the kernel headers import (``codegen.cpu.header``, the ufunc header below) and what those
# modules import from fnx. tests/test_jit_cache.py checks that this list is closed under imports.
RUNTIME_SOURCES = ("jit/_rt.py", "jit/vecmath.py", "jit/codegen/cpu_math.py",
                   "core/ops/_scalar_special.py", "jit/blas.py", "core/blas.py")
_FNX_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_backend_key = None


def runtime_digest(root=None, sources=None):
    """sha256 (hex, 24 digits) of the text of ``sources`` (default ``RUNTIME_SOURCES``) under
    the fnx package directory ``root`` (default: this installation's)."""
    h = hashlib.sha256()
    for rel in sources or RUNTIME_SOURCES:
        with open(os.path.join(root or _FNX_ROOT, rel), "rb") as f:
            data = f.read()
        h.update(f"{rel}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()[:24]


def backend_key():
    """What generated code depends on besides its own text: ``runtime_digest()`` and the
    numba / llvmlite / NumPy / Python versions. Computed once per process (reading four files,
    under a millisecond), at the first kernel load; it imports Numba."""
    global _backend_key
    if _backend_key is None:
        import llvmlite
        import numba

        _backend_key = (f"runtime={runtime_digest()} numba={numba.__version__} "
                        f"llvmlite={llvmlite.__version__} numpy={np.__version__} "
                        f"python={sys.implementation.cache_tag}")
    return _backend_key


def cache_dir():
    d = os.environ.get("FNX_CACHE_DIR")
    if not d:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        d = os.path.join(base, "fnx")
    return d


def source_hash(source):
    return hashlib.sha256(source.encode()).hexdigest()[:32]


def _write_atomic(path, text):
    """Write ``text`` (str, or bytes: a binary file) to ``path`` through a temporary file and
    ``os.replace``, so a reader never sees half a file; unchanged content is not rewritten."""
    d = os.path.dirname(path)
    os.makedirs(d, exist_ok=True)
    binary = "b" if isinstance(text, bytes) else ""
    if os.path.exists(path):
        with open(path, "r" + binary) as f:
            if f.read() == text:
                return
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp_", suffix=os.path.splitext(path)[1])
    try:
        with os.fdopen(fd, "w" + binary) as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    STATS["sources_written"] += 1


def _load_module(source):
    """``(hash, module)`` of generated ``source``: written to the cache directory (once per
    content) and imported from there, so Numba's cache sits beside it."""
    h = source_hash(source)
    module = _modules.get(h)
    if module is not None:
        return h, module
    with _lock:
        module = _modules.get(h)
        if module is None:
            module = _modules[h] = import_generated(
                os.path.join(cache_dir(), f"fnx_{h}.py"), source, f"fnx_kernels.fnx_{h}")
    return h, module


def import_generated(path, source, name):
    """Write ``source`` to ``path`` (atomically) and import it as module ``name`` through
    importlib, so Numba's ``cache=True`` can key its cache on the file (never exec)."""
    _write_atomic(path, source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_kernel(body):
    """``(hash, dispatcher)`` of a kernel body (from ``cpu.render``): written, imported,
    cached."""
    from .codegen import cpu

    h, module = _load_module(cpu.header(backend_key()) + body)
    return h, module.kernel


def load_library(name):
    """The module of hand-written Numba kernels ``fnx/jit/kernels/<name>.py`` (layer kernels
    that primitive impls call: convolution, pooling, ...), loaded like generated code: its text,
    headed by ``backend_key()``, is written to the cache directory under its content hash and
    imported from there, so Numba's ``cache=True`` machine code is reused across processes
    and an edit to the file (or to a runtime source, or a new Numba) gives fresh code. A
    library may import only numba, NumPy, math and the ``RUNTIME_SOURCES`` modules.

    >>> from fnx.jit import cache
    >>> lib = cache.load_library("embedding")
    >>> lib.__name__.startswith("fnx_kernels."), callable(lib.scatter_rows)
    (True, True)
    """
    h = _libraries.get(name)
    if h is not None:
        return _modules[h]
    with open(os.path.join(_FNX_ROOT, "jit", "kernels", f"{name}.py")) as f:
        text = f.read()
    h, module = _load_module(f"# fnx kernel library {name}; backend {backend_key()}\n" + text)
    _libraries[name] = h
    return module


def load_ufunc(expr, signatures, imports=()):
    """A ``numba.vectorize`` ufunc computing ``expr`` (Python source in the scalar ``x``) for
    ``signatures`` (e.g. ``["float32(float32)"]``), loaded from Numba's cache when it has it;
    ``imports``: modules named in ``expr`` (``"from fnx.core.ops import _scalar_special"``)."""
    source = (f"# fnx eager ufunc; backend {backend_key()}\n"
              "import math  # noqa: F401\n"
              "import numba\n"
              + "".join(f"{line}  # noqa: F401\n" for line in imports) + "\n\n"
              f"@numba.vectorize({list(signatures)!r}, cache=True)\n"
              f"def kernel(x):\n"
              f"    return {expr}\n")
    return _load_module(source)[1].kernel


def signature_of(shapes_dtypes, nsizes):
    """Signature from ``nsizes`` int64 sizes and ``(ndim, dtype)`` per argument (ndim 0: a
    scalar of that dtype, else a C-contiguous array)."""
    import numba
    from numba.core import types as nbtypes

    def arg(nd, dt):
        t = numba.from_dtype(np.dtype(dt))
        return t if nd == 0 else nbtypes.Array(t, nd, "C")

    return tuple([nbtypes.int64] * nsizes + [arg(nd, dt) for nd, dt in shapes_dtypes])


_gc_lock = threading.RLock()  # reentrant: __del__ may run inside a block's bookkeeping
_gc_paused = [0, None]  # nesting depth, the collector's thresholds at the outermost block


class paused_gc:
    """Run the block with Python's automatic cyclic garbage collection off: the outermost
    block sets the first-generation threshold to 0 and restores the thresholds on exit.
    Tracing, planning and Numba's compiler allocate millions of objects over a heap that
    Numba's typing tables make large: a cold compile of a Transformer training step ran five
    full collections of ~95 ms each (0.58 s of ~5.5 s); its garbage is collected once
    afterwards instead. Reentrant and thread-safe.

    The threshold, not ``gc.disable()``: the user's own ``gc.disable()``/``gc.enable()``
    while a block runs (inside a traced function, or in another thread while one compiles)
    stays in force after it, where restoring the enabled flag would undo it; a threshold the
    user sets meanwhile is kept too.

    Safe against KeyboardInterrupt, which Python raises at a Python frame's first
    instruction and after any C call: the block counts itself in before it touches the
    collector, a block whose ``__exit__`` the interrupt skipped is closed by ``__del__`` when
    the unwinding drops it, and an outermost block that finds the threshold already 0 (one
    interrupted before it restored) keeps the thresholds saved before: an interrupt leaves
    the collector off at most until the next block ends.

    >>> import gc
    >>> from fnx.jit import cache
    >>> with cache.paused_gc():
    ...     gc.get_threshold()[0]
    0
    """

    _open = False

    def __enter__(self):
        with _gc_lock:
            self._open = True
            _gc_paused[0] += 1
            if _gc_paused[0] == 1:
                current = gc.get_threshold()
                if current[0]:
                    _gc_paused[1] = current
                gc.set_threshold(0, *current[1:])

    def __exit__(self, *exc):
        self._close()

    def __del__(self):
        self._close()

    def _close(self):
        with _gc_lock:
            if self._open:
                self._open = False
                _gc_paused[0] -= 1
                if _gc_paused[0] == 0 and _gc_paused[1] is not None \
                        and gc.get_threshold()[0] == 0:
                    gc.set_threshold(*_gc_paused[1])


def compile_kernel(h, disp, sig):
    """Compile ``disp`` for ``sig`` now (loading Numba's disk cache when it has it)."""
    key = (h, sig)
    if key in _compiled:
        STATS["kernels_reused"] += 1
        return _compiled[key]
    with _lock, paused_gc():
        if _load_cached(disp, sig):
            STATS["kernels_loaded"] += 1
        else:
            before_hits = sum(disp.stats.cache_hits.values())
            disp.compile(sig)
            hits = sum(disp.stats.cache_hits.values())
            STATS["kernels_loaded" if hits > before_hits else "kernels_compiled"] += 1
        _compiled[key] = disp
    return disp


def _load_cached(disp, sig):
    """Add ``sig``'s machine code from Numba's disk cache to ``disp``; False on a miss.

    ``disp.compile`` does the same, but first runs Numba's whole first-compile setup (its
    typing and lowering registries for all of NumPy, which also imports scipy.linalg): about
    0.3 s of a new process's start that loading finished machine code does not need. The
    code only needs the runtime (NRT) and the helper symbols the target context installs
    when it is created, so this goes one level down in Numba's dispatcher (the steps of
    ``Dispatcher.compile`` after its cache lookup). Those are internals: the kernel key pins
    the Numba version, and any error here falls back to ``disp.compile``."""
    try:
        from numba.core.compiler_lock import global_compiler_lock
        from numba.core.runtime import rtsys

        with global_compiler_lock:
            if disp.overloads.get(tuple(sig)) is not None:
                return False
            ctx = disp.targetctx
            rtsys.initialize(ctx)
            cres = disp._cache._load_overload(sig, ctx)
            if cres is None or cres.objectmode:
                return False
            ctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
            disp.add_overload(cres)
            disp._cache_hits[sig] += 1
            return True
    except Exception:  # noqa: BLE001 - Numba internals moved: take the public path
        return False
