"""Custom gradients: ``fnx.autograd.Function`` (PyTorch style) and ``fnx.custom_vjp`` (JAX style).

Sometimes you want to write a function's backward pass yourself: the automatic one is
numerically unstable, too expensive, or goes through code that should not be differentiated
(an iterative solver). fnx has both APIs, and they are one mechanism (``Function`` is built on
``custom_vjp``), so either works with the eager tape (``loss.backward()``) and under
``fnx.grad`` / ``fnx.vmap`` / ``fnx.jit``:

1. the guide's ``CustomFunction``: a ReLU-like ``forward`` that saves its input with
   ``ctx.save_for_backward``, and a ``backward`` that zeroes the gradient where the input was
   negative;
2. ``LinearFunction``: PyTorch's documented example with three inputs, ``ctx.needs_input_grad``
   and ``None`` for an absent bias;
3. ``softplus``, a ``custom_vjp``: the stable formula ``where(x > 0, x + log1p(exp(-x)),
   log1p(exp(x)))`` has a NaN gradient for large ``|x|`` when differentiated automatically
   (the branch ``where`` discards still overflows, and ``0 * inf`` is NaN); the custom rule
   ``g * sigmoid(x)`` is exact everywhere;
4. ``kepler``, a ``custom_vjp`` by implicit differentiation: Newton's method solves Kepler's
   equation ``E - e sin E = M`` for ``E``; instead of differentiating through the iterations,
   the implicit function theorem gives ``dE/dM = 1 / (1 - e cos E)`` and
   ``dE/de = sin E / (1 - e cos E)`` from the solution alone.

Every gradient is checked against central finite differences in float64; the last line is the
largest error, ``max gradient error: X``.

Run: ``python examples/custom_function.py``.
"""

import argparse

import numpy as np

import fnx
import fnx.numpy as fnp


# --- 1. the guide's custom autograd Function --------------------------------------------------


class CustomFunction(fnx.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)  # ReLU-like function

    @staticmethod
    def backward(ctx, grad_output):
        input, = ctx.saved_tensors
        # The guide writes `grad_input = grad_output.clone(); grad_input[input < 0] = 0`.
        # fnx runs a backward as a traced (compiled) program, where arrays are values and
        # in-place indexing raises; the out-of-place form says the same thing.
        return grad_output.masked_fill(input < 0, 0)


# --- 2. a Function with several inputs --------------------------------------------------------


class LinearFunction(fnx.autograd.Function):
    """``input @ weight.T + bias``, as in PyTorch's "Extending torch.autograd" guide."""

    @staticmethod
    def forward(ctx, input, weight, bias=None):
        ctx.save_for_backward(input, weight, bias)
        output = input.mm(weight.t())
        if bias is not None:
            output = output + bias.unsqueeze(0).expand_as(output)
        return output

    @staticmethod
    def backward(ctx, grad_output):
        input, weight, bias = ctx.saved_tensors
        grad_input = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_input = grad_output.mm(weight)
        if ctx.needs_input_grad[1]:
            grad_weight = grad_output.t().mm(input)
        if bias is not None and ctx.needs_input_grad[2]:
            grad_bias = grad_output.sum(0)
        return grad_input, grad_weight, grad_bias


# --- 3. a custom_vjp for numerical stability ---------------------------------------------------


def softplus_naive(x):
    """Stable values, but its automatic gradient is NaN for large |x|."""
    return fnp.where(x > 0, x + fnp.log1p(fnp.exp(-x)), fnp.log1p(fnp.exp(x)))


@fnx.custom_vjp
def softplus(x):
    return softplus_naive(x)


def _softplus_fwd(x):
    return softplus_naive(x), x  # (output, residuals for the backward)


def _softplus_bwd(x, g):
    sigmoid = fnp.exp(-fnp.logaddexp(0.0, -x))  # 1 / (1 + exp(-x)) without overflow
    return (g * sigmoid,)  # one cotangent per argument


softplus.defvjp(_softplus_fwd, _softplus_bwd)


# --- 4. a custom_vjp by implicit differentiation -----------------------------------------------


def _solve_kepler(e, M, iterations):
    def newton_step(i, E):
        return E - (E - e * fnp.sin(E) - M) / (1 - e * fnp.cos(E))

    return fnx.lax.fori_loop(0, iterations, newton_step, M)


@fnx.custom_vjp
def kepler(e, M):
    """The eccentric anomaly ``E`` with ``E - e sin E = M`` (elementwise, ``0 <= e < 1``)."""
    return _solve_kepler(e, M, 30)


def _kepler_fwd(e, M):
    E = kepler(e, M)
    return E, (E, e)


def _kepler_bwd(residuals, g):
    E, e = residuals
    # differentiate F(E, e, M) = E - e sin E - M = 0: dE = (sin E de + dM) / (1 - e cos E)
    g_over_slope = g / (1 - e * fnp.cos(E))
    return g_over_slope * fnp.sin(E), g_over_slope


kepler.defvjp(_kepler_fwd, _kepler_bwd)


# --- checking against finite differences -------------------------------------------------------


def central_differences(f, args, eps):
    """The gradient of the scalar ``f(*args)`` (NumPy float64 arrays in, a float out) with
    respect to every argument, one entry at a time. The step is relative to the entry's size,
    so rounding in ``f`` near large values does not swamp the difference."""
    grads = []
    for i, a in enumerate(args):
        g = np.zeros_like(a)
        for j in np.ndindex(a.shape):
            h = eps * max(1.0, abs(a[j]))
            up, down = [list(args) for _ in range(2)]
            up[i], down[i] = a.copy(), a.copy()
            up[i][j] += h
            down[i][j] -= h
            g[j] = (f(*up) - f(*down)) / (up[i][j] - down[i][j])
        grads.append(g)
    return grads


def max_error(name, got, want):
    error = max(float(np.max(np.abs(np.asarray(a) - b))) for a, b in zip(got, want))
    print(f"  {name:<44} max abs error {error:.1e}")
    return error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=6, help="entries per test input")
    parser.add_argument("--eps", type=float, default=1e-6, help="finite-difference step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    fnx.set_default_dtype(fnx.float64)  # float64 throughout, for the finite differences
    rng = np.random.default_rng(args.seed)
    n, eps = args.size, args.eps
    errors = []

    def weighted_sum(f, weights):
        """A scalar loss ``sum(weights * f(...))`` of NumPy inputs, as a Python float."""
        return lambda *xs: float(fnp.sum(weights * f(*map(fnp.asarray, xs))).item())

    # 1. CustomFunction: the eager tape and fnx.grad, away from the kink at 0
    x = rng.choice([-1, 1], size=n) * rng.uniform(0.1, 2.0, size=n)
    w = fnp.asarray(rng.normal(size=n))
    print("CustomFunction (the guide's ReLU-like Function):")
    want = central_differences(weighted_sum(CustomFunction.apply, w), [x], eps)
    x_t = fnx.tensor(x, requires_grad=True)
    (w * CustomFunction.apply(x_t)).sum().backward()
    errors.append(max_error("loss.backward() (eager tape)", [x_t.grad.numpy()], want))
    g = fnx.grad(lambda x: fnp.sum(w * CustomFunction.apply(x)))(fnp.asarray(x))
    errors.append(max_error("fnx.grad", [g.numpy()], want))

    # 2. LinearFunction: gradients for input, weight and bias
    inp, weight, bias = rng.normal(size=(4, n)), rng.normal(size=(3, n)), rng.normal(size=3)
    w = fnp.asarray(rng.normal(size=(4, 3)))
    print("LinearFunction (three inputs, needs_input_grad):")
    want = central_differences(weighted_sum(LinearFunction.apply, w), [inp, weight, bias], eps)
    tensors = [fnx.tensor(a, requires_grad=True) for a in (inp, weight, bias)]
    (w * LinearFunction.apply(*tensors)).sum().backward()
    errors.append(max_error("loss.backward() (eager tape)", [t.grad.numpy() for t in tensors],
                            want))
    g = fnx.grad(lambda *a: fnp.sum(w * LinearFunction.apply(*a)), argnums=(0, 1, 2))(
        *map(fnp.asarray, (inp, weight, bias)))
    errors.append(max_error("fnx.grad", [a.numpy() for a in g], want))
    # a frozen weight: needs_input_grad is False for it, its backward branch is skipped.
    # The bias is passed as None explicitly: fnx wants one gradient per argument given
    # (PyTorch also takes apply(x, w) and drops backward's trailing None).
    frozen = fnx.tensor(weight)
    x_t = fnx.tensor(inp, requires_grad=True)
    (w * LinearFunction.apply(x_t, frozen, None)).sum().backward()
    want_no_bias = central_differences(
        weighted_sum(lambda a: LinearFunction.apply(a, fnp.asarray(weight), None), w),
        [inp], eps)
    errors.append(max_error("no bias, frozen weight (eager tape)", [x_t.grad.numpy()],
                            want_no_bias))

    # 3. softplus: the custom rule is right where automatic differentiation gives NaN
    print("softplus (custom_vjp for a stable gradient):")
    extremes = fnp.asarray([-800.0, 800.0])
    with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point here
        naive = fnx.vmap(fnx.grad(softplus_naive))(extremes).numpy()
    custom = fnx.jit(fnx.vmap(fnx.grad(softplus)))(extremes).numpy()
    print(f"  at x = -800, 800: automatic gradient {naive}, custom_vjp {custom}")
    errors.append(max_error("custom_vjp at -800, 800 vs sigmoid's limits", [custom],
                            [np.array([0.0, 1.0])]))
    x = rng.normal(size=n) * 5
    w = fnp.asarray(rng.normal(size=n))
    want = central_differences(weighted_sum(softplus, w), [x], eps)
    g = fnx.grad(lambda x: fnp.sum(w * softplus(x)))(fnp.asarray(x))
    errors.append(max_error("fnx.grad", [g.numpy()], want))
    per_element = fnx.jit(fnx.vmap(fnx.grad(softplus)))(fnp.asarray(x)).numpy()
    errors.append(max_error("jit(vmap(grad)) (per element)", [per_element * w.numpy()], want))

    # 4. kepler: implicit gradients of an iterative solver
    e, M = rng.uniform(0.0, 0.9, size=n), rng.uniform(0.0, 2 * np.pi, size=n)
    E = kepler(fnp.asarray(e), fnp.asarray(M)).numpy()
    print(f"kepler (custom_vjp by implicit differentiation), residual "
          f"{np.max(np.abs(E - e * np.sin(E) - M)):.1e}:")
    w = fnp.asarray(rng.normal(size=n))
    want = central_differences(weighted_sum(kepler, w), [e, M], eps)
    loss = lambda e, M: fnp.sum(w * kepler(e, M))  # noqa: E731
    g = fnx.jit(fnx.grad(loss, argnums=(0, 1)))(fnp.asarray(e), fnp.asarray(M))
    errors.append(max_error("jit(grad), implicit rule", [a.numpy() for a in g], want))
    unrolled = fnx.grad(lambda e, M: fnp.sum(w * _solve_kepler(e, M, 30)), argnums=(0, 1))(
        fnp.asarray(e), fnp.asarray(M))
    errors.append(max_error("grad through the 30 Newton steps", [a.numpy() for a in unrolled],
                            want))

    print(f"max gradient error: {max(errors):.2e}")


if __name__ == "__main__":
    main()
