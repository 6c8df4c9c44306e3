"""Helpers shared by the layer modules: parameter creation and buffer updates."""

import numbers

import fnx
from fnx.core import state as host_state
from fnx.core.errors import FnxError


def new_parameter(shape, dtype=None, device=None):
    """An uninitialised ``Parameter`` of ``shape`` (the layer's ``reset_parameters`` fills it,
    as PyTorch's ``torch.empty`` + ``init``), with the layer's ``dtype``/``device`` keywords."""
    return fnx.nn.Parameter(fnx.empty(*shape, dtype=dtype, device=device))


def optional_parameter(module, name, present, shape, dtype=None, device=None):
    """Register a new parameter ``name`` of ``shape`` on ``module``, or ``None`` when not
    ``present`` (PyTorch's ``register_parameter(name, None)``: ``bias=False``,
    ``affine=False``)."""
    module.register_parameter(name, new_parameter(shape, dtype, device) if present else None)


def ntuple(value, n):
    """``value`` (an int or a sequence of ``n``) as an ``n``-tuple (PyTorch's ``_pair``...)."""
    if isinstance(value, numbers.Integral):
        return (int(value),) * n
    value = tuple(value)
    return value * n if len(value) == 1 else value


def is_concrete(*values):
    """True when every value is an eager array: a transform's tracers also pass
    ``isinstance(x, fnx.Array)``, so the exact type is tested."""
    return all(type(v) is fnx.Array for v in values)


def _primal(value):
    """``value`` without the differentiation transforms' tracers around it (a value of the
    compiled step being traced), or None for a batched value."""
    while value is not None and getattr(value, "_become", None) is None and \
            isinstance(value, fnx.core.tracing.Tracer):
        value = value.primal_value()
    return value


def write_buffers(module, new):
    """Store updated buffers ``{name: array}`` (e.g. BatchNorm's running statistics).

    Eagerly every value is concrete: the buffers are updated IN PLACE, so every holder of them
    (an optimizer, a copy of ``state_dict()``) sees the new values, as in PyTorch. Under a
    transform the new values are tracers, which cannot be written into concrete arrays: the
    buffers are rebound on the module instead, and the transform's machinery writes rebinds
    back to the caller's module."""
    old = [getattr(module, name) for name in new]
    values = list(new.values())
    if is_concrete(*old) and not is_concrete(*values) and not host_state.active():
        # concrete buffers and traced statistics outside a compiled step: a module closed
        # over by fnx.grad (the statistics are known: write them in place, as eagerly,
        # instead of leaving a tracer in the module) or one mapped by fnx.vmap (they are
        # not: rebind, and vmap returns the module with batched statistics)
        try:
            values = [v if is_concrete(v) else v.concrete_value() for v in values]
        except FnxError:
            pass
    if is_concrete(*old) and host_state.active() and not is_concrete(*values):
        # inside a compiled step (staged in place, fnx.core.state), under fnx.grad too: the
        # undifferentiated statistics; a batched update (vmap) has no single value
        values = [_primal(v) for v in values]
        if any(v is None for v in values):
            return
    if is_concrete(*old) and (is_concrete(*values) or host_state.active()):
        for buf, value in zip(old, values, strict=True):
            buf.copy_(value)
    else:
        for name, value in zip(new, values, strict=True):
            setattr(module, name, value)
