"""The interpreter stack (Autodidax design): every transform is a ``Trace`` with one
``process_primitive``; ``bind`` routes each primitive application to the innermost active trace
that owns one of its arguments. Tracers are tagged with their trace's ``MainTrace`` so nested
transforms never confuse each other's values (no perturbation confusion).
"""

import contextlib
import itertools
import traceback

import numpy as np

from . import devices
from .abstract import ShapedArray
from .array import Array, ArrayOps, asarray_buffer, wrap
from .errors import ConcretizationError, FnxError, TraceError
from .primitive import Primitive


class MainTrace:
    """One active transform: its nesting level, Trace class and per-transform data."""

    __slots__ = ("level", "trace_type", "global_data")

    def __init__(self, level, trace_type, global_data):
        self.level, self.trace_type, self.global_data = level, trace_type, global_data

    def __repr__(self):
        return f"MainTrace({self.level}, {self.trace_type.__name__})"


class Trace:
    def __init__(self, main):
        self.main = main

    def pure(self, val):
        raise NotImplementedError

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        raise NotImplementedError


class EvalTrace(Trace):
    """The bottom of the stack: run the primitive's ``impl`` on concrete buffers."""

    def pure(self, val):
        return val

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        return eval_impl(primitive, tracers, params)


trace_stack = [MainTrace(0, EvalTrace, None)]
# The staging trace of the innermost jit/make_ir, which captures even ops on constants.
_dynamic = [None]


@contextlib.contextmanager
def new_main(trace_type, global_data=None):
    main = MainTrace(len(trace_stack), trace_type, global_data)
    trace_stack.append(main)
    try:
        yield main
    finally:
        trace_stack.pop()


@contextlib.contextmanager
def new_dynamic(main):
    prev, _dynamic[0] = _dynamic[0], main
    try:
        yield
    finally:
        _dynamic[0] = prev


def current_dynamic():
    return _dynamic[0]


class Tracer(ArrayOps):
    """A value inside a transform. Has an aval; concrete only when its trace can say so."""

    __slots__ = ("_trace",)
    _fnx_tracer = True
    __array_priority__ = 1000

    aval = property(lambda self: NotImplementedError)
    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))

    def full_lower(self):
        return self

    def concrete_value(self):
        """The concrete ``Array`` behind this tracer, or a ConcretizationError."""
        raise ConcretizationError(concretization_message(self))

    @property
    def device(self):
        return self.concrete_device()

    def concrete_device(self):
        return devices.CPU

    def __repr__(self):
        return f"{type(self).__name__}<{self.aval.str_short()}>"


def concretization_message(tracer, why="a concrete value is needed"):
    frame = _user_frame()
    where = f" at {frame.filename}:{frame.lineno} ({frame.name})" if frame else ""
    return (
        f"Abstract tracer value {tracer.aval.str_short()} used where {why}{where}. "
        f"Inside fnx.jit (and fnx.make_ir) array values are not known while tracing. Fixes: "
        f"mark the argument static with static_argnums/static_argnames, select with "
        f"fnp.where(cond, a, b), or branch/loop with fnx.lax.cond / fnx.lax.while_loop / "
        f"fnx.lax.fori_loop."
    )


def _user_frame():
    """The innermost stack frame outside fnx itself, for error messages."""
    import os

    root = os.path.dirname(os.path.dirname(__file__))
    for frame in reversed(traceback.extract_stack()):
        if not frame.filename.startswith(root) and "<frozen" not in frame.filename:
            return frame
    return None


def find_top_trace(args):
    top = trace_stack[0]
    for x in args:
        if isinstance(x, Tracer):
            main = x._trace.main
            if main.level > top.level:
                top = main
    dyn = _dynamic[0]
    if dyn is not None and dyn.level > top.level:
        top = dyn
    return top.trace_type(top)


def full_raise(trace, val):
    if not isinstance(val, Tracer):
        return trace.pure(as_array(val))
    level = trace.main.level
    vmain = val._trace.main
    if vmain is trace.main:
        return val
    if vmain.level < level:
        return trace.lift(val)
    if vmain.level > level:
        raise TraceError(
            f"A tracer from an inner transform ({vmain.trace_type.__name__}) escaped into an "
            f"outer one. This happens when a traced value is stored in a global or a closure and "
            f"used after its transform returned; pass it as an argument instead."
        )
    raise TraceError("Different traces at the same level")


def full_lower(val):
    return val.full_lower() if isinstance(val, Tracer) else val


def as_array(x):
    """Concrete inputs of a primitive: Arrays pass through, NumPy values and scalars wrap."""
    if type(x) is Array:
        return x
    if isinstance(x, Tracer):
        return x
    return wrap(asarray_buffer(x))


def bind(primitive, *args, **params):
    """Apply ``primitive`` to ``args``: the one interception point of every transform."""
    if len(trace_stack) == 1 and _dynamic[0] is None:
        return eval_impl(primitive, args, params)
    trace = find_top_trace(args)
    tracers = [full_raise(trace, a) for a in args]
    out = trace.process_primitive(primitive, tracers, params)
    if primitive.multiple_results:
        return [full_lower(o) for o in out]
    return full_lower(out)


Primitive.bind = bind


def _buffer_of(x):
    if type(x) is Array:
        return x._buf
    if isinstance(x, Tracer):
        raise TraceError(
            f"A tracer {x!r} was used after its transform returned (a leaked tracer). Traced "
            f"values must not be stored in globals or module attributes inside fnx.grad/vmap/jit; "
            f"return them instead."
        )
    return asarray_buffer(x)


def eval_impl(primitive, args, params):
    bufs = [a._buf if type(a) is Array else _buffer_of(a) for a in args]
    for b in bufs:
        if type(b) is not np.ndarray:
            bufs = devices.unify_devices(primitive.name, bufs)
            break
    try:
        out = primitive.impl(*bufs, **params)
    except FnxError:
        raise
    except Exception as err:
        raise_impl_error(primitive, bufs, params, err)
    if primitive.multiple_results:
        return [wrap(o) for o in out]
    return wrap(out)


def raise_impl_error(primitive, bufs, params, err):
    """Turn a backend failure into an fnx error: the shape rule names the problem if it can."""
    avals = [ShapedArray(b.shape, b.dtype) for b in bufs]
    if primitive.abstract_eval is not None:
        primitive.abstract_eval(*avals, **params)  # raises the designed error for bad input
    shapes = ", ".join(a.str_short() for a in avals)
    raise FnxError(
        f"{primitive.name} failed on inputs ({shapes}) with params {params}: "
        f"{type(err).__name__}: {err}"
    ) from err


def get_aval(x):
    if isinstance(x, Tracer):
        return x.aval
    if type(x) is Array:
        return ShapedArray(x._buf.shape, x._buf.dtype)
    buf = asarray_buffer(x)
    return ShapedArray(buf.shape, buf.dtype)


_ids = itertools.count()


def fresh_id():
    return next(_ids)
