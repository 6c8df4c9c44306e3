"""matmul, tensordot, vecdot (wrappers over dot_general) and the ``linalg`` extension.

The decompositions are compositions of primitives too: Gauss-Jordan elimination with partial
pivoting (argmax + one-hot row swaps) for solve/inv/det/slogdet, column-by-column Cholesky,
Householder QR, cyclic Jacobi for eigh, and SVD from eigh of the Gram matrix. They unroll over
the (static) matrix size, so they suit the small and medium matrices of deep-learning code; a
fixed number of Jacobi sweeps keeps them traceable under jit/vmap/grad.
"""

import math
from typing import NamedTuple

import numpy as np

from ..core import dtypes
from ..core.array import Array
from ..core.errors import AxisError, DTypeError, ShapeError, normalize_axes, normalize_axis
from ..core.ops import elementwise as ew
from ..core.ops import shape as sh
from ..core.ops.linalg import dot_general_p
from ..core.tracing import Tracer
from ..transforms.custom import custom_jvp
from ._core import broadcast_shapes, broadcast_to_shape, promote_args, to_array
from ._manipulation import expand_dims, squeeze
from ._statistical import _norm_root
from ._ufunc import call_ufunc


def matmul(x1, x2, /, out=None, *, dtype=None):
    """Matrix product with NumPy's rules for 1-D operands and batch broadcasting (in
    ``dtype`` when given).

    >>> fnx.numpy.matmul(fnx.numpy.ones((2, 3)), fnx.numpy.ones((3, 4))).shape
    (2, 4)
    """
    if out is not None or dtype is not None:
        return call_ufunc("matmul", matmul, out, dtype, x1, x2)
    if not (type(x1) is Array and type(x2) is Array and x1.dtype == x2.dtype):
        x1, x2 = promote_args("matmul", x1, x2)  # (two arrays of one dtype: nothing to do)
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


def tensordot(a, b, axes=2):
    """Contract the last ``axes`` dims of ``a`` with the first of ``b`` (or explicit lists).

    >>> fnp.tensordot(fnp.ones((2, 3)), fnp.ones((3, 4)), axes=1).tolist()[0]
    [3.0, 3.0, 3.0, 3.0]
    """
    x1, x2 = promote_args("tensordot", a, b)
    if isinstance(axes, (int, np.integer)):
        if not 0 <= axes <= min(x1.ndim, x2.ndim):
            raise ShapeError(f"tensordot: axes={axes} does not fit shapes {x1.shape} and "
                             f"{x2.shape}")
        a1 = tuple(range(x1.ndim - axes, x1.ndim))
        a2 = tuple(range(axes))
    else:
        a1, a2 = (tuple(a) if not isinstance(a, (int, np.integer)) else (a,) for a in axes)
        a1 = tuple(normalize_axis(a, x1.ndim, "tensordot") for a in a1)
        a2 = tuple(normalize_axis(a, x2.ndim, "tensordot") for a in a2)
    if len(a1) != len(a2) or any(x1.shape[a] != x2.shape[b] for a, b in zip(a1, a2)):
        raise ShapeError(f"tensordot: contracted axes {a1} of {x1.shape} and {a2} of "
                         f"{x2.shape} must have equal sizes")
    if x1.dtype == dtypes.bool_:
        raise DTypeError("tensordot: bool operands are not supported; cast to a numeric dtype")
    return dot_general_p.bind(x1, x2, dimension_numbers=((a1, a2), ((), ())))


def vecdot(x1, x2, /, out=None, *, axis=-1, dtype=None):
    """Conjugated dot product along ``axis``, broadcasting the other dims.

    >>> fnx.numpy.vecdot(fnx.numpy.ones((2, 3)), fnx.numpy.ones(3)).tolist()
    [3.0, 3.0]
    """
    from ._elementwise import conj
    from ._statistical import sum

    if out is not None or dtype is not None:
        return call_ufunc("vecdot", lambda a, b: vecdot(a, b, axis=axis), out, dtype, x1, x2)
    x1, x2 = promote_args("vecdot", x1, x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ShapeError(f"vecdot: operands must be at least 1-D, got {x1.shape} and {x2.shape}")
    shape = broadcast_shapes("vecdot", x1.shape, x2.shape)
    ax = normalize_axis(axis, len(shape), "vecdot")
    if axis >= 0 and x1.ndim != x2.ndim:
        raise AxisError(f"vecdot: a non-negative axis needs operands of equal rank, got "
                        f"{x1.shape} and {x2.shape}")
    n1, n2 = x1.shape[ax - len(shape)], x2.shape[ax - len(shape)]
    if n1 != n2:
        raise ShapeError(f"vecdot: sizes along axis {axis} differ: {x1.shape} and {x2.shape}")
    x1, x2 = broadcast_to_shape(x1, shape), broadcast_to_shape(x2, shape)
    return sum(conj(x1) * x2, axis=ax, dtype=x1.dtype)


# --- linalg helpers ------------------------------------------------------------------------


def _fnp():
    import fnx.numpy as fnp

    return fnp


def _inexact(op, x):
    x = to_array(x)
    if x.dtype.kind not in "fc":
        if x.dtype.kind == "b":
            raise DTypeError(f"{op}: bool input is not supported; use a floating dtype")
        x = ew.convert_element_type(x, dtypes.default_float())
    return x


def _square(op, x):
    x = _inexact(op, x)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"{op}: expects a stack of square matrices (..., n, n), got shape "
                         f"{x.shape}")
    return x


def _real_dtype(dt):
    return {dtypes.complex64: dtypes.float32, dtypes.complex128: dtypes.float64}.get(dt, dt)


def _iota(n, shape=None, dim=0):
    return sh.iota_p.bind(dtype=np.dtype(np.int64), shape=(n,) if shape is None else shape,
                          dimension=dim)


def _eye_like(x, n):
    return broadcast_to_shape(_fnp().eye(n, dtype=x.dtype), x.shape[:-2] + (n, n))


def _col(x, j):
    """``x[..., :, j]`` as an (..., n) array."""
    from ._extra import _slice_axis

    return sh.squeeze_p.bind(_slice_axis(x, x.ndim - 1, j, j + 1), dimensions=(x.ndim - 1,))


def _row(x, i, keep=False):
    from ._extra import _slice_axis

    r = _slice_axis(x, x.ndim - 2, i, i + 1)
    return r if keep else sh.squeeze_p.bind(r, dimensions=(x.ndim - 2,))


def _entry(x, i, j):
    return _col(_row(x, i, keep=True), j)[..., 0]


def _abs_real(x):
    return _fnp().abs(x)


def _mT(x):
    return sh.transpose(x, tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2))


def _mH(x):
    from ._elementwise import conj

    return conj(_mT(x))


def _gauss_jordan(a, b):
    """Reduce ``a`` (..., n, n) to diagonal form with partial pivoting, applying the same row
    operations to ``b`` (..., n, k); returns (reduced a, reduced b, permutation sign)."""
    fnp = _fnp()
    n = a.shape[-1]
    idx = _iota(n)
    sign = fnp.ones(a.shape[:-2], dtype=_real_dtype(a.dtype))
    for j in range(n):
        colj = _col(a, j)
        cand = fnp.where(idx >= j, _abs_real(colj), -1)
        p = fnp.argmax(cand, axis=-1)
        onehot_p = ew.convert_element_type(idx == fnp.expand_dims(p, axis=-1), a.dtype)
        onehot_j = ew.convert_element_type(idx == j, a.dtype)
        swapped = []
        for m in (a, b):
            rj = _row(m, j, keep=True)
            rp = fnp.sum(fnp.expand_dims(onehot_p, axis=-1) * m, axis=-2, keepdims=True)
            m = (m + fnp.expand_dims(onehot_j, axis=-1) * (rp - rj)
                 + fnp.expand_dims(onehot_p, axis=-1) * (rj - rp))
            swapped.append(m)
        a, b = swapped
        sign = fnp.where(p == j, sign, -sign)
        pivot = _entry(a, j, j)
        safe = fnp.where(pivot == 0, ew.full((), 1, a.dtype), pivot)
        factors = fnp.where(idx == j, ew.full((), 0, a.dtype),
                            _col(a, j) / fnp.expand_dims(safe, axis=-1))
        factors = fnp.expand_dims(factors, axis=-1)
        a = a - factors * _row(a, j, keep=True)
        b = b - factors * _row(b, j, keep=True)
    return a, b, sign


def solve(a, b):
    """Solve ``a @ x = b`` (``b`` of shape (n,) is one vector, else a stack of (n, k)).

    >>> fnx.numpy.linalg.solve(2 * fnx.numpy.eye(2), fnx.numpy.ones(2)).tolist()
    [0.5, 0.5]
    """
    fnp = _fnp()
    x1, x2 = promote_args("solve", a, b)
    x1 = _square("solve", x1)
    x2 = ew.convert_element_type(x2, x1.dtype)
    n = x1.shape[-1]
    vector = x2.ndim == 1
    if vector:
        if x2.shape[0] != n:
            raise ShapeError(f"solve: x2 of shape {x2.shape} does not fit x1 of shape {x1.shape}")
        x2 = fnp.reshape(x2, (n, 1))
    if x2.ndim < 2 or x2.shape[-2] != n:
        raise ShapeError(f"solve: x2 of shape {x2.shape} does not fit x1 of shape {x1.shape}; "
                         f"x2 must be (n,) or (..., n, k)")
    batch = broadcast_shapes("solve", x1.shape[:-2], x2.shape[:-2])
    a = broadcast_to_shape(x1, batch + x1.shape[-2:])
    b = broadcast_to_shape(x2, batch + x2.shape[-2:])
    a, b, _ = _gauss_jordan(a, b)
    x = b / fnp.expand_dims(diagonal(a), axis=-1)
    return x[..., 0] if vector else x


def inv(a):
    """Inverse of a stack of square matrices.

    >>> fnx.numpy.linalg.inv(2 * fnx.numpy.eye(2)).tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    """
    x = _square("inv", a)
    return solve(x, _eye_like(x, x.shape[-1]))


def det(a):
    """Determinant of a stack of square matrices.

    >>> fnx.numpy.linalg.det(2 * fnx.numpy.eye(2)).item()
    4.0
    """
    fnp = _fnp()
    x = _square("det", a)
    a, _, sign = _gauss_jordan(x, x[..., :, :0])
    return fnp.prod(diagonal(a), axis=-1) * ew.convert_element_type(sign, x.dtype)


class SlogdetResult(NamedTuple):
    sign: Array
    logabsdet: Array


def slogdet(a):
    """Sign (unit phase for complex) and log of the absolute determinant.

    >>> fnx.numpy.linalg.slogdet(2 * fnx.numpy.eye(2)).sign.item()
    1.0
    """
    fnp = _fnp()
    x = _square("slogdet", a)
    a, _, sign = _gauss_jordan(x, x[..., :, :0])
    d = diagonal(a)
    mag = fnp.abs(d)
    logabsdet = fnp.sum(fnp.log(mag), axis=-1)
    unit = d / fnp.where(mag == 0, 1, mag).astype(d.dtype)
    s = fnp.prod(unit, axis=-1) * ew.convert_element_type(sign, x.dtype)
    return SlogdetResult(s, logabsdet)


def cholesky(x, /, *, upper=False):
    """Cholesky factor ``L`` (``x = L @ L^H``), or ``U = L^H`` with ``upper=True``.

    >>> fnx.numpy.linalg.cholesky(4 * fnx.numpy.eye(2)).tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    fnp = _fnp()
    from ._elementwise import conj, real

    x = _square("cholesky", x)
    n = x.shape[-1]
    idx = _iota(n)
    cols = []
    for j in range(n):
        col = _col(x, j)
        for k in range(j):
            col = col - cols[k] * conj(cols[k][..., j:j + 1])
        d = fnp.sqrt(real(col[..., j:j + 1])).astype(x.dtype)
        col = fnp.where(idx > j, col / d, fnp.where(idx == j, d, ew.full((), 0, x.dtype)))
        cols.append(col)
    low = fnp.stack(cols, axis=-1) if cols else x
    return _mH(low) if upper else low


def qr(a, mode="reduced"):
    """Householder QR: ``Q`` with orthonormal columns and upper-triangular ``R``.

    >>> [a.shape for a in fnx.numpy.linalg.qr(fnx.numpy.ones((3, 2)))]
    [(3, 2), (2, 2)]
    """
    fnp = _fnp()
    from ._elementwise import conj

    if mode not in ("reduced", "complete"):
        raise ValueError(f"qr: mode must be 'reduced' or 'complete', got {mode!r}")
    x = _inexact("qr", a)
    if x.ndim < 2:
        raise ShapeError(f"qr: expects a stack of matrices (..., m, n), got shape {x.shape}")
    m, n = x.shape[-2:]
    k = min(m, n)
    idx = _iota(m)
    r, q = x, _eye_like(x[..., :, :1], m) if m else x[..., :, :0]
    for j in range(k):
        v = fnp.where(idx >= j, _col(r, j), ew.full((), 0, x.dtype))
        xj = _entry(r, j, j)
        normx = fnp.sqrt(fnp.sum(fnp.real(v * conj(v)), axis=-1)).astype(x.dtype)
        mag = fnp.abs(xj).astype(x.dtype)
        phase = fnp.where(mag == 0, ew.full((), 1, x.dtype), xj / fnp.where(mag == 0, 1, mag))
        v = v + fnp.where(idx == j, fnp.expand_dims(phase * normx, axis=-1),
                          ew.full((), 0, x.dtype))
        vnorm = fnp.sqrt(fnp.sum(fnp.real(v * conj(v)), axis=-1, keepdims=True)).astype(x.dtype)
        v = v / fnp.where(vnorm == 0, 1, vnorm)
        vr = matmul(fnp.expand_dims(conj(v), axis=-2), r)  # (..., 1, n)
        r = r - 2 * fnp.expand_dims(v, axis=-1) * vr
        qv = matmul(q, fnp.expand_dims(v, axis=-1))  # (..., m, 1)
        q = q - 2 * qv * fnp.expand_dims(conj(v), axis=-2)
    from ._extra import triu

    if mode == "reduced":
        q, r = q[..., :, :k], r[..., :k, :]
    return QRResult(q, triu(r))


class QRResult(NamedTuple):
    Q: Array
    R: Array


class EighResult(NamedTuple):
    eigenvalues: Array
    eigenvectors: Array


def _sort_ascending(w, vecs=None):
    """Sort the last axis of ``w`` ascending (ties keep their order) with a permutation matrix
    built from pairwise comparisons; permute the columns of ``vecs`` the same way."""
    fnp = _fnp()
    n = w.shape[-1]
    wi, wj = fnp.expand_dims(w, axis=-1), fnp.expand_dims(w, axis=-2)
    before = (wj < wi) | ((wj == wi) & (_iota(n, (n, n), 1) < _iota(n, (n, n), 0)))
    rank = fnp.sum(before, axis=-1)  # (..., n)
    perm = ew.convert_element_type(fnp.expand_dims(rank, axis=-1) == _iota(n), w.dtype)
    ws = fnp.sum(fnp.expand_dims(w, axis=-1) * perm, axis=-2)
    if vecs is None:
        return ws
    return ws, matmul(vecs, ew.convert_element_type(perm, vecs.dtype))


def _jacobi(x, sweeps):
    """Cyclic Jacobi rotations: ``x`` (Hermitian) -> (diagonalised x, accumulated rotations)."""
    fnp = _fnp()
    from ._elementwise import conj

    n = x.shape[-1]
    a, v = x, _eye_like(x, n)
    cplx = x.dtype.kind == "c"
    rdt = _real_dtype(x.dtype)
    ident = _fnp().eye(n, dtype=x.dtype)
    for _ in range(sweeps):
        for p in range(n - 1):
            for q in range(p + 1, n):
                app = fnp.real(_entry(a, p, p))
                aqq = fnp.real(_entry(a, q, q))
                apq = _entry(a, p, q)
                mag = fnp.abs(apq)
                nonzero = mag > 0
                safe = fnp.where(nonzero, mag, 1)
                # complex: the phase rotation below makes a_pq real and positive first
                tau = (aqq - app) / (2 * (safe if cplx else fnp.where(nonzero, apq, 1)))
                sgn = fnp.where(tau >= 0, 1, -1).astype(rdt)
                t = fnp.where(nonzero, sgn / (fnp.abs(tau) + fnp.sqrt(1 + tau * tau)), 0)
                c = 1 / fnp.sqrt(1 + t * t)
                s = t * c
                ep = ew.convert_element_type(_iota(n) == p, x.dtype)
                eq = ew.convert_element_type(_iota(n) == q, x.dtype)
                epp = fnp.outer(ep, ep)
                eqq = fnp.outer(eq, eq)
                epq = fnp.outer(ep, eq) - fnp.outer(eq, ep)
                c_, s_ = (fnp.expand_dims(fnp.expand_dims(z.astype(x.dtype), axis=-1), axis=-1)
                          for z in (c, s))
                rot = ident + (c_ - 1) * (epp + eqq) + s_ * epq
                if cplx:
                    phi = fnp.where(nonzero, apq / safe.astype(x.dtype), 1)
                    phase = ident + (fnp.expand_dims(fnp.expand_dims(conj(phi), -1), -1) - 1) * eqq
                    rot = matmul(phase, rot)
                a = matmul(_mH(rot), matmul(a, rot))
                v = matmul(v, rot)
    return a, v


def _sweeps(dt):
    return 10 if _real_dtype(dt) == dtypes.float64 else 7


def _hermitian(op, a, UPLO):
    """The Hermitian matrices whose lower (``UPLO="L"``) or upper (``"U"``) triangle ``a``
    holds; as in NumPy (LAPACK) the other triangle and the diagonal's imaginary part are not
    read."""
    from ._elementwise import real, where
    from ._extra import tril, triu

    if UPLO not in ("L", "U"):
        raise ValueError(f"{op}: UPLO must be 'L' or 'U', got {UPLO!r}")
    x = _square(op, a)
    part = tril(x, -1) if UPLO == "L" else triu(x, 1)
    n = x.shape[-1]
    return where(_iota(n, (n, n), 0) == _iota(n, (n, n), 1), real(x).astype(x.dtype),
                 part + _mH(part))


def _eigh_jacobi(x):
    """Eigenvalues (ascending) and eigenvectors of Hermitian ``x`` by cyclic Jacobi."""
    from ._elementwise import real

    a, v = _jacobi(x, _sweeps(x.dtype))
    return _sort_ascending(real(diagonal(a)), v)


_eigh_custom = custom_jvp(_eigh_jacobi)


def _eigh(x):
    # an eager call is never differentiated: skip tracing the sweeps for the custom rule
    return _eigh_custom(x) if isinstance(x, Tracer) else _eigh_jacobi(x)


@_eigh_custom.defjvp
def _eigh_jvp(primals, tangents):
    # The derivative of the eigendecomposition, not of the Jacobi sweeps that compute it:
    # those give 0 for a diagonal input (whose eigenvectors do move) and 0/0 once an
    # off-diagonal entry underflows. dw = diag(V^H dX V), dV = V (F * V^H dX V) with
    # F_ij = 1 / (w_j - w_i) off the diagonal, and 0 inside a degenerate eigenspace (whose
    # basis is arbitrary; JAX gives inf there).
    from ._elementwise import real, where

    (x,), (dx,) = primals, tangents
    w, v = _eigh(x)
    vh_dx_v = matmul(_mH(v), matmul(dx, v))
    gap = _fnp().expand_dims(w, axis=-2) - _fnp().expand_dims(w, axis=-1)
    f = where(gap == 0, 0, 1 / where(gap == 0, 1, gap)).astype(v.dtype)
    return (w, v), (real(diagonal(vh_dx_v)), matmul(v, f * vh_dx_v))


def eigh(a, UPLO="L"):
    """Eigenvalues (ascending) and eigenvectors of a stack of Hermitian matrices, read from
    their lower (``UPLO="L"``) or upper (``"U"``) triangle (cyclic Jacobi).

    >>> fnx.numpy.linalg.eigh(fnx.numpy.eye(2)).eigenvalues.tolist()
    [1.0, 1.0]
    >>> fnp.linalg.eigh(fnp.asarray([[2.0, 1.0], [7.0, 2.0]]), "U").eigenvalues.round(4).tolist()
    [1.0, 3.0]
    """
    return EighResult(*_eigh(_hermitian("eigh", a, UPLO)))


def eigvalsh(a, UPLO="L"):
    """Eigenvalues (ascending) of a stack of Hermitian matrices (read from the ``UPLO``
    triangle, as ``eigh``).

    >>> fnx.numpy.linalg.eigvalsh(fnx.numpy.eye(2)).tolist()
    [1.0, 1.0]
    """
    return eigh(a, UPLO).eigenvalues


class SVDResult(NamedTuple):
    U: Array
    S: Array
    Vh: Array


def svd(a, full_matrices=True, compute_uv=True, hermitian=False):
    """Singular value decomposition ``a = U @ diag(S) @ Vh`` (S descending), from the
    eigendecomposition of the Gram matrix; ``compute_uv=False`` returns ``S`` alone.
    ``hermitian`` is a speed hint in NumPy and changes nothing here.

    >>> fnx.numpy.linalg.svd(fnx.numpy.eye(2)).S.tolist()
    [1.0, 1.0]
    >>> fnp.linalg.svd(2 * fnp.eye(2), compute_uv=False).tolist()
    [2.0, 2.0]
    """
    del hermitian  # unused: the general algorithm gives the same factors
    fnp = _fnp()
    x = _inexact("svd", a)
    if not compute_uv:
        return svd(x, full_matrices=False).S
    if x.ndim < 2:
        raise ShapeError(f"svd: expects a stack of matrices (..., m, n), got shape {x.shape}")
    m, n = x.shape[-2:]
    if m < n:
        u, s, vh = svd(_mH(x), full_matrices=full_matrices)
        return SVDResult(_mH(vh), s, _mH(u))
    w, v = eigh(matmul(_mH(x), x))
    w, v = fnp.flip(w, axis=-1), fnp.flip(v, axis=-1)  # descending
    s = fnp.sqrt(fnp.maximum(w, 0))
    safe = fnp.where(s > 0, s, 1).astype(x.dtype)
    u = matmul(x, v) / fnp.expand_dims(safe, axis=-2)
    u = fnp.where(fnp.expand_dims(s > 0, axis=-2), u, ew.full((), 0, x.dtype))
    if full_matrices and m > n:
        # complete U's columns to an orthonormal basis of R^m
        q = qr(fnp.concat([u, _eye_like(x[..., :, :1], m)], axis=-1), mode="complete").Q
        u = fnp.concat([u, q[..., :, n:]], axis=-1)
    return SVDResult(u, s, _mH(v))


def svdvals(x, /):
    """Singular values, descending.

    >>> fnx.numpy.linalg.svdvals(2 * fnx.numpy.eye(2)).tolist()
    [2.0, 2.0]
    """
    return svd(x, full_matrices=False).S


def pinv(a, rcond=None, hermitian=False, *, rtol=None):
    """Moore-Penrose pseudo-inverse; singular values below ``rtol * max(S)`` are dropped
    (``rcond`` is NumPy's older name for ``rtol``). The default ``rtol`` is the array API's
    ``max(m, n) * eps``: NumPy's 1e-15 would keep rounding noise in float32. ``hermitian``
    changes nothing here.

    >>> fnx.numpy.linalg.pinv(2 * fnx.numpy.eye(2)).tolist()
    [[0.5, 0.0], [0.0, 0.5]]
    """
    del hermitian  # unused: the general algorithm gives the same result
    if rcond is not None:
        if rtol is not None:
            raise ValueError("pinv: pass rtol or its older name rcond, not both")
        rtol = rcond
    fnp = _fnp()
    x = _inexact("pinv", a)
    m, n = x.shape[-2:]
    if rtol is None:
        rtol = max(m, n) * float(np.finfo(_real_dtype(x.dtype)).eps)
    u, s, vh = svd(x, full_matrices=False)
    cutoff = fnp.expand_dims(to_array(rtol), axis=-1) * fnp.max(s, axis=-1, keepdims=True) \
        if s.shape[-1] else s
    keep = s > cutoff
    sinv = fnp.where(keep, 1 / fnp.where(keep, s, 1), 0).astype(x.dtype)
    return matmul(_mH(vh) * fnp.expand_dims(sinv, axis=-2), _mH(u))


def matrix_rank(A, tol=None, hermitian=False, *, rtol=None):
    """Number of singular values above ``tol`` (absolute) or ``rtol * max(S)`` (relative;
    default ``max(m, n) * eps``). A vector has rank 1 unless it is all zeros, as NumPy.

    >>> fnx.numpy.linalg.matrix_rank(fnx.numpy.eye(3)).item()
    3
    """
    del hermitian  # unused: the singular values are the same
    fnp = _fnp()
    x = _inexact("matrix_rank", A)
    if x.ndim < 2:
        return fnp.any(x != 0).astype(dtypes.default_int())
    if tol is not None and rtol is not None:
        raise ValueError("matrix_rank: pass tol (absolute) or rtol (relative), not both")
    m, n = x.shape[-2:]
    s = svdvals(x)
    if not s.shape[-1]:
        return fnp.zeros(s.shape[:-1], dtype=dtypes.default_int())
    if tol is None:
        if rtol is None:
            rtol = max(m, n) * float(np.finfo(_real_dtype(x.dtype)).eps)
        tol = fnp.expand_dims(to_array(rtol), axis=-1) * fnp.max(s, axis=-1, keepdims=True)
    else:
        tol = fnp.expand_dims(to_array(tol), axis=-1)
    return fnp.sum(s > tol, axis=-1, dtype=dtypes.default_int())


def matrix_power(a, n):
    """``a`` raised to the integer power ``n`` (negative powers invert first).

    >>> fnx.numpy.linalg.matrix_power(2 * fnx.numpy.eye(2), 3).tolist()
    [[8.0, 0.0], [0.0, 8.0]]
    """
    x = to_array(a)
    if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
        raise ShapeError(f"matrix_power: expects a stack of square matrices, got {x.shape}")
    n = int(n)
    if n < 0:
        x, n = inv(x), -n
    result = None
    base = x
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    return _eye_like(x, x.shape[-1]) if result is None else result


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2):  # noqa: A002
    """The ``ord``-norm of vectors along ``axis`` (all elements when None).

    >>> fnx.numpy.linalg.vector_norm(fnx.numpy.asarray([3.0, 4.0])).item()
    5.0
    """
    fnp = _fnp()
    x = _inexact("vector_norm", x)
    axes = normalize_axes(axis, x.ndim, "vector_norm")
    a = fnp.abs(x)
    if ord == 2:
        # derivative 0 at the zero vector, as abs at 0 (plain sqrt gives nan there)
        out = _norm_root(fnp.sum(a * a, axis=axes, keepdims=keepdims))
    elif ord == 1:
        out = fnp.sum(a, axis=axes, keepdims=keepdims)
    elif ord == math.inf:
        out = fnp.max(a, axis=axes, keepdims=keepdims) if a.size else \
            fnp.sum(a, axis=axes, keepdims=keepdims)
    elif ord == -math.inf:
        out = fnp.min(a, axis=axes, keepdims=keepdims)
    elif ord == 0:
        out = fnp.sum((a != 0).astype(a.dtype), axis=axes, keepdims=keepdims)
    else:
        out = _norm_root(fnp.sum(a ** ord, axis=axes, keepdims=keepdims), ord)
    if axis is None and keepdims:
        out = fnp.reshape(out, (1,) * x.ndim)
    return out


def matrix_norm(x, /, *, keepdims=False, ord="fro"):  # noqa: A002
    """Matrix norm over the last two axes: 'fro', 'nuc', 1, -1, 2, -2, inf, -inf.

    >>> round(fnx.numpy.linalg.matrix_norm(fnx.numpy.eye(2)).item() ** 2, 5)
    2.0
    """
    fnp = _fnp()
    x = _inexact("matrix_norm", x)
    if x.ndim < 2:
        raise ShapeError(f"matrix_norm: expects (..., m, n), got shape {x.shape}")
    a = fnp.abs(x)
    if ord == "fro":
        out = _norm_root(fnp.sum(a * a, axis=(-2, -1)))
    elif ord == "nuc":
        out = fnp.sum(svdvals(x), axis=-1)
    elif ord in (2, -2):
        s = svdvals(x)
        out = fnp.max(s, axis=-1) if ord == 2 else fnp.min(s, axis=-1)
    elif ord in (1, -1):
        c = fnp.sum(a, axis=-2)
        out = fnp.max(c, axis=-1) if ord == 1 else fnp.min(c, axis=-1)
    elif ord in (math.inf, -math.inf):
        r = fnp.sum(a, axis=-1)
        out = fnp.max(r, axis=-1) if ord > 0 else fnp.min(r, axis=-1)
    else:
        raise ValueError(f"matrix_norm: unsupported ord {ord!r}")
    return fnp.reshape(out, out.shape + (1, 1)) if keepdims else out


def diagonal(x, /, *, offset=0):
    """The ``offset`` diagonal of the last two axes (array API ``linalg.diagonal``).

    >>> fnp.linalg.diagonal(fnp.asarray([[1, 2], [3, 4]])).tolist()
    [1, 4]
    """
    from ._extra import diagonal as _diagonal

    return _diagonal(x, offset=offset, axis1=-2, axis2=-1)


def trace(x, /, *, offset=0, dtype=None):
    """Sum of the ``offset`` diagonal of the last two axes.

    >>> fnp.linalg.trace(fnp.asarray([[1, 2], [3, 4]])).item()
    5
    """
    from ._extra import trace as _trace

    return _trace(x, offset=offset, dtype=dtype, axis1=-2, axis2=-1)


def cross(x1, x2, /, *, axis=-1):
    """Cross product of 3-vectors along ``axis``.

    >>> fnp.linalg.cross(fnp.asarray([1, 0, 0]), fnp.asarray([0, 1, 0])).tolist()
    [0, 0, 1]
    """
    from ._extra import _cross_last

    return _cross_last(x1, x2, axis)


def outer(x1, x2, /):
    """Outer product of two vectors.

    >>> fnp.linalg.outer(fnp.asarray([1, 2]), fnp.asarray([3, 4])).tolist()
    [[3, 4], [6, 8]]
    """
    from ._extra import outer as _outer

    return _outer(x1, x2)


def matrix_transpose(x, /):
    """Swap the last two axes.

    >>> fnp.linalg.matrix_transpose(fnp.asarray([[1, 2], [3, 4]])).tolist()
    [[1, 3], [2, 4]]
    """
    from ._manipulation import matrix_transpose as _mt

    return _mt(x)


class _Namespace:
    """A plain namespace object (``fnx.numpy.linalg``)."""

    def __init__(self, name, **fns):
        self.__name__ = name
        self.__dict__.update(fns)

    def __repr__(self):
        return f"<namespace {self.__name__}>"


linalg = _Namespace(
    "fnx.numpy.linalg",
    cholesky=cholesky, cross=cross, det=det, diagonal=diagonal, eigh=eigh, eigvalsh=eigvalsh,
    inv=inv, matmul=matmul, matrix_norm=matrix_norm, matrix_power=matrix_power,
    matrix_rank=matrix_rank, matrix_transpose=matrix_transpose, outer=outer, pinv=pinv, qr=qr,
    slogdet=slogdet, solve=solve, svd=svd, svdvals=svdvals, tensordot=tensordot, trace=trace,
    vecdot=vecdot, vector_norm=vector_norm, norm=None,
)


def _norm(x, ord=None, axis=None, keepdims=False):  # noqa: A002
    """NumPy's ``linalg.norm``: vector norm, or matrix norm for 2-D/with a pair of axes.

    >>> fnp.linalg.norm(fnp.asarray([3.0, 4.0])).item()
    5.0
    """
    x = to_array(x)
    if axis is None and x.ndim == 2 and ord is not None:
        return matrix_norm(x, ord=ord, keepdims=keepdims)
    if isinstance(axis, tuple) and len(axis) == 2:
        from ._manipulation import moveaxis

        y = moveaxis(x, axis, (-2, -1))
        return matrix_norm(y, ord="fro" if ord is None else ord, keepdims=keepdims)
    return vector_norm(x, axis=axis, keepdims=keepdims, ord=2 if ord is None else ord)


linalg.norm = _norm

__all__ = ["matmul", "tensordot", "vecdot", "linalg"]
