"""Parameters as one flat vector and back (``torch.nn.utils.parameters_to_vector`` /
``vector_to_parameters``)."""

import math

import fnx
from ... import numpy as fnp
from ...core.errors import DeviceError, ShapeError

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters):
    """Concatenate the flattened ``parameters`` into one 1-D array (differentiable: it is
    computed from the parameters, so the tape and ``fnx.grad`` see through it).

    >>> ps = [fnx.nn.Parameter(fnx.ones(2, 2)), fnx.nn.Parameter(fnx.zeros(3))]
    >>> fnx.nn.utils.parameters_to_vector(ps).tolist()
    [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    """
    params = list(parameters)
    devices = {p.device for p in params}
    if len(devices) > 1:
        raise DeviceError(f"parameters_to_vector: found parameters on different devices "
                          f"{sorted(map(str, devices))}; move them to one device first")
    return fnp.concatenate([fnp.reshape(p, (-1,)) for p in params])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of the 1-D ``vec`` into ``parameters`` in place (the inverse
    of ``parameters_to_vector``; no gradient flows through the copy, as PyTorch's ``.data``
    assignment).

    >>> ps = [fnx.nn.Parameter(fnx.zeros(2, 2)), fnx.nn.Parameter(fnx.zeros(3))]
    >>> fnx.nn.utils.vector_to_parameters(fnx.arange(7.0), ps)
    >>> ps[0].tolist(), ps[1].tolist()
    ([[0.0, 1.0], [2.0, 3.0]], [4.0, 5.0, 6.0])
    """
    if not isinstance(vec, fnx.Array):
        raise TypeError(f"vector_to_parameters: expected an fnx Array, but got: "
                        f"{type(vec).__name__}")
    params = list(parameters)
    total = sum(math.prod(p.shape) for p in params)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ShapeError(f"vector_to_parameters: expected a 1-D vector of {total} elements "
                         f"(the parameters' total size), got shape {tuple(vec.shape)}")
    start = 0
    with fnx.no_grad():
        for p in params:
            n = math.prod(p.shape)
            p.copy_(fnp.reshape(vec[start:start + n], p.shape))
            start += n
