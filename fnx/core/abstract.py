"""Abstract values (avals): what transforms and the compiler know about an array without its data."""

import numpy as np


class ShapedArray:
    """Shape and dtype of an array; the type of every IR variable.

    >>> fnx.core.abstract.ShapedArray((2, 3), np.float32).str_short()
    'f32[2,3]'
    """

    __slots__ = ("shape", "dtype")

    def __init__(self, shape, dtype):
        # avals are made on every traced op: skip conversions when the inputs are canonical
        self.shape = shape if type(shape) is tuple else tuple(int(d) for d in shape)
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def update(self, shape=None, dtype=None):
        return ShapedArray(self.shape if shape is None else shape, self.dtype if dtype is None else dtype)

    def __eq__(self, other):
        return type(other) is ShapedArray and self.shape == other.shape and self.dtype == other.dtype

    def __hash__(self):
        return hash((self.shape, self.dtype))

    def str_short(self):
        return f"{short_dtype_name(self.dtype)}[{','.join(map(str, self.shape))}]"

    def __repr__(self):
        return f"ShapedArray({self.str_short()})"


_SHORT = {"bool": "bool", "float": "f", "int": "i", "uint": "u", "complex": "c"}


def short_dtype_name(dtype):
    name = np.dtype(dtype).name
    for long, short in (("complex", "c"), ("float", "f"), ("uint", "u"), ("int", "i")):
        if name.startswith(long):
            return short + name[len(long):]
    return name
