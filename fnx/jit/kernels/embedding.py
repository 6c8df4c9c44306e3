"""Embedding kernel (fnx/core/ops/embedding.py's impl): the backward of a row lookup, the rows
of ``ct (n, D)`` added into ``out (V, D)`` at ``idx (n,)`` (row numbers already in range: the
impl wraps and clamps them as the lookup reads them). One pass in index order: NumPy's
``ufunc.at`` takes ~10x longer for the same sums."""

import numba
import numpy as np

# no_cfunc_wrapper: called only through the dispatcher (the C wrapper: ~10% of cold compile)
_OPTS = dict(cache=True, error_model="numpy", boundscheck=False, nogil=True,
             no_cfunc_wrapper=True, fastmath={"contract"})


@numba.njit(**_OPTS)
def scatter_rows(ct, idx, out):
    n, d = ct.shape
    for i in range(n):
        orow = out[idx[i]]
        crow = ct[i]
        for j in range(d):
            orow[j] += crow[j]


def signature(name, dtype):
    """The one Numba signature of kernel ``name`` for float ``dtype`` (C-contiguous arrays)."""
    del name  # one kernel
    a2 = numba.types.Array(numba.from_dtype(np.dtype(dtype)), 2, "C")
    return (a2, numba.types.Array(numba.types.int64, 1, "C"), a2)
