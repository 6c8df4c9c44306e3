"""Gradient clipping (``torch.nn.utils.clip_grad_norm_`` and friends).

The functions read and rescale each parameter's ``.grad`` IN PLACE (every holder of the
gradient, e.g. an optimizer about to step, sees the clipped values), as PyTorch does.
"""

import fnx
from ... import numpy as fnp

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "clip_grads_with_norm_"]


def _as_list(tensors):
    """A single array or an iterable (a generator such as ``model.parameters()``) as a list."""
    if isinstance(tensors, fnx.Array):
        return [tensors]
    return list(tensors)


def _grads(parameters):
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def get_total_norm(tensors, norm_type=2.0, error_if_nonfinite=False, foreach=None):
    """The ``norm_type``-norm of all ``tensors`` together, as if concatenated into one vector
    (``norm_type=inf``: the largest absolute value). A 0-d array; ``0.0`` for no tensors.

    >>> grads = [fnx.tensor([3.0]), fnx.tensor([4.0])]
    >>> fnx.nn.utils.get_total_norm(grads).item()
    5.0
    """
    del foreach  # one implementation: the per-array norms are stacked either way
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return fnp.asarray(0.0)
    norms = [fnp.linalg.vector_norm(t, ord=norm_type) for t in tensors]
    total = fnp.linalg.vector_norm(fnp.stack(norms), ord=norm_type)
    if error_if_nonfinite and not bool(fnp.isfinite(total)):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           f"`parameters` is non-finite, so it cannot be clipped. To disable "
                           f"this error and scale the gradients by the non-finite norm anyway, "
                           f"set `error_if_nonfinite=False`")
    return total


def clip_grads_with_norm_(parameters, max_norm, total_norm, foreach=None):
    """Scale every ``.grad`` in place by ``min(1, max_norm / (total_norm + 1e-6))``.

    >>> p = fnx.nn.Parameter(fnx.zeros(2)); p.grad = fnx.tensor([3.0, 4.0])
    >>> fnx.nn.utils.clip_grads_with_norm_([p], 1.0, fnx.tensor(5.0))
    >>> [round(v, 4) for v in p.grad.tolist()]
    [0.6, 0.8]
    """
    del foreach  # one implementation
    grads = _grads(parameters)
    if not grads:
        return
    coef = fnp.minimum(float(max_norm) / (total_norm + 1e-6), 1.0)
    for g in grads:
        g.mul_(coef)


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Rescale the gradients of ``parameters`` in place so that their total ``norm_type``-norm
    is at most ``max_norm``; returns the total norm before clipping. ``error_if_nonfinite``
    raises instead of scaling by a NaN or infinite norm.

    >>> lin = fnx.nn.Linear(4, 2)
    >>> lin(fnx.ones(8, 4)).sum().backward()
    >>> before = fnx.nn.utils.clip_grad_norm_(lin.parameters(), max_norm=1.0)
    >>> bool(before > 1.0), round(fnx.nn.utils.get_total_norm(
    ...     [p.grad for p in lin.parameters()]).item(), 4)
    (True, 1.0)
    """
    parameters = _as_list(parameters)
    total = get_total_norm(_grads(parameters), norm_type, error_if_nonfinite)
    clip_grads_with_norm_(parameters, max_norm, total)
    return total


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every ``.grad`` of ``parameters`` in place to ``[-clip_value, clip_value]``.

    >>> p = fnx.nn.Parameter(fnx.zeros(3)); p.grad = fnx.tensor([-2.0, 0.1, 2.0])
    >>> fnx.nn.utils.clip_grad_value_([p], clip_value=0.5)
    >>> p.grad.tolist()
    [-0.5, 0.10000000149011612, 0.5]
    """
    del foreach  # one implementation
    clip_value = float(clip_value)
    for g in _grads(parameters):
        g.clamp_(min=-clip_value, max=clip_value)
