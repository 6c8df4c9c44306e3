"""fnx.jit benchmarks (one thread). Run: OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python3
benchmarks/bench_jit.py [--quick]. Prints a markdown table (median of many runs, NumPy in the
same process)."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

QUICK = "--quick" in sys.argv
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def median_time(fn, reps):
    fn()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


MLP_SRC = textwrap.dedent("""
    import numpy as np, fnx, fnx.numpy as fnp

    def loss(params, x, y):
        (w1, b1), (w2, b2), (w3, b3) = params
        h = fnp.maximum(x @ w1 + b1, 0.0)
        h = fnp.maximum(h @ w2 + b2, 0.0)
        logits = h @ w3 + b3
        m = fnp.max(logits, axis=1, keepdims=True)
        lse = fnp.log(fnp.sum(fnp.exp(logits - m), axis=1)) + m[:, 0]
        onehot = (y[:, None] == fnp.arange(10)[None, :]).astype(logits.dtype)
        return fnp.mean(lse - fnp.sum(logits * onehot, axis=1))

    def step(params, m, v, t, x, y):
        g = fnx.grad(loss)(params, x, y)
        lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
        m = fnx.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
        v = fnx.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
        params = fnx.tree.map(lambda p, m, v: p - lr * (m / c1) / (fnp.sqrt(v / c2) + eps),
                              params, m, v)
        return params, m, v

    def init(batch, seed=0):
        rng = np.random.default_rng(seed)
        sizes = [784, 512, 512, 10]
        params = [(fnp.asarray((rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)),
                   fnp.zeros(b)) for a, b in zip(sizes[:-1], sizes[1:])]
        zeros = fnx.tree.map(fnp.zeros_like, params)
        x = fnp.asarray(rng.standard_normal((batch, 784)).astype(np.float32))
        y = fnp.asarray(rng.integers(0, 10, batch))
        return params, zeros, zeros, x, y
""")


def machine_info():
    import datetime
    import platform

    import numba

    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    try:
        load = open("/proc/loadavg").read().split()[0]
    except OSError:
        load = "?"
    threads = " ".join(f"{k}={os.environ.get(k, '-')}" for k in
                       ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"))
    return (f"{datetime.datetime.now():%Y-%m-%d %H:%M} | {cpu}, {os.cpu_count()} logical CPUs, "
            f"load {load} | {threads} | numpy {np.__version__}, numba {numba.__version__}, "
            f"python {platform.python_version()}")


def main():
    import fnx
    import fnx.numpy as fnp

    rows = []
    rng = np.random.default_rng(0)

    # 1. fused elementwise
    n = 2 ** 20 if QUICK else 2 ** 24
    xn = rng.standard_normal(n).astype(np.float32)
    yn = rng.standard_normal(n).astype(np.float32)

    def np1():
        return np.tanh(xn * np.float32(0.5) + yn) * (1 / (1 + np.exp(-xn))) + \
            np.float32(0.1) * xn * xn - np.float32(0.25) * yn

    f1 = fnx.jit(lambda x, y: fnp.tanh(x * 0.5 + y) / (1.0 + fnp.exp(-x)) + 0.1 * x * x
                 - 0.25 * y)
    x1, y1 = fnp.asarray(xn), fnp.asarray(yn)
    np.testing.assert_allclose(f1(x1, y1)._buf, np1(), rtol=1e-4, atol=1e-5)
    t_np, t_fx = median_time(np1, 5), median_time(lambda: f1(x1, y1), 15)
    rows.append(("1. fused elementwise 2^%d f32" % int(np.log2(n)), t_np, t_fx,
                 "ratio >= 8x, ~10 ms"))

    # 2. softmax cross-entropy
    B, C = 4096, 1000
    ln = rng.standard_normal((B, C)).astype(np.float32)
    lab = rng.integers(0, C, B)

    def np2():
        m = ln.max(1, keepdims=True)
        z = ln - m
        lse = np.log(np.exp(z).sum(1))
        return np.mean(lse - z[np.arange(B), lab])

    def ce(logits, labels):
        m = fnp.max(logits, axis=1, keepdims=True)
        z = logits - m
        lse = fnp.log(fnp.sum(fnp.exp(z), axis=1))
        onehot = (labels[:, None] == fnp.arange(C)[None, :]).astype(logits.dtype)
        return fnp.mean(lse - fnp.sum(z * onehot, axis=1))

    f2 = fnx.jit(ce)
    l2, lb2 = fnp.asarray(ln), fnp.asarray(lab)
    np.testing.assert_allclose(float(f2(l2, lb2)), np2(), rtol=1e-4)
    rows.append(("2. softmax CE (4096,1000)", median_time(np2, 20),
                 median_time(lambda: f2(l2, lb2), 30), "<= 2.5 ms"))

    # 3. MLP train step
    ns = {}
    exec(MLP_SRC, ns)  # the benchmark model (plain Python; kernels are imported, never exec'd)
    params, m, v, x, y = ns["init"](128)
    step = fnx.jit(ns["step"])
    t = fnp.asarray(np.float32(1.0))
    state = [step(params, m, v, t, x, y)]

    def train_step():  # a real loop: the updated state feeds the next step
        state[0] = step(*state[0], t, x, y)

    t_fx3 = median_time(train_step, 10 if QUICK else 30)
    eager_step = ns["step"]
    t_eager3 = median_time(lambda: eager_step(params, m, v, t, x, y), 3)
    rows.append(("3. MLP train step 784-512-512-10 b128 (vs fnx eager)", t_eager3, t_fx3,
                 "<= 4 ms"))

    # 4. call overhead
    f4 = fnx.jit(lambda a: a * 2.0 + 1.0)
    a4 = fnp.ones(16)
    a4n = np.ones(16, np.float32)
    f4(a4)

    def loop_fx():
        for _ in range(1000):
            f4(a4)

    def loop_np():
        for _ in range(1000):
            a4n * np.float32(2.0) + np.float32(1.0)

    rows.append(("4. jitted call, 16 elements (per call)", median_time(loop_np, 15) / 1000,
                 median_time(loop_fx, 15) / 1000, "<= 5 us"))

    # 5. compile latency
    sizes = [64, 96, 200]
    t0 = time.perf_counter()
    for bsz in sizes:
        p_, m_, v_, x_, y_ = ns["init"](bsz)
        step(p_, m_, v_, t, x_, y_)
    t_more = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        script = MLP_SRC + textwrap.dedent("""
            import time
            t0 = time.perf_counter()
            params, m, v, x, y = init(128)
            fnx.jit(step)(params, m, v, fnp.asarray(np.float32(1.0)), x, y)
            print(time.perf_counter() - t0)
        """)
        env = dict(os.environ, FNX_CACHE_DIR=d, PYTHONPATH=ROOT)

        def run():
            t_start = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", "import time; _t=time.perf_counter()\n"
                                  + script], env=env, capture_output=True, text=True)
            if out.returncode:
                raise RuntimeError(out.stderr)
            return time.perf_counter() - t_start

        cold = run()
        warm = run()
    rows.append(("5a. compile MLP step cold (new process, empty cache)", None, cold, "<= 3 s"))
    rows.append(("5b. three more batch sizes, same process", None, t_more, "<= 1 s"))
    rows.append(("5c. new process with disk cache", None, warm, "<= 1 s"))

    print(machine_info())
    print()
    print("| benchmark | NumPy / eager | fnx.jit | speedup | target |")
    print("|---|---|---|---|---|")
    for name, base, fx, target in rows:
        def fmt(s):
            return "-" if s is None else (f"{s * 1e6:.2f} us" if s < 1e-3 else
                                          f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s")

        sp = "-" if base is None else f"{base / fx:.1f}x"
        print(f"| {name} | {fmt(base)} | {fmt(fx)} | {sp} | {target} |")


if __name__ == "__main__":
    main()
