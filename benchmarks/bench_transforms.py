"""Transform overheads, eager (no jit): per-example gradients with ``vmap(grad(loss))`` vs a
Python loop of ``grad`` calls, and the per-call overhead of ``grad`` on a tiny function.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_transforms.py [--quick]

Prints a markdown table. When JAX and/or PyTorch import, the same per-example gradients are
also timed with ``jax.jit(jax.vmap(jax.grad(loss)))`` (and eager ``jax.vmap``) and
``torch.func.vmap(torch.func.grad(loss))``, after checking that they agree with fnx's; JAX is
forced onto the CPU and every library runs on one thread.
"""

import argparse
import os
import time

import _one_thread  # noqa: E402,F401  (before numpy/numba/jax/torch)

import sys  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fnx  # noqa: E402
import fnx.numpy as fnp  # noqa: E402


def mlp_loss(params, x, y):
    """MLP 100-64-1 with tanh and squared loss, on one example."""
    h = fnp.tanh(x @ params["w1"] + params["b1"])
    pred = h @ params["w2"] + params["b2"]
    return fnp.sum((pred - y) ** 2)


def init(rng, d_in=100, d_h=64):
    return {
        "w1": fnp.asarray(rng.standard_normal((d_in, d_h)).astype(np.float32) / 10),
        "b1": fnp.asarray(np.zeros(d_h, np.float32)),
        "w2": fnp.asarray(rng.standard_normal((d_h, 1)).astype(np.float32) / 8),
        "b2": fnp.asarray(np.zeros(1, np.float32)),
    }


def best_time(fn, repeat, number=1):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - t0) / number)
    return best


def per_example_grads(batch, repeat):
    rng = np.random.default_rng(0)
    params = init(rng)
    xs = fnp.asarray(rng.standard_normal((batch, 100)).astype(np.float32))
    ys = fnp.asarray(rng.standard_normal((batch, 1)).astype(np.float32))
    g = fnx.grad(mlp_loss)
    vg = fnx.vmap(g, in_axes=(None, 0, 0))

    def loop():
        return [g(params, xs[i], ys[i]) for i in range(batch)]

    out_v, out_l = vg(params, xs, ys), loop()
    for k in params:  # the two must agree before their times mean anything
        np.testing.assert_allclose(np.asarray(out_v[k]),
                                   np.stack([np.asarray(o[k]) for o in out_l]),
                                   rtol=1e-4, atol=1e-5)
    t_vmap = best_time(lambda: vg(params, xs, ys), repeat)
    t_loop = best_time(loop, max(1, repeat // 3))
    return t_vmap, t_loop


def jit_per_example_grads(batch, repeat):
    """``jit(vmap(grad(loss)))``: the same per-example gradients, compiled."""
    rng = np.random.default_rng(0)
    params = init(rng)
    xs = fnp.asarray(rng.standard_normal((batch, 100)).astype(np.float32))
    ys = fnp.asarray(rng.standard_normal((batch, 1)).astype(np.float32))
    vg = fnx.vmap(fnx.grad(mlp_loss), in_axes=(None, 0, 0))
    jvg = fnx.jit(vg)
    out_j, out_v = jvg(params, xs, ys), vg(params, xs, ys)
    for k in params:
        np.testing.assert_allclose(np.asarray(out_j[k]), np.asarray(out_v[k]),
                                   rtol=1e-4, atol=1e-5)
    return best_time(lambda: jvg(params, xs, ys), repeat * 3)


def peer_per_example_grads(batch, repeat):
    """The same per-example gradients in JAX and PyTorch, where they import: a list of
    (benchmark, seconds, notes) rows, each checked against fnx's ``vmap(grad)`` first."""
    rng = np.random.default_rng(0)
    params = init(rng)
    xs_np = rng.standard_normal((batch, 100)).astype(np.float32)
    ys_np = rng.standard_normal((batch, 1)).astype(np.float32)
    ref = fnx.vmap(fnx.grad(mlp_loss), in_axes=(None, 0, 0))(params, fnp.asarray(xs_np),
                                                              fnp.asarray(ys_np))
    ref = {k: np.asarray(ref[k]) for k in params}
    p_np = {k: np.asarray(v) for k, v in params.items()}

    def check(out, who):
        for k in params:
            np.testing.assert_allclose(np.asarray(out[k]), ref[k], rtol=1e-3, atol=1e-5,
                                       err_msg=f"{who}: per-example gradient of {k}")

    rows = []
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        rows.append((f"jax.jit(vmap(grad(mlp))) batch {batch}", None, "jax not installed"))
    else:
        def jloss(params, x, y):
            h = jnp.tanh(x @ params["w1"] + params["b1"])
            pred = h @ params["w2"] + params["b2"]
            return jnp.sum((pred - y) ** 2)

        pj = {k: jnp.asarray(v) for k, v in p_np.items()}
        xj, yj = jnp.asarray(xs_np), jnp.asarray(ys_np)
        vg = jax.vmap(jax.grad(jloss), in_axes=(None, 0, 0))
        jvg = jax.jit(vg)
        check(jvg(pj, xj, yj), "jax.jit(vmap(grad))")
        check(vg(pj, xj, yj), "jax.vmap(grad)")
        t_jit = best_time(lambda: jax.block_until_ready(jvg(pj, xj, yj)), repeat * 3)
        t_eager = best_time(lambda: jax.block_until_ready(vg(pj, xj, yj)), repeat)
        rows.append((f"jax.jit(vmap(grad(mlp))) batch {batch}", t_jit,
                     f"jax {jax.__version__}, CPU, one thread"))
        rows.append((f"jax.vmap(grad(mlp)) batch {batch}, no jit", t_eager, "op-by-op"))
    try:
        import torch
        import torch.func
    except ImportError:
        rows.append((f"torch.func.vmap(grad(mlp)) batch {batch}", None, "torch not installed"))
    else:
        torch.set_num_threads(1)

        def tloss(params, x, y):
            h = torch.tanh(x @ params["w1"] + params["b1"])
            pred = h @ params["w2"] + params["b2"]
            return torch.sum((pred - y) ** 2)

        pt = {k: torch.from_numpy(v.copy()) for k, v in p_np.items()}
        xt, yt = torch.from_numpy(xs_np.copy()), torch.from_numpy(ys_np.copy())
        tvg = torch.func.vmap(torch.func.grad(tloss), in_dims=(None, 0, 0))
        check(tvg(pt, xt, yt), "torch.func.vmap(grad)")
        rows.append((f"torch.func.vmap(grad(mlp)) batch {batch}",
                     best_time(lambda: tvg(pt, xt, yt), repeat * 3),
                     f"torch {torch.__version__}, eager, one thread"))
    return rows


def grad_overhead(repeat):
    x = fnp.asarray(np.float32(0.5))
    f = fnx.grad(lambda x: fnp.sin(x) * x)
    t_grad = best_time(lambda: f(x), repeat, number=200)
    t_eval = best_time(lambda: fnp.sin(x) * x, repeat, number=200)
    return t_grad, t_eval


def _broadcasting_dot_general_batch(axis_size, args, dims, *, dimension_numbers):
    """The old rule, for comparison: broadcast the unbatched operand to the batch size."""
    from fnx.core.ops.linalg import dot_general_p
    from fnx.core.ops.shape import broadcast_batched, move_axis

    (lc, rc), (lb, rb) = dimension_numbers
    (lhs, rhs), (dl, dr) = args, dims
    lhs = broadcast_batched(lhs, axis_size) if dl is None else move_axis(lhs, dl, 0)
    rhs = broadcast_batched(rhs, axis_size) if dr is None else move_axis(rhs, dr, 0)
    shift = lambda axes: tuple(a + 1 for a in axes)  # noqa: E731
    new = ((shift(lc), shift(rc)), ((0,) + shift(lb), (0,) + shift(rb)))
    return dot_general_p.bind(lhs, rhs, dimension_numbers=new), 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--compare-broadcast-rule", action="store_true",
                        help="also time vmap(grad) with the old broadcasting dot_general rule")
    args = parser.parse_args()
    repeat = 3 if args.quick else 7
    t_vmap, t_loop = per_example_grads(args.batch, repeat)
    t_jit = jit_per_example_grads(args.batch, repeat)
    t_old = None
    if args.compare_broadcast_rule:
        from fnx.core.ops.linalg import dot_general_p

        rule, dot_general_p.batch = dot_general_p.batch, _broadcasting_dot_general_batch
        try:
            t_old, _ = per_example_grads(args.batch, repeat)
        finally:
            dot_general_p.batch = rule
    peer_rows = peer_per_example_grads(args.batch, repeat)
    t_grad, t_eval = grad_overhead(repeat)
    print("| benchmark | time | notes |")
    print("|---|---|---|")
    print(f"| vmap(grad(mlp)) batch {args.batch} | {t_vmap * 1e3:.2f} ms | MLP 100-64-1, tanh, "
          f"squared loss, float32, eager |")
    print(f"| jit(vmap(grad(mlp))) batch {args.batch} | {t_jit * 1e3:.2f} ms | compiled; target "
          f"<= torch.func 2.4 ms |")
    for name, t, note in peer_rows:
        print(f"| {name} | {'-' if t is None else f'{t * 1e3:.2f} ms'} | {note} |")
    print(f"| loop of grad(mlp) x {args.batch} | {t_loop * 1e3:.1f} ms | |")
    if t_old is not None:
        print(f"| vmap(grad(mlp)), old broadcasting dot_general batch rule | "
              f"{t_old * 1e3:.2f} ms | {t_old / t_vmap:.1f}x slower |")
    print(f"| speed-up vmap vs loop | {t_loop / t_vmap:.1f}x | target >= 20x |")
    print(f"| grad(lambda x: sin(x) * x) | {t_grad * 1e6:.0f} us/call | scalar float32 |")
    print(f"| eager sin(x) * x | {t_eval * 1e6:.1f} us/call | for scale |")


if __name__ == "__main__":
    main()
