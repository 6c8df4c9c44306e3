"""``fnx.nn.Module`` and ``fnx.nn.Parameter``: PyTorch's stateful contract on fnx arrays.

Registration by attribute assignment, ordered parameter/buffer/submodule registries,
``state_dict``/``load_state_dict(strict)``, ``train``/``eval``, hooks with a no-hooks fast path
(model: ``torch/nn/modules/module.py``). Every Module is also a pytree (Equinox's idea):
parameters and buffers are the leaves, everything else is static, so ``fnx.grad``,
``fnx.vmap`` and ``fnx.jit`` take modules as arguments and ``grad`` returns a Module-shaped
gradient.
"""

import collections
import itertools
import threading
import warnings

import numpy as np

import fnx
from fnx.autograd import tape
from fnx.core import state as host_state
from fnx.core.array import AutogradMeta
from fnx.core.pytree import register_pytree_node

__all__ = ["Module", "Parameter", "RemovableHandle", "functional_call", "CompiledModule"]


# --- Parameter -----------------------------------------------------------------------------


class _ParameterMeta(type):
    def __instancecheck__(cls, inst):
        meta = getattr(inst, "_autograd", None) if type(inst) is fnx.Array else None
        return meta is not None and meta.is_parameter


class Parameter(metaclass=_ParameterMeta):
    """An array that a Module registers as a parameter (``requires_grad`` by default).

    As in PyTorch, ``Parameter(x)`` shares ``x``'s data. The result is an ordinary
    ``fnx.Array`` (so every fast path applies) marked as a parameter:
    ``isinstance(p, fnx.nn.Parameter)`` is True.

    >>> p = fnx.nn.Parameter(fnx.zeros(2)); isinstance(p, fnx.nn.Parameter), p.requires_grad
    (True, True)
    """

    def __new__(cls, data=None, requires_grad=True):
        if data is None:
            data = fnx.numpy.zeros((0,))
        if isinstance(data, fnx.Array) and type(data) is not fnx.Array:
            raise TypeError("Parameter: a traced value cannot become a parameter; parameters "
                            "are created outside fnx transforms")
        if type(data) is not fnx.Array:
            data = fnx.asarray(data)
        if requires_grad and data.dtype.kind not in "fc":
            raise TypeError(f"Parameter: only floating-point and complex arrays can require "
                            f"gradients, got dtype {data.dtype}; pass requires_grad=False")
        param = fnx.core.array.wrap(data._buf)
        param._autograd = AutogradMeta(bool(requires_grad), is_parameter=True)
        return param


def _is_array(x):
    return isinstance(x, fnx.Array)


# --- hooks ---------------------------------------------------------------------------------

_hook_ids = itertools.count()


class RemovableHandle:
    """Returned by the ``register_*_hook`` methods; ``.remove()`` unregisters the hook."""

    def __init__(self, hooks):
        self.hooks_ref, self.id = hooks, next(_hook_ids)

    def remove(self):
        self.hooks_ref.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


# --- Module --------------------------------------------------------------------------------

_INTERNAL = ("_parameters", "_buffers", "_non_persistent_buffers_set", "_modules",
             "_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks",
             "training")


class Module:
    """Base class of every layer and model (the ``torch.nn.Module`` contract).

    >>> class TwoLayer(fnx.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.w = fnx.nn.Parameter(fnx.ones(3, 2))
    ...     def forward(self, x):
    ...         return x @ self.w
    >>> m = TwoLayer(); m(fnx.ones(1, 3)).tolist(), list(m.state_dict())
    ([[3.0, 3.0]], ['w'])
    """

    def __init__(self, *args, **kwargs):
        if args or kwargs:
            raise TypeError(f"{type(self).__name__}.__init__() got unexpected arguments "
                            f"(Module.__init__ takes none)")
        host_state.created(self)
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", {})
        set_(self, "_buffers", {})
        set_(self, "_non_persistent_buffers_set", set())
        set_(self, "_modules", {})
        set_(self, "_forward_pre_hooks", {})
        set_(self, "_forward_hooks", {})
        set_(self, "_backward_pre_hooks", {})
        set_(self, "_backward_hooks", {})

    # transforms write back leaves that a call rebinds on a Module argument (see
    # fnx.jit's state outputs), through _fnx_set_leaf
    _fnx_stateful = True

    def _fnx_set_leaf(self, index, value):
        """Rebind the ``index``-th leaf in pytree order (parameters, buffers, submodules)."""
        for registry in (self._parameters, self._buffers):
            leaves = [k for k, v in registry.items() if v is not None]
            if index < len(leaves):
                registry[leaves[index]] = value
                return
            index -= len(leaves)
        for mod in self._modules.values():
            if mod is None:
                continue
            size = len(fnx.tree.leaves(mod))
            if index < size:
                mod._fnx_set_leaf(index, value)
                return
            index -= size
        raise IndexError("Module._fnx_set_leaf: leaf index out of range")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_pytree_node(cls, _flatten_module, _unflatten_module)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"Module [{type(self).__name__}] is missing the required "
                                  f"\"forward\" function")

    # --- calling -----------------------------------------------------------------------------
    def __call__(self, *args, **kwargs):
        if host_state.active() is not None:
            self._guard_structure()
        if not (self._forward_pre_hooks or self._forward_hooks or self._backward_hooks
                or self._backward_pre_hooks):
            return self.forward(*args, **kwargs)  # the fast path: no hooks
        for hook in list(self._forward_pre_hooks.values()):
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        backward_hook = None
        if self._backward_hooks or self._backward_pre_hooks:
            backward_hook = _BackwardHook(self)
            args = backward_hook.setup_inputs(args)
        out = self.forward(*args, **kwargs)
        for hook in list(self._forward_hooks.values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        if backward_hook is not None:
            out = backward_hook.setup_outputs(out)
        return out

    def _fnx_compile(self):
        """``fnx.compile(module)``: see ``CompiledModule``."""
        return CompiledModule(self)

    def _guard_structure(self):
        """Inside a compiled step: re-trace when this module's mode or what is registered on
        it changes (the program is specialised to both); arrays in plain attributes are
        state of the step (re-read at every call)."""
        self._fnx_track_state(recurse=False)
        name = type(self).__name__
        host_state.guard(f"{name}.training changed (train()/eval())", lambda: self.training)
        host_state.guard(f"a plain attribute of a {name} changed (a Python value the "
                         f"traced code may have read)", lambda: _plain_attributes(self))
        host_state.guard(
            f"the parameters, buffers or submodules registered on a {name} changed",
            lambda: (_registry_ids(self._parameters), _registry_ids(self._buffers),
                     tuple(map(id, self._modules.values()))))

    def _fnx_track_state(self, recurse=True):
        """Inside a compiled step: every plain attribute holding arrays (``self.mask = m``
        set before, a hidden state cached by an earlier call) becomes a rebound slot of the
        step's journal (fnx.core.state), so a new array there is read by the next call, no
        re-trace needed when only its values changed. The attributes and the lists and dicts
        there are watched: arrays the step puts into them (``self.stats["m"] = v``,
        ``self.__dict__[name] = v``) rebind the attribute."""
        for mod in (self.modules() if recurse else (self,)):
            if not host_state.tracks(mod):
                continue
            for name, value in list(mod.__dict__.items()):
                if name not in _REGISTRIES and host_state.array_leaves(value) is not None:
                    host_state.get(mod, ("attr", name))
            host_state.watch_object(mod, _REGISTRIES)

    def register_forward_pre_hook(self, hook):
        """``hook(module, args) -> None or new args`` runs before ``forward``."""
        handle = RemovableHandle(self._forward_pre_hooks)
        self._forward_pre_hooks[handle.id] = hook
        return handle

    def register_forward_hook(self, hook):
        """``hook(module, args, output) -> None or new output`` runs after ``forward``."""
        handle = RemovableHandle(self._forward_hooks)
        self._forward_hooks[handle.id] = hook
        return handle

    def register_full_backward_pre_hook(self, hook):
        """``hook(module, grad_output) -> None or new grad_output`` runs during ``backward()``
        when the gradients with respect to this module's outputs are computed; what it
        returns is what flows into the module (``grad_output``: one entry per output, ``None``
        for a non-array)."""
        handle = RemovableHandle(self._backward_pre_hooks)
        self._backward_pre_hooks[handle.id] = hook
        return handle

    def register_full_backward_hook(self, hook):
        """``hook(module, grad_input, grad_output) -> None or new grad_input`` runs during
        ``backward()`` when the gradients with respect to this module's positional inputs are
        computed (PyTorch's rules: if no input requires grad, it runs with the output
        gradients and ``grad_input`` all ``None``; if no output requires grad, it does not
        run). Entries are ``None`` for non-array arguments; keyword arguments are ignored.
        Runs on the eager tape; under ``fnx.grad``/``jit``/``vmap`` there is no backward
        pass to hook.

        >>> lin = fnx.nn.Linear(2, 1)
        >>> seen = []
        >>> h = lin.register_full_backward_hook(
        ...     lambda mod, gin, gout: seen.append((gin[0].shape, gout[0].shape)))
        >>> lin(fnx.ones(3, 2, requires_grad=True)).sum().backward(); seen
        [((3, 2), (3, 1))]
        """
        handle = RemovableHandle(self._backward_hooks)
        self._backward_hooks[handle.id] = hook
        return handle

    # --- registration ------------------------------------------------------------------------
    def __setattr__(self, name, value):
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self._forget(name)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            # a traced value may stand in for a parameter (a functional swap under a
            # transform); a concrete plain array may not, as in PyTorch
            if value is not None and (not _is_array(value) or type(value) is fnx.Array):
                raise TypeError(f"cannot assign '{type(value).__name__}' as parameter "
                                f"'{name}' (fnx.nn.Parameter or None expected)")
            host_state.set(params, ("item", name), value)
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self._forget(name)
            self._modules[name] = value
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign '{type(value).__name__}' as child module "
                                f"'{name}' (fnx.nn.Module or None expected)")
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not _is_array(value):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                f"(fnx Array or None expected)")
            host_state.set(self._buffers, ("item", name), value)
        elif host_state.tracks(self) and not _is_descriptor(self, name) and (
                host_state.array_leaves(value) is not None
                or host_state.array_leaves(self.__dict__.get(name)) is not None):
            # arrays set as a plain attribute inside a compiled step (a cached hidden state,
            # WeightDrop's weight): state of the step, rebound after every call
            host_state.set(self, ("attr", name), value)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name):
        self.__dict__.pop(name, None)
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __getattr__(self, name):
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            reg = d.get(registry)
            if reg is not None and name in reg:
                return reg[name]
        if not name.startswith("__") and host_state.tracks(self):
            # the traced code went the attribute-absent way (getattr with a default,
            # hasattr): once it is set, re-trace (an array set there is rebound state, which
            # the plain-attribute guard leaves to the journal, so nothing else would see it)
            host_state.guard(f"{type(self).__name__}.{name} was absent when traced and is "
                             f"now set", lambda: _has_attribute(self, name))
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        if name in self._parameters or name in self._buffers or name in self._modules:
            self._forget(name)
        elif host_state.tracks(self) and not _is_descriptor(self, name) and \
                host_state.array_leaves(self.__dict__.get(name)) is not None:
            host_state.set(self, ("attr", name), host_state.MISSING)
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self._parameters) | set(self._buffers)
                      | set(self._modules))

    def _check_name(self, name, what):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {what} before Module.__init__() call")
        if not isinstance(name, str):
            raise TypeError(f"{what} name should be a string, got {type(name).__name__}")
        if "." in name or name == "":
            raise KeyError(f"{what} name can't contain \".\" or be empty, got {name!r}")
        if hasattr(self, name) and name not in self._parameters and name not in self._buffers \
                and name not in self._modules:
            raise KeyError(f"attribute '{name}' already exists")

    def register_parameter(self, name, param):
        """Add a parameter (a ``Parameter`` or ``None``) under ``name``."""
        self._check_name(name, "parameter")
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (fnx.nn.Parameter or None required)")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer (state that is not a parameter, e.g. BatchNorm's running mean).
        Non-persistent buffers are left out of ``state_dict``."""
        self._check_name(name, "buffer")
        if tensor is not None and not _is_array(tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (fnx Array or None required)")
        self._forget(name)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent_buffers_set.add(name)

    def add_module(self, name, module):
        """Add a child module under ``name`` (``None`` allowed)."""
        self._check_name(name, "module")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._forget(name)
        self._modules[name] = module

    register_module = add_module

    def get_submodule(self, target):
        """The submodule at dotted path ``target`` (``''`` is this module)."""
        mod = self
        for item in target.split(".") if target else []:
            if item not in mod._modules or mod._modules[item] is None:
                raise AttributeError(f"{type(mod).__name__} has no submodule `{item}`")
            mod = mod._modules[item]
        return mod

    def get_parameter(self, target):
        """The parameter at dotted path ``target``."""
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._parameters:
            raise AttributeError(f"{type(mod).__name__} has no parameter `{name}`")
        return mod._parameters[name]

    def get_buffer(self, target):
        """The buffer at dotted path ``target``.

        >>> fnx.nn.BatchNorm1d(2).get_buffer("running_var").tolist()
        [1.0, 1.0]
        """
        path, _, name = target.rpartition(".")
        mod = self.get_submodule(path)
        if name not in mod._buffers:
            raise AttributeError(f"{type(mod).__name__} has no buffer `{name}`")
        return mod._buffers[name]

    # --- iteration ---------------------------------------------------------------------------
    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """``(dotted name, module)`` for this module and every descendant, each once."""
        memo = set() if memo is None else memo
        if remove_duplicate and id(self) in memo:
            return
        memo.add(id(self))
        yield prefix, self
        for name, mod in self._modules.items():
            if mod is None:
                continue
            yield from mod.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                         remove_duplicate)

    def modules(self):
        for _, mod in self.named_modules():
            yield mod

    def named_children(self):
        seen = set()
        for name, mod in self._modules.items():
            if mod is not None and id(mod) not in seen:
                seen.add(id(mod))
                yield name, mod

    def children(self):
        for _, mod in self.named_children():
            yield mod

    def _named_members(self, registry, prefix, recurse, remove_duplicate=True):
        seen = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, value in getattr(mod, registry).items():
                if value is None or (remove_duplicate and id(value) in seen):
                    continue
                seen.add(id(value))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), value

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """``(dotted name, parameter)`` in registration order; shared parameters once."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """The parameters, as PyTorch: ``sum(p.numel() for p in model.parameters())``."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    # --- state dicts -------------------------------------------------------------------------
    def state_dict(self, destination=None, prefix="", keep_vars=False):
        """Parameters and persistent buffers by dotted name (PyTorch's keys: ``0.weight``,
        ``layers.1.bias``), in registration order. Values are detached arrays (the same
        buffers; ``keep_vars=True`` returns the parameters themselves)."""
        out = collections.OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, mod in self._modules.items():
            if mod is not None:
                mod.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def load_state_dict(self, state_dict, strict=True, assign=False):
        """Copy values from ``state_dict`` into this module's parameters and buffers, in
        place (every holder, an optimizer included, sees them). ``strict``: missing or
        unexpected keys are an error listing them; a shape mismatch is always an error.
        Returns ``(missing_keys, unexpected_keys)``."""
        expected = {}
        for prefix, mod in self.named_modules(remove_duplicate=False):
            dot = prefix + "." if prefix else ""
            for name, p in mod._parameters.items():
                if p is not None:
                    expected[dot + name] = (mod, "_parameters", name)
            for name, b in mod._buffers.items():
                if b is not None and name not in mod._non_persistent_buffers_set:
                    expected[dot + name] = (mod, "_buffers", name)
        missing = [k for k in expected if k not in state_dict]
        unexpected = [k for k in state_dict if k not in expected]
        mismatched = []
        for key, (mod, registry, name) in expected.items():
            if key not in state_dict:
                continue
            target, value = getattr(mod, registry)[name], state_dict[key]
            shape = tuple(np.shape(value))
            if shape != tuple(target.shape):
                mismatched.append(f"size mismatch for {key}: copying a param with shape "
                                  f"{shape} from checkpoint, the shape in current model is "
                                  f"{tuple(target.shape)}.")
        errors = list(mismatched)
        if strict and unexpected:
            errors.insert(0, "Unexpected key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if strict and missing:
            errors.insert(0, "Missing key(s) in state_dict: "
                          + ", ".join(f'"{k}"' for k in missing) + ".")
        if errors:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(errors))
        for key, (mod, registry, name) in expected.items():
            if key in state_dict:
                _load_value(getattr(mod, registry), name, state_dict[key], assign)
        return _IncompatibleKeys(missing, unexpected)

    # --- modes, devices, dtypes --------------------------------------------------------------
    def train(self, mode=True):
        """Set training mode here and in every descendant; returns ``self``."""
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for mod in self.modules():
            object.__setattr__(mod, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Freeze (``False``) or unfreeze every parameter; returns ``self``."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset every parameter's ``.grad`` (to ``None``, or to zeros)."""
        for p in self.parameters():
            if p.grad is not None:
                p.grad = None if set_to_none else fnx.numpy.zeros_like(p.grad)

    def apply(self, fn):
        """Call ``fn`` on every submodule (children first) and on ``self``; returns ``self``."""
        for mod in self.children():
            mod.apply(fn)
        fn(self)
        return self

    def _apply_to_arrays(self, convert):
        """Replace every parameter's and buffer's data by ``convert(array)``, in place, so
        references held elsewhere (an optimizer) stay valid, as PyTorch's ``_apply``."""
        for mod in self.modules():
            for registry in (mod._parameters, mod._buffers):
                for name, value in registry.items():
                    if value is None:
                        continue
                    new = convert(value)
                    if new is value:
                        continue
                    value._set_buffer(new._buf)
                    if value.grad is not None:
                        value._autograd.grad = convert(value.grad)
        return self

    def to(self, *args, **kwargs):
        """``to(device)``, ``to(dtype)``, ``to(device, dtype)``: floating-point parameters and
        buffers take the dtype; all move to the device. Returns ``self``."""
        device, dtype = _parse_to(args, kwargs)

        def convert(a):
            out = a
            if dtype is not None and a.dtype.kind in "fc":
                out = out.astype(dtype)
            if device is not None:
                out = out.to(device)
            return out

        return self._apply_to_arrays(convert)

    def cpu(self):
        return self.to("cpu")

    def cuda(self, device=None):
        return self.to("cuda" if device is None else
                       device if not isinstance(device, int) else f"cuda:{device}")

    def float(self):
        return self.to(fnx.float32)

    def double(self):
        return self.to(fnx.float64)

    def half(self):
        return self.to(fnx.float16)

    def type(self, dst_type):
        return self._apply_to_arrays(lambda a: a.astype(dst_type))

    # --- printing ----------------------------------------------------------------------------
    def extra_repr(self):
        """The configuration shown inside this module's repr line (override in layers)."""
        return ""

    def _get_name(self):
        return type(self).__name__

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + repr(mod).replace("\n", "\n  ")
                       for name, mod in self._modules.items()]
        if not child_lines and len(extra_lines) <= 1:
            return f"{self._get_name()}({extra})"
        return self._get_name() + "(\n  " + "\n  ".join(extra_lines + child_lines) + "\n)"

    # copies (as torch: copy.deepcopy works; arrays are copied buffer by buffer)
    def __deepcopy__(self, memo):
        import copy

        new = object.__new__(type(self))
        host_state.created(new)
        memo[id(self)] = new
        for k, v in self.__dict__.items():
            object.__setattr__(new, k, copy.deepcopy(v, memo))
        return new


class _BackwardHook:
    """One call's full backward hooks (torch's ``BackwardHook``): the inputs and outputs pass
    through tape identities (``hooked_identity``) whose grouped gradient hooks capture
    ``grad_output`` (running the pre-hooks on it) and then call the user hooks with
    ``grad_input``."""

    def __init__(self, module):
        self.module = module
        self.grad_outputs = None
        self.inputs_hooked = False

    def setup_inputs(self, args):
        new = tuple(tape.hooked_identity(args, self._on_inputs))
        self.n_inputs = len(args)
        self.inputs_hooked = any(a is not b for a, b in zip(args, new, strict=True))
        # as torch, an array argument that gets no gradient reports zeros, a non-array None
        self.zeros = [(i, a.shape, a.dtype) for i, a in enumerate(args) if _is_array(a)]
        return new

    def setup_outputs(self, out):
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        new = tuple(tape.hooked_identity(outs, self._on_outputs))
        self.n_outputs = len(outs)
        return new[0] if single else new

    def _on_outputs(self, grad_outputs):
        module = self.module
        for hook in list(module._backward_pre_hooks.values()):
            result = hook(module, grad_outputs)
            if result is not None:
                result = result if isinstance(result, tuple) else (result,)
                if len(result) != len(grad_outputs):
                    raise RuntimeError(f"Backward pre hook returned an invalid number of "
                                       f"grad_output, got {len(result)}, but expected "
                                       f"{len(grad_outputs)}")
                grad_outputs = result
        if self.inputs_hooked:
            self.grad_outputs = grad_outputs
        elif module._backward_hooks:
            warnings.warn("Full backward hook is firing when gradients are computed with "
                          "respect to module outputs since no inputs require gradients",
                          stacklevel=2)
            grad_inputs = (None,) * self.n_inputs
            for hook in list(module._backward_hooks.values()):
                result = hook(module, grad_inputs, grad_outputs)
                if result is not None and any(g is not None for g in result):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
        return grad_outputs

    def _on_inputs(self, grad_inputs):
        if self.grad_outputs is None:
            # the gradient reached the inputs without passing through the outputs (a
            # second-order pass through the backward's own graph): nothing to report
            return None
        module = self.module
        grad_inputs = list(grad_inputs)
        fillers = set()
        for i, shape, dtype in self.zeros:
            if grad_inputs[i] is None:
                grad_inputs[i] = fnx.numpy.zeros(shape, dtype)
                fillers.add(id(grad_inputs[i]))
        grad_inputs = tuple(grad_inputs)
        for hook in list(module._backward_hooks.values()):
            result = hook(module, grad_inputs, self.grad_outputs)
            if result is None:
                continue
            result = result if isinstance(result, tuple) else (result,)
            if len(result) != len(grad_inputs):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, "
                                   f"got {len(result)}, but expected {len(grad_inputs)}")
            grad_inputs = result
        self.grad_outputs = None
        # the zeros filled in above need no backward pass of their own
        return tuple(None if id(g) in fillers else g for g in grad_inputs)


class _IncompatibleKeys(collections.namedtuple("IncompatibleKeys",
                                               ["missing_keys", "unexpected_keys"])):
    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()

    __str__ = __repr__


def _load_value(registry, name, value, assign):
    target = registry[name]
    value = value if type(value) is fnx.Array else fnx.asarray(np.asarray(value))
    if assign:
        if isinstance(target, Parameter) and not isinstance(value, Parameter):
            value = Parameter(value, requires_grad=target.requires_grad)
        registry[name] = value
        return
    value = value.astype(target.dtype).to(target.device)
    # a copy: the module must not share a buffer with the caller's state dict
    target._set_buffer(value._buf.copy())


def _parse_to(args, kwargs):
    device = kwargs.pop("device", None)
    dtype = kwargs.pop("dtype", None)
    kwargs.pop("non_blocking", None)
    if kwargs:
        raise TypeError(f"to() got unexpected keyword arguments {sorted(kwargs)}")
    for a in args:
        if isinstance(a, (str, fnx.device)):
            device = a
        elif isinstance(a, (int, np.integer)) and not isinstance(a, bool):
            device = fnx.device("cuda", int(a))  # ``model.to(rank)``: a CUDA index, as Array.to
        elif isinstance(a, fnx.Array):
            device, dtype = a.device, a.dtype
        else:
            dtype = a
    return device, (None if dtype is None else fnx.core.dtypes.canonicalize(dtype))


# --- modules as pytrees --------------------------------------------------------------------


class _ModuleDef:
    """The static part of a Module in a treedef: its class, its registry keys and every other
    attribute. Compared by value where values compare cleanly, else by identity, so two
    identically configured models have equal treedefs (vmap over a stacked ensemble)."""

    __slots__ = ("cls", "keys", "static")

    def __init__(self, cls, keys, static):
        self.cls, self.keys, self.static = cls, keys, static

    def __eq__(self, other):
        if not isinstance(other, _ModuleDef) or self.cls is not other.cls or \
                self.keys != other.keys or self.static.keys() != other.static.keys():
            return False
        return all(_static_equal(v, other.static[k]) for k, v in self.static.items())

    def __hash__(self):
        return hash((self.cls, self.keys, self.static.get("training")))


def _static_equal(a, b):
    if a is b:
        return True
    if host_state.array_leaves(a) is not None:
        # arrays in plain attributes are re-read by a compiled step (Module._fnx_track_state):
        # a new array of the same shape and dtype is the same structure
        return host_state.same_structure(a, b)
    if type(a) is not type(b) or isinstance(a, (fnx.Array, np.ndarray)):
        return False
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values without a clean ==: identity decided above
        return False


def _flatten_module(mod):
    d = mod.__dict__
    params, buffers, modules = d["_parameters"], d["_buffers"], d["_modules"]
    static = {k: v for k, v in d.items()
              if k not in ("_parameters", "_buffers", "_modules")}
    keys = (tuple(params), tuple(buffers), tuple(modules))
    children = [*params.values(), *buffers.values(), *modules.values()]
    return children, _ModuleDef(type(mod), keys, static)


def _unflatten_module(moddef, children):
    mod = object.__new__(moddef.cls)
    host_state.created(mod)
    d = mod.__dict__
    d.update(moddef.static)
    pkeys, bkeys, mkeys = moddef.keys
    it = iter(children)
    d["_parameters"] = {k: next(it) for k in pkeys}
    d["_buffers"] = {k: next(it) for k in bkeys}
    d["_modules"] = {k: next(it) for k in mkeys}
    return mod


register_pytree_node(Module, _flatten_module, _unflatten_module)


_PLAIN = (bool, int, float, str, type(None))


def _is_descriptor(module, name):
    """Whether ``module``'s class defines ``name`` as a data descriptor (a property with a
    setter): assignment runs its code, which is not a plain attribute."""
    return hasattr(type(getattr(type(module), name, None)), "__set__")
_REGISTRIES = ("_parameters", "_buffers", "_modules")


def _plain_attributes(module):
    """A module's attributes holding Python numbers, strings and flat tuples of them: the
    configuration a traced forward reads and bakes in."""
    return tuple((k, v) for k, v in module.__dict__.items()
                 if type(v) in _PLAIN or (type(v) is tuple and all(type(x) in _PLAIN
                                                                    for x in v)))


def _has_attribute(module, name):
    """Whether ``module.name`` exists as an instance attribute or a registered entry."""
    d = module.__dict__
    return name in d or any(name in d.get(r, ()) for r in _REGISTRIES)


class _Swaps(threading.local):
    """The registry entries ``functional_call`` has swapped in this thread: ``id(registry)
    -> {name: the module's own value}``."""

    def __init__(self):
        self.active = {}


_swaps = _Swaps()


def _registry_ids(registry):
    """Identities of a registry's values, the module's own ones where ``functional_call`` has
    swapped others in (a compiled function calling it must not re-trace each call)."""
    swapped = _swaps.active.get(id(registry))
    if not swapped:
        return tuple(map(id, registry.values()))
    return tuple(id(swapped.get(k, v)) for k, v in registry.items())


class CompiledModule(Module):
    """What ``fnx.compile(module)`` returns (torch's ``OptimizedModule``): calling it runs the
    original module's forward as one compiled program. The original is ``_orig_mod``; its
    parameters and buffers are this module's (an optimizer built from either trains both),
    BatchNorm statistics are written back after each call, and ``loss.backward()`` after a
    compiled forward works (the call is one node of the eager tape). Unlike torch,
    ``state_dict()`` keys are the original's (no ``_orig_mod.`` prefix), so checkpoints load
    into the uncompiled model.

    >>> model = fnx.nn.Sequential(fnx.nn.Linear(3, 2), fnx.nn.ReLU())
    >>> fast = fnx.compile(model)
    >>> fast(fnx.ones(1, 3)).shape, list(fast.state_dict()) == list(model.state_dict())
    ((1, 2), True)
    """

    def __init__(self, module):
        super().__init__()
        self._orig_mod = module
        object.__setattr__(self, "_compiled_call", fnx.jit(self._call_original))

    def _call_original(self, *args, **kwargs):
        return self._orig_mod(*args, **kwargs)

    def forward(self, *args, **kwargs):
        return self._compiled_call(*args, **kwargs)

    def cache_info(self):
        """The compiled forward's ``fnx.jit`` cache statistics (traces and why)."""
        return self._compiled_call.cache_info()

    def state_dict(self, *args, **kwargs):
        return self._orig_mod.state_dict(*args, **kwargs)

    def load_state_dict(self, state_dict, strict=True, assign=False):
        return self._orig_mod.load_state_dict(state_dict, strict=strict, assign=assign)

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["_modules"]["_orig_mod"], name)

    def __repr__(self):
        return f"CompiledModule({self._orig_mod!r})"


# --- functional_call -----------------------------------------------------------------------


def functional_call(module, parameters_and_buffers, args=(), kwargs=None, *, strict=False):
    """Call ``module`` with some parameters and buffers replaced by the arrays in the dict
    ``parameters_and_buffers`` (dotted names, as ``state_dict``), as ``torch.func``'s. The
    module is restored afterwards; use it under ``fnx.grad``/``vmap``/``jit`` to
    differentiate or batch with respect to those values.

    >>> class Scale(fnx.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.s = fnx.nn.Parameter(fnx.ones(()))
    ...     def forward(self, x):
    ...         return x * self.s
    >>> m = Scale()
    >>> fnx.grad(lambda s: fnx.nn.functional_call(m, {"s": s}, (fnx.ones(2),)).sum())(
    ...     fnx.asarray(3.0)).item()
    2.0
    """
    if isinstance(parameters_and_buffers, (list, tuple)):
        merged = {}
        for d in parameters_and_buffers:
            dup = merged.keys() & d.keys()
            if dup:
                raise ValueError(f"functional_call: {sorted(dup)} appear in more than one "
                                 f"dictionary")
            merged.update(d)
        parameters_and_buffers = merged
    args = args if isinstance(args, tuple) else (args,)
    slots = {}
    for prefix, mod in module.named_modules(remove_duplicate=False):
        dot = prefix + "." if prefix else ""
        for registry in ("_parameters", "_buffers"):
            for name in getattr(mod, registry):
                slots[dot + name] = (getattr(mod, registry), name)
    unknown = [k for k in parameters_and_buffers if k not in slots]
    if unknown:
        raise KeyError(f"functional_call: unexpected key(s) {unknown} for "
                       f"{type(module).__name__}")
    if strict:
        missing = [k for k in slots if k not in parameters_and_buffers]
        if missing:
            raise RuntimeError(f"functional_call(strict=True): missing key(s) {missing}")
    saved = []
    try:
        for key, value in parameters_and_buffers.items():
            registry, name = slots[key]
            saved.append((registry, name, registry[name]))
            owned = _swaps.active.setdefault(id(registry), {})
            saved_own = name not in owned
            if saved_own:
                owned[name] = registry[name]
            saved[-1] += (saved_own,)
            registry[name] = value
        return module(*args, **(kwargs or {}))
    finally:
        for registry, name, old, saved_own in reversed(saved):
            registry[name] = old
            if saved_own:
                owned = _swaps.active[id(registry)]
                del owned[name]
                if not owned:
                    del _swaps.active[id(registry)]
