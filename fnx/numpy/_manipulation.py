"""Manipulation functions: reshape, permute, broadcast, concat/stack, squeeze, flip, ..."""

from ..core.errors import ShapeError, normalize_axes, normalize_axis
from ..core.ops import shape as sh
from ._core import broadcast_shapes, broadcast_to_shape, promote_args, to_array
from ._ufunc import check_order, check_out


def reshape(a, /, shape, order="C", *, copy=None):
    """Reshape ``a``; one entry of ``shape`` may be -1. ``order="F"`` reads and writes the
    elements with the first index fastest (``"A"``/``"K"`` mean ``"C"``: fnx arrays are
    values, logically C-ordered).

    >>> fnx.numpy.reshape(fnx.numpy.arange(6), (2, -1)).shape
    (2, 3)
    >>> fnp.reshape(fnp.arange(6), (2, 3), order="F").tolist()
    [[0, 2, 4], [1, 3, 5]]
    """
    check_order("reshape", order)
    x = to_array(a)
    if order == "F":
        rev = tuple(range(x.ndim))[::-1]
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        out = reshape(sh.transpose(x, rev), shape[::-1], copy=copy)
        return sh.transpose(out, tuple(range(out.ndim))[::-1])
    if isinstance(shape, int):
        shape = (shape,)
    shape = [int(s) for s in shape]
    if shape.count(-1) > 1:
        raise ShapeError(f"reshape: can only specify one unknown dimension, got {tuple(shape)}")
    if -1 in shape:
        known = 1
        for s in shape:
            if s != -1:
                known *= s
        if known == 0 or x.size % known:
            raise ShapeError(f"reshape: cannot reshape an array of shape {x.shape} into "
                             f"{tuple(shape)}")
        shape[shape.index(-1)] = x.size // known
    return sh.reshape(x, tuple(shape))


def permute_dims(a, axes=None):
    """Permute the axes of ``a`` (reverse them when ``axes`` is None).

    >>> fnp.permute_dims(fnp.ones((2, 3, 4)), (2, 0, 1)).shape
    (4, 2, 3)
    """
    x = to_array(a)
    if axes is None:
        axes = tuple(range(x.ndim))[::-1]
    axes = tuple(normalize_axis(a, x.ndim, "permute_dims") for a in axes)
    return sh.transpose(x, axes)


def broadcast_to(array, shape):
    """Broadcast ``array`` to ``shape`` (NumPy rules).

    >>> fnp.broadcast_to(fnp.asarray([1, 2]), (2, 2)).tolist()
    [[1, 2], [1, 2]]
    """
    x = to_array(array)
    shape = tuple(int(s) for s in shape)
    if broadcast_shapes("broadcast_to", x.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: cannot broadcast shape {x.shape} to {shape}")
    return broadcast_to_shape(x, shape)


def broadcast_arrays(*arrays):
    """The arrays broadcast against each other to one common shape.

    >>> [a.shape for a in fnp.broadcast_arrays(fnp.ones((2, 1)), fnp.ones(3))]
    [(2, 3), (2, 3)]
    """
    arrays = [to_array(a) for a in arrays]
    shape = broadcast_shapes("broadcast_arrays", *[a.shape for a in arrays])
    return [broadcast_to_shape(a, shape) for a in arrays]


def expand_dims(a, axis=0):
    """Insert a size-1 axis at ``axis`` (or one at each of a tuple of axes).

    >>> fnp.expand_dims(fnp.ones((2, 3)), axis=1).shape
    (2, 1, 3)
    """
    x = to_array(a)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out_ndim = x.ndim + len(axes)
    axes = normalize_axes(axes, out_ndim, "expand_dims")
    shape = list(x.shape)
    for a in axes:
        shape.insert(a, 1)
    return sh.reshape(x, tuple(shape))


def squeeze(a, axis=None):
    """Remove size-1 axes (all of them when ``axis`` is None).

    >>> fnp.squeeze(fnp.ones((1, 3, 1))).shape
    (3,)
    """
    x = to_array(a)
    if axis is None:
        axes = tuple(i for i, s in enumerate(x.shape) if s == 1)
    else:
        axes = normalize_axes(axis, x.ndim, "squeeze")
    if not axes:
        return x
    return sh.squeeze_p.bind(x, dimensions=axes)


def concat(arrays, /, axis=0, out=None, *, dtype=None):
    """Join arrays along an existing axis (``axis=None`` flattens first); the result has
    ``dtype`` when given.

    >>> fnp.concat([fnp.asarray([1, 2]), fnp.asarray([3])]).tolist()
    [1, 2, 3]
    """
    check_out("concat", out)
    arrays = promote_args("concat", *arrays)
    if dtype is not None:
        arrays = [a.astype(dtype) for a in arrays]
    if axis is None:
        arrays = [reshape(a, (-1,)) for a in arrays]
        axis = 0
    axis = normalize_axis(axis, arrays[0].ndim, "concat")
    if len(arrays) == 1:
        return arrays[0]
    return sh.concatenate_p.bind(*arrays, dimension=axis)


concatenate = concat


def stack(arrays, axis=0, out=None, *, dtype=None):
    """Join arrays along a new axis (the result has ``dtype`` when given).

    >>> fnp.stack([fnp.asarray([1, 2]), fnp.asarray([3, 4])], axis=1).tolist()
    [[1, 3], [2, 4]]
    """
    check_out("stack", out)
    arrays = [to_array(a) for a in arrays]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ShapeError(f"stack: all arrays must have the same shape, got {sorted(shapes)}")
    return concat([expand_dims(a, axis=axis) for a in arrays], axis=axis, dtype=dtype)


def flip(m, axis=None):
    """Reverse the order of elements along ``axis`` (all axes when None).

    >>> fnp.flip(fnp.asarray([1, 2, 3])).tolist()
    [3, 2, 1]
    """
    x = to_array(m)
    axes = normalize_axes(axis, x.ndim, "flip")
    return sh.rev_p.bind(x, dimensions=axes) if axes else x


def moveaxis(a, source, destination):
    """Move axes to new positions.

    >>> fnp.moveaxis(fnp.ones((2, 3, 4)), 0, -1).shape
    (3, 4, 2)
    """
    x = to_array(a)
    src = (source,) if isinstance(source, int) else tuple(source)
    dst = (destination,) if isinstance(destination, int) else tuple(destination)
    src = [normalize_axis(a, x.ndim, "moveaxis") for a in src]
    dst = [normalize_axis(a, x.ndim, "moveaxis") for a in dst]
    order = [i for i in range(x.ndim) if i not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return sh.transpose(x, tuple(order))


def swapaxes(a, axis1, axis2):
    """Swap two axes of ``a``.

    >>> fnp.swapaxes(fnp.ones((2, 3, 4)), 0, 2).shape
    (4, 3, 2)
    """
    x = to_array(a)
    perm = list(range(x.ndim))
    a, b = normalize_axis(axis1, x.ndim, "swapaxes"), normalize_axis(axis2, x.ndim, "swapaxes")
    perm[a], perm[b] = perm[b], perm[a]
    return sh.transpose(x, tuple(perm))


def matrix_transpose(x, /):
    """Swap the last two axes (a batch of matrices stays a batch).

    >>> fnp.matrix_transpose(fnp.ones((5, 2, 3))).shape
    (5, 3, 2)
    """
    x = to_array(x)
    if x.ndim < 2:
        raise ShapeError(f"matrix_transpose: needs at least 2 dims, got shape {x.shape}")
    return swapaxes(x, -1, -2)


# the public surface: every public function or class defined here
__all__ = [_n for _n, _v in list(globals().items()) if not _n.startswith("_") and callable(_v)
           and getattr(_v, "__module__", None) == __name__]
