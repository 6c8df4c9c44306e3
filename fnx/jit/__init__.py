"""fnx.jit: the compiler (IR passes, fusion, Numba code generation, kernel cache)."""

from .api import CacheInfo, JitFunction, Lowered, jit, jit_call_p  # noqa: F401
