"""The PyTorch-style top-level functions (``fnx.tensor``, ``fnx.zeros(2, 3)``, ``fnx.cat``...).

Code written for ``torch`` runs with ``torch`` renamed to ``fnx``. Creation functions take
torch's signatures (``fnx.zeros(3, 4)`` and ``fnx.zeros((3, 4))``, ``dtype=``, ``device=``);
functions that are also array methods (``fnx.sum(x, dim=0)``) call the method of the same
name in ``fnx.numpy._methods``, so both forms share one definition. Random functions draw
from a global :class:`Generator`, a thin stateful layer over the explicit keys of
``fnx.random``. Differences from PyTorch are listed in docs/from-pytorch.md.
"""

import builtins
import math
import operator
import os
import types

import numpy as np

from . import numpy as fnp
from .core import devices, dtypes
from .core.array import Array, asarray_buffer, wrap
from .core.errors import DTypeError
from .numpy import _methods as _m
from .numpy._core import is_array, to_array

# This module defines fnx.max, fnx.int, ...: the builtin int is used as _int.
_int = builtins.int

Tensor = Array
Size = _m.Size
return_types = types.SimpleNamespace(max=_m.MaxResult, min=_m.MinResult)


def is_tensor(obj):
    """True for fnx arrays (and tracers), as ``torch.is_tensor``."""
    return is_array(obj)


def get_default_dtype():
    """The default floating dtype (float32 unless changed by ``fnx.set_default_dtype``)."""
    return dtypes.default_float()


def _shape(op, shape, size):
    if size is not None:
        if shape:
            raise TypeError(f"{op}: pass the shape positionally or as size=, not both")
        shape = (size,)
    return _m._shape_args(op, shape)


def _finish(out, device, requires_grad):
    if device is not None:
        out = _m._put(out, device, "device")
    if requires_grad:
        out = _m._requires_grad_(out)
    return out


# --- creation ---------------------------------------------------------------------------------


def tensor(data, dtype=None, device=None, requires_grad=False):
    """A new array holding a copy of ``data`` (nested lists, scalars, NumPy or fnx arrays).
    Python floats give float32 and ints int64, as torch.

    >>> fnx.tensor([[1, 2], [3, 4]]).dtype
    dtype('int64')
    """
    out = fnp.asarray(data, dtype=dtype, copy=True)
    return _finish(out, device, requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Like :func:`tensor` but without a copy when ``data`` already fits (as torch)."""
    return fnp.asarray(data, dtype=dtype, device=device)


def from_numpy(ndarray):
    """An array sharing memory with the NumPy array ``ndarray`` (no copy), as torch.

    >>> a = np.zeros(3); fnx.from_numpy(a).dtype
    dtype('float64')
    """
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}; "
                        f"use fnx.tensor(data) for other inputs")
    return wrap(asarray_buffer(ndarray))


def _filled(op, shape, size, value, dtype, device, requires_grad):
    dtype = dtypes.default_float() if dtype is None else dtype
    out = fnp.full(_shape(op, shape, size), value, dtype=dtype)
    return _finish(out, device, requires_grad)


def zeros(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Zeros of the given shape (default float32): ``fnx.zeros(3, 4)`` or ``fnx.zeros((3, 4))``.

    >>> fnx.zeros(2, 3).shape
    (2, 3)
    """
    return _filled("zeros", shape, size, 0, dtype, device, requires_grad)


def ones(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Ones of the given shape (default float32): ``fnx.ones(2, 3)``."""
    return _filled("ones", shape, size, 1, dtype, device, requires_grad)


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Zeros: fnx arrays are values, so there is no uninitialized memory to hand out."""
    return _filled("empty", shape, size, 0, dtype, device, requires_grad)


def full(size, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``size`` filled with ``fill_value``; the dtype follows the value (float32 for floats,
    int64 for ints, bool for bools) unless given.

    >>> fnx.full((2,), 7).tolist()
    [7, 7]
    """
    out = fnp.full(_m._shape_args("full", (size,)), fill_value, dtype=dtype)
    return _finish(out, device, requires_grad)


def arange(start=0, end=None, step=1, *, dtype=None, device=None, requires_grad=False):
    """``[start, end)`` in steps of ``step``; int64 for int arguments, else float32.

    >>> fnx.arange(3).tolist()
    [0, 1, 2]
    """
    out = fnp.arange(start, end, step, dtype=dtype)
    return _finish(out, device, requires_grad)


def linspace(start, end, steps, *, dtype=None, device=None, requires_grad=False):
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive."""
    out = fnp.linspace(start, end, steps, dtype=dtype)
    return _finish(out, device, requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    """The ``n x m`` identity matrix (``m`` defaults to ``n``)."""
    return _finish(fnp.eye(n, m, dtype=dtype), device, requires_grad)


def _like(op, input, fill, dtype, device, requires_grad):
    input = to_array(input)
    dtype = input.dtype if dtype is None else dtype
    out = fnp.full(input.shape, fill, dtype=dtype)
    device = input.device if device is None else device
    return _finish(out, device, requires_grad)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    """Zeros with ``input``'s shape, dtype and device."""
    return _like("zeros_like", input, 0, dtype, device, requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    """Ones with ``input``'s shape, dtype and device."""
    return _like("ones_like", input, 1, dtype, device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    return _like("empty_like", input, 0, dtype, device, requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``fill_value`` with ``input``'s shape, dtype and device."""
    return _like("full_like", input, fill_value, dtype, device, requires_grad)


# --- the global generator -------------------------------------------------------------------


def _random():
    from . import random

    return random


class Generator:
    """A stateful source of ``fnx.random`` keys, as ``torch.Generator``: every draw splits a
    fresh subkey off the generator's key, so the sequence is fixed by ``manual_seed``.

    >>> g = fnx.Generator().manual_seed(0)
    >>> fnx.rand(2, generator=g).shape
    (2,)
    """

    # torch's default seed, so a fresh process draws the same numbers every run
    DEFAULT_SEED = 67280421310721

    def __init__(self, device="cpu"):
        self.device = devices.as_device(device)
        self.manual_seed(self.DEFAULT_SEED)

    def manual_seed(self, seed):
        """Reset the generator to the key of ``seed``; returns the generator."""
        self._seed = operator.index(seed)
        self._key = _random().key(self._seed)
        return self

    def seed(self):
        """Reseed from the operating system's entropy; returns the new seed."""
        new = _int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(new)
        return new

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The current key (a uint32 array of shape ``(2,)``)."""
        return self._key

    def set_state(self, state):
        self._key = to_array(state).astype(dtypes.uint32)
        return self

    def next_key(self):
        """A new subkey; the generator advances."""
        self._key, sub = _random().split(self._key)
        return sub


default_generator = Generator()


def manual_seed(seed):
    """Seed the global generator (``fnx.rand``, ``fnx.randn``, ``x.uniform_()``...).

    >>> _ = fnx.manual_seed(0); a = fnx.rand(2); _ = fnx.manual_seed(0)
    >>> bool((fnx.rand(2) == a).all())
    True
    """
    return default_generator.manual_seed(seed)


def seed():
    return default_generator.seed()


def initial_seed():
    return default_generator.initial_seed()


def get_rng_state():
    return default_generator.get_state()


def set_rng_state(new_state):
    default_generator.set_state(new_state)


def _float_dtype(op, dtype):
    dtype = dtypes.default_float() if dtype is None else dtypes.canonicalize(dtype)
    if dtype.kind != "f":
        raise DTypeError(f"{op}: random floats need a floating dtype, got {dtype}; draw floats "
                         f"and convert, or use fnx.randint for integers")
    return dtype


def _draw(op, generator, shape, dtype, **kwargs):
    """Uniform (``minval``/``maxval`` kwargs) or, with no kwargs from normal_, normal samples."""
    key = (generator or default_generator).next_key()
    dtype = _float_dtype(op, dtype)
    if op in ("normal_", "randn"):
        return _random().normal(key, shape, dtype=dtype)
    return _random().uniform(key, shape, dtype=dtype, **kwargs)


def rand(*shape, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform samples in ``[0, 1)``: ``fnx.rand(2, 3)``.

    >>> fnx.rand(2, 3).shape
    (2, 3)
    """
    out = _draw("rand", generator, _shape("rand", shape, size), dtype)
    return _finish(out, device, requires_grad)


def randn(*shape, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Standard normal samples: ``fnx.randn(2, 3)``."""
    out = _draw("randn", generator, _shape("randn", shape, size), dtype)
    return _finish(out, device, requires_grad)


def randint(*args, size=None, generator=None, dtype=None, device=None, requires_grad=False):
    """Uniform integers in ``[low, high)``: ``fnx.randint(high, size)`` or
    ``fnx.randint(low, high, size)`` (int64 unless ``dtype`` is given).

    >>> fnx.randint(0, 10, (3, 3)).dtype
    dtype('int64')
    """
    if size is None:
        if not args:
            raise TypeError("randint: missing the size argument")
        args, size = args[:-1], args[-1]
    if len(args) == 1:
        low, high = 0, args[0]
    elif len(args) == 2:
        low, high = args
    else:
        raise TypeError("randint: expected randint(high, size) or randint(low, high, size)")
    key = (generator or default_generator).next_key()
    shape = _m._shape_args("randint", (size,))
    out = _random().randint(key, shape, low, high, dtype=dtypes.default_int())
    if dtype is not None:
        out = out.astype(dtype)
    return _finish(out, device, requires_grad)


def _random_like(op, input, dtype, device, requires_grad, draw):
    input = to_array(input)
    dtype = input.dtype if dtype is None else dtype
    out = draw(input.shape, dtype)
    return _finish(out, input.device if device is None else device, requires_grad)


def rand_like(input, *, dtype=None, device=None, requires_grad=False):
    """Uniform samples with ``input``'s shape, dtype and device."""
    return _random_like("rand_like", input, dtype, device, requires_grad,
                        lambda shape, dt: _draw("rand_like", None, shape, dt))


def randn_like(input, *, dtype=None, device=None, requires_grad=False):
    """Normal samples with ``input``'s shape, dtype and device."""
    return _random_like("randn_like", input, dtype, device, requires_grad,
                        lambda shape, dt: _draw("randn", None, shape, dt))


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False):
    """Integers in ``[low, high)`` (``randint_like(x, high)`` means ``low=0``) shaped like
    ``input``, with its dtype unless given."""
    if high is None:
        low, high = 0, low
    return _random_like("randint_like", input, dtype, device, requires_grad,
                        lambda shape, dt: randint(low, high, shape, dtype=dt))


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of ``0..n-1`` (int64)."""
    key = (generator or default_generator).next_key()
    out = _random().permutation(key, _int(n))
    if dtype is not None:
        out = out.astype(dtype)
    return _finish(out, device, requires_grad)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples, 1 with probability ``input`` (or ``p``), in ``input``'s dtype."""
    input = to_array(input)
    probs = input if p is None else p
    u = _draw("bernoulli", generator, input.shape, _float_dtype("bernoulli", None))
    return (u < probs).astype(input.dtype)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None):
    """Normal samples with ``mean`` and ``std`` (arrays broadcast; ``size`` for scalars)."""
    if size is None:
        size = fnp.broadcast_shapes(np.shape(mean) if not is_array(mean) else mean.shape,
                                    np.shape(std) if not is_array(std) else std.shape)
    out = _draw("randn", generator, _m._shape_args("normal", (size,)), dtype) * std + mean
    return _finish(out, device, False)


# --- joining, selecting, devices ----------------------------------------------------------------


def cat(tensors, dim=0, *, axis=None):
    """Join arrays along an existing dim (dtypes promote).

    >>> fnx.cat([fnx.zeros(2, 3), fnx.ones(2, 3)], dim=0).shape
    (4, 3)
    """
    return fnp.concat(list(tensors), axis=_m._axis("cat", None if axis is not None else dim,
                                                   axis))


concat = concatenate = cat


def stack(tensors, dim=0, *, axis=None):
    """Join arrays of one shape along a new dim.

    >>> fnx.stack([fnx.zeros(2, 3), fnx.ones(2, 3)]).shape
    (2, 2, 3)
    """
    return fnp.stack(list(tensors), axis=_m._axis("stack", None if axis is not None else dim,
                                                  axis))


def hstack(tensors):
    tensors = [to_array(t) for t in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    return cat([t if t.ndim >= 2 else t.reshape(1, -1) for t in map(to_array, tensors)], 0)


def where(condition, input=None, other=None):
    """``input`` where ``condition`` is true, else ``other`` (broadcasting all three)."""
    if input is None or other is None:
        raise TypeError("where: the one-argument form (nonzero) is not supported; use "
                        "fnx.where(condition, input, other)")
    return fnp.where(condition, input, other)


def numel(input):
    """The number of elements of ``input``."""
    return math.prod(to_array(input).shape)


def device_put(x, device=None):
    """``x`` (an array, or a list/tuple/dict of them) on ``device`` (default: the CPU).

    >>> fnx.device_put(fnx.ones(2), "cpu").device
    device(type='cpu')
    """
    device = devices.CPU if device is None else device
    if isinstance(x, (list, tuple)):
        return type(x)(device_put(v, device) for v in x)
    if isinstance(x, dict):
        return {k: device_put(v, device) for k, v in x.items()}
    return _m._put(to_array(x), device, "device_put")


def _function(name):
    method = _m.METHODS[name]

    def fn(input, *args, **kwargs):
        return method(to_array(input), *args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = f"``fnx.{name}(x, ...)`` is ``x.{name}(...)``.\n\n{method.__doc__ or ''}"
    return fn


# Functions that are also array methods: fnx.sum(x, dim=0) == x.sum(dim=0).
_FUNCTIONS = (
    "sum", "prod", "mean", "var", "std", "max", "min", "amax", "amin", "argmax", "argmin",
    "all", "any", "logsumexp", "softmax", "log_softmax", "norm",
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide", "floor_divide",
    "remainder", "fmod", "pow", "float_power", "maximum", "minimum", "eq", "ne", "lt", "le",
    "gt", "ge", "logical_and", "logical_or", "logical_xor", "logical_not", "isnan", "isinf",
    "isfinite", "abs", "absolute", "neg", "negative", "sign", "exp", "exp2", "expm1", "log",
    "log1p", "log2", "log10", "sqrt", "rsqrt", "square", "reciprocal", "sin", "cos", "tan",
    "asin", "acos", "atan", "arcsin", "arccos", "arctan", "atan2", "sinh", "cosh", "tanh",
    "sigmoid", "relu", "erf", "erfinv", "lgamma", "floor", "ceil", "round", "trunc", "real",
    "imag", "conj", "clamp", "clip", "masked_fill", "lerp", "addcmul", "addcdiv", "allclose",
    "equal", "reshape", "flatten", "unflatten", "ravel", "squeeze", "unsqueeze", "t",
    "transpose", "permute", "swapaxes", "swapdims", "movedim", "moveaxis", "broadcast_to",
    "tile", "flip", "narrow", "split", "chunk", "unbind", "matmul", "mm", "bmm", "mv", "dot",
    "clone", "detach",
)
globals().update({_name: _function(_name) for _name in _FUNCTIONS})

# torch's dtype aliases (fnx.float is float32, fnx.int is int32, fnx.long is int64, ...).
# Assigned last: inside this module the builtins are used under their private names only.
_DTYPE_ALIASES = {
    "float": dtypes.float32, "double": dtypes.float64, "half": dtypes.float16,
    "int": dtypes.int32, "long": dtypes.int64, "short": dtypes.int16,
    "cfloat": dtypes.complex64, "cdouble": dtypes.complex128,
}
globals().update(_DTYPE_ALIASES)

__all__ = [
    "Tensor", "Size", "return_types", "is_tensor", "get_default_dtype",
    "tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "arange",
    "linspace", "eye", "zeros_like", "ones_like", "empty_like", "full_like",
    "Generator", "default_generator", "manual_seed", "seed", "initial_seed", "get_rng_state",
    "set_rng_state", "rand", "randn", "randint", "rand_like", "randn_like", "randint_like",
    "randperm", "bernoulli", "normal",
    "cat", "concat", "concatenate", "stack", "hstack", "vstack", "where", "numel",
    "device_put",
    *_FUNCTIONS, *_DTYPE_ALIASES,
]
