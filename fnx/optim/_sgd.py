"""``fnx.optim.SGD``: PyTorch's SGD on ``fnx.optim.sgd``."""

import fnx.numpy as fnp

from . import alias
from .optimizer import Optimizer, check_nonnegative
from .transforms import TraceState

__all__ = ["SGD"]


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, dampening, Nesterov momentum,
    L2 weight decay and ``maximize`` (``torch.optim.SGD``, same defaults). Per parameter:
    ``g = grad + weight_decay * p``; ``buf = momentum * buf + (1 - dampening) * g`` (``buf =
    g`` at the first step); ``g = g + momentum * buf`` (nesterov) or ``buf``;
    ``p -= lr * g``. State: ``momentum_buffer`` when ``momentum != 0``.

    >>> from fnx import optim
    >>> opt = optim.SGD([fnp.ones(2)], lr=0.1, momentum=0.9, nesterov=True)
    >>> opt.param_groups[0]['nesterov'], opt.param_groups[0]['dampening']
    (True, 0)
    """

    _hyper_keys = ("lr", "momentum", "dampening", "weight_decay")

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None):
        check_nonnegative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov, maximize=maximize,
                        foreach=foreach, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)

    @classmethod
    def _static(cls, group):
        return super()._static(group) + (("momentum_on", bool(group["momentum"] != 0)),
                                         ("nesterov", bool(group["nesterov"])))

    @classmethod
    def _state_keys(cls, options):
        return ("momentum_buffer",) if options["momentum_on"] else ()

    @classmethod
    def _slots(cls, options):
        return {"momentum_buffer": (TraceState, "trace")} if options["momentum_on"] else {}

    @classmethod
    def _transform(cls, h):
        return alias.sgd(h["lr"], h["momentum"] if h["momentum_on"] else None, h["nesterov"],
                         dampening=h["dampening"],
                         weight_decay=h["weight_decay"],
                         maximize=h["maximize"])

    def _init_state(self, p, group, state):
        del p, group, state  # the momentum buffer starts at the first gradient

    @classmethod
    def _count(cls, state):
        # no step count in SGD's state: a momentum buffer means it has started
        return fnp.asarray(int("momentum_buffer" in state), dtype=fnp.int32)
