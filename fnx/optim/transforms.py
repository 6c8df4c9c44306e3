"""Gradient transformations in the optax style: ``init(params) -> state`` and
``update(updates, state, params=None) -> (updates, state)``, composed with :func:`chain`.

Every transformation is a pure function of pytrees of arrays, written in ``fnx.numpy`` and
``fnx.tree``, so it runs eagerly, under ``fnx.jit`` and under ``fnx.vmap``. Step counts are
int32 arrays in the state; hyperparameters may be Python numbers or 0-d arrays (the
PyTorch-style classes in ``fnx.optim`` pass weakly typed arrays, so a new learning rate never
re-traces). These are the ONE implementation of each update rule: ``fnx.optim.Adam`` and the
other classes run them.

Where PyTorch and optax differ, the transformation takes the option that selects PyTorch's
form (``eps_in_sqrt=False``, ``dampening``) and documents the default.
"""

from typing import Any, Callable, NamedTuple

import fnx.numpy as fnp
import fnx.tree as ftree
from fnx.core.array import Array

__all__ = [
    "GradientTransformation", "EmptyState", "ScaleState", "ScaleByScheduleState",
    "ScaleByAdamState", "ScaleByAmsgradState", "ScaleByRmsState", "ScaleByRStdDevState",
    "ScaleByRssState", "ScaleByAdaDeltaState", "TraceState", "AddDecayedWeightsState",
    "ClipState", "ClipByGlobalNormState", "identity", "chain", "scale", "scale_by_schedule",
    "scale_by_learning_rate", "scale_by_adam", "scale_by_amsgrad", "scale_by_rms",
    "scale_by_stddev", "scale_by_rss", "scale_by_adagrad", "scale_by_adadelta", "trace",
    "add_decayed_weights", "clip", "clip_by_global_norm", "global_norm", "apply_updates",
]

_INT32_MAX = 2**31 - 1


class GradientTransformation(NamedTuple):
    """A pair of pure functions: ``init(params) -> state`` and
    ``update(updates, state, params=None) -> (new_updates, new_state)``.

    >>> from fnx import optim
    >>> tx = optim.scale(0.5)
    >>> u, state = tx.update({'w': fnp.ones(2)}, tx.init({'w': fnp.ones(2)}))
    >>> u['w'].tolist()
    [0.5, 0.5]
    """

    init: Callable[[Any], Any]
    update: Callable[..., tuple]


class EmptyState(NamedTuple):
    """The state of a stateless transformation (a pytree with no leaves)."""


ScaleState = AddDecayedWeightsState = ClipState = ClipByGlobalNormState = EmptyState


class ScaleByScheduleState(NamedTuple):
    count: Any  # int32 number of updates so far


class ScaleByAdamState(NamedTuple):
    count: Any
    mu: Any  # first moment (PyTorch's exp_avg)
    nu: Any  # second moment (exp_avg_sq)


class ScaleByAmsgradState(NamedTuple):
    count: Any
    mu: Any
    nu: Any
    nu_max: Any  # running maximum of nu (max_exp_avg_sq)


class ScaleByRmsState(NamedTuple):
    nu: Any  # square_avg


class ScaleByRStdDevState(NamedTuple):
    mu: Any  # grad_avg
    nu: Any  # square_avg


class ScaleByRssState(NamedTuple):
    sum_of_squares: Any  # Adagrad's sum


class ScaleByAdaDeltaState(NamedTuple):
    e_g: Any  # square_avg
    e_x: Any  # acc_delta


class TraceState(NamedTuple):
    trace: Any  # momentum_buffer
    count: Any  # 0 until the first update: PyTorch starts the buffer at the first gradient


# --- numerics helpers ------------------------------------------------------------------------


def _zero_count():
    return fnp.zeros((), dtype=fnp.int32)


def _increment(count):
    # saturate instead of wrapping around to negative counts (optax's safe_int32_increment)
    return fnp.where(count < _INT32_MAX, count + 1, count)


def _abs_sq(x):
    return fnp.square(fnp.abs(x)) if fnp.isdtype(x.dtype, "complex floating") else x * x


def _bias_correction(decay, count):
    """``1 - decay ** count`` in float64, as PyTorch computes it in Python doubles: in float32,
    ``1 - 0.999 ** 1`` loses five digits to cancellation."""
    return 1.0 - fnp.asarray(decay, dtype=fnp.float64) ** count.astype(fnp.float64)


def _scalar_like(s, x):
    """A hyperparameter array cast to ``x``'s dtype (a Python number stays one), so a float64
    factor never promotes float32 updates."""
    return s.astype(x.dtype) if isinstance(s, Array) else s


def _moment(decay, g, m):
    return (1 - decay) * g + decay * m


# --- combinators -----------------------------------------------------------------------------


def identity():
    """The transformation that returns the updates unchanged.

    >>> from fnx import optim
    >>> tx = optim.identity()
    >>> tx.update([fnp.ones(2)], tx.init([fnp.ones(2)]))[0][0].tolist()
    [1.0, 1.0]
    """
    return GradientTransformation(lambda params: EmptyState(),
                                  lambda updates, state, params=None: (updates, state))


def chain(*transforms):
    """Apply ``transforms`` in order; the state is the tuple of their states.

    >>> from fnx import optim
    >>> tx = optim.chain(optim.scale(2.0), optim.scale(-0.5))
    >>> tx.update([fnp.ones(2)], tx.init([fnp.ones(2)]))[0][0].tolist()
    [-1.0, -1.0]
    """
    transforms = tuple(transforms)

    def init(params):
        return tuple(t.init(params) for t in transforms)

    def update(updates, state, params=None):
        if len(state) != len(transforms):
            raise ValueError(
                f"chain: the state has {len(state)} entries for {len(transforms)} "
                f"transformations; make sure the state comes from this chain's init")
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            updates, s = t.update(updates, s, params)
            new_state.append(s)
        return updates, tuple(new_state)

    return GradientTransformation(init, update)


# --- scaling ---------------------------------------------------------------------------------


def scale(step_size):
    """Multiply the updates by ``step_size`` (a number or a 0-d array).

    >>> from fnx import optim
    >>> optim.scale(-0.1).update([fnp.ones(2)], optim.EmptyState())[0][0].tolist()
    [-0.10000000149011612, -0.10000000149011612]
    """
    def update(updates, state, params=None):
        del params  # unused
        return ftree.map(lambda g: g * _scalar_like(step_size, g), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def scale_by_schedule(step_size_fn):
    """Multiply the updates by ``step_size_fn(count)``, ``count`` being the number of
    updates before this one (0 at the first), cast to each update's dtype.

    >>> from fnx import optim
    >>> tx = optim.scale_by_schedule(lambda count: 1.0 / (1 + count))
    >>> state = tx.init(fnp.ones(1))
    >>> u, state = tx.update(fnp.ones(1), state)
    >>> u, state = tx.update(fnp.ones(1), state)
    >>> u.tolist(), int(state.count)
    ([0.5], 2)
    """
    def init(params):
        del params  # unused
        return ScaleByScheduleState(_zero_count())

    def update(updates, state, params=None):
        del params  # unused
        step_size = fnp.asarray(step_size_fn(state.count))
        updates = ftree.map(lambda g: g * step_size.astype(g.dtype), updates)
        return updates, ScaleByScheduleState(_increment(state.count))

    return GradientTransformation(init, update)


def scale_by_learning_rate(learning_rate, *, flip_sign=True):
    """Scale by ``-learning_rate`` (``+`` with ``flip_sign=False``); ``learning_rate`` is a
    number, a 0-d array, or a schedule ``count -> rate``.

    >>> from fnx import optim
    >>> tx = optim.scale_by_learning_rate(0.5)
    >>> tx.update([fnp.ones(1)], tx.init([fnp.ones(1)]))[0][0].tolist()
    [-0.5]
    """
    sign = -1 if flip_sign else 1
    if callable(learning_rate):
        return scale_by_schedule(lambda count: sign * learning_rate(count))
    return scale(sign * learning_rate)


# --- adaptive moments ------------------------------------------------------------------------


def scale_by_adam(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
    """Adam's scaling: bias-corrected ``mu_hat / (sqrt(nu_hat + eps_root) + eps)`` with
    ``mu``, ``nu`` exponential averages of the gradient and its square (PyTorch's
    ``exp_avg`` / ``exp_avg_sq``). Bias corrections are computed in float64, as PyTorch does.

    >>> from fnx import optim
    >>> tx = optim.scale_by_adam()
    >>> u, state = tx.update(fnp.asarray([2.0, -3.0]), tx.init(fnp.zeros(2)))
    >>> [round(v, 4) for v in u.tolist()], int(state.count)
    ([1.0, -1.0], 1)
    """
    def init(params):
        return ScaleByAdamState(_zero_count(), ftree.map(fnp.zeros_like, params),
                                ftree.map(fnp.zeros_like, params))

    def update(updates, state, params=None):
        del params  # unused
        mu = ftree.map(lambda g, m: _moment(b1, g, m), updates, state.mu)
        nu = ftree.map(lambda g, v: _moment(b2, _abs_sq(g), v), updates, state.nu)
        count = _increment(state.count)
        bc1, bc2 = _bias_correction(b1, count), _bias_correction(b2, count)
        updates = ftree.map(
            lambda m, v: (m / bc1.astype(m.dtype))
            / (fnp.sqrt(v / bc2.astype(v.dtype) + eps_root) + eps), mu, nu)
        return updates, ScaleByAdamState(count, mu, nu)

    return GradientTransformation(init, update)


def scale_by_amsgrad(b1=0.9, b2=0.999, eps=1e-8, eps_root=0.0):
    """AMSGrad, in PyTorch's form: ``nu_max`` is the running maximum of the raw ``nu``, and
    the denominator is ``sqrt(nu_max / (1 - b2**t) + eps_root) + eps`` (optax takes the
    maximum of the bias-corrected ``nu`` instead; the two differ while ``nu`` falls).

    >>> from fnx import optim
    >>> tx = optim.scale_by_amsgrad()
    >>> state = tx.init(fnp.zeros(1))
    >>> _, state = tx.update(fnp.asarray([2.0]), state)
    >>> _, state = tx.update(fnp.asarray([0.0]), state)
    >>> round(state.nu_max.item(), 6), round(state.nu.item(), 6)
    (0.004, 0.003996)
    """
    def init(params):
        zeros = lambda: ftree.map(fnp.zeros_like, params)  # noqa: E731
        return ScaleByAmsgradState(_zero_count(), zeros(), zeros(), zeros())

    def update(updates, state, params=None):
        del params  # unused
        mu = ftree.map(lambda g, m: _moment(b1, g, m), updates, state.mu)
        nu = ftree.map(lambda g, v: _moment(b2, _abs_sq(g), v), updates, state.nu)
        nu_max = ftree.map(fnp.maximum, state.nu_max, nu)
        count = _increment(state.count)
        bc1, bc2 = _bias_correction(b1, count), _bias_correction(b2, count)
        updates = ftree.map(
            lambda m, v: (m / bc1.astype(m.dtype))
            / (fnp.sqrt(v / bc2.astype(v.dtype) + eps_root) + eps), mu, nu_max)
        return updates, ScaleByAmsgradState(count, mu, nu, nu_max)

    return GradientTransformation(init, update)


def _rms_denominator(nu, eps, eps_in_sqrt):
    return fnp.sqrt(nu + eps) if eps_in_sqrt else fnp.sqrt(nu) + eps


def scale_by_rms(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True):
    """RMSprop's scaling ``g / sqrt(nu + eps)`` with ``nu`` the exponential average of
    ``g**2``; ``eps_in_sqrt=False`` gives PyTorch's ``g / (sqrt(nu) + eps)``.

    >>> from fnx import optim
    >>> tx = optim.scale_by_rms(decay=0.75, eps=0.0)
    >>> tx.update(fnp.asarray([2.0]), tx.init(fnp.zeros(1)))[0].tolist()
    [2.0]
    """
    def init(params):
        return ScaleByRmsState(ftree.map(lambda p: fnp.full_like(p, initial_scale), params))

    def update(updates, state, params=None):
        del params  # unused
        nu = ftree.map(lambda g, v: _moment(decay, _abs_sq(g), v), updates, state.nu)
        updates = ftree.map(lambda g, v: g / _rms_denominator(v, eps, eps_in_sqrt), updates, nu)
        return updates, ScaleByRmsState(nu)

    return GradientTransformation(init, update)


def scale_by_stddev(decay=0.9, eps=1e-8, initial_scale=0.0, eps_in_sqrt=True):
    """Centered RMSprop: ``g / sqrt(nu - mu**2 + eps)`` with ``mu``, ``nu`` the exponential
    averages of ``g`` and ``g**2`` (``eps_in_sqrt=False``: PyTorch's ``sqrt(...) + eps``).

    >>> from fnx import optim
    >>> tx = optim.scale_by_stddev(decay=0.5, eps=0.0)
    >>> tx.update(fnp.asarray([2.0]), tx.init(fnp.zeros(1)))[0].tolist()
    [2.0]
    """
    def init(params):
        return ScaleByRStdDevState(ftree.map(fnp.zeros_like, params),
                                   ftree.map(lambda p: fnp.full_like(p, initial_scale), params))

    def update(updates, state, params=None):
        del params  # unused
        mu = ftree.map(lambda g, m: _moment(decay, g, m), updates, state.mu)
        nu = ftree.map(lambda g, v: _moment(decay, _abs_sq(g), v), updates, state.nu)
        updates = ftree.map(
            lambda g, m, v: g / _rms_denominator(v - _abs_sq(m), eps, eps_in_sqrt),
            updates, mu, nu)
        return updates, ScaleByRStdDevState(mu, nu)

    return GradientTransformation(init, update)


def scale_by_rss(initial_accumulator_value=0.1, eps=1e-7, eps_in_sqrt=True):
    """Adagrad's scaling: ``g / sqrt(sum_of_squares + eps)`` with the running sum of
    ``g**2`` (0 where that sum is 0); ``eps_in_sqrt=False`` gives PyTorch's
    ``g / (sqrt(sum) + eps)``. Also exported as ``scale_by_adagrad``.

    >>> from fnx import optim
    >>> tx = optim.scale_by_rss(initial_accumulator_value=0.0, eps=0.0)
    >>> tx.update(fnp.asarray([3.0, 0.0]), tx.init(fnp.zeros(2)))[0].tolist()
    [1.0, 0.0]
    """
    def init(params):
        return ScaleByRssState(
            ftree.map(lambda p: fnp.full_like(p, initial_accumulator_value), params))

    def update(updates, state, params=None):
        del params  # unused
        sums = ftree.map(lambda g, s: s + _abs_sq(g), updates, state.sum_of_squares)
        updates = ftree.map(
            lambda g, s: fnp.where(s > 0, g / _rms_denominator(s, eps, eps_in_sqrt), 0),
            updates, sums)
        return updates, ScaleByRssState(sums)

    return GradientTransformation(init, update)


scale_by_adagrad = scale_by_rss


def scale_by_adadelta(rho=0.9, eps=1e-6):
    """Adadelta's scaling: ``sqrt(e_x + eps) / sqrt(e_g + eps) * g`` with ``e_g`` the
    average of ``g**2`` and ``e_x`` that of the squared updates (PyTorch's square_avg and
    acc_delta).

    >>> from fnx import optim
    >>> tx = optim.scale_by_adadelta(rho=0.0, eps=1.0)
    >>> tx.update(fnp.asarray([0.0]), tx.init(fnp.zeros(1)))[0].tolist()
    [0.0]
    """
    def init(params):
        return ScaleByAdaDeltaState(ftree.map(fnp.zeros_like, params),
                                    ftree.map(fnp.zeros_like, params))

    def update(updates, state, params=None):
        del params  # unused
        e_g = ftree.map(lambda g, e: _moment(rho, _abs_sq(g), e), updates, state.e_g)
        updates = ftree.map(lambda g, eg, ex: fnp.sqrt(ex + eps) / fnp.sqrt(eg + eps) * g,
                            updates, e_g, state.e_x)
        e_x = ftree.map(lambda u, e: _moment(rho, _abs_sq(u), e), updates, state.e_x)
        return updates, ScaleByAdaDeltaState(e_g, e_x)

    return GradientTransformation(init, update)


# --- momentum, weight decay, clipping --------------------------------------------------------


def trace(decay, nesterov=False, dampening=0.0):
    """Momentum: ``t = decay * t + (1 - dampening) * g`` (``t = g`` at the first update, as
    PyTorch's SGD starts its buffer); returns ``t``, or ``g + decay * t`` with ``nesterov``.

    >>> from fnx import optim
    >>> tx = optim.trace(0.5)
    >>> state = tx.init(fnp.zeros(1))
    >>> u, state = tx.update(fnp.ones(1), state)
    >>> u, state = tx.update(fnp.ones(1), state)
    >>> u.tolist()
    [1.5]
    """
    def init(params):
        return TraceState(ftree.map(fnp.zeros_like, params), _zero_count())

    def update(updates, state, params=None):
        del params  # unused
        first = state.count == 0
        new_trace = ftree.map(
            lambda g, t: fnp.where(first, g, decay * t + (1 - dampening) * g),
            updates, state.trace)
        if nesterov:
            updates = ftree.map(lambda g, t: g + decay * t, updates, new_trace)
        else:
            updates = new_trace
        return updates, TraceState(new_trace, _increment(state.count))

    return GradientTransformation(init, update)


def _needs_params(name, params):
    if params is None:
        raise ValueError(f"{name}: this transformation reads the parameters; pass them as "
                         f"update(updates, state, params)")


def add_decayed_weights(weight_decay=0.0, mask=None):
    """Add ``weight_decay * params`` to the updates (L2 regularisation before an adaptive
    scaling; decoupled decay after it, as in ``adamw``). ``mask``: a pytree of bools with the
    parameters' structure, or a function ``params -> mask``; False leaves are not decayed.

    >>> from fnx import optim
    >>> tx = optim.add_decayed_weights(0.1, mask={'w': True, 'b': False})
    >>> p = {'w': fnp.ones(1), 'b': fnp.ones(1)}
    >>> u, _ = tx.update({'w': fnp.zeros(1), 'b': fnp.zeros(1)}, tx.init(p), p)
    >>> u['w'].tolist(), u['b'].tolist()
    ([0.10000000149011612], [0.0])
    """
    def update(updates, state, params=None):
        _needs_params("add_decayed_weights", params)
        if mask is None:
            return ftree.map(lambda g, p: g + weight_decay * p, updates, params), state
        flags = mask(params) if callable(mask) else mask
        return ftree.map(lambda g, p, m: g + weight_decay * p if m else g,
                         updates, params, flags), state

    return GradientTransformation(lambda params: EmptyState(), update)


def clip(max_delta):
    """Clip every update element to ``[-max_delta, max_delta]``.

    >>> from fnx import optim
    >>> optim.clip(1.0).update(fnp.asarray([-3.0, 0.5]), optim.EmptyState())[0].tolist()
    [-1.0, 0.5]
    """
    def update(updates, state, params=None):
        del params  # unused
        return ftree.map(lambda g: fnp.clip(g, -max_delta, max_delta), updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def global_norm(updates):
    """The 2-norm of all the leaves together.

    >>> from fnx import optim
    >>> optim.global_norm([fnp.asarray([3.0]), {'b': fnp.asarray([4.0])}]).item()
    5.0
    """
    leaves = ftree.leaves(updates)
    if not leaves:
        return fnp.asarray(0.0)
    return fnp.sqrt(sum(fnp.sum(_abs_sq(x)) for x in leaves))


def clip_by_global_norm(max_norm):
    """Rescale the updates so their global norm is at most ``max_norm``.

    >>> from fnx import optim
    >>> u, _ = optim.clip_by_global_norm(1.0).update([fnp.asarray([3.0, 4.0])],
    ...                                              optim.EmptyState())
    >>> [round(v, 4) for v in u[0].tolist()]
    [0.6, 0.8]
    """
    def update(updates, state, params=None):
        del params  # unused
        g_norm = global_norm(updates)
        trigger = g_norm < max_norm
        return ftree.map(
            lambda t: fnp.where(trigger, t, t / g_norm.astype(t.dtype) * max_norm),
            updates), state

    return GradientTransformation(lambda params: EmptyState(), update)


def apply_updates(params, updates):
    """``params + updates`` leafwise, keeping each parameter's dtype.

    >>> from fnx import optim
    >>> optim.apply_updates({'w': fnp.ones(2)}, {'w': fnp.full(2, -0.5)})['w'].tolist()
    [0.5, 0.5]
    """
    def add(p, u):
        out = p + u
        return out if out.dtype == p.dtype else out.astype(p.dtype)

    return ftree.map(add, params, updates)
