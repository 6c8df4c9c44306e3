"""fnx error types.

Every error fnx raises on bad input subclasses one of Python's built-in exception types, so
`except ValueError` keeps working, and names the op, the offending shapes/dtypes and a fix.
"""


class FnxError(Exception):
    """Base class of every fnx error."""


class ShapeError(FnxError, ValueError):
    """Shapes that do not fit the op (broadcasting, matmul, reshape, concatenate, ...)."""


class DTypeError(FnxError, TypeError):
    """A dtype the op does not accept."""


class AxisError(FnxError, IndexError, ValueError):
    """An axis outside ``[-ndim, ndim)``."""


class FnxIndexError(FnxError, IndexError):
    """An index out of range or of an unsupported kind."""


class DeviceError(FnxError, RuntimeError):
    """Arrays on different devices in one op, or a device that is not available."""


class TraceError(FnxError, TypeError):
    """Misuse of a traced value (leaked tracer, in-place update inside a transform, ...)."""


class ConcretizationError(TraceError):
    """A traced value was used where a concrete Python value is needed."""


class BatchingError(TraceError):
    """A vmapped value was used where a single value is needed (Python branching on it)."""


class CompileError(FnxError, RuntimeError):
    """The jit backend failed on a valid program; this is an fnx bug, please report it."""


class CheckpointError(FnxError, RuntimeError):
    """``fnx.save`` met a value a checkpoint cannot hold, or ``fnx.load`` a file that is
    truncated, corrupted or not a checkpoint (the message names the file and what is wrong)."""


class DatasetError(FnxError, RuntimeError):
    """A data set's files are missing, corrupted or not in the expected format (the message
    says which files to put where)."""


def normalize_axis(axis, ndim, op):
    """Return ``axis`` in ``[0, ndim)`` or raise an AxisError naming ``op``."""
    if not isinstance(axis, (int,)) and not hasattr(axis, "__index__"):
        raise TypeError(f"{op}: axis must be an integer, got {type(axis).__name__}")
    axis = int(axis)
    if not -ndim <= axis < ndim:
        raise AxisError(
            f"{op}: axis {axis} is out of bounds for an array of rank {ndim}; "
            f"use an axis in [{-ndim}, {ndim})"
        )
    return axis % ndim if ndim else 0


def normalize_axes(axes, ndim, op):
    """Normalize an int / sequence / None of axes to a sorted tuple of distinct ints."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, (int,)) or hasattr(axes, "__index__"):
        axes = (axes,)
    out = tuple(normalize_axis(a, ndim, op) for a in axes)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {tuple(axes)}")
    return tuple(sorted(out))
