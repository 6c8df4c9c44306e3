"""``fnx.optim.RMSprop``: PyTorch's RMSprop on ``fnx.optim.rmsprop``."""

import fnx.numpy as fnp

from . import alias
from .optimizer import Optimizer, check_nonnegative
from .transforms import ScaleByRmsState, ScaleByRStdDevState, TraceState

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``, same defaults): ``square_avg = alpha * square_avg +
    (1 - alpha) * g**2``; ``g / (sqrt(square_avg) + eps)`` (``centered``: the variance
    ``square_avg - grad_avg**2`` instead), through a momentum buffer when ``momentum > 0``,
    times ``-lr``. State: ``step``, ``square_avg`` (``momentum_buffer``, ``grad_avg``).

    >>> from fnx import optim
    >>> opt = optim.RMSprop([fnp.ones(2)], lr=0.01, momentum=0.9, centered=True)
    >>> opt.param_groups[0]['alpha']
    0.99
    """

    _hyper_keys = ("lr", "alpha", "eps", "weight_decay", "momentum")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False):
        check_nonnegative(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay,
                          alpha=alpha)
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults)

    @classmethod
    def _static(cls, group):
        return super()._static(group) + (("momentum_on", bool(group["momentum"] > 0)),
                                         ("centered", bool(group["centered"])))

    @classmethod
    def _state_keys(cls, options):
        return (("step", "square_avg") + ("momentum_buffer",) * options["momentum_on"]
                + ("grad_avg",) * options["centered"])

    @classmethod
    def _slots(cls, options):
        if options["centered"]:
            slots = {"square_avg": (ScaleByRStdDevState, "nu"),
                     "grad_avg": (ScaleByRStdDevState, "mu")}
        else:
            slots = {"square_avg": (ScaleByRmsState, "nu")}
        if options["momentum_on"]:
            slots["momentum_buffer"] = (TraceState, "trace")
        return slots

    @classmethod
    def _transform(cls, h):
        return alias.rmsprop(h["lr"], decay=h["alpha"], eps=h["eps"], eps_in_sqrt=False,
                             centered=h["centered"],
                             momentum=h["momentum"] if h["momentum_on"] else None,
                             weight_decay=h["weight_decay"],
                             maximize=h["maximize"])

    def _init_state(self, p, group, state):
        state["step"] = fnp.zeros((), dtype=fnp.float32)
        for key in self._state_keys(dict(self._static(group)))[1:]:
            state[key] = fnp.zeros_like(p)
