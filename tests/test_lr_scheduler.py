"""fnx.optim.lr_scheduler against PyTorch's formulas (closed forms written out here from the
torch.optim.lr_scheduler documentation), and the schedule functions of fnx.optim.schedules
on int32 step arrays (jit, vmap) against the same functions on Python ints."""

import math
import warnings

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx import optim
from fnx.optim import lr_scheduler as L
from fnx.optim import schedules

STEPS = 30
BASE = [0.1, 0.2]


def _optimizer(name="SGD", **kwargs):
    groups = [{"params": [fnp.zeros(2)], "lr": lr} for lr in BASE]
    return getattr(optim, name)(groups, **kwargs)


def _run(opt, sched, steps=STEPS, key=None):
    """The lr (and the cycled momentum with ``key``) of each group before each of ``steps``."""
    lrs, momenta = [], []
    for _ in range(steps):
        lrs.append(sched.get_last_lr())
        if key == "betas":
            momenta.append([g["betas"][0] for g in opt.param_groups])
        elif key:
            momenta.append([g[key] for g in opt.param_groups])
        opt.step()
        sched.step()
    return np.array(lrs), np.array(momenta)


def _cos_anneal(start, end, frac):
    return end + (start - end) * (1 + math.cos(math.pi * frac)) / 2


def _check(lrs, formula, rtol=1e-12):
    want = np.array([[formula(base, t) for base in BASE] for t in range(len(lrs))])
    np.testing.assert_allclose(lrs, want, rtol=rtol, atol=1e-15)


def test_step_lr():
    opt = _optimizer()
    _check(_run(opt, L.StepLR(opt, step_size=4, gamma=0.5))[0],
           lambda base, t: base * 0.5 ** (t // 4))


def test_multistep_lr():
    opt = _optimizer()
    milestones = [3, 7, 7, 20]
    _check(_run(opt, L.MultiStepLR(opt, milestones, gamma=0.3))[0],
           lambda base, t: base * 0.3 ** sum(t >= m for m in milestones))


def test_exponential_lr():
    opt = _optimizer()
    _check(_run(opt, L.ExponentialLR(opt, gamma=0.9))[0], lambda base, t: base * 0.9 ** t)


def test_cosine_annealing_lr_recursive_form_equals_closed_form():
    opt = _optimizer()
    # the closed form also describes the way back up after T_max (PyTorch's recursion does)
    _check(_run(opt, L.CosineAnnealingLR(opt, T_max=7, eta_min=0.01))[0],
           lambda base, t: _cos_anneal(base, 0.01, t / 7))


def test_cosine_annealing_warm_restarts():
    def position(t, t0, mult):
        t_i = t0
        while t >= t_i:
            t, t_i = t - t_i, t_i * mult
        return t, t_i

    for t0, mult in [(4, 1), (3, 2)]:
        opt = _optimizer()
        lrs = _run(opt, L.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=mult, eta_min=1e-3))[0]
        _check(lrs, lambda base, t: _cos_anneal(base, 1e-3, np.divide(*position(t, t0, mult))))


def test_cosine_warm_restarts_epoch_argument_is_exact_at_cycle_boundaries():
    opt = _optimizer()
    sched = L.CosineAnnealingWarmRestarts(opt, T_0=1, T_mult=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched.step(111)  # cycles start at 0, 1, 11, 111: a restart, so the full rate
        assert (sched.T_cur, sched.T_i) == (0, 1000)
        assert sched.get_last_lr() == BASE
        sched.step(5.5)
        assert sched.T_cur == 4.5 and sched.T_i == 10


def _one_cycle_ref(t, total, top, pct, div=25.0, final=1e4, three=False, linear=False,
                   values=None):
    ends = ([pct * total - 1, 2 * pct * total - 2, total - 1] if three
            else [pct * total - 1, total - 1])
    if values is None:
        initial = top / div
        values = ([initial, top, initial, initial / final] if three
                  else [initial, top, initial / final])
    start = 0.0
    for i, end in enumerate(ends):
        if t <= end or i == len(ends) - 1:
            frac = (t - start) / (end - start)
            a, b = values[i], values[i + 1]
            return (b - a) * frac + a if linear else _cos_anneal(a, b, frac)
        start = end


def test_one_cycle_lr_with_momentum():
    opt = _optimizer("SGD", momentum=0.9)
    tops = [1.0, 2.0]
    lrs, momenta = _run(opt, L.OneCycleLR(opt, max_lr=tops, total_steps=31), 31, "momentum")
    want = np.array([[_one_cycle_ref(t, 31, top, 0.3) for top in tops] for t in range(31)])
    np.testing.assert_allclose(lrs, want, rtol=1e-12)
    want_m = [_one_cycle_ref(t, 31, None, 0.3, values=[0.95, 0.85, 0.95]) for t in range(31)]
    np.testing.assert_allclose(momenta[:, 0], want_m, rtol=1e-12)
    sched = L.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times. The specified number of total "
                                         "steps is 2"):
        sched.step()


def test_one_cycle_three_phase_linear_cycles_adam_beta1():
    opt = _optimizer("Adam")
    lrs, betas = _run(opt, L.OneCycleLR(opt, max_lr=1.0, total_steps=31, three_phase=True,
                                        anneal_strategy="linear", pct_start=0.25), 31, "betas")
    want = [_one_cycle_ref(t, 31, 1.0, 0.25, three=True, linear=True) for t in range(31)]
    np.testing.assert_allclose(lrs[:, 1], want, rtol=1e-12)
    want_b = [_one_cycle_ref(t, 31, None, 0.25, three=True, linear=True,
                             values=[0.95, 0.85, 0.95, 0.95]) for t in range(31)]
    np.testing.assert_allclose(betas[:, 0], want_b, rtol=1e-12)
    assert opt.param_groups[0]["betas"][1] == 0.999


def _cyclic_ref(t, low, high, up, down, scale):
    cycle = math.floor(1 + t / (up + down))
    x = 1.0 + t / (up + down) - cycle
    ratio = up / (up + down)
    factor = x / ratio if x <= ratio else (x - 1) / (ratio - 1)
    return low + (high - low) * factor * scale(cycle, t)


@pytest.mark.parametrize("mode, scale", [
    ("triangular", lambda cycle, t: 1.0),
    ("triangular2", lambda cycle, t: 1 / 2.0 ** (cycle - 1)),
    ("exp_range", lambda cycle, t: 0.95 ** t),
])
def test_cyclic_lr_and_momentum(mode, scale):
    opt = _optimizer("SGD", momentum=0.9)
    sched = L.CyclicLR(opt, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=4, step_size_down=3,
                       mode=mode, gamma=0.95)
    lrs, momenta = _run(opt, sched, key="momentum")
    for i, low in enumerate([0.01, 0.02]):
        want = [_cyclic_ref(t, low, 0.1, 4, 3, scale) for t in range(STEPS)]
        np.testing.assert_allclose(lrs[:, i], want, rtol=1e-12)
    want_m = [_cyclic_ref(t, 0.9, 0.8, 4, 3, scale) for t in range(STEPS)]
    np.testing.assert_allclose(momenta[:, 0], want_m, rtol=1e-12)


def test_linear_constant_polynomial_lr():
    opt = _optimizer()
    _check(_run(opt, L.LinearLR(opt, start_factor=0.2, end_factor=0.9, total_iters=9))[0],
           lambda base, t: base * (0.2 + 0.7 * min(t, 9) / 9))
    opt = _optimizer()
    _check(_run(opt, L.ConstantLR(opt, factor=0.3, total_iters=6))[0],
           lambda base, t: base * (0.3 if t < 6 else 1.0))
    opt = _optimizer()
    _check(_run(opt, L.PolynomialLR(opt, total_iters=12, power=2.0))[0],
           lambda base, t: base * (1 - min(t, 12) / 12) ** 2)


def test_lambda_and_multiplicative_lr():
    opt = _optimizer()
    sched = L.LambdaLR(opt, [lambda e: 0.9 ** e, lambda e: 1 / (1 + e)])
    lrs = _run(opt, sched)[0]
    np.testing.assert_allclose(lrs[:, 0], [0.1 * 0.9 ** t for t in range(STEPS)], rtol=1e-12)
    np.testing.assert_allclose(lrs[:, 1], [0.2 / (1 + t) for t in range(STEPS)], rtol=1e-12)
    opt = _optimizer()
    _check(_run(opt, L.MultiplicativeLR(opt, lambda e: 0.95))[0],
           lambda base, t: base * 0.95 ** t)


def test_sequential_and_chained():
    opt = _optimizer()
    sched = L.SequentialLR(opt, [L.LinearLR(opt, 0.1, total_iters=5),
                                 L.CosineAnnealingLR(opt, T_max=10)], milestones=[5])
    _check(_run(opt, sched)[0],
           lambda base, t: base * (0.1 + 0.9 * t / 5) if t < 5 else _cos_anneal(base, 0, (t - 5) / 10))
    opt = _optimizer()
    sched = L.ChainedScheduler([L.ConstantLR(opt, 0.5, total_iters=4), L.ExponentialLR(opt, 0.9),
                                L.StepLR(opt, 3, 0.7)])
    _check(_run(opt, sched)[0],
           lambda base, t: base * (0.5 if t < 4 else 1.0) * 0.9 ** t * 0.7 ** (t // 3))


@pytest.mark.parametrize("kwargs, want", [
    (dict(patience=1), [0.1] * 3 + [0.01] * 4 + [0.001] * 3),
    (dict(mode="max", factor=0.5, patience=1, threshold=0.1, threshold_mode="abs", cooldown=2,
          min_lr=0.03), [0.1] * 2 + [0.05] * 4 + [0.03] * 4),
])
def test_reduce_lr_on_plateau(kwargs, want):
    metrics = [1.0, 0.9, 0.95, 0.97, 0.96, 0.5, 0.6, 0.7, 0.8, 0.2]
    if kwargs.get("mode") == "max":
        metrics = [1.0, 1.05, 1.01, 1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
    opt = _optimizer()
    sched = L.ReduceLROnPlateau(opt, **kwargs)
    got = []
    for m in metrics:
        sched.step(m)
        got.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_scheduler_state_dict_round_trip():
    opt = _optimizer("SGD", momentum=0.9)
    sched = L.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    _run(opt, sched, 7)
    saved, saved_opt = sched.state_dict(), opt.state_dict()
    rest = _run(opt, sched, 10)[0]
    opt2 = _optimizer("SGD", momentum=0.9)
    opt2.load_state_dict(saved_opt)
    sched2 = L.OneCycleLR(opt2, max_lr=1.0, total_steps=20)
    sched2.load_state_dict(saved)
    np.testing.assert_array_equal(_run(opt2, sched2, 10)[0], rest)


def test_array_learning_rate_is_updated_in_place():
    lr = fnp.asarray(0.5, dtype=fnp.float64)
    opt = optim.SGD([fnp.zeros(1)], lr=lr)
    sched = L.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    assert opt.param_groups[0]["lr"] is lr and lr.item() == 0.25
    assert opt.param_groups[0]["initial_lr"] is not lr  # a copy, as PyTorch clones it


def test_scheduler_errors_and_warnings():
    opt = _optimizer()
    with pytest.raises(TypeError, match="list is not an Optimizer"):
        L.StepLR([], 1)
    with pytest.raises(KeyError, match="param 'initial_lr' is not specified in param_groups"):
        L.StepLR(opt, 1, last_epoch=3)
    with pytest.raises(ValueError, match="factor should be < 1.0"):
        L.ReduceLROnPlateau(opt, factor=2.0)
    with pytest.raises(ValueError, match="You must define either total_steps"):
        L.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="optimizer must support momentum or beta1"):
        L.OneCycleLR(_optimizer("Adagrad"), max_lr=1.0, total_steps=5)
    with pytest.raises(ValueError, match="SequentialLR expects one more scheduler"):
        L.SequentialLR(opt, [L.StepLR(opt, 1)], milestones=[2])
    sched = L.StepLR(_optimizer(), 1)
    with pytest.warns(UserWarning, match="before `optimizer.step\\(\\)`"):
        sched.step()


# --- schedules as functions of an int32 step count -----------------------------------------

SCHEDULES = [
    schedules.constant_schedule(0.3),
    schedules.linear_schedule(1.0, 0.1, 10, transition_begin=3),
    schedules.polynomial_schedule(1.0, 0.1, 2.0, 12),
    schedules.exponential_decay(1.0, 4, 0.5, staircase=True),
    schedules.exponential_decay(1.0, 3, 0.5, transition_begin=2, end_value=0.2),
    schedules.cosine_decay_schedule(1.0, 12, alpha=0.1, exponent=2.0),
    schedules.warmup_cosine_decay_schedule(0.0, 1.0, 5, 20, end_value=0.05),
    schedules.piecewise_constant_schedule(1.0, {4: 0.5, 9: 0.1}),
    schedules.inverse_time_decay(1.0, 0.3),
    schedules.one_cycle_schedule(25, 1.0, three_phase=True),
    schedules.one_cycle_schedule(25, 1.0, anneal_strategy="linear"),
    schedules.cyclic_schedule(0.1, 1.0, 3, 4, mode="triangular2"),
    schedules.cosine_restarts_schedule(1.0, 2, T_mult=3, eta_min=0.1),
    schedules.cosine_restarts_schedule(1.0, 5),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=[
    "constant", "linear", "polynomial", "exp_staircase", "exp_clamped", "cosine", "warmup_cos",
    "piecewise", "inverse_time", "one_cycle3", "one_cycle_lin", "cyclic", "restarts3",
    "restarts1"])
def test_schedules_on_step_arrays_equal_python_ints(schedule):
    want = [schedule(t) for t in range(STEPS)]
    counts = fnp.arange(STEPS, dtype=fnp.int32)
    batched = fnx.vmap(lambda c: fnp.asarray(schedule(c)) + 0.0)(counts)
    one = fnx.jit(lambda c: fnp.asarray(schedule(c)) + 0.0)
    np.testing.assert_allclose(np.asarray(batched), want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose([one(c).item() for c in counts[::7]], want[::7], rtol=1e-12,
                               atol=1e-15)


def test_schedules_by_hand():
    np.testing.assert_allclose([schedules.warmup_cosine_decay_schedule(0.0, 1.0, 2, 6)(t)
                                for t in range(7)],
                               [0.0, 0.5, 1.0, _cos_anneal(1, 0, 0.25), 0.5,
                                _cos_anneal(1, 0, 0.75), 0.0], atol=1e-15)
    assert schedules.exponential_decay(2.0, 2, 0.5)(3) == 2.0 * 0.5 ** 1.5
    assert schedules.restart_position(13, 2, 3) == (5, 18)  # cycles at 0, 2, 8, 26
    with pytest.raises(ValueError, match="3 schedules need 2 boundaries, got 1"):
        schedules.join_schedules([schedules.constant_schedule(1.0)] * 3, [1])


def test_scale_by_schedule_drives_the_learning_rate():
    tx = optim.sgd(schedules.exponential_decay(1.0, 1, 0.5))
    w = fnp.zeros(1, dtype=fnp.float64)
    state = tx.init(w)
    steps = []
    for _ in range(3):
        updates, state = tx.update(fnp.ones(1, dtype=fnp.float64), state, w)
        steps.append(-updates.item())
    assert steps == [1.0, 0.5, 0.25]
