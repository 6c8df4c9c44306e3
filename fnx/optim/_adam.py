"""``fnx.optim.Adam`` and ``AdamW``: PyTorch's Adam/AdamW on ``fnx.optim.adam``/``adamw``."""

import fnx.numpy as fnp

from . import alias
from .optimizer import Optimizer, check_nonnegative
from .transforms import ScaleByAdamState, ScaleByAmsgradState

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``, same defaults): ``amsgrad``, L2 ``weight_decay`` (added to
    the gradient; ``decoupled_weight_decay=True`` is AdamW), ``maximize``. State per
    parameter: ``step``, ``exp_avg``, ``exp_avg_sq`` (and ``max_exp_avg_sq``).

    >>> from fnx import optim
    >>> p = fnp.asarray([1.0, -1.0])
    >>> opt = optim.Adam([p], lr=0.1)
    >>> opt.param_groups[0]['betas'], opt.param_groups[0]['eps']
    ((0.9, 0.999), 1e-08)
    """

    _hyper_keys = ("lr", "betas", "eps", "weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, fused=None, decoupled_weight_decay=False):
        check_nonnegative(lr=lr, eps=eps, weight_decay=weight_decay)
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        amsgrad=amsgrad, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults)

    @classmethod
    def _static(cls, group):
        return super()._static(group) + (
            ("amsgrad", bool(group["amsgrad"])),
            ("decoupled", bool(group.get("decoupled_weight_decay", False))))

    @classmethod
    def _state_keys(cls, options):
        keys = ("step", "exp_avg", "exp_avg_sq")
        return keys + ("max_exp_avg_sq",) if options["amsgrad"] else keys

    @classmethod
    def _slots(cls, options):
        if options["amsgrad"]:
            return {"exp_avg": (ScaleByAmsgradState, "mu"),
                    "exp_avg_sq": (ScaleByAmsgradState, "nu"),
                    "max_exp_avg_sq": (ScaleByAmsgradState, "nu_max")}
        return {"exp_avg": (ScaleByAdamState, "mu"), "exp_avg_sq": (ScaleByAdamState, "nu")}

    @classmethod
    def _transform(cls, h):
        (b1, b2), wd = h["betas"], h["weight_decay"]
        if h["decoupled"]:
            return alias.adamw(h["lr"], b1, b2, h["eps"], weight_decay=wd, amsgrad=h["amsgrad"],
                               maximize=h["maximize"])
        return alias.adam(h["lr"], b1, b2, h["eps"], weight_decay=wd, amsgrad=h["amsgrad"],
                          maximize=h["maximize"])

    def _init_state(self, p, group, state):
        state["step"] = fnp.zeros((), dtype=fnp.float32)
        for key in self._state_keys(dict(self._static(group)))[1:]:
            state[key] = fnp.zeros_like(p)


class AdamW(Adam):
    """AdamW (``torch.optim.AdamW``, same defaults: ``weight_decay=1e-2``): Adam with
    decoupled weight decay, ``p -= lr * weight_decay * p`` besides the Adam step.

    >>> from fnx import optim
    >>> opt = optim.AdamW([fnp.ones(2)], lr=0.1)
    >>> opt.param_groups[0]['weight_decay'], opt.param_groups[0]['decoupled_weight_decay']
    (0.01, True)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable,
                         differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True)

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        # as PyTorch: AdamW stays decoupled whatever the loaded groups say
        for group in self.param_groups:
            group["decoupled_weight_decay"] = True
