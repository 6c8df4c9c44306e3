"""``fnx.random``: counter-based pseudo-random numbers with explicit keys, as in JAX.

A *key* is a raw ``uint32`` array of shape ``(2,)`` (JAX's "raw" ``PRNGKey`` layout, not a
typed key): create one with :func:`key`, derive new ones with :func:`split` / :func:`fold_in`,
and pass one to every sampler. The same key always gives the same numbers; never reuse a key
for two different purposes — split it.

    >>> import fnx
    >>> k = fnx.random.key(0)
    >>> k1, k2 = fnx.random.split(k)
    >>> x = fnx.random.normal(k1, (3,))

The generator is Threefry-2x32 with 20 rounds (Salmon et al., "Parallel random numbers: as
easy as 1, 2, 3", SC 2011), written with ``uint32`` primitives only (add, xor, shifts, or,
iota, convert/bitcast), so every function here is jittable, vmappable (vmap over a batch of
keys) and gives the same bits on every device. Key derivation and bit generation follow JAX's
current default (``jax_threefry_partitionable=True``): ``split``, ``fold_in`` and ``bits``
produce the same uint32 values as JAX; ``uniform`` and ``normal`` use JAX's formulas.
Vectors whose size is at least 2**32 are not supported.
"""

import math

import numpy as np

from .core import dtypes, tracing
from .core.array import Array
from .core.errors import DTypeError, ShapeError, normalize_axis
from .core.ops import elementwise as ew
from .core.ops import shape as sh
from .core.tracing import Tracer, get_aval
from . import numpy as fnp
from .numpy._core import broadcast_shapes as _broadcast_shapes

__all__ = [
    "key", "PRNGKey", "key_data", "split", "fold_in", "bits", "uniform", "normal",
    "truncated_normal", "bernoulli", "randint", "categorical", "gumbel", "exponential",
    "permutation", "choice", "threefry2x32",
]

_U32 = np.dtype(np.uint32)
_UINT = {8: np.dtype(np.uint8), 16: np.dtype(np.uint16), 32: _U32, 64: np.dtype(np.uint64)}
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


# --- Threefry-2x32 ---------------------------------------------------------------------------


def _const(value, shape, dtype=_U32):
    return ew.full(shape, value, dtype)


def _add(a, b):
    return ew.add_p.bind(a, b)


def _rotl(v, d, shape):
    left = ew.shift_left_p.bind(v, _const(d, shape))
    right = ew.shift_right_p.bind(v, _const(32 - d, shape))
    return ew.or_p.bind(left, right)


def threefry2x32(k1, k2, x0, x1):
    """The Threefry-2x32 block function (20 rounds) on uint32 arrays.

    ``k1``, ``k2``: uint32 scalars (the key words); ``x0``, ``x1``: uint32 arrays of one shape
    (the counter words). Returns the two output words, each of ``x0``'s shape.
    Example: ``threefry2x32(*[fnx.numpy.asarray(0, dtype=fnx.uint32)] * 4)`` gives
    ``(0x6b200159, 0x99ba4efe)``.

    >>> zero = np.zeros(1, np.uint32)
    >>> [int(v) for v in fnx.random.threefry2x32(np.uint32(0), np.uint32(0), zero, zero)]
    [1797259609, 2579123966]
    """
    if tracing.is_eager():
        # eagerly, one compiled call instead of ~370 primitive calls (a dropout mask in
        # milliseconds became microseconds); the same body when traced
        return _compiled_threefry()(k1, k2, x0, x1)
    return _threefry_body(k1, k2, x0, x1)


_COMPILED = []


def _compiled_threefry():
    if not _COMPILED:
        from .jit import jit

        _COMPILED.append(jit(_threefry_body))
    return _COMPILED[0]


def _threefry_body(k1, k2, x0, x1):
    shape = get_aval(x0).shape
    for name, v in (("k1", k1), ("k2", k2), ("x0", x0), ("x1", x1)):
        if get_aval(v).dtype != _U32:
            raise DTypeError(f"threefry2x32: {name} must be uint32, got {get_aval(v).dtype}")
    if get_aval(x1).shape != shape:
        raise ShapeError(f"threefry2x32: counter words of different shapes "
                         f"{shape} and {get_aval(x1).shape}")

    def bcast(k):
        return k if get_aval(k).shape == shape else sh.broadcast_in_dim(k, shape, ())

    ks = [bcast(k1), bcast(k2)]
    ks.append(ew.xor_p.bind(ew.xor_p.bind(ks[0], ks[1]), _const(_PARITY, shape)))
    x = [_add(x0, ks[0]), _add(x1, ks[1])]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x[0] = _add(x[0], x[1])
            x[1] = ew.xor_p.bind(x[0], _rotl(x[1], r, shape))
        x[0] = _add(x[0], ks[(i + 1) % 3])
        x[1] = _add(_add(x[1], ks[(i + 2) % 3]), _const(i + 1, shape))
    return x[0], x[1]


# --- keys ------------------------------------------------------------------------------------


def _is_array(x):
    return type(x) is Array or isinstance(x, Tracer)


def _check_key(k, op):
    if not _is_array(k):
        if isinstance(k, np.ndarray) and k.dtype == _U32:
            k = fnp.asarray(k)
        else:
            raise TypeError(
                f"fnx.random.{op}: expected a key (a uint32 array of shape (2,) made by "
                f"fnx.random.key(seed)), got {type(k).__name__} {k!r:.60}")
    aval = get_aval(k)
    if aval.dtype != _U32 or aval.shape != (2,):
        raise TypeError(
            f"fnx.random.{op}: expected a key (a uint32 array of shape (2,) made by "
            f"fnx.random.key(seed)), got an array of shape {aval.shape} and dtype {aval.dtype}; "
            f"for a batch of keys use fnx.vmap over them")
    return k


def _key_words(k):
    w0 = sh.reshape(sh.slice_p.bind(k, start_indices=(0,), limit_indices=(1,), strides=None), ())
    w1 = sh.reshape(sh.slice_p.bind(k, start_indices=(1,), limit_indices=(2,), strides=None), ())
    return w0, w1


def _pair(a, b):
    """Stack two uint32 arrays of one shape along a new last axis."""
    shape = get_aval(a).shape
    a = sh.reshape(a, shape + (1,))
    b = sh.reshape(b, shape + (1,))
    return sh.concatenate_p.bind(a, b, dimension=len(shape))


def key(seed):
    """A raw key (uint32 array of shape ``(2,)``) from an integer seed: ``[seed >> 32,
    seed & 0xFFFFFFFF]`` of the seed as a 64-bit integer, as JAX with 64-bit ints.

    ``seed`` is a Python int in ``[-2**63, 2**64)`` or an integer scalar array (traceable).
    Example: ``fnx.random.key(0)`` -> ``Array([0, 0], dtype=uint32)``.

    >>> fnx.random.PRNGKey(0).tolist()
    [0, 0]
    """
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError("fnx.random.key: the seed must be an integer, got a bool")
    if isinstance(seed, (int, np.integer)):
        seed = int(seed)
        if not -(2 ** 63) <= seed < 2 ** 64:
            raise OverflowError(f"fnx.random.key: seed {seed} does not fit in 64 bits")
        s = seed & 0xFFFFFFFFFFFFFFFF
        return fnp.asarray(np.array([s >> 32, s & 0xFFFFFFFF], dtype=_U32))
    if not _is_array(seed):
        raise TypeError(f"fnx.random.key: the seed must be an integer, got "
                        f"{type(seed).__name__}")
    aval = get_aval(seed)
    if aval.shape != () or aval.dtype.kind not in "iu":
        raise TypeError(f"fnx.random.key: the seed must be an integer scalar, got an array of "
                        f"shape {aval.shape} and dtype {aval.dtype}")
    if aval.dtype.itemsize == 8:
        s = ew.bitcast_convert_type_p.bind(seed, new_dtype=_UINT[64]) \
            if aval.dtype.kind == "i" else seed
        hi = ew.convert_element_type(ew.shift_right_p.bind(s, _const(32, (), _UINT[64])), _U32)
        lo = ew.convert_element_type(s, _U32)  # keeps the low 32 bits
    else:
        hi = _const(0, (), _U32)
        lo = ew.convert_element_type(seed, _U32)  # two's complement for negative int32
    return _pair(hi, lo)


PRNGKey = key


def key_data(k):
    """The raw uint32 data of a key (keys are already raw here: the identity, for JAX code).

    >>> fnx.random.key_data(fnx.random.key(1)).tolist()
    [0, 1]
    """
    return _check_key(k, "key_data")


def _normalize_shape(shape, op):
    if shape is None:
        return None
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError(f"fnx.random.{op}: shape must be an int or a tuple of ints, "
                        f"got {shape!r}") from None
    if any(d < 0 for d in shape):
        raise ShapeError(f"fnx.random.{op}: negative dimension in shape {shape}")
    return shape


def _iota_2x32(shape):
    """The row-major flat index of every element of ``shape`` as (high, low) uint32 words."""
    size = math.prod(shape)
    if size >= 2 ** 32:
        raise ShapeError(f"fnx.random: {size} random values at once is not supported "
                         f"(at most 2**32 - 1); split the key and draw in pieces")
    lo = sh.reshape(sh.iota(_U32, size), shape)
    return _const(0, shape), lo


def split(key, num=2):
    """``num`` new independent keys, shape ``(num, 2)`` (``num`` may also be a shape tuple).
    Example: ``k1, k2 = fnx.random.split(fnx.random.key(0))``.

    >>> fnx.random.split(fnx.random.key(0), 3).shape
    (3, 2)
    """
    k = _check_key(key, "split")
    shape = _normalize_shape(num, "split")
    w0, w1 = _key_words(k)
    b0, b1 = threefry2x32(w0, w1, *_iota_2x32(shape))
    return _pair(b0, b1)


def _two_keys(k):
    """``split(k)`` as two separate keys."""
    ks = split(k)
    return tuple(sh.reshape(sh.slice_p.bind(ks, start_indices=(i, 0), limit_indices=(i + 1, 2),
                                            strides=None), (2,)) for i in range(2))


def fold_in(key, data):
    """A new key from ``key`` and an integer ``data`` (taken modulo 2**32), e.g. a step index.
    Example: ``fnx.random.fold_in(fnx.random.key(0), 7)``.

    >>> fnx.random.fold_in(fnx.random.key(0), 7).shape
    (2,)
    """
    k = _check_key(key, "fold_in")
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        d = fnp.asarray(np.array(int(data) & 0xFFFFFFFF, dtype=_U32))
    elif _is_array(data) and get_aval(data).shape == () and get_aval(data).dtype.kind in "iu":
        d = ew.convert_element_type(data, _U32)
    else:
        raise TypeError(f"fnx.random.fold_in: data must be an integer scalar, got {data!r:.60}")
    w0, w1 = _key_words(k)
    b0, b1 = threefry2x32(w0, w1, _const(0, ()), d)
    return _pair(b0, b1)


def _bits(k, shape, nbits):
    w0, w1 = _key_words(k)
    b0, b1 = threefry2x32(w0, w1, *_iota_2x32(shape))
    if nbits == 64:
        u64 = _UINT[64]
        hi = ew.convert_element_type(b0, u64)
        lo = ew.convert_element_type(b1, u64)
        return ew.or_p.bind(ew.shift_left_p.bind(hi, _const(32, shape, u64)), lo)
    out = ew.xor_p.bind(b0, b1)
    return out if nbits == 32 else ew.convert_element_type(out, _UINT[nbits])


def bits(key, shape=(), dtype=np.uint32):
    """Uniform random bits: an unsigned integer array (uint8/16/32/64) of ``shape``.
    Example: ``fnx.random.bits(fnx.random.key(0), (4,))``.

    >>> fnx.random.bits(fnx.random.key(0), (4,)).dtype
    dtype('uint32')
    """
    k = _check_key(key, "bits")
    dtype = np.dtype(dtype)
    if dtype.kind != "u":
        raise DTypeError(f"fnx.random.bits: dtype must be an unsigned integer dtype "
                         f"(uint8, uint16, uint32, uint64), got {dtype}")
    return _bits(k, _normalize_shape(shape, "bits"), dtype.itemsize * 8)


# --- continuous distributions ----------------------------------------------------------------


def _float_dtype(dtype, op):
    dtype = dtypes.default_float() if dtype is None else np.dtype(dtype)
    if dtype.kind != "f":
        raise DTypeError(f"fnx.random.{op}: dtype must be a float dtype (float16, float32, "
                         f"float64), got {dtype}")
    return dtype


def _param(x, dtype, shape, op, name):
    x = fnp.asarray(x, dtype=dtype) if not _is_array(x) else ew.convert_element_type(x, dtype)
    xs = get_aval(x).shape
    if xs != shape:
        try:
            out = fnp.broadcast_to(x, shape)
        except ShapeError:
            raise ShapeError(f"fnx.random.{op}: {name} of shape {xs} does not broadcast to "
                             f"the requested shape {shape}") from None
        return out
    return x


def _unit_floats(k, shape, dtype):
    """Floats in [0, 1): random mantissa bits under the exponent of 1.0, minus 1."""
    nbits = dtype.itemsize * 8
    nmant = np.finfo(dtype).nmant
    u = _UINT[nbits]
    b = _bits(k, shape, nbits)
    b = ew.shift_right_p.bind(b, _const(nbits - nmant, shape, u))
    one_bits = int(np.array(1.0, dtype).view(u))
    b = ew.or_p.bind(b, _const(one_bits, shape, u))
    f = ew.bitcast_convert_type_p.bind(b, new_dtype=dtype)
    return ew.sub_p.bind(f, _const(1.0, shape, dtype))


def uniform(key, shape=(), dtype=None, minval=0.0, maxval=1.0):
    """Uniform floats in ``[minval, maxval)`` (``minval``/``maxval`` broadcast to ``shape``).

    Method: 23 (float32) random mantissa bits give ``f`` in [1, 2); ``(f - 1) * (maxval -
    minval) + minval``, clamped into ``[minval, maxval)`` against rounding.
    Example: ``fnx.random.uniform(fnx.random.key(0), (2, 3), minval=-1, maxval=1)``.

    >>> x = fnx.random.uniform(fnx.random.key(0), (100,), minval=2.0, maxval=3.0)
    >>> bool(((x >= 2) & (x < 3)).all())
    True
    """
    k = _check_key(key, "uniform")
    dtype = _float_dtype(dtype, "uniform")
    shape = _normalize_shape(shape, "uniform")
    lo = _param(minval, dtype, shape, "uniform", "minval")
    hi = _param(maxval, dtype, shape, "uniform", "maxval")
    f = _unit_floats(k, shape, dtype)
    out = ew.add_p.bind(ew.mul_p.bind(f, ew.sub_p.bind(hi, lo)), lo)
    top = ew.nextafter_p.bind(hi, lo)  # the largest float below maxval (maxval if maxval <= minval)
    return ew.max_p.bind(lo, ew.min_p.bind(out, top))


def normal(key, shape=(), dtype=None):
    """Standard normal samples: ``sqrt(2) * erfinv(u)`` with ``u`` uniform in (-1, 1), as JAX.
    Example: ``fnx.random.normal(fnx.random.key(0), (1000,)).std()`` is about 1.

    >>> fnx.random.normal(fnx.random.key(0), (2, 3)).shape
    (2, 3)
    """
    k = _check_key(key, "normal")
    dtype = _float_dtype(dtype, "normal")
    shape = _normalize_shape(shape, "normal")
    lo = float(np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype)))
    u = uniform(k, shape, dtype, lo, 1.0)
    return ew.mul_p.bind(_const(math.sqrt(2.0), shape, dtype), ew.erf_inv_p.bind(u))


def truncated_normal(key, lower, upper, shape=None, dtype=None):
    """Standard normal samples conditioned on ``lower < x < upper`` (inverse-CDF method:
    ``sqrt(2) * erfinv(u)``, ``u`` uniform in ``(erf(lower/sqrt2), erf(upper/sqrt2))``).
    ``shape`` defaults to the broadcast shape of ``lower`` and ``upper``.
    Example: ``fnx.random.truncated_normal(fnx.random.key(0), -2.0, 2.0, (5,))``.

    >>> bool((abs(fnx.random.truncated_normal(fnx.random.key(0), -1.0, 1.0, (100,))) < 1).all())
    True
    """
    k = _check_key(key, "truncated_normal")
    dtype = _float_dtype(dtype, "truncated_normal")
    shape = _normalize_shape(shape, "truncated_normal")
    if shape is None:
        shape = _broadcast_shapes("fnx.random.truncated_normal",
                                  np.shape(lower) if not _is_array(lower) else lower.shape,
                                  np.shape(upper) if not _is_array(upper) else upper.shape)
    lower = _param(lower, dtype, shape, "truncated_normal", "lower")
    upper = _param(upper, dtype, shape, "truncated_normal", "upper")
    sqrt2 = _const(math.sqrt(2.0), shape, dtype)
    a = ew.erf_p.bind(ew.div_p.bind(lower, sqrt2))
    b = ew.erf_p.bind(ew.div_p.bind(upper, sqrt2))
    u = uniform(k, shape, dtype, a, b)
    out = ew.mul_p.bind(sqrt2, ew.erf_inv_p.bind(u))
    inf = _const(np.inf, shape, dtype)
    lo = ew.nextafter_p.bind(lower, inf)
    hi = ew.nextafter_p.bind(upper, ew.neg_p.bind(inf))
    return ew.min_p.bind(ew.max_p.bind(out, lo), hi)


def gumbel(key, shape=(), dtype=None):
    """Standard Gumbel samples ``-log(-log(u))``.
    Example: ``fnx.random.gumbel(fnx.random.key(0), (3,))``.

    >>> fnx.random.gumbel(fnx.random.key(0), (3,)).shape
    (3,)
    """
    k = _check_key(key, "gumbel")
    dtype = _float_dtype(dtype, "gumbel")
    shape = _normalize_shape(shape, "gumbel")
    u = uniform(k, shape, dtype, float(np.finfo(dtype).tiny), 1.0)
    return ew.neg_p.bind(ew.log_p.bind(ew.neg_p.bind(ew.log_p.bind(u))))


def exponential(key, shape=(), dtype=None):
    """Standard exponential samples ``-log1p(-u)``.
    Example: ``fnx.random.exponential(fnx.random.key(0), (3,))``.

    >>> bool((fnx.random.exponential(fnx.random.key(0), (100,)) >= 0).all())
    True
    """
    k = _check_key(key, "exponential")
    dtype = _float_dtype(dtype, "exponential")
    shape = _normalize_shape(shape, "exponential")
    u = uniform(k, shape, dtype)
    return ew.neg_p.bind(ew.log1p_p.bind(ew.neg_p.bind(u)))


# --- discrete distributions ------------------------------------------------------------------


def bernoulli(key, p=0.5, shape=None):
    """Booleans that are True with probability ``p`` (``shape`` defaults to ``p``'s shape).
    Example: ``fnx.random.bernoulli(fnx.random.key(0), 0.3, (10,))``.

    >>> fnx.random.bernoulli(fnx.random.key(0), 0.3, (10,)).dtype
    dtype('bool')
    """
    k = _check_key(key, "bernoulli")
    dt = get_aval(p).dtype if _is_array(p) and get_aval(p).dtype.kind == "f" else None
    dt = _float_dtype(dt, "bernoulli")
    shape = _normalize_shape(shape, "bernoulli")
    if shape is None:
        shape = get_aval(p).shape if _is_array(p) else np.shape(p)
    p = _param(p, dt, shape, "bernoulli", "p")
    return ew.lt_p.bind(uniform(k, shape, dt), p)


def _int_bound(v, dtype, op, name, shape):
    """(bound as a ``dtype`` array of ``shape``, whether a Python int was above the dtype's max)."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        info = np.iinfo(dtype)
        above = int(v) > int(info.max)
        v = min(max(int(v), int(info.min)), int(info.max))  # clip to the dtype's range
        return _const(v, shape, dtype), above
    if not _is_array(v):
        v = fnp.asarray(v)
    if get_aval(v).dtype.kind not in "iu":
        raise DTypeError(f"fnx.random.{op}: {name} must be an integer, got dtype "
                         f"{get_aval(v).dtype}")
    return _param(v, dtype, shape, op, name), False


def randint(key, shape, minval, maxval, dtype=None):
    """Uniform integers in ``[minval, maxval)`` (``minval`` where ``maxval <= minval``).

    Method (as JAX): two independent n-bit words ``hi``, ``lo`` (n = the dtype's width) give
    ``(hi * 2**n + lo) mod span`` computed in n-bit unsigned arithmetic; the bias is at most
    about ``span / 2**n``. Python-int bounds are clipped to the dtype's range, and a Python
    ``maxval`` above it means "up to and including ``iinfo.max``" (``randint(k, s, -128, 128,
    int8)`` covers all of int8).
    Example: ``fnx.random.randint(fnx.random.key(0), (5,), 0, 10)``.

    >>> x = fnx.random.randint(fnx.random.key(0), (100,), 3, 7)
    >>> sorted(set(x.tolist()))
    [3, 4, 5, 6]
    """
    k = _check_key(key, "randint")
    dtype = dtypes.default_int() if dtype is None else np.dtype(dtype)
    if dtype.kind not in "iu":
        raise DTypeError(f"fnx.random.randint: dtype must be an integer dtype, got {dtype}")
    shape = _normalize_shape(shape, "randint")
    lo, _ = _int_bound(minval, dtype, "randint", "minval", shape)
    hi, above = _int_bound(maxval, dtype, "randint", "maxval", shape)
    nbits = dtype.itemsize * 8
    u = _UINT[nbits]
    zero, one = _const(0, shape, u), _const(1, shape, u)

    def unsigned(x):
        return x if dtype.kind == "u" else ew.bitcast_convert_type_p.bind(x, new_dtype=u)

    def urem(x, m):  # x mod m, where m == 0 stands for 2**n (so x itself)
        is_zero = ew.eq_p.bind(m, zero)
        r = ew.rem_p.bind(x, ew.select_p.bind(is_zero, one, m))
        return ew.select_p.bind(is_zero, x, r)

    k1, k2 = _two_keys(k)
    empty = ew.le_p.bind(hi, lo)
    span = ew.sub_p.bind(unsigned(hi), unsigned(lo))  # exact modulo 2**n
    if above:  # one more value: iinfo.max itself (2**n, i.e. 0, for the full range)
        span = ew.add_p.bind(span, one)
    span = ew.select_p.bind(empty, one, span)
    mult = urem(_const(2 ** (nbits // 2), shape, u), span)
    mult = urem(ew.mul_p.bind(mult, mult), span)           # 2**n mod span
    high = urem(_bits(k1, shape, nbits), span)
    low = urem(_bits(k2, shape, nbits), span)
    offset = urem(ew.add_p.bind(ew.mul_p.bind(high, mult), low), span)
    out = ew.add_p.bind(unsigned(lo), offset)
    return out if dtype.kind == "u" else ew.bitcast_convert_type_p.bind(out, new_dtype=dtype)


def _ends_with_batch(shape, batch_shape):
    if len(shape) < len(batch_shape):
        return False
    tail = shape[len(shape) - len(batch_shape):]
    return all(t == b or b == 1 for t, b in zip(tail, batch_shape))


def categorical(key, logits, axis=-1, shape=None):
    """Samples of category indices with (unnormalized) log-probabilities ``logits`` along
    ``axis``, by the Gumbel-max trick: ``argmax(logits + gumbel)``.

    ``shape`` defaults to the batch shape (``logits.shape`` without ``axis``); a given shape
    must end with (a broadcast of) the batch shape, extra leading dimensions draw more samples.
    Example: ``fnx.random.categorical(fnx.random.key(0), fnx.numpy.log(p), shape=(100,))``.

    >>> logits = fnp.asarray([0.0, -fnp.inf, -fnp.inf])
    >>> fnx.random.categorical(fnx.random.key(0), logits, shape=(3,)).tolist()
    [0, 0, 0]
    """
    k = _check_key(key, "categorical")
    logits = logits if _is_array(logits) else fnp.asarray(logits)
    aval = get_aval(logits)
    if aval.dtype.kind != "f":
        logits = ew.convert_element_type(logits, dtypes.default_float())
        aval = get_aval(logits)
    axis = normalize_axis(axis, aval.ndim, "fnx.random.categorical") - aval.ndim  # negative
    batch_shape = tuple(d for i, d in enumerate(aval.shape) if i != aval.ndim + axis)
    shape = _normalize_shape(shape, "categorical")
    if shape is None:
        shape = batch_shape
    elif not _ends_with_batch(shape, batch_shape):
        raise ShapeError(f"fnx.random.categorical: shape {shape} is not compatible with the "
                         f"batch shape {batch_shape} of logits {aval.shape} (axis {axis}): it "
                         f"must end with a broadcast of the batch shape")
    prefix = shape[: len(shape) - len(batch_shape)]
    noise_shape = list(shape[len(shape) - len(batch_shape):])
    noise_shape.insert(len(noise_shape) + axis + 1, aval.shape[axis])
    noise_shape = tuple(prefix) + tuple(noise_shape)
    g = gumbel(k, noise_shape, aval.dtype)
    return fnp.argmax(g + logits, axis=axis)


# --- permutations and choice -----------------------------------------------------------------


def _argsort(keys):
    """Indices that sort the 1-D ``keys`` (stable)."""
    return fnp.argsort(keys, stable=True)


def _take(a, idx, axis):
    """``a`` indexed by the integer array ``idx`` along ``axis`` (``numpy.take``)."""
    ashape, ishape = get_aval(a).shape, get_aval(idx).shape
    picked = fnp.take(a, fnp.reshape(idx, (-1,)), axis=axis)
    return fnp.reshape(picked, ashape[:axis] + ishape + ashape[axis + 1:])


def _random_order(k, n):
    """A uniformly random permutation of ``range(n)``: argsort of n random 64-bit keys (ties,
    resolved by position, have probability below n**2 / 2**65)."""
    if n <= 1:
        return fnp.arange(n)
    return _argsort(_bits(k, (n,), 64))


def permutation(key, x, axis=0):
    """A random permutation of ``range(x)`` (``x`` an int) or of ``x`` along ``axis``.
    Example: ``fnx.random.permutation(fnx.random.key(0), 5)``.

    >>> sorted(fnx.random.permutation(fnx.random.key(0), 5).tolist())
    [0, 1, 2, 3, 4]
    """
    k = _check_key(key, "permutation")
    if isinstance(x, (int, np.integer)) and not isinstance(x, bool):
        if x < 0:
            raise ValueError(f"fnx.random.permutation: x must be non-negative, got {x}")
        return _random_order(k, int(x))
    x = x if _is_array(x) else fnp.asarray(x)
    aval = get_aval(x)
    if aval.ndim == 0:
        raise ShapeError("fnx.random.permutation: x must be an int or an array of rank >= 1; "
                         "got a rank-0 array (pass int(x) to permute range(x))")
    axis = normalize_axis(axis, aval.ndim, "fnx.random.permutation")
    return _take(x, _random_order(k, aval.shape[axis]), axis)


def choice(key, a, shape=(), replace=True, p=None, axis=0):
    """Random samples from ``a`` (an array, along ``axis``) or from ``range(a)`` (an int).

    With ``p``: probabilities (non-negative, normalized here). With replacement the indices are
    drawn by ``categorical(log p)``; without, by the Gumbel-top-k trick (``p=None``: the first
    entries of a random permutation).
    Example: ``fnx.random.choice(fnx.random.key(0), 10, (3,), replace=False)``.

    >>> sorted(fnx.random.choice(fnx.random.key(0), 5, (5,), replace=False).tolist())
    [0, 1, 2, 3, 4]
    """
    k = _check_key(key, "choice")
    shape = _normalize_shape(shape, "choice")
    if isinstance(a, (int, np.integer)) and not isinstance(a, bool):
        n, arr = int(a), None
        if n <= 0:
            raise ValueError(f"fnx.random.choice: a must be positive, got {n}")
    else:
        arr = a if _is_array(a) else fnp.asarray(a)
        if get_aval(arr).ndim == 0:
            raise ShapeError("fnx.random.choice: a must be an int or an array of rank >= 1")
        axis = normalize_axis(axis, get_aval(arr).ndim, "fnx.random.choice")
        n = get_aval(arr).shape[axis]
    size = math.prod(shape)
    if p is not None:
        p = p if _is_array(p) else fnp.asarray(p)
        if get_aval(p).shape != (n,):
            raise ShapeError(f"fnx.random.choice: p must have shape ({n},) to match a, got "
                             f"{get_aval(p).shape}")
        if get_aval(p).dtype.kind != "f":
            p = fnp.astype(p, dtypes.default_float())
    if replace:
        if p is None:
            idx = randint(k, shape, 0, n)
        else:
            idx = categorical(k, fnp.log(p), shape=shape)
    else:
        if size > n:
            raise ValueError(f"fnx.random.choice: cannot take {size} samples without "
                             f"replacement from {n} entries; use replace=True or a smaller "
                             f"shape")
        if p is None:
            order = _random_order(k, n)
        else:
            g = gumbel(k, (n,), get_aval(p).dtype) + fnp.log(p)
            order = _argsort(-g)
        idx = fnp.reshape(order[:size], shape)
    return idx if arr is None else _take(arr, idx, axis)
