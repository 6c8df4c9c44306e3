"""How compiled programs allocate host memory.

Two settings, both for speed and both skipped with ``FNX_NO_MALLOPT=1`` (or off glibc):

* ``tune_malloc``: glibc keeps large buffers on its heap instead of fresh mmaps (done once,
  when the first executable is built -- never at ``import fnx``).
* the aligned scope: while a compiled program runs, NumPy allocates its data 64-byte aligned
  (a cache line; PyTorch's CPU allocator aligns the same way). glibc's ``malloc`` aligns to
  16 bytes, and oneMKL's GEMM runs 15-25% slower on some shapes when an operand or the result
  starts mid cache line (an AVX-512 load then spans two lines): with aligned buffers the W10
  Transformer step of benchmarks/bench_layers.py takes ~3% less time. The orchestrator sets
  NumPy's memory handler (``PyDataMem_SetHandler``, NumPy >= 1.22) in the calling thread's
  context only and restores the previous one (``scope_globals``), so other threads and code
  outside fnx keep NumPy's default; a handler the program installed itself stays in force.
  The handler is built once, in C memory never freed: every array made under it frees
  through it, also while the interpreter exits.
  Unlike NumPy's own, it gives no huge-page hint to buffers of 4 MiB or more.
"""

import ctypes
import functools
import os
import sys
import threading

ALIGNMENT = 64  # bytes: one cache line, one AVX-512 vector

# positions of PyDataMem_SetHandler / PyDataMem_GetHandler in NumPy's C-API table (fixed by
# NumPy's ABI since 1.22: the table only grows)
_SET_HANDLER, _GET_HANDLER = 304, 305


@functools.cache
def _enabled():
    return sys.platform.startswith("linux") and \
        os.environ.get("FNX_NO_MALLOPT", "").strip() in ("", "0")


@functools.cache
def tune_malloc():
    """Keep large buffers on glibc's heap instead of fresh mmaps. Every run allocates its
    outputs; with the default threshold a 1.6 MB buffer is a new mapping whose page faults
    (first touch inside a kernel) cost more than the kernel (MLP Adam update: 4.5 ms ->
    0.9 ms). Process-wide, so done when the first executable is built, not at import."""
    if not _enabled():
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 28)  # M_MMAP_THRESHOLD: 256 MiB
        libc.mallopt(-1, 1 << 29)  # M_TRIM_THRESHOLD: 512 MiB
    except (OSError, AttributeError):  # not glibc
        pass


class _Allocator(ctypes.Structure):  # NumPy's PyDataMemAllocator
    _fields_ = [("ctx", ctypes.c_void_p), ("malloc", ctypes.c_void_p),
                ("calloc", ctypes.c_void_p), ("realloc", ctypes.c_void_p),
                ("free", ctypes.c_void_p)]


class _Handler(ctypes.Structure):  # NumPy's PyDataMem_Handler
    _fields_ = [("name", ctypes.c_char * 127), ("version", ctypes.c_uint8),
                ("allocator", _Allocator)]


class _NotInForce(RuntimeError):
    """NumPy's default handler is not in force now (the program installed its own): try
    again at a later build."""


class _Aligned:
    """NumPy's default handler with ``malloc`` replaced by glibc's ``aligned_alloc``: the
    handler's context pointer is the first argument NumPy passes, so a context of 64 makes
    the call ``aligned_alloc(64, size)`` with no shim; ``calloc``/``realloc``/``free`` stay
    NumPy's (glibc frees aligned blocks with ``free``; NumPy's small-block cache reuses them
    safely). ``np.zeros`` (calloc) and resized arrays keep glibc's 16-byte alignment."""

    def __init__(self):
        py = ctypes.pythonapi
        py.PyCapsule_GetPointer.restype = ctypes.c_void_p
        py.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
        py.PyCapsule_New.restype = ctypes.py_object
        py.PyCapsule_New.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        try:
            from numpy._core import _multiarray_umath as umath
            from numpy._core.multiarray import get_handler_name
        except ImportError:  # NumPy 1.x
            from numpy.core import _multiarray_umath as umath
            from numpy.core.multiarray import get_handler_name
        table = ctypes.cast(py.PyCapsule_GetPointer(umath._ARRAY_API, None),
                            ctypes.POINTER(ctypes.c_void_p))
        self.set = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.py_object)(table[_SET_HANDLER])
        self.get = ctypes.PYFUNCTYPE(ctypes.py_object)(table[_GET_HANDLER])
        self.default = self.get()
        default = _Handler.from_address(py.PyCapsule_GetPointer(self.default, b"mem_handler"))
        if default.name != b"default_allocator":
            raise _NotInForce("NumPy's default memory handler is not in force")
        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        # the struct and the capsule's name in C memory that is never freed: arrays made under
        # the handler free through it, also while the interpreter tears modules down
        name = b"mem_handler\0"
        memory = libc.malloc(ctypes.sizeof(_Handler) + len(name))
        if not memory:
            raise MemoryError("fnx: no memory for the aligned memory handler")
        handler = _Handler.from_address(memory)
        handler.name = b"fnx_aligned_64"
        handler.version = default.version
        base = default.allocator
        handler.allocator = _Allocator(ALIGNMENT, ctypes.cast(libc.aligned_alloc,
                                                              ctypes.c_void_p).value,
                                       base.calloc, base.realloc, base.free)
        ctypes.memmove(memory + ctypes.sizeof(_Handler), name, len(name))
        self.capsule = py.PyCapsule_New(memory, memory + ctypes.sizeof(_Handler), None)
        previous = self.set(self.capsule)  # check the table positions did what they should
        try:
            if get_handler_name() != "fnx_aligned_64":
                raise RuntimeError("PyDataMem_SetHandler is not at the expected position")
        finally:
            self.set(previous)


_lock = threading.Lock()
_built = []  # [the handler] once built (one: a second would replace the capsule arrays hold)
_unusable = []  # [the reason] where it cannot be built in this process


def _aligned():
    """The aligned handler, or None where it cannot be made (not glibc, an unexpected NumPy,
    ``FNX_NO_MALLOPT=1``, or for now: a handler of the program's own in force)."""
    if _built:
        return _built[0] if _enabled() else None
    if not _enabled() or _unusable:
        return None
    with _lock:  # one build: a second would replace a handler arrays may already use
        if not _built and not _unusable:
            try:
                _built.append(_Aligned())
            except _NotInForce:
                return None
            except (OSError, AttributeError, ImportError, ValueError, RuntimeError,
                    MemoryError) as err:
                _unusable.append(err)
                return None
    return _built[0] if _built else None


def aligned_available():
    """Whether compiled programs allocate 64-byte aligned buffers here.

    >>> from fnx.jit import memory
    >>> isinstance(memory.aligned_available(), bool)
    True
    """
    return _aligned() is not None


def scope_globals():
    """The names the orchestrator's aligned scope calls (``Executable._allocation_scope``), or
    None where alignment is unavailable:

    .. code-block:: python

        _token = _get_handler()
        try:
            if _token is _numpy_handler:      # not a handler of the program's own
                _set_handler(_aligned_handler)
            ...                               # the run
        finally:
            _set_handler(_token)

    The handler calls are C functions (ctypes), so no Python frame sits between entering
    ``finally`` and the restore: a KeyboardInterrupt cannot leave the handler switched. The
    token is read before the ``try``, without changing anything.
    """
    handler = _aligned()
    if handler is None:
        return None
    return {"_get_handler": handler.get, "_set_handler": handler.set,
            "_numpy_handler": handler.default, "_aligned_handler": handler.capsule}
