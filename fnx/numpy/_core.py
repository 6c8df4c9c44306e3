"""The machinery every fnx.numpy function uses: argument conversion, weak-typed promotion
and explicit broadcasting (R3). Everything here ends in primitive ``bind`` calls."""

import numpy as np

from ..core import dtypes
from ..core.array import Array, asarray_buffer, wrap
from ..core.errors import ShapeError
from ..core.ops import elementwise as ew
from ..core.ops.shape import broadcast_in_dim_p
from ..core import tracing as _tracing
from ..core.tracing import Tracer, get_aval


def is_array(x):
    return type(x) is Array or isinstance(x, Tracer)


def to_array(x, dtype=None):
    """An Array or tracer for ``x`` (Python scalars/lists take fnx's default dtypes)."""
    if type(x) is Array or isinstance(x, Tracer):
        return x if dtype is None else ew.convert_element_type(x, dtype)
    return wrap(asarray_buffer(x, dtype))


def broadcast_shapes(op, *shapes):
    """The broadcast of ``shapes`` (NumPy rules) or a ShapeError naming ``op``."""
    ndim = max(len(s) for s in shapes)
    out = []
    for dims in zip(*[(1,) * (ndim - len(s)) + tuple(s) for s in shapes]):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            shown = ", ".join(str(tuple(s)) for s in shapes)
            raise ShapeError(f"{op}: shapes {shown} cannot be broadcast together (each "
                             f"dimension must match or be 1)")
        out.append(sizes.pop() if sizes else 1)
    return tuple(out)


def broadcast_to_shape(x, shape):
    xshape = get_aval(x).shape
    if xshape == shape:
        return x
    lead = len(shape) - len(xshape)
    dims = tuple(range(lead, len(shape)))
    return broadcast_in_dim_p.bind(x, shape=shape, broadcast_dimensions=dims)


def promote_args(op, *args):
    """Convert ``args`` (arrays and Python scalars) to arrays of one dtype, with weak scalars."""
    arrays = [a for a in args if is_array(a)]
    if not arrays:
        dts = [dtypes.scalar_dtype(a) if dtypes.scalar_kind(a) else asarray_buffer(a).dtype
               for a in args]
        arrays_dt = dts[0]
        for d in dts[1:]:
            arrays_dt = dtypes.promote_types(arrays_dt, d)
        return [to_array(a, arrays_dt) for a in args]
    dt = arrays[0].dtype
    for a in arrays[1:]:
        if a.dtype != dt:
            dt = dtypes.promote_types(dt, a.dtype)
    for a in args:
        if not is_array(a):
            k = dtypes.scalar_kind(a)
            if k is None:
                buf = asarray_buffer(a)
                dt = dtypes.promote_types(dt, buf.dtype) if buf.ndim else dtypes.weak_result(
                    dt, buf.dtype.kind if buf.dtype.kind != "u" else "i")
            else:
                dt = dtypes.weak_result(dt, k)
    return [_scalar_or_convert(op, a, dt) for a in args]


def _scalar_or_convert(op, a, dt):
    if is_array(a):
        return a if a.dtype == dt else ew.convert_element_type(a, dt)
    if dt.kind in "iu" and isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        info = np.iinfo(dt)
        if not info.min <= a <= info.max:
            raise OverflowError(f"{op}: Python int {a} is out of range for dtype {dt}")
    return wrap(asarray_buffer(a, dt))


def broadcast_args(op, *args):
    shapes = [get_aval(a).shape for a in args]
    first = shapes[0]
    if all(s == first for s in shapes):
        return args
    shape = broadcast_shapes(op, *shapes)
    return [broadcast_to_shape(a, shape) for a in args]


_WEAK = (float, int)


_eager = _tracing.is_eager


def nary(op, prim, *args):
    """Promote, broadcast and bind an elementwise primitive (the path of every fnp operator)."""
    if len(args) == 2:
        x, y = args
        # fast path: two arrays of one dtype and shape (the common eager case)
        if type(x) is Array and type(y) is Array:
            bx, by = x._buf, y._buf
            if bx.dtype == by.dtype and bx.shape == by.shape:
                return prim.bind(x, y)
        elif type(x) is Array and type(y) in _WEAK and x._buf.dtype.kind in "fc" and _eager():
            # eager `array op python_scalar`: the weak scalar keeps the array's dtype and the
            # NumPy impl broadcasts a 0-d operand (only outside transforms: primitives are strict)
            return prim.bind(x, wrap(np.asarray(y, x._buf.dtype)))
        elif type(y) is Array and type(x) in _WEAK and y._buf.dtype.kind in "fc" and _eager():
            return prim.bind(wrap(np.asarray(x, y._buf.dtype)), y)
    args = promote_args(op, *args)
    args = broadcast_args(op, *args)
    return prim.bind(*args)


def unary(op, prim, x, float_only=False):
    x = to_array(x)
    if float_only and x.dtype.kind not in "fc":
        x = ew.convert_element_type(x, dtypes.default_float())
    return prim.bind(x)
