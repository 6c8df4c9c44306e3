"""The dtype set, defaults and the one type-promotion table.

fnx dtypes are NumPy dtype objects, so ``fnx.float32 == np.float32`` and arrays convert to NumPy
without a table lookup. Promotion follows the array API standard within a kind (bool, signed,
unsigned, float, complex); across kinds it follows JAX and PyTorch: an integer or bool array
combined with a floating array takes the floating dtype (``int64 + float32 -> float32``).

Python scalars are *weak*: they never widen an array (``float32_array * 2.0`` stays float32).
Only Python's own ``bool``/``int``/``float``/``complex`` are weak, not NumPy scalars (``np.float64``
subclasses ``float`` but is a float64, as in NumPy and JAX); values computed only from weak
operands stay weak, and a transform's Python-scalar arguments are weak arrays (the aval's
``weak_type``), so eager code, jit, vmap and grad promote alike.
"""

import numpy as np

from .errors import DTypeError

bool_ = np.dtype("bool")
int8, int16, int32, int64 = (np.dtype(f"int{b}") for b in (8, 16, 32, 64))
uint8, uint16, uint32, uint64 = (np.dtype(f"uint{b}") for b in (8, 16, 32, 64))
float16, float32, float64 = (np.dtype(f"float{b}") for b in (16, 32, 64))
complex64, complex128 = np.dtype("complex64"), np.dtype("complex128")

SIGNED = (int8, int16, int32, int64)
UNSIGNED = (uint8, uint16, uint32, uint64)
INTEGER = SIGNED + UNSIGNED
FLOATING = (float16, float32, float64)
COMPLEX = (complex64, complex128)
INEXACT = FLOATING + COMPLEX
NUMERIC = INTEGER + INEXACT
ALL = (bool_,) + NUMERIC
_SUPPORTED = frozenset(ALL)

# Deep-learning defaults, as in PyTorch and JAX; fnx.set_default_dtype may change the float one.
_defaults = {"float": float32, "int": int64}


def default_float():
    """The dtype of floating arrays made from Python floats (float32 unless changed)."""
    return _defaults["float"]


def default_int():
    """The dtype of integer arrays made from Python ints (int64)."""
    return _defaults["int"]


def default_complex():
    return complex64 if _defaults["float"] == float32 else complex128


def set_default_dtype(dtype):
    """Set the default floating dtype (``float32`` or ``float64``), as ``torch.set_default_dtype``.

    >>> fnx.set_default_dtype(fnx.float64); fnx.set_default_dtype(fnx.float32)
    """
    dtype = canonicalize(dtype)
    if dtype not in (float32, float64):
        raise DTypeError(f"set_default_dtype: expected float32 or float64, got {dtype}")
    _defaults["float"] = dtype


def canonicalize(dtype):
    """Turn anything NumPy accepts as a dtype (``"float32"``, ``np.float32``, ``float``) into a
    supported ``np.dtype``; Python ``float``/``int``/``complex`` mean fnx's defaults."""
    if dtype is float:
        return default_float()
    if dtype is int:
        return default_int()
    if dtype is complex:
        return default_complex()
    if dtype is bool:
        return bool_
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise DTypeError(f"{dtype!r} is not a dtype; use e.g. fnx.float32 or 'int64'") from None
    if dt not in _SUPPORTED:
        raise DTypeError(f"dtype {dt} is not supported by fnx; supported: {[str(d) for d in ALL]}")
    return dt


def kind(dtype):
    """One of 'b', 'i', 'u', 'f', 'c'."""
    return dtype.kind


def is_floating(dtype):
    return dtype.kind == "f"


def is_inexact(dtype):
    return dtype.kind in "fc"


def is_integer(dtype):
    return dtype.kind in "iu"


def _build_table():
    order = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}
    table = {}
    for a in ALL:
        for b in ALL:
            if a == b:
                r = a
            elif a.kind == b.kind:
                r = max(a, b, key=lambda d: d.itemsize)
            elif order[a.kind] != order[b.kind]:
                hi, lo = (a, b) if order[a.kind] > order[b.kind] else (b, a)
                r = hi
                if hi.kind == "c" and lo.kind == "f" and lo.itemsize * 2 > hi.itemsize:
                    r = complex128
            else:  # signed with unsigned: smallest signed type holding both
                s, u = (a, b) if a.kind == "i" else (b, a)
                if s.itemsize > u.itemsize:
                    r = s
                else:
                    r = {1: int16, 2: int32, 4: int64, 8: int64}[u.itemsize]
            table[a, b] = r
    return table


_PROMOTE = _build_table()


def promote_types(a, b):
    """The dtype two arrays of dtypes ``a`` and ``b`` combine to.

    >>> fnx.core.dtypes.promote_types(fnx.int8, fnx.uint8)
    dtype('int16')
    """
    return _PROMOTE[a, b]


# exact types: subclasses such as np.float64 or IntEnum members are not weak
WEAK_SCALAR_TYPES = (bool, int, float, complex)


def is_weak_scalar(x):
    """Whether ``x`` is a Python scalar, which promotes weakly."""
    return type(x) in WEAK_SCALAR_TYPES


def result_dtype(strong, weak):
    """``(dtype, is_weak)`` of an operation on operands of the ``strong`` dtypes and of the
    ``weak`` ones (weak arrays, Python scalars at their default dtypes): the strong operands
    promote by the table and weak ones only lift the kind (``int8 * 2.5 -> float32``); with
    no strong operand the weak ones promote among themselves and the result stays weak.

    >>> fnx.core.dtypes.result_dtype([fnx.float16], [fnx.float32])
    (dtype('float16'), False)
    """
    if not strong:
        dt = weak[0]
        for d in weak[1:]:
            if d != dt:
                dt = _PROMOTE[dt, d]
        return dt, True
    dt = strong[0]
    for d in strong[1:]:
        if d != dt:
            dt = _PROMOTE[dt, d]
    for d in weak:
        dt = weak_result(dt, "i" if d.kind == "u" else d.kind)
    return dt, False


_SCALAR_KIND = {bool: "b", int: "i", float: "f", complex: "c"}
_KIND_ORDER = {"b": 0, "i": 1, "u": 1, "f": 2, "c": 3}


def scalar_kind(x):
    """'b', 'i', 'f' or 'c' for a Python scalar, else None."""
    for t in type(x).__mro__:
        k = _SCALAR_KIND.get(t)
        if k is not None:
            return k
    return None


def weak_result(array_dtype, skind):
    """The dtype of ``array op scalar`` where the scalar has kind ``skind`` (weak typing)."""
    if _KIND_ORDER[skind] <= _KIND_ORDER[array_dtype.kind]:
        return array_dtype
    if skind == "i":
        return default_int()
    if skind == "f":
        return default_float()
    # complex scalar with a real array keeps the array's precision
    return complex128 if array_dtype == float64 else default_complex()


def scalar_dtype(x):
    """The dtype a Python scalar gets on its own (fnx defaults)."""
    return {"b": bool_, "i": default_int(), "f": default_float(), "c": default_complex()}[scalar_kind(x)]


def finfo(dtype):
    return np.finfo(canonicalize(dtype))


def iinfo(dtype):
    return np.iinfo(canonicalize(dtype))
