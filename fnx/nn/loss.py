"""Loss modules (``torch.nn.CrossEntropyLoss`` ...): each stores its options (class weights as
buffers, as PyTorch, so they follow ``.to()`` and appear in ``state_dict``) and calls the
function of the same name in ``fnx.nn.functional``. ``reduction`` is ``'mean'``, ``'sum'`` or
``'none'``; PyTorch's deprecated ``size_average``/``reduce`` are mapped onto it with a warning.
"""

from . import functional as F
from .module import Module

__all__ = ["L1Loss", "MSELoss", "CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss",
           "SmoothL1Loss", "HuberLoss", "KLDivLoss", "CosineEmbeddingLoss",
           "MarginRankingLoss", "TripletMarginLoss", "PoissonNLLLoss", "HingeEmbeddingLoss"]


class _Loss(Module):
    _extra_reductions = ()

    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        self.reduction = F._reduction(type(self).__name__, size_average, reduce, reduction,
                                      self._extra_reductions)


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)


class L1Loss(_Loss):
    """Mean absolute error ``|x - y|``.

    >>> fnx.nn.L1Loss()(fnx.tensor([1.0, -2.0]), fnx.tensor([0.0, 0.0])).item()
    1.5
    """

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error ``(x - y)^2``.

    >>> fnx.nn.MSELoss()(fnx.tensor([1.0, 2.0]), fnx.tensor([0.0, 0.0])).item()
    2.5
    """

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy of logits ``(N, C, *)`` (or ``(C,)``) with integer class indices
    ``(N, *)`` or class probabilities of the input's shape; class ``weight`` (a buffer),
    ``ignore_index`` and ``label_smoothing`` as PyTorch.

    >>> loss = fnx.nn.CrossEntropyLoss(weight=fnx.tensor([1.0, 2.0, 3.0]))
    >>> loss, list(loss.state_dict())
    (CrossEntropyLoss(), ['weight'])
    >>> round(loss(fnx.zeros(2, 3), fnx.tensor([0, 2])).item(), 4)
    1.0986
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    """Negative log likelihood of log-probabilities ``(N, C, *)`` at class indices
    ``(N, *)``.

    >>> fnx.nn.NLLLoss()(fnx.tensor([[-1.0, -2.0], [-3.0, -4.0]]), fnx.tensor([1, 0])).item()
    2.5
    """

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCELoss(_WeightedLoss):
    """Binary cross entropy of probabilities: ``-w (y log x + (1 - y) log(1 - x))``.

    >>> round(fnx.nn.BCELoss()(fnx.tensor([0.5]), fnx.tensor([1.0])).item(), 4)
    0.6931
    """

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Sigmoid + binary cross entropy in one stable expression; ``pos_weight`` (a buffer)
    weighs the positive class.

    >>> loss = fnx.nn.BCEWithLogitsLoss(pos_weight=fnx.tensor([2.0]))
    >>> list(loss.state_dict()), round(loss(fnx.tensor([0.0]), fnx.tensor([1.0])).item(), 4)
    (['pos_weight'], 1.3863)
    """

    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  pos_weight=self.pos_weight,
                                                  reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``.

    >>> fnx.nn.SmoothL1Loss(beta=1.0)(fnx.tensor([0.5, 3.0]), fnx.zeros(2)).item()
    1.3125
    """

    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``.

    >>> fnx.nn.HuberLoss(delta=2.0)(fnx.tensor([0.5, 3.0]), fnx.zeros(2)).item()
    2.0625
    """

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class KLDivLoss(_Loss):
    """Kullback-Leibler divergence of log-probabilities ``input`` from ``target``
    (``log_target``: the target is given as log-probabilities too); ``reduction='batchmean'``
    gives the true KL divergence per sample.

    >>> loss = fnx.nn.KLDivLoss(reduction="batchmean")
    >>> loss(fnx.log(fnx.tensor([[0.5, 0.5]])), fnx.tensor([[0.5, 0.5]])).item()
    0.0
    """

    _extra_reductions = ("batchmean",)

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class _MarginLoss(_Loss):
    def __init__(self, margin=0.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin


class CosineEmbeddingLoss(_MarginLoss):
    """``1 - cos(x1, x2)`` for ``y = 1``, ``max(0, cos(x1, x2) - margin)`` for ``y = -1``.

    >>> fnx.nn.CosineEmbeddingLoss()(fnx.tensor([[1.0, 0.0]]), fnx.tensor([[0.0, 1.0]]),
    ...                              fnx.tensor([1])).item()
    1.0
    """

    def forward(self, input1, input2, target):
        return F.cosine_embedding_loss(input1, input2, target, margin=self.margin,
                                       reduction=self.reduction)


class MarginRankingLoss(_MarginLoss):
    """``max(0, -y (x1 - x2) + margin)``.

    >>> fnx.nn.MarginRankingLoss()(fnx.tensor([1.0]), fnx.tensor([2.0]),
    ...                            fnx.tensor([1.0])).item()
    1.0
    """

    def forward(self, input1, input2, target):
        return F.margin_ranking_loss(input1, input2, target, margin=self.margin,
                                     reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """``max(d(a, p) - d(a, n) + margin, 0)`` with the ``p``-norm distance; ``swap`` uses the
    smaller of ``d(a, n)`` and ``d(p, n)``.

    >>> a = fnx.tensor([[0.0, 0.0]])
    >>> round(fnx.nn.TripletMarginLoss(margin=6.0)(a, a, fnx.tensor([[3.0, 4.0]])).item(), 4)
    1.0
    """

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, size_average=None, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        if margin <= 0:
            raise ValueError(f"TripletMarginLoss: margin must be greater than 0, got {margin}")
        self.margin, self.p, self.eps, self.swap = margin, p, eps, swap

    def forward(self, anchor, positive, negative):
        return F.triplet_margin_loss(anchor, positive, negative, margin=self.margin, p=self.p,
                                     eps=self.eps, swap=self.swap, reduction=self.reduction)


class PoissonNLLLoss(_Loss):
    """Poisson negative log likelihood: ``exp(x) - y x`` for log-rates (``log_input``), else
    ``x - y log(x + eps)``; ``full`` adds Stirling's approximation term.

    >>> fnx.nn.PoissonNLLLoss()(fnx.tensor([0.0]), fnx.tensor([1.0])).item()
    1.0
    """

    def __init__(self, log_input=True, full=False, size_average=None, eps=1e-8, reduce=None,
                 reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.log_input, self.full, self.eps = log_input, full, eps

    def forward(self, log_input, target):
        return F.poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                  eps=self.eps, reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """``x`` where ``y = 1`` and ``max(0, margin - x)`` where ``y = -1``.

    >>> fnx.nn.HingeEmbeddingLoss()(fnx.tensor([0.3, 0.3]), fnx.tensor([1.0, -1.0])).item()
    0.5
    """

    def __init__(self, margin=1.0, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.margin = margin

    def forward(self, input, target):
        return F.hinge_embedding_loss(input, target, margin=self.margin,
                                      reduction=self.reduction)
