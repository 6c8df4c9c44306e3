"""Array creation functions."""

import operator

import numpy as np

from ..core import devices, dtypes
from ..core.array import Array, asarray_buffer, wrap
from ..core.ops import elementwise as ew
from ..core.ops.shape import iota_p
from ..core.tracing import Tracer, current_dynamic, get_aval
from ._core import is_array, to_array
from ._ufunc import check_order


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


def _recorded_copy(x):
    """A new value equal to ``x`` that differentiation follows (an identity primitive): a
    traced value's copy, or a tape-tracked array's clone. A new object, so that an in-place
    update of the copy leaves ``x`` alone."""
    weak = x._weak if type(x) is Array else x.aval.weak_type
    return ew.convert_element_type_p.bind(x, new_dtype=x.dtype, weak_type=weak)


def _copy_array(x, detach=False):
    """A copy of the concrete Array ``x`` (``detach``: sharing its buffer, as torch's
    ``detach``), never tracked by autograd. Eagerly its buffer; under jit the value standing
    for ``x`` in the trace, staged: a compiled step's parameter or buffer is an input whose value
    changes between calls (and perhaps earlier in the same step, by an in-place update), so its
    buffer at trace time is not the value to copy."""
    if current_dynamic() is None:
        return wrap(x._buf if detach else x._buf.copy(), x._weak)
    from ..transforms.custom import stop_gradient

    return stop_gradient(x)


def asarray(a, dtype=None, order=None, *, device=None, copy=None):
    """Convert ``obj`` (array, nested sequence, scalar, NumPy array, DLPack object) to an Array.

    A Python scalar given no ``dtype`` becomes a weakly typed 0-d array, which promotes like
    the scalar itself (as in JAX); with a ``dtype`` (or from a NumPy scalar) it is strong.

    >>> fnx.numpy.asarray([1.0, 2.0]).dtype
    dtype('float32')
    >>> (fnx.numpy.ones(2, dtype=fnx.numpy.float16) * fnx.numpy.asarray(2.0)).dtype
    dtype('float16')
    """
    check_order("asarray", order)
    obj = a
    dtype = None if dtype is None else dtypes.canonicalize(dtype)
    if is_array(obj):
        out = obj if dtype is None else ew.convert_element_type(obj, dtype)
        if copy and out is obj:
            out = _copy_array(obj) if type(obj) is Array else _recorded_copy(obj)
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
    out._weak = dtype is None and type(obj) in dtypes.WEAK_SCALAR_TYPES
    return _place(out, device)


def _flat(seq):
    for o in seq:
        if isinstance(o, (list, tuple)):
            yield from _flat(o)
        else:
            yield o


def full(shape, fill_value, dtype=None, order="C", *, device=None):
    """An array of ``shape`` filled with ``fill_value``. ``order`` (memory layout) is
    accepted for NumPy compatibility and changes nothing: fnx arrays are values.

    >>> fnp.full((2,), 7).tolist()
    [7, 7]
    """
    check_order("full", order)
    shape = _shape(shape)
    if is_array(fill_value):
        from ._manipulation import broadcast_to

        value = fill_value if dtype is None else fill_value.astype(dtypes.canonicalize(dtype))
        return _place(broadcast_to(value, shape), device)
    dt = dtypes.scalar_dtype(fill_value) if dtype is None else dtypes.canonicalize(dtype)
    return _place(ew.full(shape, fill_value, dt), device)


def zeros(shape, dtype=None, order="C", *, device=None):
    """An array of zeros (default dtype float32).

    >>> fnp.zeros((2,), dtype=fnp.int32).tolist()
    [0, 0]
    >>> fnp.zeros(2, "int8").dtype
    dtype('int8')
    """
    return full(shape, 0, dtype or dtypes.default_float(), order, device=device)


def ones(shape, dtype=None, order="C", *, device=None):
    """An array of ones (default dtype float32).

    >>> fnp.ones((2,)).tolist()
    [1.0, 1.0]
    """
    return full(shape, 1, dtype or dtypes.default_float(), order, device=device)


def empty(shape, dtype=None, order="C", *, device=None):
    """Uninitialized in NumPy; zeros here (fnx arrays are values).

    >>> fnp.empty((2,)).tolist()
    [0.0, 0.0]
    """
    return zeros(shape, dtype, order, device=device)


def full_like(a, fill_value, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """``fill_value`` with ``a``'s shape and dtype (unless ``shape``/``dtype`` are given).
    ``order`` and ``subok`` are accepted for NumPy compatibility and change nothing.

    >>> fnp.full_like(fnp.asarray([1, 2]), 9).tolist()
    [9, 9]
    """
    del subok  # unused: fnx has one array type
    check_order("full_like", order)
    x = to_array(a)
    dt = x.dtype if dtype is None else dtypes.canonicalize(dtype)
    out = full(x.shape if shape is None else shape, fill_value, dtype=dt)
    if device is None and type(x) is Array and x.device.type != "cpu":
        device = x.device
    return _place(out, device)


def zeros_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """Zeros with ``a``'s shape and dtype (unless ``shape``/``dtype`` are given).

    >>> fnp.zeros_like(fnp.asarray([1.5, 2.5])).tolist()
    [0.0, 0.0]
    """
    return full_like(a, 0, dtype, order, subok, shape, device=device)


def ones_like(a, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """Ones with ``a``'s shape and dtype (unless ``shape``/``dtype`` are given).

    >>> fnp.ones_like(fnp.asarray([5, 6])).tolist()
    [1, 1]
    """
    return full_like(a, 1, dtype, order, subok, shape, device=device)


def empty_like(prototype, /, dtype=None, order="K", subok=True, shape=None, *, device=None):
    """Zeros with ``prototype``'s shape and dtype (fnx arrays are values: nothing is
    uninitialized).

    >>> fnp.empty_like(fnp.asarray([1, 2])).tolist()
    [0, 0]
    """
    return full_like(prototype, 0, dtype, order, subok, shape, device=device)


def arange(start_or_stop, /, stop=None, step=1, *, dtype=None, device=None):
    """Evenly spaced values in ``[start, stop)``.

    >>> fnx.numpy.arange(3).tolist()
    [0, 1, 2]
    """
    start = start_or_stop
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


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0, *,
             device=None):
    """``num`` evenly spaced samples from ``start`` to ``stop``. Array endpoints give one
    sequence per element, laid along ``axis`` (and are differentiable); ``retstep=True`` also
    returns the spacing.

    >>> fnp.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> fnp.linspace(fnp.asarray([0.0, 10.0]), 1.0, 3, axis=1).tolist()
    [[0.0, 0.5, 1.0], [10.0, 5.5, 1.0]]
    """
    from ._manipulation import broadcast_arrays, concat, moveaxis, reshape

    num = operator.index(num)
    if num < 0:
        raise ValueError(f"linspace: num must be non-negative, got {num}")
    is_complex = any(isinstance(v, complex) or (is_array(v) and v.dtype.kind == "c")
                     for v in (start, stop))
    if dtype is None:
        inexact = [v.dtype for v in (start, stop) if is_array(v) and v.dtype.kind in "fc"]
        dtype = dtypes.default_complex() if is_complex else dtypes.default_float()
        for dt in inexact:
            dtype = dtypes.promote_types(dtype, dt)
    dtype = dtypes.canonicalize(dtype)
    # computed in double precision, as NumPy, then converted once
    work = np.dtype(np.complex128 if is_complex else np.float64)
    lo, hi = broadcast_arrays(to_array(start, work), to_array(stop, work))
    div = num - 1 if endpoint else num
    idx = ew.convert_element_type(iota_p.bind(dtype=np.dtype(np.float64), shape=(num,),
                                              dimension=0), work)
    idx = reshape(idx, (num,) + (1,) * lo.ndim)
    step = (hi - lo) / div if div > 0 else (hi - lo) * np.nan
    out = idx * step + lo if div > 0 else idx * (hi - lo) + lo
    if endpoint and num > 1:
        out = concat([out[:num - 1], reshape(hi, (1,) + hi.shape)], axis=0)
    if dtype.kind in "iu":
        from ._elementwise import floor

        out = floor(out)  # NumPy floors toward -inf for integer dtypes
    out = _place(ew.convert_element_type(moveaxis(out, 0, axis) if axis else out, dtype), device)
    if retstep:
        return out, ew.convert_element_type(step, dtype if dtype.kind in "fc" else work)
    return out


def eye(N, M=None, k=0, dtype=None, order="C", *, device=None):
    """A 2-D array with ones on the ``k``-th diagonal (default dtype float32).

    >>> fnp.eye(2, 3, k=1).tolist()
    [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    check_order("eye", order)
    n_rows, n_cols = N, N if M is None else M
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
