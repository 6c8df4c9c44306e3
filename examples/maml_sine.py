"""MAML on sine-wave regression: differentiating through gradient descent.

Model-Agnostic Meta-Learning (Finn, Abbeel and Levine, 2017) looks for initial weights from
which ONE small gradient step on a few examples of a new task already fits that task. The
tasks here are the paper's sine waves ``y = A sin(x + phase)`` with ``A`` in [0.1, 5] and the
phase in [0, pi], observed at ``--shots`` points in [-5, 5]. A fixed initialisation cannot fit
them all (their mean is about zero), so before adaptation the error is large; after one inner
step from the meta-learned weights it is small.

The meta-objective is the query-set loss after an inner SGD step on the support set,

    maml_loss(params) = mse(params - alpha * grad(mse)(params, support), query),

so its gradient differentiates through ``fnx.grad``: grad of grad, second derivatives
included (``--first-order`` stops them with ``fnx.stop_gradient``, the FOMAML variant). All of
it is the functional API: parameters are a list of ``(w, b)`` pairs, ``fnx.vmap`` maps the
adaptation over a batch of tasks, ``fnx.jit`` compiles the whole meta-step (inner gradient,
outer gradient and the optax-style Adam update) into one program.

Run: ``python examples/maml_sine.py``. It prints the meta-test error of held-out tasks before
and after adaptation; the last line is ``meta-test mse after adaptation: X``.
"""

import argparse
import math
import time

import numpy as np

import fnx
import fnx.numpy as fnp
import fnx.nn.functional as F
from fnx import optim


def init_params(key, sizes):
    """PyTorch's ``nn.Linear`` initialisation: uniform in +-1/sqrt(fan_in)."""
    params = []
    for k, (fan_in, fan_out) in zip(fnx.random.split(key, len(sizes) - 1),
                                    zip(sizes[:-1], sizes[1:])):
        kw, kb = fnx.random.split(k)
        bound = 1 / math.sqrt(fan_in)
        params.append((fnx.random.uniform(kw, (fan_in, fan_out), minval=-bound, maxval=bound),
                       fnx.random.uniform(kb, (fan_out,), minval=-bound, maxval=bound)))
    return params


def net(params, x):
    for w, b in params[:-1]:
        x = F.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def mse(params, x, y):
    return fnp.mean((net(params, x) - y) ** 2)


def adapt(params, x, y, inner_lr, steps, first_order=False):
    """``steps`` steps of plain gradient descent on one task's support set."""
    for _ in range(steps):
        grads = fnx.grad(mse)(params, x, y)
        if first_order:  # FOMAML: treat the inner gradient as a constant
            grads = fnx.stop_gradient(grads)
        params = fnx.tree.map(lambda p, g: p - inner_lr * g, params, grads)
    return params


def sample_tasks(rng, num_tasks, shots, queries):
    """Support and query sets of ``num_tasks`` random sine waves, each ``(tasks, points, 1)``."""
    amplitude = rng.uniform(0.1, 5.0, size=(num_tasks, 1, 1))
    phase = rng.uniform(0.0, np.pi, size=(num_tasks, 1, 1))
    x = rng.uniform(-5.0, 5.0, size=(num_tasks, shots + queries, 1))
    y = amplitude * np.sin(x + phase)
    as_array = lambda a: fnp.asarray(a.astype(np.float32))  # noqa: E731
    return (as_array(x[:, :shots]), as_array(y[:, :shots]),
            as_array(x[:, shots:]), as_array(y[:, shots:]))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=15000, help="meta-training steps")
    parser.add_argument("--meta-batch", type=int, default=25, help="tasks per meta-step")
    parser.add_argument("--shots", type=int, default=10, help="support points per task")
    parser.add_argument("--hidden", type=int, default=40)
    parser.add_argument("--inner-lr", type=float, default=0.01)
    parser.add_argument("--inner-steps", type=int, default=1)
    parser.add_argument("--meta-lr", type=float, default=1e-3)
    parser.add_argument("--first-order", action="store_true", help="FOMAML")
    parser.add_argument("--test-tasks", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    params = init_params(fnx.random.key(args.seed), (1, args.hidden, args.hidden, 1))
    tx = optim.adam(args.meta_lr)
    opt_state = tx.init(params)

    def maml_loss(params, xs, ys, xq, yq):
        """Mean query loss over a batch of tasks, each after adapting on its support set."""
        def one_task(xs, ys, xq, yq):
            adapted = adapt(params, xs, ys, args.inner_lr, args.inner_steps, args.first_order)
            return mse(adapted, xq, yq)
        return fnp.mean(fnx.vmap(one_task)(xs, ys, xq, yq))

    @fnx.jit
    def meta_step(params, opt_state, xs, ys, xq, yq):
        loss, grads = fnx.value_and_grad(maml_loss)(params, xs, ys, xq, yq)  # grad of grad
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state, loss

    start, running = time.perf_counter(), []
    for step in range(1, args.steps + 1):
        tasks = sample_tasks(rng, args.meta_batch, args.shots, args.shots)
        params, opt_state, loss = meta_step(params, opt_state, *tasks)
        running.append(loss)
        if step % max(1, args.steps // 10) == 0 or step == args.steps:
            mean = float(np.mean([v.item() for v in running]))
            running = []
            print(f"step {step}: meta-train query mse {mean:.3f} "
                  f"({time.perf_counter() - start:.1f} s)")

    # meta-test: new tasks, adapt on the support set, measure on the query set
    xs, ys, xq, yq = sample_tasks(rng, args.test_tasks, args.shots, 100)

    @fnx.jit(static_argnums=5)  # `steps` is a Python int: one program per number of steps
    def test_mse(params, xs, ys, xq, yq, steps):
        def one_task(xs, ys, xq, yq):
            return mse(adapt(params, xs, ys, args.inner_lr, steps), xq, yq)
        return fnp.mean(fnx.vmap(one_task)(xs, ys, xq, yq))

    results = {s: test_mse(params, xs, ys, xq, yq, s).item()
               for s in sorted({0, args.inner_steps, 10})}
    print(f"meta-test on {args.test_tasks} new tasks, {args.shots} shots each:")
    for s, value in results.items():
        print(f"  after {s:2d} inner step(s): mse {value:.3f}")
    print(f"meta-test mse before adaptation: {results[0]:.3f}")
    print(f"meta-test mse after adaptation: {results[args.inner_steps]:.3f}")


if __name__ == "__main__":
    main()
