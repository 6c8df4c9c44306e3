"""The machinery every fnx.numpy function uses: argument conversion, weak-typed promotion
and explicit broadcasting (R3). Everything here ends in primitive ``bind`` calls."""

import numpy as np

from ..core import dtypes
from ..core.array import Array, asarray_buffer, wrap, wrap_weak
from ..core.errors import ShapeError
from ..core.ops import elementwise as ew
from ..core.ops.shape import broadcast_in_dim_p
from ..core import tracing as _tracing
from ..core.tracing import Tracer, get_aval


def is_array(x):
    return type(x) is Array or isinstance(x, Tracer)


def to_array(x, dtype=None):
    """An Array or tracer for ``x`` (Python scalars/lists take fnx's default dtypes; a Python
    scalar given no dtype is weakly typed, as in JAX)."""
    if type(x) is Array or isinstance(x, Tracer):
        return x if dtype is None else ew.convert_element_type(x, dtype)
    if dtype is None and type(x) in dtypes.WEAK_SCALAR_TYPES:
        return wrap_weak(asarray_buffer(x))
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
    """Convert ``args`` to arrays of one dtype: THE promotion routine of fnx.numpy.

    Arrays and tracers promote by their dtypes, NumPy scalars and arrays by theirs; weak
    operands (Python scalars, weakly typed arrays and tracers) only lift the kind
    (``dtypes.result_dtype``), and when every operand is weak the results stay weak.
    """
    strong, weak = [], []
    for a in args:
        if type(a) is Array:
            (weak if a._weak else strong).append(a._buf.dtype)
        elif isinstance(a, Tracer):
            aval = a.aval
            (weak if aval.weak_type else strong).append(aval.dtype)
        elif type(a) in dtypes.WEAK_SCALAR_TYPES:
            weak.append(dtypes.scalar_dtype(a))
        else:
            strong.append(asarray_buffer(a).dtype)
    dt, all_weak = dtypes.result_dtype(strong, weak)
    return [_as_dtype(op, a, dt, all_weak) for a in args]


def _as_dtype(op, a, dt, all_weak):
    if is_array(a):
        if a.dtype == dt:
            return a
        if all_weak:  # weak operands promoting among themselves stay weak
            return ew.convert_element_type_p.bind(a, new_dtype=dt, weak_type=True)
        return ew.convert_element_type(a, dt)
    if type(a) in dtypes.WEAK_SCALAR_TYPES:
        if dt.kind in "iu" and type(a) is int:
            info = np.iinfo(dt)
            if not info.min <= a <= info.max:
                raise OverflowError(f"{op}: Python int {a} is out of range for dtype {dt}")
        return wrap_weak(asarray_buffer(a, dt))
    return wrap(asarray_buffer(a, dt))


def convert_keep_weak(x, dt):
    """``x`` converted to ``dt`` by an op's own promotion (ints to float for ``sqrt``, bool to
    int8 for shifts): a weak ``x`` stays weak, as in JAX, so ``lr / sqrt(step)`` with Python
    scalars does not upcast float16 data. Explicit casts (``astype``) make values strong."""
    if get_aval(x).weak_type:
        return ew.convert_element_type_p.bind(x, new_dtype=dt, weak_type=True)
    return ew.convert_element_type(x, dt)


def broadcast_args(op, *args):
    shapes = [get_aval(a).shape for a in args]
    first = shapes[0]
    if all(s == first for s in shapes):
        return args
    shape = broadcast_shapes(op, *shapes)
    return [broadcast_to_shape(a, shape) for a in args]


_WEAK = (float, int)


# NumPy's bool arithmetic: ``+`` is logical or and ``*`` logical and. The numeric primitives
# reject bool (eagerly under check_rules, and under every transform), so route here.
_BOOL_OPS = {ew.add_p: ew.or_p, ew.mul_p: ew.and_p}
_BOOL = np.dtype(bool)


def nary(op, prim, *args):
    """Promote, broadcast and bind an elementwise primitive (the path of every fnp operator)."""
    if len(args) == 2:
        x, y = args
        # fast path: two arrays of one dtype and shape (the common eager case)
        if type(x) is Array and type(y) is Array:
            bx, by = x._buf, y._buf
            if bx.dtype == by.dtype and bx.shape == by.shape and bx.dtype is not _BOOL:
                return prim.bind(x, y)
        elif type(x) is Array and type(y) in _WEAK and x._buf.dtype.kind in "fc" and \
                x._autograd is None and _tracing.is_eager() and not _tracing.check_rules:
            # eager `array op python_scalar`: the weak scalar keeps the array's dtype and the
            # NumPy impl broadcasts a 0-d operand (so only outside transforms, where primitives
            # are strict, not while check_rules holds every call to its rule, and not for an
            # array the autograd tape records: its program must be strict too)
            return prim.bind(x, wrap_weak(np.asarray(y, x._buf.dtype)))
        elif type(y) is Array and type(x) in _WEAK and y._buf.dtype.kind in "fc" and \
                y._autograd is None and _tracing.is_eager() and not _tracing.check_rules:
            return prim.bind(wrap_weak(np.asarray(x, y._buf.dtype)), y)
    args = promote_args(op, *args)
    if prim in _BOOL_OPS and args[0].dtype == _BOOL:
        prim = _BOOL_OPS[prim]
    args = broadcast_args(op, *args)
    return prim.bind(*args)


def unary(op, prim, x, float_only=False):
    x = to_array(x)
    if float_only and x.dtype.kind not in "fc":
        x = convert_keep_weak(x, dtypes.default_float())
    return prim.bind(x)
