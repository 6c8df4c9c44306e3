"""Hessian-vector products without the Hessian: forward-over-reverse, reverse-over-reverse.

For a loss ``L(theta)`` over ``P`` parameters the Hessian ``H`` is a ``P x P`` matrix: too large
to form for real models, and O(P) gradient evaluations to compute. A Hessian-vector product
``H v`` costs a small constant times one gradient, and it is what second-order methods need
(Newton-CG, curvature estimates, influence functions, sharpness). With composable transforms
it is one line, several ways:

* forward-over-reverse: ``fnx.jvp(fnx.grad(L), (theta,), (v,))[1]`` -- the directional
  derivative of the gradient along ``v`` (usually the cheapest);
* reverse-over-reverse: ``fnx.grad(lambda t: fnp.vdot(fnx.grad(L)(t), v))(theta)``;
* reverse-over-forward: ``fnx.grad(lambda t: fnx.jvp(L, (t,), (v,))[1])(theta)``.

The script builds a small MLP regression loss over a flat parameter vector (so the Hessian is
a matrix), checks all three against ``fnx.hessian(L)(theta) @ v`` in float64 for a batch of
random vectors (``fnx.vmap`` over ``v``), times them against the full Hessian, and uses HVPs for
something: the largest Hessian eigenvalue by power iteration, compared with
``numpy.linalg.eigvalsh`` of the full matrix.

Run: ``python examples/hessian_vector_products.py``. The last line is
``max abs diff hvp vs hessian: X``.
"""

import argparse
import math
import time
import timeit

import numpy as np

import fnx
import fnx.numpy as fnp


def make_problem(n, dim, hidden, rng):
    """A float64 regression problem and the loss of a one-hidden-layer tanh MLP whose weights
    are the slices of one flat vector ``theta``."""
    x = fnp.asarray(rng.normal(size=(n, dim)))
    y = fnp.asarray(np.sin(x.numpy() @ rng.normal(size=dim)))
    sizes = {"w1": (dim, hidden), "b1": (hidden,), "w2": (hidden,), "b2": ()}

    def unpack(theta):
        params, i = {}, 0
        for name, shape in sizes.items():
            size = math.prod(shape)
            params[name] = theta[i:i + size].reshape(shape)
            i += size
        return params

    def loss(theta):
        p = unpack(theta)
        prediction = fnp.tanh(x @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
        return fnp.mean((prediction - y) ** 2)

    num_params = sum(math.prod(shape) for shape in sizes.values())
    return loss, num_params


def best_time(f, repeats):
    """The fastest of ``repeats`` calls of ``f()``, in seconds."""
    return min(timeit.repeat(f, number=1, repeat=repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--vectors", type=int, default=8, help="random v to check")
    parser.add_argument("--power-iterations", type=int, default=300)
    parser.add_argument("--timing-repeats", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    loss, num_params = make_problem(args.samples, args.dim, args.hidden, rng)
    theta = fnp.asarray(rng.normal(size=num_params) * 0.5)
    vs = fnp.asarray(rng.normal(size=(args.vectors, num_params)))
    print(f"{num_params} parameters: the Hessian is {num_params} x {num_params}")

    def hvp_fwd_rev(theta, v):
        return fnx.jvp(fnx.grad(loss), (theta,), (v,))[1]

    def hvp_rev_rev(theta, v):
        return fnx.grad(lambda t: fnp.vdot(fnx.grad(loss)(t), v))(theta)

    def hvp_rev_fwd(theta, v):
        return fnx.grad(lambda t: fnx.jvp(loss, (t,), (v,))[1])(theta)

    hessian = fnx.jit(fnx.hessian(loss))
    start = time.perf_counter()
    h = hessian(theta).numpy()
    print(f"full Hessian: first call (trace + compile) {time.perf_counter() - start:.2f} s, "
          f"symmetric to {np.max(np.abs(h - h.T)):.1e}")
    reference = vs.numpy() @ h  # row i is H @ v_i (H is symmetric)

    worst = 0.0
    for name, hvp in (("forward-over-reverse", hvp_fwd_rev),
                      ("reverse-over-reverse", hvp_rev_rev),
                      ("reverse-over-forward", hvp_rev_fwd)):
        one = fnx.jit(hvp)
        batched = fnx.jit(fnx.vmap(hvp, in_axes=(None, 0)))  # H @ v for every row of vs
        diff = np.max(np.abs(batched(theta, vs).numpy() - reference))
        diff_one = np.max(np.abs(one(theta, vs[0]).numpy() - reference[0]))
        worst = max(worst, diff, diff_one)
        t = best_time(lambda: one(theta, vs[0]), args.timing_repeats)
        print(f"{name:>21}: max abs diff {max(diff, diff_one):.1e}, {t * 1e3:.3f} ms per HVP")
    t_hessian = best_time(lambda: hessian(theta), max(1, args.timing_repeats // 4))
    print(f"{'full Hessian':>21}: {t_hessian * 1e3:.3f} ms")

    # the largest eigenvalue of H from HVPs alone, by power iteration on H
    hvp = fnx.jit(hvp_fwd_rev)
    v = vs[0] / fnp.linalg.norm(vs[0])
    for _ in range(args.power_iterations):
        hv = hvp(theta, v)
        v = hv / fnp.linalg.norm(hv)
    rayleigh = fnp.vdot(v, hvp(theta, v)).item()
    eigenvalues = np.linalg.eigvalsh(h)
    dominant = eigenvalues[np.argmax(np.abs(eigenvalues))]
    print(f"dominant Hessian eigenvalue: power iteration with HVPs {rayleigh:.6f}, "
          f"eigvalsh of the full Hessian {dominant:.6f}")
    print(f"max abs diff hvp vs hessian: {worst:.2e}")


if __name__ == "__main__":
    main()
