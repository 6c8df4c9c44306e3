"""The machinery every fnx.numpy function uses: argument conversion, weak-typed promotion
and explicit broadcasting (R3). Everything here ends in primitive ``bind`` calls."""

import numpy as np

from ..core import dtypes
from ..core.array import Array, asarray_buffer, wrap, wrap_weak
from ..core.errors import ShapeError
from ..core.ops import elementwise as ew
from ..core.ops.shape import broadcast_in_dim_p
from ..core import tracing as _tracing
from ..core.tracing import Tracer, _state, eval_impl, get_aval
from ._ufunc import call_ufunc


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
_NUMERIC = "iufc"  # every dtype kind but bool


def binary(op, prim, kinds=_NUMERIC, convert=None):
    """The fnx.numpy function of a binary elementwise primitive, ``fn(x1, x2, /, out=None, *,
    dtype=None)``: it promotes (Python scalars are weak), broadcasts and binds ``prim``.

    Promoted operands of a dtype kind not in ``kinds`` go through ``convert(x1, x2)``
    (divide's ints to float); without ``convert``, bool ``+``/``*`` are logical or/and. These
    functions are also the Array operators (``x + y`` calls ``fnp.add`` with no frame between).

    >>> from fnx.numpy._core import binary
    >>> binary("add", fnx.core.ops.elementwise.add_p)(fnp.ones(2), 1).tolist()
    [2.0, 2.0]
    """

    def fn(x1, x2, /, out=None, *, dtype=None):
        if out is not None or dtype is not None:
            return call_ufunc(op, fn, out, dtype, x1, x2)
        # Eager fast paths first: they give what the general path below gives, minus its work.
        if type(x1) is Array:
            if type(x2) is Array:
                # two arrays of one dtype and shape: nothing to promote or broadcast
                b1, b2 = x1._buf, x2._buf
                dt = b1.dtype
                if (dt is b2.dtype or dt == b2.dtype) and dt.kind in kinds and \
                        b1.shape == b2.shape:
                    if _state.eager:
                        return eval_impl(prim, (x1, x2), {})  # what bind would do
                    return prim.bind(x1, x2)
            elif type(x2) in _WEAK and _scalar_fast(x1, kinds):
                return eval_impl(prim, (x1, wrap_weak(np.asarray(x2, x1._buf.dtype))), {})
        elif type(x2) is Array and type(x1) in _WEAK and _scalar_fast(x2, kinds):
            return eval_impl(prim, (wrap_weak(np.asarray(x1, x2._buf.dtype)), x2), {})
        x1, x2 = promote_args(op, x1, x2)
        if x1.dtype.kind in kinds:
            return prim.bind(*broadcast_args(op, x1, x2))
        if convert is not None:
            x1, x2 = convert(x1, x2)
            return prim.bind(*broadcast_args(op, x1, x2))
        return _BOOL_OPS.get(prim, prim).bind(*broadcast_args(op, x1, x2))

    fn.__name__ = fn.__qualname__ = op
    return fn


def _scalar_fast(x, kinds):
    """Whether ``x op python_scalar`` may bind the scalar as a weak 0-d array of x's dtype,
    which the NumPy impl broadcasts: only eagerly (primitives are strict under transforms),
    for a float ``x`` the tape does not record (its program must be strict too), and not while
    check_rules holds every call to its rule."""
    kind = x._buf.dtype.kind
    return kind in "fc" and kind in kinds and x._autograd is None and _state.eager and \
        not _tracing.check_rules


def unary(op, prim, x, float_only=False):
    if type(x) is Array and _state.eager and (not float_only or x._buf.dtype.kind in "fc"):
        return eval_impl(prim, (x,), {})  # eager, nothing to convert: bind's first step
    x = to_array(x)
    if float_only and x.dtype.kind not in "fc":
        x = convert_keep_weak(x, dtypes.default_float())
    return prim.bind(x)
