"""``fnx.nn.functional``: the stateless functions every layer calls (``torch.nn.functional``).

``import fnx.nn.functional as F`` and call them with PyTorch's names, signatures, defaults and
layouts (``(N, C, L)``, ``(N, C, H, W)``; ``reduction='mean' | 'sum' | 'none'``). Everything
here is a composition of ``fnx.numpy`` / ``fnx.lax`` / ``fnx.random`` functions, so it is
differentiable, vmappable and jittable with no special case in any transform.

Where PyTorch mutates state, the functional result is available too:

* ``batch_norm`` / ``instance_norm`` update ``running_mean`` / ``running_var`` in place (for
  concrete arrays, as PyTorch); ``batch_norm_with_stats`` / ``instance_norm_with_stats``
  return the new statistics instead, which is what a layer uses under ``grad``/``jit``/``vmap``.
* ``inplace=True`` (``relu``, ``dropout``, ...) writes the result into a concrete input with
  ``copy_``; on a traced input it returns the result (arrays are values inside transforms).
* Randomness (``dropout``...) comes from an explicit ``key=`` (an ``fnx.random`` key) when given,
  else from fnx's global generator (``fnx.manual_seed`` makes it reproducible).

>>> import fnx.nn.functional as F
>>> x = fnx.tensor([[1.0, 2.0, 3.0]])
>>> F.cross_entropy(x, fnx.tensor([2])).item() == -F.log_softmax(x, dim=1)[0, 2].item()
True
"""

import math
import numbers
import warnings

import numpy as np

import fnx
from .. import lax, random
from .. import numpy as fnp
from ..core.errors import DTypeError, FnxIndexError, ShapeError, TraceError
from ..core.ops.attention import attention
from ..core.ops.embedding import embedding_lookup
from ..core.ops import conv as _conv_ops
from ..core.ops import pooling as _pooling
from ..scipy import special

__all__ = [
    # linear and convolution
    "linear", "bilinear", "conv1d", "conv2d", "conv_transpose1d", "conv_transpose2d",
    "unfold", "fold",
    # pooling
    "max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_max_pool1d", "adaptive_max_pool2d",
    # normalization
    "batch_norm", "batch_norm_with_stats", "instance_norm", "instance_norm_with_stats",
    "layer_norm", "group_norm", "rms_norm", "normalize",
    # dropout
    "dropout", "dropout1d", "dropout2d", "alpha_dropout",
    # sparse
    "embedding", "embedding_bag", "one_hot",
    # vision / shape
    "pad", "interpolate",
    # distances
    "cosine_similarity", "pairwise_distance",
    # attention
    "scaled_dot_product_attention",
    # activations
    "relu", "relu6", "leaky_relu", "prelu", "gelu", "sigmoid", "tanh", "softmax",
    "log_softmax", "softmin", "elu", "selu", "celu", "silu", "mish", "softplus", "softsign",
    "hardtanh", "hardswish", "hardsigmoid", "threshold", "glu", "logsigmoid",
    # losses
    "cross_entropy", "nll_loss", "binary_cross_entropy", "binary_cross_entropy_with_logits",
    "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "cosine_embedding_loss",
    "margin_ranking_loss", "triplet_margin_loss", "poisson_nll_loss", "hinge_embedding_loss",
]


# --- shared helpers --------------------------------------------------------------------------


def _arr(x):
    return fnp.asarray(x)


def _const(values, like):
    """A NumPy constant (indices, divisors, masks) as an array on ``like``'s device."""
    return fnp.asarray(values, device=like.device)


def _is_concrete(x):
    """An eager array, whose values can be read (tracers also pass ``isinstance(x,
    fnx.Array)``, as PyTorch code expects of tensors, so the exact type is tested)."""
    return type(x) is fnx.Array


def _float(op, x):
    x = _arr(x)
    if x.dtype.kind not in "fc":
        raise DTypeError(f"{op}: expected a floating-point input, got dtype {x.dtype}; convert "
                         f"it with .float()")
    return x


def _tuple(op, name, value, n):
    """``value`` (an int or a sequence of ``n`` ints) as a tuple of ``n`` ints."""
    if isinstance(value, numbers.Integral):
        return (int(value),) * n
    value = tuple(value)
    if len(value) == 1:
        value = value * n
    if len(value) != n or not all(isinstance(v, numbers.Integral) for v in value):
        raise ValueError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    return tuple(int(v) for v in value)


def _check_rank(op, x, ranks, layout):
    if x.ndim not in ranks:
        want = " or ".join(f"{r}-D" for r in ranks)
        raise ShapeError(f"{op}: expected {want} input {layout}, got {x.ndim}-D input of "
                         f"shape {tuple(x.shape)}")


def _channel_shape(x, dim=1):
    """Shape that broadcasts a per-channel ``(C,)`` vector along ``dim`` of ``x``."""
    return (-1,) + (1,) * (x.ndim - dim - 1)


def _write_inplace(input, out, inplace):
    """``inplace=True``: PyTorch writes into ``input``. Concrete arrays get the result with
    ``copy_``; a traced input cannot change, so the (equal) result is returned."""
    if inplace and _is_concrete(input):
        return input.copy_(out)
    return out


def _next_key(key):
    return fnx.default_generator.next_key() if key is None else key


def _check_concrete_indices(op, idx, low, high, what, ignore=None):
    """Raise an IndexError naming ``op`` when concrete ``idx`` has values outside
    ``[low, high)`` (other than ``ignore``); traced indices cannot be read and are not checked."""
    if not _is_concrete(idx) or idx.size == 0:
        return
    v = np.asarray(idx)
    bad = (v < low) | (v >= high)
    if ignore is not None:
        bad &= v != ignore
    if bad.any():
        extra = "" if ignore is None else f" (or ignore_index={ignore})"
        raise FnxIndexError(f"{op}: {what} {int(v[bad].flat[0])} is out of range; expected "
                            f"values in [{low}, {high}){extra}")


# --- reductions of losses --------------------------------------------------------------------


def _reduction(op, size_average, reduce, reduction, extra=()):
    if size_average is not None or reduce is not None:
        # PyTorch's legacy arguments (deprecated there too), mapped as its legacy_get_string
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        reduction = ("mean" if size_average else "sum") if reduce else "none"
        warnings.warn(f"{op}: size_average and reduce are deprecated; use "
                      f"reduction={reduction!r}", UserWarning, stacklevel=3)
    allowed = ("none", "mean", "sum") + tuple(extra)
    if reduction not in allowed:
        raise ValueError(f"{op}: reduction must be one of {allowed}, got {reduction!r}")
    return reduction


def _reduce(loss, reduction):
    if reduction == "mean":
        return fnp.mean(loss)
    if reduction == "sum":
        return fnp.sum(loss)
    return loss


def _pointwise_pair(op, input, target):
    """Broadcast ``input`` and ``target`` as PyTorch's pointwise losses do (warning when their
    shapes differ, since that is usually a bug)."""
    x, y = _arr(input), _arr(target)
    if tuple(x.shape) != tuple(y.shape):
        warnings.warn(f"{op}: using a target size {tuple(y.shape)} that is different to the "
                      f"input size {tuple(x.shape)}; they are broadcast, which is likely not "
                      f"what you want. Make sure they have the same size.", UserWarning,
                      stacklevel=3)
        x, y = fnp.broadcast_arrays(x, y)
    return x, y


# --- linear ----------------------------------------------------------------------------------


def linear(input, weight, bias=None):
    """``y = x W^T + b``: ``input (*, in_features)``, ``weight (out_features, in_features)``,
    ``bias (out_features,)``.

    >>> F = fnx.nn.functional
    >>> F.linear(fnx.ones(2, 3), fnx.ones(4, 3), fnx.zeros(4)).shape
    (2, 4)
    """
    x, w = _arr(input), _arr(weight)
    if w.ndim not in (1, 2):
        raise ShapeError(f"linear: weight must be (out_features, in_features) or "
                         f"(in_features,), got shape {tuple(w.shape)}")
    if x.ndim == 0 or x.shape[-1] != w.shape[-1]:
        raise ShapeError(f"linear: expected input with last dimension {w.shape[-1]} (weight "
                         f"shape {tuple(w.shape)}), got input of shape {tuple(x.shape)}")
    if w.ndim == 2 and x.ndim > 2:
        # leading dims flattened: every product of the forward and backward (x W^T, g W,
        # g^T x) is then one 2-D BLAS call on views, with no layout copy around it
        rows = math.prod(x.shape[:-1])
        out = fnp.matmul(fnp.reshape(x, (rows, x.shape[-1])), fnp.matrix_transpose(w))
        out = fnp.reshape(out, tuple(x.shape[:-1]) + (w.shape[0],))
    else:
        out = fnp.matmul(x, fnp.matrix_transpose(w)) if w.ndim == 2 else fnp.matmul(x, w)
    return out if bias is None else out + _arr(bias)


def bilinear(input1, input2, weight, bias=None):
    """``y_k = x1^T W_k x2 + b_k``: ``input1 (*, in1)``, ``input2 (*, in2)``,
    ``weight (out, in1, in2)``.

    >>> F = fnx.nn.functional
    >>> F.bilinear(fnx.ones(5, 2), fnx.ones(5, 3), fnx.ones(4, 2, 3)).shape
    (5, 4)
    """
    x1, x2, w = _arr(input1), _arr(input2), _arr(weight)
    if (w.ndim != 3 or x1.ndim == 0 or x2.ndim == 0 or x1.shape[-1] != w.shape[1]
            or x2.shape[-1] != w.shape[2] or x1.shape[:-1] != x2.shape[:-1]):
        raise ShapeError(f"bilinear: expected input1 (*, {w.shape[1] if w.ndim == 3 else 'in1'}),"
                         f" input2 (*, in2) with the same leading dims and weight "
                         f"(out, in1, in2), got {tuple(x1.shape)}, {tuple(x2.shape)} and "
                         f"{tuple(w.shape)}")
    out = fnp.einsum("...i,kij,...j->...k", x1, w, x2)
    return out if bias is None else out + _arr(bias)


# --- convolution -----------------------------------------------------------------------------


def _conv_input(op, nsp, input, weight):
    """Validate and batch ``input``: returns ``(x, w, unbatched)``."""
    x, w = _arr(input), _arr(weight)
    names = {1: "(N, C, L)", 2: "(N, C, H, W)"}[nsp]
    _check_rank(op, x, (nsp + 1, nsp + 2), f"{names} (or unbatched without N)")
    if w.ndim != nsp + 2:
        raise ShapeError(f"{op}: expected a {nsp + 2}-D weight, got shape {tuple(w.shape)}")
    unbatched = x.ndim == nsp + 1
    return (fnp.expand_dims(x, 0) if unbatched else x), w, unbatched


def _finish_conv(out, bias, nsp, unbatched):
    if bias is not None:
        out = out + fnp.reshape(_arr(bias), (-1,) + (1,) * nsp)
    return out[0] if unbatched else out


def _conv(op, nsp, input, weight, bias, stride, padding, dilation, groups):
    x, w, unbatched = _conv_input(op, nsp, input, weight)
    if groups < 1 or x.shape[1] != w.shape[1] * groups or w.shape[0] % groups:
        raise ShapeError(f"{op}: expected input with {w.shape[1] * groups} channels (weight "
                         f"{tuple(w.shape)} is (out_channels, in_channels / groups, *kernel) "
                         f"with groups={groups}, and out_channels divisible by groups), got "
                         f"input of shape {tuple(x.shape)}")
    stride = _tuple(op, "stride", stride, nsp)
    dilation = _tuple(op, "dilation", dilation, nsp)
    kernel = w.shape[2:]
    if isinstance(padding, str):
        if padding == "valid":
            pads = ((0, 0),) * nsp
        elif padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
            # PyTorch puts the odd element of the total padding on the right
            total = [d * (k - 1) for d, k in zip(dilation, kernel)]
            pads = tuple((t // 2, t - t // 2) for t in total)
        else:
            raise ValueError(f"{op}: padding must be 'same', 'valid', an int or a tuple, got "
                             f"{padding!r}")
    else:
        pads = tuple((p, p) for p in _tuple(op, "padding", padding, nsp))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(x.shape[2:], pads))
    extent = tuple(d * (k - 1) + 1 for d, k in zip(dilation, kernel))
    if any(n < e for n, e in zip(padded, extent)):  # PyTorch's error, not an empty output
        raise ShapeError(f"{op}: the padded input size {padded} is smaller than the dilated "
                         f"kernel size {extent} (input {tuple(x.shape)}, weight "
                         f"{tuple(w.shape)}); pad the input or use a smaller kernel")
    out = lax.conv_general_dilated(x, w, stride, pads, None, dilation, groups)
    return _finish_conv(out, bias, nsp, unbatched)


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution (cross-correlation): ``input (N, C_in, L)`` or ``(C_in, L)``,
    ``weight (C_out, C_in / groups, k)``; ``padding`` an int, ``'same'`` or ``'valid'``.

    >>> F = fnx.nn.functional
    >>> F.conv1d(fnx.ones(1, 1, 5), fnx.ones(1, 1, 3)).tolist()
    [[[3.0, 3.0, 3.0]]]
    """
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation): ``input (N, C_in, H, W)`` or ``(C_in, H, W)``,
    ``weight (C_out, C_in / groups, kH, kW)``; ``padding`` an int, a pair, ``'same'`` or
    ``'valid'``.

    >>> F = fnx.nn.functional
    >>> F.conv2d(fnx.ones(1, 3, 5, 5), fnx.ones(8, 3, 3, 3), padding="same").shape
    (1, 8, 5, 5)
    """
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups)


def _conv_transpose(op, nsp, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    x, w, unbatched = _conv_input(op, nsp, input, weight)
    c_in, c_out_g = w.shape[:2]
    if groups < 1 or x.shape[1] != c_in or c_in % groups:
        raise ShapeError(f"{op}: expected input with {c_in} channels (weight {tuple(w.shape)} "
                         f"is (in_channels, out_channels / groups, *kernel), in_channels "
                         f"divisible by groups={groups}), got input of shape {tuple(x.shape)}")
    stride = _tuple(op, "stride", stride, nsp)
    padding = _tuple(op, "padding", padding, nsp)
    output_padding = _tuple(op, "output_padding", output_padding, nsp)
    dilation = _tuple(op, "dilation", dilation, nsp)
    for op_, s, d in zip(output_padding, stride, dilation):
        if op_ >= s and op_ >= d:
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than "
                             f"either stride {stride} or dilation {dilation}")
    kernel = w.shape[2:]
    size = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1 for n, s, p, d, k, o in
                 zip(x.shape[2:], stride, padding, dilation, kernel, output_padding))
    if any(n < 1 for n in size):
        raise ShapeError(f"{op}: input {tuple(x.shape)} with weight {tuple(w.shape)}, stride "
                         f"{stride}, padding {padding} and dilation {dilation} gives output "
                         f"size {size}; the padding must be smaller")
    # the input gradient of the convolution (N, C_out, *size) -> (N, C_in, *x's) whose weight
    # is w; its hi padding p - output_padding makes that convolution's output exactly x's size
    pads = tuple((p, p - o) for p, o in zip(padding, output_padding))
    out = _conv_ops.conv_lhs_grad_p.bind(
        x, w, lhs_shape=size, window_strides=stride, padding=pads, lhs_dilation=(1,) * nsp,
        rhs_dilation=dilation, feature_group_count=groups)
    return _finish_conv(out, bias, nsp, unbatched)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution: ``input (N, C_in, L)``, ``weight (C_in, C_out / groups, k)``;
    output length ``(L - 1) * stride - 2 * padding + dilation * (k - 1) + output_padding + 1``.

    >>> F = fnx.nn.functional
    >>> F.conv_transpose1d(fnx.ones(1, 1, 3), fnx.ones(1, 1, 2)).tolist()
    [[[1.0, 2.0, 2.0, 1.0]]]
    """
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution: ``input (N, C_in, H, W)``,
    ``weight (C_in, C_out / groups, kH, kW)``.

    >>> F = fnx.nn.functional
    >>> F.conv_transpose2d(fnx.ones(1, 4, 5, 5), fnx.ones(4, 2, 3, 3), stride=2,
    ...                    output_padding=1).shape
    (1, 2, 12, 12)
    """
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def _unfold_geometry(op, x, kernel_size, dilation, padding, stride, spatial):
    k = _tuple(op, "kernel_size", kernel_size, 2)
    d = _tuple(op, "dilation", dilation, 2)
    p = _tuple(op, "padding", padding, 2)
    s = _tuple(op, "stride", stride, 2)
    blocks = tuple((n + 2 * pp - dd * (kk - 1) - 1) // ss + 1
                   for n, kk, dd, pp, ss in zip(spatial, k, d, p, s))
    if any(b < 1 for b in blocks):
        raise ShapeError(f"{op}: kernel_size {k} with dilation {d}, padding {p}, stride {s} "
                         f"gives no sliding block over spatial size {tuple(spatial)} (input "
                         f"{tuple(x.shape)})")
    return k, d, p, s, blocks


def _block_slice(offset, dilation, stride, blocks):
    start = offset * dilation
    return slice(start, start + (blocks - 1) * stride + 1, stride)


def unfold(input, kernel_size, dilation=1, padding=0, stride=1):
    """Extract sliding local blocks (im2col): ``(N, C, H, W) -> (N, C * kH * kW, L)`` with the
    block entries ordered ``(c, kh, kw)`` and ``L`` blocks in row-major order.

    >>> F = fnx.nn.functional
    >>> F.unfold(fnx.arange(16.0).reshape(1, 1, 4, 4), kernel_size=2, stride=2)[0, :, 0].tolist()
    [0.0, 1.0, 4.0, 5.0]
    """
    x = _arr(input)
    _check_rank("unfold", x, (3, 4), "(N, C, H, W) (or unbatched (C, H, W))")
    unbatched = x.ndim == 3
    if unbatched:
        x = fnp.expand_dims(x, 0)
    n, c = x.shape[:2]
    k, d, p, s, blocks = _unfold_geometry("unfold", x, kernel_size, dilation, padding, stride,
                                          x.shape[2:])
    if any(p):
        x = fnp.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    cols = [x[:, :, _block_slice(i, d[0], s[0], blocks[0]), _block_slice(j, d[1], s[1], blocks[1])]
            for i in range(k[0]) for j in range(k[1])]
    out = fnp.reshape(fnp.stack(cols, axis=2), (n, c * k[0] * k[1], blocks[0] * blocks[1]))
    return out[0] if unbatched else out


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """Sum sliding local blocks into a tensor (col2im, the adjoint of ``unfold``):
    ``(N, C * kH * kW, L) -> (N, C, *output_size)``.

    >>> F = fnx.nn.functional
    >>> x = fnx.ones(1, 1, 3, 3)
    >>> F.fold(F.unfold(x, 2), (3, 3), 2)[0, 0].tolist()
    [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]
    """
    x = _arr(input)
    _check_rank("fold", x, (2, 3), "(N, C * kH * kW, L) (or unbatched (C * kH * kW, L))")
    unbatched = x.ndim == 2
    if unbatched:
        x = fnp.expand_dims(x, 0)
    size = _tuple("fold", "output_size", output_size, 2)
    k, d, p, s, blocks = _unfold_geometry("fold", x, kernel_size, dilation, padding, stride,
                                          size)
    n, ckk, length = x.shape
    if ckk % (k[0] * k[1]) or length != blocks[0] * blocks[1]:
        raise ShapeError(f"fold: expected input (N, C * {k[0] * k[1]}, {blocks[0] * blocks[1]}) "
                         f"for kernel_size {k} and output_size {size}, got {tuple(x.shape)}")
    c = ckk // (k[0] * k[1])
    cols = fnp.reshape(x, (n, c, k[0], k[1]) + blocks)
    out = fnp.zeros((n, c, size[0] + 2 * p[0], size[1] + 2 * p[1]), dtype=x.dtype,
                    device=x.device)
    for i in range(k[0]):
        for j in range(k[1]):
            out = out.at[:, :, _block_slice(i, d[0], s[0], blocks[0]),
                         _block_slice(j, d[1], s[1], blocks[1])].add(cols[:, :, i, j])
    out = out[:, :, p[0]:p[0] + size[0], p[1]:p[1] + size[1]]
    return out[0] if unbatched else out


# --- pooling ---------------------------------------------------------------------------------


_POOL_LAYOUTS = {1: "(N, C, L) (or unbatched (C, L))", 2: "(N, C, H, W) (or unbatched (C, H, W))",
                 3: "(N, C, D, H, W) (or unbatched (C, D, H, W))"}


def _pool_setup(op, nsp, input, kernel_size, stride, padding, dilation, ceil_mode):
    x = _arr(input)
    _check_rank(op, x, (nsp + 1, nsp + 2), _POOL_LAYOUTS[nsp])
    k = _tuple(op, "kernel_size", kernel_size, nsp)
    s = k if stride is None or (not isinstance(stride, int) and len(stride) == 0) else \
        _tuple(op, "stride", stride, nsp)
    p = _tuple(op, "padding", padding, nsp)
    d = _tuple(op, "dilation", dilation, nsp)
    if any(v < 1 for v in k + s + d) or any(v < 0 for v in p):
        raise ValueError(f"{op}: kernel_size {k}, stride {s} and dilation {d} must be positive "
                         f"and padding {p} non-negative")
    if any(2 * pp > dd * (kk - 1) + 1 for pp, kk, dd in zip(p, k, d)):
        raise ValueError(f"{op}: padding {p} should be at most half of the effective kernel "
                         f"size (kernel_size {k}, dilation {d})")
    out = tuple(_pooling.pool_output_size(n, kk, ss, pp, dd, ceil_mode)
                for n, kk, ss, pp, dd in zip(x.shape[-nsp:], k, s, p, d))
    if any(o < 1 for o in out):
        raise ShapeError(f"{op}: input of shape {tuple(x.shape)} is too small for kernel_size "
                         f"{k} (dilation {d}, padding {p}): the output size would be {out}")
    return x, k, s, p, d


def _averaged(x):
    """Averages of integers are floats (the pooling primitives average floating point)."""
    return x if x.dtype.kind in "fc" else x.astype(fnp.float32)


def _max_pool(op, nsp, input, kernel_size, stride, padding, dilation, ceil_mode,
              return_indices):
    x, k, s, p, d = _pool_setup(op, nsp, input, kernel_size, stride, padding, dilation,
                                ceil_mode)
    out, index = _pooling.max_pool(x, k, s, p, d, ceil_mode)
    return (out, index) if return_indices else out


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max pooling over ``(N, C, L)``; ``stride`` defaults to ``kernel_size``, padding
    counts as ``-inf``. ``return_indices=True`` also returns each maximum's position in ``L``.

    >>> F = fnx.nn.functional
    >>> F.max_pool1d(fnx.tensor([[[1.0, 3.0, 2.0, 5.0, 4.0]]]), 2).tolist()
    [[[3.0, 5.0]]]
    """
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling over ``(N, C, H, W)``; with ``return_indices=True`` also the flat
    ``h * W + w`` index of each maximum (the first one on ties), as PyTorch.

    >>> F = fnx.nn.functional
    >>> out, idx = F.max_pool2d(fnx.arange(16.0).reshape(1, 1, 4, 4), 2, return_indices=True)
    >>> out.tolist(), idx.tolist()
    ([[[[5.0, 7.0], [13.0, 15.0]]]], [[[[5, 7], [13, 15]]]])
    """
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def _avg_pool(op, nsp, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    x, k, s, p, _ = _pool_setup(op, nsp, input, kernel_size, stride, padding, 1, ceil_mode)
    if divisor_override is not None and divisor_override == 0:
        raise ValueError(f"{op}: divisor_override must be non-zero")
    return _pooling.avg_pool(_averaged(x), k, s, p, ceil_mode, count_include_pad,
                             divisor_override)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """1-D average pooling over ``(N, C, L)``; ``count_include_pad`` counts the zero padding in
    the divisor.

    >>> F = fnx.nn.functional
    >>> F.avg_pool1d(fnx.tensor([[[1.0, 3.0, 2.0, 6.0]]]), 2).tolist()
    [[[2.0, 4.0]]]
    """
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling over ``(N, C, H, W)``; ``divisor_override`` replaces the window
    size as the divisor.

    >>> F = fnx.nn.functional
    >>> F.avg_pool2d(fnx.ones(1, 1, 3, 3), 2, stride=1, padding=1,
    ...              count_include_pad=False)[0, 0, 0].tolist()
    [1.0, 1.0, 1.0, 1.0]
    """
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def _adaptive_setup(op, nsp, input, output_size):
    x = _arr(input)
    _check_rank(op, x, (nsp + 1, nsp + 2), _POOL_LAYOUTS[nsp])
    spatial = x.shape[-nsp:]
    if isinstance(output_size, numbers.Integral) or output_size is None:
        output_size = (output_size,) * nsp
    output_size = tuple(output_size)
    if len(output_size) != nsp:
        raise ValueError(f"{op}: output_size must be an int or a tuple of {nsp}, got "
                         f"{output_size!r}")
    out = tuple(n if o is None else int(o) for n, o in zip(spatial, output_size))
    if any(o < 1 for o in out) or any(n < 1 for n in spatial):
        raise ShapeError(f"{op}: need a non-empty input and positive output_size, got input "
                         f"{tuple(x.shape)} and output_size {output_size}")
    return x, out


def _adaptive_avg(op, nsp, input, output_size):
    x, out = _adaptive_setup(op, nsp, input, output_size)
    return _pooling.avg_pool(_averaged(x), None, None, None, output_size=out)


def adaptive_avg_pool1d(input, output_size):
    """Average pooling to a fixed output length: window ``i`` covers
    ``[floor(i L / out), ceil((i + 1) L / out))``.

    >>> F = fnx.nn.functional
    >>> F.adaptive_avg_pool1d(fnx.tensor([[[1.0, 2.0, 3.0, 4.0, 5.0]]]), 2).tolist()
    [[[2.0, 4.0]]]
    """
    return _adaptive_avg("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Average pooling of ``(N, C, H, W)`` to ``output_size`` (an int, a pair, ``None`` keeps
    that dimension).

    >>> F = fnx.nn.functional
    >>> F.adaptive_avg_pool2d(fnx.ones(2, 3, 7, 5), 1).shape
    (2, 3, 1, 1)
    """
    return _adaptive_avg("adaptive_avg_pool2d", 2, input, output_size)


def _adaptive_max(op, nsp, input, output_size, return_indices):
    x, out = _adaptive_setup(op, nsp, input, output_size)
    best, index = _pooling.max_pool(x, None, None, None, output_size=out)
    return (best, index) if return_indices else best


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling to a fixed output length (windows as ``adaptive_avg_pool1d``).

    >>> F = fnx.nn.functional
    >>> F.adaptive_max_pool1d(fnx.tensor([[[1.0, 5.0, 3.0, 4.0, 2.0]]]), 2).tolist()
    [[[5.0, 4.0]]]
    """
    return _adaptive_max("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling of ``(N, C, H, W)`` to ``output_size``; ``return_indices`` gives flat
    ``h * W + w`` positions.

    >>> F = fnx.nn.functional
    >>> F.adaptive_max_pool2d(fnx.arange(16.0).reshape(1, 1, 4, 4), 1).tolist()
    [[[[15.0]]]]
    """
    return _adaptive_max("adaptive_max_pool2d", 2, input, output_size, return_indices)


# --- normalization ---------------------------------------------------------------------------


def _affine(y, weight, bias, shape):
    if weight is not None:
        y = y * fnp.reshape(_arr(weight), shape)
    if bias is not None:
        y = y + fnp.reshape(_arr(bias), shape)
    return y


def _fused_normalize(x, dims, layout, weight, bias, eps, center=True):
    """``normalize_p`` on ``x`` viewed as ``dims`` (fnx/core/ops/normalization.py: statistics
    and normalization in one kernel, the backward fused too), ``weight`` / ``bias`` ``None``
    meaning 1 / 0: ``(y, mean, var)``. Inputs and parameters meet in their promoted float
    dtype."""
    from ..core.ops.normalization import normalize

    weight, bias = (None if p is None else _arr(p) for p in (weight, bias))
    dtype = x.dtype
    if dtype.kind != "f" or any(p is not None and p.dtype != dtype for p in (weight, bias)):
        dtype = fnp.result_type(x, *[p for p in (weight, bias) if p is not None], 1.0)
        x, weight, bias = (a if a is None or a.dtype == dtype else a.astype(dtype)
                           for a in (x, weight, bias))
    size = dims[1] if layout == "channel" else dims[1] * dims[2]
    if weight is None:
        weight = fnp.ones(size, dtype=dtype, device=x.device)
    if bias is None:
        bias = fnp.zeros(weight.shape, dtype=dtype, device=x.device)
    return normalize(x, weight, bias, layout=layout, dims=dims, eps=eps, center=center)


def _updated_stats(op, running, batch_stat, momentum):
    """``(1 - momentum) * running + momentum * batch_stat``, with the batch statistic's
    gradient stopped: the running statistics are bookkeeping, not part of the model's output."""
    if running is None:
        return None
    running = _arr(running)
    batch_stat = lax.stop_gradient(batch_stat).astype(running.dtype)
    if tuple(running.shape) != tuple(batch_stat.shape):
        raise ShapeError(f"{op}: running statistics of shape {tuple(running.shape)} do not "
                         f"match the {batch_stat.shape[0]} channels of the input")
    return running * (1 - momentum) + batch_stat * momentum


def _write_stats(op, functional_name, pairs):
    for running, new in pairs:
        if running is None:
            continue
        if not (_is_concrete(running) and _is_concrete(new)):
            raise TraceError(
                f"{op}: cannot update running_mean / running_var in place inside a transform "
                f"(grad, vmap, jit): arrays are values there. Call "
                f"fnx.nn.functional.{functional_name}(...), which returns (output, new_mean, "
                f"new_var), and use the new statistics (or pass training=False)")
        running.copy_(new)


def batch_norm_with_stats(input, running_mean, running_var, weight=None, bias=None,
                          training=False, momentum=0.1, eps=1e-05):
    """Batch normalization that returns the updated running statistics instead of writing
    them: ``(output, new_running_mean, new_running_var)`` (each ``None`` when not given).

    In training mode the batch statistics over ``(N, *spatial)`` normalize the input and the
    running statistics move by ``momentum`` towards them (the variance unbiased, as PyTorch);
    in eval mode the running statistics normalize and are returned unchanged. This is the
    form a layer uses under ``grad``/``jit``/``vmap``.

    >>> F = fnx.nn.functional
    >>> out, m, v = F.batch_norm_with_stats(fnx.tensor([[1.0], [3.0]]), fnx.zeros(1),
    ...                                     fnx.ones(1), training=True, eps=0.0)
    >>> out.tolist(), round(m.item(), 4), round(v.item(), 4)
    ([[-1.0], [1.0]], 0.2, 1.1)
    """
    x = _arr(input)
    if x.ndim < 2:
        raise ShapeError(f"batch_norm: expected input (N, C, *) with at least 2 dims, got shape "
                         f"{tuple(x.shape)}")
    if training:
        count = x.size // x.shape[1] if x.shape[1] else 0
        if x.size == 0:  # as PyTorch: an empty output, the running statistics unchanged
            return _affine(x * 1, weight, bias, _channel_shape(x)), running_mean, running_var
        if count == 1:
            raise ValueError(f"batch_norm: expected more than 1 value per channel when "
                             f"training, got input of shape {tuple(x.shape)}")
        n, c = x.shape[:2]
        out, mean, var = _fused_normalize(x, (n, c, count // n), "channel", weight, bias, eps)
        new_mean = _updated_stats("batch_norm", running_mean, mean, momentum)
        new_var = _updated_stats("batch_norm", running_var, var * (count / (count - 1)),
                                 momentum)
        return out, new_mean, new_var
    if running_mean is None or running_var is None:
        raise ValueError("batch_norm: running_mean and running_var are needed when "
                         "training=False")
    shape = _channel_shape(x)
    mean = fnp.reshape(_arr(running_mean), shape)
    var = fnp.reshape(_arr(running_var), shape)
    y = (x - mean) * fnp.rsqrt(var + eps)
    return _affine(y, weight, bias, shape), running_mean, running_var


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-05):
    """Batch normalization over ``(N, C, *)`` per channel; in training mode the concrete
    ``running_mean`` / ``running_var`` are updated in place as PyTorch does (inside transforms
    use ``batch_norm_with_stats``, which returns them).

    >>> F = fnx.nn.functional
    >>> rm, rv = fnx.zeros(2), fnx.ones(2)
    >>> _ = F.batch_norm(fnx.tensor([[0.0, 2.0], [2.0, 4.0]]), rm, rv, training=True)
    >>> [round(v, 4) for v in rm.tolist()]
    [0.1, 0.3]
    """
    out, new_mean, new_var = batch_norm_with_stats(input, running_mean, running_var, weight,
                                                   bias, training, momentum, eps)
    if training:
        _write_stats("batch_norm", "batch_norm_with_stats",
                     ((running_mean, new_mean), (running_var, new_var)))
    return out


def instance_norm_with_stats(input, running_mean=None, running_var=None, weight=None,
                             bias=None, use_input_stats=True, momentum=0.1, eps=1e-05):
    """Instance normalization returning ``(output, new_running_mean, new_running_var)``: each
    ``(n, c)`` slice is normalized over its spatial dims; running statistics (when given) move
    towards the batch average of the per-instance statistics.

    >>> F = fnx.nn.functional
    >>> out, _, _ = F.instance_norm_with_stats(fnx.tensor([[[1.0, 3.0]]]), eps=0.0)
    >>> out.tolist()
    [[[-1.0, 1.0]]]
    """
    x = _arr(input)
    if x.ndim < 3:
        raise ShapeError(f"instance_norm: expected input (N, C, *spatial) with at least 3 dims, "
                         f"got shape {tuple(x.shape)}")
    shape = _channel_shape(x)
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError("instance_norm: running_mean and running_var are needed when "
                             "use_input_stats=False")
        y = (x - fnp.reshape(_arr(running_mean), shape)) * fnp.rsqrt(
            fnp.reshape(_arr(running_var), shape) + eps)
        return _affine(y, weight, bias, shape), running_mean, running_var
    count = math.prod(x.shape[2:])
    if x.size == 0 and count != 1:  # as PyTorch: an empty output, the statistics unchanged
        return _affine(x * 1, weight, bias, shape), running_mean, running_var
    if count == 1:
        raise ValueError(f"instance_norm: expected more than 1 spatial element when training, "
                         f"got input of shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    out, mean, var = _fused_normalize(x, (n, c, 1, count), "group", weight, bias, eps)
    if running_mean is None and running_var is None:
        return out, None, None
    mean = fnp.mean(mean, axis=0)
    var = fnp.mean(var, axis=0) * (count / (count - 1))
    new_mean = _updated_stats("instance_norm", running_mean, mean, momentum)
    new_var = _updated_stats("instance_norm", running_var, var, momentum)
    return out, new_mean, new_var


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-05):
    """Instance normalization of ``(N, C, *spatial)``: each ``(n, c)`` slice normalized over
    its spatial dims; concrete running statistics are updated in place when
    ``use_input_stats``.

    >>> F = fnx.nn.functional
    >>> F.instance_norm(fnx.tensor([[[1.0, 3.0], [0.0, 4.0]]]), eps=0.0).tolist()
    [[[-1.0, 1.0], [-1.0, 1.0]]]
    """
    out, new_mean, new_var = instance_norm_with_stats(input, running_mean, running_var, weight,
                                                      bias, use_input_stats, momentum, eps)
    if use_input_stats:
        _write_stats("instance_norm", "instance_norm_with_stats",
                     ((running_mean, new_mean), (running_var, new_var)))
    return out


def _check_normalized_shape(op, x, normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(n) for n in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or x.ndim < k or tuple(x.shape[-k:]) != normalized_shape:
        raise ShapeError(f"{op}: given normalized_shape={list(normalized_shape)}, expected "
                         f"input with shape [*, {', '.join(map(str, normalized_shape))}], got "
                         f"input of shape {tuple(x.shape)}")
    return normalized_shape


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-05):
    """Normalize over the last ``len(normalized_shape)`` dims (biased variance), then scale by
    ``weight`` and shift by ``bias`` (each of ``normalized_shape``).

    >>> F = fnx.nn.functional
    >>> F.layer_norm(fnx.tensor([[1.0, 3.0]]), (2,), eps=0.0).tolist()
    [[-1.0, 1.0]]
    """
    x = _arr(input)
    shape = _check_normalized_shape("layer_norm", x, normalized_shape)
    k = math.prod(shape)
    rows = math.prod(x.shape[:x.ndim - len(shape)])
    return _fused_normalize(x, (rows, 1, k, 1), "group", weight, bias, eps)[0]


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last ``len(normalized_shape)`` dims;
    ``eps=None`` is the input dtype's machine epsilon (as PyTorch).

    >>> F = fnx.nn.functional
    >>> [round(v, 4) for v in F.rms_norm(fnx.tensor([1.0, 7.0]), (2,)).tolist()]
    [0.2, 1.4]
    """
    x = _arr(input)
    shape = _check_normalized_shape("rms_norm", x, normalized_shape)
    if eps is None:
        eps = float(np.finfo(x.dtype).eps)
    k = math.prod(shape)
    rows = math.prod(x.shape[:x.ndim - len(shape)])
    return _fused_normalize(x, (rows, 1, k, 1), "group", weight, None, eps, center=False)[0]


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-05):
    """Normalize ``(N, C, *)`` over each group of ``C // num_groups`` channels and the spatial
    dims, then apply the per-channel ``weight`` / ``bias``.

    >>> F = fnx.nn.functional
    >>> F.group_norm(fnx.tensor([[1.0, 3.0, 5.0, 9.0]]), 2, eps=0.0).tolist()
    [[-1.0, 1.0, -1.0, 1.0]]
    """
    x = _arr(input)
    if x.ndim < 2 or num_groups < 1 or x.shape[1] % num_groups:
        raise ShapeError(f"group_norm: expected input (N, C, *) with C divisible by "
                         f"num_groups={num_groups}, got shape {tuple(x.shape)}")
    n, c = x.shape[:2]
    view = (n, num_groups, c // num_groups, math.prod(x.shape[2:]))
    return _fused_normalize(x, view, "group", weight, bias, eps)[0]


def normalize(input, p=2.0, dim=1, eps=1e-12, out=None):
    """``x / max(||x||_p, eps)`` along ``dim``.

    >>> F = fnx.nn.functional
    >>> F.normalize(fnx.tensor([[3.0, 4.0]], dtype=fnx.float64)).tolist()
    [[0.6, 0.8]]
    """
    if out is not None:
        raise TypeError("normalize: out= is not supported (fnx arrays are values); use the "
                        "returned array")
    x = _arr(input)
    norm = fnp.linalg.vector_norm(x, ord=p, axis=dim, keepdims=True)
    return x / fnp.maximum(norm, eps)


# --- dropout ---------------------------------------------------------------------------------


def _check_p(op, p):
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability has to be between 0 and 1, but got {p}")


def _dropout_mask(x, p, shape, key):
    keep = random.bernoulli(_next_key(key), 1.0 - p, shape).astype(x.dtype)
    # the global generator's keys live on the CPU: the mask follows the input
    return keep if keep.device == x.device else fnp.asarray(keep, device=x.device)


def dropout(input, p=0.5, training=True, inplace=False, *, key=None):
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)`` when
    ``training``; the identity otherwise. ``key``: an ``fnx.random`` key (default: the global
    generator).

    >>> F = fnx.nn.functional
    >>> y = F.dropout(fnx.ones(1000), 0.5, key=fnx.random.key(0))
    >>> sorted(set(y.tolist()))
    [0.0, 2.0]
    """
    _check_p("dropout", p)
    x = _arr(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _write_inplace(input, x * 0, inplace)
    out = x * _dropout_mask(x, p, x.shape, key) / (1.0 - p)
    return _write_inplace(input, out, inplace)


def _channel_dropout(op, nsp, input, p, training, inplace, key):
    _check_p(op, p)
    x = _arr(input)
    _check_rank(op, x, (nsp + 1, nsp + 2), "(N, C, *spatial) (or unbatched (C, *spatial))")
    if not training or p == 0.0:
        return x
    shape = tuple(x.shape[:-nsp]) + (1,) * nsp  # one draw per (n, c) channel
    out = x * _dropout_mask(x, p, shape, key) / (1.0 - p) if p < 1.0 else x * 0
    return _write_inplace(input, out, inplace)


def dropout1d(input, p=0.5, training=True, inplace=False, *, key=None):
    """Zero whole channels of ``(N, C, L)`` with probability ``p`` (scaling the rest by
    ``1 / (1 - p)``).

    >>> F = fnx.nn.functional
    >>> y = F.dropout1d(fnx.ones(1, 50, 4), key=fnx.random.key(1))
    >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())
    True
    """
    return _channel_dropout("dropout1d", 1, input, p, training, inplace, key)


def dropout2d(input, p=0.5, training=True, inplace=False, *, key=None):
    """Zero whole channels of ``(N, C, H, W)`` with probability ``p``. A 3-D input is taken as
    ``(N, C, L)`` (channel-wise 1-D dropout), as PyTorch does, with a warning.

    >>> F = fnx.nn.functional
    >>> y = F.dropout2d(fnx.ones(1, 50, 2, 2), key=fnx.random.key(1))
    >>> bool(((y == 0).all((-2, -1)) | (y == 2).all((-2, -1))).all())
    True
    """
    if _arr(input).ndim == 3:
        warnings.warn("dropout2d: received a 3-D input; taking it as (N, C, L) and zeroing "
                      "whole channels (use dropout1d for that)", UserWarning, stacklevel=2)
        return _channel_dropout("dropout2d", 1, input, p, training, inplace, key)
    return _channel_dropout("dropout2d", 2, input, p, training, inplace, key)


# SELU's negative saturation value -scale * alpha: AlphaDropout sets dropped units to it
_ALPHA_PRIME = 1.7580993408473766


def alpha_dropout(input, p=0.5, training=False, inplace=False, *, key=None):
    """Dropout for SELU networks: dropped units take SELU's saturation value and an affine map
    keeps the mean and variance (PyTorch's formula ``x * a * m + a * alpha' * (m - 1 + p)``).

    >>> F = fnx.nn.functional
    >>> x = fnx.randn(20000, generator=fnx.Generator().manual_seed(0))
    >>> y = F.alpha_dropout(x, 0.2, training=True, key=fnx.random.key(0))
    >>> round(y.mean().item(), 1), round(y.std().item(), 1)
    (0.0, 1.0)
    """
    _check_p("alpha_dropout", p)
    x = _arr(input)
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return _write_inplace(input, x * 0, inplace)
    a = 1.0 / math.sqrt((_ALPHA_PRIME ** 2 * p + 1) * (1 - p))
    mask = _dropout_mask(x, p, x.shape, key)
    out = x * (mask * a) + (mask - 1) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
    return _write_inplace(input, out, inplace)


# --- sparse: embeddings and one-hot ----------------------------------------------------------


def _embedding_table(op, weight):
    w = _arr(weight)
    if w.ndim != 2:
        raise ShapeError(f"{op}: weight must be (num_embeddings, embedding_dim), got shape "
                         f"{tuple(w.shape)}")
    return w


def _index_input(op, input):
    idx = _arr(input)
    if idx.dtype.kind not in "iu":
        raise DTypeError(f"{op}: expected integer indices (int64 or int32), got dtype "
                         f"{idx.dtype}; convert with .long()")
    return idx


def _padding_idx(op, padding_idx, num):
    if padding_idx is None:
        return None
    if not -num <= padding_idx < num:
        raise ValueError(f"{op}: padding_idx {padding_idx} must be within num_embeddings "
                         f"({num})")
    return padding_idx % num


def _renorm_rows(op, w, idx, max_norm, norm_type):
    """PyTorch's ``embedding_renorm_``: rows referenced by ``idx`` whose norm exceeds
    ``max_norm`` are rescaled in place."""
    if not (_is_concrete(w) and _is_concrete(idx)):
        raise NotImplementedError(
            f"{op}: max_norm rescales the weight in place, which needs concrete (eager) weight "
            f"and indices; inside transforms renormalize the weight yourself or pass "
            f"max_norm=None")
    rows = np.unique(np.asarray(idx))
    table = np.asarray(w)
    norms = np.linalg.norm(table[rows], ord=norm_type, axis=1)
    scale = np.where(norms > max_norm, max_norm / (norms + 1e-7), 1.0)
    new = table.copy()
    new[rows] = table[rows] * scale[:, None].astype(table.dtype)
    w.copy_(new)


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0,
              scale_grad_by_freq=False, sparse=False):
    """Look up rows of ``weight (num_embeddings, dim)`` for the integer ``input``; output
    ``(*input.shape, dim)``. ``padding_idx``'s row gets no gradient; ``max_norm`` rescales
    referenced rows of a concrete weight in place; ``scale_grad_by_freq`` divides each row's
    gradient by its count in ``input``. ``sparse`` is accepted, gradients are dense.

    >>> F = fnx.nn.functional
    >>> F.embedding(fnx.tensor([[0, 2]]), fnx.arange(6.0).reshape(3, 2)).tolist()
    [[[0.0, 1.0], [4.0, 5.0]]]
    """
    del sparse  # fnx gradients are dense
    w = _embedding_table("embedding", weight)
    idx = _index_input("embedding", input)
    _check_concrete_indices("embedding", idx, 0, w.shape[0], "index")
    if max_norm is not None:
        _renorm_rows("embedding", weight, idx, max_norm, norm_type)
        w = _arr(weight)
    out = embedding_lookup(w, idx)  # its gradient: one fused row scatter-add
    if scale_grad_by_freq:
        flat = fnp.reshape(idx, (-1,))
        counts = fnp.zeros((w.shape[0],), dtype=w.dtype, device=w.device).at[flat].add(1.0)
        scale = fnp.expand_dims(fnp.take(counts, idx, axis=0), -1)
        # same value, gradient divided by the index's frequency
        out = out / scale + lax.stop_gradient(out - out / scale)
    padding_idx = _padding_idx("embedding", padding_idx, w.shape[0])
    if padding_idx is not None:
        out = fnp.where(fnp.expand_dims(idx == padding_idx, -1), lax.stop_gradient(out), out)
    return out


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2,
                  scale_grad_by_freq=False, mode="mean", sparse=False,
                  per_sample_weights=None, include_last_offset=False, padding_idx=None):
    """Sum, mean or max of bags of embeddings without materializing each lookup per bag.

    A 2-D ``input (B, n)`` is ``B`` bags of ``n`` indices; a 1-D ``input`` is split into bags
    by ``offsets`` (bag starts; with ``include_last_offset`` the last entry is the end).
    ``per_sample_weights`` scale each lookup (``mode='sum'`` only); ``padding_idx`` entries
    are left out (and not counted in the mean); empty bags give zeros.

    >>> F = fnx.nn.functional
    >>> w = fnx.arange(6.0).reshape(3, 2)
    >>> F.embedding_bag(fnx.tensor([0, 1, 2]), w, fnx.tensor([0, 1]), mode="sum").tolist()
    [[0.0, 1.0], [6.0, 8.0]]
    """
    del sparse  # fnx gradients are dense
    op = "embedding_bag"
    w = _embedding_table(op, weight)
    idx = _index_input(op, input)
    if mode not in ("sum", "mean", "max"):
        raise ValueError(f"{op}: mode must be 'sum', 'mean' or 'max', got {mode!r}")
    if per_sample_weights is not None and mode != "sum":
        raise ValueError(f"{op}: per_sample_weights are only supported for mode='sum', got "
                         f"mode={mode!r}")
    if idx.ndim == 2:
        if offsets is not None:
            raise ValueError(f"{op}: offsets must be None for a 2-D input (each row is a bag), "
                             f"got offsets of shape {tuple(_arr(offsets).shape)}")
        bags, per_bag = idx.shape
        bag_of = _const(np.repeat(np.arange(bags), per_bag), w)
        idx = fnp.reshape(idx, (-1,))
        if per_sample_weights is not None:
            per_sample_weights = fnp.reshape(_arr(per_sample_weights), (-1,))
    elif idx.ndim == 1:
        if offsets is None:
            raise ValueError(f"{op}: a 1-D input needs offsets (the start of each bag)")
        off = _index_input(op, offsets)
        if off.ndim != 1:
            raise ShapeError(f"{op}: offsets must be 1-D, got shape {tuple(off.shape)}")
        bags = off.shape[0] - 1 if include_last_offset else off.shape[0]
        if _is_concrete(off):
            o = np.asarray(off)
            if o.size and (o[0] != 0 or np.any(np.diff(o) < 0)):
                raise ValueError(f"{op}: offsets must start at 0 and be non-decreasing, got "
                                 f"{o.tolist()}")
            bag_of = _const(np.searchsorted(o[:bags], np.arange(idx.shape[0]),
                                            side="right") - 1, w)
        else:
            positions = fnp.arange(idx.shape[0], device=w.device)
            bag_of = fnp.sum(fnp.expand_dims(positions, 1) >= off[:bags], axis=1) - 1
        if include_last_offset:
            # entries at or past the last offset belong to no bag
            bag_of = fnp.where(fnp.arange(idx.shape[0], device=w.device) < off[bags], bag_of,
                               bags)
    else:
        raise ShapeError(f"{op}: expected a 1-D (with offsets) or 2-D input, got shape "
                         f"{tuple(idx.shape)}")
    _check_concrete_indices(op, idx, 0, w.shape[0], "index")
    if max_norm is not None:
        _renorm_rows(op, weight, idx, max_norm, norm_type)
        w = _arr(weight)
    rows = embedding(idx, w, scale_grad_by_freq=scale_grad_by_freq)
    keep = fnp.ones(idx.shape, dtype=w.dtype, device=w.device)
    padding_idx = _padding_idx(op, padding_idx, w.shape[0])
    if padding_idx is not None:
        keep = (idx != padding_idx).astype(w.dtype)
    dim = w.shape[1]
    if mode == "max":
        init = fnp.full((bags + 1, dim), -math.inf, dtype=w.dtype, device=w.device)
        rows = fnp.where(fnp.expand_dims(keep > 0, -1), rows, -math.inf)
        out = init.at[bag_of].max(rows)[:bags]
        return fnp.where(out == -math.inf, 0, out)  # empty bags give zeros
    weights = keep if per_sample_weights is None else keep * _arr(per_sample_weights)
    # one extra bag collects the entries of no bag (include_last_offset), then is dropped
    out = fnp.zeros((bags + 1, dim), dtype=w.dtype, device=w.device).at[bag_of].add(
        rows * fnp.expand_dims(weights, -1))[:bags]
    if mode == "mean":
        counts = fnp.zeros((bags + 1,), dtype=w.dtype, device=w.device).at[bag_of].add(
            keep)[:bags]
        out = out / fnp.expand_dims(fnp.maximum(counts, 1), -1)
    return out


def one_hot(tensor, num_classes=-1):
    """``(*) int64 -> (*, num_classes) int64`` with a 1 at each index; ``num_classes=-1``
    takes ``max + 1`` of a concrete input.

    >>> F = fnx.nn.functional
    >>> F.one_hot(fnx.tensor([0, 2]), 3).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    idx = _index_input("one_hot", tensor)
    if num_classes == -1:
        if not _is_concrete(idx):
            raise ValueError("one_hot: num_classes=-1 reads the largest index, which a traced "
                             "input does not have; pass num_classes explicitly")
        if idx.size == 0:
            raise ValueError("one_hot: cannot infer num_classes of an empty tensor; pass it")
        num_classes = int(np.asarray(idx).max()) + 1
    _check_concrete_indices("one_hot", idx, 0, num_classes, "class value")
    classes = fnp.arange(num_classes, dtype=idx.dtype, device=idx.device)
    return (fnp.expand_dims(idx, -1) == classes).astype(fnp.int64)


# --- padding and resampling ------------------------------------------------------------------

_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def pad(input, pad, mode="constant", value=None):
    """Pad the last ``len(pad) // 2`` dims: ``pad = (left_last, right_last, left_2nd_last,
    ...)``. Modes ``'constant'`` (``value``, default 0; negative widths crop), ``'reflect'``,
    ``'replicate'``, ``'circular'``.

    >>> F = fnx.nn.functional
    >>> F.pad(fnx.tensor([[1.0, 2.0, 3.0]]), (2, 1), mode="reflect").tolist()
    [[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]
    """
    x = _arr(input)
    pad = tuple(int(v) for v in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad: pad {pad} must have an even length of at most 2 * ndim "
                         f"({2 * x.ndim}) for input of shape {tuple(x.shape)}")
    k = len(pad) // 2
    widths = [(0, 0)] * (x.ndim - k) + [(pad[2 * j], pad[2 * j + 1]) for j in range(k)][::-1]
    if mode == "constant":
        crop = tuple(slice(max(-lo, 0), n - max(-hi, 0)) for n, (lo, hi) in zip(x.shape, widths))
        x = x[crop]
        widths = [(max(lo, 0), max(hi, 0)) for lo, hi in widths]
        return fnp.pad(x, widths, constant_values=0 if value is None else value)
    if mode not in _PAD_MODES:
        raise ValueError(f"pad: mode must be 'constant', 'reflect', 'replicate' or "
                         f"'circular', got {mode!r}")
    if value not in (None, 0):
        raise ValueError(f"pad: padding mode {mode!r} doesn't take in value argument")
    for n, (lo, hi) in zip(x.shape, widths):
        if min(lo, hi) < 0:
            raise ValueError(f"pad: mode {mode!r} needs non-negative widths, got {pad}")
        limit = {"reflect": n - 1, "circular": n}.get(mode, math.inf)
        if max(lo, hi) > limit:
            raise ValueError(f"pad: {mode} padding {pad} must be at most {limit} for a "
                             f"dimension of size {n} (input {tuple(x.shape)})")
    return fnp.pad(x, widths, mode=_PAD_MODES[mode])


_INTERP_RANK = {"linear": 1, "bilinear": 2, "bicubic": 2, "trilinear": 3}


def _source_coords(n_in, n_out, align_corners, scale, cubic):
    """PyTorch's ``area_pixel_compute_source_index`` for each output position (float64)."""
    dst = np.arange(n_out, dtype=np.float64)
    if align_corners:
        return dst * ((n_in - 1) / (n_out - 1) if n_out > 1 else 0.0)
    ratio = 1.0 / scale if scale is not None and scale > 0 else n_in / n_out
    src = ratio * (dst + 0.5) - 0.5
    return src if cubic else np.maximum(src, 0.0)


def _cubic_weights(t, a=-0.75):
    """The four cubic-convolution weights (Keys, A = -0.75 as PyTorch) at fraction ``t``."""
    def near(u):
        return ((a + 2) * u - (a + 3)) * u * u + 1

    def far(u):
        return ((a * u - 5 * a) * u + 8 * a) * u - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _resample_axis(x, axis, n_out, mode, align_corners, scale):
    """Resample one axis as a sum of a few gathers weighted per output position."""
    n_in = x.shape[axis]
    shape = (-1,) + (1,) * (x.ndim - axis - 1)
    if mode in ("nearest", "nearest-exact"):
        # PyTorch's 2-D nearest kernel (only it) maps equal and doubled sizes exactly, which
        # differs from the float32 formula when scale_factor is not exactly 1 or 2
        if mode == "nearest" and x.ndim == 4 and n_out in (n_in, 2 * n_in):
            src = np.arange(n_out) // (n_out // n_in)
        else:
            # PyTorch computes these source indices in float32
            ratio = np.float32(1.0 / scale if scale is not None and scale > 0 else n_in / n_out)
            dst = np.arange(n_out, dtype=np.float32) + np.float32(
                0.5 if mode == "nearest-exact" else 0.0)
            src = np.minimum(np.floor(dst * ratio).astype(np.int64), n_in - 1)
        return fnp.take(x, _const(src, x), axis=axis)
    cubic = mode == "bicubic"
    src = _source_coords(n_in, n_out, align_corners, scale, cubic)
    base = np.floor(src).astype(np.int64)
    t = src - base
    if cubic:
        taps = [(base + j - 1, w) for j, w in enumerate(_cubic_weights(t))]
    else:
        taps = [(base, 1.0 - t), (base + 1, t)]
    out = None
    for pos, weight in taps:
        g = fnp.take(x, _const(np.clip(pos, 0, n_in - 1), x), axis=axis)
        term = g * fnp.reshape(_const(weight.astype(x.dtype), x), shape)
        out = term if out is None else out + term
    return out


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize ``(N, C, *spatial)`` to ``size`` or by ``scale_factor``. Modes: ``'nearest'``,
    ``'nearest-exact'``, ``'linear'`` (3-D), ``'bilinear'`` / ``'bicubic'`` (4-D),
    ``'trilinear'`` (5-D), ``'area'`` (adaptive average pooling); PyTorch's source-index
    formulas, ``align_corners`` for the interpolating modes.

    >>> F = fnx.nn.functional
    >>> F.interpolate(fnx.tensor([[[0.0, 1.0]]]), scale_factor=2, mode="linear").tolist()
    [[[0.0, 0.25, 0.75, 1.0]]]
    """
    x = _arr(input)
    nsp = x.ndim - 2
    if nsp < 1:
        raise ShapeError(f"interpolate: expected input (N, C, *spatial) with 1 to 3 spatial "
                         f"dims, got shape {tuple(x.shape)}")
    modes = ("nearest", "nearest-exact", "area") + tuple(_INTERP_RANK)
    if mode not in modes:
        raise ValueError(f"interpolate: mode must be one of {modes}, got {mode!r}")
    if mode in _INTERP_RANK and _INTERP_RANK[mode] != nsp:
        raise ShapeError(f"interpolate: got {x.ndim}-D input, but {mode} mode needs "
                         f"{_INTERP_RANK[mode] + 2}-D input")
    if align_corners is not None and mode not in _INTERP_RANK:
        raise ValueError("interpolate: align_corners option can only be set with the "
                         "interpolating modes: linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError("interpolate: antialias=True is not supported")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    spatial = x.shape[2:]
    scales = [None] * nsp
    if size is not None:
        out = _tuple("interpolate", "size", size, nsp)
    else:
        factors = (scale_factor,) * nsp if isinstance(scale_factor, numbers.Real) else \
            tuple(scale_factor)
        if len(factors) != nsp:
            raise ValueError(f"interpolate: scale_factor {scale_factor!r} needs {nsp} entries")
        out = tuple(math.floor(n * float(f)) for n, f in zip(spatial, factors))
        if not recompute_scale_factor:
            scales = [float(f) for f in factors]
    if any(o < 1 for o in out):
        raise ShapeError(f"interpolate: output size {out} must be positive (input "
                         f"{tuple(x.shape)})")
    if mode == "area":
        return _adaptive_avg("interpolate", nsp, x, out)
    align = bool(align_corners)
    for j in range(nsp):
        x = _resample_axis(x, 2 + j, out[j], mode, align, scales[j])
    return x


# --- distances -------------------------------------------------------------------------------


def cosine_similarity(x1, x2, dim=1, eps=1e-08):
    """``sum(x1 * x2, dim) / (max(||x1||, eps) * max(||x2||, eps))`` (inputs broadcast).

    >>> F = fnx.nn.functional
    >>> F.cosine_similarity(fnx.tensor([[1.0, 0.0]]), fnx.tensor([[1.0, 1.0]])).tolist()[0]
    0.7071067690849304
    """
    a, b = fnp.broadcast_arrays(_arr(x1), _arr(x2))
    na = fnp.maximum(fnp.linalg.vector_norm(a, axis=dim, keepdims=True), eps)
    nb = fnp.maximum(fnp.linalg.vector_norm(b, axis=dim, keepdims=True), eps)
    return fnp.sum((a / na) * (b / nb), axis=dim)


def _pnorm(v, p, axis, keepdim):
    return fnp.linalg.vector_norm(v, ord=p, axis=axis, keepdims=keepdim)


def pairwise_distance(x1, x2, p=2.0, eps=1e-06, keepdim=False):
    """``||x1 - x2 + eps||_p`` over the last dim.

    >>> F = fnx.nn.functional
    >>> round(F.pairwise_distance(fnx.tensor([[0.0, 0.0]]), fnx.tensor([[3.0, 4.0]])).item(), 4)
    5.0
    """
    a, b = _arr(x1), _arr(x2)
    return _pnorm(a - b + eps, p, -1, keepdim)


# --- attention -------------------------------------------------------------------------------


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, *,
                                 dropout_key=None):
    """``softmax(q k^T * scale + mask) v`` over ``(..., L, E)`` queries and ``(..., S, E)``
    keys. ``attn_mask``: bool (True takes part) or float (added); ``is_causal`` masks the
    upper triangle; ``scale`` defaults to ``1 / sqrt(E)``; ``enable_gqa`` repeats key/value
    heads (dim -3) to the query's head count. A row with every key masked gives zeros.
    ``dropout_key`` (an ``fnx.random`` key; ``key`` is the keys' name here) drives the
    attention dropout, else the global generator.

    >>> F = fnx.nn.functional
    >>> q = k = v = fnx.ones(2, 4, 3, 8)
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).shape
    (2, 4, 3, 8)
    """
    q, k, v = _arr(query), _arr(key), _arr(value)
    op = "scaled_dot_product_attention"
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2 or q.shape[-1] != k.shape[-1] \
            or k.shape[-2] != v.shape[-2]:
        raise ShapeError(f"{op}: expected query (..., L, E), key (..., S, E) and value "
                         f"(..., S, Ev), got {tuple(q.shape)}, {tuple(k.shape)} and "
                         f"{tuple(v.shape)}")
    if enable_gqa and k.ndim >= 3 and k.shape[-3] != q.shape[-3]:
        if q.shape[-3] % k.shape[-3]:
            raise ShapeError(f"{op}: with enable_gqa the query heads ({q.shape[-3]}) must be a "
                             f"multiple of the key/value heads ({k.shape[-3]})")
        reps = q.shape[-3] // k.shape[-3]
        k, v = (fnp.repeat(t, reps, axis=-3) for t in (k, v))
    if scale is None:  # E == 0: every score is an empty sum (0), which any finite scale keeps
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] else 1.0
    if is_causal and attn_mask is not None:
        raise ValueError(f"{op}: an explicit attn_mask should not be set when is_causal=True")
    dtype = fnp.result_type(q, k, v)
    q, k, v = (t.astype(dtype) for t in (q, k, v))
    lead = fnp.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    q, k, v = (fnp.broadcast_to(t, lead + t.shape[-2:]) for t in (q, k, v))
    mask = None
    if attn_mask is not None:
        mask = _arr(attn_mask)
        if mask.dtype == fnp.bool_:  # True takes part: an additive 0 / -inf mask
            mask = fnp.where(mask, 0.0, -math.inf).astype(dtype)
        else:
            mask = mask.astype(dtype)
        scores = lead + (q.shape[-2], k.shape[-2])
        if mask.ndim > len(scores):
            raise ShapeError(f"{op}: attn_mask {tuple(mask.shape)} does not broadcast against "
                             f"the attention scores {scores}")
        mask = fnp.reshape(mask, (1,) * (len(scores) - mask.ndim) + tuple(mask.shape))
        if fnp.broadcast_shapes(mask.shape, scores) != scores:
            raise ShapeError(f"{op}: attn_mask {tuple(attn_mask.shape)} does not broadcast "
                             f"against the attention scores {scores}")
        if mask.shape[-1] != scores[-1]:  # attention_p reads whole mask rows (one per key)
            mask = fnp.broadcast_to(mask, mask.shape[:-1] + scores[-1:])
    keep = drop = None
    if dropout_p > 0.0:
        _check_p(op, dropout_p)
        shape = lead + (q.shape[-2], k.shape[-2])
        if dropout_p < 1.0:
            keep, drop = _dropout_mask(q, dropout_p, shape, dropout_key), 1.0 / (1.0 - dropout_p)
        else:
            keep, drop = fnp.zeros(shape, dtype=dtype, device=q.device), 1.0
    out, _ = attention(q, k, v, mask, keep, scale=scale, causal=is_causal, dropout_scale=drop)
    return out


# --- activations -----------------------------------------------------------------------------


def relu(input, inplace=False):
    """``max(x, 0)``; the gradient at 0 is 0, as PyTorch.

    >>> F = fnx.nn.functional
    >>> F.relu(fnx.tensor([-1.0, 0.0, 2.0])).tolist()
    [0.0, 0.0, 2.0]
    """
    x = _arr(input)
    return _write_inplace(input, fnp.where(x > 0, x, 0), inplace)


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """``clamp(x, min_val, max_val)``, with gradient 0 at and outside the bounds.

    >>> F = fnx.nn.functional
    >>> F.hardtanh(fnx.tensor([-2.0, 0.5, 2.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} cannot be greater than max_val "
                         f"{max_val}")
    x = _arr(input)
    out = fnp.where(x <= min_val, min_val, fnp.where(x >= max_val, max_val, x)).astype(x.dtype)
    return _write_inplace(input, out, inplace)


def relu6(input, inplace=False):
    """``min(max(x, 0), 6)``.

    >>> F = fnx.nn.functional
    >>> F.relu6(fnx.tensor([-1.0, 3.0, 8.0])).tolist()
    [0.0, 3.0, 6.0]
    """
    return hardtanh(input, 0.0, 6.0, inplace)


def leaky_relu(input, negative_slope=0.01, inplace=False):
    """``x if x > 0 else negative_slope * x``.

    >>> F = fnx.nn.functional
    >>> F.leaky_relu(fnx.tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    x = _arr(input)
    return _write_inplace(input, fnp.where(x > 0, x, x * negative_slope), inplace)


def prelu(input, weight):
    """``x if x > 0 else a * x`` with a learned ``weight`` of one entry or one per channel
    (dim 1; a 1-D input has no channel dim).

    >>> F = fnx.nn.functional
    >>> F.prelu(fnx.tensor([[-2.0, -2.0]]), fnx.tensor([0.5, 0.25])).tolist()
    [[-1.0, -0.5]]
    """
    x, w = _arr(input), _arr(weight)
    channels = x.shape[1] if x.ndim >= 2 else 1
    if w.ndim > 1 or w.size not in (1, channels):
        raise ShapeError(f"prelu: weight must have 1 or {channels} (channels) elements, got "
                         f"shape {tuple(w.shape)} for input {tuple(x.shape)}")
    if w.size > 1:
        w = fnp.reshape(w, _channel_shape(x))
    elif w.ndim:
        w = fnp.reshape(w, ())
    return fnp.where(x > 0, x, x * w)


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def gelu(input, approximate="none"):
    """``x * Phi(x)`` (``approximate='none'``) or its tanh approximation
    ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))``.

    >>> F = fnx.nn.functional
    >>> round(F.gelu(fnx.tensor(1.0)).item(), 4), round(F.gelu(fnx.tensor(1.0), "tanh").item(), 4)
    (0.8413, 0.8412)
    """
    x = _float("gelu", input)
    if approximate == "none":
        return 0.5 * x * (1.0 + special.erf(x * (1.0 / math.sqrt(2.0))))
    if approximate == "tanh":
        return 0.5 * x * (1.0 + fnp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))
    raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")


def sigmoid(input):
    """``1 / (1 + exp(-x))``.

    >>> F = fnx.nn.functional
    >>> F.sigmoid(fnx.tensor([0.0])).tolist()
    [0.5]
    """
    return special.expit(_arr(input))


def tanh(input):
    """Hyperbolic tangent.

    >>> F = fnx.nn.functional
    >>> F.tanh(fnx.tensor([0.0])).tolist()
    [0.0]
    """
    return fnp.tanh(_arr(input))


def _softmax_dim(op, ndim, dim):
    if dim is not None:
        return dim
    warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call "
                  f"to include dim=X as an argument.", UserWarning, stacklevel=3)
    return 0 if ndim in (0, 1, 3) else 1


def _softmax_input(input, dtype):
    x = _arr(input)
    return x.astype(dtype) if dtype is not None else x


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``exp(x) / sum(exp(x), dim)``; ``dtype`` casts the input first.

    >>> F = fnx.nn.functional
    >>> F.softmax(fnx.zeros(1, 2), dim=1).tolist()
    [[0.5, 0.5]]
    """
    del _stacklevel  # PyTorch's warning plumbing
    x = _softmax_input(input, dtype)
    return special.softmax(x, axis=_softmax_dim("softmax", x.ndim, dim))


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """``x - logsumexp(x, dim)``.

    >>> F = fnx.nn.functional
    >>> [round(v, 4) for v in F.log_softmax(fnx.zeros(2), dim=0).tolist()]
    [-0.6931, -0.6931]
    """
    del _stacklevel  # PyTorch's warning plumbing
    x = _softmax_input(input, dtype)
    return special.log_softmax(x, axis=_softmax_dim("log_softmax", x.ndim, dim))


def softmin(input, dim=None, _stacklevel=3, dtype=None):
    """``softmax(-x, dim)``.

    >>> F = fnx.nn.functional
    >>> F.softmin(fnx.tensor([0.0, 0.0]), dim=0).tolist()
    [0.5, 0.5]
    """
    del _stacklevel  # PyTorch's warning plumbing
    x = _softmax_input(input, dtype)
    return special.softmax(-x, axis=_softmax_dim("softmin", x.ndim, dim))


def elu(input, alpha=1.0, inplace=False):
    """``x if x > 0 else alpha * (exp(x) - 1)``.

    >>> F = fnx.nn.functional
    >>> [round(v, 4) for v in F.elu(fnx.tensor([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    x = _float("elu", input)
    # expm1 of min(x, 0): the discarded branch must not overflow (inf * 0 = nan gradients)
    out = fnp.where(x > 0, x, alpha * fnp.expm1(fnp.minimum(x, 0)))
    return _write_inplace(input, out, inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input, inplace=False):
    """``scale * elu(x, alpha)`` with SELU's fixed ``alpha`` and ``scale``.

    >>> F = fnx.nn.functional
    >>> round(F.selu(fnx.tensor([1.0])).item(), 4)
    1.0507
    """
    x = _float("selu", input)
    out = _SELU_SCALE * fnp.where(x > 0, x, _SELU_ALPHA * fnp.expm1(fnp.minimum(x, 0)))
    return _write_inplace(input, out, inplace)


def celu(input, alpha=1.0, inplace=False):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    >>> F = fnx.nn.functional
    >>> [round(v, 4) for v in F.celu(fnx.tensor([-1.0, 2.0]), alpha=2.0).tolist()]
    [-0.7869, 2.0]
    """
    if alpha == 0:
        raise ValueError("celu: alpha cannot be 0")
    x = _float("celu", input)
    out = fnp.where(x > 0, x, alpha * fnp.expm1(fnp.minimum(x, 0) / alpha))
    return _write_inplace(input, out, inplace)


def silu(input, inplace=False):
    """``x * sigmoid(x)`` (swish).

    >>> F = fnx.nn.functional
    >>> round(F.silu(fnx.tensor([1.0])).item(), 4)
    0.7311
    """
    x = _float("silu", input)
    return _write_inplace(input, x * special.expit(x), inplace)


def softplus(input, beta=1.0, threshold=20.0):
    """``log(1 + exp(beta x)) / beta``, and ``x`` where ``beta x > threshold``.

    >>> F = fnx.nn.functional
    >>> round(F.softplus(fnx.tensor([0.0])).item(), 4)
    0.6931
    """
    x = _float("softplus", input)
    bx = x * beta
    # the discarded branch sees a clamped input, so it neither overflows nor poisons gradients
    soft = fnp.log1p(fnp.exp(fnp.minimum(bx, threshold))) / beta
    return fnp.where(bx > threshold, x, soft)


def mish(input, inplace=False):
    """``x * tanh(softplus(x))``.

    >>> F = fnx.nn.functional
    >>> round(F.mish(fnx.tensor([1.0])).item(), 4)
    0.8651
    """
    x = _float("mish", input)
    return _write_inplace(input, x * fnp.tanh(softplus(x)), inplace)


def softsign(input):
    """``x / (1 + |x|)``.

    >>> F = fnx.nn.functional
    >>> F.softsign(fnx.tensor([1.0, -3.0])).tolist()
    [0.5, -0.75]
    """
    x = _arr(input)
    return x / (1 + fnp.abs(x))


def hardswish(input, inplace=False):
    """``x * relu6(x + 3) / 6`` (gradient as PyTorch at the kinks: ``(2x + 3) / 6`` on
    ``[-3, 3]``).

    >>> F = fnx.nn.functional
    >>> F.hardswish(fnx.tensor([-4.0, 0.0, 3.0])).tolist()
    [-0.0, 0.0, 3.0]
    """
    x = _float("hardswish", input)
    out = fnp.where(x < -3, x * 0, fnp.where(x <= 3, x * (x + 3) / 6, x))
    return _write_inplace(input, out, inplace)


def hardsigmoid(input, inplace=False):
    """``relu6(x + 3) / 6``.

    >>> F = fnx.nn.functional
    >>> F.hardsigmoid(fnx.tensor([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """
    x = _float("hardsigmoid", input)
    out = fnp.where(x <= -3, 0, fnp.where(x >= 3, 1, x / 6 + 0.5)).astype(x.dtype)
    return _write_inplace(input, out, inplace)


def threshold(input, threshold, value, inplace=False):
    """``x if x > threshold else value``.

    >>> F = fnx.nn.functional
    >>> F.threshold(fnx.tensor([0.5, 2.0]), 1.0, -1.0).tolist()
    [-1.0, 2.0]
    """
    x = _arr(input)
    return _write_inplace(input, fnp.where(x > threshold, x, value).astype(x.dtype), inplace)


def glu(input, dim=-1):
    """Gated linear unit: ``a * sigmoid(b)`` for the two halves ``a, b`` of ``input`` along
    ``dim``.

    >>> F = fnx.nn.functional
    >>> F.glu(fnx.tensor([2.0, 0.0])).tolist()
    [1.0]
    """
    x = _arr(input)
    if x.ndim == 0 or x.shape[dim] % 2:
        raise ShapeError(f"glu: halving only works on an even-sized dimension; dim {dim} of "
                         f"shape {tuple(x.shape)}")
    a, b = fnp.split(x, 2, axis=dim)
    return a * special.expit(b)


def logsigmoid(input):
    """``log(sigmoid(x))`` without underflow.

    >>> F = fnx.nn.functional
    >>> round(F.logsigmoid(fnx.tensor([0.0])).item(), 4)
    -0.6931
    """
    return special.log_expit(_arr(input))


# --- losses ----------------------------------------------------------------------------------


def _reduce_weighted(loss, weights, reduction):
    """Reduce ``loss``; ``mean`` divides by the summed ``weights`` (PyTorch's weighted mean)."""
    if reduction == "mean":
        # every target ignored (a batch of padding): NaN, as PyTorch, but zero gradients as its
        # backward gives (0 / 0 in the derivative made them NaN, and NaN parameters after a step)
        total = fnp.sum(weights)
        none = total == 0
        return fnp.where(none, math.nan, fnp.sum(loss) / fnp.where(none, 1, total))
    return _reduce(loss, reduction)


def _nll(op, logp, target, weight, ignore_index, cdim):
    """Per element ``-w[t] * logp[t]``, and the weights ``w[t]`` (0 where ignored)."""
    n_classes = logp.shape[cdim]
    classes = fnp.reshape(fnp.arange(n_classes, dtype=target.dtype, device=logp.device),
                          _channel_shape(logp, cdim))
    hit = fnp.expand_dims(target, cdim) == classes
    picked = fnp.sum(fnp.where(hit, logp, 0), axis=cdim)
    valid = (target != ignore_index).astype(logp.dtype)
    if weight is None:
        wt = valid
    else:
        w = _arr(weight)
        if w.shape != (n_classes,):
            raise ShapeError(f"{op}: weight must have one entry per class ({n_classes}), got "
                             f"shape {tuple(w.shape)}")
        wt = fnp.sum(fnp.where(hit, fnp.reshape(w, _channel_shape(logp, cdim)), 0),
                     axis=cdim) * valid
    return -picked * wt, wt


def _class_targets(op, x, t, cdim, ignore_index):
    expected = tuple(x.shape[:cdim]) + tuple(x.shape[cdim + 1:])
    if tuple(t.shape) != expected:
        raise ShapeError(f"{op}: expected class-index target of shape {expected} for input of "
                         f"shape {tuple(x.shape)} (class dim {cdim}), got {tuple(t.shape)}")
    if t.dtype.kind not in "iu":
        raise DTypeError(f"{op}: expected integer class indices, got dtype {t.dtype}")
    _check_concrete_indices(op, t, 0, x.shape[cdim], "target", ignore=ignore_index)


def _loss_input(op, input):
    x = _arr(input)
    if x.ndim == 0:
        raise ShapeError(f"{op}: expected input (N, C, *) or (C,), got a 0-d input")
    return x, (0 if x.ndim == 1 else 1)


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log likelihood of log-probabilities ``input (N, C, *)`` at class indices
    ``target (N, *)``; ``mean`` divides by the summed class weights of the non-ignored
    targets.

    >>> F = fnx.nn.functional
    >>> F.nll_loss(fnx.tensor([[-1.0, -2.0], [-3.0, -4.0]]), fnx.tensor([1, 0])).item()
    2.5
    """
    reduction = _reduction("nll_loss", size_average, reduce, reduction)
    x, cdim = _loss_input("nll_loss", input)
    t = _arr(target)
    _class_targets("nll_loss", x, t, cdim, ignore_index)
    return _reduce_weighted(*_nll("nll_loss", x, t, weight, ignore_index, cdim), reduction)


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross entropy of logits ``input (N, C, *)`` (or ``(C,)``) with class indices
    ``target (N, *)`` (integers) or class probabilities of ``input``'s shape (floats).
    Class ``weight``, ``ignore_index`` and ``label_smoothing`` as PyTorch.

    >>> F = fnx.nn.functional
    >>> round(F.cross_entropy(fnx.tensor([[0.0, 0.0]]), fnx.tensor([1])).item(), 4)
    0.6931
    """
    op = "cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, cdim = _loss_input(op, input)
    t = _arr(target)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    n_classes = x.shape[cdim]
    logp = special.log_softmax(x, axis=cdim)
    w = None if weight is None else fnp.reshape(_arr(weight), _channel_shape(x, cdim))
    if t.dtype.kind == "f":
        if tuple(t.shape) != tuple(x.shape):
            raise ShapeError(
                f"{op}: float targets are class probabilities and must have the input's shape "
                f"{tuple(x.shape)}, got {tuple(t.shape)}; for class indices pass an integer "
                f"target of shape {tuple(x.shape[:cdim]) + tuple(x.shape[cdim + 1:])}")
        if label_smoothing > 0:
            t = t * (1 - label_smoothing) + label_smoothing / n_classes
        prod = logp * t if w is None else logp * t * w
        if reduction == "none":
            return -fnp.sum(prod, axis=cdim)
        total = -fnp.sum(prod)
        return total if reduction == "sum" else total / (x.size // n_classes if x.size
                                                         else math.nan)
    _class_targets(op, x, t, cdim, ignore_index)
    loss, wt = _nll(op, logp, t, weight, ignore_index, cdim)
    nll = _reduce_weighted(loss, wt, reduction)
    if label_smoothing == 0:
        return nll
    # PyTorch: (1 - eps) * nll + eps / C * (-sum_c w_c logp_c, zero where ignored), the mean
    # of both divided by the same target weights
    smooth = -fnp.sum(logp if w is None else logp * w, axis=cdim)
    smooth = _reduce_weighted(fnp.where(t != ignore_index, smooth, 0), wt, reduction)
    return (1 - label_smoothing) * nll + smooth * (label_smoothing / n_classes)


def _same_shape(op, x, y):
    if tuple(x.shape) != tuple(y.shape):
        raise ShapeError(f"{op}: using a target size {tuple(y.shape)} that is different to the "
                         f"input size {tuple(x.shape)}; make sure they have the same size")


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """``-w (y log x + (1 - y) log(1 - x))`` for probabilities ``x``; each log is clamped to
    ``>= -100`` as PyTorch.

    >>> F = fnx.nn.functional
    >>> round(F.binary_cross_entropy(fnx.tensor([0.5]), fnx.tensor([1.0])).item(), 4)
    0.6931
    """
    op = "binary_cross_entropy"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, y = _float(op, input), _arr(target)
    _same_shape(op, x, y)
    if _is_concrete(x) and x.size:
        v = np.asarray(x)
        if np.any((v < 0) | (v > 1)):
            raise ValueError(f"{op}: all elements of input should be between 0 and 1 (they "
                             f"are probabilities; for logits use "
                             f"binary_cross_entropy_with_logits)")

    def clamped_log(v):
        # log(0) = -inf is replaced (not clamped through max), so no inf * 0 gradient appears
        safe = fnp.where(v > 0, v, 1)
        return fnp.where(v > 0, fnp.maximum(fnp.log(safe), -100.0), -100.0)

    loss = -(y * clamped_log(x) + (1 - y) * clamped_log(1 - x))
    if weight is not None:
        loss = loss * _arr(weight)
    return _reduce(loss, reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """``binary_cross_entropy(sigmoid(x), y)`` computed stably from logits:
    ``(1 - y) x - (1 + (pos_weight - 1) y) logsigmoid(x)``, times ``weight``.

    >>> F = fnx.nn.functional
    >>> round(F.binary_cross_entropy_with_logits(fnx.tensor([0.0]), fnx.tensor([1.0])).item(), 4)
    0.6931
    """
    op = "binary_cross_entropy_with_logits"
    reduction = _reduction(op, size_average, reduce, reduction)
    x, y = _float(op, input), _arr(target)
    _same_shape(op, x, y)
    log_sig = special.log_expit(x)
    if pos_weight is None:
        loss = (1 - y) * x - log_sig
    else:
        loss = (1 - y) * x - (1 + (_arr(pos_weight) - 1) * y) * log_sig
    if weight is not None:
        loss = loss * _arr(weight)
    return _reduce(loss, reduction)


def _apply_loss_weight(op, loss, weight, reduction, input_shape, mean_by_weight):
    """Reduce ``loss * weight``; PyTorch's weighted ``mean`` divides by the summed weights in
    mse_loss and l1_loss but by the element count in huber_loss (``mean_by_weight``)."""
    if weight is None:
        return _reduce(loss, reduction)
    w = _arr(weight)
    if tuple(w.shape) != tuple(input_shape):
        raise ShapeError(f"{op}: weights and input must have the same size, got weight "
                         f"{tuple(w.shape)} and input {tuple(input_shape)}")
    loss = loss * w
    return _reduce_weighted(loss, w, reduction) if mean_by_weight else _reduce(loss, reduction)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean squared error ``(x - y)^2``; with ``weight`` (of the input's shape) the terms are
    weighted and ``mean`` divides by the summed weights.

    >>> F = fnx.nn.functional
    >>> F.mse_loss(fnx.tensor([1.0, 2.0]), fnx.tensor([0.0, 0.0])).item()
    2.5
    """
    reduction = _reduction("mse_loss", size_average, reduce, reduction)
    shape = _arr(input).shape
    x, y = _pointwise_pair("mse_loss", input, target)
    d = x - y
    return _apply_loss_weight("mse_loss", d * d, weight, reduction, shape, True)


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    """Mean absolute error ``|x - y|``; with ``weight`` (of the input's shape) the terms are
    weighted and ``mean`` divides by the summed weights.

    >>> F = fnx.nn.functional
    >>> F.l1_loss(fnx.tensor([1.0, -2.0]), fnx.tensor([0.0, 0.0])).item()
    1.5
    """
    reduction = _reduction("l1_loss", size_average, reduce, reduction)
    shape = _arr(input).shape
    x, y = _pointwise_pair("l1_loss", input, target)
    return _apply_loss_weight("l1_loss", fnp.abs(x - y), weight, reduction, shape, True)


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``beta = 0`` is L1).

    >>> F = fnx.nn.functional
    >>> F.smooth_l1_loss(fnx.tensor([0.5, 3.0]), fnx.tensor([0.0, 0.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    reduction = _reduction("smooth_l1_loss", size_average, reduce, reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    x, y = _pointwise_pair("smooth_l1_loss", input, target)
    a = fnp.abs(x - y)
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(fnp.where(a < beta, 0.5 * a * a / beta, a - 0.5 * beta), reduction)


def huber_loss(input, target, reduction="mean", delta=1.0, weight=None):
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``; with ``weight``
    (of the input's shape) each term is weighted (``mean`` still divides by the count).

    >>> F = fnx.nn.functional
    >>> F.huber_loss(fnx.tensor([0.5, 3.0]), fnx.tensor([0.0, 0.0]), delta=2.0,
    ...              reduction="none").tolist()
    [0.125, 4.0]
    """
    reduction = _reduction("huber_loss", None, None, reduction)
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    shape = _arr(input).shape
    x, y = _pointwise_pair("huber_loss", input, target)
    a = fnp.abs(x - y)
    loss = fnp.where(a < delta, 0.5 * a * a, delta * (a - 0.5 * delta))
    return _apply_loss_weight("huber_loss", loss, weight, reduction, shape, False)


def kl_div(input, target, size_average=None, reduce=None, reduction="mean", log_target=False):
    """Kullback-Leibler divergence with log-probabilities ``input``: pointwise
    ``y (log y - x)`` (``exp(y) (y - x)`` when ``log_target``); ``reduction='batchmean'``
    divides the sum by the batch size (the mathematically correct KL).

    >>> F = fnx.nn.functional
    >>> F.kl_div(fnx.log(fnx.tensor([0.5, 0.5])), fnx.tensor([0.5, 0.5]),
    ...          reduction="sum").item()
    0.0
    """
    reduction = _reduction("kl_div", size_average, reduce, reduction, extra=("batchmean",))
    x, y = _arr(input), _arr(target)
    if log_target:
        loss = fnp.exp(y) * (y - x)
    else:
        loss = special.xlogy(y, y) - y * x
    if reduction == "batchmean":
        return fnp.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                          reduction="mean"):
    """``1 - cos(x1, x2)`` for ``y = 1`` and ``max(0, cos(x1, x2) - margin)`` for ``y = -1``.

    >>> F = fnx.nn.functional
    >>> F.cosine_embedding_loss(fnx.tensor([[1.0, 0.0]]), fnx.tensor([[0.0, 1.0]]),
    ...                         fnx.tensor([1])).item()
    1.0
    """
    op = "cosine_embedding_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    a, b = _arr(input1), _arr(input2)
    t = _arr(target)
    if a.shape != b.shape or a.ndim not in (1, 2) or t.shape != a.shape[:-1]:
        raise ShapeError(f"{op}: expected inputs (N, D) or (D,) of one shape and target (N,) "
                         f"or (), got {tuple(a.shape)}, {tuple(b.shape)} and {tuple(t.shape)}")
    eps = 1e-12  # PyTorch's EPSILON in both squared magnitudes
    dot = fnp.sum(a * b, axis=-1)
    denom = fnp.sqrt((fnp.sum(a * a, axis=-1) + eps) * (fnp.sum(b * b, axis=-1) + eps))
    cos = dot / denom
    loss = fnp.where(t == 1, 1 - cos, 0) + fnp.where(t == -1, fnp.maximum(cos - margin, 0), 0)
    return _reduce(loss, reduction)


def margin_ranking_loss(input1, input2, target, margin=0, size_average=None, reduce=None,
                        reduction="mean"):
    """``max(0, -y (x1 - x2) + margin)``.

    >>> F = fnx.nn.functional
    >>> F.margin_ranking_loss(fnx.tensor([1.0]), fnx.tensor([2.0]), fnx.tensor([1.0])).item()
    1.0
    """
    op = "margin_ranking_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    a, b, t = _arr(input1), _arr(input2), _arr(target)
    if not (a.shape == b.shape == t.shape):
        raise ShapeError(f"{op}: input1, input2 and target must have one shape, got "
                         f"{tuple(a.shape)}, {tuple(b.shape)} and {tuple(t.shape)}")
    return _reduce(fnp.maximum(-t * (a - b) + margin, 0), reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False,
                        size_average=None, reduce=None, reduction="mean"):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with ``d = pairwise_distance(., ., p, eps)``;
    ``swap`` uses ``min(d(a, n), d(p, n))`` as the negative distance.

    >>> F = fnx.nn.functional
    >>> a = fnx.tensor([[0.0, 0.0]])
    >>> round(F.triplet_margin_loss(a, a, fnx.tensor([[3.0, 4.0]]), margin=6.0).item(), 4)
    1.0
    """
    op = "triplet_margin_loss"
    reduction = _reduction(op, size_average, reduce, reduction)
    a, pos, neg = _arr(anchor), _arr(positive), _arr(negative)
    if not (a.ndim == pos.ndim == neg.ndim and a.ndim in (1, 2)):
        raise ShapeError(f"{op}: expected anchor, positive and negative of one rank, (N, D) or "
                         f"(D,), got {tuple(a.shape)}, {tuple(pos.shape)} and "
                         f"{tuple(neg.shape)}")
    d_pos = pairwise_distance(a, pos, p, eps)
    d_neg = pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = fnp.minimum(d_neg, pairwise_distance(pos, neg, p, eps))
    return _reduce(fnp.maximum(margin + d_pos - d_neg, 0), reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, size_average=None, eps=1e-08,
                     reduce=None, reduction="mean"):
    """Poisson negative log likelihood: ``exp(x) - y x`` (``log_input``) or
    ``x - y log(x + eps)``; ``full`` adds Stirling's ``y log y - y + 0.5 log(2 pi y)`` where
    ``y > 1``.

    >>> F = fnx.nn.functional
    >>> F.poisson_nll_loss(fnx.tensor([0.0]), fnx.tensor([1.0])).item()
    1.0
    """
    reduction = _reduction("poisson_nll_loss", size_average, reduce, reduction)
    x, y = _arr(input), _arr(target)
    if log_input:
        loss = fnp.exp(x) - y * x
    else:
        loss = x - y * fnp.log(x + eps)
    if full:
        safe = fnp.where(y > 1, y, 1)
        stirling = safe * fnp.log(safe) - safe + 0.5 * fnp.log(2 * math.pi * safe)
        loss = loss + fnp.where(y > 1, stirling, 0)
    return _reduce(loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, size_average=None, reduce=None,
                         reduction="mean"):
    """``x`` where ``y = 1`` and ``max(0, margin - x)`` where ``y = -1``.

    >>> F = fnx.nn.functional
    >>> F.hinge_embedding_loss(fnx.tensor([0.3, 0.3]), fnx.tensor([1.0, -1.0]),
    ...                        reduction="none").tolist()
    [0.30000001192092896, 0.699999988079071]
    """
    reduction = _reduction("hinge_embedding_loss", size_average, reduce, reduction)
    x, t = _arr(input), _arr(target)
    loss = fnp.where(t != 1, fnp.maximum(margin - x, 0), 0) + fnp.where(t != -1, x, 0)
    return _reduce(loss, reduction)
