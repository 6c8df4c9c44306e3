"""Abstract values (avals): what transforms and the compiler know about an array without its data."""

import numpy as np


class ShapedArray:
    """Shape and dtype of an array; the type of every IR variable.

    >>> fnx.core.abstract.ShapedArray((2, 3), np.float32).str_short()
    'f32[2,3]'
    """

    __slots__ = ("shape", "dtype", "weak_type")

    def __init__(self, shape, dtype, weak_type=False):
        # avals are made on every traced op: skip conversions when the inputs are canonical
        self.shape = shape if type(shape) is tuple else tuple(int(d) for d in shape)
        self.dtype = dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)
        # a weakly typed value (a Python scalar, or computed only from them) promotes like a
        # Python scalar of its kind: ``f16_array * weak_f32`` is float16 (docs/transforms.md)
        self.weak_type = weak_type

    ndim = property(lambda self: len(self.shape))
    size = property(lambda self: int(np.prod(self.shape, dtype=np.int64)))

    def update(self, shape=None, dtype=None, weak_type=None):
        return ShapedArray(self.shape if shape is None else shape,
                           self.dtype if dtype is None else dtype,
                           self.weak_type if weak_type is None else weak_type)

    def __eq__(self, other):
        return (type(other) is ShapedArray and self.shape == other.shape
                and self.dtype == other.dtype and self.weak_type == other.weak_type)

    def __hash__(self):
        return hash((self.shape, self.dtype, self.weak_type))

    def str_short(self):
        weak = "{weak}" if self.weak_type else ""
        return f"{short_dtype_name(self.dtype)}[{','.join(map(str, self.shape))}]{weak}"

    def __repr__(self):
        return f"ShapedArray({self.str_short()})"


_SHORT = {"bool": "bool", "float": "f", "int": "i", "uint": "u", "complex": "c"}


def typematch(a, b):
    """Whether two avals have one shape and dtype, ignoring weak types (as JAX's
    ``typematch``): a loop carry or a branch output may differ from its peer only in that."""
    return a.shape == b.shape and a.dtype == b.dtype


def short_dtype_name(dtype):
    name = np.dtype(dtype).name
    for long, short in (("complex", "c"), ("float", "f"), ("uint", "u"), ("int", "i")):
        if name.startswith(long):
            return short + name[len(long):]
    return name
