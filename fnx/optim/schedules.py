"""Schedules: pure functions ``count -> value`` (a learning rate, a momentum).

Each factory returns ``schedule(count)``. With a Python int ``count`` the schedule computes
in Python floats, exactly as PyTorch's LR schedulers do (``fnx.optim.lr_scheduler`` calls
these same functions for its closed forms); with an int array ``count`` (the step count of a
``scale_by_schedule`` state) it computes in float64 ``fnx.numpy``, so it is jittable and
vmappable, and ``scale_by_schedule`` casts the value to each update's dtype.

Names and arguments follow optax; ``one_cycle_schedule``, ``cyclic_schedule`` and
``cosine_restarts_schedule`` are PyTorch's OneCycleLR, CyclicLR and
CosineAnnealingWarmRestarts as functions of the step.
"""

import bisect
import math

import fnx.numpy as fnp
from fnx.core.array import Array

__all__ = [
    "constant_schedule", "linear_schedule", "polynomial_schedule", "exponential_decay",
    "cosine_decay_schedule", "warmup_cosine_decay_schedule", "piecewise_constant_schedule",
    "join_schedules", "inverse_time_decay", "one_cycle_schedule", "cyclic_schedule",
    "cosine_restarts_schedule",
]


class _PyOps:
    """The scalar vocabulary of the formulas on Python numbers (PyTorch's doubles)."""

    cos, floor, log = staticmethod(math.cos), staticmethod(math.floor), staticmethod(math.log)
    minimum, maximum = staticmethod(min), staticmethod(max)

    @staticmethod
    def where(cond, a, b):
        return a if cond else b

    @staticmethod
    def count(c):
        return c

    @staticmethod
    def value(x):
        return x


class _ArrayOps:
    """The same vocabulary on arrays, in float64 (traceable: no Python branching)."""

    cos, floor, log = staticmethod(fnp.cos), staticmethod(fnp.floor), staticmethod(fnp.log)
    minimum, maximum, where = (staticmethod(fnp.minimum), staticmethod(fnp.maximum),
                               staticmethod(fnp.where))

    @staticmethod
    def count(c):
        return fnp.asarray(c, dtype=fnp.float64)

    @staticmethod
    def value(x):
        # a Python number would become a weak float32 value: keep float64, as counts are
        return fnp.asarray(x, dtype=fnp.float64) if isinstance(x, (int, float)) else x


def _ops(count):
    return _ArrayOps if isinstance(count, Array) else _PyOps


def cosine_interp(start, end, frac, exponent=1.0, ops=_PyOps):
    """``end + (start - end) * ((1 + cos(pi * frac)) / 2) ** exponent``: half a cosine from
    ``start`` (``frac = 0``) to ``end`` (``frac = 1``); the one cosine-annealing formula
    (CosineAnnealingLR, its warm restarts, OneCycleLR's 'cos', cosine_decay_schedule)."""
    c = (1 + ops.cos(math.pi * frac)) / 2
    return end + (start - end) * (c if exponent == 1 else c ** exponent)


def linear_interp(start, end, frac):
    """``(end - start) * frac + start`` (OneCycleLR's 'linear' anneal)."""
    return (end - start) * frac + start


def constant_schedule(value):
    """``value`` at every step.

    >>> from fnx.optim import schedules
    >>> schedules.constant_schedule(0.1)(5)
    0.1
    """
    return lambda count: _ops(count).value(value)


def linear_schedule(init_value, end_value, transition_steps, transition_begin=0):
    """Linear from ``init_value`` to ``end_value`` over ``transition_steps`` steps starting at
    ``transition_begin``, then constant (LinearLR's closed form).

    >>> from fnx.optim import schedules
    >>> [schedules.linear_schedule(1.0, 0.0, 4)(t) for t in (0, 2, 9)]
    [1.0, 0.5, 0.0]
    """
    def schedule(count):
        ops = _ops(count)
        t = ops.minimum(ops.maximum(ops.count(count) - transition_begin, 0), transition_steps)
        return init_value + (end_value - init_value) * t / transition_steps

    return schedule


def polynomial_schedule(init_value, end_value, power, transition_steps, transition_begin=0):
    """``(init - end) * (1 - t / transition_steps) ** power + end`` (PolynomialLR).

    >>> from fnx.optim import schedules
    >>> schedules.polynomial_schedule(1.0, 0.0, 2, 4)(2)
    0.25
    """
    def schedule(count):
        ops = _ops(count)
        t = ops.minimum(ops.maximum(ops.count(count) - transition_begin, 0), transition_steps)
        return (init_value - end_value) * (1.0 - t / transition_steps) ** power + end_value

    return schedule


def exponential_decay(init_value, transition_steps, decay_rate, transition_begin=0,
                      staircase=False, end_value=None):
    """``init_value * decay_rate ** (t / transition_steps)`` (the exponent floored with
    ``staircase``: StepLR; ExponentialLR is ``transition_steps=1``), clamped at ``end_value``.

    >>> from fnx.optim import schedules
    >>> schedules.exponential_decay(1.0, 2, 0.5, staircase=True)(5)
    0.25
    """
    def schedule(count):
        ops = _ops(count)
        p = ops.maximum(ops.count(count) - transition_begin, 0) / transition_steps
        value = init_value * decay_rate ** (ops.floor(p) if staircase else p)
        if end_value is not None:
            clamp = ops.maximum if decay_rate < 1 else ops.minimum
            value = clamp(value, end_value)
        return value

    return schedule


def cosine_decay_schedule(init_value, decay_steps, alpha=0.0, exponent=1.0):
    """Half a cosine from ``init_value`` to ``alpha * init_value`` over ``decay_steps``,
    then constant.

    >>> from fnx.optim import schedules
    >>> [round(schedules.cosine_decay_schedule(1.0, 4)(t), 6) for t in (0, 2, 4, 8)]
    [1.0, 0.5, 0.0, 0.0]
    """
    def schedule(count):
        ops = _ops(count)
        frac = ops.minimum(ops.count(count), decay_steps) / decay_steps
        return cosine_interp(init_value, alpha * init_value, frac, exponent, ops)

    return schedule


def join_schedules(schedules, boundaries):
    """``schedules[i]`` from ``boundaries[i - 1]`` on, each given the steps since its
    boundary.

    >>> from fnx.optim import schedules as S
    >>> s = S.join_schedules([S.constant_schedule(1.0), S.linear_schedule(1.0, 0.0, 2)], [3])
    >>> [s(t) for t in (2, 3, 4, 5)]
    [1.0, 1.0, 0.5, 0.0]
    """
    if len(boundaries) != len(schedules) - 1:
        raise ValueError(f"join_schedules: {len(schedules)} schedules need "
                         f"{len(schedules) - 1} boundaries, got {len(boundaries)}")

    def schedule(count):
        ops = _ops(count)
        value = schedules[0](count)
        for boundary, sched in zip(boundaries, schedules[1:], strict=True):
            value = ops.where(count < boundary, value, sched(count - boundary))
        return value

    return schedule


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps, decay_steps,
                                 end_value=0.0, exponent=1.0):
    """Linear warmup from ``init_value`` to ``peak_value`` over ``warmup_steps``, then a
    cosine decay to ``end_value`` reached at step ``decay_steps`` (which counts the warmup).

    >>> from fnx.optim import schedules
    >>> s = schedules.warmup_cosine_decay_schedule(0.0, 1.0, 2, 6)
    >>> [round(s(t), 6) for t in (0, 1, 2, 4, 6)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    alpha = 0.0 if peak_value == 0 else end_value / peak_value
    return join_schedules(
        [linear_schedule(init_value, peak_value, warmup_steps),
         cosine_decay_schedule(peak_value, decay_steps - warmup_steps, alpha, exponent)],
        [warmup_steps])


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """``init_value`` multiplied by ``scale`` at every ``boundary <= count`` of
    ``boundaries_and_scales`` (MultiStepLR's closed form).

    >>> from fnx.optim import schedules
    >>> s = schedules.piecewise_constant_schedule(1.0, {2: 0.5, 4: 0.5})
    >>> [s(t) for t in (1, 2, 4)]
    [1.0, 0.5, 0.25]
    """
    items = sorted((boundaries_and_scales or {}).items())

    def schedule(count):
        ops = _ops(count)
        value = ops.value(init_value)
        for boundary, factor in items:
            value = ops.where(count >= boundary, value * factor, value)
        return value

    return schedule


def inverse_time_decay(init_value, decay_rate):
    """``init_value / (1 + decay_rate * count)`` (Adagrad's ``lr_decay``).

    >>> from fnx.optim import schedules
    >>> schedules.inverse_time_decay(1.0, 0.5)(2)
    0.5
    """
    return lambda count: init_value / (1 + _ops(count).count(count) * decay_rate)


def _phase_anneal(count, ends, values, anneal, ops):
    """Anneal ``values[i] -> values[i + 1]`` over phase ``i``, which ends at step ``ends[i]``
    (the last phase extends past its end), as OneCycleLR's ``get_lr`` does."""
    starts = [0.0, *ends[:-1]]
    t = ops.count(count)
    if ops is _PyOps:
        for i, end in enumerate(ends):
            if t <= end or i == len(ends) - 1:
                return anneal(values[i], values[i + 1], (t - starts[i]) / (end - starts[i]))
    out = None
    for i in reversed(range(len(ends))):
        value = anneal(values[i], values[i + 1], (t - starts[i]) / (ends[i] - starts[i]))
        out = value if out is None else fnp.where(t <= ends[i], value, out)
    return out


def one_cycle_phases(total_steps, pct_start=0.3, three_phase=False):
    """The steps at which OneCycleLR's phases end (PyTorch's ``_schedule_phases``)."""
    if three_phase:
        return [float(pct_start * total_steps) - 1, float(2 * pct_start * total_steps) - 2,
                total_steps - 1]
    return [float(pct_start * total_steps) - 1, total_steps - 1]


def one_cycle_value(count, ends, values, anneal_strategy="cos"):
    """The 1cycle value at ``count``: ``values[i] -> values[i + 1]`` over the phase ending at
    ``ends[i]``, by ``anneal_strategy`` 'cos' or 'linear' (OneCycleLR's lr and momentum)."""
    ops = _ops(count)
    if anneal_strategy == "cos":
        def anneal(a, b, frac):
            return cosine_interp(a, b, frac, ops=ops)
    elif anneal_strategy == "linear":
        anneal = linear_interp
    else:
        raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got "
                         f"{anneal_strategy}")
    return _phase_anneal(count, ends, values, anneal, ops)


def one_cycle_schedule(total_steps, max_value, pct_start=0.3, anneal_strategy="cos",
                       div_factor=25.0, final_div_factor=1e4, three_phase=False):
    """PyTorch's OneCycleLR learning rate as a function of the step: from
    ``max_value / div_factor`` up to ``max_value`` over ``pct_start`` of ``total_steps``,
    then down to ``max_value / div_factor / final_div_factor`` (three-phase: back to the
    start first).

    >>> from fnx.optim import schedules
    >>> s = schedules.one_cycle_schedule(10, 1.0, pct_start=0.5, div_factor=10.0)
    >>> [round(s(t), 6) for t in (0, 4)]
    [0.1, 1.0]
    """
    initial = max_value / div_factor
    values = [initial, max_value] + ([initial] if three_phase else [])
    values.append(initial / final_div_factor)
    ends = one_cycle_phases(total_steps, pct_start, three_phase)
    return lambda count: one_cycle_value(count, ends, values, anneal_strategy)


def cyclic_value(count, base_value, max_value, total_size, step_ratio, scale_fn,
                 scale_mode="cycle"):
    """CyclicLR's value at ``count`` (PyTorch's ``get_lr``): a triangle from ``base_value``
    to ``max_value`` and back every ``total_size`` steps, its height scaled by
    ``scale_fn(cycle)`` or ``scale_fn(count)``. With the ends swapped it is the momentum."""
    ops = _ops(count)
    t = ops.count(count)
    cycle = ops.floor(1 + t / total_size)
    x = 1.0 + t / total_size - cycle
    scale_factor = ops.where(x <= step_ratio, x / step_ratio, (x - 1) / (step_ratio - 1))
    height = (max_value - base_value) * scale_factor
    return base_value + height * scale_fn(cycle if scale_mode == "cycle" else t)


def cyclic_scale_fn(mode, gamma=1.0):
    """``(scale_fn, scale_mode)`` of CyclicLR's built-in ``mode``."""
    if mode == "triangular":
        return (lambda x: 1.0), "cycle"
    if mode == "triangular2":
        return (lambda x: 1 / (2.0 ** (x - 1))), "cycle"
    if mode == "exp_range":
        return (lambda x: gamma ** x), "iterations"
    raise ValueError(f"CyclicLR mode {mode!r} is invalid and scale_fn is None; use "
                     f"'triangular', 'triangular2' or 'exp_range', or pass scale_fn")


def cyclic_schedule(base_value, max_value, step_size_up=2000, step_size_down=None,
                    mode="triangular", gamma=1.0, scale_fn=None, scale_mode="cycle"):
    """PyTorch's CyclicLR as a function of the step.

    >>> from fnx.optim import schedules
    >>> s = schedules.cyclic_schedule(0.0, 1.0, step_size_up=2)
    >>> [s(t) for t in range(5)]
    [0.0, 0.5, 1.0, 0.5, 0.0]
    """
    up = float(step_size_up)
    down = float(step_size_down) if step_size_down is not None else up
    if scale_fn is None:
        scale_fn, scale_mode = cyclic_scale_fn(mode, gamma)
    return lambda count: cyclic_value(count, base_value, max_value, up + down, up / (up + down),
                                      scale_fn, scale_mode)


def restart_position(count, T_0, T_mult=1):
    """``(T_cur, T_i)``: the step within the current cosine cycle and that cycle's length,
    cycles lasting ``T_0, T_0 * T_mult, ...`` steps (CosineAnnealingWarmRestarts). Exact at
    cycle boundaries (PyTorch's closed form takes a float log there, which can be one cycle
    off, e.g. T_0=1, T_mult=10, epoch 111)."""
    ops = _ops(count)
    if T_mult == 1:
        t = ops.count(count)
        return t - T_0 * ops.floor(t / T_0), T_0
    if ops is _PyOps:
        # the cycles start at T_0 * (T_mult**n - 1) / (T_mult - 1): search them exactly
        starts = [0]
        while starts[-1] <= count:
            starts.append(starts[-1] + T_0 * T_mult ** (len(starts) - 1))
        n = bisect.bisect_right(starts, count) - 1
        return count - starts[n], T_0 * T_mult ** n
    t = ops.count(count)
    n = ops.floor(ops.log(t / T_0 * (T_mult - 1) + 1) / math.log(T_mult))
    # the float log may land just below an integer at a cycle boundary: step up if so
    next_start = T_0 * (T_mult ** (n + 1) - 1) / (T_mult - 1)
    n = ops.where(t >= next_start, n + 1, n)
    return t - T_0 * (T_mult ** n - 1) / (T_mult - 1), T_0 * T_mult ** n


def cosine_restarts_schedule(init_value, T_0, T_mult=1, eta_min=0.0):
    """Cosine annealing from ``init_value`` to ``eta_min`` restarted every cycle, cycles of
    ``T_0, T_0 * T_mult, ...`` steps (SGDR; PyTorch's CosineAnnealingWarmRestarts).

    >>> from fnx.optim import schedules
    >>> s = schedules.cosine_restarts_schedule(1.0, 2)
    >>> [round(s(t), 6) for t in range(4)]
    [1.0, 0.5, 1.0, 0.5]
    """
    def schedule(count):
        t_cur, t_i = restart_position(count, T_0, T_mult)
        return cosine_interp(init_value, eta_min, t_cur / t_i, ops=_ops(count))

    return schedule
