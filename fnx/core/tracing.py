"""The interpreter stack (Autodidax design): every transform is a ``Trace`` with one
``process_primitive``; ``bind`` routes each primitive application to the innermost active trace
that owns one of its arguments. Tracers are tagged with their trace's ``MainTrace`` so nested
transforms never confuse each other's values (no perturbation confusion).
"""

import contextlib
import itertools
import os
import threading
import weakref
import traceback

import numpy as np

from . import devices
from .abstract import ShapedArray
from . import array as array_module
from .array import Array, ArrayOps, asarray_buffer, wrap
from .errors import ConcretizationError, FnxError, TraceError
from .primitive import Primitive


class MainTrace:
    """One active transform: its nesting level, Trace class and per-transform data.

    ``level`` orders transforms (a later, inner transform has a higher level); ``owner`` is
    the trace stack of the thread that runs it and ``live`` is False once the transform returned,
    so a tracer used from another thread or after its transform is caught, not reinterpreted.
    """

    __slots__ = ("level", "trace_type", "global_data", "owner", "live")

    def __init__(self, level, trace_type, global_data, owner=None):
        self.level, self.trace_type, self.global_data = level, trace_type, global_data
        self.owner, self.live = owner, True

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


# Levels come from one process-wide counter, so no two transforms ever share a level and an
# inner transform (created later) always outranks the ones around it.
_levels = itertools.count(1)


class _TraceState(threading.local):
    """The interpreter stack of one thread. Transforms never yield to other code mid-trace
    (they are synchronous), so per-thread state is exactly the right scope: a server thread,
    a data-loader thread and a notebook's main thread each trace on their own.

    ``dynamic`` is the staging trace of the innermost jit/make_ir, which captures even ops on
    constants; ``eager`` caches "no transform active", the test on every op's hot path;
    ``inlined`` collects, while a jit traces, the closed-over 0-d Arrays whose values were
    written into the program as literals (see ``watch_inlined``); ``journal`` is the state
    journal of the innermost jit being traced at the top level (fnx.core.state).
    """

    def __init__(self):
        self.stack = []  # also this thread's identity: MainTrace.owner
        self.stack.append(MainTrace(0, EvalTrace, None, self.stack))
        self.dynamic = None
        self.eager = True
        self.inlined = None
        self.journal = None

    def refresh(self):
        self.eager = len(self.stack) == 1 and self.dynamic is None


_state = _TraceState()


def is_eager():
    """True when no transform is active in this thread (ops run their ``impl`` directly)."""
    return _state.eager


def active_mains():
    """The transforms active in this thread, outermost first (the eager base included)."""
    return list(_state.stack)


@contextlib.contextmanager
def new_main(trace_type, global_data=None):
    st = _state
    main = MainTrace(next(_levels), trace_type, global_data, st.stack)
    st.stack.append(main)
    st.eager = False
    try:
        yield main
    finally:
        main.live = False
        # pop this transform's own entry, even if an inner one was left behind by an error
        if st.stack[-1] is main:
            st.stack.pop()
        else:
            st.stack.remove(main)
        st.refresh()


@contextlib.contextmanager
def new_dynamic(main):
    st = _state
    prev, st.dynamic = st.dynamic, main
    st.eager = False
    try:
        yield
    finally:
        st.dynamic = prev
        st.refresh()


def current_dynamic():
    return _state.dynamic


@contextlib.contextmanager
def eager_eval():
    """Run the ops inside on concrete values even while a transform traces (a stateful
    object advancing its own concrete state, e.g. a random generator's key, must not capture
    the trace's values). Any tracer reaching an op inside is a leaked-tracer error."""
    st = _state
    prev_dynamic, prev_eager, prev_journal = st.dynamic, st.eager, st.journal
    st.dynamic, st.eager, st.journal = None, True, None
    try:
        yield
    finally:
        st.dynamic, st.eager, st.journal = prev_dynamic, prev_eager, prev_journal


@contextlib.contextmanager
def watch_inlined():
    """Collect the Arrays whose values programs staged in this block baked in as literals.

    Yields a list of ``(weakref to array, version)``; what an enclosing block watches gets
    them too, so an outer jit whose program contains an inner one guards the inner one's
    literals. Weak references, because most such arrays are temporaries of the trace (Python
    scalars converted by an op) that die with it; only arrays someone else holds need a guard.
    """
    st = _state
    prev, st.inlined = st.inlined, []
    try:
        yield st.inlined
    finally:
        mine, st.inlined = st.inlined, prev
        if prev is not None:
            prev.extend(mine)


def note_inlined(guards):
    """Record ``(weakref to array, version)`` pairs baked into a program being staged."""
    if _state.inlined is not None:
        _state.inlined.extend(guards)


def _note_host_read(array):
    journal = _state.journal
    while journal is not None:
        traced = journal.traced_value(array)
        if traced is not None:
            # an argument of the compiled function, or an array it updated in place
            raise ConcretizationError(concretization_message(
                traced, "a concrete value is needed (this array is an input of the compiled "
                        "function or was updated in place inside it)"))
        journal = journal.parent
    # a value read in Python while a jit traces is baked into its program like a literal
    watch = _state.inlined
    if watch is not None:
        watch.append((weakref.ref(array), array._version))


array_module._on_host_read = _note_host_read
array_module._trace_state = _state


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

    def primal_value(self):
        """The undifferentiated value this tracer carries (a differentiation transform's
        primal, itself possibly a tracer of an enclosing trace), or None when it has none
        (a batched value)."""
        return None

    @property
    def device(self):
        return self.concrete_device()

    def concrete_device(self):
        return devices.CPU

    def __repr__(self):
        return f"{type(self).__name__}<{self.aval.str_short()}>"

    def __deepcopy__(self, memo):
        """A new value equal to this one, cut from differentiation, as ``copy.deepcopy`` of
        an Array (copying the tracer's fields would make a tracer no trace knows)."""
        from ..transforms.custom import stop_gradient

        memo[id(self)] = new = stop_gradient(self)
        return new


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


def _foreign_tracer_error(tracer, st):
    main = tracer._trace.main
    if main.owner is not st.stack:
        return TraceError(
            f"A tracer {tracer!r} of a transform running in another thread was used in this "
            f"thread. fnx traces per thread; pass concrete arrays between threads, not values "
            f"from inside a transform.")
    return TraceError(
        f"A tracer {tracer!r} was used after its transform returned (a leaked tracer). "
        f"Traced values must not be stored in globals or module attributes inside "
        f"fnx.grad/vmap/jit; return them instead.")


def find_top_trace(args):
    st = _state
    top = st.stack[0]
    for x in args:
        if isinstance(x, Tracer):
            main = x._trace.main
            if not main.live or main.owner is not st.stack:
                raise _foreign_tracer_error(x, st)
            if main.level > top.level:
                top = main
    dyn = st.dynamic
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
    # levels are unique, so a higher one is an inner transform's tracer in an outer trace
    raise TraceError(
        f"A tracer from an inner transform ({vmain.trace_type.__name__}) escaped into an "
        f"outer one. This happens when a traced value is stored in a global or a closure and "
        f"used after its transform returned; pass it as an argument instead."
    )


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
    if _state.eager:
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
        raise _foreign_tracer_error(x, _state)
    return asarray_buffer(x)


def eval_impl(primitive, args, params):
    """Run ``primitive.impl`` on concrete operands: the eager path of every op (``bind``)."""
    # The common call first: one or two Arrays on the host without an autograd record, and a
    # primitive with one result and the default weak-type rule (weak iff every operand is).
    # It needs the dtype-kind check and the impl, nothing else; every other call takes the
    # general path. A failing impl is reported as the general path reports it, never run
    # twice (an impl with effects, a collective, must not repeat).
    n = len(args)
    if n == 2 and type(args[0]) is Array and type(args[1]) is Array:
        x, y = args
        bufs = (x._buf, y._buf)
        plain = x._autograd is None and y._autograd is None and \
            type(bufs[0]) is np.ndarray and type(bufs[1]) is np.ndarray
        weak = x._weak and y._weak
    elif n == 1 and type(args[0]) is Array:
        x = args[0]
        bufs = (x._buf,)
        plain, weak = x._autograd is None and type(bufs[0]) is np.ndarray, x._weak
    else:
        plain = False
    if plain and not check_rules and primitive.weak_type_rule is None and \
            not primitive.multiple_results:
        kinds = primitive.dtype_kinds
        if kinds is None or bufs[0].dtype.kind in kinds:
            try:
                return wrap(primitive.impl(*bufs, **params), weak)
            except FnxError:
                raise
            except Exception as err:  # noqa: BLE001
                raise_impl_error(primitive, bufs, params, err)
    return _eval_general(primitive, args, params)


def _eval_general(primitive, args, params):
    # one pass over the operands: their buffers, whether every one is weakly typed (the
    # default weak-type rule) and whether any has an autograd record (the tape's test)
    bufs, weak, tracked = [], bool(args), False
    for a in args:
        if type(a) is Array:
            bufs.append(a._buf)
            weak = weak and a._weak
            tracked = tracked or a._autograd is not None
        else:
            bufs.append(_buffer_of(a))
            weak = False
    for b in bufs:
        if type(b) is not np.ndarray:
            bufs = devices.unify_devices(primitive.name, bufs)
            break
    kinds = primitive.dtype_kinds
    if kinds is not None and bufs and bufs[0].dtype.kind not in kinds:
        primitive.abstract_eval(*[ShapedArray(b.shape, b.dtype) for b in bufs], **params)
    try:
        out = primitive.impl(*bufs, **params)
    except FnxError:
        raise
    except Exception as err:
        raise_impl_error(primitive, bufs, params, err)
    rule = primitive.weak_type_rule
    if rule is not None:
        weak = rule([type(a) is Array and a._weak for a in args], **params)
    if primitive.multiple_results:
        out = [wrap(o) for o in out]
        if weak:
            _set_weak(out, weak)
    else:
        out = wrap(out, weak)
    if check_rules:
        _check_rule(primitive, args, bufs, params, out)
    if tracked and _recorder is not None:
        _recorder(primitive, params, args, bufs, out)
    return out


# The eager autograd tape (fnx.autograd) records primitive calls with an input that has an
# autograd record; arrays without one (the common case) cost one attribute test per operand.
_recorder = None


def set_eager_recorder(recorder):
    """Install ``recorder(primitive, params, args, bufs, out)``, called after each eager
    primitive call that has an operand with an autograd record."""
    global _recorder
    _recorder = recorder


# Tests set this (tests/conftest.py; or FNX_CHECK_RULES=1): every eager primitive call then
# also runs the primitive's shape/dtype rule and checks that ``impl`` produced exactly that,
# so eager and traced code cannot disagree silently. Off by default: it costs a rule per op.
check_rules = os.environ.get("FNX_CHECK_RULES", "") not in ("", "0")


def _set_weak(out, weak):
    if type(out) is Array:
        out._weak = bool(weak)
        return
    flags = weak if isinstance(weak, (list, tuple)) else [weak] * len(out)
    for o, w in zip(out, flags, strict=True):
        o._weak = bool(w)


def _check_rule(primitive, args, bufs, params, out):
    avals = [ShapedArray(b.shape, b.dtype, type(a) is Array and a._weak)
             for a, b in zip(args, bufs, strict=True)]
    expected = primitive.out_avals(avals, params)
    outs = out if primitive.multiple_results else [out]
    expected = expected if primitive.multiple_results else [expected]
    got = [o.aval for o in outs]
    if got != list(expected):
        shown = ", ".join(a.str_short() for a in avals)
        raise AssertionError(
            f"{primitive.name}: impl and abstract_eval disagree on inputs ({shown}) with params "
            f"{params}: impl gave {[a.str_short() for a in got]}, the shape/dtype rule says "
            f"{[a.str_short() for a in expected]}")


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
        return ShapedArray(x._buf.shape, x._buf.dtype, x._weak)
    buf = asarray_buffer(x)
    return ShapedArray(buf.shape, buf.dtype)


_ids = itertools.count()


def fresh_id():
    return next(_ids)
