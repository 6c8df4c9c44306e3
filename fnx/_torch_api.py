"""The PyTorch-style top-level functions (``fnx.tensor``, ``fnx.zeros(2, 3)``, ``fnx.cat``...).

Code written for ``torch`` runs with ``torch`` renamed to ``fnx``. Creation functions take
torch's signatures (``fnx.zeros(3, 4)`` and ``fnx.zeros((3, 4))``, ``dtype=``, ``device=``);
functions that are also array methods (``fnx.sum(x, dim=0)``) call the method of the same
name in ``fnx.numpy._methods``, so both forms share one definition. Random functions draw
from a global :class:`Generator`, a thin stateful layer over the explicit keys of
``fnx.random``. Differences from PyTorch are listed in docs/from-pytorch.md.
"""

import builtins
import inspect
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
    """True for fnx arrays (and tracers), as ``torch.is_tensor``.

    >>> fnx.is_tensor(fnx.ones(2)), fnx.is_tensor([1.0])
    (True, False)
    """
    return is_array(obj)


def get_default_dtype():
    """The default floating dtype (float32 unless changed by ``fnx.set_default_dtype``).

    >>> fnx.get_default_dtype()
    dtype('float32')
    """
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
    """Like :func:`tensor` but without a copy when ``data`` already fits (as torch).

    >>> a = np.arange(3); fnx.as_tensor(a).tolist()
    [0, 1, 2]
    """
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
    """Ones of the given shape (default float32): ``fnx.ones(2, 3)``.

    >>> fnx.ones(2, 3).shape, fnx.ones(2).tolist()
    ((2, 3), [1.0, 1.0])
    """
    return _filled("ones", shape, size, 1, dtype, device, requires_grad)


def empty(*shape, size=None, dtype=None, device=None, requires_grad=False):
    """Zeros: fnx arrays are values, so there is no uninitialized memory to hand out.

    >>> fnx.empty(2, 3).shape
    (2, 3)
    """
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
    """``steps`` evenly spaced values from ``start`` to ``end`` inclusive.

    >>> fnx.linspace(0, 1, 5).tolist()
    [0.0, 0.25, 0.5, 0.75, 1.0]
    """
    out = fnp.linspace(start, end, steps, dtype=dtype)
    return _finish(out, device, requires_grad)


def eye(n, m=None, *, dtype=None, device=None, requires_grad=False):
    """The ``n x m`` identity matrix (``m`` defaults to ``n``).

    >>> fnx.eye(2).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """
    return _finish(fnp.eye(n, m, dtype=dtype), device, requires_grad)


def _like(op, input, fill, dtype, device, requires_grad):
    input = to_array(input)
    dtype = input.dtype if dtype is None else dtype
    out = fnp.full(input.shape, fill, dtype=dtype)
    device = input.device if device is None else device
    return _finish(out, device, requires_grad)


def zeros_like(input, *, dtype=None, device=None, requires_grad=False):
    """Zeros with ``input``'s shape, dtype and device.

    >>> fnx.zeros_like(fnx.tensor([1.5, 2.5])).tolist()
    [0.0, 0.0]
    """
    return _like("zeros_like", input, 0, dtype, device, requires_grad)


def ones_like(input, *, dtype=None, device=None, requires_grad=False):
    """Ones with ``input``'s shape, dtype and device.

    >>> fnx.ones_like(fnx.tensor([5, 6])).tolist()
    [1, 1]
    """
    return _like("ones_like", input, 1, dtype, device, requires_grad)


def empty_like(input, *, dtype=None, device=None, requires_grad=False):
    """Zeros with ``input``'s shape, dtype and device (fnx arrays are values: nothing is
    uninitialized).

    >>> fnx.empty_like(fnx.tensor([1, 2])).tolist()
    [0, 0]
    """
    return _like("empty_like", input, 0, dtype, device, requires_grad)


def full_like(input, fill_value, *, dtype=None, device=None, requires_grad=False):
    """``fill_value`` with ``input``'s shape, dtype and device.

    >>> fnx.full_like(fnx.tensor([1, 2]), 7).tolist()
    [7, 7]
    """
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

    # fnx.jit takes a generator argument by reference; inside a compiled function its key
    # is program state (fnx.core.state), so every call draws fresh numbers
    _fnx_reference = True

    def manual_seed(self, seed):
        """Reset the generator to the key of ``seed``; returns the generator."""
        self._seed = operator.index(seed)
        self._store_key(_random().key(self._seed))
        return self

    def _store_key(self, key):
        # in place once the generator has a key: a compiled function that draws from it
        # keeps finding the same array (a new object would make it re-trace)
        old = self.__dict__.get("_key")
        if old is None:
            self._key = key
        else:
            old._set_buffer(key._buf)

    def seed(self):
        """Reseed from the operating system's entropy; returns the new seed."""
        new = _int.from_bytes(os.urandom(8), "little") >> 1
        self.manual_seed(new)
        return new

    def initial_seed(self):
        return self._seed

    def get_state(self):
        """The current key (a copy: a uint32 array of shape ``(2,)``)."""
        return wrap(self._key._buf.copy())

    def set_state(self, state):
        self._store_key(to_array(state).astype(dtypes.uint32))
        return self

    def next_key(self):
        """A new subkey; the generator advances. Inside ``fnx.jit`` at the top level (a
        compiled step) the key is program state: every call draws fresh numbers and advances
        the generator as eager code would. Inside grad/vmap the generator advances on
        concrete keys at trace time, so no traced value is stored in it."""
        from .core import state
        from .core.tracing import eager_eval

        if state.active() is not None:
            new, sub = _random().split(state.get(self, "_key"))
            state.set(self, "_key", new)
            return sub
        with eager_eval():
            new, sub = _random().split(self._key)
        self._store_key(new)
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
    """Reseed the global generator from the operating system's entropy; returns the new seed.

    >>> s = fnx.seed(); fnx.initial_seed() == s
    True
    """
    return default_generator.seed()


def initial_seed():
    """The seed the global generator was last seeded with (as ``torch.initial_seed``).

    >>> _ = fnx.manual_seed(7); fnx.initial_seed()
    7
    """
    return default_generator.initial_seed()


def get_rng_state():
    """The global generator's current key (as ``torch.get_rng_state``; pass it to
    ``set_rng_state``).

    >>> fnx.get_rng_state().shape
    (2,)
    """
    return default_generator.get_state()


def set_rng_state(new_state):
    """Set the global generator's key (from ``get_rng_state``): the draws that followed it repeat.

    >>> state = fnx.get_rng_state(); a = fnx.rand(2); fnx.set_rng_state(state)
    >>> bool((fnx.rand(2) == a).all())
    True
    """
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
    """Standard normal samples: ``fnx.randn(2, 3)``.

    >>> fnx.randn(2, 3).shape
    (2, 3)
    """
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
    """Uniform samples with ``input``'s shape, dtype and device.

    >>> fnx.rand_like(fnx.zeros(2, 3)).shape
    (2, 3)
    """
    return _random_like("rand_like", input, dtype, device, requires_grad,
                        lambda shape, dt: _draw("rand_like", None, shape, dt))


def randn_like(input, *, dtype=None, device=None, requires_grad=False):
    """Normal samples with ``input``'s shape, dtype and device.

    >>> fnx.randn_like(fnx.zeros(2, 3)).dtype
    dtype('float32')
    """
    return _random_like("randn_like", input, dtype, device, requires_grad,
                        lambda shape, dt: _draw("randn", None, shape, dt))


def randint_like(input, low=0, high=None, *, dtype=None, device=None, requires_grad=False):
    """Integers in ``[low, high)`` (``randint_like(x, high)`` means ``low=0``) shaped like
    ``input``, with its dtype unless given.

    >>> bool((fnx.randint_like(fnx.zeros(5), 3) < 3).all())
    True
    """
    if high is None:
        low, high = 0, low
    return _random_like("randint_like", input, dtype, device, requires_grad,
                        lambda shape, dt: randint(low, high, shape, dtype=dt))


def randperm(n, *, generator=None, dtype=None, device=None, requires_grad=False):
    """A random permutation of ``0..n-1`` (int64).

    >>> sorted(fnx.randperm(4).tolist())
    [0, 1, 2, 3]
    """
    key = (generator or default_generator).next_key()
    out = _random().permutation(key, _int(n))
    if dtype is not None:
        out = out.astype(dtype)
    return _finish(out, device, requires_grad)


def bernoulli(input, p=None, *, generator=None):
    """0/1 samples, 1 with probability ``input`` (or ``p``), in ``input``'s dtype.

    >>> fnx.bernoulli(fnx.tensor([0.0, 1.0])).tolist()
    [0.0, 1.0]
    """
    input = to_array(input)
    probs = input if p is None else p
    u = _draw("bernoulli", generator, input.shape, _float_dtype("bernoulli", None))
    return (u < probs).astype(input.dtype)


def normal(mean=0.0, std=1.0, size=None, *, generator=None, dtype=None, device=None):
    """Normal samples with ``mean`` and ``std`` (arrays broadcast; ``size`` for scalars).

    >>> fnx.normal(fnx.zeros(3), 1.0).shape, fnx.normal(2.0, 0.0, (2,)).tolist()
    ((3,), [2.0, 2.0])
    """
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
    """Join arrays column-wise: along dim 1, or dim 0 for 1-D arrays (as ``torch.hstack``).

    >>> fnx.hstack([fnx.tensor([1, 2]), fnx.tensor([3])]).tolist()
    [1, 2, 3]
    """
    tensors = [to_array(t) for t in tensors]
    return cat(tensors, 0 if tensors[0].ndim == 1 else 1)


def vstack(tensors):
    """Join arrays row-wise: along dim 0, 1-D arrays becoming rows (as ``torch.vstack``).

    >>> fnx.vstack([fnx.tensor([1, 2]), fnx.tensor([3, 4])]).tolist()
    [[1, 2], [3, 4]]
    """
    return cat([t if t.ndim >= 2 else t.reshape(1, -1) for t in map(to_array, tensors)], 0)


def where(condition, input=None, other=None):
    """``input`` where ``condition`` is true, else ``other`` (broadcasting all three).

    >>> fnx.where(fnx.tensor([True, False]), fnx.tensor([1, 2]), 0).tolist()
    [1, 0]
    """
    if input is None or other is None:
        raise TypeError("where: the one-argument form (nonzero) is not supported; use "
                        "fnx.where(condition, input, other)")
    return fnp.where(condition, input, other)


def numel(input):
    """The number of elements of ``input``.

    >>> fnx.numel(fnx.ones(2, 3))
    6
    """
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


# docstring examples of the functions made by _function: name -> (call, its printed result)
_EXAMPLES = {
    "sum": ('fnx.sum(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=0).tolist()', '[4.0, 6.0]'),
    "prod": ('fnx.prod(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1).tolist()', '[2.0, 12.0]'),
    "mean": ('fnx.mean(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1).tolist()', '[1.5, 3.5]'),
    "var": ('fnx.var(fnx.tensor([1.0, 3.0])).item()', '2.0'),
    "std": ('round(fnx.std(fnx.tensor([1.0, 3.0])).item(), 4)', '1.4142'),
    "max": ('fnx.max(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1).values.tolist()', '[2.0, 4.0]'),
    "min": ('fnx.min(fnx.tensor([[1.0, 2.0], [3.0, 4.0]])).item()', '1.0'),
    "amax": ('fnx.amax(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=0).tolist()', '[3.0, 4.0]'),
    "amin": ('fnx.amin(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=0).tolist()', '[1.0, 2.0]'),
    "argmax": ('fnx.argmax(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]), dim=1).tolist()', '[1, 1]'),
    "argmin": ('fnx.argmin(fnx.tensor([[1.0, 2.0], [3.0, 4.0]])).item()', '0'),
    "all": ('fnx.all(fnx.tensor([True, False])).item()', 'False'),
    "any": ('fnx.any(fnx.tensor([True, False])).item()', 'True'),
    "logsumexp": ('round(fnx.logsumexp(fnx.tensor([0.0, 0.0]), dim=0).item(), 4)', '0.6931'),
    "softmax": ('fnx.softmax(fnx.tensor([0.0, 0.0]), dim=0).tolist()', '[0.5, 0.5]'),
    "log_softmax": (
        '[round(v, 4) for v in fnx.log_softmax(fnx.tensor([0.0, 0.0]), dim=0).tolist()]',
        '[-0.6931, -0.6931]'),
    "norm": ('fnx.norm(fnx.tensor([3.0, 4.0])).item()', '5.0'),
    "add": ('fnx.add(fnx.tensor([1.0, 4.0]), 1, alpha=2).tolist()', '[3.0, 6.0]'),
    "sub": ('fnx.sub(fnx.tensor([1.0, 4.0]), 1).tolist()', '[0.0, 3.0]'),
    "subtract": ('fnx.subtract(fnx.tensor([1.0, 4.0]), 1).tolist()', '[0.0, 3.0]'),
    "mul": ('fnx.mul(fnx.tensor([1.0, 4.0]), 2).tolist()', '[2.0, 8.0]'),
    "multiply": ('fnx.multiply(fnx.tensor([1.0, 4.0]), 2).tolist()', '[2.0, 8.0]'),
    "div": ("fnx.div(fnx.tensor([7, -7]), 2, rounding_mode='floor').tolist()", '[3, -4]'),
    "divide": ('fnx.divide(fnx.tensor([1, 3]), 2).tolist()', '[0.5, 1.5]'),
    "true_divide": ('fnx.true_divide(fnx.tensor([1, 3]), 2).tolist()', '[0.5, 1.5]'),
    "floor_divide": ('fnx.floor_divide(fnx.tensor([7, -7]), 2).tolist()', '[3, -4]'),
    "remainder": ('fnx.remainder(fnx.tensor([7, -7]), 3).tolist()', '[1, 2]'),
    "fmod": ('fnx.fmod(fnx.tensor([7, -7]), 3).tolist()', '[1, -1]'),
    "pow": ('fnx.pow(fnx.tensor([2, 3]), 2).tolist()', '[4, 9]'),
    "float_power": ('fnx.float_power(fnx.tensor([2, 3]), 2).tolist()', '[4.0, 9.0]'),
    "maximum": ('fnx.maximum(fnx.tensor([1, 5]), fnx.tensor([3, 4])).tolist()', '[3, 5]'),
    "minimum": ('fnx.minimum(fnx.tensor([1, 5]), fnx.tensor([3, 4])).tolist()', '[1, 4]'),
    "eq": ('fnx.eq(fnx.tensor([1, 2]), 2).tolist()', '[False, True]'),
    "ne": ('fnx.ne(fnx.tensor([1, 2]), 2).tolist()', '[True, False]'),
    "lt": ('fnx.lt(fnx.tensor([1, 2]), 2).tolist()', '[True, False]'),
    "le": ('fnx.le(fnx.tensor([1, 2]), 2).tolist()', '[True, True]'),
    "gt": ('fnx.gt(fnx.tensor([1, 2]), 1).tolist()', '[False, True]'),
    "ge": ('fnx.ge(fnx.tensor([1, 2]), 2).tolist()', '[False, True]'),
    "logical_and": (
        'fnx.logical_and(fnx.tensor([True, True]), fnx.tensor([True, False])).tolist()',
        '[True, False]'),
    "logical_or": (
        'fnx.logical_or(fnx.tensor([True, False]), fnx.tensor([False, False])).tolist()',
        '[True, False]'),
    "logical_xor": (
        'fnx.logical_xor(fnx.tensor([True, True]), fnx.tensor([True, False])).tolist()',
        '[False, True]'),
    "logical_not": ('fnx.logical_not(fnx.tensor([True, False])).tolist()', '[False, True]'),
    "isnan": ("fnx.isnan(fnx.tensor([1.0, float('nan')])).tolist()", '[False, True]'),
    "isinf": ("fnx.isinf(fnx.tensor([1.0, float('inf')])).tolist()", '[False, True]'),
    "isfinite": ("fnx.isfinite(fnx.tensor([1.0, float('inf')])).tolist()", '[True, False]'),
    "abs": ('fnx.abs(fnx.tensor([-1.0, 2.0])).tolist()', '[1.0, 2.0]'),
    "absolute": ('fnx.absolute(fnx.tensor([-1.0, 2.0])).tolist()', '[1.0, 2.0]'),
    "neg": ('fnx.neg(fnx.tensor([1, -2])).tolist()', '[-1, 2]'),
    "negative": ('fnx.negative(fnx.tensor([1, -2])).tolist()', '[-1, 2]'),
    "sign": ('fnx.sign(fnx.tensor([-3.0, 0.0, 2.0])).tolist()', '[-1.0, 0.0, 1.0]'),
    "exp": ('fnx.exp(fnx.tensor([0.0])).tolist()', '[1.0]'),
    "exp2": ('fnx.exp2(fnx.tensor([3.0])).tolist()', '[8.0]'),
    "expm1": ('fnx.expm1(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "log": ('fnx.log(fnx.tensor([1.0])).tolist()', '[0.0]'),
    "log1p": ('fnx.log1p(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "log2": ('fnx.log2(fnx.tensor([8.0])).round().tolist()', '[3.0]'),
    "log10": ('fnx.log10(fnx.tensor([100.0])).round().tolist()', '[2.0]'),
    "sqrt": ('fnx.sqrt(fnx.tensor([4.0, 9.0])).tolist()', '[2.0, 3.0]'),
    "rsqrt": ('fnx.rsqrt(fnx.tensor([4.0])).tolist()', '[0.5]'),
    "square": ('fnx.square(fnx.tensor([2, -3])).tolist()', '[4, 9]'),
    "reciprocal": ('fnx.reciprocal(fnx.tensor([2.0, 4.0])).tolist()', '[0.5, 0.25]'),
    "sin": ('fnx.sin(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "cos": ('fnx.cos(fnx.tensor([0.0])).tolist()', '[1.0]'),
    "tan": ('fnx.tan(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "asin": ('fnx.asin(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "acos": ('fnx.acos(fnx.tensor([1.0])).tolist()', '[0.0]'),
    "atan": ('fnx.atan(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "arcsin": ('fnx.arcsin(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "arccos": ('fnx.arccos(fnx.tensor([1.0])).tolist()', '[0.0]'),
    "arctan": ('fnx.arctan(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "atan2": ('fnx.atan2(fnx.tensor([0.0]), fnx.tensor([1.0])).tolist()', '[0.0]'),
    "sinh": ('fnx.sinh(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "cosh": ('fnx.cosh(fnx.tensor([0.0])).tolist()', '[1.0]'),
    "tanh": ('fnx.tanh(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "sigmoid": ('fnx.sigmoid(fnx.tensor([0.0])).tolist()', '[0.5]'),
    "relu": ('fnx.relu(fnx.tensor([-1.0, 2.0])).tolist()', '[0.0, 2.0]'),
    "erf": ('fnx.erf(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "erfinv": ('fnx.erfinv(fnx.tensor([0.0])).tolist()', '[0.0]'),
    "lgamma": ('fnx.lgamma(fnx.tensor([1.0, 3.0])).round().tolist()', '[0.0, 1.0]'),
    "floor": ('fnx.floor(fnx.tensor([-1.5, 1.5])).tolist()', '[-2.0, 1.0]'),
    "ceil": ('fnx.ceil(fnx.tensor([-1.5, 1.5])).tolist()', '[-1.0, 2.0]'),
    "round": ('fnx.round(fnx.tensor([0.5, 1.5, 2.7])).tolist()', '[0.0, 2.0, 3.0]'),
    "trunc": ('fnx.trunc(fnx.tensor([-1.5, 1.5])).tolist()', '[-1.0, 1.0]'),
    "real": ('fnx.real(fnx.tensor([1 + 2j])).tolist()', '[1.0]'),
    "imag": ('fnx.imag(fnx.tensor([1 + 2j])).tolist()', '[2.0]'),
    "conj": ('fnx.conj(fnx.tensor([1 + 2j])).tolist()', '[(1-2j)]'),
    "clamp": ('fnx.clamp(fnx.tensor([-1, 5, 10]), min=0, max=6).tolist()', '[0, 5, 6]'),
    "clip": ('fnx.clip(fnx.tensor([-1, 5, 10]), 0, 6).tolist()', '[0, 5, 6]'),
    "masked_fill": (
        'fnx.masked_fill(fnx.tensor([1, 2, 3]), fnx.tensor([True, False, True]), 0).tolist()',
        '[0, 2, 0]'),
    "lerp": (
        'fnx.lerp(fnx.tensor([0.0, 2.0]), fnx.tensor([4.0, 4.0]), 0.5).tolist()',
        '[2.0, 3.0]'),
    "addcmul": (
        'fnx.addcmul(fnx.tensor([1.0]), fnx.tensor([2.0]), fnx.tensor([3.0]), value=2).tolist()',
        '[13.0]'),
    "addcdiv": (
        'fnx.addcdiv(fnx.tensor([1.0]), fnx.tensor([6.0]), fnx.tensor([3.0]), value=2).tolist()',
        '[5.0]'),
    "allclose": ('fnx.allclose(fnx.tensor([1.0]), fnx.tensor([1.0 + 1e-9]))', 'True'),
    "equal": ('fnx.equal(fnx.tensor([1, 2]), fnx.tensor([1, 2]))', 'True'),
    "reshape": ('fnx.reshape(fnx.arange(6), (2, -1)).shape', '(2, 3)'),
    "flatten": ('fnx.flatten(fnx.ones(2, 3, 4), start_dim=1).shape', '(2, 12)'),
    "unflatten": ('fnx.unflatten(fnx.ones(2, 12), 1, (3, 4)).shape', '(2, 3, 4)'),
    "ravel": ('fnx.ravel(fnx.tensor([[1, 2], [3, 4]])).tolist()', '[1, 2, 3, 4]'),
    "squeeze": ('fnx.squeeze(fnx.ones(1, 3, 1)).shape', '(3,)'),
    "unsqueeze": ('fnx.unsqueeze(fnx.ones(3), 0).shape', '(1, 3)'),
    "t": ('fnx.t(fnx.tensor([[1, 2], [3, 4]])).tolist()', '[[1, 3], [2, 4]]'),
    "transpose": ('fnx.transpose(fnx.ones(2, 3, 4), 0, 2).shape', '(4, 3, 2)'),
    "permute": ('fnx.permute(fnx.ones(2, 3, 4), (2, 0, 1)).shape', '(4, 2, 3)'),
    "swapaxes": ('fnx.swapaxes(fnx.ones(2, 3, 4), 0, 1).shape', '(3, 2, 4)'),
    "swapdims": ('fnx.swapdims(fnx.ones(2, 3, 4), 0, 1).shape', '(3, 2, 4)'),
    "movedim": ('fnx.movedim(fnx.ones(2, 3, 4), 0, -1).shape', '(3, 4, 2)'),
    "moveaxis": ('fnx.moveaxis(fnx.ones(2, 3, 4), 0, -1).shape', '(3, 4, 2)'),
    "broadcast_to": ('fnx.broadcast_to(fnx.tensor([1, 2]), (2, 2)).tolist()', '[[1, 2], [1, 2]]'),
    "tile": ('fnx.tile(fnx.tensor([1, 2]), (2,)).tolist()', '[1, 2, 1, 2]'),
    "flip": ('fnx.flip(fnx.tensor([1, 2, 3]), (0,)).tolist()', '[3, 2, 1]'),
    "narrow": ('fnx.narrow(fnx.tensor([1, 2, 3, 4]), 0, 1, 2).tolist()', '[2, 3]'),
    "split": ('[p.tolist() for p in fnx.split(fnx.tensor([1, 2, 3]), 2)]', '[[1, 2], [3]]'),
    "chunk": ('[p.tolist() for p in fnx.chunk(fnx.tensor([1, 2, 3, 4]), 2)]', '[[1, 2], [3, 4]]'),
    "unbind": (
        '[p.tolist() for p in fnx.unbind(fnx.tensor([[1, 2], [3, 4]]))]',
        '[[1, 2], [3, 4]]'),
    "tensor_split": (
        '[p.tolist() for p in fnx.tensor_split(fnx.tensor([1, 2, 3, 4, 5]), 3)]',
        '[[1, 2], [3, 4], [5]]'),
    "hsplit": ('[p.shape for p in fnx.hsplit(fnx.ones(2, 4), 2)]', '[(2, 2), (2, 2)]'),
    "vsplit": ('[p.shape for p in fnx.vsplit(fnx.ones(4, 2), [1])]', '[(1, 2), (3, 2)]'),
    "dsplit": ('[p.shape for p in fnx.dsplit(fnx.ones(1, 1, 4), 2)]', '[(1, 1, 2), (1, 1, 2)]'),
    "matmul": ('fnx.matmul(fnx.ones(5, 2, 3), fnx.ones(3, 4)).shape', '(5, 2, 4)'),
    "mm": (
        'fnx.mm(fnx.tensor([[1, 2], [3, 4]]), fnx.tensor([[1, 0], [0, 1]])).tolist()',
        '[[1, 2], [3, 4]]'),
    "bmm": ('fnx.bmm(fnx.ones(5, 2, 3), fnx.ones(5, 3, 4)).shape', '(5, 2, 4)'),
    "mv": ('fnx.mv(fnx.tensor([[1, 2], [3, 4]]), fnx.tensor([1, 1])).tolist()', '[3, 7]'),
    "dot": ('fnx.dot(fnx.tensor([1, 2]), fnx.tensor([3, 4])).item()', '11'),
    "clone": ('fnx.clone(fnx.tensor([1, 2])).tolist()', '[1, 2]'),
    "detach": ('fnx.detach(fnx.tensor([1.0, 2.0])).tolist()', '[1.0, 2.0]'),
}


def _function(name):
    method = _m.METHODS[name]

    def fn(input, *args, **kwargs):
        return method(to_array(input), *args, **kwargs)

    fn.__name__ = fn.__qualname__ = name
    call, result = _EXAMPLES[name]
    # the method's description without its own examples (those call fnx.numpy)
    about = inspect.cleandoc(method.__doc__ or "").split(">>>")[0].strip()
    fn.__doc__ = (f"``fnx.{name}(x, ...)`` is ``x.{name}(...)``.\n\n"
                  + (f"{about}\n\n" if about else "") + f">>> {call}\n{result}\n")
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
    "tile", "flip", "narrow", "split", "chunk", "unbind", "tensor_split", "hsplit", "vsplit",
    "dsplit", "matmul", "mm", "bmm", "mv", "dot",
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
