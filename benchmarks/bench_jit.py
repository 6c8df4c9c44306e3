"""fnx.jit benchmarks (one thread). Run: OPENBLAS_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python3
benchmarks/bench_jit.py [--quick] [--no-torch-compile]. Prints a markdown table (median of many
runs, NumPy in the same process; the softmax cross-entropy rows in paired rounds), with
jax.jit, torch (eager) and torch.compile columns for whichever of JAX and PyTorch is
importable; each peer's result is checked against fnx's before it is timed. JAX is forced onto
the CPU and every library runs on one thread."""

import os

import _one_thread  # noqa: E402,F401  (before numpy/numba/jax/torch)

import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

QUICK = "--quick" in sys.argv
TORCH_COMPILE = "--no-torch-compile" not in sys.argv
COMPILE_LIMIT_S = 60.0  # a torch.compile slower than this is reported, not used
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def median_time(fn, reps, clock=time.perf_counter):
    fn()
    ts = []
    for _ in range(reps):
        t = clock()
        fn()
        ts.append(clock() - t)
    return float(np.median(ts))


def paired_times(fns, reps, clock=time.perf_counter):
    """``{name: seconds}`` for ``fns`` (name -> callable), timed in turn over several rounds
    (``median_time(fn, reps)`` each); the median over rounds. On a shared machine every
    contestant then sees the same load, as in a paired run. ``clock=time.process_time``
    counts the process's CPU time instead of wall time (steadier on a loaded machine)."""
    times = {k: [] for k in fns}
    for _ in range(3 if QUICK else 7):
        for k, fn in fns.items():
            times[k].append(median_time(fn, reps, clock))
    return {k: float(np.median(v)) for k, v in times.items()}


def paired_row(label, fns, reps, target):
    """A table row from ``paired_times``: ``fns`` has 'numpy' and 'fnx', then the peers."""
    t = paired_times(fns, reps)
    return label, t.pop("numpy"), t.pop("fnx"), t, target


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


def load_peers():
    """The peer libraries that import here: {"jax": (jax, jax.numpy), "torch": torch}."""
    peers = {}
    try:
        import jax
        import jax.numpy as jnp

        peers["jax"] = (jax, jnp)
    except ImportError:
        pass
    try:
        import torch

        torch.set_num_threads(1)
        peers["torch"] = torch
    except ImportError:
        pass
    return peers


def torch_compile(torch, fn, first_call, notes, what):
    """``torch.compile(fn)``, or None (with a note) when compiling fails or its first call
    (``first_call(compiled)``) takes more than COMPILE_LIMIT_S."""
    if not TORCH_COMPILE:
        return None
    try:
        compiled = torch.compile(fn)
        t0 = time.perf_counter()
        first_call(compiled)
        dt = time.perf_counter() - t0
    except Exception as e:  # noqa: BLE001 - any backend failure means "no compiled column"
        notes.append(f"torch.compile failed for {what}: {type(e).__name__}: "
                     f"{str(e).splitlines()[0][:120] if str(e) else ''}")
        return None
    if dt > COMPILE_LIMIT_S:
        notes.append(f"torch.compile of {what} took {dt:.0f} s (> {COMPILE_LIMIT_S:.0f} s): "
                     f"not timed")
        return None
    notes.append(f"torch.compile of {what}: first call {dt:.1f} s")
    return compiled


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
    from fnx.core import blas

    versions = f"numpy {np.__version__}, numba {numba.__version__}, fnx BLAS {blas.describe()}"
    for mod in ("jax", "jaxlib", "torch"):
        if mod in sys.modules:
            versions += f", {mod} {sys.modules[mod].__version__}"
    return (f"{datetime.datetime.now():%Y-%m-%d %H:%M} | {cpu}, {os.cpu_count()} logical CPUs, "
            f"load {load} | {threads} | {versions}, python {platform.python_version()}")


def main():
    import fnx
    import fnx.numpy as fnp

    peers = load_peers()
    torch = peers.get("torch")
    if "jax" in peers:
        jax, jnp = peers["jax"]
    notes = []
    rows = []
    rng = np.random.default_rng(0)

    def close(a, b, rtol=1e-3, atol=1e-4, what=""):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                                   err_msg=what)

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
    ref1 = np1()
    np.testing.assert_allclose(f1(x1, y1)._buf, ref1, rtol=1e-4, atol=1e-5)
    t_np, t_fx = median_time(np1, 5), median_time(lambda: f1(x1, y1), 15)
    peer = {}
    if "jax" in peers:
        j1 = jax.jit(lambda x, y: jnp.tanh(x * 0.5 + y) / (1.0 + jnp.exp(-x)) + 0.1 * x * x
                     - 0.25 * y)
        xj, yj = jnp.asarray(xn), jnp.asarray(yn)
        close(j1(xj, yj), ref1, what="jax.jit fused elementwise")
        peer["jax.jit"] = median_time(lambda: j1(xj, yj).block_until_ready(), 15)
    if torch is not None:
        def t1(x, y):
            return torch.tanh(x * 0.5 + y) / (1.0 + torch.exp(-x)) + 0.1 * x * x - 0.25 * y

        xt, yt = torch.from_numpy(xn.copy()), torch.from_numpy(yn.copy())
        close(t1(xt, yt), ref1, what="torch fused elementwise")
        peer["torch"] = median_time(lambda: t1(xt, yt), 5)
        c1 = torch_compile(torch, t1, lambda c: c(xt, yt), notes, "the fused elementwise")
        if c1 is not None:
            close(c1(xt, yt), ref1, what="torch.compile fused elementwise")
            peer["torch.compile"] = median_time(lambda: c1(xt, yt), 15)
    rows.append(("1. fused elementwise 2^%d f32" % int(np.log2(n)), t_np, t_fx, peer,
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
    ref2 = float(f2(l2, lb2))
    np.testing.assert_allclose(ref2, np2(), rtol=1e-4)
    peer = {"numpy": np2, "fnx": lambda: f2(l2, lb2)}  # timed in paired rounds below
    if "jax" in peers:
        def jce(logits, labels):
            logp = jax.nn.log_softmax(logits, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=1))

        j2 = jax.jit(jce)
        lj, labj = jnp.asarray(ln), jnp.asarray(lab.astype(np.int32))
        close(float(j2(lj, labj)), ref2, rtol=1e-4, what="jax.jit softmax CE")
        peer["jax.jit"] = lambda: j2(lj, labj).block_until_ready()
    if torch is not None:
        import torch.nn.functional as F

        lt, labt = torch.from_numpy(ln.copy()), torch.from_numpy(lab.astype(np.int64))
        close(float(F.cross_entropy(lt, labt)), ref2, rtol=1e-4, what="torch softmax CE")
        peer["torch"] = lambda: F.cross_entropy(lt, labt)
        c2 = torch_compile(torch, F.cross_entropy, lambda c: c(lt, labt), notes,
                           "softmax CE")
        if c2 is not None:
            close(float(c2(lt, labt)), ref2, rtol=1e-4, what="torch.compile softmax CE")
            peer["torch.compile"] = lambda: c2(lt, labt)
    rows.append(paired_row("2. softmax CE (4096,1000)", peer, 10, "<= jax.jit"))

    # 2b. its value and gradient (NumPy: the closed form softmax - onehot)
    def np2g():
        m = ln.max(1, keepdims=True)
        e = np.exp(ln - m)
        s = e.sum(1, keepdims=True)
        g = e / (s * B)
        g[np.arange(B), lab] -= np.float32(1.0 / B)
        return np.mean(np.log(s[:, 0]) - (ln - m)[np.arange(B), lab]), g

    g2 = fnx.jit(fnx.value_and_grad(ce))
    v2, gr2 = g2(l2, lb2)
    ref2g = np2g()
    close(float(v2), ref2g[0], rtol=1e-4, what="fnx CE value_and_grad value")
    close(gr2, ref2g[1], rtol=1e-3, atol=1e-9, what="fnx CE value_and_grad gradient")
    peer = {"numpy": np2g, "fnx": lambda: g2(l2, lb2)}
    if "jax" in peers:
        jg2 = jax.jit(jax.value_and_grad(jce))
        jv, jgr = jg2(lj, labj)
        close(jgr, ref2g[1], rtol=1e-3, atol=1e-9, what="jax.jit CE value_and_grad")
        peer["jax.jit"] = lambda: jax.block_until_ready(jg2(lj, labj))
    if torch is not None:
        def tce_vg(lt):
            lt = lt.detach().requires_grad_()
            loss = F.cross_entropy(lt, labt)
            loss.backward()
            return loss, lt.grad

        close(tce_vg(lt)[1], ref2g[1], rtol=1e-3, atol=1e-9, what="torch CE gradient")
        peer["torch"] = lambda: tce_vg(lt)
    rows.append(paired_row("2b. softmax CE value_and_grad (4096,1000)", peer, 10,
                           "<= jax.jit"))

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
    peer = {}
    if peers:
        # peers start from the same weights; their loss and gradients must match fnx's
        p_np = [(np.asarray(w), np.asarray(b)) for w, b in params]
        x_np, y_np = np.asarray(x), np.asarray(y)
        loss0 = float(ns["loss"](params, x, y))
        g_fx = [(np.asarray(gw), np.asarray(gb))
                for gw, gb in fnx.grad(ns["loss"])(params, x, y)]

        def check_grads(loss_value, grads, who):
            close(loss_value, loss0, rtol=1e-4, what=f"{who} MLP loss")
            for (gw, gb), (rw, rb) in zip(grads, g_fx):
                scale = max(np.abs(rw).max(), np.abs(rb).max())
                close(gw, rw, rtol=1e-3, atol=1e-4 * scale, what=f"{who} MLP weight grad")
                close(gb, rb, rtol=1e-3, atol=1e-4 * scale, what=f"{who} MLP bias grad")
    if "jax" in peers:
        def jloss(params, x, y):
            (w1, b1), (w2, b2), (w3, b3) = params
            h = jax.nn.relu(x @ w1 + b1)
            h = jax.nn.relu(h @ w2 + b2)
            logp = jax.nn.log_softmax(h @ w3 + b3, axis=1)
            return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

        xj, yj = jnp.asarray(x_np), jnp.asarray(y_np.astype(np.int32))
        pj = jax.tree.map(jnp.asarray, p_np)
        lj, gj = jax.value_and_grad(jloss)(pj, xj, yj)
        check_grads(float(lj), gj, "jax")
        try:
            import optax
        except ImportError:
            optax = None
        if optax is not None:
            opt = optax.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8)

            @jax.jit
            def jstep(params, opt_state, x, y):
                g = jax.grad(jloss)(params, x, y)
                updates, opt_state = opt.update(g, opt_state, params)
                return optax.apply_updates(params, updates), opt_state

            jstate = [(pj, opt.init(pj))]
            notes.append(f"jax MLP step: optax {optax.__version__} Adam")
        else:
            @jax.jit
            def jstep(params, mv, x, y):  # Adam by hand (optax is not installed)
                m, v, t = mv
                g = jax.grad(jloss)(params, x, y)
                lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-8
                t = t + 1
                m = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g, m, g)
                v = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * g * g, v, g)
                c1, c2 = 1 - b1 ** t, 1 - b2 ** t
                params = jax.tree.map(lambda p, m, v: p - lr * (m / c1) / (jnp.sqrt(v / c2)
                                                                            + eps),
                                      params, m, v)
                return params, (m, v, t)

            zeros = jax.tree.map(jnp.zeros_like, pj)
            jstate = [(pj, (zeros, zeros, jnp.float32(0.0)))]
            notes.append("jax MLP step: Adam written by hand (optax not installed)")
        t0 = time.perf_counter()
        jax.block_until_ready(jstep(*jstate[0], xj, yj))
        notes.append(f"jax.jit of the MLP step: first call {time.perf_counter() - t0:.2f} s")

        def jax_train_step():
            jstate[0] = jstep(*jstate[0], xj, yj)
            jax.block_until_ready(jstate[0])

        peer["jax.jit"] = median_time(jax_train_step, 10 if QUICK else 30)
    if torch is not None:
        import torch.nn.functional as F

        xt, yt = torch.from_numpy(x_np.copy()), torch.from_numpy(y_np.astype(np.int64))

        def tloss(w1, b1, w2, b2, w3, b3, x, y):
            h = torch.relu(x @ w1 + b1)
            h = torch.relu(h @ w2 + b2)
            return F.cross_entropy(h @ w3 + b3, y)

        def torch_trainer(loss_fn, compile_opt):
            tp = [torch.from_numpy(a.copy()).requires_grad_() for pair in p_np for a in pair]
            opt = torch.optim.Adam(tp, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)

            def opt_step():
                opt.step()

            opt_step = compile_opt(opt_step) if compile_opt else opt_step

            def tstep():
                opt.zero_grad(set_to_none=True)
                loss = loss_fn(*tp, xt, yt)
                loss.backward()
                opt_step()
                return loss

            return tp, tstep

        tp, tstep = torch_trainer(tloss, None)
        lt = tstep()  # the first step's gradients are at the shared initial weights
        check_grads(float(lt.detach()), [(tp[i].grad, tp[i + 1].grad) for i in (0, 2, 4)],
                    "torch")
        peer["torch"] = median_time(tstep, 10 if QUICK else 30)
        if TORCH_COMPILE:
            holder = {}

            def build(compiled_loss):
                tp, tstep = torch_trainer(compiled_loss, torch.compile)
                lt = tstep()
                holder.update(tp=tp, tstep=tstep, loss=lt)

            c3 = torch_compile(torch, tloss, build, notes,
                               "the MLP step (loss+backward, and opt.step)")
            if c3 is not None:
                tp = holder["tp"]
                check_grads(float(holder["loss"].detach()),
                            [(tp[i].grad, tp[i + 1].grad) for i in (0, 2, 4)], "torch.compile")
                peer["torch.compile"] = median_time(holder["tstep"], 10 if QUICK else 30)
    rows.append(("3. MLP train step 784-512-512-10 b128 (vs fnx eager)", t_eager3, t_fx3, peer,
                 "<= 4 ms"))

    # 4. call overhead
    f4 = fnx.jit(lambda a: a * 2.0 + 1.0)
    a4 = fnp.ones(16)
    a4n = np.ones(16, np.float32)
    f4(a4)

    def per_call(fn):  # seconds per call, from loops of 1000 calls
        def loop():
            for _ in range(1000):
                fn()
        return median_time(loop, 15) / 1000

    peer = {}
    if "jax" in peers:
        j4 = jax.jit(lambda a: a * 2.0 + 1.0)
        a4j = jnp.ones(16, jnp.float32)
        close(j4(a4j), np.full(16, 3.0), what="jax.jit call overhead")
        peer["jax.jit"] = per_call(lambda: j4(a4j).block_until_ready())
    if torch is not None:
        def t4(a):
            return a * 2.0 + 1.0

        a4t = torch.ones(16)
        peer["torch"] = per_call(lambda: t4(a4t))
        c4 = torch_compile(torch, t4, lambda c: c(a4t), notes, "the 16-element function")
        if c4 is not None:
            close(c4(a4t), np.full(16, 3.0), what="torch.compile call overhead")
            peer["torch.compile"] = per_call(lambda: c4(a4t))
    rows.append(("4. jitted call, 16 elements (per call)", per_call(lambda: a4n * np.float32(2.0)
                                                                    + np.float32(1.0)),
                 per_call(lambda: f4(a4)), peer, "<= 5 us"))

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
    rows.append(("5a. compile MLP step cold (new process, empty cache)", None, cold, {},
                 "<= 3 s"))
    rows.append(("5b. three more batch sizes, same process", None, t_more, {}, "<= 1 s"))
    rows.append(("5c. new process with disk cache", None, warm, {}, "<= 1 s"))

    def fmt(s):
        return "-" if s is None else (f"{s * 1e6:.2f} us" if s < 1e-3 else
                                      f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s")

    columns = [c for c in ("jax.jit", "torch", "torch.compile")
               if any(c in peer for *_, peer, _ in rows)]
    print(machine_info())
    print()
    print("| benchmark | NumPy / eager | fnx.jit | speedup | "
          + "".join(f"{c} | " for c in columns) + "target |")
    print("|---|---|---|---|" + "---|" * len(columns) + "---|")
    for name, base, fx, peer, target in rows:
        sp = "-" if base is None else f"{base / fx:.1f}x"
        print(f"| {name} | {fmt(base)} | {fmt(fx)} | {sp} | "
              + "".join(f"{fmt(peer.get(c))} | " for c in columns) + f"{target} |")
    missing = [name for name in ("jax", "torch") if name not in peers]
    if missing:
        notes.append(f"not installed, not compared: {', '.join(missing)}")
    if columns:
        notes.append("torch: eager PyTorch (CPU, one thread); MLP step = zero_grad, "
                     "forward, backward, torch.optim.Adam.step")
    if notes:
        print()
        for note in notes:
            print(f"- {note}")


if __name__ == "__main__":
    main()
