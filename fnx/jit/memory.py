"""How compiled programs allocate host memory.

Two settings, both for speed and both skipped with ``FNX_NO_MALLOPT=1`` (or off glibc):

* ``tune_malloc``: glibc keeps large buffers on its heap instead of fresh mmaps (done once,
  when the first executable is built -- never at ``import fnx``).
* ``aligned_scope``: while a compiled program runs, NumPy allocates its data 64-byte aligned
  (a cache line; PyTorch's CPU allocator aligns the same way). glibc's ``malloc`` aligns to
  16 bytes, and oneMKL's GEMM runs 15-25% slower on some shapes when an operand or the result
  starts mid cache line (an AVX-512 load then spans two lines): with aligned buffers the W10
  Transformer step of benchmarks/bench_layers.py takes ~7% less time. The scope sets NumPy's
  memory handler (``PyDataMem_SetHandler``, NumPy >= 1.22) in the calling thread's context
  only and restores the previous one, so other threads and code outside fnx keep NumPy's
  default; arrays made inside keep the handler that frees them. A handler the program
  installed itself is left in force.
"""

import ctypes
import functools
import os
import sys

ALIGNMENT = 64  # bytes: one cache line, one AVX-512 vector

# positions of PyDataMem_SetHandler / PyDataMem_GetHandler in NumPy's C-API table (fixed by
# NumPy's ABI since 1.22: the table only grows)
_SET_HANDLER, _GET_HANDLER = 304, 305


def _enabled():
    return sys.platform.startswith("linux") and not os.environ.get("FNX_NO_MALLOPT")


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
        get = ctypes.PYFUNCTYPE(ctypes.py_object)(table[_GET_HANDLER])
        self.default = get()
        default = _Handler.from_address(py.PyCapsule_GetPointer(self.default, b"mem_handler"))
        if default.name != b"default_allocator":
            raise RuntimeError("NumPy's default memory handler is not in force")
        aligned_alloc = ctypes.cast(ctypes.CDLL("libc.so.6").aligned_alloc, ctypes.c_void_p)
        base = default.allocator
        self._name = ctypes.create_string_buffer(b"mem_handler")  # the capsule keeps a pointer
        self._handler = _Handler(b"fnx_aligned_64", default.version, _Allocator(
            ALIGNMENT, aligned_alloc.value, base.calloc, base.realloc, base.free))
        self.capsule = py.PyCapsule_New(ctypes.addressof(self._handler),
                                        ctypes.addressof(self._name), None)
        previous = self.set(self.capsule)  # check the table positions did what they should
        try:
            if get_handler_name() != "fnx_aligned_64":
                raise RuntimeError("PyDataMem_SetHandler is not at the expected position")
        finally:
            self.set(previous)


@functools.cache
def _aligned():
    """The aligned handler, or None where it cannot be made (not glibc, an unexpected NumPy,
    ``FNX_NO_MALLOPT=1``)."""
    if not _enabled():
        return None
    try:
        return _Aligned()
    except (OSError, AttributeError, ImportError, ValueError, RuntimeError):
        return None


def aligned_available():
    """Whether ``enter_aligned`` makes NumPy allocate 64-byte aligned buffers here."""
    return _aligned() is not None


def enter_aligned():
    """Make NumPy allocate 64-byte aligned data in this thread's context until
    ``leave_aligned(token)``; returns the token (the handler to restore, or None).

    >>> from fnx.jit import memory
    >>> import numpy as np
    >>> token = memory.enter_aligned()
    >>> x = np.empty(1000)
    >>> memory.leave_aligned(token)
    >>> x.ctypes.data % 64 == 0 or not memory.aligned_available()
    True
    """
    handler = _aligned()
    if handler is None:
        return None
    previous = handler.set(handler.capsule)
    if previous is not handler.default and previous is not handler.capsule:
        handler.set(previous)  # the program's own handler stays in force
        return None
    return previous


def leave_aligned(token):
    """Restore the handler ``enter_aligned`` replaced (``token``; None: nothing to do)."""
    if token is not None:
        _aligned().set(token)
