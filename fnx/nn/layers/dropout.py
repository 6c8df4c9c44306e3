"""Dropout layers: Dropout, Dropout1d, Dropout2d, AlphaDropout (``torch.nn.Dropout*``).

Active only in training mode (``module.train()``, the default); in eval mode they return the
input. Masks are drawn from fnx's global generator (``fnx.manual_seed`` makes a run
reproducible).
"""

from .. import functional as F
from ..module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "AlphaDropout"]


class _DropoutNd(Module):
    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: dropout probability has to be between 0 "
                             f"and 1, but got {p}")
        self.p, self.inplace = p, inplace

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """In training mode zero each element with probability ``p`` and scale the rest by
    ``1 / (1 - p)``; the identity in eval mode.

    >>> drop = fnx.nn.Dropout(p=0.5)
    >>> sorted(set(drop(fnx.ones(1000)).tolist())), drop.eval()(fnx.ones(2)).tolist()
    ([0.0, 2.0], [1.0, 1.0])
    """

    def forward(self, input):
        return F.dropout(input, self.p, self.training, self.inplace)


class Dropout1d(_DropoutNd):
    """In training mode zero whole channels of ``(N, C, L)`` (or ``(C, L)``) with probability
    ``p``, scaling the rest by ``1 / (1 - p)``.

    >>> y = fnx.nn.Dropout1d()(fnx.ones(1, 50, 4))
    >>> bool(((y == 0).all(-1) | (y == 2).all(-1)).all())
    True
    """

    def forward(self, input):
        return F.dropout1d(input, self.p, self.training, self.inplace)


class Dropout2d(_DropoutNd):
    """In training mode zero whole channels of ``(N, C, H, W)`` (or ``(C, H, W)``) with
    probability ``p``, scaling the rest by ``1 / (1 - p)``.

    >>> y = fnx.nn.Dropout2d(p=0.5)(fnx.ones(1, 50, 2, 2))
    >>> bool(((y == 0).all((-2, -1)) | (y == 2).all((-2, -1))).all())
    True
    """

    def forward(self, input):
        return F.dropout2d(input, self.p, self.training, self.inplace)


class AlphaDropout(_DropoutNd):
    """Dropout for SELU networks: in training mode dropped units take SELU's saturation value
    and an affine map keeps zero mean and unit variance.

    >>> x = fnx.randn(20000, generator=fnx.Generator().manual_seed(0))
    >>> y = fnx.nn.AlphaDropout(p=0.2)(x)
    >>> abs(round(y.mean().item(), 1)), round(y.std().item(), 1)
    (0.0, 1.0)
    """

    def forward(self, input):
        return F.alpha_dropout(input, self.p, self.training)
