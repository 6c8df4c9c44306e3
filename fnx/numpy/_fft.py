"""The array API ``fft`` extension, as dense DFT matrices contracted with ``dot_general``.

A length-n transform is one matmul with a constant (n, n) matrix of twiddle factors: O(n^2)
work instead of O(n log n), but every transform is then linear in primitives that already
differentiate, batch and compile. Suited to the short signals of deep-learning code.
"""

import math

import numpy as np

from ..core import dtypes
from ..core.errors import DTypeError, ShapeError, normalize_axis
from ..core.ops import elementwise as ew
from ..core.ops import shape as sh
from ..core.ops.linalg import dot_general_p
from ._core import to_array
from ._ufunc import check_out

_NORMS = ("backward", "ortho", "forward")
_COMPLEX_OF = {dtypes.float32: dtypes.complex64, dtypes.float64: dtypes.complex128,
               dtypes.float16: dtypes.complex64}
_REAL_OF = {dtypes.complex64: dtypes.float32, dtypes.complex128: dtypes.float64}


def _complex(op, x):
    x = to_array(x)
    if x.dtype.kind == "c":
        return x
    if x.dtype.kind != "f":
        x = ew.convert_element_type(x, dtypes.default_float())
    return ew.convert_element_type(x, _COMPLEX_OF[x.dtype])


def _real(op, x):
    x = to_array(x)
    if x.dtype.kind == "c":
        raise DTypeError(f"{op}: expects a real input, got {x.dtype}")
    if x.dtype.kind != "f":
        x = ew.convert_element_type(x, dtypes.default_float())
    return x


def _scale(norm, n, inverse):
    norm = "backward" if norm is None else norm  # NumPy's default, by its name
    if norm not in _NORMS:
        raise ValueError(f"fft: norm must be one of {_NORMS}, got {norm!r}")
    if norm == "ortho":
        return 1 / math.sqrt(n)
    return 1.0 / n if (norm == "backward") == inverse else 1.0


def _resize(x, axis, n):
    """Truncate or zero-pad ``x`` to length ``n`` along ``axis``."""
    from ._extra import _slice_axis

    m = x.shape[axis]
    if n < 1:
        raise ShapeError(f"fft: the transform length must be >= 1, got {n}")
    if m > n:
        return _slice_axis(x, axis, 0, n)
    if m < n:
        cfg = [(0, 0, 0)] * x.ndim
        cfg[axis] = (0, n - m, 0)
        return sh.pad_p.bind(x, ew.full((), 0, x.dtype), padding_config=tuple(cfg))
    return x


def _apply(x, axis, mat):
    """Contract axis ``axis`` of ``x`` with the rows of ``mat`` (a NumPy constant)."""
    from ._manipulation import moveaxis

    w = ew.convert_element_type(to_array(mat), x.dtype) if mat.dtype != x.dtype else to_array(mat)
    out = dot_general_p.bind(x, w, dimension_numbers=(((axis,), (0,)), ((), ())))
    return moveaxis(out, -1, axis)


def _dft_matrix(n, n_out, sign, scale, dtype):
    """Twiddle factors ``exp(sign 2 pi i j k / n) * scale`` for j < n, k < n_out."""
    j = np.arange(n).reshape(-1, 1)
    k = np.arange(n_out).reshape(1, -1)
    # reduce j*k mod n before the exponential, for accuracy at large n
    return (np.exp(sign * 2j * np.pi * ((j * k) % n) / n) * scale).astype(dtype)


def _c2c(op, x, n, axis, norm, inverse):
    x = _complex(op, x)
    if x.ndim == 0:
        raise ShapeError(f"{op}: expects at least a 1-D array")
    axis = normalize_axis(axis, x.ndim, op)
    n = x.shape[axis] if n is None else int(n)
    x = _resize(x, axis, n)
    mat = _dft_matrix(n, n, 1 if inverse else -1, _scale(norm, n, inverse), x.dtype)
    return _apply(x, axis, mat)


def fft(a, n=None, axis=-1, norm=None, out=None):
    """One-dimensional discrete Fourier transform.

    >>> [round(abs(v), 6) for v in fnx.numpy.fft.fft(fnx.numpy.ones(4)).tolist()]
    [4.0, 0.0, 0.0, 0.0]
    """
    check_out("fft", out)
    return _c2c("fft", a, n, axis, norm, inverse=False)


def ifft(a, n=None, axis=-1, norm=None, out=None):
    """One-dimensional inverse discrete Fourier transform.

    >>> fnp.real(fnp.fft.ifft(fnp.asarray([4.0, 0.0, 0.0, 0.0]))).tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    check_out("ifft", out)
    return _c2c("ifft", a, n, axis, norm, inverse=True)


def _axes_sizes(op, x, s, axes):
    if axes is None:
        axes = tuple(range(x.ndim)) if s is None else tuple(range(x.ndim - len(s), x.ndim))
    axes = tuple(normalize_axis(a, x.ndim, op) for a in axes)
    if s is None:
        s = tuple(x.shape[a] for a in axes)
    if len(s) != len(axes):
        raise ShapeError(f"{op}: s {tuple(s)} and axes {axes} must have the same length")
    return axes, tuple(int(v) if v != -1 else x.shape[a] for v, a in zip(s, axes))


def _c2c_n(op, x, s, axes, norm, inverse):
    x = _complex(op, x)
    axes, s = _axes_sizes(op, x, s, axes)
    for a, n in zip(axes, s):
        x = _c2c(op, x, n, a, norm, inverse)
    return x


def fftn(a, s=None, axes=None, norm=None, out=None):
    """N-dimensional discrete Fourier transform over ``axes``.

    >>> fnp.abs(fnp.fft.fftn(fnp.ones((2, 2)))).round().tolist()
    [[4.0, 0.0], [0.0, 0.0]]
    """
    check_out("fftn", out)
    return _c2c_n("fftn", a, s, axes, norm, inverse=False)


def ifftn(a, s=None, axes=None, norm=None, out=None):
    """N-dimensional inverse discrete Fourier transform over ``axes``.

    >>> fnp.real(fnp.fft.ifftn(fnp.asarray([[4.0, 0.0], [0.0, 0.0]]))).tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    check_out("ifftn", out)
    return _c2c_n("ifftn", a, s, axes, norm, inverse=True)


def rfft(a, n=None, axis=-1, norm=None, out=None):
    """DFT of a real signal: the ``n // 2 + 1`` non-negative frequency terms.

    >>> fnx.numpy.fft.rfft(fnx.numpy.ones(4)).shape
    (3,)
    """
    check_out("rfft", out)
    x = _real("rfft", a)
    if x.ndim == 0:
        raise ShapeError("rfft: expects at least a 1-D array")
    axis = normalize_axis(axis, x.ndim, "rfft")
    n = x.shape[axis] if n is None else int(n)
    x = ew.convert_element_type(_resize(x, axis, n), _COMPLEX_OF[x.dtype])
    mat = _dft_matrix(n, n // 2 + 1, -1, _scale(norm, n, False), x.dtype)
    return _apply(x, axis, mat)


def irfft(a, n=None, axis=-1, norm=None, out=None):
    """Inverse of ``rfft``: a real signal of length ``n`` (default ``2 * (m - 1)``).

    >>> fnp.fft.irfft(fnp.asarray([4.0, 0.0, 0.0])).round().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    from ._elementwise import real

    check_out("irfft", out)
    x = _complex("irfft", a)
    if x.ndim == 0:
        raise ShapeError("irfft: expects at least a 1-D array")
    axis = normalize_axis(axis, x.ndim, "irfft")
    n = 2 * (x.shape[axis] - 1) if n is None else int(n)
    if n < 1:
        raise ShapeError(f"irfft: output length must be >= 1, got {n}")
    m = n // 2 + 1
    x = _resize(x, axis, m)
    # Hermitian symmetry: every interior frequency stands for itself and its mirror
    weight = np.full((m, 1), 2.0)
    weight[0] = 1.0
    if n % 2 == 0:
        weight[-1] = 1.0
    mat = weight * _dft_matrix(n, n, 1, _scale(norm, n, True), np.complex128)[:m]
    return real(_apply(x, axis, mat.astype(x.dtype)))


def rfftn(a, s=None, axes=None, norm=None, out=None):
    """N-dimensional ``rfft``: real transform on the last axis, complex on the others.

    >>> fnp.fft.rfftn(fnp.ones((2, 4))).shape
    (2, 3)
    """
    check_out("rfftn", out)
    x = _real("rfftn", a)
    axes, s = _axes_sizes("rfftn", x, s, axes)
    out = rfft(x, n=s[-1], axis=axes[-1], norm=norm)
    for a, n in zip(axes[:-1], s[:-1]):
        out = _c2c("rfftn", out, n, a, norm, inverse=False)
    return out


def irfftn(a, s=None, axes=None, norm=None, out=None):
    """Inverse of ``rfftn``.

    >>> fnp.fft.irfftn(fnp.asarray([[4.0, 0.0], [0.0, 0.0]])).round().tolist()
    [[1.0, 1.0], [1.0, 1.0]]
    """
    check_out("irfftn", out)
    x = _complex("irfftn", a)
    if axes is None and s is None:
        axes = tuple(range(x.ndim))
    if s is None:
        axes_n = tuple(normalize_axis(a, x.ndim, "irfftn") for a in axes)
        s = tuple(x.shape[a] for a in axes_n[:-1]) + (2 * (x.shape[axes_n[-1]] - 1),)
    axes, s = _axes_sizes("irfftn", x, s, axes)
    for a, n in zip(axes[:-1], s[:-1]):
        x = _c2c("irfftn", x, n, a, norm, inverse=True)
    return irfft(x, n=s[-1], axis=axes[-1], norm=norm)


_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho", None: "forward"}


def hfft(a, n=None, axis=-1, norm=None, out=None):
    """DFT of a Hermitian-symmetric signal given by its first half: a real spectrum.

    >>> fnp.fft.hfft(fnp.asarray([1.0, 0.0, 0.0])).round().tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    from ._elementwise import conj

    if norm not in _SWAP:
        raise ValueError(f"hfft: norm must be one of {_NORMS}, got {norm!r}")
    check_out("hfft", out)
    return irfft(conj(_complex("hfft", a)), n=n, axis=axis, norm=_SWAP[norm])


def ihfft(a, n=None, axis=-1, norm=None, out=None):
    """Inverse of ``hfft``.

    >>> fnp.abs(fnp.fft.ihfft(fnp.asarray([4.0, 4.0, 4.0, 4.0]))).round().tolist()
    [4.0, 0.0, 0.0]
    """
    from ._elementwise import conj

    if norm not in _SWAP:
        raise ValueError(f"ihfft: norm must be one of {_NORMS}, got {norm!r}")
    check_out("ihfft", out)
    return conj(rfft(a, n=n, axis=axis, norm=_SWAP[norm]))


def fftfreq(n, d=1.0, device=None, *, dtype=None):
    """Sample frequencies of an ``n``-point DFT: ``[0, 1, ..., -1] / (d * n)``.

    >>> fnx.numpy.fft.fftfreq(4).tolist()
    [0.0, 0.25, -0.5, -0.25]
    """
    from ._creation import asarray

    n = int(n)
    if n < 1:
        raise ValueError(f"fftfreq: n must be positive, got {n}")
    k = np.arange(n)
    vals = np.where(k < (n + 1) // 2, k, k - n) / (d * n)
    dt = dtypes.default_float() if dtype is None else dtypes.canonicalize(dtype)
    return asarray(vals.astype(dt), device=device)


def rfftfreq(n, d=1.0, device=None, *, dtype=None):
    """Sample frequencies of ``rfft``: ``[0, 1, ..., n // 2] / (d * n)``.

    >>> fnp.fft.rfftfreq(4).tolist()
    [0.0, 0.25, 0.5]
    """
    from ._creation import asarray

    n = int(n)
    if n < 1:
        raise ValueError(f"rfftfreq: n must be positive, got {n}")
    dt = dtypes.default_float() if dtype is None else dtypes.canonicalize(dtype)
    return asarray((np.arange(n // 2 + 1) / (d * n)).astype(dt), device=device)


def _shift(op, x, axes, inverse):
    from ._extra import roll

    x = to_array(x)
    axes = tuple(range(x.ndim)) if axes is None else (
        (axes,) if isinstance(axes, int) else tuple(axes))
    shifts = tuple((-(x.shape[a] // 2)) if inverse else x.shape[a] // 2 for a in axes)
    return roll(x, shifts, axis=axes) if axes else x


def fftshift(x, axes=None):
    """Move the zero frequency to the centre.

    >>> fnx.numpy.fft.fftshift(fnx.numpy.asarray([0, 1, -2, -1])).tolist()
    [-2, -1, 0, 1]
    """
    return _shift("fftshift", x, axes, inverse=False)


def ifftshift(x, axes=None):
    """Inverse of ``fftshift``.

    >>> fnp.fft.ifftshift(fnp.asarray([-2, -1, 0, 1, 2])).tolist()
    [0, 1, 2, -2, -1]
    """
    return _shift("ifftshift", x, axes, inverse=True)


class _FFTNamespace:
    """``fnx.numpy.fft``."""

    __name__ = "fnx.numpy.fft"

    def __repr__(self):
        return "<namespace fnx.numpy.fft>"


fft_namespace = _FFTNamespace()
for _f in (fft, ifft, fftn, ifftn, rfft, irfft, rfftn, irfftn, hfft, ihfft, fftfreq, rfftfreq,
           fftshift, ifftshift):
    setattr(fft_namespace, _f.__name__, _f)
del _f
