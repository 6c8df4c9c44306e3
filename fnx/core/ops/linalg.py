"""dot_general: the one contraction primitive (matmul, batched matmul, tensordot, einsum)."""

import math

import numpy as np

from .. import blas
from ..abstract import ShapedArray
from ..ad_util import Zero, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .shape import move_axis, transpose

dot_general_p = Primitive("dot_general")


def _free(ndim, contract, batch):
    return tuple(i for i in range(ndim) if i not in contract and i not in batch)


def _dot_general_abstract_eval(lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    ok = len(lc) == len(rc) and len(lb) == len(rb)
    ok = ok and all(0 <= a < lhs.ndim for a in lc + lb) and all(0 <= a < rhs.ndim for a in rc + rb)
    if not ok or any(lhs.shape[a] != rhs.shape[b] for a, b in zip(lc + lb, rc + rb)):
        raise ShapeError(
            f"dot_general: shapes {lhs.shape} and {rhs.shape} do not match for contracting "
            f"dims {lc}/{rc} and batch dims {lb}/{rb} (for matmul, the last dim of the first "
            f"operand must equal the second-to-last dim of the second)"
        )
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"dot_general: operand dtypes differ ({lhs.dtype}, {rhs.dtype}); "
                         f"convert with .astype() first")
    if lhs.dtype.kind == "b":
        raise DTypeError("dot_general: bool operands are not supported")
    shape = (tuple(lhs.shape[a] for a in lb) + tuple(lhs.shape[a] for a in _free(lhs.ndim, lc, lb))
             + tuple(rhs.shape[a] for a in _free(rhs.ndim, rc, rb)))
    return ShapedArray(shape, lhs.dtype)


def _dot_general_impl(lhs, rhs, *, dimension_numbers):
    if lhs.dtype.kind == "b":  # eager calls skip the rule that refuses them under jit
        _dot_general_abstract_eval(lhs, rhs, dimension_numbers=dimension_numbers)
    (lc, rc), (lb, rb) = dimension_numbers
    if lc == (1,) and rc == (0,) and not lb and lhs.ndim == 2 and rhs.ndim == 2:
        return blas.matmul(lhs, rhs)  # a matrix product (x @ w): no layout work around BLAS
    lf, rf = _free(lhs.ndim, lc, lb), _free(rhs.ndim, rc, rb)
    size = lambda x, axes: math.prod(x.shape[a] for a in axes)  # noqa: E731
    batch_shape = tuple(lhs.shape[a] for a in lb)
    nb = size(lhs, lb)
    a = np.transpose(lhs, lb + lf + lc).reshape(nb, size(lhs, lf), size(lhs, lc))
    b = np.transpose(rhs, rb + rc + rf).reshape(nb, size(rhs, rc), size(rhs, rf))
    if a.shape[2] == 1 and nb > 1:
        # A batch of outer products (per-example weight gradients under vmap): matmul would
        # make nb tiny GEMM calls with k = 1.  einsum's product kernel gives the same numbers
        # (one multiply each) 2-3x faster than the broadcast multiply ``a * b``, whose inner
        # loop has a stride-0 operand (512x64x100 f32: 0.75 ms vs 2.3 ms).
        out = np.einsum("bik,bkj->bij", a, b)
    else:
        out = blas.matmul(a, b)  # BLAS for float dtypes
    return out.reshape(batch_shape + tuple(lhs.shape[i] for i in lf) + tuple(rhs.shape[i] for i in rf))


def _dot_general_jvp(primals, tangents, *, dimension_numbers):
    lhs, rhs = primals
    tl, tr = tangents
    ans = dot_general_p.bind(lhs, rhs, dimension_numbers=dimension_numbers)
    out = Zero(ShapedArray(ans.shape, ans.dtype))
    from ..ad_util import add_tangents

    if type(tl) is not Zero:
        out = add_tangents(out, dot_general_p.bind(tl, rhs, dimension_numbers=dimension_numbers))
    if type(tr) is not Zero:
        out = add_tangents(out, dot_general_p.bind(lhs, tr, dimension_numbers=dimension_numbers))
    return ans, out


def _ranges_like(*xs):
    start = 0
    for x in xs:
        yield tuple(range(start, start + len(x)))
        start += len(x)


def _transpose_lhs(ct, lhs_shape, rhs, dimension_numbers):
    # Contract ct with rhs over rhs's free dims, then permute back to lhs's layout.
    (lc, rc), (lb, rb) = dimension_numbers
    x_ndim, y_ndim = len(lhs_shape), rhs.ndim
    x_kept = _free(x_ndim, lc, lb)
    y_kept = _free(y_ndim, rc, rb)
    ans_batch, ans_x, ans_y = _ranges_like(lb, x_kept, y_kept)
    dims = ((ans_y, y_kept), (ans_batch, rb))
    x_contract_sorted_by_y = tuple(np.array(lc)[np.argsort(rc)].tolist()) if lc else ()
    out_axes = np.argsort(list(lb) + list(x_kept) + list(x_contract_sorted_by_y))
    res = dot_general_p.bind(ct, rhs, dimension_numbers=dims)
    return transpose(res, tuple(out_axes.tolist()))


def _dot_general_transpose(ct, lhs, rhs, *, dimension_numbers):
    (lc, rc), (lb, rb) = dimension_numbers
    if is_undefined(lhs) and is_undefined(rhs):
        raise TypeError("dot_general: transpose of a product of two linear values")
    if is_undefined(lhs):
        return [_transpose_lhs(ct, lhs.aval.shape, rhs, dimension_numbers), None]
    # swap roles: ct's layout is (batch, lhs_free, rhs_free); make it (batch, rhs_free, lhs_free)
    x_kept = _free(lhs.ndim, lc, lb)
    y_kept = _free(rhs.aval.ndim, rc, rb)
    nb = len(lb)
    perm = (tuple(range(nb)) + tuple(range(nb + len(x_kept), nb + len(x_kept) + len(y_kept)))
            + tuple(range(nb, nb + len(x_kept))))
    swapped = ((rc, lc), (rb, lb))
    return [None, _transpose_lhs(transpose(ct, perm), rhs.aval.shape, lhs, swapped)]


def _bumped(axes, bdim):
    """Operand axes renumbered after a batch axis was inserted at ``bdim``."""
    return tuple(a + (a >= bdim) for a in axes)


def _dot_general_batch(axis_size, args, dims, *, dimension_numbers):
    del axis_size  # unused: an unbatched operand is never broadcast
    (lc, rc), (lb, rb) = dimension_numbers
    lhs, rhs = args
    dl, dr = dims
    if dl is not None and dr is not None:
        # both batched: the batch axis becomes one more dot_general batch dim
        lhs, rhs = move_axis(lhs, dl, 0), move_axis(rhs, dr, 0)
        shift = lambda axes: tuple(a + 1 for a in axes)  # noqa: E731
        new = ((shift(lc), shift(rc)), ((0,) + shift(lb), (0,) + shift(rb)))
        return dot_general_p.bind(lhs, rhs, dimension_numbers=new), 0
    # Only one operand batched: its batch axis is just one more free dim of that operand (as
    # JAX's _dot_general_batch_rule). Broadcasting the other operand to the batch size would
    # turn one matmul into axis_size small ones (per-example gradients of a dense layer:
    # ``x @ W`` with batched x stays a single (B*n, k) @ (k, m) GEMM this way).
    if dl is not None:
        new = ((_bumped(lc, dl), rc), (_bumped(lb, dl), rb))
        free = _free(lhs.ndim, new[0][0], new[1][0])
        out_dim = len(lb) + free.index(dl)
    else:
        new = ((lc, _bumped(rc, dr)), (lb, _bumped(rb, dr)))
        free = _free(rhs.ndim, new[0][1], new[1][1])
        out_dim = len(lb) + len(_free(lhs.ndim, lc, lb)) + free.index(dr)
    return dot_general_p.bind(lhs, rhs, dimension_numbers=new), out_dim


dot_general_p.impl = _dot_general_impl
dot_general_p.abstract_eval = _dot_general_abstract_eval
dot_general_p.jvp = _dot_general_jvp
dot_general_p.transpose = _dot_general_transpose
dot_general_p.batch = _dot_general_batch
dot_general_p.fusion_kind = "opaque"
dot_general_p.call_kind = "blas"  # np.matmul / cuBLAS where it is a matrix product
