"""Data type functions of the array API: astype, can_cast, isdtype, result_type, finfo, iinfo."""

import numpy as np

from ..core import dtypes
from ..core.array import Array, wrap
from ..core.errors import DTypeError
from ..core.ops import elementwise as ew
from ..core.tracing import get_aval
from ._core import is_array, to_array
from ._info import _KIND_NAMES


def astype(x, dtype, /, *, copy=True, device=None):
    """``x`` converted to ``dtype``; with ``copy=False`` the input comes back when no
    conversion is needed.

    >>> fnx.numpy.astype(fnx.numpy.asarray([1.7]), fnx.numpy.int32).tolist()
    [1]
    """
    x = to_array(x)
    dtype = dtypes.canonicalize(dtype)
    # a conversion is explicit: it makes a weakly typed value strong even at the same dtype
    if x.dtype == dtype and not get_aval(x).weak_type:
        out = wrap(x._buf.copy()) if copy and type(x) is Array else x
    else:
        out = ew.convert_element_type_p.bind(x, new_dtype=dtype)
    return out if device is None else out.to(device)


def _dtype_of(x):
    if is_array(x):
        return x.dtype
    if isinstance(x, np.ndarray):
        return dtypes.canonicalize(x.dtype)
    return dtypes.canonicalize(x)


def can_cast(from_, to, casting="safe"):
    """Whether ``from_`` (a dtype or array) casts to ``to`` under NumPy's ``casting`` rule
    (default "safe": without losing values).

    >>> fnx.numpy.can_cast(fnx.numpy.int8, fnx.numpy.int32)
    True
    """
    return bool(np.can_cast(_dtype_of(from_), dtypes.canonicalize(to), casting=casting))


def isdtype(dtype, kind):
    """Whether ``dtype`` is of ``kind`` (a dtype, a kind name such as ``'integral'``, or a
    tuple of them).

    >>> fnx.numpy.isdtype(fnx.numpy.float32, "real floating")
    True
    """
    dtype = dtypes.canonicalize(dtype)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    for k in kinds:
        if isinstance(k, str):
            if k not in _KIND_NAMES:
                raise ValueError(f"isdtype: unknown kind {k!r}; expected a dtype or one of "
                                 f"{sorted(_KIND_NAMES)}")
            if dtype in _KIND_NAMES[k]:
                return True
        elif dtype == dtypes.canonicalize(k):
            return True
    return False


def result_type(*arrays_and_dtypes):
    """The dtype the arguments (arrays, dtypes, and weak Python scalars and arrays) promote to.

    >>> fnx.numpy.result_type(fnx.numpy.int8, fnx.numpy.int16, 1)
    dtype('int16')
    """
    if not arrays_and_dtypes:
        raise ValueError("result_type: at least one array or dtype is required")
    strong, weak = [], []
    for a in arrays_and_dtypes:
        if dtypes.is_weak_scalar(a):
            weak.append(dtypes.scalar_dtype(a))
        elif is_array(a) and get_aval(a).weak_type:
            weak.append(get_aval(a).dtype)
        else:
            strong.append(_dtype_of(a))
    return dtypes.result_dtype(strong, weak)[0]  # the rule fnx.numpy's operations use


class finfo_object:
    """Machine limits of a floating dtype (``complex`` dtypes give their real component's).
    Fields are Python scalars, as the array API asks."""

    __slots__ = ("bits", "eps", "max", "min", "smallest_normal", "tiny", "resolution", "dtype")

    def __init__(self, dtype):
        info = np.finfo(dtype)
        self.dtype = np.dtype(info.dtype)
        self.bits = int(info.bits)
        self.eps = float(info.eps)
        self.max = float(info.max)
        self.min = float(info.min)
        self.smallest_normal = float(info.smallest_normal)
        self.tiny = self.smallest_normal
        self.resolution = float(info.resolution)

    def __repr__(self):
        return (f"finfo(bits={self.bits}, eps={self.eps}, min={self.min}, max={self.max}, "
                f"dtype={self.dtype.name})")


class iinfo_object:
    """Range of an integer dtype, as Python ints."""

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, dtype):
        info = np.iinfo(dtype)
        self.dtype = np.dtype(dtype)
        self.bits, self.max, self.min = int(info.bits), int(info.max), int(info.min)

    def __repr__(self):
        return f"iinfo(bits={self.bits}, min={self.min}, max={self.max}, dtype={self.dtype.name})"


def finfo(dtype):
    """Limits of a floating dtype, or of an array's dtype.

    >>> fnx.numpy.finfo(fnx.numpy.float32).bits
    32
    """
    dt = _dtype_of(dtype)
    if dt.kind not in "fc":
        raise DTypeError(f"finfo: {dt} is not a floating dtype; use iinfo for integers")
    return finfo_object(dt)


def iinfo(int_type):
    """Limits of an integer dtype, or of an array's dtype.

    >>> fnx.numpy.iinfo(fnx.numpy.int8).max
    127
    """
    dt = _dtype_of(int_type)
    if dt.kind not in "iu":
        raise DTypeError(f"iinfo: {dt} is not an integer dtype; use finfo for floats")
    return iinfo_object(dt)


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
