"""``fnx.scipy.special``: logsumexp, softmax, log_softmax, erf, erfc, erfinv, expit, logit,
gammaln, digamma, xlogy, ndtr, ndtri, ... as compositions of fnx primitives.

>>> import fnx.scipy.special as sps
>>> round(sps.logsumexp(fnx.numpy.zeros(2)).item(), 4)
0.6931
"""

import math

from .. import numpy as fnp
from ..core import dtypes
from ..core.ops import elementwise as ew

__all__ = ["logsumexp", "softmax", "log_softmax", "erf", "erfc", "erfinv", "expit", "logit",
           "log_expit", "gammaln", "digamma", "psi", "xlogy", "xlog1py", "ndtr", "ndtri",
           "log_ndtr", "entr"]


def _float(x):
    x = fnp.asarray(x)
    if x.dtype.kind not in "fc":
        x = x.astype(dtypes.default_float())
    return x


def _real_float(op, x):
    x = _float(x)
    if x.dtype.kind == "c":
        raise dtypes.DTypeError(f"{op}: complex input {x.dtype} is not supported")
    return x


def _stop_gradient(x):
    from ..transforms.custom import stop_gradient_p

    return stop_gradient_p.bind(x)


def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """``log(sum(b * exp(a), axis))`` computed stably (the max is subtracted first).

    Entries equal to -inf contribute nothing and get a zero gradient; an all -inf slice gives
    -inf. With ``return_sign=True`` returns ``(log|s|, sign(s))`` for weights of either sign.

    >>> round(fnx.scipy.special.logsumexp(fnx.numpy.asarray([0.0, 0.0])).item(), 4)
    0.6931
    """
    a = _float(a)
    if b is not None:
        a, b = fnp.broadcast_arrays(a, fnp.asarray(b, dtype=a.dtype))
    m = fnp.max(a, axis=axis, keepdims=True) if a.size else fnp.zeros(
        tuple(1 for _ in a.shape), dtype=a.dtype)
    # the shift's derivative cancels analytically, so it is stopped (as in softmax): through
    # max's tie-splitting rule the second derivative came out wrong at ties. Infinite maxima
    # shift by 0 instead (so an all -inf slice gives -inf, and -inf entries get exactly zero
    # gradient)
    m = _stop_gradient(fnp.where(fnp.isfinite(m), m, fnp.zeros_like(m)))
    e = fnp.exp(a - m)
    if b is not None:
        e = e * b
    s = fnp.sum(e, axis=axis, keepdims=True)
    if return_sign:
        sign = fnp.sign(s)
        s = fnp.abs(s)
    out = fnp.log(s) + m
    if b is None and not return_sign:
        # log(k + rest) = log(k) + log1p(rest / k), with k the count of maxima: accurate when
        # the other terms are tiny (SciPy's trick); k == 0 only for all -inf / inf / nan slices
        k = fnp.sum((a == m).astype(a.dtype), axis=axis, keepdims=True)
        rest = fnp.sum(fnp.where(a == m, fnp.zeros_like(e), e), axis=axis, keepdims=True)
        k_safe = fnp.where(k > 0, k, fnp.ones_like(k))
        accurate = m + fnp.log(k_safe) + fnp.log1p(rest / k_safe)
        # its value, with the derivatives of the plain form (k and the mask of maxima are
        # piecewise constant, so the accurate form's own derivatives miss the maxima's terms)
        use = (k > 0) & fnp.isfinite(out)
        out = out + _stop_gradient(fnp.where(use, accurate - out, fnp.zeros_like(out)))
    if not keepdims:
        axes = tuple(range(a.ndim)) if axis is None else axis
        out = fnp.squeeze(out, axis=axes)
        if return_sign:
            sign = fnp.squeeze(sign, axis=axes)
    return (out, sign) if return_sign else out


def softmax(x, axis=None):
    """``exp(x) / sum(exp(x), axis)``, stable for large inputs.

    >>> fnx.scipy.special.softmax(fnx.numpy.zeros(2)).tolist()
    [0.5, 0.5]
    """
    x = _float(x)
    m = fnp.max(x, axis=axis, keepdims=True)
    m = _stop_gradient(fnp.where(fnp.isfinite(m), m, fnp.zeros_like(m)))
    e = fnp.exp(x - m)
    return e / fnp.sum(e, axis=axis, keepdims=True)


def log_softmax(x, axis=None):
    """``x - logsumexp(x, axis)``.

    >>> [round(v, 4) for v in fnx.scipy.special.log_softmax(fnx.numpy.zeros(2)).tolist()]
    [-0.6931, -0.6931]
    """
    x = _float(x)
    return x - logsumexp(x, axis=axis, keepdims=True)


def erf(x):
    """The error function.

    >>> round(fnx.scipy.special.erf(fnx.numpy.asarray(1.0)).item(), 4)
    0.8427
    """
    return ew.erf_p.bind(_real_float("erf", x))


def erfc(x):
    """``1 - erf(x)``, accurate in the right tail (a continued fraction for x >= 3, where
    ``1 - erf`` would cancel).

    >>> round(fnx.scipy.special.erfc(fnx.numpy.asarray(0.0)).item(), 4)
    1.0
    """
    x = _real_float("erfc", x)
    tail_side = x >= 3.0
    z = fnp.where(tail_side, x, 3.0)  # a select: maximum's tie at x = 3 halved the derivative
    # erfc(z) = exp(-z^2) / sqrt(pi) / (z + (1/2) / (z + 1 / (z + (3/2) / (z + ...))))
    t = z
    for n in range(60, 0, -1):
        t = z + (n / 2) / t
    tail = fnp.exp(-z * z) / (math.sqrt(math.pi) * t)
    return fnp.where(tail_side, tail, 1 - ew.erf_p.bind(x))


def erfinv(y):
    """Inverse error function on (-1, 1) (±inf at ±1, NaN outside).

    >>> round(fnx.scipy.special.erfinv(fnx.numpy.asarray(0.5)).item(), 4)
    0.4769
    """
    return ew.erf_inv_p.bind(_real_float("erfinv", y))


def expit(x):
    """The logistic sigmoid ``1 / (1 + exp(-x))``.

    >>> fnx.scipy.special.expit(fnx.numpy.asarray(0.0)).item()
    0.5
    """
    return ew.logistic_p.bind(_real_float("expit", x))


def logit(p):
    """``log(p / (1 - p))``, the inverse of ``expit``.

    >>> fnx.scipy.special.logit(fnx.numpy.asarray(0.5)).item()
    0.0
    """
    p = _real_float("logit", p)
    return fnp.log(p) - fnp.log1p(-p)


def log_expit(x):
    """``log(expit(x))`` without underflow: ``-logaddexp(0, -x)``.

    >>> round(fnx.scipy.special.log_expit(fnp.asarray(0.0)).item(), 4)
    -0.6931
    """
    x = _real_float("log_expit", x)
    return -fnp.logaddexp(fnp.zeros_like(x), -x)


def gammaln(x):
    """``log|Gamma(x)|``.

    >>> round(fnx.scipy.special.gammaln(fnx.numpy.asarray(5.0)).item(), 4)
    3.1781
    """
    return ew.lgamma_p.bind(_real_float("gammaln", x))


def digamma(x):
    """The digamma function ``d/dx log Gamma(x)``.

    >>> round(fnx.scipy.special.digamma(fnx.numpy.asarray(1.0)).item(), 4)
    -0.5772
    """
    return ew.digamma_p.bind(_real_float("digamma", x))


psi = digamma


def xlogy(x, y):
    """``x * log(y)``, with 0 where ``x == 0`` (even when y is 0).

    >>> fnx.scipy.special.xlogy(0.0, fnx.numpy.asarray(0.0)).item()
    0.0
    """
    return _x_times(fnp.log, x, y, neutral=1.0, low=0.0)


def xlog1py(x, y):
    """``x * log1p(y)``, with 0 where ``x == 0``.

    >>> fnx.scipy.special.xlog1py(fnp.asarray([0.0, 2.0]), fnp.asarray([-1.0, 0.0])).tolist()
    [0.0, 0.0]
    """
    return _x_times(fnp.log1p, x, y, neutral=0.0, low=-1.0)


def _x_times(log, x, y, neutral, low):
    """``x * log(y)``, 0 where ``x == 0`` (unless y is NaN, as SciPy), with the product's
    derivative there too: d/dx is log(y) where that is finite (a where on x == 0 alone gave
    0). ``log`` is finite on (``low``, inf); ``neutral`` is a point where it is 0."""
    x, y = fnp.broadcast_arrays(_float(x), _float(y))
    x, y = (v.astype(fnp.result_type(x, y)) for v in (x, y))
    infinite_log = ~((y > low) & (y < math.inf)) & ~fnp.isnan(y)
    prod = x * log(fnp.where((x == 0) & infinite_log, neutral, y))
    # at x == 0 the value is +0 (prod may be -0) and the derivative is prod's
    return fnp.where(x == 0, prod - _stop_gradient(prod), prod)


def entr(x):
    """Elementwise entropy ``-x log x`` (0 at 0, -inf for x < 0).

    >>> round(fnx.scipy.special.entr(fnp.asarray(0.5)).item(), 4)
    0.3466
    """
    x = _real_float("entr", x)
    return fnp.where(x < 0, -math.inf, -xlogy(x, x))


def ndtr(x):
    """Standard normal CDF.

    >>> fnx.scipy.special.ndtr(fnp.asarray([0.0])).tolist()
    [0.5]
    """
    x = _real_float("ndtr", x)
    return 0.5 * erfc(x * (-1 / math.sqrt(2)))


def ndtri(p):
    """Inverse of the standard normal CDF.

    >>> fnx.scipy.special.ndtri(fnp.asarray([0.5])).tolist()
    [0.0]
    """
    p = _real_float("ndtri", p)
    return math.sqrt(2) * ew.erf_inv_p.bind(2 * p - 1)


def log_ndtr(x):
    """``log(ndtr(x))``; uses the asymptotic expansion for very negative ``x``.

    >>> round(fnx.scipy.special.log_ndtr(fnp.asarray(0.0)).item(), 4)
    -0.6931
    """
    x = _real_float("log_ndtr", x)
    # Each branch sees inputs inside its own range, so that an unselected branch (log1p(-1)
    # below x = -9) cannot put 0 * inf = nan into the reverse pass; selects rather than
    # maximum/minimum, whose tie at x = -10 would halve the derivative.
    far = x < -10.0
    xc = fnp.where(far, -10.0, x)
    pos = xc > 0
    direct = fnp.where(pos, fnp.log1p(-ndtr(-fnp.where(pos, xc, 0.0))),
                       fnp.log(ndtr(fnp.where(pos, 0.0, xc))))
    # log Phi(x) ~ -x^2/2 - log(-x) - log(sqrt(2 pi)) + log(1 - 1/x^2 + 3/x^4 - 15/x^6 + ...)
    xs = fnp.where(far, x, -10.0)
    r = 1 / (xs * xs)
    series = r * (-1 + r * (3 + r * (-15 + r * 105)))
    tail = -0.5 * xs * xs - fnp.log(-xs) - 0.5 * math.log(2 * math.pi) + fnp.log1p(series)
    return fnp.where(far, tail, direct)
