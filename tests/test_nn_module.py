"""fnx.nn.Module: PyTorch's stateful contract, and modules as pytrees under transforms."""

import copy

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx import nn


class Affine(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(fnx.asarray(np.arange(n_in * n_out, dtype=np.float32)
                                               .reshape(n_in, n_out) / 10))
        self.bias = nn.Parameter(fnx.zeros(n_out))
        self.register_buffer("calls", fnx.zeros(()))
        self.register_buffer("scratch", fnx.zeros(2), persistent=False)

    def forward(self, x):
        return x @ self.weight + self.bias


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(Affine(3, 4), nn.Identity(), Affine(4, 2))
        self.head = nn.ModuleDict({"out": Affine(2, 1)})

    def forward(self, x):
        return self.head["out"](fnp.tanh(self.layers(x)))


def test_registration_order_and_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["layers.0.weight", "layers.0.bias", "layers.2.weight", "layers.2.bias",
                     "head.out.weight", "head.out.bias"]
    assert list(net.state_dict()) == [
        "layers.0.weight", "layers.0.bias", "layers.0.calls", "layers.2.weight",
        "layers.2.bias", "layers.2.calls", "head.out.weight", "head.out.bias", "head.out.calls"]
    assert [n for n, _ in net.named_buffers()][:2] == ["layers.0.calls", "layers.0.scratch"]
    assert sum(p.numel() for p in net.parameters()) == 3 * 4 + 4 + 4 * 2 + 2 + 2 + 1
    assert [n for n, _ in net.named_children()] == ["layers", "head"]
    assert [n for n, _ in net.named_modules()] == [
        "", "layers", "layers.0", "layers.1", "layers.2", "head", "head.out"]
    assert all(isinstance(p, nn.Parameter) for p in net.parameters())
    assert not isinstance(net.layers[0].calls, nn.Parameter)


def test_shared_parameters_are_listed_once():
    a = Affine(2, 2)
    seq = nn.Sequential(a, a)
    assert len(list(seq.parameters())) == 2
    assert len(seq.state_dict()) == 6  # state_dict keeps every path, as torch


def test_assignment_rules_and_errors():
    m = Affine(2, 2)
    with pytest.raises(TypeError, match="cannot assign 'Array' as parameter 'weight'"):
        m.weight = fnx.ones(2, 2)
    m.weight = None
    assert m.weight is None and "weight" in dict(m._parameters)
    m.extra = nn.Parameter(fnx.ones(1))
    assert "extra" in dict(m.named_parameters())
    del m.extra
    assert "extra" not in dict(m.named_parameters())

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(fnx.ones(1))

    with pytest.raises(AttributeError, match="before Module.__init__"):
        Early()
    with pytest.raises(TypeError, match="only floating-point"):
        nn.Parameter(fnx.arange(3))
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("forward", fnx.ones(1))


def test_state_dict_round_trip_is_in_place():
    src, dst = Net(), Net()
    with fnx.no_grad():  # as PyTorch: parameters are updated in place only untracked
        for p in src.parameters():
            p.add_(1.0)
    held = dst.layers[0].weight  # an optimizer would hold this object
    result = dst.load_state_dict(src.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert held is dst.layers[0].weight
    for (n, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=n)
    # no aliasing: changing the source afterwards leaves the destination alone
    with fnx.no_grad():
        src.layers[0].weight.mul_(0.0)
    assert float(dst.layers[0].weight.sum()) != 0.0


def test_load_state_dict_errors_list_keys():
    net = Net()
    sd = net.state_dict()
    sd.pop("head.out.bias")
    sd["bogus.weight"] = fnx.ones(1)
    sd["layers.0.weight"] = fnx.ones(5, 5)
    with pytest.raises(RuntimeError, match=r"(?s)Error\(s\) in loading state_dict for Net:.*"
                                           r"Missing key.*Unexpected key.*size mismatch") as info:
        net.load_state_dict(sd)
    msg = str(info.value)
    assert 'Missing key(s) in state_dict: "head.out.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "bogus.weight"' in msg
    assert "size mismatch for layers.0.weight: copying a param with shape (5, 5)" in msg
    sd["layers.0.weight"] = fnx.ones(3, 4)
    missing, unexpected = net.load_state_dict(sd, strict=False)
    assert missing == ["head.out.bias"] and unexpected == ["bogus.weight"]


def test_consume_prefix_loads_a_data_parallel_checkpoint_into_the_bare_model():
    from fnx.nn.layers.utils import consume_prefix_in_state_dict_if_present

    src = Net()
    with fnx.no_grad():
        for p in src.parameters():
            p.add_(1.0)
    sd = nn.DataParallel(src).state_dict()
    assert all(k.startswith("module.") for k in sd)
    with pytest.raises(RuntimeError, match="Missing key"):
        Net().load_state_dict(sd)
    sd["epoch"] = fnx.zeros(())  # a key without the prefix is left alone
    assert consume_prefix_in_state_dict_if_present(sd, "module.") is None  # in place
    assert list(sd) == ["epoch"] + list(src.state_dict())
    del sd["epoch"]
    dst = Net()
    assert dst.load_state_dict(sd) == ([], [])
    for (n, a), (_, b) in zip(src.state_dict().items(), dst.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=n)
    # a second call finds no prefix and changes nothing
    before = dict(sd)
    consume_prefix_in_state_dict_if_present(sd, "module.")
    assert list(sd) == list(before) and all(sd[k] is before[k] for k in before)


def test_consume_prefix_renames_torch_metadata():
    import collections

    from fnx.nn.layers.utils import consume_prefix_in_state_dict_if_present

    sd = collections.OrderedDict([("module.fc.weight", 1), ("module.fc.bias", 2)])
    # PyTorch's per-module versions: "" the wrapper, "module" the model, "module.fc" a layer
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("module", {"version": 2}),
                                            ("module.fc", {"version": 3})])
    consume_prefix_in_state_dict_if_present(sd, "module.")
    assert list(sd.items()) == [("fc.weight", 1), ("fc.bias", 2)]
    assert dict(sd._metadata) == {"": {"version": 2}, "fc": {"version": 3}}


def test_train_eval_apply_zero_grad_and_freezing():
    net = Net()
    assert net.training and net.layers[2].training
    net.eval()
    assert not any(m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Affine"
    for p in net.parameters():
        p.grad = fnp.ones_like(p)
    net.zero_grad(set_to_none=False)
    assert all(float(p.grad.sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.layers.requires_grad_(False)
    assert [p.requires_grad for p in net.parameters()] == [False] * 4 + [True] * 2


def test_to_dtype_keeps_objects():
    net = Net()
    w = net.layers[0].weight
    net.double()
    assert w is net.layers[0].weight and w.dtype == np.float64
    assert net.layers[0].calls.dtype == np.float64
    out = net(fnx.ones(2, 3, dtype=fnx.float64))
    assert out.dtype == np.float64
    net.to(fnx.float32)
    assert w.dtype == np.float32


@pytest.mark.skipif(fnx.cuda.is_available(), reason="checks the error without a GPU")
def test_to_int_is_a_cuda_device_index():
    """torch's ``model.to(rank)`` in DDP recipes: an int is a CUDA device index, not a dtype."""
    with pytest.raises(fnx.core.errors.DeviceError, match="CUDA is not available"):
        Net().to(0)


def test_hooks_run_and_remove():
    m = Affine(2, 2)
    log = []
    h1 = m.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    h2 = m.register_forward_hook(lambda mod, args, out: log.append(out.shape) or out + 1)
    out = m(fnx.ones(1, 2))
    ref = (np.ones((1, 2)) * 2) @ m.weight.numpy() + 1
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-6)
    assert log == [(1, 2)]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(m(fnx.ones(1, 2)).numpy(), np.ones((1, 2)) @ m.weight.numpy(),
                               rtol=1e-6)


class TwoIn(nn.Module):
    """``(a @ w * scale + b, sum)``: two array inputs, a Python scalar, a tuple output."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(fnx.asarray(np.arange(6.0).reshape(3, 2) / 5, dtype=fnx.float64))

    def forward(self, a, scale, b):
        y = a @ self.w * scale + b
        return y, y.sum()


def _two_in_inputs(b_requires_grad=True):
    a = fnx.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    b = fnx.tensor(np.ones((2, 2)), requires_grad=b_requires_grad)
    return a, b


def test_full_backward_hook_sees_input_and_output_gradients():
    m = TwoIn()
    log = []
    m.register_full_backward_hook(lambda mod, gin, gout: log.append((mod, gin, gout)))
    a, b = _two_in_inputs()
    ct = np.arange(4.0).reshape(2, 2)
    y, s = m(a, 2.0, b)
    ((y * fnx.tensor(ct)).sum() + 3 * s).backward()
    (mod, (g_a, g_scale, g_b), (g_y, g_s)), = log
    w = m.w.numpy()
    assert mod is m and g_scale is None and g_s.item() == 3.0
    np.testing.assert_allclose(g_y.numpy(), ct)  # s's share arrives as s's own gradient
    np.testing.assert_allclose(g_a.numpy(), 2 * (ct + 3) @ w.T)
    np.testing.assert_allclose(g_b.numpy(), ct + 3)
    np.testing.assert_allclose(a.grad.numpy(), g_a.numpy())  # no replacement: unchanged


def test_full_backward_hook_replaces_grad_input_and_pre_hook_grad_output():
    m = TwoIn()
    m.register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 10, gout[1]))
    m.register_full_backward_hook(lambda mod, gin, gout: (gin[0] + 1, None, None))
    a, b = _two_in_inputs()
    y, _ = m(a, 2.0, b)
    y.sum().backward()
    w = m.w.numpy()
    g_y = np.full((2, 2), 10.0)  # the pre-hook's grad_output flows into the module
    np.testing.assert_allclose(m.w.grad.numpy(), 2 * a.numpy().T @ g_y)
    np.testing.assert_allclose(a.grad.numpy(), 2 * g_y @ w.T + 1)
    assert b.grad is None  # None in the returned grad_input stops b's gradient
    with pytest.raises(RuntimeError, match="Backward hook returned an invalid number of "
                                           "grad_input, got 1, but expected 3"):
        m.register_full_backward_hook(lambda mod, gin, gout: (gin[0],))
        m(a, 2.0, b)[0].sum().backward()


def test_full_backward_hook_rules_for_inputs_without_gradients():
    m = TwoIn()
    log = []
    handle = m.register_full_backward_hook(lambda mod, gin, gout: log.append(gin))
    a, b = _two_in_inputs(b_requires_grad=False)
    m(a, 2.0, b)[0].sum().backward()
    # as torch: an array input that gets no gradient reports zeros, a non-array None
    assert log[0][1] is None and np.all(log[0][2].numpy() == 0)
    log.clear()
    a, b = fnx.tensor(a.numpy()), fnx.tensor(b.numpy())  # no input requires grad: the hook
    with pytest.warns(UserWarning, match="no inputs require gradients"):  # fires at outputs
        m(a, 2.0, b)[0].sum().backward()
    assert log == [(None, None, None)]
    log.clear()
    with fnx.no_grad():  # no output requires grad: it does not fire
        m(*_two_in_inputs()[:1], 2.0, b)
    handle.remove()
    a, b = _two_in_inputs()
    m(a, 2.0, b)[0].sum().backward()
    assert log == []


def test_full_backward_hooks_in_a_model_run_latest_module_first():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    order = []
    for name, sub in net.named_children():
        sub.register_full_backward_hook(lambda mod, gin, gout, name=name: order.append(name))
    net.register_full_backward_hook(lambda mod, gin, gout: order.append("net"))
    shared = net[1]
    x = fnx.ones(5, 3, requires_grad=True)
    shared(net(x)).sum().backward(retain_graph=True)
    assert order == ["1", "2", "1", "0", "net"]  # the shared Tanh once per call
    order.clear()
    fnx.autograd.grad(net(x).sum(), [x])
    assert order == ["2", "1", "0", "net"]


def test_repr_tree():
    text = repr(Net())
    assert text.startswith("Net(\n  (layers): Sequential(\n    (0): Affine()")
    assert "(head): ModuleDict(\n    (out): Affine()\n  )" in text


def test_container_reprs_are_pytorchs():
    blocks = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)] + [nn.Tanh(), nn.Tanh()])
    assert repr(blocks) == ("ModuleList(\n"
                            "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                            "  (3-4): 2 x Tanh()\n)")
    assert repr(nn.ModuleList()) == "ModuleList()"
    plist = nn.ParameterList([fnx.zeros(2, 3), fnx.ones(())])
    holder = nn.Sequential()
    holder.add_module("p", plist)
    # a multi-line extra_repr is indented under the name, as torch (dtype names are fnx's)
    assert repr(holder) == ("Sequential(\n  (p): ParameterList(\n"
                            "      (0): Parameter containing: [float32 of size 2x3]\n"
                            "      (1): Parameter containing: [float32 of size ]\n  )\n)")
    assert repr(nn.ParameterDict({"x": fnx.ones(1)})) == \
        "ParameterDict(  (x): Parameter containing: [float32 of size 1])"


def test_containers_index_slice_and_mutate():
    seq = nn.Sequential(nn.Identity(), nn.Flatten(), nn.Identity())
    assert isinstance(seq[1], nn.Flatten) and isinstance(seq[-1], nn.Identity)
    sub = seq[1:]
    assert isinstance(sub, nn.Sequential) and len(sub) == 2
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and isinstance(seq[0], nn.Flatten)
    with pytest.raises(IndexError):
        seq[5]
    ml = nn.ModuleList([Affine(1, 1)])
    ml.append(Affine(1, 1))
    ml.insert(0, nn.Identity())
    assert [type(m).__name__ for m in ml] == ["Identity", "Affine", "Affine"]
    assert len(list(ml.parameters())) == 4
    pl = nn.ParameterList([fnx.ones(2), fnx.zeros(3)])
    assert all(isinstance(p, nn.Parameter) for p in pl) and len(pl) == 2
    pd = nn.ParameterDict({"a": fnx.ones(1)})
    pd["b"] = fnx.zeros(2)
    assert list(pd) == ["a", "b"] and isinstance(pd["b"], nn.Parameter)
    assert nn.Unflatten(1, (2, 3))(fnx.ones(4, 6)).shape == (4, 2, 3)
    assert nn.Flatten(0, 1)(fnx.ones(4, 6, 2)).shape == (24, 2)


def loss_fn(model, x, y):
    return fnp.mean((model(x) - y) ** 2)


def numeric_grads(model, x, y, eps=1e-6):
    """Central differences of loss_fn with respect to every parameter (float64)."""
    out = {}
    for name, p in model.named_parameters():
        base = p.numpy().copy()
        g = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            for sign in (1, -1):
                trial = base.copy()
                trial[idx] += sign * eps
                p._set_buffer(trial)
                g[idx] += sign * float(loss_fn(model, x, y)) / (2 * eps)
        p._set_buffer(base)
        out[name] = g
    return out


def test_grad_over_a_module_is_module_shaped():
    net = Net().double()
    x = fnx.asarray(np.linspace(-1, 1, 12).reshape(4, 3))
    y = fnx.asarray(np.linspace(0, 1, 4).reshape(4, 1))
    g = fnx.grad(loss_fn)(net, x, y)
    assert type(g) is Net
    ref = numeric_grads(net, x, y)
    for name, value in g.named_parameters():
        np.testing.assert_allclose(value.numpy(), ref[name], rtol=1e-6, atol=1e-9,
                                   err_msg=name)
    gj = fnx.jit(fnx.grad(loss_fn))(net, x, y)
    for (_, a), (_, b) in zip(g.named_parameters(), gj.named_parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-12)


def test_vmap_over_a_stacked_ensemble_equals_a_loop():
    models = [Net() for _ in range(3)]
    for i, m in enumerate(models):
        with fnx.no_grad():
            for p in m.parameters():
                p.add_(0.1 * i)
    stacked = fnx.tree.map(lambda *xs: fnp.stack(xs), *models)
    x = fnx.asarray(np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3))
    out = fnx.vmap(lambda m, x: m(x), in_axes=(0, None))(stacked, x)
    for i, m in enumerate(models):
        np.testing.assert_allclose(out[i].numpy(), m(x).numpy(), rtol=1e-5)


def test_jit_takes_modules_and_retraces_on_mode_change():
    net = Net()
    f = fnx.jit(lambda m, x: m(x))
    x = fnx.ones(2, 3)
    np.testing.assert_allclose(f(net, x).numpy(), net(x).numpy(), rtol=1e-6)
    f(net, x)
    assert f.cache_info().traces == 1
    net.eval()
    f(net, x)
    assert f.cache_info().traces == 2
    with fnx.no_grad():
        for p in net.parameters():  # new values, same structure: no retrace
            p.mul_(2.0)
    np.testing.assert_allclose(f(net, x).numpy(), net(x).numpy(), rtol=1e-6)
    assert f.cache_info().traces == 2


def test_functional_call_under_grad():
    lin = Affine(2, 1).double()
    x = fnx.asarray(np.array([[1.0, 2.0], [3.0, -1.0]]))
    params = {k: v for k, v in lin.named_parameters()}

    def loss(params):
        return fnp.sum(nn.functional_call(lin, params, (x,)) ** 2)

    g = fnx.grad(loss)(params)
    out = x.numpy() @ lin.weight.numpy() + lin.bias.numpy()
    np.testing.assert_allclose(g["weight"].numpy(), 2 * x.numpy().T @ out, rtol=1e-12)
    np.testing.assert_allclose(g["bias"].numpy(), 2 * out.sum(0), rtol=1e-12)
    assert isinstance(lin.weight, nn.Parameter)  # restored
    with pytest.raises(KeyError, match="unexpected key"):
        nn.functional_call(lin, {"nope": fnx.ones(1)}, (x,))


def test_deepcopy_is_independent():
    net = Net()
    twin = copy.deepcopy(net)
    with fnx.no_grad():
        twin.layers[0].weight.add_(1.0)
    assert float((twin.layers[0].weight - net.layers[0].weight).sum()) == 12.0
    assert isinstance(twin.layers[0].weight, nn.Parameter)


def test_grad_over_a_module_with_integer_buffers():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    x = fnx.randn(8, 3)
    g = fnx.grad(lambda m, x: m(x).sum())(model, x)
    assert g[1].num_batches_tracked.dtype == np.int64 and g[1].num_batches_tracked.item() == 0
    ref = fnx.grad(lambda w: nn.functional_call(model, {"0.weight": w}, (x,)).sum())(
        model[0].weight)
    np.testing.assert_allclose(g[0].weight.numpy(), ref.numpy(), rtol=1e-5)


def test_jit_writes_back_buffers_a_call_updates():
    fnx.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    twin = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    twin.load_state_dict(model.state_dict())
    running_mean = model[1].running_mean  # held elsewhere, e.g. by a logger
    x = fnx.randn(16, 3)
    step = fnx.jit(lambda m, x: m(x).sum())
    for _ in range(3):
        step(model, x)
        twin(x)
    assert model[1].running_mean is running_mean  # updated in place, as eager PyTorch
    np.testing.assert_allclose(running_mean.numpy(), twin[1].running_mean.numpy(), rtol=1e-5)
    np.testing.assert_allclose(model[1].running_var.numpy(), twin[1].running_var.numpy(),
                               rtol=1e-5)
    assert model[1].num_batches_tracked.item() == 3
    assert step.cache_info().traces == 1
