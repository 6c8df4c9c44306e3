"""Convolutions: Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d (``torch.nn.Conv*``)."""

import math

from ...core.errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ._util import new_parameter, ntuple, optional_parameter

__all__ = ["Conv1d", "Conv2d", "ConvTranspose1d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_LAYOUT = {1: "(N, C, L) or unbatched (C, L)", 2: "(N, C, H, W) or unbatched (C, H, W)"}


class _ConvNd(Module):
    """What every convolution shares: argument checks, parameters, PyTorch's initialisation,
    its ``extra_repr`` and the input check that names the layer."""

    _nsp = 0  # spatial dims, set by each subclass
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 output_padding, groups, bias, padding_mode, device, dtype):
        super().__init__()
        name, n = type(self).__name__, self._nsp
        if not isinstance(groups, int) or groups <= 0:
            raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{name}: in_channels ({in_channels}) must be divisible by "
                             f"groups ({groups})")
        if out_channels % groups:
            raise ValueError(f"{name}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        stride = ntuple(stride, n)
        if isinstance(padding, str):
            if self._transposed or padding not in ("same", "valid"):
                allowed = "an int or a tuple" if self._transposed else \
                    "'same', 'valid', an int or a tuple"
                raise ValueError(f"{name}: padding must be {allowed}, got {padding!r}")
            if padding == "same" and any(s != 1 for s in stride):
                raise ValueError(f"{name}: padding='same' is not supported for strided "
                                 f"convolutions (stride={stride})")
        else:
            padding = ntuple(padding, n)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{name}: padding_mode must be one of {_PADDING_MODES}, but got "
                             f"padding_mode={padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f'Only "zeros" padding mode is supported for {name}')
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = ntuple(kernel_size, n)
        self.stride, self.padding = stride, padding
        self.dilation = ntuple(dilation, n)
        self.transposed = self._transposed
        self.output_padding = ntuple(output_padding, n)
        self.groups, self.padding_mode = groups, padding_mode
        # F.pad's widths (last dim first) for the non-zero padding modes, as PyTorch's
        # _reversed_padding_repeated_twice; 'same' puts the odd element on the right
        if padding == "valid":
            widths = [(0, 0)] * n
        elif padding == "same":
            widths = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2)
                      for d, k in zip(self.dilation, self.kernel_size, strict=True)]
        else:
            widths = [(p, p) for p in padding]
        self._reversed_padding_repeated_twice = tuple(w for pair in widths[::-1] for w in pair)
        shape = ((in_channels, out_channels // groups) if self._transposed else
                 (out_channels, in_channels // groups)) + self.kernel_size
        self.weight = new_parameter(shape, dtype, device)
        optional_parameter(self, "bias", bias, (out_channels,), dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's initialisation: ``kaiming_uniform_(a=sqrt(5))`` weight, bias from
        ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        n = self._nsp
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s

    def _check_input(self, input):
        n = self._nsp
        label = (f"{type(self).__name__}({self.in_channels}, {self.out_channels}, "
                 f"kernel_size={self.kernel_size})")
        if input.ndim not in (n + 1, n + 2):
            raise ShapeError(f"{label} expected {n + 1}-D (unbatched) or {n + 2}-D (batched) "
                             f"input {_LAYOUT[n]}, got {input.ndim}-D input of shape "
                             f"{tuple(input.shape)}")
        channels = input.shape[-n - 1]
        if channels != self.in_channels:
            raise ShapeError(f"{label} expected input with {self.in_channels} channels, got "
                             f"{channels} channels in input of shape {tuple(input.shape)}")


class _Conv(_ConvNd):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", device=None,
                 dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, 0,
                         groups, bias, padding_mode, device, dtype)

    def _conv_forward(self, conv, input, weight, bias):
        self._check_input(input)
        if self.padding_mode != "zeros":
            input = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(input, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)


class Conv1d(_Conv):
    """1-D convolution over ``(N, C_in, L)`` (or unbatched ``(C_in, L)``): ``weight
    (out_channels, in_channels / groups, kernel_size)``; ``padding`` an int, ``'same'`` or
    ``'valid'``; ``padding_mode`` ``'zeros'``, ``'reflect'``, ``'replicate'`` or
    ``'circular'``.

    >>> conv = fnx.nn.Conv1d(4, 8, kernel_size=3, padding="same", padding_mode="circular")
    >>> conv(fnx.ones(2, 4, 10)).shape
    (2, 8, 10)
    """

    _nsp = 1

    def forward(self, input):
        return self._conv_forward(F.conv1d, input, self.weight, self.bias)


class Conv2d(_Conv):
    """2-D convolution over ``(N, C_in, H, W)`` (or unbatched ``(C_in, H, W)``): ``weight
    (out_channels, in_channels / groups, kH, kW)``; ``stride``, ``padding`` (an int, a pair,
    ``'same'``, ``'valid'``), ``dilation``, ``groups``, ``bias`` and ``padding_mode`` as
    PyTorch.

    >>> conv = fnx.nn.Conv2d(3, 64, kernel_size=3, padding=1)
    >>> conv
    Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))
    >>> conv(fnx.ones(1, 3, 8, 8)).shape
    (1, 64, 8, 8)
    """

    _nsp = 2

    def forward(self, input):
        return self._conv_forward(F.conv2d, input, self.weight, self.bias)


class _ConvTranspose(_ConvNd):
    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         output_padding, groups, bias, padding_mode, device, dtype)

    def _output_padding(self, input, output_size):
        """The ``output_padding`` that gives ``output_size`` (PyTorch's rule: any size from
        the minimal one up to ``stride - 1`` more)."""
        if output_size is None:
            return self.output_padding
        n = self._nsp
        non_spatial = 2 if input.ndim == n + 2 else 1
        output_size = tuple(output_size)
        if len(output_size) == non_spatial + n:
            output_size = output_size[non_spatial:]
        if len(output_size) != n:
            raise ValueError(f"{type(self).__name__}: for {input.ndim}-D input, output_size "
                             f"must have {n} or {non_spatial + n} elements (got "
                             f"{len(output_size)})")
        spatial = input.shape[non_spatial:]
        min_sizes = [(size - 1) * s - 2 * p + d * (k - 1) + 1 for size, s, p, d, k in zip(
            spatial, self.stride, self.padding, self.dilation, self.kernel_size, strict=True)]
        max_sizes = [lo + s - 1 for lo, s in zip(min_sizes, self.stride, strict=True)]
        if any(not lo <= size <= hi
               for size, lo, hi in zip(output_size, min_sizes, max_sizes, strict=True)):
            raise ValueError(f"{type(self).__name__}: requested an output size of "
                             f"{list(output_size)}, but valid sizes range from {min_sizes} to "
                             f"{max_sizes} (for an input of {list(spatial)})")
        return tuple(size - lo for size, lo in zip(output_size, min_sizes, strict=True))

    def _conv_forward(self, conv, input, output_size):
        self._check_input(input)
        output_padding = self._output_padding(input, output_size)
        return conv(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                    self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """1-D transposed convolution (the gradient of Conv1d with respect to its input):
    ``weight (in_channels, out_channels / groups, kernel_size)``; ``forward(input,
    output_size=None)`` picks the ``output_padding`` that gives ``output_size``.

    >>> up = fnx.nn.ConvTranspose1d(4, 2, kernel_size=3, stride=2)
    >>> up(fnx.ones(1, 4, 5)).shape, up(fnx.ones(1, 4, 5), output_size=[12]).shape
    ((1, 2, 11), (1, 2, 12))
    """

    _nsp = 1

    def forward(self, input, output_size=None):
        return self._conv_forward(F.conv_transpose1d, input, output_size)


class ConvTranspose2d(_ConvTranspose):
    """2-D transposed convolution (upsampling): ``weight (in_channels, out_channels / groups,
    kH, kW)``; output size ``(H - 1) * stride - 2 * padding + dilation * (k - 1) +
    output_padding + 1``.

    >>> deconv = fnx.nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1)
    >>> deconv(fnx.ones(1, 64, 7, 7)).shape
    (1, 32, 14, 14)
    """

    _nsp = 2

    def forward(self, input, output_size=None):
        return self._conv_forward(F.conv_transpose2d, input, output_size)
