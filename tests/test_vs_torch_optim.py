"""fnx.optim against PyTorch itself, when torch is importable (skipped otherwise): parameters
and every state entry after 10 steps for each optimizer and option combination (float64 and
float32), state_dicts loaded across the two libraries, and every scheduler's learning-rate
(and momentum) sequence. tests/test_optim.py and tests/test_lr_scheduler.py check the same
against NumPy references without PyTorch."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fnx.numpy as fnp  # noqa: E402
from fnx import optim  # noqa: E402
from fnx.optim import lr_scheduler as FL  # noqa: E402

TL = torch.optim.lr_scheduler

CASES = [
    ("SGD", dict(lr=0.1)), ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01, maximize=True)),
    ("Adam", dict(lr=0.01)), ("Adam", dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, maximize=True)),
    ("AdamW", dict(lr=0.01)), ("AdamW", dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, maximize=True)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, initial_accumulator_value=0.2,
                     eps=1e-6)),
    ("Adadelta", dict()), ("Adadelta", dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
    # the remaining options, and the implementation flags fnx accepts and ignores
    ("Adam", dict(lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, foreach=False)),
    ("AdamW", dict(lr=0.02, betas=(0.7, 0.95), eps=1e-5, maximize=True, capturable=False)),
    ("Adagrad", dict(lr=0.1, maximize=True, foreach=False)),
    ("Adadelta", dict(lr=0.8, eps=1e-4, differentiable=False)),
    ("SGD", dict(lr=0.05, momentum=0.5, nesterov=True, fused=None)),
]
SHAPES = [(3, 4), (5,), ()]


def _step_both(topt, tparams, fopt, fparams, noise):
    for step_noise in noise:
        for t, f, n in zip(tparams, fparams, step_noise, strict=True):
            t.grad = torch.tensor(n) + 0.5 * t.detach()
            f.grad = fnp.asarray(n) + 0.5 * f
        topt.step()
        fopt.step()


def _close(a, b, dtype):
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype
    rtol, atol = (1e-12, 1e-14) if dtype == "float64" else (1e-4, 1e-6)
    np.testing.assert_allclose(b, a, rtol=rtol, atol=atol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, kwargs", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_optimizer_matches_torch(name, kwargs, dtype):
    rng = np.random.default_rng(0)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    noise = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(10)]
    tparams = [torch.tensor(x, requires_grad=True) for x in init]
    fparams = [fnp.asarray(x) for x in init]
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    fopt = getattr(optim, name)(fparams, **kwargs)
    _step_both(topt, tparams, fopt, fparams, noise)
    for t, f in zip(tparams, fparams, strict=True):
        _close(t.detach().numpy(), f, dtype)
        tstate, fstate = topt.state[t], fopt.state[f]
        assert list(tstate) == list(fstate)
        for key in tstate:
            _close(tstate[key].numpy(), fstate[key], dtype)


@pytest.mark.parametrize("name, kwargs", [CASES[2], CASES[6], CASES[10], CASES[13]],
                         ids=["SGD", "Adam", "RMSprop", "Adagrad"])
def test_state_dicts_cross_between_libraries(name, kwargs):
    rng = np.random.default_rng(1)
    init = [rng.standard_normal(s) for s in SHAPES]
    noise = [[rng.standard_normal(s) for s in SHAPES] for _ in range(8)]
    tparams = [torch.tensor(x, requires_grad=True) for x in init]
    fparams = [fnp.asarray(x) for x in init]
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    fopt = getattr(optim, name)(fparams, **kwargs)
    _step_both(topt, tparams, fopt, fparams, noise[:4])
    # swap the states: torch's into fnx, fnx's (as NumPy arrays) into torch
    fopt.load_state_dict(topt.state_dict())
    sd = fopt.state_dict()
    sd = {"state": {i: {k: torch.tensor(np.asarray(v)) for k, v in s.items()}
                    for i, s in sd["state"].items()},
          "param_groups": sd["param_groups"]}
    topt.load_state_dict(sd)
    _step_both(topt, tparams, fopt, fparams, noise[4:])
    for t, f in zip(tparams, fparams, strict=True):
        _close(t.detach().numpy(), f, "float64")


def _opt(lib, name, kwargs):
    lrs = [0.1, 0.2]
    if lib == "torch":
        return getattr(torch.optim, name)(
            [{"params": [torch.zeros(2, requires_grad=True)], "lr": lr} for lr in lrs], **kwargs)
    return getattr(optim, name)([{"params": [fnp.zeros(2)], "lr": lr} for lr in lrs], **kwargs)


SCHEDULERS = {
    "StepLR": ("SGD", {}, lambda L, o: L.StepLR(o, 4, gamma=0.5)),
    "MultiStepLR": ("SGD", {}, lambda L, o: L.MultiStepLR(o, [3, 7, 7, 20], gamma=0.3)),
    "ExponentialLR": ("SGD", {}, lambda L, o: L.ExponentialLR(o, 0.9)),
    "CosineAnnealingLR": ("SGD", {}, lambda L, o: L.CosineAnnealingLR(o, T_max=7, eta_min=0.01)),
    "WarmRestarts": ("SGD", {}, lambda L, o: L.CosineAnnealingWarmRestarts(o, 3, 2, 0.001)),
    "OneCycleLR": ("SGD", {"momentum": 0.9},
                   lambda L, o: L.OneCycleLR(o, max_lr=[1.0, 2.0], total_steps=31)),
    "OneCycleLR3": ("Adam", {}, lambda L, o: L.OneCycleLR(
        o, max_lr=1.0, total_steps=31, three_phase=True, anneal_strategy="linear",
        pct_start=0.25)),
    "CyclicLR": ("SGD", {"momentum": 0.9},
                 lambda L, o: L.CyclicLR(o, 0.01, 0.1, step_size_up=4, step_size_down=3)),
    "CyclicLR2": ("SGD", {"momentum": 0.9},
                  lambda L, o: L.CyclicLR(o, [0.01, 0.02], 0.1, 3, mode="triangular2")),
    "CyclicLRexp": ("Adam", {}, lambda L, o: L.CyclicLR(o, 0.01, 0.1, 3, mode="exp_range",
                                                        gamma=0.95)),
    "LinearLR": ("SGD", {}, lambda L, o: L.LinearLR(o, 0.2, 0.9, total_iters=9)),
    "ConstantLR": ("SGD", {}, lambda L, o: L.ConstantLR(o, factor=0.3, total_iters=6)),
    "PolynomialLR": ("SGD", {}, lambda L, o: L.PolynomialLR(o, total_iters=12, power=2.0)),
    "LambdaLR": ("SGD", {}, lambda L, o: L.LambdaLR(o, [lambda e: 0.9 ** e, lambda e: 1 / (1 + e)])),
    "MultiplicativeLR": ("SGD", {}, lambda L, o: L.MultiplicativeLR(o, lambda e: 0.95)),
    "SequentialLR": ("SGD", {}, lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, 0.1, total_iters=5), L.CosineAnnealingLR(o, T_max=10)], [5])),
    "ChainedScheduler": ("SGD", {}, lambda L, o: L.ChainedScheduler(
        [L.ConstantLR(o, 0.5, total_iters=4), L.ExponentialLR(o, 0.9), L.StepLR(o, 3, 0.7)])),
}


@pytest.mark.parametrize("case", list(SCHEDULERS))
def test_scheduler_matches_torch(case):
    name, kwargs, build = SCHEDULERS[case]
    seqs = []
    for lib, L in (("torch", TL), ("fnx", FL)):
        opt = _opt(lib, name, kwargs)
        sched = build(L, opt)
        key = "betas" if "betas" in opt.defaults else "momentum"
        seq = []
        for _ in range(31):
            momenta = [float(g[key][0] if key == "betas" else g[key]) for g in opt.param_groups]
            seq.append([*sched.get_last_lr(), *momenta])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch: "optimizer.step() before ..."
                opt.step()
                sched.step()
        seqs.append(np.array(seq, dtype=float))
    np.testing.assert_allclose(seqs[1], seqs[0], rtol=1e-14, atol=0)


@pytest.mark.parametrize("kwargs", [
    dict(patience=1),
    dict(mode="max", factor=0.5, patience=2, threshold=0.1, threshold_mode="abs", cooldown=2,
         min_lr=0.01),
])
def test_reduce_lr_on_plateau_matches_torch(kwargs):
    metrics = [1.0, 0.9, 0.95, 0.97, 0.96, 0.5, 0.6, 0.7, 0.8, 0.2] * 3
    seqs = []
    for lib, L in (("torch", TL), ("fnx", FL)):
        opt = _opt(lib, "SGD", {})
        sched = L.ReduceLROnPlateau(opt, **kwargs)
        seq = []
        for m in metrics:
            sched.step(m)
            seq.append(sched.get_last_lr())
        seqs.append(seq)
    assert seqs[0] == seqs[1]


@pytest.mark.parametrize("name, kwargs", [CASES[1], CASES[6], CASES[8], CASES[10], CASES[13],
                                          CASES[15]],
                         ids=["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_complex_parameters_match_torch(name, kwargs):
    rng = np.random.default_rng(3)

    def cplx():
        return rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))

    init, noise = [cplx()], [[cplx()] for _ in range(10)]
    tparams = [torch.tensor(init[0], requires_grad=True)]
    fparams = [fnp.asarray(init[0])]
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    fopt = getattr(optim, name)(fparams, **kwargs)
    _step_both(topt, tparams, fopt, fparams, noise)
    _close(tparams[0].detach().numpy(), fparams[0], "float64")
    for key, value in topt.state[tparams[0]].items():
        _close(value.numpy(), fopt.state[fparams[0]][key], "float64")


GROUP_CASES = [
    ("SGD", dict(lr=0.1), [dict(momentum=0.9, nesterov=True), dict(lr=0.01, weight_decay=0.1)]),
    ("Adam", dict(lr=0.01), [dict(amsgrad=True), dict(betas=(0.5, 0.6), weight_decay=0.2)]),
    ("AdamW", dict(lr=0.01), [dict(weight_decay=0.5), dict(lr=0.03, maximize=True)]),
    ("RMSprop", dict(lr=0.01), [dict(centered=True), dict(momentum=0.5, alpha=0.9)]),
    ("Adagrad", dict(lr=0.1), [dict(lr_decay=0.1), dict(initial_accumulator_value=0.5)]),
    ("Adadelta", dict(), [dict(rho=0.5), dict(lr=0.3, weight_decay=0.1)]),
]


@pytest.mark.parametrize("name, defaults, options", GROUP_CASES,
                         ids=[c[0] for c in GROUP_CASES])
def test_parameter_groups_closure_and_added_groups_match_torch(name, defaults, options):
    """Per-group options, ``step(closure)`` (its loss returned, the gradients it sets used), a
    group added after 5 steps, and ``zero_grad(set_to_none=False)`` zeroing in place."""
    rng = np.random.default_rng(2)
    init = [rng.standard_normal(s) for s in [(3,), (2, 2), (3,)]]
    target = rng.standard_normal(3)
    libs = {}
    for lib in ("torch", "fnx"):
        if lib == "torch":
            params = [torch.tensor(x, requires_grad=True) for x in init]
            groups = [{"params": [params[0]], **options[0]}, {"params": [params[1]], **options[1]}]
            opt = getattr(torch.optim, name)(groups, **defaults)
        else:
            params = [fnp.asarray(x).requires_grad_() for x in init]
            groups = [{"params": [params[0]], **options[0]}, {"params": [params[1]], **options[1]}]
            opt = getattr(optim, name)(groups, **defaults)
        libs[lib] = (params, opt)
    tgt = {"torch": torch.tensor(target), "fnx": fnp.asarray(target)}
    for step in range(10):
        if step == 5:
            for lib, (params, opt) in libs.items():
                opt.add_param_group({"params": [params[2]], **options[0]})
        losses = {}
        for lib, (params, opt) in libs.items():
            def closure(params=params, opt=opt, lib=lib):
                opt.zero_grad(set_to_none=(step % 2 == 0))
                loss = ((params[0] - tgt[lib]) ** 2).sum() + (params[1] ** 3).sum() + \
                    (params[2] * params[0]).sum()
                loss.backward()
                return loss
            losses[lib] = float(opt.step(closure).detach())
        assert losses["torch"] == pytest.approx(losses["fnx"], rel=1e-12)
    for t, f in zip(*(libs[lib][0] for lib in ("torch", "fnx")), strict=True):
        _close(t.detach().numpy(), f, "float64")
        _close(t.grad.numpy(), f.grad, "float64")
    assert [{k: v for k, v in g.items() if k != "params"} for g in libs["fnx"][1].param_groups] \
        == [{k: v for k, v in g.items() if k != "params"} for g in libs["torch"][1].param_groups]
