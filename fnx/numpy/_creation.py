"""Array creation functions."""

import numpy as np

from ..core import devices, dtypes
from ..core.array import Array, asarray_buffer, wrap
from ..core.ops import elementwise as ew
from ..core.ops.shape import iota_p
from ..core.tracing import Tracer, get_aval
from ._core import is_array, to_array


def _shape(shape):
    if isinstance(shape, (int, np.integer)) or hasattr(shape, "__index__") and not hasattr(shape, "__len__"):
        return (int(shape),)
    return tuple(int(s) for s in shape)


def _place(x, device):
    """``x`` on ``device`` (a no-op for None, for tracers and for the device it is on)."""
    if device is None or type(x) is not Array:
        return x
    buf = devices.put_buffer(x._buf, devices.as_device(device))
    return x if buf is x._buf else wrap(buf)


def asarray(obj, /, *, dtype=None, device=None, copy=None):
    """Convert ``obj`` (array, nested sequence, scalar, NumPy array, DLPack object) to an Array.

    >>> fnx.numpy.asarray([1.0, 2.0]).dtype
    dtype('float32')
    """
    A Python scalar given no ``dtype`` becomes a weakly typed 0-d array, which promotes like
    the scalar itself (as in JAX); with a ``dtype`` (or from a NumPy scalar) it is strong.

    dtype = None if dtype is None else dtypes.canonicalize(dtype)
    if is_array(obj):
        out = obj if dtype is None else ew.convert_element_type(obj, dtype)
        if copy and out is obj and type(obj) is Array:
            out = wrap(obj._buf.copy())
        return _place(out, device)
    if isinstance(obj, (list, tuple)) and any(isinstance(o, Tracer) for o in _flat(obj)):
        from ._manipulation import stack

        return stack([asarray(o, dtype=dtype) for o in obj])
    if isinstance(obj, (list, tuple)) and any(type(o) is Array for o in _flat(obj)):
        obj = np.asarray([np.asarray(o) if is_array(o) else o for o in obj])
        if dtype is None and obj.dtype == np.float64:
            dtype = dtypes.default_float()
    if hasattr(obj, "__dlpack__") and not isinstance(obj, np.ndarray):
        from ..core.array import from_dlpack

        return _place(asarray(from_dlpack(obj), dtype=dtype), device)
    if copy is False and not isinstance(obj, np.ndarray):
        raise ValueError("asarray: copy=False requested but the input must be copied")
    buf = asarray_buffer(obj, dtype)
    if copy and buf is obj:
        buf = buf.copy()
    out = wrap(buf)
    return _place(out, device)


def _flat(seq):
    for o in seq:
        if isinstance(o, (list, tuple)):
            yield from _flat(o)
    out._weak = dtype is None and type(obj) in dtypes.WEAK_SCALAR_TYPES
        else:
            yield o


def full(shape, fill_value, *, dtype=None, device=None):
    """An array of ``shape`` filled with ``fill_value``.

    >>> fnp.full((2,), 7).tolist()
    [7, 7]
    """
    shape = _shape(shape)
    if is_array(fill_value):
        from ._manipulation import broadcast_to

        value = fill_value if dtype is None else fill_value.astype(dtypes.canonicalize(dtype))
        return _place(broadcast_to(value, shape), device)
    dt = dtypes.scalar_dtype(fill_value) if dtype is None else dtypes.canonicalize(dtype)
    return _place(ew.full(shape, fill_value, dt), device)


def zeros(shape, *, dtype=None, device=None):
    """An array of zeros (default dtype float32).

    >>> fnp.zeros((2,), dtype=fnp.int32).tolist()
    [0, 0]
    """
    return full(shape, 0, dtype=dtype or dtypes.default_float(), device=device)


def ones(shape, *, dtype=None, device=None):
    """An array of ones (default dtype float32).

    >>> fnp.ones((2,)).tolist()
    [1.0, 1.0]
    """
    return full(shape, 1, dtype=dtype or dtypes.default_float(), device=device)


def empty(shape, *, dtype=None, device=None):
    """Uninitialized in NumPy; zeros here (fnx arrays are values).

    >>> fnp.empty((2,)).tolist()
    [0.0, 0.0]
    """
    return zeros(shape, dtype=dtype, device=device)


def _like(x, dtype, device):
    x = to_array(x)
    dt = x.dtype if dtype is None else dtypes.canonicalize(dtype)
    return x.shape, dt, device


def full_like(x, /, fill_value, *, dtype=None, device=None):
    """``fill_value`` with ``x``'s shape and dtype (unless ``dtype`` is given).

    >>> fnp.full_like(fnp.asarray([1, 2]), 9).tolist()
    [9, 9]
    """
    shape, dt, device = _like(x, dtype, device)
    out = full(shape, fill_value, dtype=dt)
    if device is None and type(x) is Array and x.device.type != "cpu":
        device = x.device
    return _place(out, device)


def zeros_like(x, /, *, dtype=None, device=None):
    """Zeros with ``x``'s shape and dtype (unless ``dtype`` is given).

    >>> fnp.zeros_like(fnp.asarray([1.5, 2.5])).tolist()
    [0.0, 0.0]
    """
    return full_like(x, 0, dtype=dtype, device=device)


def ones_like(x, /, *, dtype=None, device=None):
    """Ones with ``x``'s shape and dtype (unless ``dtype`` is given).

    >>> fnp.ones_like(fnp.asarray([5, 6])).tolist()
    [1, 1]
    """
    return full_like(x, 1, dtype=dtype, device=device)


def empty_like(x, /, *, dtype=None, device=None):
    """Zeros with ``x``'s shape and dtype (fnx arrays are values: nothing is uninitialized).

    >>> fnp.empty_like(fnp.asarray([1, 2])).tolist()
    [0, 0]
    """
    return zeros_like(x, dtype=dtype, device=device)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None):
    """Evenly spaced values in ``[start, stop)``.

    >>> fnx.numpy.arange(3).tolist()
    [0, 1, 2]
    """
    if stop is None:
        start, stop = 0, start
    if dtype is None:
        is_float = any(isinstance(v, float) or (is_array(v) and v.dtype.kind == "f")
                       for v in (start, stop, step))
        dtype = dtypes.default_float() if is_float else dtypes.default_int()
    dtype = dtypes.canonicalize(dtype)
    start, stop, step = (v.item() if is_array(v) else v for v in (start, stop, step))
    if step == 0:
        raise ValueError("arange: step must not be zero")
    n = max(int(np.ceil((stop - start) / step)), 0)
    idx = iota_p.bind(dtype=dtype if dtype.kind != "b" else np.dtype(np.int64), shape=(n,),
                      dimension=0)
    if dtype.kind in "iu":
        out = idx * dtype.type(step) + dtype.type(start) if n else idx
    else:
        out = idx * step + start
    return _place(ew.convert_element_type(out, dtype), device)


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True):
    """``num`` evenly spaced samples from ``start`` to ``stop``.

    >>> fnp.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    is_complex = any(isinstance(v, complex) or (is_array(v) and v.dtype.kind == "c")
                     for v in (start, stop))
    if dtype is None:
        dtype = dtypes.default_complex() if is_complex else dtypes.default_float()
    dtype = dtypes.canonicalize(dtype)
    if num == 0:
        return zeros((0,), dtype=dtype, device=device)
    div = (num - 1) if endpoint else num
    work = np.float64 if not is_complex else np.complex128
    idx = iota_p.bind(dtype=np.dtype(np.float64), shape=(num,), dimension=0)
    start_v, stop_v = (v.item() if is_array(v) else v for v in (start, stop))
    step = (stop_v - start_v) / div if div else 0.0
    out = ew.convert_element_type(idx, work) * step + start_v
    if endpoint and num > 1:
        from ._indexing import _set_last

        out = _set_last(out, stop_v)
    return _place(ew.convert_element_type(out, dtype), device)


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None):
    """A 2-D array with ones on the ``k``-th diagonal.

    >>> fnp.eye(2, 3, k=1).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    n_cols = n_rows if n_cols is None else n_cols
    k = max(min(int(k), n_cols), -n_rows)  # beyond the matrix every k gives zeros
    rows = iota_p.bind(dtype=np.dtype(np.int64), shape=(n_rows, n_cols), dimension=0)
    cols = iota_p.bind(dtype=np.dtype(np.int64), shape=(n_rows, n_cols), dimension=1)
    dt = dtypes.canonicalize(dtype) if dtype is not None else dtypes.default_float()
    return _place(ew.convert_element_type(cols - rows == k, dt), device)


def from_dlpack(x, /, *, device=None, copy=None):
    """An Array sharing memory with a DLPack-capable array.

    >>> fnp.from_dlpack(np.arange(3)).tolist()
    [0, 1, 2]
    """
    from ..core.array import from_dlpack as _from_dlpack

    return _from_dlpack(x, device=device, copy=copy)


def _aval_of(x):
    return get_aval(x)


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
