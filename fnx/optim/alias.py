"""Optimizers as chains of gradient transformations (optax's ``alias.py``).

Each alias takes optax's arguments first and PyTorch's extra options as keywords
(``weight_decay`` as L2 added to the gradient, ``maximize``, ``dampening``, ``lr_decay``...),
so ``fnx.optim.SGD``/``Adam``/... run exactly these chains: one implementation per rule.
"""

from . import schedules
from .transforms import (add_decayed_weights, chain, identity, scale, scale_by_adadelta,
                         scale_by_adam, scale_by_amsgrad, scale_by_learning_rate, scale_by_rms,
                         scale_by_rss, scale_by_stddev, trace)

__all__ = ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"]


def _is_zero(x):
    # a Python 0 leaves the transformation out; an array (possibly traced) is always applied
    return isinstance(x, (int, float)) and x == 0


def _sign(maximize):
    # PyTorch's maximize negates the gradient before anything else reads it
    return scale(-1.0) if maximize else identity()


def _decay(weight_decay, mask=None):
    # skipped at a Python 0, as PyTorch skips it (0 * inf would make an inf parameter NaN)
    return identity() if _is_zero(weight_decay) else add_decayed_weights(weight_decay, mask)


def sgd(learning_rate, momentum=None, nesterov=False, *, dampening=0.0, weight_decay=0.0,
        maximize=False):
    """Stochastic gradient descent, with optional (Nesterov) momentum and L2 weight decay:
    PyTorch's SGD.

    >>> from fnx import optim
    >>> tx = optim.sgd(0.1)
    >>> params = {'w': fnp.asarray([1.0, 2.0])}
    >>> updates, state = tx.update({'w': fnp.asarray([1.0, 1.0])}, tx.init(params), params)
    >>> [round(v, 6) for v in optim.apply_updates(params, updates)['w'].tolist()]
    [0.9, 1.9]
    """
    return chain(
        _sign(maximize),
        _decay(weight_decay),
        identity() if momentum is None else trace(momentum, nesterov, dampening),
        scale_by_learning_rate(learning_rate),
    )


def adam(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, *, weight_decay=0.0,
         amsgrad=False, maximize=False):
    """Adam (AMSGrad with ``amsgrad=True``; ``weight_decay`` is L2, added to the gradient):
    PyTorch's Adam.

    >>> from fnx import optim
    >>> tx = optim.adam(0.1)
    >>> params = fnp.asarray([1.0, -1.0])
    >>> updates, state = tx.update(fnp.asarray([0.5, -2.0]), tx.init(params), params)
    >>> [round(v, 5) for v in optim.apply_updates(params, updates).tolist()]
    [0.9, -0.9]
    """
    core = scale_by_amsgrad if amsgrad else scale_by_adam
    return chain(_sign(maximize), _decay(weight_decay), core(b1, b2, eps, eps_root),
                 scale_by_learning_rate(learning_rate))


def adamw(learning_rate, b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0, weight_decay=1e-4,
          mask=None, *, amsgrad=False, maximize=False):
    """Adam with decoupled weight decay: ``p -= lr * (adam_update + weight_decay * p)``,
    PyTorch's AdamW. ``mask`` selects the decayed leaves (see ``add_decayed_weights``).

    >>> from fnx import optim
    >>> tx = optim.adamw(0.1, weight_decay=0.5)
    >>> params = fnp.asarray([1.0])
    >>> updates, _ = tx.update(fnp.asarray([0.0]), tx.init(params), params)
    >>> round(optim.apply_updates(params, updates).item(), 6)
    0.95
    """
    core = scale_by_amsgrad if amsgrad else scale_by_adam
    return chain(_sign(maximize), core(b1, b2, eps, eps_root),
                 _decay(weight_decay, mask), scale_by_learning_rate(learning_rate))


def rmsprop(learning_rate, decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True,
            centered=False, momentum=None, nesterov=False, *, weight_decay=0.0,
            maximize=False):
    """RMSprop (centered: divides by the standard deviation), with optional momentum applied
    before the learning rate, as PyTorch's RMSprop does (so a changing learning rate never
    rescales the momentum buffer). PyTorch's numbers: ``eps_in_sqrt=False``.

    >>> from fnx import optim
    >>> tx = optim.rmsprop(0.1, decay=0.75, eps=0.0)
    >>> params = fnp.asarray([1.0])
    >>> updates, _ = tx.update(fnp.asarray([3.0]), tx.init(params), params)
    >>> round(optim.apply_updates(params, updates).item(), 6)
    0.8
    """
    core = scale_by_stddev if centered else scale_by_rms
    return chain(
        _sign(maximize),
        _decay(weight_decay),
        core(decay, eps, initial_scale, eps_in_sqrt),
        identity() if momentum is None else trace(momentum, nesterov),
        scale_by_learning_rate(learning_rate),
    )


def adagrad(learning_rate, initial_accumulator_value=0.1, eps=1e-7, *, eps_in_sqrt=True,
            lr_decay=0.0, weight_decay=0.0, maximize=False):
    """Adagrad; ``lr_decay`` divides the rate by ``1 + lr_decay * step``. PyTorch's numbers:
    ``eps_in_sqrt=False`` (its defaults are ``initial_accumulator_value=0``, ``eps=1e-10``).

    >>> from fnx import optim
    >>> tx = optim.adagrad(0.5, initial_accumulator_value=0.0, eps=0.0)
    >>> params = fnp.asarray([1.0])
    >>> updates, _ = tx.update(fnp.asarray([4.0]), tx.init(params), params)
    >>> optim.apply_updates(params, updates).item()
    0.5
    """
    if not _is_zero(lr_decay):
        learning_rate = schedules.inverse_time_decay(learning_rate, lr_decay)
    return chain(_sign(maximize), _decay(weight_decay),
                 scale_by_rss(initial_accumulator_value, eps, eps_in_sqrt),
                 scale_by_learning_rate(learning_rate))


def adadelta(learning_rate=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False):
    """Adadelta (``weight_decay`` is L2, added to the gradient): PyTorch's Adadelta.

    >>> from fnx import optim
    >>> tx = optim.adadelta(1.0, rho=0.0, eps=1.0)
    >>> params = fnp.asarray([1.0])
    >>> updates, _ = tx.update(fnp.asarray([0.0]), tx.init(params), params)
    >>> optim.apply_updates(params, updates).item()
    1.0
    """
    return chain(_sign(maximize), _decay(weight_decay), scale_by_adadelta(rho, eps),
                 scale_by_learning_rate(learning_rate))
