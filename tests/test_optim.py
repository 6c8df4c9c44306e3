"""fnx.optim: the functional core (gradient transformations, aliases) and the PyTorch-style
classes, checked against NumPy implementations of PyTorch's documented algorithms, against
each other, across jit/vmap, on convergence problems, and through state_dict round trips."""

import copy
import math

import numpy as np
import pytest

import fnx
import fnx.nn
import fnx.numpy as fnp
from fnx import optim
from fnx.core.array import Array
from fnx.optim import optimizer as optimizer_mod


SHAPES = [(3, 4), (5,), ()]


def _problem(dtype="float64", steps=10, seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    noise = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return init, noise


def _gradient(noise, p):
    # the gradient depends on the parameter (a quadratic pull plus noise)
    return noise + 0.5 * p


def _torch_grad(noise, p, maximize, weight_decay):
    """The gradient as PyTorch's optimizers first transform it: negated with ``maximize``,
    then L2 weight decay added."""
    g = _gradient(noise, p)
    g = -g if maximize else g
    return g + weight_decay * p if weight_decay else g


# --- NumPy references: PyTorch's single-tensor algorithms (torch.optim docs) -------------------

def ref_sgd(init, noise, lr, momentum=0, dampening=0, weight_decay=0, nesterov=False,
            maximize=False):
    params = [p.copy() for p in init]
    bufs = [None] * len(params)
    for step_noise in noise:
        for i, p in enumerate(params):
            g = _torch_grad(step_noise[i], p, maximize, weight_decay)
            if momentum:
                bufs[i] = g.copy() if bufs[i] is None else momentum * bufs[i] + (1 - dampening) * g
                g = g + momentum * bufs[i] if nesterov else bufs[i]
            params[i] = p - lr * g
    return params


def ref_adam(init, noise, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False,
             maximize=False, decoupled=False):
    b1, b2 = betas
    params = [p.copy() for p in init]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    vmax = [np.zeros_like(p) for p in params]
    for t, step_noise in enumerate(noise, start=1):
        for i, p in enumerate(params):
            g = _torch_grad(step_noise[i], p, maximize, 0 if decoupled else weight_decay)
            if decoupled:
                p = p * (1 - lr * weight_decay)
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            vmax[i] = np.maximum(vmax[i], v[i])
            denom = np.sqrt((vmax[i] if amsgrad else v[i]) / (1 - b2 ** t)) + eps
            params[i] = p - lr * (m[i] / (1 - b1 ** t)) / denom
    return params


def ref_rmsprop(init, noise, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                centered=False, maximize=False):
    params = [p.copy() for p in init]
    sq = [np.zeros_like(p) for p in params]
    gavg = [np.zeros_like(p) for p in params]
    buf = [np.zeros_like(p) for p in params]
    for step_noise in noise:
        for i, p in enumerate(params):
            g = _torch_grad(step_noise[i], p, maximize, weight_decay)
            sq[i] = alpha * sq[i] + (1 - alpha) * g * g
            var = sq[i]
            if centered:
                gavg[i] = alpha * gavg[i] + (1 - alpha) * g
                var = sq[i] - gavg[i] ** 2
            step = g / (np.sqrt(var) + eps)
            if momentum:
                buf[i] = momentum * buf[i] + step
                step = buf[i]
            params[i] = p - lr * step
    return params


def ref_adagrad(init, noise, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
                eps=1e-10, maximize=False):
    params = [p.copy() for p in init]
    sums = [np.full_like(p, initial_accumulator_value) for p in params]
    for t, step_noise in enumerate(noise, start=1):
        for i, p in enumerate(params):
            g = _torch_grad(step_noise[i], p, maximize, weight_decay)
            clr = lr / (1 + (t - 1) * lr_decay)
            sums[i] = sums[i] + g * g
            params[i] = p - clr * g / (np.sqrt(sums[i]) + eps)
    return params


def ref_adadelta(init, noise, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, maximize=False):
    params = [p.copy() for p in init]
    sq = [np.zeros_like(p) for p in params]
    acc = [np.zeros_like(p) for p in params]
    for step_noise in noise:
        for i, p in enumerate(params):
            g = _torch_grad(step_noise[i], p, maximize, weight_decay)
            sq[i] = rho * sq[i] + (1 - rho) * g * g
            delta = np.sqrt(acc[i] + eps) / np.sqrt(sq[i] + eps) * g
            acc[i] = rho * acc[i] + (1 - rho) * delta * delta
            params[i] = p - lr * delta
    return params


def _adamw_ref(init, noise, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
               amsgrad=False, maximize=False):
    return ref_adam(init, noise, lr, betas, eps, weight_decay, amsgrad, maximize, decoupled=True)


CASES = [
    ("SGD", ref_sgd, dict(lr=0.1)),
    ("SGD", ref_sgd, dict(lr=0.1, momentum=0.9)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1)),
    ("SGD", ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01,
                          maximize=True)),
    ("Adam", ref_adam, dict(lr=0.01)),
    ("Adam", ref_adam, dict(lr=0.02, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.1)),
    ("Adam", ref_adam, dict(lr=0.01, amsgrad=True, maximize=True)),
    ("AdamW", _adamw_ref, dict(lr=0.01)),
    ("AdamW", _adamw_ref, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
    ("RMSprop", ref_rmsprop, dict(lr=0.01)),
    ("RMSprop", ref_rmsprop, dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.1)),
    ("RMSprop", ref_rmsprop, dict(lr=0.01, alpha=0.9, centered=True, maximize=True)),
    ("Adagrad", ref_adagrad, dict(lr=0.1)),
    ("Adagrad", ref_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.1,
                                  initial_accumulator_value=0.2, eps=1e-6)),
    ("Adadelta", ref_adadelta, dict()),
    ("Adadelta", ref_adadelta, dict(lr=0.5, rho=0.8, weight_decay=0.1, maximize=True)),
]


def _feed(opt, params, noise):
    for step_noise in noise:
        for p, n in zip(params, step_noise, strict=True):
            p.grad = _gradient(fnp.asarray(n), p)
        opt.step()


def _run_class(name, kwargs, init, noise):
    params = [fnp.asarray(p) for p in init]
    opt = getattr(optim, name)(params, **kwargs)
    _feed(opt, params, noise)
    return params, opt


@pytest.mark.parametrize("name, ref, kwargs", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_class_matches_numpy_reference(name, ref, kwargs):
    init, noise = _problem()
    params, _ = _run_class(name, kwargs, init, noise)
    for got, want in zip(params, ref(init, noise, **kwargs), strict=True):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name, ref, kwargs", [CASES[2], CASES[6], CASES[10], CASES[13]],
                         ids=["SGD", "Adam", "RMSprop", "Adagrad"])
def test_class_float32_matches_reference(name, ref, kwargs):
    init, noise = _problem("float32")
    params, opt = _run_class(name, kwargs, init, noise)
    want = ref([p.astype(np.float64) for p in init],
               [[n.astype(np.float64) for n in ns] for ns in noise], **kwargs)
    for got, w in zip(params, want, strict=True):
        assert got.dtype == np.float32
        np.testing.assert_allclose(np.asarray(got), w, rtol=2e-5, atol=2e-6)
    for state in opt.state.values():
        for key, value in state.items():
            assert value.dtype == (np.float32 if key != "step" else fnp.zeros(()).dtype)


# --- functional == class ----------------------------------------------------------------------

FUNCTIONAL = [
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.1),
     lambda: optim.sgd(0.05, 0.9, dampening=0.3, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, amsgrad=True, weight_decay=0.1),
     lambda: optim.adam(0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1), lambda: optim.adamw(0.01, weight_decay=0.1)),
    ("RMSprop", dict(lr=0.01, momentum=0.5, centered=True),
     lambda: optim.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False, centered=True,
                           momentum=0.5)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05),
     lambda: optim.adagrad(0.1, 0.0, 1e-10, eps_in_sqrt=False, lr_decay=0.05)),
    ("Adadelta", dict(rho=0.8), lambda: optim.adadelta(1.0, rho=0.8)),
]


@pytest.mark.parametrize("name, kwargs, make", FUNCTIONAL, ids=[f[0] for f in FUNCTIONAL])
def test_functional_alias_matches_class(name, kwargs, make):
    init, noise = _problem(steps=5)
    params, _ = _run_class(name, kwargs, init, noise)
    tx = make()
    tree = {"p": [fnp.asarray(p) for p in init]}
    state = tx.init(tree)
    for step_noise in noise:
        grads = {"p": [_gradient(fnp.asarray(n), p) for n, p in zip(step_noise, tree["p"])]}
        updates, state = tx.update(grads, state, tree)
        tree = optim.apply_updates(tree, updates)
    for got, want in zip(tree["p"], params, strict=True):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-12, atol=1e-14)


# --- jit and vmap ----------------------------------------------------------------------------

def _steps(tx, params, noise):
    state = tx.init(params)
    for n in noise:
        grads = fnx.tree.map(lambda a, p: _gradient(a, p), n, params)
        updates, state = tx.update(grads, state, params)
        params = optim.apply_updates(params, updates)
    return params, state


@pytest.mark.parametrize("make", [
    lambda: optim.chain(optim.clip_by_global_norm(1.0), optim.adam(0.1)),
    lambda: optim.chain(optim.clip(0.5), optim.sgd(optim.exponential_decay(0.1, 2, 0.5), 0.9,
                                                    nesterov=True)),
    lambda: optim.rmsprop(0.01, centered=True, momentum=0.9),
], ids=["clip-adam", "clip-sgd-schedule", "rmsprop"])
def test_jit_and_vmap_match_eager(make):
    tx = make()
    rng = np.random.default_rng(1)
    params = {"w": fnp.asarray(rng.standard_normal((4, 3))), "b": fnp.asarray(rng.standard_normal(3))}
    noise = [{"w": fnp.asarray(rng.standard_normal((4, 3))),
              "b": fnp.asarray(rng.standard_normal(3))} for _ in range(3)]
    eager, eager_state = _steps(tx, params, noise)
    jitted, jit_state = fnx.jit(lambda p, n: _steps(tx, p, n))(params, noise)
    for a, b in zip(fnx.tree.leaves((eager, eager_state)), fnx.tree.leaves((jitted, jit_state)),
                    strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-14)
    # a batch of three problems at once equals each solved alone
    batch = fnx.tree.map(lambda x: fnp.stack([x, 2 * x, -x]), params)
    batch_noise = fnx.tree.map(lambda x: fnp.stack([x, x, 3 * x]), noise)
    batched, _ = fnx.vmap(lambda p, n: _steps(tx, p, n))(batch, batch_noise)
    for k in range(3):
        alone, _ = _steps(tx, fnx.tree.map(lambda x: x[k], batch),
                          fnx.tree.map(lambda x: x[k], batch_noise))
        for a, b in zip(fnx.tree.leaves(alone), fnx.tree.leaves(batched), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b)[k], rtol=1e-12, atol=1e-14)


def test_state_counts_are_int32_and_hyperparameters_may_be_arrays():
    tx = optim.adam(fnp.asarray(0.1), b1=fnp.asarray(0.9))
    params = fnp.ones(3)
    _, state = _steps(tx, params, [fnp.ones(3)] * 2)
    adam_state = state[2]
    assert isinstance(adam_state, optim.ScaleByAdamState)
    assert adam_state.count.dtype == np.int32 and int(adam_state.count) == 2
    plain, _ = _steps(optim.adam(0.1), params, [fnp.ones(3)] * 2)
    np.testing.assert_allclose(np.asarray(_steps(tx, params, [fnp.ones(3)] * 2)[0]),
                               np.asarray(plain), rtol=1e-6)


def test_transformations_by_hand():
    g = fnp.asarray([3.0, -4.0], dtype=fnp.float64)
    p = fnp.asarray([1.0, 2.0], dtype=fnp.float64)
    assert optim.global_norm({"a": g, "b": [fnp.zeros(2)]}).item() == 5.0
    u, _ = optim.clip_by_global_norm(2.5).update(g, optim.EmptyState())
    np.testing.assert_allclose(np.asarray(u), [1.5, -2.0])
    u, _ = optim.clip_by_global_norm(10.0).update(g, optim.EmptyState())
    np.testing.assert_allclose(np.asarray(u), [3.0, -4.0])
    u, _ = optim.add_decayed_weights(0.5, mask=lambda params: [True, False]).update(
        [g, g], optim.EmptyState(), [p, p])
    np.testing.assert_allclose(np.asarray(u[0]), [3.5, -3.0])
    np.testing.assert_allclose(np.asarray(u[1]), [3.0, -4.0])
    with pytest.raises(ValueError, match="add_decayed_weights: this transformation reads the "
                                         "parameters"):
        optim.add_decayed_weights(0.1).update(g, optim.EmptyState())
    # trace: t = g at the first step, then decay * t + (1 - dampening) * g
    tx = optim.trace(0.5, dampening=0.2)
    state = tx.init(p)
    u1, state = tx.update(g, state)
    u2, state = tx.update(g, state)
    np.testing.assert_allclose(np.asarray(u1), [3.0, -4.0])
    np.testing.assert_allclose(np.asarray(u2), 0.5 * np.array([3.0, -4.0]) + 0.8 * np.array([3.0, -4.0]))
    with pytest.raises(ValueError, match="chain: the state has 1 entries for 2"):
        optim.chain(optim.scale(1.0), optim.scale(2.0)).update(g, (optim.EmptyState(),))


# --- convergence (optax's test problems) -------------------------------------------------------

def _minimize(tx, f, x0, n):
    def body(i, carry):
        x, s = carry
        u, s = tx.update(fnx.grad(f)(x), s, x)
        return optim.apply_updates(x, u), s

    return fnx.jit(lambda x: fnx.lax.fori_loop(0, n, body, (x, tx.init(x)))[0])(x0)


TARGET = np.array([1.0, -2.0, 3.0])


def _quadratic(x):
    return fnp.sum((x - fnp.asarray(TARGET)) ** 2)


def _rosenbrock(x):
    return (1.0 - x[0]) ** 2 + 100.0 * (x[1] - x[0] ** 2) ** 2


@pytest.mark.parametrize("tx", [
    optim.sgd(0.1, momentum=0.9), optim.adam(0.1), optim.adamw(0.1, weight_decay=0.0),
    optim.rmsprop(0.05), optim.adagrad(1.0), optim.adadelta(30.0, rho=0.95),
], ids=["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta"])
def test_converges_on_a_quadratic(tx):
    x = _minimize(tx, _quadratic, fnp.zeros(3, dtype=fnp.float64), 500)
    np.testing.assert_allclose(np.asarray(x), TARGET, atol=1e-2)


@pytest.mark.parametrize("tx, steps, tol", [
    (optim.sgd(1e-3, momentum=0.9), 3000, 1e-3), (optim.adam(0.05), 3000, 1e-3),
    (optim.adamw(0.05, weight_decay=0.0), 3000, 1e-3), (optim.rmsprop(3e-3), 5000, 1e-2),
], ids=["sgd", "adam", "adamw", "rmsprop"])
def test_converges_on_rosenbrock(tx, steps, tol):
    x = _minimize(tx, _rosenbrock, fnp.asarray([-1.0, 1.5], dtype=fnp.float64), steps)
    np.testing.assert_allclose(np.asarray(x), [1.0, 1.0], atol=tol)


# --- the stateful contract -------------------------------------------------------------------

def test_state_dict_round_trip_continues_identically():
    init, noise = _problem(steps=10)
    kwargs = dict(lr=0.01, amsgrad=True, weight_decay=0.1)
    params, opt = _run_class("Adam", kwargs, init, noise[:5])
    saved = copy.deepcopy(opt.state_dict())
    saved_params = [np.asarray(p).copy() for p in params]
    assert sorted(saved["state"]) == [0, 1, 2]
    assert list(saved["state"][0]) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert float(saved["state"][0]["step"]) == 5.0
    assert saved["param_groups"][0]["params"] == [0, 1, 2]
    _feed(opt, params, noise[5:])

    resumed = [fnp.asarray(p) for p in saved_params]
    opt2 = optim.Adam(resumed, lr=0.5)  # the loaded groups replace these options
    opt2.load_state_dict(saved)
    assert opt2.param_groups[0]["lr"] == 0.01 and opt2.param_groups[0]["params"][0] is resumed[0]
    _feed(opt2, resumed, noise[5:])
    for a, b in zip(params, resumed, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    # loading copies: the saved dict is not written by the resumed optimizer
    assert float(saved["state"][0]["step"]) == 5.0


def test_load_state_dict_checks_the_groups():
    opt = optim.SGD([fnp.ones(2), fnp.ones(3)], lr=0.1)
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="has 2 parameter groups, the optimizer 1"):
        opt.load_state_dict({"state": {}, "param_groups": sd["param_groups"] * 2})
    bad = copy.deepcopy(sd)
    bad["param_groups"][0]["params"] = [0]
    with pytest.raises(ValueError, match="group 0 has 1 parameters, the optimizer's has 2"):
        opt.load_state_dict(bad)


def test_load_state_dict_casts_and_accepts_numpy_state():
    p = fnp.ones(2, dtype=fnp.float32)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.load_state_dict({"state": {0: {"momentum_buffer": np.array([1.0, 2.0])}},
                         "param_groups": opt.state_dict()["param_groups"]})
    buf = opt.state[p]["momentum_buffer"]
    assert isinstance(buf, Array) and buf.dtype == np.float32
    p.grad = fnp.zeros(2, dtype=fnp.float32)
    opt.step()  # the loaded buffer counts as started: buf = 0.9 * buf + g
    np.testing.assert_allclose(np.asarray(p), [1 - 0.1 * 0.9, 1 - 0.1 * 1.8], rtol=1e-6)


def test_updates_in_place_and_every_holder_sees_them():
    w = fnp.ones(3)
    holder = {"weight": w}
    opt = optim.SGD([w], lr=0.5, momentum=0.9)
    w.grad = fnp.ones(3)
    version = w._version
    opt.step()
    assert holder["weight"] is w and w._version > version
    np.testing.assert_allclose(np.asarray(holder["weight"]), [0.5, 0.5, 0.5])
    buf = opt.state[w]["momentum_buffer"]
    opt.step()  # the state array is updated in place too
    assert opt.state[w]["momentum_buffer"] is buf
    np.testing.assert_allclose(np.asarray(buf), [1.9, 1.9, 1.9], rtol=1e-6)


def test_param_groups_skip_params_without_grad_and_use_group_options():
    a, b, c = fnp.ones(2), fnp.ones(2), fnp.ones(2)
    opt = optim.SGD([{"params": [a, b]}, {"params": c, "lr": 0.5}], lr=0.1)
    a.grad, c.grad = fnp.ones(2), fnp.ones(2)
    opt.step()
    np.testing.assert_allclose(np.asarray(a), [0.9, 0.9])
    np.testing.assert_allclose(np.asarray(b), [1.0, 1.0])  # no gradient: untouched
    np.testing.assert_allclose(np.asarray(c), [0.5, 0.5])
    d = fnp.ones(1)
    opt.add_param_group({"params": [d], "momentum": 0.9})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.9
    assert opt.state_dict()["param_groups"][2]["params"] == [3]


def test_zero_grad_and_closure():
    w = fnp.ones(2)
    opt = optim.SGD([w], lr=0.1)
    w.grad = fnp.ones(2)
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and np.asarray(w.grad).tolist() == [0.0, 0.0]
    opt.zero_grad()
    assert w.grad is None

    def closure():
        w.grad = 2 * w
        return fnp.sum(w * w)

    loss = opt.step(closure)
    assert loss.item() == 2.0
    np.testing.assert_allclose(np.asarray(w), [0.8, 0.8])


def test_changing_hyperparameters_does_not_retrace():
    w = fnp.ones(4)
    opt = optim.Adam([w], lr=0.1)
    for lr in (0.1, 0.05, 0.01, 0.001):
        opt.param_groups[0]["lr"] = lr
        w.grad = fnp.ones(4)
        opt.step()
    programs = [fn for key, fn in optimizer_mod._PROGRAMS.items()
                if key[0] is optim.Adam and key[2] == (("step", "exp_avg", "exp_avg_sq"),)]
    assert programs and all(fn.cache_info().traces <= 2 for fn in programs)  # f32 and f64
    info = [fn.cache_info() for fn in programs]
    assert sum(i.hits for i in info) >= 3


def test_tensor_learning_rate():
    w = fnp.ones(2)
    lr = fnp.asarray(0.5)
    opt = optim.SGD([w], lr=lr)
    w.grad = fnp.ones(2)
    opt.step()
    np.testing.assert_allclose(np.asarray(w), [0.5, 0.5])
    lr.fill_(0.25)  # the group holds the array: the next step reads the new value
    opt.step()
    np.testing.assert_allclose(np.asarray(w), [0.25, 0.25])


def test_required_hyperparameter_and_construction_errors():
    w = fnp.ones(2)
    with pytest.raises(ValueError, match="SGD got an empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="SGD can only optimize concrete fnx Arrays .* is list"):
        optim.SGD([[1.0, 2.0]], lr=0.1)
    with pytest.raises(TypeError, match="params should be an iterable of Arrays"):
        optim.SGD(w, lr=0.1)
    with pytest.raises(TypeError, match=r"params should be an iterable of Arrays or of dicts, "
                                        r"but got Linear; pass \[x\] or model.parameters\(\)"):
        optim.SGD(fnx.nn.Linear(2, 2), lr=0.1)
    with pytest.raises(ValueError, match="SGD can't optimize a non-leaf Array: parameter 1"):
        optim.SGD([w, fnx.ones(2, requires_grad=True) * 2], lr=0.1)
    with pytest.raises(TypeError, match="ordering of arrays in sets"):
        optim.SGD([{"params": {1, 2}}])
    with pytest.raises(ValueError, match="some parameters appear in more than one parameter group"):
        optim.SGD([{"params": [w]}, {"params": [w]}], lr=0.1)
    with pytest.raises(ValueError, match="didn't specify a value of required optimization "
                                         "parameter lr"):
        optim.Optimizer([w], {"lr": optim.required})
    with pytest.raises(ValueError, match="Invalid learning rate: -1"):
        optim.Adam([w], lr=-1)
    with pytest.raises(ValueError, match="Invalid beta parameter at index 1: 1.0"):
        optim.Adam([w], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="Nesterov momentum requires a momentum"):
        optim.SGD([w], nesterov=True)
    with pytest.raises(NotImplementedError, match="must implement step"):
        optim.Optimizer([w], {"lr": 0.1}).step()


def test_adagrad_state_exists_from_construction_and_defaults_match_pytorch():
    w = fnp.ones(2)
    opt = optim.Adagrad([w], initial_accumulator_value=0.3)
    assert float(opt.state[w]["step"]) == 0.0
    np.testing.assert_allclose(np.asarray(opt.state[w]["sum"]), [0.3, 0.3])
    assert optim.SGD([w]).defaults["lr"] == 1e-3
    assert optim.AdamW([w]).defaults["weight_decay"] == 1e-2
    assert optim.RMSprop([w]).defaults["alpha"] == 0.99
    assert optim.Adadelta([w]).defaults["lr"] == 1.0
    assert math.isclose(optim.Adagrad([w]).defaults["eps"], 1e-10)


def test_module_parameters_are_optimized_in_place():
    class Affine(fnx.nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = fnx.nn.Parameter(fnp.ones((2, 3)))
            self.bias = fnx.nn.Parameter(fnp.zeros(3))

    model = Affine()
    opt = optim.Adam(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = fnp.ones(p.shape)
    opt.step()
    np.testing.assert_allclose(np.asarray(model.weight), np.full((2, 3), 0.9), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(model.bias), np.full(3, -0.1), rtol=1e-6)
    assert isinstance(model.weight, fnx.nn.Parameter) and model.weight.requires_grad
    assert sorted(opt.state_dict()["state"]) == [0, 1]


@pytest.mark.parametrize("name, kwargs", [
    ("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01, amsgrad=True)),
    ("RMSprop", dict(centered=True)), ("Adagrad", dict(initial_accumulator_value=0.2)),
    ("Adadelta", {}),
])
def test_complex_parameters_update_as_real_pairs(name, kwargs):
    # PyTorch updates a complex parameter as view_as_real: (re, im) pairs, moments per part
    rng = np.random.default_rng(2)
    z = rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2))
    noise = [rng.standard_normal((3, 2)) + 1j * rng.standard_normal((3, 2)) for _ in range(5)]
    pairs = [np.stack([x.real, x.imag], -1) for x in [z, *noise]]
    cz, cr = fnp.asarray(z), fnp.asarray(pairs[0])
    opt_c, opt_r = getattr(optim, name)([cz], **kwargs), getattr(optim, name)([cr], **kwargs)
    for n, n_pairs in zip(noise, pairs[1:], strict=True):
        cz.grad = _gradient(fnp.asarray(n), cz)
        cr.grad = _gradient(fnp.asarray(n_pairs), cr)
        opt_c.step()
        opt_r.step()
    assert cz.dtype == np.complex128
    got = np.asarray(cz)
    np.testing.assert_allclose(np.stack([got.real, got.imag], -1), np.asarray(cr), rtol=1e-12)
    for key, value in opt_c.state[cz].items():
        if key != "step":
            v = np.asarray(value)
            np.testing.assert_allclose(np.stack([v.real, v.imag], -1),
                                       np.asarray(opt_r.state[cr][key]), rtol=1e-12)
