"""The model of ``train_digits.py`` as pure functions, JAX-style: no Module, no optimizer object,
no global random state.

* The parameters are a pytree (a dict of dicts of arrays) and so are BatchNorm's running
  statistics; ``forward(params, stats, x, key, training)`` returns the logits and the new
  statistics.
* Randomness is explicit: dropout draws from an ``fnx.random`` key, split off per step, and
  the epoch's shuffle is ``fnx.random.permutation`` of a key folded in from the epoch.
* ``fnx.value_and_grad(loss, has_aux=True)`` gives the loss, the new statistics and the
  gradients; the optax-style optimizer from ``fnx.optim`` (``adam`` on a StepLR-like
  ``exponential_decay(..., staircase=True)`` schedule, ``update`` and ``apply_updates``)
  turns them into new parameters. The whole step is one ``fnx.jit``: one fused, compiled
  program from batch to new parameters and optimizer state.

Run: ``python examples/digits_functional.py`` (a few seconds on 2 CPU cores once the kernels
are in the on-disk cache). The last line is ``test accuracy: X``.
"""

import argparse
import math
import time

import fnx
import fnx.numpy as fnp
from fnx.nn import functional as F
from fnx.optim import schedules

LAYERS = ("fc1", "fc2", "fc3")


def init_params(key, sizes):
    """PyTorch's ``nn.Linear`` initialisation (uniform in +-1/sqrt(fan_in)), as a dict of
    dicts. The hidden layers have no bias (BatchNorm's shift replaces it)."""
    params, stats = {}, {}
    keys = fnx.random.split(key, len(LAYERS))
    for i, (name, n_in, n_out) in enumerate(zip(LAYERS, sizes[:-1], sizes[1:], strict=True)):
        w_key, b_key = fnx.random.split(keys[i])
        bound = 1.0 / math.sqrt(n_in)
        params[name] = {"w": fnx.random.uniform(w_key, (n_in, n_out), minval=-bound,
                                                maxval=bound)}
        if name == LAYERS[-1]:
            params[name]["b"] = fnx.random.uniform(b_key, (n_out,), minval=-bound, maxval=bound)
        else:
            params[f"bn{i + 1}"] = {"weight": fnp.ones(n_out), "bias": fnp.zeros(n_out)}
            stats[f"bn{i + 1}"] = {"mean": fnp.zeros(n_out), "var": fnp.ones(n_out)}
    return params, stats


def forward(params, stats, x, key, training, dropout=0.2):
    """Logits and the new running statistics: ``Linear -> BatchNorm -> ReLU -> Dropout``
    twice, then a linear head."""
    x = fnp.reshape(x, (x.shape[0], -1))
    keys = fnx.random.split(key, 2)
    new_stats = {}
    for i in (1, 2):
        bn, s = params[f"bn{i}"], stats[f"bn{i}"]
        x, mean, var = F.batch_norm_with_stats(x @ params[f"fc{i}"]["w"], s["mean"], s["var"],
                                               bn["weight"], bn["bias"], training=training)
        new_stats[f"bn{i}"] = {"mean": mean, "var": var}
        x = F.dropout(F.relu(x), dropout, training=training, key=keys[i - 1])
    return x @ params["fc3"]["w"] + params["fc3"]["b"], new_stats


def loss_fn(params, stats, x, y, key):
    logits, new_stats = forward(params, stats, x, key, training=True)
    return F.cross_entropy(logits, y), new_stats


def make_step(optimizer):
    @fnx.jit
    def train_step(params, opt_state, stats, x, y, key):
        (loss, stats), grads = fnx.value_and_grad(loss_fn, has_aux=True)(params, stats, x, y,
                                                                           key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return fnx.optim.apply_updates(params, updates), opt_state, stats, loss

    return train_step


@fnx.jit
def predict(params, stats, x):
    logits, _ = forward(params, stats, x, fnx.random.key(0), training=False)
    return fnp.argmax(logits, axis=-1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--hidden", type=int, default=512)
    args = parser.parse_args()
    start = time.perf_counter()

    x_train, y_train = fnx.datasets.digits(train=True).tensors
    x_test, y_test = fnx.datasets.digits(train=False).tensors
    n = len(y_train)
    steps_per_epoch = n // args.batch_size  # the last, short batch is dropped (BatchNorm)

    init_key, data_key, dropout_key = fnx.random.split(fnx.random.key(args.seed), 3)
    params, stats = init_params(init_key, (64, args.hidden, args.hidden, 10))
    # StepLR(step_size=10 epochs, gamma=0.5) as a schedule of the optimizer's step count
    learning_rate = schedules.exponential_decay(args.lr, 10 * steps_per_epoch, 0.5,
                                                staircase=True)
    optimizer = fnx.optim.adam(learning_rate)
    opt_state = optimizer.init(params)
    train_step = make_step(optimizer)

    for epoch in range(args.epochs):
        order = fnx.random.permutation(fnx.random.fold_in(data_key, epoch), n)
        total = 0.0
        for i in range(steps_per_epoch):
            batch = order[i * args.batch_size:(i + 1) * args.batch_size]
            key = fnx.random.fold_in(dropout_key, epoch * steps_per_epoch + i)
            params, opt_state, stats, loss = train_step(params, opt_state, stats,
                                                        x_train[batch], y_train[batch], key)
            total += loss.item()
        print(f"epoch {epoch + 1}: train loss {total / steps_per_epoch:.4f}")

    accuracy = fnp.mean(predict(params, stats, x_test) == y_test).item()
    print(f"{time.perf_counter() - start:.1f} s")
    print(f"test accuracy: {accuracy:.3f}")


if __name__ == "__main__":
    main()
