"""Layer kernels against PyTorch CPU eager, one thread (issue 10's targets W8-W10).

Run: ``python benchmarks/bench_layers.py [--quick] [--cpu-time] [--only W8,conv,...]``;
prints markdown tables (docs/benchmarks.md, "layer kernels"). Needs PyTorch for the
comparison columns (a scratch environment: ``pip install torch==2.13.0``); without it only
fnx's times are printed.

Workloads (float32, the same initial weights everywhere, each contestant's first losses
checked against fnx's eager step before timing):

* **conv** — ``conv2d`` forward, and the gradient of ``sum(conv(x, w)**2)`` with respect to
  both operands, at (32, 3, 32, 32) * (32, 3, 3, 3) and (32, 32, 16, 16) * (64, 32, 3, 3),
  padding 1 (fnx: eager forward, ``fnx.jit`` of ``value_and_grad``);
* **W8** small CNN: (32, 3, 32, 32) -> Conv2d(3, 32, 3, pad 1) + ReLU + MaxPool2d(2) ->
  Conv2d(32, 64, 3, pad 1) + ReLU + MaxPool2d(2) -> Flatten -> Linear(4096, 10),
  CrossEntropyLoss, SGD(lr 0.01, momentum 0.9);
* **W9** LSTM(64, 128), batch_first, batch 32 x sequence 50: forward + backward of
  ``mean(out**2)`` (the gradients accumulate in ``.grad``, zeroed each call);
* **W10** Transformer classifier: Embedding(1000, 128) + learned positions, a 2-layer
  TransformerEncoder (d_model 128, 4 heads, feed-forward 512, dropout 0, batch_first),
  mean-pool, Linear(128, 10), CrossEntropyLoss, AdamW(lr 1e-3), batch 32 x sequence 64.

The steps are PyTorch-style code, the same for both libraries; fnx runs them eagerly (the
tape) and under ``fnx.compile``. Compile time is measured in a fresh process with an empty
kernel cache (cold) and again with the cache that run filled (warm) — the first three calls,
since a step's second call can trace again (``.grad`` and optimizer state go from None to
arrays) —, followed by one call with a new batch size, whose native compiles are counted
(``fnx.jit.cache.STATS``).
"""

import os

import _one_thread  # noqa: E402,F401  (before numpy/numba/torch)

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bench_jit import QUICK, ROOT, load_peers, machine_info, paired_times  # noqa: E402
from bench_nn import make_step as classifier_step  # noqa: E402  (the PyTorch-style step)

import fnx  # noqa: E402

CLOCK = time.process_time if "--cpu-time" in sys.argv else time.perf_counter
ONLY = next((a.split("=", 1)[1].split(",") for a in sys.argv if a.startswith("--only=")), None)
CHECK_STEPS = 3


# --- the models, written once for fnx.nn and torch.nn --------------------------------------

def small_cnn(nn):
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(64 * 8 * 8, 10))


def lstm(nn):
    return nn.LSTM(64, 128, batch_first=True)


def transformer(nn, lib):
    class TransformerClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(1000, 128)
            self.pos = nn.Parameter(lib.zeros(1, 64, 128))
            layer = nn.TransformerEncoderLayer(128, 4, dim_feedforward=512, dropout=0.0,
                                               batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(128, 10)

        def forward(self, tokens):
            h = self.encoder(self.embed(tokens) + self.pos[:, :tokens.shape[1]])
            return self.head(h.mean(dim=1))

    return TransformerClassifier()


def lstm_step(model):
    """Forward + backward of mean(out**2) (W9)."""
    def step(x):
        model.zero_grad()
        out, _ = model(x)
        loss = (out ** 2).mean()
        loss.backward()
        return loss

    return step


def _workload(name, lib):
    """``(model, step, args)`` of workload ``name`` for ``lib`` (fnx or torch), weights from
    ``WEIGHTS[name]`` once it is set."""
    nn = lib.nn
    rng = np.random.default_rng(0)
    if name == "W8":
        model = small_cnn(nn)
        opt = lib.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        data = (rng.standard_normal((32, 3, 32, 32)).astype(np.float32),
                rng.integers(0, 10, 32).astype(np.int64))
        step = classifier_step(model, opt, nn.CrossEntropyLoss())
    elif name == "W9":
        model = lstm(nn)
        data = (rng.standard_normal((32, 50, 64)).astype(np.float32),)
        step = lstm_step(model)
    else:
        model = transformer(nn, lib)
        opt = lib.optim.AdamW(model.parameters(), lr=1e-3)
        data = (rng.integers(0, 1000, (32, 64)).astype(np.int64),
                rng.integers(0, 10, 32).astype(np.int64))
        step = classifier_step(model, opt, nn.CrossEntropyLoss())
    if name in WEIGHTS:
        model.load_state_dict({k: lib.tensor(v) for k, v in WEIGHTS[name].items()})
    else:
        WEIGHTS[name] = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return model, step, tuple(lib.tensor(a) for a in data)


WEIGHTS = {}
STEPS = {"W8": "W8 small CNN, SGD momentum, b32 3x32x32",
         "W9": "W9 LSTM(64, 128) fwd+bwd, b32 x seq 50",
         "W10": "W10 Transformer classifier (2 layers, d128), AdamW, b32 x seq 64"}
TARGETS = {"W8": 0.8, "W9": 1.0, "W10": 0.8}  # fnx.compile / torch eager


def bench_step(name, torch, notes):
    _, eager, args = _workload(name, fnx)
    _, compiled, cargs = _workload(name, fnx)
    compiled = fnx.compile(compiled)
    contestants = {"fnx eager": (eager, args), "fnx.compile": (compiled, cargs)}
    if torch is not None:
        _, tstep, targs = _workload(name, torch)
        contestants["torch"] = (tstep, targs)
    first = {}
    for mode, (step, a) in contestants.items():
        first[mode] = [step(*a).item() for _ in range(CHECK_STEPS)]
    for mode, losses in first.items():
        np.testing.assert_allclose(losses, first["fnx eager"], rtol=2e-3,
                                   err_msg=f"{name}: {mode} losses")
    traces = compiled.cache_info().traces
    times = paired_times({m: (lambda s=s, a=a: s(*a).item()) for m, (s, a) in
                          contestants.items()}, 2 if QUICK else 5, CLOCK)
    if compiled.cache_info().traces != traces:
        notes.append(f"**{name}: fnx.compile re-traced while timed**: "
                     f"{compiled.cache_info().misses[-1]}")
    return times


CONV_SHAPES = [((32, 3, 32, 32), (32, 3, 3, 3)), ((32, 32, 16, 16), (64, 32, 3, 3))]


def bench_conv(torch):
    F = fnx.nn.functional
    rows = []
    for xs, ws in CONV_SHAPES:
        rng = np.random.default_rng(0)
        xn = rng.standard_normal(xs).astype(np.float32)
        wn = (rng.standard_normal(ws) / np.sqrt(np.prod(ws[1:]))).astype(np.float32)
        x, w = fnx.tensor(xn), fnx.tensor(wn)
        grad = fnx.jit(fnx.value_and_grad(lambda x, w: (F.conv2d(x, w, padding=1) ** 2).sum(),
                                          argnums=(0, 1)))
        fwd = {"fnx": lambda: F.conv2d(x, w, padding=1)}
        bwd = {"fnx": lambda: grad(x, w)}
        if torch is not None:
            xt = torch.from_numpy(xn.copy()).requires_grad_()
            wt = torch.from_numpy(wn.copy()).requires_grad_()
            tf = torch.nn.functional

            def torch_grad():
                out = (tf.conv2d(xt, wt, padding=1) ** 2).sum()
                return torch.autograd.grad(out, (xt, wt))

            np.testing.assert_allclose(np.asarray(fwd["fnx"]()),
                                       tf.conv2d(xt, wt, padding=1).detach().numpy(),
                                       rtol=1e-4, atol=1e-4)
            for a, b in zip(bwd["fnx"]()[1], torch_grad()):
                np.testing.assert_allclose(np.asarray(a), b.numpy(), rtol=1e-3, atol=1e-2)
            fwd["torch"] = lambda: tf.conv2d(xt.detach(), wt.detach(), padding=1)
            bwd["torch"] = torch_grad
        reps = 3 if QUICK else 10
        rows.append((f"conv2d {xs} * {ws}, forward", paired_times(fwd, reps, CLOCK)))
        rows.append((f"conv2d {xs} * {ws}, grad of sum(conv**2)",
                     paired_times(bwd, reps, CLOCK)))
    return rows


# --- cold compile, in a fresh process ------------------------------------------------------

def compile_probe(name):
    """Child process: the first WARMUP_CALLS calls of the compiled step (seconds; a step's
    second call can trace again, when ``.grad`` and the optimizer state go from None to
    arrays), then one call with a new batch size and the native kernels it compiled. Prints
    one JSON line."""
    from fnx.jit import cache

    _, step, args = _workload(name, fnx)
    step = fnx.compile(step)
    t0 = time.perf_counter()
    for _ in range(WARMUP_CALLS):
        step(*args).item()
    first = time.perf_counter() - t0
    before = cache.STATS["kernels_compiled"]
    half = tuple(a[: a.shape[0] // 2] for a in args)
    step(*half).item()
    new = cache.STATS["kernels_compiled"] - before
    print(json.dumps({"first_calls_s": first, "new_batch_kernels_compiled": new}))


WARMUP_CALLS = 3


def compile_times(name):
    """(cold, warm) seconds of the first calls and the new batch size's kernel compiles."""
    out = []
    with tempfile.TemporaryDirectory() as cache_dir:
        env = dict(os.environ, FNX_CACHE_DIR=cache_dir, PYTHONPATH=ROOT)
        for _ in ("cold", "warm"):
            r = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", name],
                               env=env, capture_output=True, text=True, timeout=600)
            if r.returncode:
                raise RuntimeError(f"compile probe {name} failed:\n{r.stderr[-3000:]}")
            out.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return out


def fmt_ms(t):
    return "-" if t is None else f"{t * 1e3:.2f}"


def main():
    if "--probe" in sys.argv:
        return compile_probe(sys.argv[sys.argv.index("--probe") + 1])
    torch = load_peers().get("torch")
    notes = []
    clock = "CPU time of the process" if CLOCK is time.process_time else "wall time"
    print(machine_info())
    checks = []
    if ONLY is None or "conv" in ONLY:
        print(f"\n### convolution, ms (median of paired rounds, {clock})\n")
        print("| op | fnx | torch | fnx / torch |")
        print("|---|---|---|---|")
        for label, t in bench_conv(torch):
            ratio = f"{t['fnx'] / t['torch']:.2f}x" if "torch" in t else "-"
            print(f"| {label} | {fmt_ms(t['fnx'])} | {fmt_ms(t.get('torch'))} | {ratio} |")
            if "torch" in t:
                checks.append((f"{label} <= torch", t["fnx"] * 1e3, t["torch"] * 1e3, "ms"))
    names = [n for n in STEPS if ONLY is None or n in ONLY]
    if names:
        print(f"\n### training steps, ms per step (median of paired rounds, {clock})\n")
        print("| step | fnx eager | fnx.compile | torch eager | eager / torch | "
              "compile / torch | first 3 calls cold, s | warm, s | new batch: kernels compiled |")
        print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        t = bench_step(name, torch, notes)
        cold, warm = compile_times(name)
        ratios = [f"{t[m] / t['torch']:.2f}x" if "torch" in t else "-"
                  for m in ("fnx eager", "fnx.compile")]
        print(f"| {STEPS[name]} | {fmt_ms(t['fnx eager'])} | {fmt_ms(t['fnx.compile'])} | "
              f"{fmt_ms(t.get('torch'))} | {ratios[0]} | {ratios[1]} | "
              f"{cold['first_calls_s']:.2f} | {warm['first_calls_s']:.2f} | "
              f"{cold['new_batch_kernels_compiled']} |", flush=True)
        if "torch" in t:
            checks.append((f"{name} fnx.compile <= {TARGETS[name]}x torch eager",
                           t["fnx.compile"] * 1e3, TARGETS[name] * t["torch"] * 1e3, "ms"))
            checks.append((f"{name} fnx eager <= 1.5x torch eager", t["fnx eager"] * 1e3,
                           1.5 * t["torch"] * 1e3, "ms"))
        checks.append((f"{name} cold compile <= 5 s", cold["first_calls_s"], 5.0, "s"))
        checks.append((f"{name} new batch size compiles nothing",
                       cold["new_batch_kernels_compiled"], 0, "kernels"))
    print("\n### targets (issue 10)\n")
    print("| target | measured | bound | |")
    print("|---|---|---|---|")
    for what, got, bound, unit in checks:
        print(f"| {what} | {got:.2f} {unit} | {bound:.2f} {unit} | "
              f"{'met' if got <= bound else 'MISSED'} |")
    if torch is None:
        notes.append("torch not installed: no comparison columns")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
