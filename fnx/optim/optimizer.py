"""``fnx.optim.Optimizer``: PyTorch's stateful optimizer contract over the functional core.

A subclass names its hyperparameters and its state and says which gradient transformation
(``fnx.optim.alias``) it runs; the base class does the rest, as ``torch.optim.Optimizer``:
``param_groups``, ``add_param_group``, ``zero_grad``, ``step(closure)``, ``state`` and
``state_dict()``/``load_state_dict()`` in PyTorch's layout (parameters saved by index).

How ``step()`` runs: for each parameter group, ONE call of an ``fnx.jit``-compiled function
updates every parameter of the group that has a gradient. Its inputs are the parameters,
their ``.grad``, their state arrays (PyTorch's per-parameter dicts, e.g. ``step``,
``exp_avg``, ``exp_avg_sq``) and the group's numeric hyperparameters as 0-d weakly typed
arrays, so changing ``group['lr']`` (a scheduler) never re-traces; the structural options
(``amsgrad``, ``nesterov``, whether there is momentum or weight decay...) key the compiled
function. Inside, each parameter runs the class's chain of transformations on its own state
(PyTorch keeps a step count per parameter). The new values are written back IN PLACE
(``Array._replace``: the buffer is swapped, the object stays), so the model and anyone
holding a parameter or a state array sees the update.
"""

import collections
import collections.abc
import contextlib
import copy
import itertools
import threading
import warnings

import numpy as np

import fnx
import fnx.numpy as fnp
from fnx.core import state as host_state
from fnx.core.array import Array, wrap_weak
from fnx.core.tracing import eager_eval
from fnx.jit import jit

from . import transforms

__all__ = ["Optimizer", "required"]


class _RequiredParameter:
    """The default of a hyperparameter every parameter group must set (PyTorch's
    ``torch.optim.optimizer.required``)."""

    def __repr__(self):
        return "<required parameter>"


required = _RequiredParameter()


class ParamState(collections.abc.MutableMapping):
    """``optimizer.state``: a dict per parameter, keyed by the parameter itself (by identity:
    fnx Arrays are not hashable), created empty on first access like PyTorch's
    ``defaultdict(dict)``.

    >>> from fnx import optim
    >>> p = fnp.zeros(2)
    >>> state = optim.optimizer.ParamState()
    >>> state[p]['step'] = 1
    >>> len(state), state[p]
    (1, {'step': 1})
    """

    def __init__(self):
        self._items = {}  # identity key -> (key, value)

    @staticmethod
    def _id(key):
        return ("array", id(key)) if isinstance(key, Array) else ("value", key)

    def __getitem__(self, key):
        entry = self._items.get(self._id(key))
        if entry is None:
            entry = self._items[self._id(key)] = (key, {})
        return entry[1]

    def __setitem__(self, key, value):
        self._items[self._id(key)] = (key, value)

    def __delitem__(self, key):
        del self._items[self._id(key)]

    def __contains__(self, key):
        return self._id(key) in self._items

    def get(self, key, default=None):
        entry = self._items.get(self._id(key))
        return default if entry is None else entry[1]

    def __iter__(self):
        return (k for k, _ in self._items.values())

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return "ParamState({" + ", ".join(
            f"<{type(k).__name__} {getattr(k, 'shape', k)}>: {v!r:.80}"
            for k, v in self._items.values()) + "})"


def check_nonnegative(**values):
    """PyTorch's argument checks: ``Invalid <what>: <value>`` for a negative number."""
    names = {"lr": "learning rate", "eps": "epsilon value"}
    for key, value in values.items():
        if value < 0:
            raise ValueError(f"Invalid {names.get(key, key + ' value')}: {value}")


def _context(name):
    # the eager autograd tape provides fnx.no_grad / fnx.enable_grad; without it there is
    # nothing to switch off
    ctx = getattr(fnx, name, None)
    return ctx() if ctx is not None else contextlib.nullcontext()


_HYPER_ARRAYS = {}  # Python number -> its 0-d array (never written to: jit inputs only)


def _hyper_array(value):
    """A hyperparameter as a jit argument: a weakly typed float64 0-d array (it promotes like
    the Python float it is: a float32 update stays float32, a float64 one keeps every
    digit); an Array (a tensor learning rate) is passed as it is."""
    if type(value) in (float, int, bool):
        arr = _HYPER_ARRAYS.get(value)
        if arr is None:
            if len(_HYPER_ARRAYS) > 4096:  # a scheduler makes a new rate every step
                _HYPER_ARRAYS.clear()
            arr = _HYPER_ARRAYS[value] = wrap_weak(np.asarray(value, dtype=np.float64))
        return arr
    if isinstance(value, Array):
        return value.reshape(()) if value.ndim else value
    return wrap_weak(np.asarray(value, dtype=np.float64))


def _hyper(group, key, index=None):
    """A hyperparameter of ``group`` as a jit argument; inside a compiled step an input
    re-read from the group at every call, so a scheduler's new rate never re-traces."""
    def read():
        value = group[key]
        return value if index is None else value[index]

    placeholder = host_state.host_input(read)
    return placeholder if placeholder is not None else _hyper_array(read())


def _is_tracer(x):
    return getattr(type(x), "_fnx_tracer", False)


# Compiled group updates, shared by every optimizer of a class: the key is the structure
# (class, static options, state keys per parameter, hyperparameter layout); fnx.jit keys
# each on shapes and dtypes in turn.
_PROGRAMS = {}


def _seed_state(state, slots, values, count):
    """``state`` (a transformation's state for one parameter) with the fields named in
    ``slots`` (``{torch_key: (StateType, field)}``) taken from ``values`` and every ``count``
    field set to ``count``."""
    fields = collections.defaultdict(dict)
    for key, (typ, field) in slots.items():
        if key in values:
            fields[typ][field] = values[key]

    def visit(node):
        if isinstance(node, tuple) and hasattr(node, "_fields"):
            new = dict(fields.get(type(node), {}))
            if "count" in node._fields:
                new["count"] = count
            return node._replace(**new) if new else node
        if isinstance(node, tuple):
            return tuple(visit(x) for x in node)
        return node

    return visit(state)


def _state_field(state, typ, field):
    if isinstance(state, typ):
        return getattr(state, field)
    if isinstance(state, tuple) and not hasattr(state, "_fields"):
        for x in state:
            found = _state_field(x, typ, field)
            if found is not None:
                return found
    return None


class _Internal(threading.local):
    depth = 0


_internal = _Internal()


@contextlib.contextmanager
def _internal_reads():
    """The optimizer reading its own groups: numbers come back as they are."""
    _internal.depth += 1
    try:
        yield
    finally:
        _internal.depth -= 1


class ParamGroup(dict):
    """One of ``optimizer.param_groups``: a dict. Inside a compiled step, a float that user
    code reads from it (``group['lr']``, e.g. for hand-written weight decay or logging) is an
    input re-read at every call, so it follows a scheduler without re-tracing, as the
    optimizer's own update does.

    >>> from fnx import optim
    >>> opt = optim.SGD([fnp.ones(1)], lr=0.1)
    >>> isinstance(opt.param_groups[0], dict), opt.param_groups[0]['lr']
    (True, 0.1)
    """

    def __getitem__(self, key):
        value = dict.__getitem__(self, key)
        if type(value) is float and not _internal.depth and host_state.active() is not None:
            return host_state.host_input(lambda: dict.__getitem__(self, key))
        return value


class Optimizer:
    """Base class of the PyTorch-style optimizers (``torch.optim.Optimizer``).

    ``params``: an iterable of Arrays, or of dicts ``{'params': [...], **options}`` (one
    parameter group each, options overriding ``defaults``). A subclass implements
    ``step()``, or declares ``_hyper_keys``, ``_static``, ``_state_keys``, ``_slots`` and
    ``_transform`` and inherits the compiled ``step()``.

    >>> from fnx import optim
    >>> w, b = fnp.ones(2), fnp.zeros(1)
    >>> opt = optim.SGD([{'params': [w]}, {'params': [b], 'lr': 0.5}], lr=0.1, momentum=0.9)
    >>> [g['lr'] for g in opt.param_groups], opt.param_groups[1]['momentum']
    ([0.1, 0.5], 0.9)
    >>> opt.state_dict()['param_groups'][1]['params']
    [1]
    """

    _hyper_keys = ()
    # fnx.jit takes an optimizer argument by reference; inside a compiled step its state
    # (``.grad``, ``state``, the learning rates) is lifted by fnx.core.state
    _fnx_reference = True

    def __init__(self, params, defaults):
        self.defaults = defaults
        self.state = ParamState()
        self.param_groups = []
        if isinstance(params, Array) or not hasattr(params, "__iter__"):
            what = "an Array" if isinstance(params, Array) else type(params).__name__
            raise TypeError(f"{type(self).__name__}: params should be an iterable of Arrays or "
                            f"of dicts, but got {what}; pass [x] or model.parameters()")
        param_groups = list(params)
        if not param_groups:
            raise ValueError(f"{type(self).__name__} got an empty parameter list: pass the "
                             f"arrays to optimize (e.g. model.parameters())")
        if not isinstance(param_groups[0], dict):
            param_groups = [{"params": param_groups}]
        for group in param_groups:
            self.add_param_group(group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {group[k]}" for k in sorted(group) if k != "params"]
        return "\n".join(lines) + "\n)"

    # --- parameter groups ------------------------------------------------------------------
    def add_param_group(self, param_group):
        """Add a parameter group (a dict with ``'params'`` and optional per-group options;
        missing options take the optimizer's defaults).

        >>> from fnx import optim
        >>> opt = optim.SGD([fnp.ones(1)], lr=0.1)
        >>> opt.add_param_group({'params': [fnp.zeros(3)], 'lr': 0.01})
        >>> len(opt.param_groups), opt.param_groups[1]['lr']
        (2, 0.01)
        """
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(f"{name}: param_group must be a dict, but got "
                            f"{type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Array):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError(f"{name}: optimizer parameters need to be organized in ordered "
                            f"collections, but the ordering of arrays in sets changes between "
                            f"runs; use a list instead")
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names:
            if len(names) != len(params):
                raise ValueError(f"{name}: all parameters should be given with names, or "
                                 f"none; some parameter names are missing")
            param_group["param_names"] = names
        param_group["params"] = params
        for i, p in enumerate(params):
            if not isinstance(p, Array) or _is_tracer(p):
                what = "a traced value" if _is_tracer(p) else type(p).__name__
                raise TypeError(
                    f"{name} can only optimize concrete fnx Arrays (e.g. nn.Parameters), but "
                    f"parameter {i} of the group is {what}; create the optimizer outside "
                    f"fnx.jit/grad/vmap, from model.parameters()")
            if p.grad_fn is not None:
                raise ValueError(f"{name} can't optimize a non-leaf Array: parameter {i} of "
                                 f"the group was computed from arrays that require grad; "
                                 f"optimize the leaf it came from, or a detached copy "
                                 f"(x.detach().requires_grad_())")
        for key, default in self.defaults.items():
            if default is required and key not in param_group:
                raise ValueError(f"{name}: parameter group didn't specify a value of required "
                                 f"optimization parameter {key}")
            param_group.setdefault(key, default)
        if len({id(p) for p in params}) != len(params):
            warnings.warn(f"{name} contains a parameter group with duplicate parameters; "
                          f"each is updated once", stacklevel=3)
        existing = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in existing for p in params):
            raise ValueError(f"{name}: some parameters appear in more than one parameter "
                             f"group; each array may belong to one group only")
        self.param_groups.append(ParamGroup(param_group))

    # --- gradients -------------------------------------------------------------------------
    def zero_grad(self, set_to_none=True):
        """Reset the gradients: ``p.grad = None`` (default), or zero them in place.

        >>> from fnx import optim
        >>> opt = optim.SGD([fnp.ones(1)], lr=0.1)
        >>> opt.zero_grad()
        """
        self._guard_groups()
        for group in self.param_groups:
            for p in group["params"]:
                grad = p.grad
                if grad is not None:
                    if set_to_none:
                        p.grad = None
                    else:
                        grad.zero_()

    def step(self, closure=None):
        """One optimization step for every parameter that has a ``.grad``; ``closure``
        (re-evaluates the model and returns the loss) runs first, with gradients enabled,
        and its loss is returned.

        >>> from fnx import optim
        >>> opt = optim.SGD([fnp.ones(1)], lr=0.1)
        >>> opt.step() is None  # no parameter has a gradient yet: nothing to do
        True
        """
        loss = None
        if closure is not None:
            with _context("enable_grad"):
                loss = closure()
        if not self._hyper_keys:
            raise NotImplementedError(f"{type(self).__name__}.step: a subclass of Optimizer "
                                      f"must implement step() or declare its transformation")
        self._guard_groups()
        with _context("no_grad"), _internal_reads():
            for group in self.param_groups:
                self._step_group(group)
        return loss

    def _guard_groups(self):
        """Inside a compiled step: re-trace when the parameter groups or the state are
        replaced or extended (``add_param_group``, ``load_state_dict``)."""
        if host_state.active() is not None:
            host_state.guard(
                f"{type(self).__name__}: param_groups or state replaced or extended "
                f"(add_param_group / load_state_dict)",
                lambda: (id(self.param_groups), tuple(map(id, self.param_groups)),
                         id(self.state), len(self.state)))

    # --- the compiled update ---------------------------------------------------------------
    @classmethod
    def _static(cls, group):
        """The group's structural options, as a hashable tuple of (name, value): here the
        ones every PyTorch optimizer has; subclasses add theirs. Weight decay is structural
        at 0 because PyTorch skips it there (0 * inf would turn an inf parameter into NaN)."""
        return (("maximize", bool(group["maximize"])),
                ("weight_decay_on", bool(group["weight_decay"] != 0)))

    @classmethod
    def _state_keys(cls, options):
        """PyTorch's per-parameter state keys, in its order, for these options."""
        raise NotImplementedError

    @classmethod
    def _slots(cls, options):
        """``{state_key: (StateType, field)}``: where each state array lives in the state of
        ``_transform``'s chain (``'step'`` is every ``count`` field)."""
        raise NotImplementedError

    @classmethod
    def _transform(cls, h):
        """The GradientTransformation for the hyperparameters ``h`` (traced arrays for the
        numbers, Python values for the static options)."""
        raise NotImplementedError

    def _init_state(self, p, group, state):
        """Fill the empty ``state`` dict of ``p`` before its first update (PyTorch's
        ``_init_group``)."""
        raise NotImplementedError

    @classmethod
    def _count(cls, state):
        """The int32 number of updates the parameter has had (from PyTorch's ``step``)."""
        return state["step"].astype(fnp.int32)

    @classmethod
    def _update_one(cls, h, p, g, state):
        """``(new_param, new_state)`` for one parameter: the class's transformation run on
        the parameter's own state, read from and written back to PyTorch's dict layout. A
        complex parameter is updated as the real pairs of its components, as PyTorch's
        ``view_as_real`` does (its second moments are per component, not of ``|g|**2``)."""
        if fnp.isdtype(p.dtype, "complex floating"):
            def real(x):
                return fnp.stack([fnp.real(x), fnp.imag(x)], axis=-1)

            real_state = {k: real(v) if k != "step" else v for k, v in state.items()}
            new_p, new_state = cls._update_one(h, real(p), real(g), real_state)
            return _complex(new_p, p), {k: _complex(v, p) if k != "step" else v
                                        for k, v in new_state.items()}
        tx, slots = cls._transform(h), cls._slots(h)
        chain_state = _seed_state(tx.init(p), slots, state, cls._count(state))
        updates, chain_state = tx.update(g, chain_state, p)
        new_state = {key: _state_field(chain_state, typ, field)
                     for key, (typ, field) in slots.items()}
        if "step" in state:
            new_state["step"] = state["step"] + 1
        return transforms.apply_updates(p, updates), new_state

    def _step_group(self, group):
        params, grads = [], []
        for p in group["params"]:
            g = p.grad
            if g is not None:
                params.append(p)
                grads.append(g)
        if not params:
            return
        static = self._static(group)
        compiled = host_state.active() is not None
        if compiled:
            # inside a compiled step: the program is specialised to these options and
            # parameters (numbers are inputs, see _hyper)
            host_state.guard(f"{type(self).__name__}: the parameter groups or their options "
                             f"changed", lambda: self._structure(group))
        states = []
        for p in params:
            state = self.state[p]
            if not state:
                if compiled:
                    # the initial state as concrete arrays, inputs of the first step's
                    # program: staged zeros would be folded into it, and the first step's
                    # update loops would differ from (and compile beside) every later step's
                    fresh = {}
                    with eager_eval():
                        like = fnp.zeros(p.shape, dtype=p.dtype, device=p.device)
                        self._init_state(like, group, fresh)
                    for key, value in fresh.items():
                        host_state.set(state, ("item", key), value)
                else:
                    self._init_state(p, group, state)
            states.append({k: host_state.get(state, ("item", k)) for k in list(state)
                           if state[k] is not None})
        hyper, layout = [], []
        for key in self._hyper_keys:
            value = group[key]
            if isinstance(value, (tuple, list)):
                hyper += [_hyper(group, key, i) for i in range(len(value))]
                layout.append(len(value))
            else:
                hyper.append(_hyper(group, key))
                layout.append(None)
        in_keys = tuple(tuple(s) for s in states)
        update = _group_update(type(self), static, in_keys, tuple(layout))
        outs = update(*params, *grads, *[v for s in states for v in s.values()], *hyper)
        where = f"{type(self).__name__}.step"
        for p, new in zip(params, outs, strict=False):
            p._replace(new, where)
        out_keys = self._state_keys(dict(static))
        new_values = iter(outs[len(params):])
        for p in params:
            state = self.state[p]
            for key in out_keys:
                new = next(new_values)
                old = host_state.get(state, ("item", key))
                if type(old) is Array and old.shape == new.shape:
                    old._replace(new, where)
                else:
                    host_state.set(state, ("item", key), new)

    def _structure(self, group):
        """What a compiled step specialises on in ``group``: its parameters, their dtypes,
        the structural options, the layout of the numeric hyperparameters."""
        return (tuple(map(id, group["params"])), self._static(group),
                tuple(id(self.state.get(p)) for p in group["params"]),
                tuple(len(group[k]) if isinstance(group[k], (tuple, list)) else None
                      for k in self._hyper_keys))

    # --- serialization ---------------------------------------------------------------------
    def state_dict(self):
        """``{'state': {index: {...}}, 'param_groups': [{..., 'params': [indices]}]}``, as
        PyTorch: parameters are numbered in group order; the state's arrays are the live ones
        (copy.deepcopy the result to keep a snapshot while training goes on).

        >>> from fnx import optim
        >>> opt = optim.Adam([fnp.ones(2), fnp.ones(3)], lr=0.1)
        >>> sd = opt.state_dict()
        >>> sd['state'], sd['param_groups'][0]['params'], sd['param_groups'][0]['lr']
        ({}, [0, 1], 0.1)
        """
        index = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {}
        for key, value in self.state._items.values():
            state[index[id(key)] if isinstance(key, Array) else key] = dict(value)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Load a ``state_dict()`` (from this class, or PyTorch's with tensors or NumPy
        arrays): the state arrays are copied, cast to each parameter's dtype (``step`` keeps
        its own), and the saved group options replace the current ones.

        >>> from fnx import optim
        >>> opt = optim.SGD([fnp.ones(1)], lr=0.1)
        >>> sd = opt.state_dict(); sd['param_groups'][0]['lr'] = 0.5
        >>> opt.load_state_dict(sd); opt.param_groups[0]['lr']
        0.5
        """
        groups = self.param_groups
        saved_groups = copy.deepcopy(state_dict["param_groups"])
        if len(groups) != len(saved_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the loaded state dict "
                             f"has {len(saved_groups)} parameter groups, the optimizer "
                             f"{len(groups)}")
        for i, (g, s) in enumerate(zip(groups, saved_groups, strict=True)):
            if len(g["params"]) != len(s["params"]):
                raise ValueError(f"{type(self).__name__}.load_state_dict: loaded parameter "
                                 f"group {i} has {len(s['params'])} parameters, the "
                                 f"optimizer's has {len(g['params'])}")
        id_map = dict(zip(itertools.chain.from_iterable(g["params"] for g in saved_groups),
                          itertools.chain.from_iterable(g["params"] for g in groups),
                          strict=True))
        state = ParamState()
        for key, value in state_dict["state"].items():
            if key in id_map:
                p = id_map[key]
                state[p] = {k: _load_value(p, k, v) for k, v in value.items() if v is not None}
            else:
                state[key] = value
        for group, saved in zip(groups, saved_groups, strict=True):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
        self.state = state
        self.param_groups = [ParamGroup(g) for g in saved_groups]


def _load_value(p, key, value):
    """A loaded state entry as a fresh fnx Array: ``step`` keeps its floating dtype (a number
    becomes the default float, as PyTorch's ``_get_scalar_dtype``), the rest takes the
    parameter's dtype when that is floating."""
    if key == "step":
        if isinstance(value, (int, float)):
            return fnp.asarray(float(value), dtype=fnp.zeros(()).dtype)
        return fnp.array(fnp.asarray(value), copy=True)
    if isinstance(value, (int, float)):
        return value
    dtype = p.dtype if fnp.isdtype(p.dtype, ("real floating", "complex floating")) else None
    return fnp.array(fnp.asarray(value), dtype=dtype, copy=True)


def _complex(pairs, like):
    """The complex array (``like``'s dtype) whose components are the last axis of ``pairs``."""
    return (pairs[..., 0] + 1j * pairs[..., 1]).astype(like.dtype)


def _group_update(cls, static, in_keys, layout):
    """The jitted update of one parameter group: ``(*params, *grads, *state arrays,
    *hyperparameters) -> [*new params, *new state arrays]``, flat, so each call takes
    fnx.jit's fast path."""
    key = (cls, static, in_keys, layout)
    fn = _PROGRAMS.get(key)
    if fn is not None:
        return fn
    n = len(in_keys)
    options = dict(static)
    out_keys = cls._state_keys(options)

    def update(*leaves):
        params, grads = leaves[:n], leaves[n:2 * n]
        rest = iter(leaves[2 * n:])
        states = [{k: next(rest) for k in keys} for keys in in_keys]
        h = dict(options)
        for name, size in zip(cls._hyper_keys, layout, strict=True):
            h[name] = next(rest) if size is None else tuple(next(rest) for _ in range(size))
        if not h["weight_decay_on"]:
            h["weight_decay"] = 0.0  # a Python 0 leaves the decay out of the chain
        new_params, new_states = [], []
        for p, g, state in zip(params, grads, states, strict=True):
            new_p, new_state = cls._update_one(h, p, g, state)
            new_params.append(new_p)
            new_states += [new_state[k] for k in out_keys]
        return [*new_params, *new_states]

    update.__name__ = f"{cls.__name__}_step"
    fn = _PROGRAMS[key] = jit(update)
    return fn
