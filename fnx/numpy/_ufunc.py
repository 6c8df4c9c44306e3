"""NumPy's ufunc keywords (``out=None`` and ``dtype=``) and other NumPy-only arguments that fnx
accepts for compatibility.

fnx arrays are immutable values, so no function writes into an existing array: ``out`` may only
be None (NumPy's default, which ``np.sum(fnx_array)`` passes on to the array's method), and an
array raises ``OutArgumentError`` with the fix. ``dtype=`` on an elementwise function means
what it means in NumPy: the inputs are converted to ``dtype`` and the result has that dtype.
"""

from ..core import dtypes
from ..core.errors import DTypeError, FnxError

MSG_OUT = (
    "{op}: out= cannot be an array: fnx arrays are immutable values, so results are never "
    "written into an existing array. Assign the result instead (y = fnp.{op}(...)); to update "
    "part of an array use y = x.at[idx].set(value)"
)


class OutArgumentError(FnxError, TypeError):
    """An ``out=`` array was passed to an fnx function (fnx arrays are immutable)."""


def check_out(op, out):
    """Accept NumPy's ``out=None`` (also ``(None,)``, as ufuncs do); refuse an output array.

    >>> from fnx.numpy._ufunc import check_out
    >>> check_out("add", None)
    >>> check_out("add", fnp.zeros(2))
    Traceback (most recent call last):
    ...
    fnx.numpy._ufunc.OutArgumentError: add: out= cannot be an array: fnx arrays are ...
    """
    if out is None or (isinstance(out, tuple) and all(o is None for o in out)):
        return
    raise OutArgumentError(MSG_OUT.format(op=op))


def check_order(op, order, allowed=("C", "F", "A", "K")):
    """Validate a NumPy memory-layout ``order`` (accepted for compatibility; fnx arrays have no
    layout to choose, so it changes nothing).

    >>> fnx.numpy._ufunc.check_order("zeros", "F")
    """
    if order is not None and order not in allowed:
        raise ValueError(f"{op}: order must be one of {allowed}, got {order!r}")


def call_ufunc(op, fn, out, dtype, *args):
    """``fn(*args)`` with NumPy's ``out``/``dtype`` ufunc keywords applied.

    A boolean ``dtype`` leaves the inputs alone (comparisons and predicates compute in the
    input dtype and return booleans); any other ``dtype`` converts the inputs first. Either way
    the result must have ``dtype``, or there is no such loop (NumPy raises too).

    >>> from fnx.numpy._ufunc import call_ufunc
    >>> call_ufunc("add", fnp.add, None, fnp.int64, fnp.asarray([1], dtype=fnp.int8), 2).dtype
    dtype('int64')
    """
    from ._core import to_array

    check_out(op, out)
    if dtype is None:
        return fn(*args)
    dt = dtypes.canonicalize(dtype)
    result = fn(*(args if dt == dtypes.bool_ else [to_array(a, dt) for a in args]))
    if result.dtype != dt:
        shown = ", ".join(str(to_array(a).dtype) for a in args)
        raise DTypeError(f"{op}: no implementation gives a {dt} result (dtype={dtype!r}) for "
                         f"inputs of dtype {shown}; leave dtype=None, or convert the inputs or "
                         f"the result with .astype")
    return result
