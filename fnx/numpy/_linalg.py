"""matmul, tensordot, vecdot: wrappers over dot_general."""

from ..core.errors import ShapeError
from ..core.ops.linalg import dot_general_p
from ._core import broadcast_shapes, broadcast_to_shape, promote_args


def matmul(x1, x2, /):
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting.

    >>> fnx.numpy.matmul(fnx.numpy.ones((2, 3)), fnx.numpy.ones((3, 4))).shape
    (2, 4)
    """
    from ._manipulation import expand_dims, squeeze

    x1, x2 = promote_args("matmul", x1, x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ShapeError(f"matmul: operands must be at least 1-D, got shapes {x1.shape} and "
                         f"{x2.shape}; use * for scalars")
    v1, v2 = x1.ndim == 1, x2.ndim == 1
    if v1:
        x1 = expand_dims(x1, axis=0)
    if v2:
        x2 = expand_dims(x2, axis=1)
    if x1.shape[-1] != x2.shape[-2]:
        raise ShapeError(f"matmul: shapes {x1.shape} and {x2.shape} are not aligned: "
                         f"{x1.shape[-1]} (dim -1 of the first) != {x2.shape[-2]} "
                         f"(dim -2 of the second)")
    if x2.ndim == 2 and x1.ndim >= 2:
        # fold all leading dims of x1 into rows: one BLAS call, no batch broadcast
        out = dot_general_p.bind(x1, x2, dimension_numbers=(((x1.ndim - 1,), (0,)), ((), ())))
    else:
        batch = broadcast_shapes("matmul", x1.shape[:-2], x2.shape[:-2])
        x1 = broadcast_to_shape(x1, batch + x1.shape[-2:])
        x2 = broadcast_to_shape(x2, batch + x2.shape[-2:])
        nb = len(batch)
        dims = (((nb + 1,), (nb,)), (tuple(range(nb)), tuple(range(nb))))
        out = dot_general_p.bind(x1, x2, dimension_numbers=dims)
    if v1:
        out = squeeze(out, axis=-2)
    if v2:
        out = squeeze(out, axis=-1)
    return out


def tensordot(x1, x2, /, *, axes=2):
    """Contract the last ``axes`` dims of ``x1`` with the first of ``x2`` (or explicit lists)."""
    x1, x2 = promote_args("tensordot", x1, x2)
    if isinstance(axes, int):
        a1 = tuple(range(x1.ndim - axes, x1.ndim))
        a2 = tuple(range(axes))
    else:
        a1, a2 = (tuple(a) if not isinstance(a, int) else (a,) for a in axes)
        a1 = tuple(a % x1.ndim for a in a1)
        a2 = tuple(a % x2.ndim for a in a2)
    return dot_general_p.bind(x1, x2, dimension_numbers=((a1, a2), ((), ())))


def vecdot(x1, x2, /, *, axis=-1):
    """Conjugated dot product along ``axis`` with broadcasting."""
    from ._elementwise import conj
    from ._statistical import sum

    x1, x2 = promote_args("vecdot", x1, x2)
    n1, n2 = x1.shape[axis], x2.shape[axis]
    if n1 != n2:
        raise ShapeError(f"vecdot: sizes along axis {axis} differ: {x1.shape} and {x2.shape}")
    return sum(conj(x1) * x2, axis=axis)
