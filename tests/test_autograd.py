"""The eager autograd tape: PyTorch's backward()/autograd.grad semantics, with gradients
that equal fnx.grad's (one source of derivatives) and hand-derived references."""

import threading

import numpy as np
import pytest

import fnx
import fnx.autograd
import fnx.numpy as fnp
from fnx import nn


def leaf(values, dtype=np.float64):
    return fnx.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def test_backward_accumulates_into_leaves():
    x = leaf([1.0, 2.0, 3.0])
    (x ** 2).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2, 4, 6])
    (fnp.sin(x) * x).sum().backward()
    xs = np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(x.grad.numpy(), 2 * xs + np.sin(xs) + xs * np.cos(xs))
    assert x.is_leaf and x.grad_fn is None and not x.grad.requires_grad


def test_graph_introspection():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    z = y.sum()
    assert not y.is_leaf and y.requires_grad
    assert z.grad_fn.name() == "ReduceSumBackward"
    assert z.grad_fn.next_functions[0][0] is y.grad_fn
    assert y.grad_fn.name() == "MulBackward"
    with fnx.no_grad():
        w = x * 2.0
    assert not w.requires_grad and w.grad_fn is None
    assert not (x.detach() * 2).requires_grad
    assert not (x > 1.0).requires_grad  # boolean results are never tracked


def test_non_scalar_needs_a_gradient():
    x = leaf([1.0, 2.0])
    y = x * x
    with pytest.raises(RuntimeError, match="only for scalar outputs"):
        y.backward()
    y.backward(gradient=fnx.tensor([1.0, 10.0], dtype=fnx.float64))
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 40.0])


def test_second_backward_needs_retain_graph():
    x = leaf([1.0, 2.0])
    loss = (fnp.exp(x)).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * np.exp([1.0, 2.0]))
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()


def test_separate_backwards_through_the_pieces_of_one_view():
    """As torch, whose view nodes save no tensors: a backward per piece of one unbind/split/
    chunk (one split node for all pieces) or per row of a transpose works without
    retain_graph (the first backward freed the shared split node: a RuntimeError)."""
    for pieces in (lambda x: x.unbind(0), lambda x: x.split(1, 0), lambda x: x.chunk(2, 0),
                   lambda x: (x.T.T[0], x.T.T[1])):
        x = leaf([[0.0, 1.0], [2.0, 3.0]])
        a, b = pieces(x)
        (a * 2).sum().backward()
        (b * 3).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), [[2.0, 2.0], [3.0, 3.0]])
    # a node that saves tensors is still freed (exp saves its result, in torch too)
    x = leaf([[0.0, 1.0], [2.0, 3.0]])
    a, b = x.exp().chunk(2, 0)
    a.sum().backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        b.sum().backward()


def test_errors_users_meet():
    with pytest.raises(RuntimeError, match="does not require grad"):
        fnx.ones(2).sum().backward()
    with pytest.raises(TypeError, match="only floating-point"):
        fnx.arange(3).requires_grad_()


def test_autograd_grad_and_higher_order():
    x = fnx.tensor(3.0, dtype=fnx.float64, requires_grad=True)
    (dx,) = fnx.autograd.grad(x ** 3, x, create_graph=True)
    (ddx,) = fnx.autograd.grad(dx, x, create_graph=True)
    (dddx,) = fnx.autograd.grad(ddx, x)
    assert (dx.item(), ddx.item(), dddx.item()) == (27.0, 18.0, 6.0)
    assert x.grad is None  # autograd.grad returns, it does not accumulate
    y = leaf([1.0])
    with pytest.raises(RuntimeError, match="not used"):
        fnx.autograd.grad((x * 2), y)
    assert fnx.autograd.grad(x * 2, [x, y], allow_unused=True)[1] is None


def test_gradient_penalty():
    # d/dw of ||d(loss)/dx||^2 for loss = sum(tanh(x * w)): the WGAN-GP pattern
    w = leaf([0.5, -1.0])
    x = leaf([0.3, 0.7])
    loss = fnp.tanh(x * w).sum()
    (gx,) = fnx.autograd.grad(loss, x, create_graph=True)
    (gx ** 2).sum().backward()

    def penalty(w):
        t = np.tanh(np.array([0.3, 0.7]) * w)
        return np.sum(((1 - t ** 2) * w) ** 2)

    eps, w0 = 1e-6, np.array([0.5, -1.0])
    ref = [(penalty(w0 + eps * e) - penalty(w0 - eps * e)) / (2 * eps) for e in np.eye(2)]
    np.testing.assert_allclose(w.grad.numpy(), ref, rtol=1e-6)


def test_grad_modes_are_context_managers_decorators_and_per_thread():
    x = leaf([1.0])
    with fnx.no_grad():
        assert not (x * 2).requires_grad
        with fnx.enable_grad():
            assert (x * 2).requires_grad
    with fnx.set_grad_enabled(False):
        assert not fnx.is_grad_enabled()
    assert fnx.is_grad_enabled()
    with fnx.inference_mode():
        assert not (x * 2).requires_grad

    @fnx.no_grad()
    def evaluate(v):
        return v * 2

    assert not evaluate(x).requires_grad and fnx.is_grad_enabled()
    seen = {}

    def other():
        seen["enabled"] = fnx.is_grad_enabled()

    with fnx.no_grad():
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen["enabled"] is True


def test_retain_grad_and_hooks():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    y.retain_grad()
    calls = []
    handle = x.register_hook(lambda g: calls.append(g.numpy().copy()) or g * 2)
    (y * y).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), 2 * 3 * np.array([1.0, 2.0]))
    np.testing.assert_allclose(calls[0], 18 * np.array([1.0, 2.0]))
    np.testing.assert_allclose(x.grad.numpy(), 36 * np.array([1.0, 2.0]))
    handle.remove()
    x.grad = None
    (x * 1.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_leaf_updated_in_place_between_uses():
    # each use is differentiated at the value it saw (an optimizer step between forward ops)
    w = leaf([2.0])
    y1 = w * 3.0
    with fnx.no_grad():
        w.add_(10.0)
    y2 = w * w
    (y1 + y2).backward()
    np.testing.assert_allclose(w.grad.numpy(), [3.0 + 2 * 12.0])


def test_multiple_results_and_integer_outputs():
    x = leaf([3.0, 1.0, 2.0])
    values = fnp.sort(x)
    (values * fnx.tensor([1.0, 10.0, 100.0], dtype=fnx.float64)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [100.0, 1.0, 10.0])
    x.grad = None
    fnp.max(x).backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 0.0, 0.0])


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w1 = nn.Parameter(fnx.asarray(rng.normal(size=(4, 8))))
        self.b1 = nn.Parameter(fnx.zeros(8, dtype=fnx.float64))
        self.w2 = nn.Parameter(fnx.asarray(rng.normal(size=(8, 3))))

    def forward(self, x):
        return fnp.tanh(x @ self.w1 + self.b1) @ self.w2


def mlp_loss(model, x, labels):
    logits = model(x)
    logp = logits - fnx.scipy.special.logsumexp(logits, axis=1, keepdims=True)
    return -fnp.mean(fnp.take_along_axis(logp, labels[:, None], axis=1))


def test_tape_equals_functional_grad_on_a_module():
    model = MLP()
    x = fnx.asarray(np.random.default_rng(1).normal(size=(5, 4)))
    labels = fnx.asarray(np.array([0, 2, 1, 1, 0]))
    mlp_loss(model, x, labels).backward()
    ref = fnx.grad(mlp_loss)(model, x, labels)
    for (name, p), (_, g) in zip(model.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-12, err_msg=name)
    # a second step reuses the compiled backward and still gives the right answer
    model.zero_grad()
    with fnx.no_grad():
        for p in model.parameters():
            p.sub_(0.1 * ref.get_parameter(
                [n for n, q in model.named_parameters() if q is p][0]))
    mlp_loss(model, x, labels).backward()
    ref2 = fnx.grad(mlp_loss)(model, x, labels)
    for (name, p), (_, g) in zip(model.named_parameters(), ref2.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-12, err_msg=name)


def test_tape_through_jitted_functions():
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    x = fnx.asarray(np.array([[0.5, -1.0], [2.0, 0.1], [1.0, 1.0]]))
    closure = fnx.jit(lambda x: fnp.tanh(x @ w).sum())
    explicit = fnx.jit(lambda x, w: fnp.tanh(x @ w).sum())
    ref = fnx.grad(lambda w: fnp.tanh(x @ w).sum())(fnx.asarray(w.numpy()))
    for f in (lambda: closure(x), lambda: explicit(x, w)):
        w.grad = None
        out = f()
        assert out.grad_fn.name() == "JitCallBackward"
        out.backward()
        np.testing.assert_allclose(w.grad.numpy(), ref.numpy(), rtol=1e-12)
    with fnx.no_grad():
        assert not closure(x).requires_grad


class ScaledCube(fnx.autograd.Function):
    @staticmethod
    def forward(ctx, x, k):
        ctx.save_for_backward(x)
        ctx.k = k
        return x ** 3 * k

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 3 * x ** 2 * ctx.k, None


def test_custom_function_eager_and_under_transforms():
    x = leaf([1.0, 2.0])
    ScaledCube.apply(x, 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 24.0])
    f = fnx.grad(lambda v: ScaledCube.apply(v, 2.0))
    assert f(fnx.tensor(2.0)).item() == 24.0
    assert fnx.jit(f)(fnx.tensor(2.0)).item() == 24.0
    np.testing.assert_allclose(fnx.vmap(f)(fnx.tensor([1.0, 2.0])).numpy(), [6.0, 24.0])


def test_custom_function_gradient_count_is_checked():
    class Bad(fnx.autograd.Function):
        @staticmethod
        def forward(ctx, x, y):
            return x * y

        @staticmethod
        def backward(ctx, g):
            return g

    with pytest.raises(TypeError, match="returned 1 gradients, but forward takes 2"):
        Bad.apply(leaf([1.0]), leaf([2.0])).sum().backward()


def test_hooks_on_intermediate_values_see_their_whole_gradient():
    x = leaf([1.0, 2.0])
    a = x * 2.0               # hooked, used twice: directly and through b
    b = a * a                 # hooked too, created later
    seen = {}
    a.register_hook(lambda g: seen.setdefault("a", g.numpy().copy()))
    b.register_hook(lambda g: g * 10)  # scales everything that flows through b
    (b + 3 * a).sum().backward()
    xs = np.array([1.0, 2.0])
    grad_a = 10 * 2 * (2 * xs) + 3  # through b (scaled by its hook) plus the direct use
    np.testing.assert_allclose(seen["a"], grad_a)
    np.testing.assert_allclose(x.grad.numpy(), 2 * grad_a)


def test_backward_inputs_and_non_leaf_retained_grad_with_hooks():
    x = leaf([3.0])
    y = x * x
    y.retain_grad()
    y.register_hook(lambda g: g + 1)
    (y * 2).sum().backward()
    np.testing.assert_allclose(y.grad.numpy(), [3.0])  # the hook's result is retained
    np.testing.assert_allclose(x.grad.numpy(), [18.0])
    z = leaf([1.0])
    w = leaf([2.0])
    (z * w).sum().backward(inputs=[z])
    assert w.grad is None and z.grad.item() == 2.0


def test_python_scalars_in_recorded_ops():
    x = fnx.randn(2, 4).requires_grad_()
    ((x * 2.0 + 1) / 4 - 3.0 ** x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 0.5 - np.log(3.0) * 3.0 ** x.numpy(), rtol=1e-5)


def test_in_place_updates_keep_the_recorded_history():
    x = leaf([1.0, 2.0])
    out = x * 3.0
    out += x * x            # the residual-block pattern: in place on a recorded value
    out.mul_(2.0)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * (3 + 2 * np.array([1.0, 2.0])))
    with pytest.raises(RuntimeError, match="leaf array that requires grad"):
        x.add_(x * 2)
    with fnx.no_grad():
        x.add_(1.0)         # an optimizer-style update keeps the leaf a leaf
    assert x.is_leaf and x.requires_grad
    stats = fnx.stop_gradient(x * 2)
    assert not stats.requires_grad  # running statistics do not join the graph


def test_in_place_updates_through_data_are_untracked_and_reach_the_parameter():
    """torch idioms: ``p.data.mul_(...)``, ``p.data.clamp_(...)``, ``p.data -= lr * p.grad``
    on a leaf that requires grad (no ``no_grad`` needed), the parameter object kept."""
    p = fnx.nn.Parameter(fnx.tensor([1.0, -2.0, 3.0]))
    loss = (p * p).sum()
    loss.backward()
    p.data.mul_(2.0)
    p.data.clamp_(-3.0, 5.0)
    p.data -= 0.5 * p.grad
    np.testing.assert_allclose(p.numpy(), [1.0, -1.0, 2.0])
    assert p.requires_grad and p.is_leaf and p.grad_fn is None
    assert not p.data.requires_grad
    y = (p * 3.0).sum()  # still tracked after the updates
    y.backward()
    np.testing.assert_allclose(p.grad.numpy(), [2.0 + 3.0, -4.0 + 3.0, 6.0 + 3.0])
    with pytest.raises(RuntimeError, match="leaf array that requires grad"):
        p.mul_(2.0)  # the array itself still refuses a tracked in-place update


def test_clone_is_differentiable_and_independent_of_its_source():
    """torch's clone: gradients flow back through it, and an in-place update of the clone
    leaves the source alone — eagerly, under fnx.jit and in a compiled step (a traced clone
    used to be the source itself, so ``c.add_(1)`` changed both)."""
    p = fnx.tensor([1.0, 2.0], requires_grad=True)
    c = (p * 2).clone()
    assert c.requires_grad and c.grad_fn is not None
    c.mul_(3)
    (c.sum() + p.sum()).backward()
    np.testing.assert_allclose(np.asarray(p.grad), [7.0, 7.0])

    def f(x):
        y = x * 2
        c = y.clone()
        c.add_(1)
        return y.sum(), c.sum()

    x = fnx.tensor([1.0, 2.0])
    want = [6.0, 8.0]
    for run in (f, fnx.jit(f), fnx.compile(f)):
        assert [float(v) for v in run(x)] == want
    # every copying constructor makes a new value under a transform too
    for copy in (fnp.copy, fnp.array, fnx.tensor, lambda y: y.new_tensor(y),
                 lambda y: fnp.asarray(y, copy=True)):
        def g(x, copy=copy):
            y = x * 2
            c = copy(y)
            c.add_(1)
            return y.sum(), c.sum()

        for run in (g, fnx.jit(g), fnx.compile(g)):
            assert [float(v) for v in run(x)] == want
    np.testing.assert_allclose(np.asarray(fnx.grad(lambda x: (x * 2).clone().sum())(x)),
                               [2.0, 2.0])
