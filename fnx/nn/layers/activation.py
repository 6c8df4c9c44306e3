"""Activation modules (``torch.nn.ReLU`` ...): each holds its options and calls the function of
the same name in ``fnx.nn.functional``. ``inplace=True`` writes into a concrete input, as
PyTorch; under a transform the result is returned (arrays are values there)."""

from .. import functional as F
from .. import init
from ..module import Module
from ._util import new_parameter

__all__ = ["ReLU", "ReLU6", "LeakyReLU", "PReLU", "GELU", "Sigmoid", "Tanh", "Softmax",
           "LogSoftmax", "Softmin", "ELU", "SELU", "CELU", "SiLU", "Mish", "Softplus",
           "Softsign", "Hardtanh", "Hardswish", "Hardsigmoid", "Threshold", "GLU",
           "LogSigmoid"]


def _inplace_suffix(inplace):
    return ", inplace=True" if inplace else ""


class _InplaceActivation(Module):
    """An activation whose only option is ``inplace`` (shown in the repr when set)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = inplace

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ReLU(_InplaceActivation):
    """``max(x, 0)``.

    >>> fnx.nn.ReLU()(fnx.tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    def forward(self, input):
        return F.relu(input, self.inplace)


class SiLU(_InplaceActivation):
    """``x * sigmoid(x)`` (swish).

    >>> round(fnx.nn.SiLU()(fnx.tensor([1.0])).item(), 4)
    0.7311
    """

    def forward(self, input):
        return F.silu(input, self.inplace)


class Mish(_InplaceActivation):
    """``x * tanh(softplus(x))``.

    >>> round(fnx.nn.Mish()(fnx.tensor([1.0])).item(), 4)
    0.8651
    """

    def forward(self, input):
        return F.mish(input, self.inplace)


class SELU(_InplaceActivation):
    """``scale * elu(x, alpha)`` with SELU's fixed constants (self-normalizing).

    >>> round(fnx.nn.SELU()(fnx.tensor([1.0])).item(), 4)
    1.0507
    """

    def forward(self, input):
        return F.selu(input, self.inplace)


class Hardswish(_InplaceActivation):
    """``x * relu6(x + 3) / 6``.

    >>> fnx.nn.Hardswish()(fnx.tensor([-4.0, 0.0, 3.0])).tolist()
    [-0.0, 0.0, 3.0]
    """

    def forward(self, input):
        return F.hardswish(input, self.inplace)

    def extra_repr(self):
        return ""  # PyTorch shows no options for Hardswish


class Hardsigmoid(_InplaceActivation):
    """``relu6(x + 3) / 6``.

    >>> fnx.nn.Hardsigmoid()(fnx.tensor([-4.0, 0.0, 4.0])).tolist()
    [0.0, 0.5, 1.0]
    """

    def forward(self, input):
        return F.hardsigmoid(input, self.inplace)

    def extra_repr(self):
        return ""  # PyTorch shows no options for Hardsigmoid


class Hardtanh(Module):
    """``clamp(x, min_val, max_val)``.

    >>> fnx.nn.Hardtanh(-2.0, 2.0)(fnx.tensor([-3.0, 0.5, 3.0])).tolist()
    [-2.0, 0.5, 2.0]
    """

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        if not max_val > min_val:
            raise ValueError(f"Hardtanh: max_val ({max_val}) must be greater than min_val "
                             f"({min_val})")
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self):
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_suffix(self.inplace)}"


class ReLU6(Hardtanh):
    """``min(max(x, 0), 6)``.

    >>> fnx.nn.ReLU6()(fnx.tensor([-1.0, 3.0, 8.0])).tolist()
    [0.0, 3.0, 6.0]
    """

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """``x if x > 0 else negative_slope * x``.

    >>> act = fnx.nn.LeakyReLU(negative_slope=0.5)
    >>> act, act(fnx.tensor([-2.0, 3.0])).tolist()
    (LeakyReLU(negative_slope=0.5), [-1.0, 3.0])
    """

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}{_inplace_suffix(self.inplace)}"


class PReLU(Module):
    """``x if x > 0 else a * x`` with a learned slope ``weight``: one shared entry, or
    ``num_parameters`` = one per channel (dim 1), each starting at ``init``.

    >>> act = fnx.nn.PReLU(num_parameters=2, init=0.5)
    >>> act, act(fnx.tensor([[-2.0, -4.0]])).tolist()
    (PReLU(num_parameters=2), [[-1.0, -2.0]])
    """

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None):
        super().__init__()
        self.num_parameters, self.init = num_parameters, init
        self.weight = new_parameter((num_parameters,), dtype, device)
        self.reset_parameters()

    def reset_parameters(self):
        """Every slope back to ``init``."""
        init.constant_(self.weight, self.init)

    def forward(self, input):
        return F.prelu(input, self.weight)

    def extra_repr(self):
        return f"num_parameters={self.num_parameters}"


class GELU(Module):
    """``x * Phi(x)``, or its tanh approximation with ``approximate='tanh'``.

    >>> act = fnx.nn.GELU()
    >>> act, round(act(fnx.tensor(1.0)).item(), 4)
    (GELU(approximate='none'), 0.8413)
    """

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``.

    >>> fnx.nn.Sigmoid()(fnx.tensor([0.0])).tolist()
    [0.5]
    """

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """Hyperbolic tangent.

    >>> fnx.nn.Tanh()(fnx.tensor([0.0])).tolist()
    [0.0]
    """

    def forward(self, input):
        return F.tanh(input)


class Softsign(Module):
    """``x / (1 + |x|)``.

    >>> fnx.nn.Softsign()(fnx.tensor([1.0, -3.0])).tolist()
    [0.5, -0.75]
    """

    def forward(self, input):
        return F.softsign(input)


class LogSigmoid(Module):
    """``log(sigmoid(x))`` without underflow.

    >>> round(fnx.nn.LogSigmoid()(fnx.tensor([0.0])).item(), 4)
    -0.6931
    """

    def forward(self, input):
        return F.logsigmoid(input)


class _SoftmaxBase(Module):
    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim

    def extra_repr(self):
        return f"dim={self.dim}"


class Softmax(_SoftmaxBase):
    """``exp(x) / sum(exp(x))`` along ``dim``.

    >>> sm = fnx.nn.Softmax(dim=-1)
    >>> sm, sm(fnx.zeros(1, 2)).tolist()
    (Softmax(dim=-1), [[0.5, 0.5]])
    """

    def forward(self, input):
        return F.softmax(input, self.dim)


class LogSoftmax(_SoftmaxBase):
    """``x - logsumexp(x)`` along ``dim``.

    >>> [round(v, 4) for v in fnx.nn.LogSoftmax(dim=0)(fnx.zeros(2)).tolist()]
    [-0.6931, -0.6931]
    """

    def forward(self, input):
        return F.log_softmax(input, self.dim)


class Softmin(_SoftmaxBase):
    """``softmax(-x)`` along ``dim``.

    >>> fnx.nn.Softmin(dim=0)(fnx.tensor([0.0, 0.0])).tolist()
    [0.5, 0.5]
    """

    def forward(self, input):
        return F.softmin(input, self.dim)


class _AlphaActivation(Module):
    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def extra_repr(self):
        return f"alpha={self.alpha}{_inplace_suffix(self.inplace)}"


class ELU(_AlphaActivation):
    """``x if x > 0 else alpha * (exp(x) - 1)``.

    >>> act = fnx.nn.ELU(alpha=1.0)
    >>> act, [round(v, 4) for v in act(fnx.tensor([-1.0, 2.0])).tolist()]
    (ELU(alpha=1.0), [-0.6321, 2.0])
    """

    def forward(self, input):
        return F.elu(input, self.alpha, self.inplace)


class CELU(_AlphaActivation):
    """``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``.

    >>> [round(v, 4) for v in fnx.nn.CELU(alpha=2.0)(fnx.tensor([-1.0, 2.0])).tolist()]
    [-0.7869, 2.0]
    """

    def forward(self, input):
        return F.celu(input, self.alpha, self.inplace)


class Softplus(Module):
    """``log(1 + exp(beta x)) / beta``, and ``x`` where ``beta x > threshold``.

    >>> act = fnx.nn.Softplus()
    >>> act, round(act(fnx.tensor([0.0])).item(), 4)
    (Softplus(beta=1.0, threshold=20.0), 0.6931)
    """

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"


class Threshold(Module):
    """``x if x > threshold else value``.

    >>> act = fnx.nn.Threshold(1.0, -1.0)
    >>> act, act(fnx.tensor([0.5, 2.0])).tolist()
    (Threshold(threshold=1.0, value=-1.0), [-1.0, 2.0])
    """

    def __init__(self, threshold, value, inplace=False):
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input):
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self):
        return f"threshold={self.threshold}, value={self.value}{_inplace_suffix(self.inplace)}"


class GLU(Module):
    """Gated linear unit ``a * sigmoid(b)`` of the two halves of ``input`` along ``dim``.

    >>> fnx.nn.GLU()(fnx.tensor([2.0, 0.0])).tolist()
    [1.0]
    """

    def __init__(self, dim=-1):
        super().__init__()
        self.dim = dim

    def forward(self, input):
        return F.glu(input, self.dim)

    def extra_repr(self):
        return f"dim={self.dim}"
