"""Arrays a forward sets as plain Module attributes inside a compiled step (fnx/core/state.py,
rebound attributes): AWD-LSTM's WeightDrop, a cached hidden state, a hand-written weight
normalization. The compiled step must equal the eager one call for call, leave each
attribute holding that call's value, and reach a steady state with no re-trace and no
compilation."""

import copy

import numpy as np
import pytest

import fnx
from fnx import nn, optim
from fnx.jit import cache, control_flow
from test_compile import _step_for


class WeightDrop(nn.Module):
    """AWD-LSTM's WeightDrop (torch's version, fnx spelling): the wrapped layer's weight is
    a dropped-out copy of a raw parameter, set as a plain attribute at every forward."""

    def __init__(self, module, p):
        super().__init__()
        self.module, self.p = module, p
        w = module.weight_hh_l0
        del module._parameters["weight_hh_l0"]
        self.weight_raw = nn.Parameter(w.detach().clone())

    def forward(self, *args):
        setattr(self.module, "weight_hh_l0",
                nn.functional.dropout(self.weight_raw, self.p, self.training))
        return self.module(*args)


class LanguageModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = WeightDrop(nn.LSTM(3, 4), 0.3)
        self.head = nn.Linear(4, 2)

    def forward(self, x):
        out, (h, c) = self.rnn(x)
        self.last_hidden = h.detach()  # cached for inspection, as many training scripts do
        return self.head(out)


def _batches(n, seed=0):
    rng = np.random.default_rng(seed)
    return [(fnx.tensor(rng.normal(size=(5, 2, 3)).astype(np.float32)),
             fnx.tensor(rng.normal(size=(5, 2, 2)).astype(np.float32))) for _ in range(n)]


def _train(compiled, as_argument=False, steps=6):
    fnx.manual_seed(0)
    model = LanguageModel()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(model, x, y):
        return _step_for(model, opt, criterion=nn.functional.mse_loss)(x, y)

    if as_argument:
        run = fnx.compile(step)
    else:
        inner = fnx.compile(lambda x, y: step(model, x, y)) if compiled else None
        run = (lambda m, x, y: inner(x, y)) if compiled else step
    fnx.manual_seed(1)
    losses, hiddens, weights, stats = [], [], [], []
    for i, (x, y) in enumerate(_batches(steps)):
        if i == 3:  # steady state from here on
            stats.append((dict(cache.STATS), dict(control_flow.STATS)))
        losses.append(float(run(model, x, y)))
        hiddens.append(model.last_hidden)  # references: each must keep its own call's value
        weights.append(model.rnn.module.weight_hh_l0.numpy().copy())
    stats.append((dict(cache.STATS), dict(control_flow.STATS)))
    info = (run if as_argument else inner).cache_info() if compiled else None
    return dict(losses=losses, hiddens=[h.numpy() for h in hiddens], weights=weights,
                params=[p.numpy().copy() for p in model.parameters()], info=info,
                stats=stats)


@pytest.mark.parametrize("as_argument", [False, True], ids=["closed_over", "argument"])
def test_weight_drop_lstm_training_equals_eager_and_stops_tracing(as_argument):
    eager, fast = _train(False), _train(True, as_argument)
    np.testing.assert_allclose(fast["losses"], eager["losses"], rtol=2e-5)
    for got, want in zip(fast["params"], eager["params"]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    # the attributes the forward set hold each call's values, as eagerly (same dropout masks)
    for got, want in zip(fast["hiddens"], eager["hiddens"]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    for got, want in zip(fast["weights"], eager["weights"]):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    assert len({w.tobytes() for w in fast["weights"]}) == len(fast["weights"])  # fresh masks
    # first call: no attribute and no gradients yet; second: both exist; then no re-trace
    info = fast["info"]
    assert info.traces <= 2, info.misses
    assert info.hits == 6 - info.traces
    (k0, e0), (k1, e1) = fast["stats"]
    assert k1["kernels_compiled"] == k0["kernels_compiled"]
    assert e1["executables_compiled"] == e0["executables_compiled"]


class StatefulLSTM(nn.Module):
    """Carries its hidden state across calls in a plain attribute (read, then rebound)."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.LSTM(3, 4, batch_first=True)
        self.head = nn.Linear(4, 1)
        self.hidden = None

    def forward(self, x):
        out, (h, c) = self.rnn(x, self.hidden)
        self.hidden = (h.detach(), c.detach())
        return self.head(out[:, -1])


def _stateful_run(compiled, batches, reset_at=()):
    fnx.manual_seed(0)
    model = StatefulLSTM()
    opt = optim.Adam(model.parameters(), lr=1e-2)
    step = _step_for(model, opt, criterion=nn.functional.mse_loss)
    run = fnx.compile(step) if compiled else step
    losses, states = [], []
    for i, (x, y) in enumerate(batches):
        if i in reset_at:
            model.hidden = None  # a new sequence: eagerly, between calls
        losses.append(float(run(x, y)))
        states.append(model.hidden)
    return losses, [(h.numpy(), c.numpy()) for h, c in states], run


def test_hidden_state_carried_in_an_attribute_equals_eager():
    rng = np.random.default_rng(2)
    batches = [(fnx.tensor(rng.normal(size=(2, 4, 3)).astype(np.float32)),
                fnx.tensor(rng.normal(size=(2, 1)).astype(np.float32))) for _ in range(7)]
    eager, fast = (_stateful_run(c, batches, reset_at=(4,)) for c in (False, True))
    np.testing.assert_allclose(fast[0], eager[0], rtol=2e-5)
    for (h, c), (h0, c0) in zip(fast[1], eager[1]):
        np.testing.assert_allclose(h, h0, rtol=2e-5, atol=1e-6)
        np.testing.assert_allclose(c, c0, rtol=2e-5, atol=1e-6)
    info = fast[2].cache_info()
    # no state and no gradients, then both; the reset to None at call 4 is a new structure
    # (with gradients); then no re-trace
    assert info.traces == 3, info.misses
    assert ("StatefulLSTM.hidden changed from a tuple of an array f32[1,2,4], an array "
            "f32[1,2,4] to None since the trace") in info.misses


def test_a_new_shape_in_an_attribute_retraces_and_a_new_value_does_not():
    lin = nn.Linear(3, 3)

    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = lin
            self.scale = fnx.ones(3)  # set outside the step, read by it

        def forward(self, x):
            return self.lin(x) * self.scale

    model = Scaled()
    f = fnx.compile(lambda m, x: m(x))
    x = fnx.ones(2, 3)
    f(model, x)
    for scale in ([2.0, 2.0, 2.0], [0.0, 1.0, 2.0]):
        model.scale = fnx.tensor(scale)  # rebound eagerly: read by the next call
        np.testing.assert_allclose(f(model, x).numpy(), model(x).numpy(), rtol=1e-6)
    assert f.cache_info().traces == 1, f.cache_info().misses
    model.scale = fnx.ones(2, 3)  # a new shape: a new program
    np.testing.assert_allclose(f(model, x).numpy(), model(x).numpy(), rtol=1e-6)
    model.scale = fnx.ones(3, dtype=fnx.float64)  # a new dtype too
    np.testing.assert_allclose(f(model, x).numpy(), model(x).numpy(), rtol=1e-6)
    assert f.cache_info().traces == 3


def test_an_attribute_whose_value_python_read_retraces_when_rebound():
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.on = fnx.tensor(1.0)

        def forward(self, x):
            return x * 2 if float(self.on) > 0 else x  # the trace depends on the value

    gate = Gate()
    f = fnx.compile(lambda x: gate(x))
    x = fnx.ones(3)
    assert f(x).tolist() == [2.0] * 3
    gate.on = fnx.tensor(-1.0)
    assert f(x).tolist() == [1.0] * 3
    gate.on = fnx.tensor(-2.0)
    assert f(x).tolist() == [1.0] * 3


def test_a_counter_read_and_rebound_every_call_is_re_read_not_baked_in():
    class Counted(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.calls = fnx.tensor(0.0)  # 0-d: would otherwise be a literal of the program

        def forward(self, x):
            self.calls = self.calls + 1
            return self.lin(x) * self.calls

    model = Counted()
    f = fnx.compile(lambda x: model(x))
    x = fnx.ones(1, 2)
    seen, outs = [], []
    for _ in range(4):
        outs.append(f(x).numpy())
        seen.append(model.calls)  # references keep their own call's value
    assert [float(c) for c in seen] == [1.0, 2.0, 3.0, 4.0]
    base = model.lin(x).detach().numpy()
    for k, out in enumerate(outs, 1):
        np.testing.assert_allclose(out, base * k, rtol=1e-6)
    assert f.cache_info().traces == 1, f.cache_info().misses


def test_hand_written_weight_norm_equals_eager():
    """A Linear whose weight is computed (g * v / |v|) and set as an attribute each forward."""

    class WeightNormLinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(5, 3)
            v = self.lin.weight.detach().clone()
            del self.lin.weight
            self.v = nn.Parameter(v)
            self.g = nn.Parameter(fnx.sqrt((v ** 2).sum(1, keepdim=True)))

        def forward(self, x):
            self.lin.weight = self.g * self.v / fnx.sqrt((self.v ** 2).sum(1, keepdim=True))
            return self.lin(x)

    def run(compiled):
        fnx.manual_seed(0)
        model = WeightNormLinear()
        opt = optim.SGD(model.parameters(), lr=0.2)
        x = fnx.tensor(np.random.default_rng(3).normal(size=(8, 5)).astype(np.float32))
        y = fnx.tensor([0, 1, 2, 0, 1, 2, 0, 1])
        step = _step_for(model, opt)
        f = fnx.compile(step) if compiled else step
        out = [(float(f(x, y)), model.lin.weight.numpy().copy()) for _ in range(5)]
        return out, f

    eager, (fast, f) = run(False)[0], run(True)
    for (loss, w), (loss0, w0) in zip(fast, eager):
        assert loss == pytest.approx(loss0, rel=2e-5)
        np.testing.assert_allclose(w, w0, rtol=2e-5, atol=1e-6)
    assert f.cache_info().traces <= 2, f.cache_info().misses


def test_compiled_forward_keeps_an_attribute_on_the_tape():
    """fnx.compile(module) with an eager backward: an auxiliary loss cached on the module
    (MoE style) is a value of the compiled call, and backward through it reaches the
    parameters as eagerly."""

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            out = self.lin(x)
            self.aux_loss = (out ** 2).mean()
            self.last_out = out.detach()
            return out

    grads = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        model = Net()
        fwd = fnx.compile(model) if compiled else model
        for _ in range(3):
            model.zero_grad()
            out = fwd(fnx.ones(4, 3))
            (out.sum() + model.aux_loss).backward()
            assert model.aux_loss.requires_grad and not model.last_out.requires_grad
        grads.append([p.grad.numpy() for p in model.parameters()])
        if compiled:
            assert fwd.cache_info().traces <= 2, fwd.cache_info().misses
    for got, want in zip(*grads):
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_no_traced_value_is_left_in_an_attribute_after_an_error():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 2)

        def forward(self, x):
            self.cache = self.lin(x)
            raise RuntimeError("boom")

    model = Net()
    with pytest.raises(RuntimeError, match="boom"):
        fnx.compile(lambda x: model(x))(fnx.ones(1, 3))
    assert not hasattr(model, "cache")


def test_a_module_built_inside_the_step_keeps_its_attributes_to_itself():
    class Shifted(nn.Module):
        def __init__(self, shift):
            super().__init__()
            self.shift = shift * 2  # a traced value, on a module that lives for one call

        def forward(self, x):
            self.out = x + self.shift
            return self.out

    lin = nn.Linear(2, 2)
    f = fnx.compile(lambda x: Shifted(lin(x))(x))
    x = fnx.ones(1, 2)
    for _ in range(3):
        np.testing.assert_allclose(f(x).numpy(), (x + lin(x) * 2).detach().numpy(), rtol=1e-6)
    assert f.cache_info().traces == 1, f.cache_info().misses
    # copies made inside the step (deepcopy; the module fnx.grad rebuilds) likewise
    model = Shifted(fnx.ones(2))

    def body(x):
        return copy.deepcopy(model)(x) + fnx.grad(lambda m: m(x).sum())(model).shift.sum()

    g = fnx.compile(body)
    for _ in range(3):
        np.testing.assert_allclose(g(x).numpy(), body(x).numpy(), rtol=1e-6)
    assert g.cache_info().traces == 1, g.cache_info().misses
    assert "out" not in model.__dict__


def test_an_in_place_update_of_a_value_an_attribute_holds_reaches_every_holder():
    class Doubling(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)

        def forward(self, x):
            h = self.lin(x).detach()
            self.cache, self.single = (h, 3), h
            h.mul_(2)  # the local, the tuple entry and the attribute all see it, as eagerly
            return h

    results = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        model = Doubling()
        f = fnx.compile(lambda x: model(x)) if compiled else model
        out = [f(fnx.full((1, 2), float(k))).numpy() for k in range(3)][-1]
        results.append((out, model.cache[0].numpy(), model.cache[1], model.single.numpy()))
    (out, cached, three, single), (out0, cached0, three0, single0) = results[1], results[0]
    for got, want in ((out, out0), (cached, cached0), (single, single0)):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    np.testing.assert_allclose(out0, cached0)
    assert three == three0 == 3


def test_a_property_setter_runs_and_the_attribute_it_sets_is_rebound():
    class Cached(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self._last = None

        @property
        def last(self):
            return self._last

        @last.setter
        def last(self, value):
            self._last = value * 2

        def forward(self, x):
            self.last = self.lin(x).detach()
            return self.last + 1

    model = Cached()
    f = fnx.compile(lambda x: model(x))
    for k in range(3):
        x = fnx.full((1, 2), float(k))
        out = f(x)
        want = model.lin(x).detach().numpy() * 2
        np.testing.assert_allclose(model.last.numpy(), want, rtol=1e-6)
        np.testing.assert_allclose(out.numpy(), want + 1, rtol=1e-6)
    assert f.cache_info().traces == 2, f.cache_info().misses


class _Holder(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.a = a


class _SharedState(nn.Module):
    """One array object held by two attributes (``self.h = self.c = zeros``, two submodules
    given one array); the step rebinds one of them and reads both."""

    def __init__(self):
        super().__init__()
        self.h = self.c = fnx.zeros(3)
        shared = fnx.ones(3)
        self.m1, self.m2 = _Holder(shared), _Holder(shared)

    def forward(self, x):
        y = x * self.m1.a + 10 * x * self.m2.a + 100 * (self.h + 2 * self.c)
        self.m1.a = self.m1.a + 1.0
        self.h, self.c = self.h + x, self.c - x
        return y


def test_an_array_two_attributes_hold_is_read_from_each_after_one_is_rebound():
    runs = []
    for compiled in (False, True):
        model = _SharedState()
        f = fnx.compile(lambda m, x: m(x)) if compiled else (lambda m, x: m(x))
        runs.append([(f(model, fnx.full((3,), float(k))).numpy(), model.m1.a.numpy(),
                      model.m2.a.numpy(), model.h.numpy(), model.c.numpy())
                     for k in range(1, 6)])
    for got, want in zip(runs[1], runs[0], strict=True):
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-6)
    # the trace made one input of the shared array: it re-traces once when they part, then
    # re-reads each attribute
    assert f.cache_info().traces == 2, f.cache_info().misses


def test_an_lstm_cell_state_initialised_as_one_array_equals_eager():
    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = nn.LSTMCell(3, 4)
            self.h = self.c = fnx.zeros(2, 4)

        def forward(self, x):
            h, c = self.cell(x, (self.h, self.c))
            self.h, self.c = h.detach(), c.detach()
            return h.sum()

    losses = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        model = Cell()
        f = fnx.compile(lambda x: model(x)) if compiled else model
        losses.append([float(f(fnx.ones(2, 3) * 0.5)) for _ in range(5)])
    np.testing.assert_allclose(losses[1], losses[0], rtol=1e-5)
    assert f.cache_info().traces == 2, f.cache_info().misses



class _BufferAlias(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)
        self.register_buffer("rb", fnx.ones(3))
        self.kept = self.rb  # a plain attribute holding the buffer, set before any call

    def forward(self, x):
        return self.lin(x) + self.rb + 10 * self.kept


def test_an_attribute_holding_a_buffer_is_read_apart_from_it_once_rebound():
    model = _BufferAlias()
    f = fnx.compile(lambda x: model(x))
    x = fnx.ones(1, 3)
    for k in range(3):
        np.testing.assert_allclose(f(x).numpy(), model(x).detach().numpy(), rtol=1e-6)
        model.rb.add_(1.0)  # in place: both holders see it, no re-trace
    assert f.cache_info().traces == 1, f.cache_info().misses
    # the program read one input for both holders: rebinding the attribute re-traces once,
    # then each is read on its own
    for k in range(3):
        model.kept = fnx.full((3,), -1.0 - k)
        np.testing.assert_allclose(f(x).numpy(), model(x).detach().numpy(), rtol=1e-6)
    assert f.cache_info().traces == 2, f.cache_info().misses


def test_an_attribute_set_to_a_buffer_in_the_step_holds_the_buffer_itself():
    class Picking(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)
            self.register_buffer("rb", fnx.ones(3))

        def forward(self, x):
            self.alias = self.rb  # the active statistics buffer, picked in the step
            return self.lin(x) + self.alias

    runs = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        model = Picking()
        f = fnx.compile(lambda x: model(x)) if compiled else model
        outs = []
        for k in range(4):
            outs.append(f(fnx.ones(1, 3)).detach().numpy())
            assert model.alias is model.rb
            model.alias.add_(1.0)  # through the attribute, eagerly: the buffer changes
            assert model.rb.tolist() == [k + 2.0] * 3
        runs.append(outs)
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-6)
    # a new attribute, then the buffer by identity: no re-trace after the second call
    assert f.cache_info().traces == 2, f.cache_info().misses


def test_an_optional_attribute_read_while_absent_retraces_once_it_is_set():
    class Gained(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(3, 3)

        def forward(self, x):
            scale = self.scale if hasattr(self, "scale") else 1.0
            return self.lin(x) * getattr(self, "gain", 1.0) + scale

    for gain in (fnx.tensor(3.0), 3.0):
        fnx.manual_seed(0)
        model = Gained()
        f = fnx.compile(lambda x: model(x))
        x = fnx.ones(2, 3)
        np.testing.assert_allclose(f(x).numpy(), model(x).detach().numpy(), rtol=1e-6)
        model.gain = gain  # set eagerly between calls, as a user enabling a feature
        np.testing.assert_allclose(f(x).numpy(), model(x).detach().numpy(), rtol=1e-6)
        for k in range(3):
            model.scale = fnx.full((3,), float(k))  # present now: re-read, no re-trace
            np.testing.assert_allclose(f(x).numpy(), model(x).detach().numpy(), rtol=1e-6)
        info = f.cache_info()
        assert info.traces == 3, info.misses
        assert "Gained.scale was absent when traced and is now set" in info.misses[2]


def test_arrays_put_into_a_dict_or_list_attribute_are_written_back():
    class RunningMean(nn.Module):
        def __init__(self):
            super().__init__()
            self.stats = {"m": fnx.zeros(3)}
            self.pair = [fnx.zeros(3), fnx.ones(3)]
            self.history = []

        def forward(self, x, log):
            self.stats["m"] = 0.9 * self.stats["m"] + 0.1 * x.mean(0)
            self.pair[1] = self.pair[1] * 2 + self.pair[0]
            if log:
                self.history.append(x.sum())
            self.__dict__["last"] = x.max()  # around Module.__setattr__
            return x * 2 + self.stats["m"] + self.pair[1]

    runs = []
    for compiled in (False, True):
        model = RunningMean()
        f = fnx.compile(lambda x, log: model(x, log)) if compiled else model
        outs = [f(fnx.full((2, 3), float(k)), k < 2).numpy() for k in range(5)]
        runs.append((outs, model.stats["m"].numpy(), model.pair[1].numpy(),
                     [float(h) for h in model.history], float(model.last)))
    for got, want in zip(runs[1], runs[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    # a list that grows is a new structure at each call (one trace per length)
    assert f.cache_info().traces == 3, f.cache_info().misses


def test_a_traced_array_put_into_a_container_of_other_objects_is_an_error():
    class Logged(nn.Module):
        def __init__(self):
            super().__init__()
            self.log = ["start"]
            self.layers = [nn.Linear(2, 2)]

        def forward(self, x):
            self.log.append(x.sum())
            self.layers.append(x)
            return x * 2

    model = Logged()
    with pytest.raises(fnx.core.errors.TraceError, match=r"Logged.layers .*Return the array"):
        fnx.compile(lambda x: model(x))(fnx.ones(2))
    assert model.log == ["start"] and len(model.layers) == 1  # nothing traced is left


class _Meter:
    """A plain (non-Module) logging object, as PyTorch training scripts keep."""

    def __init__(self):
        self.total = fnx.tensor(0.0)
        self.count = 0


def test_arrays_set_on_a_plain_object_in_the_step_are_rebound_as_eagerly():
    runs = []
    for compiled in (False, True):
        fnx.manual_seed(0)
        meter, model = _Meter(), nn.Linear(3, 1)
        opt = optim.SGD(model.parameters(), lr=0.1)

        def step(x):
            opt.zero_grad()
            loss = (model(x) ** 2).mean()
            loss.backward()
            opt.step()
            meter.total = meter.total + loss.detach()
            meter.last = loss.detach()
            return loss

        f = fnx.compile(step) if compiled else step
        losses = [float(f(fnx.full((2, 3), 0.5 * k))) for k in range(5)]
        runs.append((losses, float(meter.total), float(meter.last)))
    np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-5)
    np.testing.assert_allclose(runs[1][1:], runs[0][1:], rtol=1e-5)
    # no grads and no `last`, then both: then re-read, no re-trace
    assert f.cache_info().traces == 2, f.cache_info().misses


def test_a_traced_array_appended_to_a_list_the_step_names_is_a_clear_error():
    losses, model = [], nn.Linear(3, 1)

    @fnx.compile
    def step(x):
        loss = model(x).sum()
        losses.append(loss.detach())
        return loss

    with pytest.raises(fnx.core.errors.TraceError, match=r"into the list `losses`.*return the"):
        step(fnx.ones(2, 3))
    assert losses == []  # no placeholder of the trace is left in it
