"""Containers and shape modules: Sequential, ModuleList, ModuleDict, ParameterList,
ParameterDict, Identity, Flatten, Unflatten (``torch.nn``'s, with the same indexing rules)."""

import collections
import operator

import fnx

from .module import Module, Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Identity", "Flatten", "Unflatten"]


def _index(idx, n, what):
    idx = operator.index(idx)
    if not -n <= idx < n:
        raise IndexError(f"index {idx} is out of range for {what} of length {n}")
    return idx % n


def _renumber(container, modules):
    container._modules.clear()
    for i, m in enumerate(modules):
        container.add_module(str(i), m)


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: modules registered under "0", "1", ..."""

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, module):
        items = list(self._modules.values())
        items.insert(index, module)
        _renumber(self, items)
        return self


class Sequential(_ModuleSequence):
    """Modules applied in order; indexing gives a module, slicing a new Sequential.

    >>> net = fnx.nn.Sequential(fnx.nn.Flatten(), fnx.nn.Identity())
    >>> net(fnx.ones(2, 3, 4)).shape, len(net), type(net[0]).__name__
    ((2, 12), 2, 'Flatten')
    """

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], collections.OrderedDict):
            for name, mod in args[0].items():
                self.add_module(name, mod)
        else:
            for i, mod in enumerate(args):
                self.add_module(str(i), mod)

    def forward(self, input):
        for mod in self._modules.values():
            input = mod(input)
        return input

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(collections.OrderedDict(list(self._modules.items())[idx]))
        return list(self._modules.values())[_index(idx, len(self), "Sequential")]

    def __setitem__(self, idx, module):
        key = list(self._modules)[_index(idx, len(self), "Sequential")]
        self.add_module(key, module)

    def __delitem__(self, idx):
        keys = list(self._modules)
        doomed = keys[idx] if isinstance(idx, slice) else [keys[_index(idx, len(keys),
                                                                        "Sequential")]]
        for key in doomed:
            del self._modules[key]
        if all(k.isdigit() for k in self._modules):  # keep the numbering contiguous, as torch
            _renumber(self, list(self._modules.values()))

    def __add__(self, other):
        return Sequential(*self, *other)


class ModuleList(_ModuleSequence):
    """A list of modules, registered so their parameters are found.

    >>> layers = fnx.nn.ModuleList([fnx.nn.Identity() for _ in range(3)]); len(layers)
    3
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self._modules.values())[idx])
        return self._modules[str(_index(idx, len(self), "ModuleList"))]

    def __setitem__(self, idx, module):
        self.add_module(str(_index(idx, len(self), "ModuleList")), module)

    def __delitem__(self, idx):
        items = list(self._modules.values())
        del items[idx if isinstance(idx, slice) else _index(idx, len(items), "ModuleList")]
        _renumber(self, items)

    def __iadd__(self, modules):
        return self.extend(modules)

    def __add__(self, other):
        return ModuleList([*self, *other])

    def __repr__(self):
        # as torch: runs of identical modules print once, "(0-2): 3 x Linear(...)"
        runs = []
        for i, mod in enumerate(self):
            text = repr(mod)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        if not runs:
            return self._get_name() + "()"
        lines = [(f"({a}): " if a == b else f"({a}-{b}): {b - a + 1} x ")
                 + text.replace("\n", "\n  ") for a, b, text in runs]
        return self._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward(); iterate over its modules")


class _RegistryDict(Module):
    """The dict protocol over one of a Module's registries (``_registry`` names it); the
    subclass says how a value is inserted (``__setitem__``)."""

    _registry = "_modules"

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.update(values)

    def _items(self):
        return getattr(self, self._registry)

    def __getitem__(self, key):
        return self._items()[key]

    def __delitem__(self, key):
        delattr(self, key)

    def __len__(self):
        return len(self._items())

    def __iter__(self):
        return iter(self._items())

    def __contains__(self, key):
        return key in self._items()

    def keys(self):
        return self._items().keys()

    def items(self):
        return self._items().items()

    def values(self):
        return self._items().values()

    def pop(self, key):
        value = self[key]
        del self[key]
        return value

    def clear(self):
        for key in list(self._items()):
            del self[key]

    def update(self, values):
        items = values.items() if hasattr(values, "items") else values
        for key, value in items:
            self[key] = value

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward(); index it by key")


class ModuleDict(_RegistryDict):
    """A dict of modules (insertion-ordered).

    >>> heads = fnx.nn.ModuleDict({"a": fnx.nn.Identity()}); list(heads.keys())
    ['a']
    """

    def __setitem__(self, key, module):
        self.add_module(key, module)


def _as_parameter(value):
    if value is None or isinstance(value, (Parameter, Module)):
        return value
    if isinstance(value, fnx.Array):
        return Parameter(value)
    return value


class ParameterList(Module):
    """A list of parameters (arrays become ``Parameter``s on insertion).

    >>> ps = fnx.nn.ParameterList([fnx.zeros(2), fnx.ones(3)])
    >>> [p.shape for p in ps], sum(p.numel() for p in ps)
    ([(2,), (3,)], 5)
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def __getitem__(self, idx):
        if isinstance(idx, slice):
            return type(self)(list(self)[idx])
        return getattr(self, str(_index(idx, len(self), "ParameterList")))

    def __setitem__(self, idx, value):
        setattr(self, str(_index(idx, len(self), "ParameterList")), _as_parameter(value))

    def __len__(self):
        return len(self._parameters) + len(self._buffers) + len(self._modules)

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __iadd__(self, values):
        return self.extend(values)

    def append(self, value):
        i = len(self)
        value = _as_parameter(value)
        if isinstance(value, Parameter) or value is None:
            self.register_parameter(str(i), value)
        else:
            setattr(self, str(i), value)
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def extra_repr(self):
        return _values_repr(enumerate(self))

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ParameterList has no forward(); iterate over it")


def _values_repr(items):
    """torch's ParameterList/ParameterDict lines: ``  (k): Parameter containing: [float32 of
    size 2x3]`` (the device only when not the CPU)."""
    lines = []
    for k, p in items:
        if isinstance(p, fnx.Array):
            device = "" if p.device.type == "cpu" else f" ({p.device})"
            kind = "Parameter" if isinstance(p, Parameter) else "Tensor"
            size = "x".join(str(n) for n in p.shape)
            lines.append(f"  ({k}): {kind} containing: [{p.dtype} of size {size}{device}]")
        else:
            lines.append(f"  ({k}): Object of type: {type(p).__name__}")
    return "\n".join(lines)


class ParameterDict(_RegistryDict):
    """A dict of parameters (arrays become ``Parameter``s on insertion).

    >>> pd = fnx.nn.ParameterDict({"scale": fnx.ones(1)}); list(pd), pd["scale"].requires_grad
    (['scale'], True)
    """

    _registry = "_parameters"

    def __setitem__(self, key, value):
        value = _as_parameter(value)
        if isinstance(value, Parameter) or value is None:
            self.register_parameter(key, value)
        else:
            setattr(self, key, value)

    def extra_repr(self):
        return _values_repr(self.items())


class Identity(Module):
    """Returns its input (arguments to the constructor are accepted and ignored, as torch).

    >>> fnx.nn.Identity(54, unused="x")(fnx.ones(2)).tolist()
    [1.0, 1.0]
    """

    def __init__(self, *args, **kwargs):
        del args, kwargs  # unused, as torch
        super().__init__()

    def forward(self, input):
        return input


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` (default: all but the batch dim).

    >>> fnx.nn.Flatten()(fnx.ones(2, 3, 4)).shape
    (2, 12)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, input):
        return fnx.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Expands dim ``dim`` into ``unflattened_size``.

    >>> fnx.nn.Unflatten(1, (3, 4))(fnx.ones(2, 12)).shape
    (2, 3, 4)
    """

    def __init__(self, dim, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, input):
        dim = self.dim % input.ndim
        shape = input.shape[:dim] + self.unflattened_size + input.shape[dim + 1:]
        return input.reshape(shape)

    def extra_repr(self):
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
