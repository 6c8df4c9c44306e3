"""Helpers shared by the layer modules: parameter creation and buffer updates."""

import numbers

import fnx
from fnx.core import state as host_state


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


def _primal(value, journal):
    """``value`` without the differentiation transforms' tracers around it: a concrete array
    or a value of the compiled step being traced; None for a batched value (vmap)."""
    while isinstance(value, fnx.core.tracing.Tracer) and (journal is None
                                                          or journal.foreign(value)):
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
    journal = host_state.active()
    if is_concrete(*old) and not is_concrete(*values):
        # concrete buffers and traced statistics: a module closed over by fnx.grad (inside a
        # compiled step or not) gets the undifferentiated statistics in place, as eagerly,
        # instead of a tracer left in the module; one mapped by fnx.vmap has no single value:
        # outside a compiled step the buffers are rebound (vmap returns the module with
        # batched statistics), inside one they are left as they are
        primal = [_primal(v, journal) for v in values]
        if all(v is not None for v in primal):
            values = primal
        elif journal is not None:
            return
    if is_concrete(*old) and (is_concrete(*values) or journal is not None):
        for buf, value in zip(old, values, strict=True):
            buf.copy_(value)
    else:
        for name, value in zip(new, values, strict=True):
            setattr(module, name, value)
