"""Linear and Bilinear (``torch.nn.Linear``, ``torch.nn.Bilinear``)."""

import math

from ...core.errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ._util import new_parameter, optional_parameter

__all__ = ["Linear", "Bilinear"]


class Linear(Module):
    """``y = x W^T + b`` over the last dimension: ``(*, in_features) -> (*, out_features)``.

    ``weight`` is ``(out_features, in_features)``, initialised ``kaiming_uniform_(a=sqrt(5))``
    (``U(-1/sqrt(in_features), 1/sqrt(in_features))``) like ``bias``, as PyTorch.

    >>> lin = fnx.nn.Linear(3, 2)
    >>> lin(fnx.ones(5, 3)).shape, list(lin.state_dict())
    ((5, 2), ['weight', 'bias'])
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = new_parameter((out_features, in_features), dtype, device)
        optional_parameter(self, "bias", bias, (out_features,), dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        """PyTorch's initialisation: kaiming-uniform weight, ``U(-1/sqrt(fan_in), ..)`` bias."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input):
        if input.ndim == 0 or input.shape[-1] != self.in_features:
            raise ShapeError(f"Linear({self.in_features}, {self.out_features}) expected input "
                             f"with last dimension {self.in_features}, got shape "
                             f"{tuple(input.shape)}")
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Bilinear(Module):
    """``y_k = x1^T W_k x2 + b_k``: ``(*, in1_features), (*, in2_features) -> (*, out)``;
    ``weight (out, in1, in2)`` and ``bias`` drawn from ``U(-1/sqrt(in1), 1/sqrt(in1))``.

    >>> bil = fnx.nn.Bilinear(2, 3, 4)
    >>> bil(fnx.ones(5, 2), fnx.ones(5, 3)).shape
    (5, 4)
    """

    def __init__(self, in1_features, in2_features, out_features, bias=True, device=None,
                 dtype=None):
        super().__init__()
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        self.weight = new_parameter((out_features, in1_features, in2_features), dtype, device)
        optional_parameter(self, "bias", bias, (out_features,), dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        """``U(-1/sqrt(in1_features), 1/sqrt(in1_features))`` for weight and bias."""
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1, input2):
        if (input1.ndim == 0 or input2.ndim == 0 or input1.shape[-1] != self.in1_features
                or input2.shape[-1] != self.in2_features):
            raise ShapeError(f"Bilinear({self.in1_features}, {self.in2_features}, "
                             f"{self.out_features}) expected inputs with last dimensions "
                             f"{self.in1_features} and {self.in2_features}, got shapes "
                             f"{tuple(input1.shape)} and {tuple(input2.shape)}")
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self):
        return (f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
                f"out_features={self.out_features}, bias={self.bias is not None}")
