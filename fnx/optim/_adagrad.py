"""``fnx.optim.Adagrad`` and ``Adadelta``: PyTorch's on ``fnx.optim.adagrad``/``adadelta``."""

import fnx.numpy as fnp

from . import alias
from .optimizer import Optimizer, check_nonnegative
from .transforms import ScaleByAdaDeltaState, ScaleByRssState

__all__ = ["Adagrad", "Adadelta"]


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad``, same defaults): ``sum += g**2``;
    ``p -= lr / (1 + (step - 1) * lr_decay) * g / (sqrt(sum) + eps)``. State: ``step``,
    ``sum`` (set up for every parameter at construction, as PyTorch does).

    >>> from fnx import optim
    >>> p = fnp.ones(2)
    >>> opt = optim.Adagrad([p], lr=0.1, initial_accumulator_value=0.5)
    >>> opt.state[p]['sum'].tolist()
    [0.5, 0.5]
    """

    _hyper_keys = ("lr", "lr_decay", "eps", "weight_decay")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                 eps=1e-10, foreach=None, *, maximize=False, differentiable=False, fused=None):
        check_nonnegative(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay, eps=eps,
                          initial_accumulator_value=initial_accumulator_value)
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                self._init_state(p, group, self.state[p])

    @classmethod
    def _state_keys(cls, options):
        return ("step", "sum")

    @classmethod
    def _slots(cls, options):
        return {"sum": (ScaleByRssState, "sum_of_squares")}

    @classmethod
    def _transform(cls, h):
        return alias.adagrad(h["lr"], 0.0, h["eps"], eps_in_sqrt=False, lr_decay=h["lr_decay"],
                             weight_decay=h["weight_decay"],
                             maximize=h["maximize"])

    def _init_state(self, p, group, state):
        del group  # unused: a group added later starts from the constructor's value, as PyTorch
        state["step"] = fnp.zeros((), dtype=fnp.float32)
        value = self.defaults["initial_accumulator_value"]
        if fnp.isdtype(p.dtype, "complex floating"):
            value = complex(value, value)  # each component starts there, as in PyTorch
        state["sum"] = fnp.full_like(p, value)


class Adadelta(Optimizer):
    """Adadelta (``torch.optim.Adadelta``, same defaults: ``lr=1.0, rho=0.9, eps=1e-6``).
    State: ``step``, ``square_avg``, ``acc_delta``.

    >>> from fnx import optim
    >>> opt = optim.Adadelta([fnp.ones(2)], rho=0.95)
    >>> opt.param_groups[0]['lr'], opt.param_groups[0]['rho']
    (1.0, 0.95)
    """

    _hyper_keys = ("lr", "rho", "eps", "weight_decay")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False):
        check_nonnegative(lr=lr, eps=eps, weight_decay=weight_decay)
        if not 0.0 <= rho <= 1.0:
            raise ValueError(f"Invalid rho value: {rho}")
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults)

    @classmethod
    def _state_keys(cls, options):
        return ("step", "square_avg", "acc_delta")

    @classmethod
    def _slots(cls, options):
        return {"square_avg": (ScaleByAdaDeltaState, "e_g"),
                "acc_delta": (ScaleByAdaDeltaState, "e_x")}

    @classmethod
    def _transform(cls, h):
        return alias.adadelta(h["lr"], h["rho"], h["eps"],
                              h["weight_decay"],
                              maximize=h["maximize"])

    def _init_state(self, p, group, state):
        state["step"] = fnp.zeros((), dtype=fnp.float32)
        state["square_avg"] = fnp.zeros_like(p)
        state["acc_delta"] = fnp.zeros_like(p)
