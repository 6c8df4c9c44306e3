"""Benchmark fnx.jit.vecmath against Numba's libm calls and numpy (single thread).

    python benchmarks/bench_vecmath.py [--n-log2 24] [--repeat 7]

Times the float32 elementwise expression

    tanh(x*0.5 + y) * sigmoid(x) + 0.1*x*x - 0.25*y

over 2**24 elements three ways: an @njit loop calling vecmath's vtanh/vsigmoid, the same loop
with np.tanh/np.exp (Numba lowers those to scalar libm calls, which block vectorization), and
the numpy expression.  Prints the median of several runs, the speed-up against numpy, the
one-time compile cost, and the max abs error against a float64 evaluation.
"""

import argparse
import os
import sys
import time

import _one_thread  # noqa: E402,F401  (before numpy/numba)

import numpy as np  # noqa: E402
import numba  # noqa: E402
from numba import njit  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from fnx.jit.vecmath import vsigmoid, vtanh  # noqa: E402

F = np.float32


@njit(error_model="numpy", fastmath={"contract"})
def loop_vecmath(x, y, out):
    for i in range(x.size):
        xi = x[i]
        yi = y[i]
        out[i] = (vtanh(xi * F(0.5) + yi) * vsigmoid(xi)
                  + F(0.1) * xi * xi - F(0.25) * yi)


@njit(error_model="numpy", fastmath={"contract"})
def loop_libm(x, y, out):
    for i in range(x.size):
        xi = x[i]
        yi = y[i]
        out[i] = (np.tanh(xi * F(0.5) + yi) * (F(1.0) / (F(1.0) + np.exp(-xi)))
                  + F(0.1) * xi * xi - F(0.25) * yi)


def numpy_expr(x, y, out):
    out[...] = np.tanh(x * 0.5 + y) * (1.0 / (1.0 + np.exp(-x))) + 0.1 * x * x - 0.25 * y


def reference(x, y):
    x = x.astype(np.float64)
    y = y.astype(np.float64)
    return np.tanh(x * 0.5 + y) / (1.0 + np.exp(-x)) + 0.1 * x * x - 0.25 * y


def median_time(fn, args, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n-log2", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    n = 2 ** args.n_log2
    x = rng.standard_normal(n).astype(F) * F(3)
    y = rng.standard_normal(n).astype(F)
    ref = reference(x, y)

    rows = []
    for name, fn in (("njit + vecmath", loop_vecmath), ("njit + np.tanh/np.exp (libm)", loop_libm),
                     ("numpy expression", numpy_expr)):
        out = np.empty_like(x)
        t0 = time.perf_counter()
        fn(x, y, out)                      # compiles the njit variants
        first = time.perf_counter() - t0
        t = median_time(fn, (x, y, out), args.repeat)
        err = float(np.max(np.abs(out.astype(np.float64) - ref)))
        rows.append((name, t, first - t, err))

    t_np = rows[-1][1]
    print(f"float32, n = 2**{args.n_log2}, 1 thread, median of {args.repeat} runs "
          f"(numba {numba.__version__}, numpy {np.__version__})")
    print(f"{'variant':32s} {'time ms':>9s} {'vs numpy':>9s} {'compile s':>10s} "
          f"{'max abs err':>12s}")
    for name, t, comp, err in rows:
        comp_s = f"{comp:10.2f}" if name != "numpy expression" else f"{'-':>10s}"
        print(f"{name:32s} {t * 1e3:9.1f} {t_np / t:8.1f}x {comp_s} {err:12.2e}")


if __name__ == "__main__":
    main()
