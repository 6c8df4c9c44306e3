"""Eager-mode overhead of fnx against NumPy (and PyTorch / JAX when importable).

Two regimes:

* small-op dispatch: ``x + y``, ``x * 2.0``, ``fnp.exp(x)``, ``x.sum()`` on 16 float32
  elements, where the time is almost all Python overhead (target: <= 5 µs per op);
* large elementwise throughput: ``x + y`` and ``x * y`` on 2**24 float32 elements, where the
  time is memory bandwidth (target: within 1.1x of NumPy).

Each number is the median over many repeats of the mean time per call. Run with
``python benchmarks/bench_eager.py`` (``--quick`` for fewer repeats); prints a markdown table.
"""

import os

import _one_thread  # noqa: E402,F401  (before numpy/numba/jax/torch)

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import timeit  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import fnx  # noqa: E402
import fnx.numpy as fnp  # noqa: E402

SMALL_N = 16
LARGE_N = 2**24


def median_us(fns, budget_s, repeat, timer=time.perf_counter):
    """Median over ``repeat`` runs of the mean µs per call, for each of ``fns`` (a dict of
    zero-argument callables). Each run of one backend calls it for about ``budget_s``
    seconds; backends are timed in turn within each run, in alternating order, so a change
    of machine load affects all of them alike. ``timer=time.process_time`` counts CPU time."""
    numbers = {}
    for name, fn in fns.items():
        fn()  # warm up caches (and any lazy imports)
        once = max(timeit.timeit(fn, number=3, timer=timer) / 3, 1e-7)
        numbers[name] = max(1, int(budget_s / once))
    times = {name: [] for name in fns}
    for r in range(repeat):
        # alternate the order so that whoever runs first (cold allocator, caches) varies
        order = list(fns.items()) if r % 2 == 0 else list(fns.items())[::-1]
        for name, fn in order:
            n = numbers[name]
            times[name].append(timeit.timeit(fn, number=n, timer=timer) / n * 1e6)
    return {name: statistics.median(t) for name, t in times.items()}


def backends(n):
    """Per backend: a dict of op name -> zero-argument callable on arrays of ``n`` float32."""
    rng = np.random.default_rng(0)
    xn = rng.standard_normal(n).astype(np.float32)
    yn = rng.standard_normal(n).astype(np.float32)
    out = {}
    out["numpy"] = {
        "x + y": lambda: xn + yn,
        "x * y": lambda: xn * yn,
        "x * 2.0": lambda: xn * 2.0,
        "exp(x)": lambda: np.exp(xn),
        "x.sum()": lambda: xn.sum(),
    }
    # share NumPy's buffers: where a 64 MiB input sits in memory changes the time of a
    # memory-bound op by up to 30% here, which would swamp the dispatch cost being measured
    x, y = fnx.from_numpy(xn), fnx.from_numpy(yn)
    out["fnx"] = {
        "x + y": lambda: x + y,
        "x * y": lambda: x * y,
        "x * 2.0": lambda: x * 2.0,
        "exp(x)": lambda: fnp.exp(x),
        "x.sum()": lambda: x.sum(),
    }
    try:
        import torch

        torch.set_num_threads(1)
        xt, yt = torch.from_numpy(xn.copy()), torch.from_numpy(yn.copy())
        out["torch"] = {
            "x + y": lambda: xt + yt,
            "x * y": lambda: xt * yt,
            "x * 2.0": lambda: xt * 2.0,
            "exp(x)": lambda: torch.exp(xt),
            "x.sum()": lambda: xt.sum(),
        }
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp

        xj, yj = jnp.asarray(xn), jnp.asarray(yn)

        def block(f):
            return lambda: jax.block_until_ready(f())

        out["jax"] = {
            "x + y": block(lambda: xj + yj),
            "x * y": block(lambda: xj * yj),
            "x * 2.0": block(lambda: xj * 2.0),
            "exp(x)": block(lambda: jnp.exp(xj)),
            "x.sum()": block(lambda: xj.sum()),
        }
    except ImportError:
        pass
    return out


def run(ops, n, budget_s, repeat):
    table = backends(n)
    rows = []
    for op in ops:
        rows.append((op, median_us({name: fns[op] for name, fns in table.items()}, budget_s,
                                   repeat)))
    return list(table), rows


def print_table(title, names, rows, n, target):
    others = [b for b in names if b not in ("numpy", "fnx")]
    print(f"\n### {title} ({n} float32 elements; target: {target})\n")
    head = ["op", "numpy µs", "fnx µs", "fnx - numpy µs", "fnx / numpy"]
    head += [f"{b} µs" for b in others]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for op, t in rows:
        cells = [f"`{op}`", f"{t['numpy']:.2f}", f"{t['fnx']:.2f}",
                 f"{t['fnx'] - t['numpy']:.2f}", f"{t['fnx'] / t['numpy']:.2f}x"]
        cells += [f"{t[b]:.2f}" for b in others]
        print("| " + " | ".join(cells) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args(argv)
    small_budget, small_repeat = (0.005, 7) if args.quick else (0.02, 41)
    large_budget, large_repeat = (0.05, 5) if args.quick else (0.2, 15)
    print(f"numpy {np.__version__}, fnx {fnx.__version__}, OPENBLAS_NUM_THREADS="
          f"{os.environ['OPENBLAS_NUM_THREADS']}, median of {small_repeat} / {large_repeat} runs")
    names, rows = run(["x + y", "x * 2.0", "exp(x)", "x.sum()"], SMALL_N, small_budget,
                      small_repeat)
    print_table("Small-op dispatch overhead", names, rows, SMALL_N, "fnx <= 5 µs per op")
    names, rows = run(["x + y", "x * y"], LARGE_N, large_budget, large_repeat)
    print_table("Large elementwise throughput", names, rows, LARGE_N, "fnx / numpy <= 1.1x")


if __name__ == "__main__":
    main()
