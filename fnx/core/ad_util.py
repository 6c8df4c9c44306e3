"""Values shared by the derivative rules: the symbolic ``Zero`` tangent and ``UndefinedPrimal``."""

from .abstract import ShapedArray


class Zero:
    """A symbolic all-zero tangent/cotangent of a given aval: never materialized unless needed."""

    __slots__ = ("aval",)

    def __init__(self, aval):
        self.aval = aval

    def __repr__(self):
        return f"Zero({self.aval.str_short()})"


class UndefinedPrimal:
    """Marks the linear input of a primitive in a transpose rule."""

    __slots__ = ("aval",)

    def __init__(self, aval):
        self.aval = aval

    shape = property(lambda self: self.aval.shape)
    dtype = property(lambda self: self.aval.dtype)
    ndim = property(lambda self: len(self.aval.shape))

    def __repr__(self):
        return f"UndefinedPrimal({self.aval.str_short()})"


def is_undefined(x):
    return type(x) is UndefinedPrimal


def tangent_aval(aval):
    """Tangent type of a primal: same shape/dtype for inexact dtypes; integers have none."""
    return ShapedArray(aval.shape, aval.dtype)


def instantiate(t):
    """A concrete (possibly traced) zero array in place of a symbolic ``Zero``."""
    if type(t) is Zero:
        from .ops.elementwise import full

        return full(t.aval.shape, 0, t.aval.dtype)
    return t


def add_tangents(a, b):
    if type(a) is Zero:
        return b
    if type(b) is Zero:
        return a
    from .ops.elementwise import add_p

    return add_p.bind(a, b)
