"""Indexing: ``x[idx]`` and ``x.at[idx].set/add/...`` for basic indices (ints, slices, None,
Ellipsis). Advanced (integer-array and boolean) indexing lowers to gather/scatter."""

import numpy as np

from ..core.array import Array
from ..core.errors import FnxIndexError
from ..core.ops import shape as sh
from ..core.tracing import Tracer, current_dynamic
from ._core import to_array


def _normalize_basic(idx, shape):
    """Expand ``idx`` to one entry per dim plus None insertions; returns a list."""
    if not isinstance(idx, tuple):
        idx = (idx,)
    n_ell = sum(1 for i in idx if i is Ellipsis)
    if n_ell > 1:
        raise FnxIndexError("an index can only have a single ellipsis ('...')")
    n_real = sum(1 for i in idx if i is not None and i is not Ellipsis)
    if n_real > len(shape):
        raise FnxIndexError(f"too many indices for an array of shape {shape}: {idx}")
    out = []
    for i in idx:
        if i is Ellipsis:
            out.extend([slice(None)] * (len(shape) - n_real))
        else:
            out.append(i)
    if n_ell == 0:
        out.extend([slice(None)] * (len(shape) - n_real))
    return out


def _is_basic(e):
    """True for the entries the static-slice path handles: None, ..., slices and concrete
    integers; arrays, masks, booleans and traced integers (``_is_dynamic``) go to
    ``_advanced``."""
    if e is None or e is Ellipsis or isinstance(e, slice):
        return True
    if isinstance(e, (bool, np.bool_)):
        return False
    if hasattr(e, "shape") and hasattr(e, "dtype"):
        return e.shape == () and e.dtype.kind in "iu" and not _is_dynamic(e)
    return hasattr(e, "__index__")


def _getitem(x, idx):
    """``x[idx]`` with NumPy semantics (see ``fnx.numpy._advanced`` for array indices).

    >>> fnx.numpy.arange(6).reshape(2, 3)[:, [0, 2]].tolist()
    [[0, 2], [3, 5]]
    """
    x = to_array(x)
    if type(idx) is int:
        return _index_int(x, idx)
    if not all(_is_basic(e) for e in (idx if isinstance(idx, tuple) else (idx,))):
        from ._advanced import advanced_getitem

        return advanced_getitem(x, idx)
    entries = _normalize_basic(idx, x.shape)
    starts, limits, strides, squeeze_dims, new_shape_marks = [], [], [], [], []
    dim = 0
    flips = []
    for e in entries:
        if e is None:
            new_shape_marks.append(("new", None))
            continue
        n = x.shape[dim]
        if isinstance(e, slice):
            start, stop, step = e.indices(n)
            if step < 0:
                flips.append(dim)
                # iterate reversed: indices start, start+step, ... > stop
                count = max(0, (start - stop + (-step) - 1) // (-step))
                lo = start - (count - 1) * (-step) if count else 0
                starts.append(lo)
                limits.append(lo + (count - 1) * (-step) + 1 if count else 0)
                strides.append(-step)
            else:
                count = max(0, (stop - start + step - 1) // step)
                starts.append(start)
                limits.append(start + (count - 1) * step + 1 if count else start)
                strides.append(step)
            new_shape_marks.append(("keep", dim))
        elif hasattr(e, "__index__") and not hasattr(e, "shape") or (
            hasattr(e, "shape") and e.shape == () and e.dtype.kind in "iu"
            and not _is_dynamic(e)
        ):
            i = int(e)
            if not -n <= i < n:
                raise FnxIndexError(f"index {i} is out of bounds for axis {dim} with size {n}")
            i %= n
            starts.append(i)
            limits.append(i + 1)
            strides.append(1)
            squeeze_dims.append(dim)
            new_shape_marks.append(("drop", dim))
        else:
            from ._advanced import advanced_getitem

            return advanced_getitem(x, idx)
        dim += 1
    out = x
    if any(s != 0 for s in starts) or any(lim != n for lim, n in zip(limits, x.shape)) or any(
        s != 1 for s in strides
    ):
        out = sh.slice_p.bind(out, start_indices=tuple(starts), limit_indices=tuple(limits),
                              strides=None if all(s == 1 for s in strides) else tuple(strides))
    if flips:
        out = sh.rev_p.bind(out, dimensions=tuple(flips))
    final = []
    for kind, d in new_shape_marks:
        if kind == "new":
            final.append(1)
        elif kind == "keep":
            final.append(out.shape[d])
    return sh.reshape(out, tuple(final))


def _index_int(x, i):
    """``x[i]`` for a Python int ``i``, the commonest index: what ``_getitem``'s general loop
    makes of it (one slice, one reshape) without the loop."""
    shape = x.shape
    if not shape:
        raise FnxIndexError(f"too many indices for an array of shape {shape}: {(i,)}")
    n, rest = shape[0], shape[1:]
    if not -n <= i < n:
        raise FnxIndexError(f"index {i} is out of bounds for axis 0 with size {n}")
    i %= n
    if n != 1:
        x = sh.slice_p.bind(x, start_indices=(i,) + (0,) * len(rest),
                            limit_indices=(i + 1,) + rest, strides=None)
    return sh.reshape_p.bind(x, new_sizes=rest)


def _is_dynamic(e):
    """Whether the index ``e`` is a value of the program being traced, indexed with dynamic
    slices: a tracer, or under jit a concrete Array. A compiled step's 0-d buffer (a queue
    pointer) is an input whose value changes between calls, or earlier in the step by an
    in-place update: reading it as a Python int would bake one value into the program."""
    return isinstance(e, Tracer) or (type(e) is Array and current_dynamic() is not None)


def _set_last(x, value):
    """``x`` with its last element replaced by the Python scalar ``value``."""
    from ._manipulation import concat

    return concat([x[:-1], to_array(value, x.dtype).reshape((1,))])


class _IndexUpdateHelper:
    """``x.at[idx]``: functional updates (JAX's ``.at`` API)."""

    __slots__ = ("array",)

    def __init__(self, array):
        self.array = array

    def __getitem__(self, idx):
        return _IndexUpdateRef(self.array, idx)


class _IndexUpdateRef:
    __slots__ = ("array", "index")

    def __init__(self, array, index):
        self.array, self.index = array, index

    def get(self):
        return _getitem(self.array, self.index)

    def set(self, values):
        """``x`` with ``x[idx] = values``."""
        from ._advanced import scatter_update

        return scatter_update(self.array, self.index, values, "set")

    def add(self, values):
        from ._advanced import scatter_update

        return scatter_update(self.array, self.index, values, "add")

    def mul(self, values):
        from ._advanced import scatter_update

        return scatter_update(self.array, self.index, values, "mul")

    def min(self, values):
        from ._advanced import scatter_update

        return scatter_update(self.array, self.index, values, "min")

    def max(self, values):
        from ._advanced import scatter_update

        return scatter_update(self.array, self.index, values, "max")
