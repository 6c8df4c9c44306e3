"""``fnx.nn.init``: PyTorch's parameter initializers (``torch.nn.init``).

Each ``*_`` function fills a concrete array in place (through the array's in-place methods,
which replace its buffer) with draws from fnx's global generator, or from ``generator=`` (an
``fnx.Generator``), and returns it, as PyTorch. The distributions and fan computations are
PyTorch's, so a layer initialized here has PyTorch's statistics.

>>> import fnx.nn.init as init
>>> w = init.kaiming_uniform_(fnx.empty(128, 64), a=5 ** 0.5)
>>> bool(w.abs().max() <= 1 / 64 ** 0.5)
True
"""

import math
import numbers
import warnings

import numpy as np

import fnx
from .. import numpy as fnp
from .. import random

__all__ = [
    "calculate_gain", "uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
    "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
    "kaiming_normal_", "orthogonal_",
]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity, param=None):
    """The recommended gain for ``nonlinearity``: 1 for linear/conv/sigmoid, 5/3 for tanh,
    sqrt(2) for relu, ``sqrt(2 / (1 + slope^2))`` for leaky_relu (slope ``param``, default
    0.01), 3/4 for selu.

    >>> round(fnx.nn.init.calculate_gain("leaky_relu", 0.2), 4)
    1.3868
    """
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool):
            slope = param
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _calculate_fan_in_and_fan_out(tensor):
    """``(fan_in, fan_out)`` of a weight ``(out, in, *kernel)``: ``in * prod(kernel)`` and
    ``out * prod(kernel)``.

    >>> fnx.nn.init._calculate_fan_in_and_fan_out(fnx.empty(8, 3, 5, 5))
    (75, 200)
    """
    shape = tuple(tensor.shape)
    if len(shape) < 2:
        raise ValueError(f"Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (got shape {shape})")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def _calculate_correct_fan(tensor, mode):
    mode = mode.lower()
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of fan_in, fan_out")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _key(generator):
    return (generator or fnx.default_generator).next_key()


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill ``tensor`` with draws from ``U(a, b)``.

    >>> w = fnx.nn.init.uniform_(fnx.empty(1000), -2.0, 2.0)
    >>> bool((w >= -2).all() and (w < 2).all())
    True
    """
    return tensor.uniform_(a, b, generator=generator)


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill ``tensor`` with draws from ``N(mean, std^2)``.

    >>> w = fnx.nn.init.normal_(fnx.empty(10000), 3.0, 0.5)
    >>> round(w.mean().item(), 1), round(w.std().item(), 1)
    (3.0, 0.5)
    """
    return tensor.normal_(mean, std, generator=generator)


def trunc_normal_(tensor, mean=0.0, std=1.0, a=-2.0, b=2.0, generator=None):
    """Fill ``tensor`` with draws from ``N(mean, std^2)`` truncated to ``[a, b]`` (absolute
    bounds, as PyTorch).

    >>> w = fnx.nn.init.trunc_normal_(fnx.empty(1000), std=2.0, a=-1.0, b=1.0)
    >>> bool((w >= -1).all() and (w <= 1).all())
    True
    """
    if mean < a - 2 * std or mean > b + 2 * std:
        warnings.warn("trunc_normal_: mean is more than 2 std from [a, b]; the distribution "
                      "of values may be incorrect.", UserWarning, stacklevel=2)
    z = random.truncated_normal(_key(generator), (a - mean) / std, (b - mean) / std,
                                tuple(tensor.shape), dtype=tensor.dtype)
    return tensor.copy_(fnp.clip(z * std + mean, a, b))


def constant_(tensor, val):
    """Fill ``tensor`` with ``val``.

    >>> fnx.nn.init.constant_(fnx.empty(2), 0.5).tolist()
    [0.5, 0.5]
    """
    return tensor.fill_(val)


def ones_(tensor):
    """Fill ``tensor`` with ones.

    >>> fnx.nn.init.ones_(fnx.empty(2)).tolist()
    [1.0, 1.0]
    """
    return tensor.fill_(1.0)


def zeros_(tensor):
    """Fill ``tensor`` with zeros.

    >>> fnx.nn.init.zeros_(fnx.empty(2)).tolist()
    [0.0, 0.0]
    """
    return tensor.zero_()


def eye_(tensor):
    """Fill a 2-D ``tensor`` with the identity (ones on the main diagonal).

    >>> fnx.nn.init.eye_(fnx.empty(2, 3)).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-D tensors are supported, got shape {tuple(tensor.shape)}")
    return tensor.copy_(fnp.eye(*tensor.shape, dtype=tensor.dtype))


def dirac_(tensor, groups=1):
    """Fill a 3-, 4- or 5-D convolution weight with the Dirac delta: the convolution keeps
    the input channels (per group of ``out / groups`` channels).

    >>> w = fnx.nn.init.dirac_(fnx.empty(2, 2, 3))
    >>> fnx.nn.functional.conv1d(fnx.tensor([[[1.0, 2.0], [3.0, 4.0]]]), w, padding=1).tolist()
    [[[1.0, 2.0], [3.0, 4.0]]]
    """
    shape = tuple(tensor.shape)
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"dirac_: only 3, 4 and 5-D tensors are supported, got shape {shape}")
    if shape[0] % groups:
        raise ValueError(f"dirac_: dim 0 ({shape[0]}) must be divisible by groups ({groups})")
    out_per_group = shape[0] // groups
    w = np.zeros(shape, dtype=np.dtype(tensor.dtype))
    centre = tuple(k // 2 for k in shape[2:])
    for g in range(groups):
        for d in range(min(out_per_group, shape[1])):
            w[(g * out_per_group + d, d) + centre] = 1
    return tensor.copy_(w)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot uniform: ``U(-a, a)`` with ``a = gain * sqrt(6 / (fan_in + fan_out))``.

    >>> w = fnx.nn.init.xavier_uniform_(fnx.empty(30, 20))
    >>> bool(w.abs().max() <= (6 / 50) ** 0.5)
    True
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    a = math.sqrt(3.0) * gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return tensor.uniform_(-a, a, generator=generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot normal: ``N(0, std^2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``.

    >>> w = fnx.nn.init.xavier_normal_(fnx.empty(300, 200))
    >>> round(w.std().item() / (2 / 500) ** 0.5, 1)
    1.0
    """
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return tensor.normal_(0.0, std, generator=generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    fan = _calculate_correct_fan(tensor, mode)
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def _empty_tensor(op, tensor):
    if 0 in tuple(tensor.shape):
        warnings.warn(f"{op}: initializing a zero-element tensor is a no-op", UserWarning,
                      stacklevel=3)
        return True
    return False


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He uniform: ``U(-b, b)`` with ``b = gain * sqrt(3 / fan)``, ``gain`` from
    ``calculate_gain(nonlinearity, a)`` and ``fan`` by ``mode`` (``'fan_in'``/``'fan_out'``).
    ``a=sqrt(5)`` is PyTorch's default for Linear and Conv weights.

    >>> w = fnx.nn.init.kaiming_uniform_(fnx.empty(64, 100), nonlinearity="relu")
    >>> bool(w.abs().max() <= (6 / 100) ** 0.5)
    True
    """
    if _empty_tensor("kaiming_uniform_", tensor):
        return tensor
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return tensor.uniform_(-bound, bound, generator=generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He normal: ``N(0, std^2)`` with ``std = gain / sqrt(fan)``.

    >>> w = fnx.nn.init.kaiming_normal_(fnx.empty(400, 100), mode="fan_in", nonlinearity="relu")
    >>> round(w.std().item() / (2 / 100) ** 0.5, 1)
    1.0
    """
    if _empty_tensor("kaiming_normal_", tensor):
        return tensor
    return tensor.normal_(0.0, _kaiming_std(tensor, a, mode, nonlinearity), generator=generator)


def orthogonal_(tensor, gain=1, generator=None):
    """Fill ``tensor`` (at least 2-D, trailing dims flattened) with a (semi-)orthogonal matrix
    from the QR decomposition of a normal draw, signs fixed by ``R``'s diagonal, times
    ``gain``.

    >>> w = fnx.nn.init.orthogonal_(fnx.empty(3, 5))
    >>> bool(fnx.allclose(w @ w.T, fnx.eye(3), atol=1e-5))
    True
    """
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, "
                         f"got shape {tuple(tensor.shape)}")
    rows = tensor.shape[0]
    cols = math.prod(tensor.shape) // rows if rows else 0
    if rows == 0 or cols == 0:
        return tensor
    flat = random.normal(_key(generator), (rows, cols), dtype=tensor.dtype)
    if rows < cols:
        flat = flat.T
    q, r = fnp.linalg.qr(flat)
    q = q * fnp.sign(fnp.diagonal(r))
    if rows < cols:
        q = q.T
    return tensor.copy_(fnp.reshape(q, tensor.shape) * gain)
