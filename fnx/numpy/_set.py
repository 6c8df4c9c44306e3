"""Set functions: unique_all, unique_counts, unique_inverse, unique_values.

Their output shapes depend on the input's values, so they run eagerly only: under jit/vmap
(or any transform that hides the values) they raise a TraceError (ConcretizationError or
BatchingError) that says so.
NaNs are all distinct, as the array API asks.
"""

from typing import NamedTuple

import numpy as np

from ..core.array import Array
from ..core.errors import TraceError
from ..core.tracing import Tracer
from ._core import to_array
from ._creation import asarray


class UniqueAllResult(NamedTuple):
    values: Array
    indices: Array
    inverse_indices: Array
    counts: Array


class UniqueCountsResult(NamedTuple):
    values: Array
    counts: Array


class UniqueInverseResult(NamedTuple):
    values: Array
    inverse_indices: Array


def _host(op, x):
    x = to_array(x)
    if isinstance(x, Tracer):
        try:
            x = x.concrete_value()
        except TraceError as err:
            raise type(err)(
                f"{op}: the output shape depends on the values of the input "
                f"({x.aval.str_short()}), which are not known inside fnx.jit/vmap; call {op} "
                f"outside the transform, or use a fixed-size alternative (e.g. a mask with "
                f"fnp.where)") from None
    return x._host()


def _unique(op, x):
    h = _host(op, x)
    flat = h.reshape(-1)
    # equal_nan=False keeps every NaN as its own value (array API semantics)
    values, indices, inverse, counts = np.unique(flat, return_index=True, return_inverse=True,
                                                 return_counts=True, equal_nan=False)
    return values, indices, inverse.reshape(h.shape), counts


def unique_all(x):
    """Unique values with first indices, inverse indices (shaped like ``x``) and counts.

    >>> fnx.numpy.unique_all(fnx.numpy.asarray([2, 1, 2])).counts.tolist()
    [1, 2]
    """
    v, i, inv, c = _unique("unique_all", x)
    return UniqueAllResult(asarray(v), asarray(i.astype(np.int64)),
                           asarray(inv.astype(np.int64)), asarray(c.astype(np.int64)))


def unique_counts(x):
    """Unique values and how often each occurs.

    >>> fnx.numpy.unique_counts(fnx.numpy.asarray([2, 1, 2])).values.tolist()
    [1, 2]
    """
    v, _, _, c = _unique("unique_counts", x)
    return UniqueCountsResult(asarray(v), asarray(c.astype(np.int64)))


def unique_inverse(x):
    """Unique values and, for each element of ``x``, the index of its value.

    >>> fnx.numpy.unique_inverse(fnx.numpy.asarray([2, 1, 2])).inverse_indices.tolist()
    [1, 0, 1]
    """
    v, _, inv, _ = _unique("unique_inverse", x)
    return UniqueInverseResult(asarray(v), asarray(inv.astype(np.int64)))


def unique_values(x):
    """The sorted unique values of ``x`` (flattened).

    >>> fnx.numpy.unique_values(fnx.numpy.asarray([2, 1, 2])).tolist()
    [1, 2]
    """
    return asarray(_unique("unique_values", x)[0])


def unique(ar, return_index=False, return_inverse=False, return_counts=False, axis=None, *,
           equal_nan=True, sorted=True):  # noqa: A002
    """NumPy's ``unique``: the sorted unique values (of the flattened array, or the unique
    slices along ``axis``), with first indices, inverse indices and counts on request. NaNs
    are one value unless ``equal_nan=False`` (``unique_values`` keeps them distinct, as the
    array API).

    >>> fnp.unique(fnp.asarray([2, 1, 2]), return_counts=True)[1].tolist()
    [1, 2]
    """
    out = np.unique(_host("unique", ar), return_index=return_index,
                    return_inverse=return_inverse, return_counts=return_counts, axis=axis,
                    equal_nan=equal_nan, sorted=sorted)
    return tuple(asarray(o) for o in out) if isinstance(out, tuple) else asarray(out)


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
