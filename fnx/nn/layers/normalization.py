"""Normalization layers: BatchNorm1d/2d/3d, InstanceNorm1d/2d/3d, LayerNorm, GroupNorm,
RMSNorm (``torch.nn.*Norm*``).

BatchNorm and InstanceNorm keep running statistics as buffers (``running_mean``,
``running_var``, ``num_batches_tracked``). Their forward computes the new statistics with
``F.batch_norm_with_stats`` / ``F.instance_norm_with_stats`` and stores them: in place when
eager (as PyTorch), rebound on the module under a transform (see ``_util.write_buffers``).
"""

import numbers
import warnings

import fnx
from ...core.errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ._util import is_concrete, optional_parameter, write_buffers

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d", "InstanceNorm2d",
           "InstanceNorm3d", "LayerNorm", "GroupNorm", "RMSNorm"]


def _reset_affine(module):
    """``weight = 1`` and ``bias = 0``, for those the module has."""
    if module.weight is not None:
        init.ones_(module.weight)
    if module.bias is not None:
        init.zeros_(module.bias)


class _NormBase(Module):
    """Parameters and running-statistic buffers shared by BatchNorm and InstanceNorm."""

    _ranks = ()  # accepted input ranks
    _layout = ""

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, device=None, dtype=None, *, bias=True):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        optional_parameter(self, "weight", affine, (num_features,), dtype, device)
        optional_parameter(self, "bias", affine and bias, (num_features,), dtype, device)
        if track_running_stats:
            self.register_buffer("running_mean", fnx.zeros(num_features, dtype=dtype,
                                                           device=device))
            self.register_buffer("running_var", fnx.ones(num_features, dtype=dtype,
                                                         device=device))
            self.register_buffer("num_batches_tracked", fnx.tensor(0, dtype=fnx.int64,
                                                                   device=device))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches tracked (in place)."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1)
            self.num_batches_tracked.zero_()

    def reset_parameters(self):
        """Reset the running statistics, and ``weight = 1``, ``bias = 0``."""
        self.reset_running_stats()
        _reset_affine(self)

    def _check_input_dim(self, input, channel_dim):
        label = f"{type(self).__name__}({self.num_features})"
        if input.ndim not in self._ranks:
            want = " or ".join(f"{r}-D" for r in self._ranks)
            raise ShapeError(f"{label} expected {want} input {self._layout}, got "
                             f"{input.ndim}-D input of shape {tuple(input.shape)}")
        if input.shape[channel_dim] != self.num_features:
            raise ShapeError(f"{label} expected input with {self.num_features} channels in "
                             f"dim {channel_dim}, got shape {tuple(input.shape)}")

    def _store_stats(self, mean, var, count=None):
        new = {"running_mean": mean, "running_var": var, "num_batches_tracked": count}
        write_buffers(self, {k: v for k, v in new.items() if v is not None})

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class _BatchNorm(_NormBase):
    def forward(self, input):
        self._check_input_dim(input, 1)
        factor = 0.0 if self.momentum is None else self.momentum
        update = self.training and self.track_running_stats
        count = None
        if update and self.num_batches_tracked is not None:
            count = self.num_batches_tracked + 1
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / (float(count) if is_concrete(count) else
                                count.astype(self.running_mean.dtype))
        # eval mode without running statistics normalizes with the batch's own
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        pass_stats = not self.training or self.track_running_stats
        out, mean, var = F.batch_norm_with_stats(
            input, self.running_mean if pass_stats else None,
            self.running_var if pass_stats else None, self.weight, self.bias, use_batch,
            factor, self.eps)
        if update:
            self._store_stats(mean, var, count)
        return out


class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``(N, C)`` or ``(N, C, L)`` per channel: batch statistics in
    training mode (the running statistics move by ``momentum`` towards them; ``momentum=None``
    is a cumulative average), running statistics in eval mode.

    >>> bn = fnx.nn.BatchNorm1d(2)
    >>> _ = bn(fnx.tensor([[0.0, 2.0], [2.0, 4.0]]))
    >>> bn.running_mean.tolist(), bn.num_batches_tracked.item()
    ([0.10000000149011612, 0.30000001192092896], 1)
    """

    _ranks = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of ``(N, C, H, W)`` per channel (see ``BatchNorm1d``).

    >>> bn = fnx.nn.BatchNorm2d(num_features=64)
    >>> bn
    BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, track_running_stats=True)
    >>> list(bn.state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    """

    _ranks = (4,)
    _layout = "(N, C, H, W)"


class BatchNorm3d(_BatchNorm):
    """Batch normalization of ``(N, C, D, H, W)`` per channel (see ``BatchNorm1d``).

    >>> fnx.nn.BatchNorm3d(3)(fnx.randn(2, 3, 2, 2, 2)).shape
    (2, 3, 2, 2, 2)
    """

    _ranks = (5,)
    _layout = "(N, C, D, H, W)"


class _InstanceNorm(_NormBase):
    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, device=None, dtype=None, *, bias=True):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, device,
                         dtype, bias=bias)

    def forward(self, input):
        unbatched = input.ndim == self._ranks[0]
        channel_dim = 0 if unbatched else 1
        if input.ndim in self._ranks and input.shape[channel_dim] != self.num_features \
                and not (self.affine or self.track_running_stats):
            # num_features is unused then; PyTorch warns rather than fails
            warnings.warn(f"{type(self).__name__}: input's size at dim={channel_dim} does not "
                          f"match num_features ({self.num_features}); num_features is not "
                          f"used because affine=False", UserWarning, stacklevel=2)
        else:
            self._check_input_dim(input, channel_dim)
        x = fnx.numpy.expand_dims(input, 0) if unbatched else input
        use_input_stats = self.training or not self.track_running_stats
        out, mean, var = F.instance_norm_with_stats(
            x, self.running_mean, self.running_var, self.weight, self.bias, use_input_stats,
            0.0 if self.momentum is None else self.momentum, self.eps)
        if use_input_stats and self.running_mean is not None:
            self._store_stats(mean, var)
        return out[0] if unbatched else out


class InstanceNorm1d(_InstanceNorm):
    """Normalize each ``(n, c)`` row of ``(N, C, L)`` (or unbatched ``(C, L)``) over ``L``;
    no affine parameters and no running statistics unless asked for, as PyTorch.

    >>> y = fnx.nn.InstanceNorm1d(2)(fnx.tensor([[[1.0, 3.0], [0.0, 4.0]]]))
    >>> [[round(v, 4) for v in row] for row in y[0].tolist()]
    [[-1.0, 1.0], [-1.0, 1.0]]
    """

    _ranks = (2, 3)
    _layout = "(N, C, L) or unbatched (C, L)"


class InstanceNorm2d(_InstanceNorm):
    """Normalize each ``(n, c)`` plane of ``(N, C, H, W)`` (or unbatched ``(C, H, W)``).

    >>> fnx.nn.InstanceNorm2d(num_features=64)
    InstanceNorm2d(64, eps=1e-05, momentum=0.1, affine=False, bias=False, track_running_stats=False)
    """

    _ranks = (3, 4)
    _layout = "(N, C, H, W) or unbatched (C, H, W)"


class InstanceNorm3d(_InstanceNorm):
    """Normalize each ``(n, c)`` volume of ``(N, C, D, H, W)`` (or unbatched ``(C, D, H, W)``).

    >>> fnx.nn.InstanceNorm3d(3, affine=True)(fnx.randn(2, 3, 2, 2, 2)).shape
    (2, 3, 2, 2, 2)
    """

    _ranks = (4, 5)
    _layout = "(N, C, D, H, W) or unbatched (C, D, H, W)"


def _shape_tuple(normalized_shape):
    if isinstance(normalized_shape, numbers.Integral):
        return (int(normalized_shape),)
    return tuple(int(n) for n in normalized_shape)


def _check_trailing(label, input, shape):
    k = len(shape)
    if input.ndim < k or tuple(input.shape[input.ndim - k:]) != shape:
        raise ShapeError(f"{label} expected input with shape [*, "
                         f"{', '.join(map(str, shape))}], got shape {tuple(input.shape)}")


class LayerNorm(Module):
    """Normalize over the last ``len(normalized_shape)`` dims (biased variance), then scale by
    ``weight`` (ones) and shift by ``bias`` (zeros) when ``elementwise_affine``.

    >>> ln = fnx.nn.LayerNorm(normalized_shape=[128])
    >>> ln, ln(fnx.randn(4, 128)).shape
    (LayerNorm((128,), eps=1e-05, elementwise_affine=True, bias=True), (4, 128))
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 device=None, dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        optional_parameter(self, "weight", elementwise_affine, self.normalized_shape, dtype,
                           device)
        optional_parameter(self, "bias", elementwise_affine and bias, self.normalized_shape,
                           dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        """``weight = 1``, ``bias = 0``."""
        _reset_affine(self)

    def forward(self, input):
        _check_trailing(f"LayerNorm({self.normalized_shape})", input, self.normalized_shape)
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalize ``(N, C, *)`` over each group of ``C // num_groups`` channels and the
    remaining dims, then apply per-channel ``weight`` / ``bias`` when ``affine``.

    >>> gn = fnx.nn.GroupNorm(num_groups=8, num_channels=64)
    >>> gn, gn(fnx.randn(2, 64, 4, 4)).shape
    (GroupNorm(8, 64, eps=1e-05, affine=True, bias=True), (2, 64, 4, 4))
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, device=None,
                 dtype=None, *, bias=True):
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        optional_parameter(self, "weight", affine, (num_channels,), dtype, device)
        optional_parameter(self, "bias", affine and bias, (num_channels,), dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        """``weight = 1``, ``bias = 0``."""
        _reset_affine(self)

    def forward(self, input):
        if input.ndim < 2 or input.shape[1] != self.num_channels:
            raise ShapeError(f"GroupNorm({self.num_groups}, {self.num_channels}) expected "
                             f"input (N, {self.num_channels}, *), got shape "
                             f"{tuple(input.shape)}")
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class RMSNorm(Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last ``len(normalized_shape)`` dims;
    ``eps=None`` is the input dtype's machine epsilon, as PyTorch.

    >>> rms = fnx.nn.RMSNorm(2)
    >>> rms, [round(v, 4) for v in rms(fnx.tensor([1.0, 7.0])).tolist()]
    (RMSNorm((2,), eps=None, elementwise_affine=True), [0.2, 1.4])
    """

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        optional_parameter(self, "weight", elementwise_affine, self.normalized_shape, dtype,
                           device)
        self.reset_parameters()

    def reset_parameters(self):
        """``weight = 1``."""
        if self.elementwise_affine:
            init.ones_(self.weight)

    def forward(self, input):
        _check_trailing(f"RMSNorm({self.normalized_shape})", input, self.normalized_shape)
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")
