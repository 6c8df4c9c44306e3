"""The whole PyTorch-style training step compiled (fnx.compile / fnx.jit over stateful code,
fnx/core/state.py): every compiled trajectory must equal the eager one step for step."""


import copy
import functools

import numpy as np
import pytest

import fnx
from fnx import nn, optim
from fnx.core.errors import ConcretizationError, FnxError


def _params(model):
    return [p.numpy().copy() for p in model.parameters()]


def _assert_same(a, b, rtol=2e-5, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def _mlp(dropout=0.0, batchnorm=False):
    # no bias before BatchNorm: its gradient is rounding noise, which Adagrad-like updates
    # (g / sqrt(sum g^2)) turn into full-size steps of either sign
    layers = [nn.Linear(5, 16, bias=not batchnorm)]
    if batchnorm:
        layers.append(nn.BatchNorm1d(16))
    layers += [nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


def _data(n=24, seed=1):
    rng = np.random.default_rng(seed)
    x = fnx.tensor(rng.normal(size=(n, 5)).astype(np.float32))
    y = fnx.tensor(rng.integers(0, 3, size=n))
    return x, y


def _step_for(model, opt, sched=None, criterion=nn.functional.cross_entropy):
    """The PyTorch-style training step the tests compile (and run eagerly to compare)."""
    def step(x, y):
        opt.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        return loss

    return step


OPTIMIZERS = {
    "sgd": lambda ps: optim.SGD(ps, lr=0.1),
    "sgd_momentum_nesterov_wd": lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True,
                                                     weight_decay=1e-3),
    "adam": lambda ps: optim.Adam(ps, lr=1e-2),
    "adam_amsgrad": lambda ps: optim.Adam(ps, lr=1e-2, amsgrad=True, weight_decay=1e-3),
    "adamw": lambda ps: optim.AdamW(ps, lr=1e-2),
    "rmsprop_centered_momentum": lambda ps: optim.RMSprop(ps, lr=1e-3, centered=True,
                                                          momentum=0.5),
    "adagrad": lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=1e-3),
    "adadelta": lambda ps: optim.Adadelta(ps, lr=1.0),
}


def _train(make_opt, compiled, steps=5, dropout=0.2, batchnorm=True, schedule=True, seed=0):
    fnx.manual_seed(seed)
    model = _mlp(dropout, batchnorm)
    opt = make_opt(model.parameters())
    sched = optim.lr_scheduler.StepLR(opt, 2, 0.5) if schedule else None
    x, y = _data()
    step = _step_for(model, opt, sched, nn.CrossEntropyLoss())
    run = fnx.compile(step) if compiled else step
    losses = [float(run(x, y)) for _ in range(steps)]
    return dict(losses=losses, params=_params(model), model=model, opt=opt, sched=sched,
                run=run, buffers=[b.numpy().copy() for b in model.buffers()])


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_compiled_step_equals_eager_step_for_every_optimizer(name):
    eager = _train(OPTIMIZERS[name], compiled=False)
    fast = _train(OPTIMIZERS[name], compiled=True)
    np.testing.assert_allclose(fast["losses"], eager["losses"], rtol=2e-5)
    _assert_same(fast["params"], eager["params"])
    _assert_same(fast["buffers"], eager["buffers"])  # BatchNorm running statistics
    # the optimizer's state, the gradients and the scheduler are left as the eager step leaves
    for pe, pf in zip(eager["model"].parameters(), fast["model"].parameters()):
        np.testing.assert_allclose(pf.grad.numpy(), pe.grad.numpy(), rtol=2e-5, atol=1e-7)
        se, sf = eager["opt"].state[pe], fast["opt"].state[pf]
        assert set(se) == set(sf)
        for key in se:
            np.testing.assert_allclose(np.asarray(sf[key]), np.asarray(se[key]), rtol=2e-5,
                                       atol=1e-7)
    assert fast["sched"].get_last_lr() == eager["sched"].get_last_lr()
    assert fast["sched"].last_epoch == eager["sched"].last_epoch
    # the first call traces with no gradients yet, the second with them; then no re-trace
    info = fast["run"].cache_info()
    assert info.traces == 2, info.misses


def test_learning_rate_changes_do_not_retrace():
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()

    step = fnx.compile(_step_for(model, opt))

    step(x, y)
    step(x, y)
    before = _params(model)
    opt.param_groups[0]["lr"] = 0.0  # must be seen without a re-trace
    step(x, y)
    _assert_same(_params(model), before)
    opt.param_groups[0]["lr"] = 0.5
    step(x, y)
    assert step.cache_info().traces == 2


def test_train_eval_and_requires_grad_changes_retrace_with_a_reason():
    model = _mlp(dropout=0.5)
    opt = optim.SGD(model.parameters(), lr=0.1)
    x, y = _data()

    step = fnx.compile(_step_for(model, opt))

    step(x, y)
    step(x, y)
    model.eval()
    step(x, y)
    assert any("training changed" in m for m in step.cache_info().misses)
    model.train()
    traces = step.cache_info().traces
    step(x, y)  # the train-mode program is kept
    assert step.cache_info().traces == traces
    model[0].weight.requires_grad_(False)
    frozen = model[0].weight.numpy().copy()
    step(x, y)
    assert any("requires_grad" in m for m in step.cache_info().misses)
    np.testing.assert_array_equal(model[0].weight.numpy(), frozen)


def test_model_and_optimizer_as_arguments():
    fnx.manual_seed(3)
    model = _mlp(dropout=0.1, batchnorm=True)
    ref = _mlp(dropout=0.1, batchnorm=True)
    ref.load_state_dict(model.state_dict())
    opt, ref_opt = optim.Adam(model.parameters(), lr=1e-2), optim.Adam(ref.parameters(), lr=1e-2)
    x, y = _data()

    def step(model, opt, x, y):
        return _step_for(model, opt)(x, y)

    fast = fnx.jit(step)
    fnx.manual_seed(7)
    got = [float(fast(model, opt, x, y)) for _ in range(4)]
    fnx.manual_seed(7)
    want = [float(step(ref, ref_opt, x, y)) for _ in range(4)]
    np.testing.assert_allclose(got, want, rtol=2e-5)
    _assert_same(_params(model), _params(ref))
    _assert_same([b.numpy() for b in model.buffers()], [b.numpy() for b in ref.buffers()])
    assert fast.cache_info().traces == 2


def test_eager_and_compiled_steps_interleave_with_identical_trajectories():
    def run(pattern):
        fnx.manual_seed(0)
        model = _mlp(dropout=0.3, batchnorm=True)
        opt = optim.Adam(model.parameters(), lr=1e-2)
        sched = optim.lr_scheduler.ExponentialLR(opt, 0.9)
        x, y = _data()

        step = _step_for(model, opt, sched)
        fast = fnx.compile(step)
        losses = [float((fast if c else step)(x, y)) for c in pattern]
        return losses, _params(model), sched.get_last_lr()

    mixed = run([1] * 4 + [0] + [1] * 3 + [0, 0] + [1])
    eager = run([0] * 11)
    np.testing.assert_allclose(mixed[0], eager[0], rtol=2e-5)
    _assert_same(mixed[1], eager[1])
    assert mixed[2] == pytest.approx(eager[2])


def test_gradient_accumulation_across_compiled_calls():
    def run(compiled):
        fnx.manual_seed(0)
        model = _mlp()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = _data(32)

        def accumulate(x, y):
            loss = nn.functional.cross_entropy(model(x), y) / 2
            loss.backward()
            return loss

        def update():
            opt.step()
            opt.zero_grad()
            return fnx.zeros(())

        acc = fnx.compile(accumulate) if compiled else accumulate
        upd = fnx.compile(update) if compiled else update
        for _ in range(3):
            acc(x[:16], y[:16])
            acc(x[16:], y[16:])
            upd()
        return _params(model)

    _assert_same(run(True), run(False))


def test_dropout_draws_fresh_numbers_every_call_and_manual_seed_reproduces():
    drop = nn.Dropout(0.5)
    f = fnx.compile(lambda x: drop(x))
    fnx.manual_seed(0)
    a, b = f(fnx.ones(64)).numpy(), f(fnx.ones(64)).numpy()
    assert not np.array_equal(a, b)
    fnx.manual_seed(0)
    np.testing.assert_array_equal(f(fnx.ones(64)).numpy(), a)
    fnx.manual_seed(0)
    np.testing.assert_array_equal(drop(fnx.ones(64)).numpy(), a)  # eager draws the same


def test_compiled_module_forward_with_eager_backward():
    fnx.manual_seed(0)
    model = _mlp(batchnorm=True)
    ref = _mlp(batchnorm=True)
    ref.load_state_dict(model.state_dict())
    fast = fnx.compile(model)
    assert isinstance(fast, nn.Module)
    assert [id(p) for p in fast.parameters()] == [id(p) for p in model.parameters()]
    x, y = _data()
    for m in (fast, ref):
        loss = nn.functional.cross_entropy(m(x), y)
        loss.backward()
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-5, atol=1e-7)
    _assert_same([b.numpy() for b in model.buffers()], [b.numpy() for b in ref.buffers()])
    fast.eval()
    ref.eval()
    np.testing.assert_allclose(fast(x).numpy(), ref(x).numpy(), rtol=1e-5, atol=1e-6)
    assert list(fast.state_dict()) == list(model.state_dict())


LAYERS = {
    "conv_pool_bn": lambda: (nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4),
                                           nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                           nn.Linear(16, 3)), (6, 2, 4, 4)),
    "conv1d_avgpool_groupnorm": lambda: (nn.Sequential(nn.Conv1d(2, 4, 3), nn.GroupNorm(2, 4),
                                                       nn.AvgPool1d(2), nn.Flatten(),
                                                       nn.Linear(12, 3)), (6, 2, 8)),
    "layernorm_gelu": lambda: (nn.Sequential(nn.Linear(5, 8), nn.LayerNorm(8), nn.GELU(),
                                             nn.Linear(8, 3)), (6, 5)),
}


class _Seq(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.emb = nn.Embedding(7, 6, padding_idx=0)
        if kind == "lstm":
            self.body = nn.LSTM(6, 8, batch_first=True)
        elif kind == "gru":
            self.body = nn.GRU(6, 8, batch_first=True, bidirectional=True)
        else:
            self.body = nn.TransformerEncoder(
                nn.TransformerEncoderLayer(6, 2, 12, dropout=0.1, batch_first=True), 1)
        self.head = nn.Linear({"gru": 16, "lstm": 8}.get(kind, 6), 3)

    def forward(self, tokens):
        h = self.body(self.emb(tokens))
        h = h[0] if isinstance(h, tuple) else h
        return self.head(h.mean(axis=1))


@pytest.mark.parametrize("kind", ["lstm", "gru", "transformer"])
def test_sequence_models_compiled_step_equals_eager(kind):
    def run(compiled):
        fnx.manual_seed(0)
        model = _Seq(kind)
        # SGD: attention's key bias has a zero gradient up to rounding, which Adam's
        # normalisation would turn into full-size steps of either sign
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        tokens = fnx.tensor(np.random.default_rng(0).integers(0, 7, size=(4, 5)))
        y = fnx.tensor([0, 1, 2, 1])

        step = _step_for(model, opt)
        f = fnx.compile(step) if compiled else step
        return [float(f(tokens, y)) for _ in range(3)], _params(model)

    fast, eager = run(True), run(False)
    np.testing.assert_allclose(fast[0], eager[0], rtol=5e-5)
    _assert_same(fast[1], eager[1], rtol=5e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_stacks_compiled_step_equals_eager(name):
    def run(compiled):
        fnx.manual_seed(0)
        model, shape = LAYERS[name]()
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        x = fnx.tensor(np.random.default_rng(0).normal(size=shape).astype(np.float32))
        y = fnx.tensor([0, 1, 2, 0, 1, 2])

        step = _step_for(model, opt)
        f = fnx.compile(step) if compiled else step
        return [float(f(x, y)) for _ in range(3)], _params(model), \
            [b.numpy().copy() for b in model.buffers()]

    fast, eager = run(True), run(False)
    np.testing.assert_allclose(fast[0], eager[0], rtol=5e-5)
    _assert_same(fast[1], eager[1], rtol=5e-5, atol=1e-6)
    _assert_same(fast[2], eager[2], rtol=5e-5, atol=1e-6)


def test_reduce_lr_on_plateau_gets_the_compiled_loss():
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.ReduceLROnPlateau(opt, patience=0, factor=0.5)
    x, y = _data()

    @fnx.compile
    def step(x, y):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) * 0 + 1.0  # never improves
        loss.backward()
        opt.step()
        sched.step(loss)
        return loss

    for _ in range(3):
        step(x, y)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.5 ** 2)


def test_reading_a_traced_value_in_python_names_the_line():
    model = _mlp()
    x, y = _data()

    @fnx.compile
    def step(x, y):
        loss = nn.functional.cross_entropy(model(x), y)
        if loss.item() > 0:  # needs the value while tracing
            return loss
        return -loss

    with pytest.raises(ConcretizationError, match=r"test_compile.py:\d+.*static_argnums"):
        step(x, y)


def test_scheduler_step_before_optimizer_step_is_an_error():
    model = _mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    sched = optim.lr_scheduler.StepLR(opt, 1)
    x, y = _data()

    @fnx.compile
    def step(x, y):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        sched.step()
        opt.step()
        return fnx.zeros(())

    with pytest.raises(FnxError, match="scheduler.step\\(\\) after optimizer.step\\(\\)"):
        step(x, y)


def test_no_traced_value_is_left_in_user_objects_after_an_error():
    model = _mlp(batchnorm=True)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x, y = _data()

    @fnx.compile
    def step(x, y):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        step(x, y)
    for p in model.parameters():
        assert type(p) is nn.Parameter or type(p) is fnx.Array
        assert p.grad is None
    for b in model.buffers():
        assert type(b) is fnx.Array
    assert len(opt.state) == 0 or all(not s for s in opt.state.values())
    model(x)  # still usable eagerly


def _layer_groups():
    from test_nn_layers import GROUPS, _inputs, _randomize

    return GROUPS, _inputs, _randomize


@pytest.mark.parametrize("name", sorted(_layer_groups()[0]))
def test_every_layer_group_compiled_step_equals_eager(name):
    """Each layer family of tests/test_nn_layers.py (float64) trained two SGD steps by the
    compiled PyTorch-style step and eagerly: the same parameters, gradients and buffers."""
    import copy

    groups, inputs, randomize = _layer_groups()
    factory, shapes = groups[name]
    module = randomize(factory())
    if not list(module.parameters()):
        pytest.skip("no parameters to train")
    xs = inputs(shapes)
    with fnx.no_grad():
        shape = copy.deepcopy(module)(*xs).shape
    ct = fnx.tensor(np.random.default_rng(1).normal(size=shape))
    twin = copy.deepcopy(module)

    def make_step(m):
        opt = optim.SGD(m.parameters(), lr=0.01, momentum=0.5)

        def step(*args):
            opt.zero_grad()
            loss = (m(*args) * ct).sum()
            loss.backward()
            opt.step()
            return loss

        return step

    fast, slow = fnx.compile(make_step(module)), make_step(twin)
    for seed in (3,):  # one step: the second would only re-trace with gradients present
        fnx.manual_seed(seed)
        a = float(fast(*xs))
        fnx.manual_seed(seed)
        b = float(slow(*xs))
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12)
    for (k, p), q in zip(module.named_parameters(), twin.parameters()):
        np.testing.assert_allclose(p.numpy(), q.numpy(), rtol=1e-9, atol=1e-12, err_msg=k)
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-9, atol=1e-12)
    for (k, b), c in zip(module.named_buffers(), twin.buffers()):
        np.testing.assert_allclose(np.asarray(b), np.asarray(c), rtol=1e-9, atol=1e-12,
                                   err_msg=k)


# --- found by an adversarial tester: each compiled vs the same eager code ---------------------


def _both(make, body, calls=4, between=None, rtol=2e-5):
    """Run ``body(objs)`` ``calls`` times eagerly and compiled on twin setups from ``make()``
    (``between(objs, i)`` runs eagerly before call i); return both parameter lists."""
    results = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        objs = make()
        step = fnx.compile(lambda *a: body(objs, *a)) if compiled else \
            (lambda *a: body(objs, *a))
        x, y = _data()
        for i in range(calls):
            if between is not None:
                between(objs, i)
            step(x, y)
        results.append([p.numpy().copy() for p in objs["model"].parameters()])
    _assert_same(results[1], results[0], rtol=rtol)
    return results


def _standard(objs, x, y):
    return _step_for(objs["model"], objs["opt"])(x, y)


def test_optimizer_load_state_dict_and_add_param_group_between_calls():
    def make():
        model = nn.Sequential(nn.Linear(5, 4), nn.Linear(4, 3))
        opt = optim.Adam(model[0].parameters(), lr=1e-2)
        return {"model": model, "opt": opt, "saved": None}

    def between(objs, i):
        if i == 1:
            objs["saved"] = copy.deepcopy(objs["opt"].state_dict())
        if i == 2:
            objs["opt"].add_param_group({"params": list(objs["model"][1].parameters()),
                                         "lr": 0.05})
        if i == 3:
            objs["opt"].load_state_dict(objs["saved"] | {"param_groups": objs["opt"]
                                                         .state_dict()["param_groups"]})

    _both(make, _standard, calls=5, between=between)


def test_zero_grad_without_none_and_gradient_clipping_inside_the_step():
    def make():
        model = _mlp()
        return {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1, momentum=0.9)}

    def body(objs, x, y):
        objs["opt"].zero_grad(set_to_none=False)
        nn.functional.cross_entropy(objs["model"](x), y).backward()
        nn.utils.clip_grad_norm_(objs["model"].parameters(), 0.05)
        nn.utils.clip_grad_value_(objs["model"].parameters(), 0.01)
        objs["opt"].step()
        return fnx.zeros(())

    _both(make, body)


def test_plain_attributes_replaced_layers_and_lr_reads_are_seen():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.head = nn.Linear(5, 8), nn.Linear(8, 3)
            self.temperature = 1.0

        def forward(self, x):
            return self.head(fnx.tanh(self.body(x))) / self.temperature

    def make():
        model = Net()
        opt = optim.SGD(model.parameters(), lr=0.1)
        return {"model": model, "opt": opt,
                "sched": optim.lr_scheduler.ExponentialLR(opt, 0.5)}

    def body(objs, x, y):
        objs["opt"].zero_grad()
        nn.functional.cross_entropy(objs["model"](x), y).backward()
        lr = objs["opt"].param_groups[0]["lr"]  # hand-written decay with the scheduled rate
        with fnx.no_grad():
            for p in objs["model"].parameters():
                p.mul_(1 - lr * 0.1)
        objs["opt"].step()
        objs["sched"].step()
        return fnx.zeros(())

    def between(objs, i):
        if i == 2:
            objs["model"].temperature = 2.0

    _both(make, body, calls=4, between=between)


def test_compiled_module_sees_a_replaced_head_and_eval_calls():
    fnx.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    fast = fnx.compile(model)
    x, _ = _data()
    fast(x)
    model.eval()
    for _ in range(3):
        np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)
    model[2] = nn.Linear(8, 2)
    assert fast(x).shape == (24, 2)
    np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-5, atol=1e-6)


def test_backward_hooks_retain_grad_and_a_gradient_penalty_compile():
    def make():
        model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
        model[2].register_full_backward_hook(lambda m, gi, go: (gi[0] * 3,))
        return {"model": model, "opt": optim.SGD(model.parameters(), lr=0.1)}

    def body(objs, x, y):
        model = objs["model"]
        objs["opt"].zero_grad()
        xi = x.detach().requires_grad_(True)
        h = model[1](model[0](xi))
        h.retain_grad()
        out = model[2](h)
        (g,) = fnx.autograd.grad(out.sum(), xi, create_graph=True)
        loss = nn.functional.cross_entropy(out, y) + ((g ** 2).sum(axis=1) - 1).mean() ** 2
        loss.backward()
        assert h.grad is not None and h.grad.shape == h.shape
        objs["opt"].step()
        return loss

    _both(make, body, calls=3, rtol=1e-4)  # float32 parameters grow to ~1e2 here


def test_guides_custom_function_with_item_assignment_in_backward():
    class MyReLU(fnx.autograd.Function):
        @staticmethod
        def forward(ctx, input):
            ctx.save_for_backward(input)
            return input.clamp(min=0)

        @staticmethod
        def backward(ctx, grad_output):
            (input,) = ctx.saved_tensors
            grad_input = grad_output.clone()
            grad_input[input < 0] = 0  # the guide's code: in place on a traced value
            return grad_input, None  # a trailing None, as PyTorch allows

    x = fnx.tensor([-1.0, 2.0, -3.0, 4.0], requires_grad=True)
    MyReLU.apply(x).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 0.0, 1.0]
    g = fnx.jit(fnx.grad(lambda v: (MyReLU.apply(v) * v).sum()))(fnx.tensor([-1.0, 2.0]))
    assert g.tolist() == [0.0, 4.0]


def test_in_place_ops_on_intermediates_compile_and_arguments_stay_errors():
    def f(x):
        h = x * 2
        h.relu_()
        h[0] = 5.0
        return h

    x = fnx.tensor([-1.0, 2.0, -3.0])
    assert fnx.jit(f)(x).tolist() == f(x).tolist() == [5.0, 4.0, 0.0]
    with pytest.raises(fnx.core.errors.TraceError, match="zero_: in-place update"):
        fnx.jit(lambda a: a.zero_())(x)


def test_batchnorm_closed_over_by_grad_inside_jit_updates_its_statistics():
    fnx.manual_seed(0)
    bn, x = nn.BatchNorm1d(3), fnx.randn(6, 3)
    twin = copy.deepcopy(bn)
    fnx.jit(lambda v: fnx.grad(lambda v: bn(v).sum())(v))(x)
    twin(x)
    np.testing.assert_allclose(bn.running_mean.numpy(), twin.running_mean.numpy(), rtol=1e-6)
    assert type(bn.running_var) is fnx.Array


def test_compile_specializes_python_bools_and_ints_as_torch_compile():
    @fnx.compile
    def f(x, use_l2=False, n=2):
        for _ in range(n):
            x = x * 2
        return (x ** 2).sum() if use_l2 else x.sum()

    x = fnx.ones(3)
    assert [float(f(x)), float(f(x, use_l2=True)), float(f(x, True, 3)), float(f(x, n=1))] \
        == [12.0, 48.0, 192.0, 6.0]
    assert float(f(x, use_l2=True)) == 48.0 and f.cache_info().traces == 4


def test_jit_over_functional_call_traces_once():
    model = nn.Linear(3, 2)
    f = fnx.jit(lambda params, x: nn.functional_call(model, params, (x,)).sum())
    params, x = dict(model.named_parameters()), fnx.ones(4, 3)
    values = [float(f(params, x)) for _ in range(3)]
    assert f.cache_info().traces == 1, f.cache_info().misses
    assert values[0] == pytest.approx(float(model(x).sum()), rel=1e-6)


def test_same_seed_gives_bit_identical_weights_whatever_the_heap_layout():
    """Generated reductions once depended on where buffers sat in memory (LLVM's vectorized
    and scalar loop versions add in different orders); a CNN trained compiled and eagerly
    from one seed must give the same bytes with the heap perturbed differently."""
    def run(junk):
        keep = [np.empty(int(s), np.float32)
                for s in np.random.default_rng(junk).integers(1, 50000, 40)]
        fnx.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
        opt = optim.Adam(model.parameters(), 1e-2)
        rng = np.random.default_rng(1)
        x = fnx.tensor(rng.normal(size=(32, 1, 8, 8)).astype(np.float32))
        y = fnx.tensor(rng.integers(0, 10, 32))

        step = _step_for(model, opt)
        fast = fnx.compile(step)
        for _ in range(6):
            fast(x, y)
        step(x, y)
        del keep
        return b"".join(p.numpy().tobytes() for p in model.parameters())

    assert len({run(junk) for junk in range(3)}) == 1


def test_copies_and_detached_parameters_are_this_calls_values():
    """SAM/Lookahead keep ``p.clone()`` before the update, an EMA reads ``p.detach()`` after
    ``opt.step()``: a copy inside the step is the parameter's value at that point of this
    call (once baked in at trace time, or one in-place update behind)."""
    def run(compiled):
        fnx.manual_seed(0)
        model, ema = nn.Linear(3, 2), nn.Linear(3, 2)
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        w = model.weight

        def step(x):
            copies = [w.clone(), fnx.tensor(w), fnx.numpy.array(w), w.new_tensor(w),
                      w.detach().clone()]
            scratch = w.clone()
            scratch.add_(1.0)  # a copy updated in place leaves the parameter alone
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
            with fnx.no_grad():
                for pe, p in zip(ema.parameters(), model.parameters()):
                    pe.mul_(0.5).add_(p.detach() * 0.5)
            return copies + [scratch, w.detach() - copies[0]]

        f = fnx.compile(step) if compiled else step
        outs = [[o.numpy().copy() for o in f(fnx.ones(2, 3))] for _ in range(4)]
        return outs, _params(model) + _params(ema), f

    (got, got_params, f), (want, want_params, _) = run(True), run(False)
    for g, e in zip(got, want):
        _assert_same(g, e)
    _assert_same(got_params, want_params)
    assert f.cache_info().traces == 2, f.cache_info().misses


def test_a_detached_or_cloned_closed_over_array_is_re_read_under_jit():
    w = fnx.tensor([1.0, 2.0])
    f = fnx.jit(lambda x: w.clone() * x + w.detach())
    assert f(fnx.ones(2)).tolist() == [2.0, 4.0]
    w.mul_(5.0)
    assert f(fnx.ones(2)).tolist() == [10.0, 20.0]
    assert f.cache_info().traces == 1


@pytest.mark.parametrize("advance_first", [False, True])
def test_a_buffer_used_as_an_index_is_a_dynamic_index_not_baked_in(advance_first):
    """MoCo's queue: ``queue[ptr] = k`` with a 0-d buffer ``ptr`` advanced in the step. Once
    read as a Python int at trace time (a re-trace and an executable per pointer value), or,
    advanced before the write, a ConcretizationError."""
    class Queue(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("queue", fnx.zeros(5, 3))
            self.register_buffer("ptr", fnx.tensor(0))

        def forward(self, k):
            with fnx.no_grad():
                if advance_first:
                    self.ptr.copy_((self.ptr + 1) % 5)
                self.queue[self.ptr] = k
                last = self.queue[self.ptr - 1]  # a read through the pointer too
                if not advance_first:
                    self.ptr.copy_((self.ptr + 1) % 5)
            return last * 1.0

    def run(compiled):
        m = Queue()
        f = fnx.compile(m) if compiled else m
        outs = [f(fnx.ones(3) * i).numpy().copy() for i in range(1, 8)]
        return outs, m.queue.numpy().copy(), int(m.ptr), f

    got, want = run(True), run(False)
    for g, e in zip(got[0], want[0]):
        np.testing.assert_array_equal(g, e)
    np.testing.assert_array_equal(got[1], want[1])
    assert got[2] == want[2]
    assert got[3].cache_info().traces == 1, got[3].cache_info().misses


def test_gradient_accumulation_with_an_eager_update_every_k_calls_stops_tracing():
    """backward() compiled at every call, opt.step() + zero_grad() eagerly every 3rd: each
    cycle's first backward makes a new ``.grad``, which an identity guard re-traced once per
    cycle forever. Two traces (``.grad`` None / an array), values equal to eager."""
    def run(compiled):
        fnx.manual_seed(0)
        model = _mlp()
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = _data(12)
        grads = []

        def accumulate(x, y):
            loss = nn.functional.cross_entropy(model(x), y) / 3
            loss.backward()
            return loss

        acc = fnx.compile(accumulate) if compiled else accumulate
        for i in range(12):
            acc(x[i % 3 * 4:][:4], y[i % 3 * 4:][:4])
            grads.append(model[0].weight.grad.numpy().copy())
            if i % 3 == 2:
                opt.step()
                opt.zero_grad()
        return grads + _params(model), acc

    (got, acc), (want, _) = run(True), run(False)
    _assert_same(got, want)
    assert acc.cache_info().traces == 2, acc.cache_info().misses


def test_deepcopy_inside_a_compiled_step_copies_this_calls_value():
    """copy.deepcopy of a parameter (a snapshot before the update) or of a whole model inside
    a step copied the buffer the array had when the step was traced, and returned that value
    on every later call; a deepcopy of a traced value made a tracer no trace knew."""
    def snapshot_step(model, opt, x):
        w0 = copy.deepcopy(model.weight)
        snap = copy.deepcopy(model)
        loss = model(x).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        y = model(x) * 2
        z = copy.deepcopy(y.detach())  # traced when compiled: a copy independent of y
        z.add_(1)
        return (model.weight - w0).abs().sum(), (model(x) - snap(x)).abs().sum(), \
            (z - y).sum()

    x = fnx.tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32))
    results = []
    for compiled in (False, True):
        model = nn.Linear(3, 2)
        model.load_state_dict({"weight": fnx.ones((2, 3)), "bias": fnx.zeros(2)})
        opt = fnx.optim.SGD(model.parameters(), lr=0.1)
        step = functools.partial(snapshot_step, model, opt)
        step = fnx.compile(step) if compiled else step
        results.append([[float(v) for v in step(x)] for _ in range(3)])
    np.testing.assert_allclose(results[1], results[0], rtol=1e-5)
    assert results[0][0] == results[0][2]  # the same change each step (a fixed gradient)


def test_updates_through_data_inside_a_compiled_step():
    """WGAN's weight clipping after the update, ``p.data.clamp_(-c, c)``, and other updates
    through ``.data`` are untracked updates of the parameter in a compiled step as eagerly
    (they raised the leaf-in-place error there)."""
    def clipped_step(model, opt, x):
        loss = model(x).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        for p in model.parameters():
            p.data.clamp_(-0.3, 0.3)
        model[0].bias.data.mul_(0.5)
        return loss, model[0].weight.data.abs().max()

    x = fnx.tensor(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    runs = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
        opt = optim.SGD(model.parameters(), lr=0.5)
        step = functools.partial(clipped_step, model, opt)
        step = fnx.compile(step) if compiled else step
        runs.append([[float(v) for v in step(x)] for _ in range(4)]
                    + [np.asarray(p).tolist() for p in model.parameters()])
        assert all(p.requires_grad for p in model.parameters())
    np.testing.assert_allclose(np.concatenate([np.ravel(r) for r in runs[1][:4]]),
                               np.concatenate([np.ravel(r) for r in runs[0][:4]]), rtol=1e-5)
    for got, want in zip(runs[1][4:], runs[0][4:]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_a_kept_grad_behaves_as_eagerly(set_to_none):
    """``zero_grad()`` (set to None) + ``backward()`` gives ``.grad`` a new array each step, so
    a gradient kept from an earlier step keeps its values, compiled as eagerly (PyTorch's
    semantics); with ``set_to_none=False`` the same array is zeroed and accumulated into."""
    rng = np.random.default_rng(0)
    x = fnx.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    y = fnx.tensor(rng.integers(0, 3, 8))
    seen = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        model = fnx.nn.Linear(4, 3)
        opt = fnx.optim.SGD(model.parameters(), lr=0.1)

        def step(x, y):
            opt.zero_grad(set_to_none=set_to_none)
            loss = fnx.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        run = fnx.compile(step) if compiled else step
        for _ in range(3):
            run(x, y)
        kept = model.weight.grad
        before = np.array(kept)
        run(x, y)
        run(x, y)
        seen.append((kept is model.weight.grad, np.array_equal(np.asarray(kept), before)))
        if compiled:
            assert run.cache_info().traces == 2  # None -> arrays, then no re-trace
    assert seen[0] == seen[1] == ((False, True) if set_to_none else (True, False))
