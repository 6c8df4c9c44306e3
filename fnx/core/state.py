"""Host state under ``fnx.jit``: the journal that lets PyTorch-style code (``optimizer.step()``,
``loss.backward()``, BatchNorm's running statistics, the global random generator) run inside a
compiled function (style.md R16, after TF2's variable capture and Flax NNX's split/merge).

While ``fnx.jit`` traces a function at the top level (or inside another such jit), a
``Journal`` is active in the thread. Stateful code reads and writes its state through
``get``/``set`` (an attribute or a dict entry of an object: a parameter's ``.grad``, an
optimizer's per-parameter dict, a generator's key) and updates arrays in place
(``Array._replace``: ``p.sub_(...)``, ``buf.copy_(...)``). The journal:

- lets the trace see its own writes (a later read gets the traced value: a parameter updated by
  ``step()`` and used again in the same call is the new value), and restores every slot when
  the trace ends, so no traced value is ever left in user objects;
- turns the final value of every written slot and array into an extra program output, which
  the compiled call writes back after each run (in place into the slot's array when it held
  one, so holders see the update and the next call finds the same object);
- records guards: the identity of every slot's value when the trace first touched it, and any
  structural facts code declares (``guard``: a module's ``training`` flag, an optimizer's
  parameter groups). A call whose guards fail re-traces, with the failing guard as the reason
  in ``cache_info()``;
- turns Python numbers read from state (``group['lr']``) into program inputs re-read at every
  call (``host_input``), so a scheduler changing the learning rate never re-traces;
- runs host-side bookkeeping that depends on traced values after each call (``defer``: an LR
  scheduler's ``step()``).

A plain attribute of an object (``("attr", name)``: ``self.last_hidden = h`` in a forward,
AWD-LSTM's WeightDrop setting ``weight_hh_l0`` to a dropped-out copy of a raw parameter) is
*rebound*, as PyTorch's attribute assignment: after each call it holds new arrays (a reference
kept from an earlier call keeps its value), its guard is its structure (containers, shapes,
dtypes; identity only for arrays with autograd records), and the arrays the trace read from it
are re-read from the attribute at every call.

Without an active journal (eager code, or inside grad/vmap) ``get``/``set`` are plain
attribute and item access.
"""

import sys
import types

import numpy as np

from . import tracing
from .array import Array, wrap_weak
from .errors import FnxError, TraceError
from .pytree import tree_flatten, tree_unflatten

MISSING = object()  # a dict entry that does not exist (a slot written for the first time)


def _read(owner, name):
    if type(name) is tuple:  # ("item", key): a dict entry; ("attr", name): a plain attribute
        return (owner.__dict__ if name[0] == "attr" else owner).get(name[1], MISSING)
    return getattr(owner, name)


def _write(owner, name, value):
    if type(name) is tuple:
        # a plain attribute goes straight into __dict__: the owner's __setattr__ is what
        # routed the write here
        target = owner.__dict__ if name[0] == "attr" else owner
        if value is MISSING:
            target.pop(name[1], None)
        else:
            target[name[1]] = value
    else:
        setattr(owner, name, value)


def _describe(owner, name):
    if type(name) is tuple:
        what = f".{name[1]}" if name[0] == "attr" else f"[{name[1]!r}]"
    else:
        what = f".{name}"
    return f"{type(owner).__name__}{what}"


def is_rebound(name):
    """Whether the slot ``name`` is a plain attribute (see the module docstring)."""
    return type(name) is tuple and name[0] == "attr"


def _is_stateful(x):
    return getattr(type(x), "_fnx_stateful", False)


_LEAF = tree_flatten(0)[1]


def array_leaves(value):
    """``(leaves, treedef)`` when ``value`` is array state: an array, or tuples / lists / dicts
    of arrays, None and Python scalars holding at least one array (``(h, c)``); else None.
    Modules and other objects inside make it no state (a list of layers is not rebound)."""
    if type(value) is Array:
        return [value], _LEAF  # the common case, without a flatten
    if not isinstance(value, (Array, tracing.Tracer, tuple, list, dict)):
        return None
    leaves, tree = tree_flatten(value, is_leaf=_is_stateful)
    found = False
    for x in leaves:
        if isinstance(x, (Array, tracing.Tracer)):
            found = True
        elif x is not None and type(x) not in (bool, int, float, complex, str):
            return None
    return (leaves, tree) if found else None


def _same_leaf(a, b):
    if a is b:
        return True
    if type(a) is not Array or type(b) is not Array:
        return type(a) is type(b) and not isinstance(a, tracing.Tracer) and a == b
    x, y = a._buf, b._buf
    return (x.shape == y.shape and x.dtype == y.dtype and type(x) is type(y)
            and a._weak == b._weak and a.requires_grad == b.requires_grad)


def same_structure(a, b):
    """Whether two values of a rebound attribute give the same program: the same containers
    and, leaf by leaf, arrays of the same shape, dtype, weak type, device kind and
    ``requires_grad``, or equal Python values."""
    if a is b:
        return True
    if type(a) is Array and type(b) is Array:
        return _same_leaf(a, b)
    fa, fb = array_leaves(a), array_leaves(b)
    if fa is None or fb is None or fa[1] != fb[1]:
        return False
    return all(_same_leaf(x, y) for x, y in zip(fa[0], fb[0], strict=True))


class Slot:
    """One piece of state the trace touched: its value then (``original``, guarded by
    identity), its value now in the trace (``current``), whether the trace wrote it and
    whether it let go of the array it held (``dropped``: set it to None, as
    ``zero_grad()``, before writing a new one; the new value is then a new object after the
    call, as PyTorch's)."""

    __slots__ = ("owner", "name", "original", "current", "written", "dropped")

    def __init__(self, owner, name, original):
        self.owner, self.name = owner, name
        self.original = self.current = original
        self.written = False
        self.dropped = False


class Journal:
    """The state a jit trace touched; see the module docstring."""

    def __init__(self, main, parent=None):
        self.main = main  # the StagingTrace main of the jit being traced
        self.parent = parent  # the journal of an enclosing jit being traced
        self.slots = {}  # (id(owner), name) -> Slot
        self.arrays = {}  # id(array) -> (array, traced value): arrays updated in place
        self.guards = []  # (description, fn, expected)
        self.host_inputs = {}  # id(placeholder array) -> (placeholder, getter)
        self.deferred = []  # (fn, args with arrays replaced by output positions)
        self.deferred_values = []  # the traced arrays the deferred calls receive
        self.ran_backward = False  # the traced code called backward(): outputs are detached
        self.created = {}  # id -> object created inside the trace (its attributes are no state)
        self.watched = {}  # id(list or dict) -> (owner, attribute name, it, its items then)
        self.aliases = []  # ``.data`` aliases made in the trace (kept alive: looked up by id)

    # --- slots ---------------------------------------------------------------------------
    def _slot(self, owner, name):
        key = (id(owner), name)
        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = Slot(owner, name, _read(owner, name))
        return slot

    def read(self, owner, name):
        return self._slot(owner, name).current

    def write(self, owner, name, value):
        if self.foreign(value) or (is_rebound(name) and any(
                self.foreign(x) for x in (array_leaves(value) or ((),))[0])):
            # an inner transform's value into its own objects (a module grad/vmap rebuilt
            # from tracers): transient, not the compiled function's state
            _write(owner, name, value)
            return
        slot = self._slot(owner, name)
        slot.current, slot.written = value, True
        slot.dropped = slot.dropped or value is None
        _write(owner, name, value)  # code that reads the slot directly sees the trace's value

    def watch(self, owner, name, container):
        """``container`` (a list or dict in ``owner``'s plain attribute ``name``) may get
        traced values put into it in place (``self.stats["m"] = v``, ``self.log.append(v)``),
        which no slot sees: ``finish`` restores its items and makes the change a write of
        the attribute (a new container after each call)."""
        slot = self.slots.get((id(owner), ("attr", name)))
        if id(container) not in self.watched and (slot is None or not slot.written):
            self.watched[id(container)] = (owner, name, container, _items(container))

    # --- arrays updated in place -----------------------------------------------------------
    def rebind(self, array, value, op):
        """``array``'s value is now the traced ``value`` (an in-place update in the trace)."""
        self._check_value(value, op)
        builder = self.main.global_data
        builder.const_tracers[id(array)] = value
        if getattr(value, "_autograd", None) is None:
            value._autograd = array._autograd  # a parameter updated in place stays the leaf
        self.arrays[id(array)] = (array, value)

    def alias(self, alias, base):
        """``alias`` (``base.data`` taken in the trace) stands for ``base``'s value in the
        trace now, cut from differentiation; an in-place update of it rebinds ``base``."""
        from ..transforms.custom import stop_gradient

        self.aliases.append(alias)
        self.main.global_data.const_tracers[id(alias)] = stop_gradient(base)

    def replace_value(self, old, new):
        """An in-place update of the traced value ``old`` (``p.grad.mul_(c)`` after
        ``backward()`` in the same trace): every slot and array now holding ``old`` holds
        ``new``. Returns False when nothing the journal tracks holds ``old`` (besides
        rebound attributes)."""
        found = False
        for slot in list(self.slots.values()):
            if is_rebound(slot.name):
                # an attribute holding ``old`` (or a tuple with it) holds ``new``; not counted
                # as found, so the caller still rebinds the traced value itself for its other
                # holders (a local variable the step returns)
                leaves, tree = array_leaves(slot.current) or ((), None)
                if any(x is old for x in leaves):
                    self.write(slot.owner, slot.name, tree_unflatten(
                        tree, [new if x is old else x for x in leaves]))
            elif slot.current is old:
                self.write(slot.owner, slot.name, new)
                found = True
        for array, value in list(self.arrays.values()):
            if value is old:
                self.rebind(array, new, "in-place update")
                found = True
        return found

    def traced_value(self, array):
        """The traced value standing for ``array`` in this trace (an argument's or an
        in-place update's), or None when its concrete value is still the one to use."""
        builder = self.main.global_data
        t = builder.const_tracers.get(id(array)) if builder is not None else None
        if t is not None and id(t) in builder.tracer_to_var and \
                builder.get_var(t) not in builder.const_vals:
            return t
        return None

    def foreign(self, value):
        """Whether ``value`` is a tracer of another transform than this compiled trace."""
        return isinstance(value, tracing.Tracer) and value._trace.main is not self.main

    def _check_value(self, value, what):
        if self.foreign(value):
            raise TraceError(
                f"{what}: a value of an inner transform ({value._trace.main.trace_type.__name__}) "
                f"was written into state inside fnx.jit; state can only be updated with the "
                f"compiled function's own values (update it outside fnx.grad/vmap, or return "
                f"the value instead)")

    # --- guards, inputs, deferred calls ----------------------------------------------------
    def guard(self, description, fn, expected):
        self.guards.append((description, fn, expected))

    def host_input(self, getter):
        if self.deferred:
            raise FnxError(
                "inside a compiled step, a value of Python state (e.g. an optimizer's learning "
                "rate) was read after a deferred host call (e.g. lr_scheduler.step()), which "
                "runs after the compiled program: call scheduler.step() after "
                "optimizer.step(), as PyTorch documents")
        value = getter()
        placeholder = wrap_weak(np.asarray(_as_float(value), dtype=np.float64))
        self.host_inputs[id(placeholder)] = (placeholder, getter)
        return placeholder

    def defer(self, fn, args):
        spec = []
        for a in args:
            if isinstance(a, (Array, tracing.Tracer)):
                spec.append(("array", len(self.deferred_values)))
                self.deferred_values.append(a)
            else:
                spec.append(("value", a))
        self.deferred.append((fn, spec))

    def live_ids(self):
        """The ids of the arrays whose values change between calls: inputs re-read from
        Python state, arrays updated in place, values held in slots."""
        ids = {*self.host_inputs, *self.arrays}
        for s in self.slots.values():
            if isinstance(s.original, Array):
                ids.add(id(s.original))
            elif is_rebound(s.name):
                ids.update(id(x) for x in (array_leaves(s.original) or ((),))[0])
        return ids

    # --- the end of the trace --------------------------------------------------------------
    def finish(self):
        """Restore every slot; return the written slots and arrays and their final values,
        in the order the program outputs them."""
        error = None  # a container that cannot be written back (see _CONTAINER_ERROR)
        for owner, name, container, before in self.watched.values():
            now = _items(container)
            if not self._holds_traced(now):
                continue
            if name is None:  # a plain object's attributes (its __dict__): rebound slots
                for key, value in now.items():
                    if before.get(key, MISSING) is value or not self._holds_traced(value):
                        continue  # unchanged (a list there is watched on its own)
                    _write(owner, ("attr", key), before.get(key, MISSING))
                    slot = self._slot(owner, ("attr", key))
                    if array_leaves(value) is None:
                        error = _CONTAINER_ERROR.format(_describe(owner, ("attr", key)))
                    else:
                        slot.current, slot.written = value, True
                continue
            _restore(container, before)  # no traced value is left in it
            if owner is None:  # a list or dict the step's code reaches by a name
                error = _LIST_ERROR.format(name, type(container).__name__)
                continue
            slot = self._slot(owner, ("attr", name))
            if slot.written or slot.original is not container:
                continue  # the attribute was rebound after the change: that value wins
            value = type(container)(now)
            if array_leaves(value) is None:
                error = _CONTAINER_ERROR.format(_describe(owner, name))
                continue
            slot.current, slot.written = value, True
        written = []
        for slot in self.slots.values():
            _write(slot.owner, slot.name, slot.original)
            if slot.written:
                written.append(slot)
        if error is not None and sys.exc_info()[0] is None:  # not over another error
            raise TraceError(error)
        return written, list(self.arrays.values())

    def _holds_traced(self, value):
        return any(isinstance(x, tracing.Tracer) and x._trace.main is self.main
                   for x in tree_flatten(value, is_leaf=_is_stateful)[0])

    def watch_function(self, fun):
        """Watch what the compiled function's own code reaches by a name (its globals and
        closure): the attributes of plain objects (``meter.total = meter.total + loss``) are
        rebound like a module's; a list or dict (``losses.append(loss)``) cannot be written
        back, and a traced value put into one is an error that says so."""
        code = getattr(fun, "__code__", None)
        if code is None or (getattr(fun, "__module__", None) or "").startswith("fnx."):
            return
        scope = {k: fun.__globals__[k] for k in code.co_names if k in fun.__globals__}
        for name, cell in zip(code.co_freevars, fun.__closure__ or (), strict=True):
            try:
                scope[name] = cell.cell_contents
            except ValueError:  # an empty cell (a name assigned later)
                continue
        for name, value in scope.items():
            if type(value) in (list, dict):
                self.watched.setdefault(id(value), (None, name, value, _items(value)))
            elif _is_plain_object(value):
                self.watch_object(value)

    def watch_object(self, obj, skip=()):
        """Watch ``obj``'s attributes (its ``__dict__``, and the lists and dicts in it but
        those named in ``skip``): arrays set there bypassing the journal (a plain object's
        ``setattr``, a module's ``self.__dict__[name] = v``) become rebound slots."""
        d = vars(obj)
        if id(d) in self.watched:
            return
        for key, item in list(d.items()):
            if key not in skip and type(item) in (list, dict):
                self.watch(obj, key, item)
        self.watched[id(d)] = (obj, None, d, dict(d))


_CONTAINER_ERROR = (
    "inside a compiled step, a traced array was put into the list or dict in {} next to "
    "values that are not arrays (modules, objects): the compiled function can write back "
    "arrays, and containers of arrays, numbers and None only. Return the array from the "
    "step and store it after the call, or keep it in a container of arrays")


_LIST_ERROR = (
    "inside a compiled step, a traced array was put into the {1} `{0}`, which the compiled "
    "function cannot write back (it would hold placeholders of the trace, and the step's "
    "Python code runs only while tracing): return the value from the step and store it after "
    "the call (`{0}.append(step(x))`), or keep it in a Module or object attribute")


def _is_plain_object(value):
    """An instance of a user's class with a ``__dict__`` (a meter, a logger): not a Module
    (the journal sees its writes), not fnx's, a function, a class or a Python module."""
    cls = type(value)
    return (hasattr(value, "__dict__") and not _is_stateful(value)
            and not cls.__module__.startswith(("fnx.", "builtins", "numpy", "types"))
            and not isinstance(value, (type, types.ModuleType, types.FunctionType,
                                       types.MethodType, types.BuiltinFunctionType)))


def _items(container):
    return list(container) if type(container) is list else dict(container)


def _restore(container, items):
    if type(container) is list:
        container[:] = items
    else:
        container.clear()
        container.update(items)


def _as_float(value):
    if isinstance(value, Array):
        return value._host().reshape(()).item() if value.size == 1 else value._host()
    return value


def active():
    """The journal of the jit being traced in this thread, or None."""
    return tracing._state.journal


def get(owner, name):
    """Read a piece of state: ``owner.name``, or ``owner[key]`` for ``name=("item", key)``
    (``MISSING`` when the entry does not exist)."""
    journal = tracing._state.journal
    if journal is None:
        return _read(owner, name)
    return journal.read(owner, name)


def set(owner, name, value):  # noqa: A001 - the pair of ``get``
    """Write a piece of state (see ``get``; ``MISSING`` deletes a dict entry)."""
    journal = tracing._state.journal
    if journal is None:
        _write(owner, name, value)
    else:
        journal.write(owner, name, value)


def created(obj):
    """Note that ``obj`` is being created inside the trace (a module built in a compiled step):
    its plain attributes are the trace's temporaries, not state (see ``tracks``)."""
    journal = tracing._state.journal
    if journal is not None:
        journal.created[id(obj)] = obj


def tracks(owner):
    """Whether a compiled trace is being recorded and ``owner``'s plain attributes are its
    state (``owner`` existed before the trace)."""
    journal = tracing._state.journal
    return journal is not None and id(owner) not in journal.created


def guard(description, fn):
    """Inside a compiled trace, re-trace whenever ``fn()`` no longer equals its value now
    (structure the traced code branched on, e.g. ``module.training``)."""
    journal = tracing._state.journal
    if journal is not None:
        journal.guard(description, fn, fn())


def host_input(getter):
    """A number read from Python state, as a 0-d weakly typed float64 Array: eagerly
    ``getter()``'s value; inside a compiled trace a program input re-read at every call."""
    journal = tracing._state.journal
    if journal is None:
        return None
    return journal.host_input(getter)


def defer(fn, *args):
    """Call ``fn(*args)`` now when eager; inside a compiled trace, after every call of the
    compiled function, with its array arguments' values from that call. Returns True when
    deferred."""
    journal = tracing._state.journal
    if journal is None:
        return False
    journal.defer(fn, args)
    return True


def watch_object(obj, skip=()):
    """Inside a compiled trace, watch ``obj``'s attributes and the lists and dicts in them
    for arrays put there in place, which no slot sees (see ``Journal.watch_object``)."""
    journal = tracing._state.journal
    if journal is not None:
        journal.watch_object(obj, skip)


__all__ = ["Journal", "MISSING", "active", "get", "set", "created", "tracks", "watch_object",
           "guard", "host_input", "defer", "array_leaves", "same_structure", "is_rebound"]
