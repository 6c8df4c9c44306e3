"""Per-example gradients with ``fnx.vmap(fnx.grad(...))``, and DP-SGD built on them.

Differentially private SGD (Abadi et al., 2016) needs the gradient of every example in a
batch separately: each one is clipped to an L2 norm of at most ``C``, the clipped gradients are
summed, Gaussian noise of standard deviation ``sigma * C`` is added, and the sum is divided by
the batch size. A framework that only gives the batch's mean gradient makes you loop over
examples; with function transforms, the per-example gradient is one line:

    per_example_grads = fnx.vmap(fnx.grad(loss_one), in_axes=(None, 0, 0))

``loss_one`` is written for ONE example; ``grad`` differentiates it with respect to the
parameters, and ``vmap`` maps that over the batch axis of the data (``None``: the parameters
are shared). ``fnx.jit`` then compiles the whole DP gradient (per-example gradients, norms,
clipping, noise) into one program.

The script

1. computes the clipped, noised batch gradient with the jitted ``vmap(grad)`` and with a Python
   loop over examples (a jitted ``grad`` per example, clipping in NumPy, the same noise), prints
   both timings and the largest difference;
2. does the same per-example gradients for the same network written as an ``nn.Module``
   (modules are pytrees, so ``fnx.grad`` takes one and returns a Module-shaped gradient whose
   parameters carry the batch axis);
3. trains a small MLP on synthetic data (labels from a random "teacher" network) with DP-SGD and,
   for comparison, with ordinary SGD on the same batches, and prints both test accuracies.

Batches are drawn uniformly with a fixed size (DP-SGD's analysis assumes Poisson sampling; a
fixed size keeps one compiled program). The privacy accounting (epsilon) is left out.

Run: ``python examples/per_example_gradients.py``. The last line is ``test accuracy: X`` for
the DP-SGD model.
"""

import argparse
import math
import time
import timeit

import numpy as np

import fnx
import fnx.nn as nn
import fnx.numpy as fnp
import fnx.nn.functional as F
from fnx import optim


def make_data(n, dim, classes, rng):
    """Gaussian inputs labelled by a random two-layer "teacher" network."""
    w1 = rng.normal(size=(dim, 32)) / math.sqrt(dim)
    w2 = rng.normal(size=(32, classes)) * 2
    x = rng.normal(size=(n, dim)).astype(np.float32)
    y = np.argmax(np.tanh(x @ w1) @ w2, axis=1)
    return fnp.asarray(x), fnp.asarray(y)


def init_params(key, dim, hidden, classes):
    k1, k2 = fnx.random.split(key)
    return {"w1": fnx.random.normal(k1, (dim, hidden)) / math.sqrt(dim),
            "b1": fnp.zeros(hidden),
            "w2": fnx.random.normal(k2, (hidden, classes)) / math.sqrt(hidden),
            "b2": fnp.zeros(classes)}


def predict(params, x):
    h = fnp.tanh(x @ params["w1"] + params["b1"])
    return h @ params["w2"] + params["b2"]


def loss_one(params, x, y):
    """The loss of ONE example: ``x`` of shape (dim,), ``y`` a 0-d label."""
    return F.cross_entropy(predict(params, x)[None], y[None])


def loss_batch(params, x, y):
    return F.cross_entropy(predict(params, x), y)


per_example_grads = fnx.vmap(fnx.grad(loss_one), in_axes=(None, 0, 0))


def gaussian_noise(key, params, std):
    """One normal sample per parameter entry, standard deviation ``std``."""
    leaves, tree = fnx.tree.flatten(params)
    keys = fnx.random.split(key, len(leaves))
    return fnx.tree.unflatten(tree, [std * fnx.random.normal(k, p.shape)
                                     for k, p in zip(keys, leaves)])


def dp_gradient(params, x, y, key, clip_norm, noise_multiplier):
    """The DP-SGD gradient: per-example gradients clipped to ``clip_norm``, summed, noised
    with ``N(0, (noise_multiplier * clip_norm)^2)``, divided by the batch size."""
    grads = per_example_grads(params, x, y)  # every leaf gets a leading batch axis
    sq_norms = sum(fnp.sum(g.reshape(g.shape[0], -1) ** 2, axis=1)
                   for g in fnx.tree.leaves(grads))
    scale = fnp.minimum(1.0, clip_norm / (fnp.sqrt(sq_norms) + 1e-12))  # (batch,)
    clipped_sum = fnx.tree.map(
        lambda g: fnp.tensordot(scale, g, axes=1), grads)  # sum_i scale_i * g_i
    noise = gaussian_noise(key, params, noise_multiplier * clip_norm)
    return fnx.tree.map(lambda s, n: (s + n) / x.shape[0], clipped_sum, noise)


def dp_gradient_loop(params, x, y, key, clip_norm, noise_multiplier, grad_one):
    """The same gradient, one example at a time: the reference the vmapped version must
    match."""
    total = fnx.tree.map(lambda p: np.zeros(p.shape, np.float32), params)
    for i in range(x.shape[0]):
        g = fnx.tree.map(lambda a: a.numpy(), grad_one(params, x[i], y[i]))
        norm = math.sqrt(sum(float(np.sum(a.astype(np.float64) ** 2))
                             for a in fnx.tree.leaves(g)))
        scale = min(1.0, clip_norm / (norm + 1e-12))
        total = fnx.tree.map(lambda t, a: t + scale * a, total, g)
    noise = gaussian_noise(key, params, noise_multiplier * clip_norm)
    return fnx.tree.map(lambda s, n: (s + n.numpy()) / x.shape[0], total, noise)


def accuracy(params, x, y):
    return fnp.mean(fnp.argmax(predict(params, x), axis=1) == y).item()


def best_time(f, repeats):
    """The fastest of ``repeats`` calls of ``f()``, in seconds."""
    return min(timeit.repeat(f, number=1, repeat=repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-size", type=int, default=8192)
    parser.add_argument("--test-size", type=int, default=2048)
    parser.add_argument("--dim", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--clip-norm", type=float, default=1.0, help="C")
    parser.add_argument("--noise-multiplier", type=float, default=1.0, help="sigma")
    parser.add_argument("--timing-repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    x_all, y_all = make_data(args.train_size + args.test_size, args.dim, args.classes, rng)
    x_train, y_train = x_all[:args.train_size], y_all[:args.train_size]
    x_test, y_test = x_all[args.train_size:], y_all[args.train_size:]
    key = fnx.random.key(args.seed)
    key, init_key = fnx.random.split(key)
    params = init_params(init_key, args.dim, args.hidden, args.classes)
    clip, sigma = args.clip_norm, args.noise_multiplier

    # --- 1. vmap(grad) against a loop over examples ---------------------------------------
    dp_grad = fnx.jit(dp_gradient)
    grad_one = fnx.jit(fnx.grad(loss_one))
    xb, yb = x_train[:args.batch_size], y_train[:args.batch_size]
    fast = dp_grad(params, xb, yb, key, clip, sigma)
    slow = dp_gradient_loop(params, xb, yb, key, clip, sigma, grad_one)
    diff = max(float(np.max(np.abs(a.numpy() - b)))
               for a, b in zip(fnx.tree.leaves(fast), fnx.tree.leaves(slow)))
    t_vmap = best_time(lambda: dp_grad(params, xb, yb, key, clip, sigma), args.timing_repeats)
    t_loop = best_time(lambda: dp_gradient_loop(params, xb, yb, key, clip, sigma, grad_one),
                       max(1, args.timing_repeats // 2))
    print(f"DP gradient of a batch of {args.batch_size}: jit(vmap(grad)) {t_vmap * 1e3:.2f} ms, "
          f"Python loop of jit(grad) {t_loop * 1e3:.1f} ms ({t_loop / t_vmap:.0f}x slower)")
    print(f"max abs diff vs loop: {diff:.2e}")

    # --- 2. the same network as an nn.Module -------------------------------------------------
    model = nn.Sequential(nn.Linear(args.dim, args.hidden), nn.Tanh(),
                          nn.Linear(args.hidden, args.classes))
    with fnx.no_grad():  # nn.Linear keeps weight as (out, in): the transposes of w1, w2
        model[0].weight.copy_(params["w1"].T)
        model[0].bias.copy_(params["b1"])
        model[2].weight.copy_(params["w2"].T)
        model[2].bias.copy_(params["b2"])

    def module_loss_one(model, x, y):
        return F.cross_entropy(model(x[None]), y[None])

    module_grads = fnx.jit(fnx.vmap(fnx.grad(module_loss_one), in_axes=(None, 0, 0)))(
        model, xb, yb)
    dict_grads = fnx.jit(per_example_grads)(params, xb, yb)
    module_diff = max(
        float(fnp.max(fnp.abs(module_grads[0].weight - fnp.swapaxes(dict_grads["w1"], 1, 2)))),
        float(fnp.max(fnp.abs(module_grads[2].bias - dict_grads["b2"]))))
    print(f"nn.Module per-example gradients: {type(module_grads).__name__} with "
          f"{[tuple(p.shape) for p in module_grads.parameters()]}; "
          f"max abs diff vs the params dict {module_diff:.1e}")

    # --- 3. train with DP-SGD and, for comparison, without privacy --------------------------
    tx = optim.sgd(args.lr, momentum=0.9)

    @fnx.jit
    def dp_step(params, opt_state, x, y, key):
        grads = dp_gradient(params, x, y, key, clip, sigma)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    @fnx.jit
    def plain_step(params, opt_state, x, y):
        grads = fnx.grad(loss_batch)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optim.apply_updates(params, updates), opt_state

    dp_params, dp_state = params, tx.init(params)
    plain_params, plain_state = params, tx.init(params)
    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        idx = fnp.asarray(rng.choice(args.train_size, args.batch_size, replace=False))
        x, y = x_train[idx], y_train[idx]
        key, step_key = fnx.random.split(key)
        dp_params, dp_state = dp_step(dp_params, dp_state, x, y, step_key)
        plain_params, plain_state = plain_step(plain_params, plain_state, x, y)
        if step % max(1, args.steps // 5) == 0 or step == args.steps:
            print(f"step {step}: DP-SGD test accuracy {accuracy(dp_params, x_test, y_test):.3f}, "
                  f"SGD {accuracy(plain_params, x_test, y_test):.3f} "
                  f"({time.perf_counter() - start:.1f} s)")

    print(f"clip norm C = {clip}, noise multiplier sigma = {sigma}, sampling rate "
          f"{args.batch_size / args.train_size:.4f}, {args.steps} steps")
    print(f"chance level: {np.bincount(y_test.numpy()).max() / args.test_size:.3f} "
          f"(the most frequent class)")
    print(f"non-private SGD test accuracy: {accuracy(plain_params, x_test, y_test):.3f}")
    print(f"test accuracy: {accuracy(dp_params, x_test, y_test):.3f}")


if __name__ == "__main__":
    main()
