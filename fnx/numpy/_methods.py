"""Array methods beyond the operators: array-API methods and the PyTorch-style tensor API.

``ArrayOps.__getattr__`` looks names up here, so Arrays and tracers share one definition.
"""

from ..core import dtypes


def _astype(self, dtype, /, *, copy=True, device=None):
    from ..core.ops.elementwise import convert_element_type

    out = convert_element_type(self, dtypes.canonicalize(dtype))
    return out if device is None else out.to(device)


def _reshape(self, *shape):
    from ._manipulation import reshape

    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return reshape(self, shape)


METHODS = {
    "astype": _astype,
    "reshape": _reshape,
}


def _method(name):
    return METHODS.get(name)
