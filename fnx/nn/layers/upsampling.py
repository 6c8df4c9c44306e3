"""Resampling layers: Upsample, UpsamplingNearest2d, UpsamplingBilinear2d, PixelShuffle,
PixelUnshuffle (``torch.nn.Upsample``, ``torch.nn.PixelShuffle``...)."""

from ... import numpy as fnp
from ...core.errors import ShapeError
from .. import functional as F
from ..module import Module

__all__ = ["Upsample", "UpsamplingNearest2d", "UpsamplingBilinear2d", "PixelShuffle",
           "PixelUnshuffle"]


class Upsample(Module):
    """Resize ``(N, C, *spatial)`` to ``size`` or by ``scale_factor`` with ``F.interpolate``'s
    modes (``'nearest'``, ``'linear'``, ``'bilinear'``, ``'bicubic'``, ``'trilinear'``...).

    >>> up = fnx.nn.Upsample(scale_factor=2, mode="nearest")
    >>> up, up(fnx.tensor([[[1.0, 2.0]]])).tolist()
    (Upsample(scale_factor=2.0, mode='nearest'), [[[1.0, 1.0, 2.0, 2.0]]])
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        self.name = type(self).__name__
        self.size = size
        if isinstance(scale_factor, tuple):
            self.scale_factor = tuple(float(f) for f in scale_factor)
        else:
            self.scale_factor = float(scale_factor) if scale_factor else None
        self.mode, self.align_corners = mode, align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             recompute_scale_factor=self.recompute_scale_factor)

    def extra_repr(self):
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return f"{info}, mode={self.mode!r}"


class UpsamplingNearest2d(Upsample):
    """Nearest-neighbour upsampling of ``(N, C, H, W)``.

    >>> fnx.nn.UpsamplingNearest2d(scale_factor=2)(fnx.ones(1, 1, 2, 2)).shape
    (1, 1, 4, 4)
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="nearest")


class UpsamplingBilinear2d(Upsample):
    """Bilinear upsampling of ``(N, C, H, W)`` with ``align_corners=True``.

    >>> fnx.nn.UpsamplingBilinear2d(size=3)(fnx.tensor([[[[0.0, 2.0]]]]))[0, 0, 0].tolist()
    [0.0, 1.0, 2.0]
    """

    def __init__(self, size=None, scale_factor=None):
        super().__init__(size, scale_factor, mode="bilinear", align_corners=True)


def _pixel_shuffle(op, x, r):
    """``(*, C r^2, H, W) -> (*, C, H r, W r)``: one reshape, one transpose, one reshape."""
    if x.ndim < 3 or x.shape[-3] % (r * r):
        raise ShapeError(f"{op}: expected input (*, C * {r}^2, H, W) with the channel dim "
                         f"divisible by upscale_factor^2 = {r * r}, got shape {tuple(x.shape)}")
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    n = len(lead)
    x = fnp.reshape(x, lead + (c // (r * r), r, r, h, w))
    x = fnp.permute_dims(x, tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    return fnp.reshape(x, lead + (c // (r * r), h * r, w * r))


def _pixel_unshuffle(op, x, r):
    """``(*, C, H r, W r) -> (*, C r^2, H, W)``, the inverse of ``_pixel_shuffle``."""
    if x.ndim < 3 or x.shape[-2] % r or x.shape[-1] % r:
        raise ShapeError(f"{op}: expected input (*, C, H * {r}, W * {r}) with both spatial dims "
                         f"divisible by downscale_factor = {r}, got shape {tuple(x.shape)}")
    lead, (c, h, w) = x.shape[:-3], x.shape[-3:]
    n = len(lead)
    x = fnp.reshape(x, lead + (c, h // r, r, w // r, r))
    x = fnp.permute_dims(x, tuple(range(n)) + (n, n + 2, n + 4, n + 1, n + 3))
    return fnp.reshape(x, lead + (c * r * r, h // r, w // r))


class PixelShuffle(Module):
    """Rearrange ``(*, C r^2, H, W)`` into ``(*, C, H r, W r)`` (sub-pixel convolution).

    >>> fnx.nn.PixelShuffle(2)(fnx.arange(4.0).reshape(1, 4, 1, 1))[0, 0].tolist()
    [[0.0, 1.0], [2.0, 3.0]]
    """

    def __init__(self, upscale_factor):
        super().__init__()
        self.upscale_factor = upscale_factor

    def forward(self, input):
        return _pixel_shuffle(f"PixelShuffle({self.upscale_factor})", input,
                              self.upscale_factor)

    def extra_repr(self):
        return f"upscale_factor={self.upscale_factor}"


class PixelUnshuffle(Module):
    """Rearrange ``(*, C, H r, W r)`` into ``(*, C r^2, H, W)`` (inverse of PixelShuffle).

    >>> fnx.nn.PixelUnshuffle(2)(fnx.arange(4.0).reshape(1, 1, 2, 2)).reshape(-1).tolist()
    [0.0, 1.0, 2.0, 3.0]
    """

    def __init__(self, downscale_factor):
        super().__init__()
        self.downscale_factor = downscale_factor

    def forward(self, input):
        return _pixel_unshuffle(f"PixelUnshuffle({self.downscale_factor})", input,
                                self.downscale_factor)

    def extra_repr(self):
        return f"downscale_factor={self.downscale_factor}"
