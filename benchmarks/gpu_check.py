#!/usr/bin/env python3
"""One-shot real-GPU check of fnx: the CUDA test files, eager CuPy ops, jit on CUDA vs CPU,
timings against PyTorch CUDA and JAX, launch overhead, compile latency.

    python3 benchmarks/gpu_check.py            # a GPU machine (CuPy, numba-cuda; torch/jax if any)
    NUMBA_ENABLE_CUDASIM=1 python3 benchmarks/gpu_check.py --tiny   # smoke test without a GPU

Sections (each in its own try/except: one failure does not lose the rest):
 0. pytest on tests/test_jit_cuda.py and tests/test_cuda_ptx.py (they run on the GPU directly);
 1. eager ops on CuPy-backed fnx arrays vs NumPy (skipped without CuPy);
 2. jit on CUDA vs the CPU jit: fused elementwise (P1), softmax cross-entropy, an MLP step;
 3. median timings (synchronized) of those vs CuPy / torch / jax.jit when importable;
 4. kernel compile latency and per-call overhead;
 5. launch overhead: one raw launch-plan launch vs Numba's dispatcher, a tiny jitted call.
Ends with the issue's targets (ratios against torch in the same run) and writes the report
as markdown to docs/gpu-runs/<date>-<gpu>-gpu-check.md and, when OUT is set, $OUT/gpu_check.md.
Without a GPU (and without the simulator) it exits with status 2 and says why. Budget: about
4 minutes on an H100/H200 (the pytest section ~2, the rest ~1-2).
"""

import argparse
import os
import statistics
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

ROWS = []   # (section, item, result, note)
TIMES = {}  # (workload, implementation) -> seconds, for the targets table
T0 = time.perf_counter()
NO_GPU = ("gpu_check: no usable NVIDIA GPU: fnx.cuda.is_available() is False ({why}). Run it on "
          "a machine with a GPU, CuPy and numba-cuda (pip install 'fnx[cuda]'), or as a smoke "
          "test without one: NUMBA_ENABLE_CUDASIM=1 python3 benchmarks/gpu_check.py --tiny")


def row(section, item, result, note=""):
    ROWS.append((section, item, str(result), str(note)))
    print(f"[{time.perf_counter() - T0:6.1f}s] {section} | {item} | {result} | {note}",
          flush=True)


def guarded(section, item, fn, *a, **k):
    try:
        return fn(*a, **k)
    except Exception as err:  # noqa: BLE001
        traceback.print_exc()
        row(section, item, "ERROR", f"{type(err).__name__}: {str(err)[:200]}")
        return None


def relerr(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return float("inf")
    scale = max(np.abs(want).max(initial=0.0), 1e-30)
    return float(np.abs(got - want).max(initial=0.0) / scale)


# --- environment ------------------------------------------------------------------------------


def env_section(args):
    import numba

    import fnx
    from fnx.jit import cuda_runtime as crt

    row("env", "simulator", crt.simulator())
    row("env", "numba", numba.__version__)
    try:
        from importlib.metadata import version

        row("env", "numba-cuda", version("numba-cuda"))
    except Exception:  # noqa: BLE001
        row("env", "numba-cuda", "not installed (numba's built-in numba.cuda)")
    row("env", "fnx.cuda.is_available()", fnx.cuda.is_available())
    if fnx.cuda.is_available():
        import cupy

        row("env", "GPU", fnx.cuda.get_device_name(0), f"cupy {cupy.__version__}")
    row("env", "sizes", "tiny" if args.tiny else "full")
    from fnx.jit import cuda_compile

    tc = cuda_compile.toolchain()
    row("env", "PTX toolchain", "none" if tc is None else "ok",
        "" if tc is None else f"libnvvm={tc['libnvvm']} ptxas={tc['ptxas']}")


# --- device helpers ----------------------------------------------------------------------------


def launch_path_on():
    from fnx.jit import cuda_runtime as crt

    return crt.raw_driver() is not None


class dispatcher_only:
    """Within: kernels launch through Numba's dispatcher instead of the launch path (the same
    executables and kernels: the path is chosen at each call), to measure what it saves."""

    def __enter__(self):
        from fnx.jit import cuda_runtime as crt

        self.saved = list(crt._raw)
        crt._raw[:] = [None]

    def __exit__(self, *exc):
        from fnx.jit import cuda_runtime as crt

        crt._raw[:] = self.saved


def have_cupy():
    import fnx

    return fnx.cuda.is_available()


def sync():
    from fnx.jit import cuda_runtime as crt

    crt.synchronize()


def median_time(fn, reps, warmup=2, synchronize=True):
    for _ in range(warmup):
        fn()
    if synchronize:
        sync()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        if synchronize:
            sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def fmt_ms(s):
    return f"{s * 1e3:.3f} ms"


class CudaRunner:
    """Runs ``f`` on GPU buffers: through ``fnx.jit`` when the orchestrator's CUDA hook is
    wired (its outputs come back on the GPU), else through ``CudaExecutable`` directly."""

    def __init__(self, f, host_args):
        import fnx
        import fnx.numpy as fnp
        from fnx.core.ir import make_program, to_shaped
        from fnx.jit import cuda_runtime as crt
        from fnx.jit.codegen.cuda import CudaExecutable

        self.f = f
        self.path = None
        if have_cupy():
            try:
                jf = fnx.jit(f)
                dev_args = [fnx.device_put(fnp.asarray(a), "cuda") for a in host_args]
                out = _flatten(jf(*dev_args))
                if all(crt.is_cuda_buffer(o._buf) for o in out):
                    self.path = "fnx.jit (hook wired)"
                    self.args = dev_args
                    self.call = lambda: jf(*dev_args)
                    self.outs = lambda: [crt.to_host(o._buf) for o in _flatten(jf(*dev_args))]
            except Exception as err:  # noqa: BLE001
                print(f"fnx.jit on CUDA arrays failed ({type(err).__name__}: {err}); "
                      "using CudaExecutable directly", flush=True)
        if self.path is None:
            t = time.perf_counter()
            program, consts = make_program(lambda *a: _flatten(f(*a)),
                                           [to_shaped(fnp.asarray(a)) for a in host_args])
            self.exe = CudaExecutable(program, consts)
            self.build_s = time.perf_counter() - t
            bufs = [crt.to_device(np.asarray(a)) for a in host_args]
            self.path = "CudaExecutable (hook not wired)"
            self.call = lambda: self.exe.run(*bufs)
            self.outs = lambda: [crt.to_host(o) for o in self.exe.run(*bufs)]


def _flatten(out):
    if isinstance(out, (list, tuple)):
        res = []
        for o in out:
            res += _flatten(o)
        return res
    if isinstance(out, dict):
        return _flatten(list(out.values()))
    return [out] if out is not None else []


def cpu_jit_outs(f, host_args):
    import fnx
    import fnx.numpy as fnp

    jf = fnx.jit(f)
    args = [fnp.asarray(a) for a in host_args]
    outs = [np.asarray(o) for o in _flatten(jf(*args))]
    return jf, args, outs


# --- section 1: eager ops ----------------------------------------------------------------------


def eager_section(args):
    if not have_cupy():
        row("1 eager", "all", "skipped", "no CuPy/GPU (simulator has no CuPy)")
        return
    import fnx
    import fnx.numpy as fnp

    rng = np.random.default_rng(0)
    a = rng.standard_normal((64, 48)).astype(np.float32)
    b = rng.standard_normal((48, 32)).astype(np.float32)
    idx = rng.integers(0, 64, 10)
    ga, gb = fnx.device_put(fnp.asarray(a), "cuda"), fnx.device_put(fnp.asarray(b), "cuda")
    ca, cb = fnp.asarray(a), fnp.asarray(b)
    ops = {
        "add/mul/exp": lambda x, y: fnp.exp(x * 0.1) + x * 2.0,
        "tanh": lambda x, y: fnp.tanh(x),
        "matmul": lambda x, y: x @ y,
        "sum axis=0": lambda x, y: fnp.sum(x, axis=0),
        "max axis=1": lambda x, y: fnp.max(x, axis=1),
        "argmax axis=1": lambda x, y: fnp.argmax(x, axis=1),
        "mean": lambda x, y: fnp.mean(x),
        "slice x[3:9, ::2]": lambda x, y: x[3:9, ::2],
        "gather x[idx]": lambda x, y: x[fnp.asarray(idx).to(x.device)],
        "transpose+reshape": lambda x, y: fnp.reshape(fnp.transpose(x), (-1,)),
        "where": lambda x, y: fnp.where(x > 0, x, -x),
        "sort": lambda x, y: fnp.sort(x, axis=1),
        "cumsum": lambda x, y: fnp.cumsum(x, axis=1),
        "grad of sum(tanh)": lambda x, y: fnx.grad(lambda z: fnp.sum(fnp.tanh(z)))(x),
    }
    for name, op in ops.items():
        def one(name=name, op=op):
            g = op(ga, gb)
            c = op(ca, cb)
            dev = str(g.device)
            err = relerr(g.numpy() if hasattr(g, "numpy") else np.asarray(g), np.asarray(c))
            ok = err < 1e-5 and dev.startswith("cuda")
            row("1 eager", name, "ok" if ok else "MISMATCH", f"device={dev} rel.err={err:.1e}")
        guarded("1 eager", name, one)

    def random_bits():
        k = fnx.random.key(42)
        kc = fnx.device_put(k, "cuda")
        for fn_name in ("uniform", "normal"):
            fn = getattr(fnx.random, fn_name)
            c = np.asarray(fn(k, (1000,)))
            g = fn(kc, (1000,))
            gh = g.numpy() if hasattr(g, "numpy") else np.asarray(g)
            same = np.array_equal(c.view(np.uint32), np.asarray(gh).view(np.uint32))
            row("1 eager", f"random.{fn_name} same bits as CPU", "ok" if same else "MISMATCH",
                f"device={g.device} max|diff|={np.abs(c - gh).max():.1e}")

    guarded("1 eager", "random", random_bits)


# --- section 2 + 3: jit workloads -----------------------------------------------------------------


def p1(x, y):
    import fnx.numpy as fnp

    return fnp.tanh(x * 0.5 + y) * (1 / (1 + fnp.exp(-x))) + 0.1 * x * x - 0.25 * y


def xent(logits, labels):
    import fnx.numpy as fnp

    m = fnp.max(logits, axis=1, keepdims=True)
    lse = fnp.log(fnp.sum(fnp.exp(logits - m), axis=1)) + m[:, 0]
    onehot = labels[:, None] == fnp.arange(logits.shape[1])
    return fnp.mean(lse - fnp.sum(fnp.where(onehot, logits, 0.0), axis=1))


def mlp_loss(w1, b1, w2, b2, x, y):
    import fnx.numpy as fnp

    h = fnp.tanh(x @ w1 + b1)
    return xent(h @ w2 + b2, y)


def mlp_step(w1, b1, w2, b2, x, y):
    import fnx

    lval, grads = fnx.value_and_grad(mlp_loss, argnums=(0, 1, 2, 3))(w1, b1, w2, b2, x, y)
    new = [p - 0.01 * g for p, g in zip((w1, b1, w2, b2), grads, strict=True)]
    return (lval, *new)


def workloads(tiny):
    rng = np.random.default_rng(0)
    n = 2**10 if tiny else 2**24
    B, C = (8, 100) if tiny else (4096, 1000)
    N, D, H, O = (16, 8, 12, 10) if tiny else (1024, 784, 1024, 10)
    x = rng.standard_normal(n).astype(np.float32)
    y = rng.standard_normal(n).astype(np.float32)
    logits = (rng.standard_normal((B, C)) * 3).astype(np.float32)
    labels = rng.integers(0, C, B).astype(np.int32)
    mlp = [(rng.standard_normal((D, H)) / np.sqrt(D)).astype(np.float32),
           np.zeros(H, np.float32),
           (rng.standard_normal((H, O)) / np.sqrt(H)).astype(np.float32),
           np.zeros(O, np.float32),
           rng.standard_normal((N, D)).astype(np.float32),
           rng.integers(0, O, N).astype(np.int32)]
    return {
        f"P1 fused elementwise ({n} f32)": (p1, [x, y]),
        f"softmax xent ({B}x{C})": (xent, [logits, labels]),
        f"MLP fwd+bwd step ({N}x{D}->{H}->{O})": (mlp_step, mlp),
    }


def jit_section(args, results):
    reps = 3 if args.tiny else 20
    for name, (f, host) in workloads(args.tiny).items():
        def one(name=name, f=f, host=host):
            t = time.perf_counter()
            runner = CudaRunner(f, host)
            got = runner.outs()
            first = time.perf_counter() - t
            jf, cargs, want = cpu_jit_outs(f, host)
            errs = [relerr(g, w) for g, w in zip(got, want, strict=True)]
            err = max(errs)
            tol = 2e-4 if "MLP" in name or "xent" in name else 1e-5
            row("2 jit CUDA vs CPU", name, "ok" if err < tol else "MISMATCH",
                f"max rel.err={err:.1e}; via {runner.path}; first call {first:.2f}s")
            results[name] = (runner, jf, cargs, f, host)
        guarded("2 jit CUDA vs CPU", name, one)

    # timings
    for name, (runner, jf, cargs, f, host) in results.items():
        def timings(name=name, runner=runner, jf=jf, cargs=cargs, f=f, host=host):
            t = TIMES[(name, "fnx")] = median_time(runner.call, reps)
            row("3 timing", f"{name}: fnx.jit CUDA", fmt_ms(t))
            if launch_path_on():
                with dispatcher_only():
                    row("3 timing", f"{name}: fnx.jit CUDA via Numba's dispatcher",
                        fmt_ms(median_time(runner.call, reps)))
            row("3 timing", f"{name}: fnx.jit CPU",
                fmt_ms(median_time(lambda: jf(*cargs), max(2, reps // 4), 1, False)))
            others(name, f, host, reps)
        guarded("3 timing", name, timings)


def others(name, f, host, reps):
    """CuPy / torch / jax.jit versions of the same workloads, when importable."""
    kind = "P1" if name.startswith("P1") else "xent" if name.startswith("softmax") else "mlp"
    if have_cupy():
        import cupy as cp

        d = [cp.asarray(a) for a in host]
        if kind == "P1":
            fn = lambda: cp.tanh(d[0] * 0.5 + d[1]) / (1 + cp.exp(-d[0])) + 0.1 * d[0] * d[0] \
                - 0.25 * d[1]  # noqa: E731
        elif kind == "xent":
            def fn():
                lg = d[0]
                m = lg.max(1, keepdims=True)
                lse = cp.log(cp.exp(lg - m).sum(1)) + m[:, 0]
                return (lse - lg[cp.arange(lg.shape[0]), d[1]]).mean()
        else:
            fn = None
        if fn is not None:
            guarded("3 timing", f"{name}: CuPy", lambda: row(
                "3 timing", f"{name}: CuPy", fmt_ms(median_time(fn, reps, 2, True))))
    guarded("3 timing", f"{name}: torch", _torch_time, name, kind, host, reps)
    guarded("3 timing", f"{name}: jax.jit", _jax_time, name, kind, host, reps)


def _torch_time(name, kind, host, reps):
    try:
        import torch
    except ImportError:
        row("3 timing", f"{name}: torch", "skipped", "not importable")
        return
    if not torch.cuda.is_available():
        row("3 timing", f"{name}: torch", "skipped", "no CUDA in torch")
        return
    d = [torch.as_tensor(a, device="cuda") for a in host]
    F = torch.nn.functional
    if kind == "P1":
        def fn():
            return torch.tanh(d[0] * 0.5 + d[1]) * torch.sigmoid(d[0]) + 0.1 * d[0] * d[0] \
                - 0.25 * d[1]
    elif kind == "xent":
        def fn():
            return F.cross_entropy(d[0], d[1].long())
    else:
        ps = [t.clone().requires_grad_(True) for t in d[:4]]
        xb, yb = d[4], d[5].long()

        def fn():
            h = torch.tanh(xb @ ps[0] + ps[1])
            loss = F.cross_entropy(h @ ps[2] + ps[3], yb)
            grads = torch.autograd.grad(loss, ps)
            return [p.detach() - 0.01 * g for p, g in zip(ps, grads, strict=True)]
    t = TIMES[(name, "torch")] = median_time(lambda: (fn(), torch.cuda.synchronize()), reps, 2,
                                             False)
    row("3 timing", f"{name}: torch", fmt_ms(t))


def _jax_time(name, kind, host, reps):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        row("3 timing", f"{name}: jax.jit", "skipped", "not importable")
        return
    if not any(dv.platform == "gpu" for dv in jax.devices()):
        row("3 timing", f"{name}: jax.jit", "skipped", f"no jax GPU ({jax.devices()})")
        return
    d = [jax.device_put(a) for a in host]
    if kind == "P1":
        fn = jax.jit(lambda x, y: jnp.tanh(x * 0.5 + y) * jax.nn.sigmoid(x) + 0.1 * x * x
                     - 0.25 * y)
    elif kind == "xent":
        def xe(lg, lb):
            return jnp.mean(jax.nn.logsumexp(lg, axis=1) - lg[jnp.arange(lg.shape[0]), lb])
        fn = jax.jit(xe)
    else:
        def loss(w1, b1, w2, b2, x, y):
            lg = jnp.tanh(x @ w1 + b1) @ w2 + b2
            return jnp.mean(jax.nn.logsumexp(lg, axis=1) - lg[jnp.arange(lg.shape[0]), y])

        def step(*a):
            lv, g = jax.value_and_grad(loss, argnums=(0, 1, 2, 3))(*a)
            return lv, [p - 0.01 * gi for p, gi in zip(a[:4], g, strict=True)]
        fn = jax.jit(step)
    t = TIMES[(name, "jax")] = median_time(lambda: jax.block_until_ready(fn(*d)), reps, 2,
                                           False)
    row("3 timing", f"{name}: jax.jit", fmt_ms(t))


# --- section 4: compile latency ----------------------------------------------------------------


def compile_section(args):
    import fnx.numpy as fnp
    from fnx.core.ir import make_program, to_shaped
    from fnx.jit import cuda_runtime as crt
    from fnx.jit.codegen.cuda import CudaExecutable

    salt = 1.0 + float(time.time() % 1000) * 1e-3  # a new constant each run: a cold kernel
    x = np.linspace(-1, 1, 256, dtype=np.float32)

    def build(c):
        def f(a):
            return fnp.tanh(a * c) + fnp.exp(-a) * 0.5
        t = time.perf_counter()
        program, consts = make_program(lambda a: [f(a)], [to_shaped(fnp.asarray(x))])
        exe = CudaExecutable(program, consts)
        t_build = time.perf_counter() - t
        d = crt.to_device(x)
        t = time.perf_counter()
        exe.run(d)
        sync()
        return exe, d, t_build, time.perf_counter() - t

    exe, d, tb, tl = build(salt)
    row("4 compile", "new elementwise kernel: codegen+import", f"{tb * 1e3:.1f} ms")
    row("4 compile", "new elementwise kernel: first launch (PTX/JIT compile)",
        f"{tl * 1e3:.1f} ms")
    _, _, tb2, tl2 = build(salt)
    row("4 compile", "same kernel again: codegen+import / first launch",
        f"{tb2 * 1e3:.1f} ms / {tl2 * 1e3:.1f} ms")
    reps = 5 if args.tiny else 200
    row("4 compile", "per-call overhead (256 elements, 1 kernel)",
        f"{median_time(lambda: exe.run(d), reps) * 1e6:.1f} us")

    def row_kernel():
        y = np.random.default_rng(1).standard_normal((64, 256)).astype(np.float32)
        t = time.perf_counter()
        program, consts = make_program(
            lambda a: [fnp.log(fnp.sum(fnp.exp(a - salt), axis=1))],
            [to_shaped(fnp.asarray(y))])
        exe2 = CudaExecutable(program, consts)
        exe2.run(crt.to_device(y))
        sync()
        row("4 compile", "new row-reduction kernel: build + first launch",
            f"{(time.perf_counter() - t) * 1e3:.1f} ms")

    guarded("4 compile", "row kernel", row_kernel)


# --- section 0: the CUDA test files on the GPU ---------------------------------------------------


def tests_section(args):
    """pytest on the CUDA test files: on a GPU they run their checks directly (not in the
    simulator), so this is the correctness suite of the real device."""
    import subprocess

    files = ["tests/test_jit_cuda.py", "tests/test_cuda_ptx.py"]
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files],
                       cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=args.test_timeout)
    out = r.stdout + r.stderr
    summary = next((ln for ln in reversed(out.splitlines()) if " passed" in ln
                    or " failed" in ln or " error" in ln), out.strip()[-200:])
    failed = [ln.split(" - ")[0] for ln in out.splitlines() if ln.startswith("FAILED")]
    row("0 tests", " + ".join(files), "ok" if r.returncode == 0 else "FAILED",
        f"{summary.strip('= ')} in {time.perf_counter() - t:.0f}s")
    for name in failed[:20]:
        row("0 tests", name, "FAILED")


# --- section 5: launch overhead ------------------------------------------------------------------


def launch_section(args):
    """Host time of one kernel launch through a launch plan (the raw path) and through Numba's
    dispatcher, and of a tiny jitted call end to end (issue 12: <= 10 us and <= 20 us)."""
    import fnx
    import fnx.numpy as fnp
    from fnx.core.ir import make_program, to_shaped
    from fnx.jit import cuda_runtime as crt
    from fnx.jit.codegen.cuda import CudaExecutable

    n = 2000 if not args.tiny else 20
    x = np.ones(16, np.float32)
    # one kernel with one input and one output (a float literal would be a second input)
    program, consts = make_program(lambda a: [a * a + a], [to_shaped(fnp.asarray(x))])
    exe = CudaExecutable(program, consts)
    (k,) = exe.cuda_kernels
    assert (k.nin, k.nout, k.ndim) == (1, 1, 1), (k.nin, k.nout, k.ndim)
    d, out = crt.to_device(x), crt.backend().empty((16,), np.float32)
    drv = crt.raw_driver()
    row("5 launch", "launch path", "raw (launch plans)" if drv is not None else
        "Numba dispatcher", "" if drv is not None else "no PTX toolchain, or the simulator")

    def per_call(fn):
        fn()
        sync()
        t = time.perf_counter()
        for _ in range(n):
            fn()
        host = (time.perf_counter() - t) / n
        sync()
        return host

    if drv is not None:
        plan = k.plan([16], drv)
        ptrs = [d.data.ptr, out.data.ptr]
        t = TIMES[("launch", "fnx")] = per_call(lambda: plan.launch(ptrs, drv.stream()))
        row("5 launch", "one kernel launch, launch plan (host time)", f"{t * 1e6:.1f} us")
        t = per_call(lambda: k(16, d, out))
        row("5 launch", "one kernel launch via CudaKernel.__call__", f"{t * 1e6:.1f} us")
    kern = k.variant("thread")
    be = crt.backend()
    flat = [be.kernel_arg(d), be.kernel_arg(out)]
    grid, block = crt.grid_for(16, crt.block_size()), crt.block_size()
    t = per_call(lambda: kern[grid, block, be.stream()](16, 1, 16, *flat))
    row("5 launch", "one kernel launch, Numba dispatcher (host time)", f"{t * 1e6:.1f} us")
    if have_cupy():
        jf = fnx.jit(lambda a: a * 2.0 + 1.0)
        gx = fnx.device_put(fnp.asarray(x), "cuda")
        t = TIMES[("tiny call", "fnx")] = per_call(lambda: jf(gx))
        row("5 launch", "tiny jitted call (x*2+1, 16 f32), host time per call",
            f"{t * 1e6:.1f} us")
        t = median_time(lambda: jf(gx), n // 10)
        row("5 launch", "tiny jitted call, synchronized round trip", f"{t * 1e6:.1f} us")
    _torch_launch(n, x)


def _torch_launch(n, x):
    try:
        import torch
    except ImportError:
        return
    if not torch.cuda.is_available():
        return
    tx = torch.as_tensor(x, device="cuda")
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(n):
        tx * 2.0 + 1.0
    host = (time.perf_counter() - t) / n
    torch.cuda.synchronize()
    TIMES[("tiny call", "torch")] = host
    row("5 launch", "torch eager x*2+1 (2 kernels), host time per call", f"{host * 1e6:.1f} us")


# --- targets and the report ----------------------------------------------------------------------

# (workload prefix, absolute limit in seconds or None, limit as a multiple of torch or None)
TARGETS = [("launch", 10e-6, None), ("tiny call", 20e-6, None),
           ("P1 fused elementwise", None, 1.0), ("softmax xent", None, 1.5),
           ("MLP fwd+bwd step", None, 1.5)]


def targets():
    """Rows ``(workload, fnx, torch, jax, target, verdict)`` of the issue's targets from
    ``TIMES`` (a workload not measured is 'not run')."""
    out = []
    for prefix, limit, ratio in TARGETS:
        names = sorted({w for (w, _) in TIMES if w.startswith(prefix)})
        for w in names or [prefix]:
            fx, tt, jx = (TIMES.get((w, i)) for i in ("fnx", "torch", "jax"))
            if limit is not None:
                target = f"<= {limit * 1e6:.0f} us"
                ok = fx is not None and fx <= limit
            else:
                target = f"<= {ratio}x torch"
                ok = fx is not None and tt is not None and fx <= ratio * tt
            verdict = ("not run" if fx is None else "met" if ok else
                       "no torch" if limit is None and tt is None else "missed")
            if fx is not None and tt is not None:
                verdict += f" ({fx / tt:.2f}x torch)"
            out.append((w, _us(fx), _us(tt), _us(jx), target, verdict))
    return out


def _us(t):
    return "" if t is None else f"{t * 1e6:.1f} us" if t < 1e-3 else f"{t * 1e3:.3f} ms"


def report_path(gpu_name, day=None):
    """docs/gpu-runs/<date>-<gpu>-gpu-check.md (the GPU's name as a file-name slug)."""
    import datetime
    import re

    day = day or datetime.date.today().isoformat()
    slug = re.sub(r"[^a-z0-9]+", "-", gpu_name.lower()).strip("-") or "gpu"
    return os.path.join(ROOT, "docs", "gpu-runs", f"{day}-{slug}-gpu-check.md")


# --- main ----------------------------------------------------------------------------------------


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |")
    return lines


def markdown(title="fnx gpu_check"):
    lines = [f"# {title}", "", "## Targets (issue 12)", ""]
    lines += _table(["workload", "fnx", "torch", "jax", "target", "verdict"], targets())
    lines += ["", "## All results", ""]
    lines += _table(["section", "item", "result", "note"], ROWS)
    return "\n".join(lines) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (simulator smoke test)")
    ap.add_argument("--skip", default="", help="comma-separated sections to skip: 0,1,2,4,5 "
                    "(2 includes the timings of section 3)")
    ap.add_argument("--test-timeout", type=int, default=240, help="seconds for section 0")
    ap.add_argument("--no-write", action="store_true", help="do not write docs/gpu-runs/")
    args = ap.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    why = preflight()
    if why:
        print(NO_GPU.format(why=why), file=sys.stderr)
        return 2
    guarded("env", "env", env_section, args)
    if "0" not in skip and not args.tiny:
        guarded("0 tests", "section", tests_section, args)
    if "1" not in skip:
        guarded("1 eager", "section", eager_section, args)
    results = {}
    if "2" not in skip:
        guarded("2 jit CUDA vs CPU", "section", jit_section, args, results)
    if "4" not in skip:
        guarded("4 compile", "section", compile_section, args)
    if "5" not in skip:
        guarded("5 launch", "section", launch_section, args)
    guarded("env", "kernel statistics", stats_row)
    row("total", "wall time", f"{time.perf_counter() - T0:.1f} s")
    gpu = gpu_name()
    md = markdown(f"fnx gpu_check: {gpu}, {time.strftime('%Y-%m-%d %H:%M')}")
    print("\n" + md)
    paths = [] if args.no_write or args.tiny else [report_path(gpu)]
    if os.environ.get("OUT"):
        paths.append(os.path.join(os.environ["OUT"], "gpu_check.md"))
    for path in paths:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as fh:
            fh.write(md)
        print(f"wrote {path}")
    return 0


def stats_row():
    """Kernels built in this process, and how many fell back from the launch path to Numba's
    dispatcher (each also warned: a non-zero count is a launch-path failure to look into)."""
    from fnx.jit.codegen import cuda as cg

    row("env", "CUDA kernel statistics", cg.STATS,
        "launch_path_fallbacks > 0: see the warnings above")


def preflight():
    """Why this process cannot run the check ('' when it can): no CuPy/GPU and no simulator."""
    from fnx.jit import cuda_runtime as crt

    if crt.simulator():
        return ""
    try:
        import fnx

        return "" if fnx.cuda.is_available() else "CuPy missing or no device visible"
    except Exception as err:  # noqa: BLE001
        return f"{type(err).__name__}: {err}"


def gpu_name():
    try:
        import fnx

        return fnx.cuda.get_device_name(0) if fnx.cuda.is_available() else "simulator"
    except Exception:  # noqa: BLE001
        return "unknown GPU"


if __name__ == "__main__":
    sys.exit(main())
