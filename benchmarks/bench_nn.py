"""PyTorch-style training steps in fnx against PyTorch CPU eager (and torch.compile, jax.jit)
when importable, one thread. Run: ``python benchmarks/bench_nn.py [--quick]
[--no-torch-compile] [--cpu-time]``; prints markdown tables (docs/benchmarks.md, "nn training
steps"). ``--cpu-time`` times the process's CPU time instead of wall time: on a shared machine
whose load comes and goes it is the steadier number (one thread: equal to wall time when idle).

Workloads (float32, Adam(lr=1e-3), CrossEntropyLoss, the same initial weights everywhere):

* MLP 784-512-512-10 (ReLU), batch 128, in fnx's three modes: the eager tape
  (``opt.zero_grad(); loss = crit(model(x), y); loss.backward(); opt.step()``), the functional
  step (``fnx.value_and_grad`` of the MLP written with ``fnx.nn.functional`` over a
  parameter dict, plus ``fnx.optim.adam``'s ``update`` and ``apply_updates``, all in one
  ``fnx.jit``) and the same PyTorch-style step under ``fnx.compile``; PyTorch eager runs that
  step with ``torch.nn``, torch.compile compiles its model and ``opt.step``, jax.jit runs
  value_and_grad + optax's Adam (a hand-written Adam without optax);
* a small CNN on 1x28x28, batch 64: two blocks of the guide's ``Conv2d(3x3, padding=1) ->
  BatchNorm2d -> ReLU -> MaxPool2d(2)`` (16 and 32 channels), then ``Linear(32*7*7, 10)``;
* ``LSTM(32, 64)`` (batch_first) over batch 32, 20 steps, ``Linear(64, 10)`` on the last
  hidden state;
* the eager small-op overhead: ``x + y`` on 16 float32 (µs), fnx / PyTorch / NumPy, plus the
  same add recorded by the tape (an operand that requires grad).

Every step is timed in paired rounds (each contestant in turn, 7 rounds of several steps, the
median), so a shared machine's load drift hits all alike; each contestant's first losses are
checked against fnx's eager step before it is timed. The targets (issue 8) are checked at the
end: fnx.compile at most PyTorch eager and within 10% of the functional jit step, the eager
tape at most 1.5x PyTorch eager, the small op at most 2 µs.
"""

import os

import _one_thread  # noqa: E402,F401  (before numpy/numba/jax/torch)

import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from bench_eager import median_us  # noqa: E402
from bench_jit import QUICK, load_peers, machine_info, paired_times, torch_compile  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fnx  # noqa: E402
from fnx import nn as fnn, optim as foptim  # noqa: E402
from fnx.nn import functional as F  # noqa: E402

LR = 1e-3
CLOCK = time.process_time if "--cpu-time" in sys.argv else time.perf_counter
CHECK_STEPS = 3  # losses compared against fnx's eager step before timing


# --- the models, written once for fnx.nn and torch.nn --------------------------------------

def mlp(nn):
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def cnn(nn):
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.BatchNorm2d(cout),
                nn.ReLU(), nn.MaxPool2d(2, 2)]

    return nn.Sequential(*block(1, 16), *block(16, 32), nn.Flatten(), nn.Linear(32 * 7 * 7, 10))


def lstm(nn):
    class LSTMClassifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = nn.LSTM(32, 64, batch_first=True)
            self.fc = nn.Linear(64, 10)

        def forward(self, x):
            _, (h, _) = self.lstm(x)
            return self.fc(h[-1])

    return LSTMClassifier()


WORKLOADS = [  # short name, table label, model builder, input shape
    ("MLP", "MLP 784-512-512-10, b128", mlp, (128, 784)),
    ("CNN", "CNN 2x(conv-BN-ReLU-pool) + Linear, 1x28x28, b64", cnn, (64, 1, 28, 28)),
    ("LSTM", "LSTM(32, 64) + Linear, b32, seq 20", lstm, (32, 20, 32)),
]


def make_step(model, opt, crit):
    """The PyTorch-style step, the same code for fnx and torch."""
    def step(x, y):
        opt.zero_grad()
        loss = crit(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def runs(step, args, n):
    return [step(*args).item() for _ in range(n)]


# --- fnx's three modes ---------------------------------------------------------------------

def fnx_contestants(build, weights, xn, yn, functional):
    """``{mode: (step, args)}`` for fnx, each mode training its own copy of the model, and
    ``{mode: JitFunction}`` for the compiled modes (their re-traces are reported)."""
    x, y = fnx.tensor(xn), fnx.tensor(yn)
    crit = fnn.CrossEntropyLoss()

    def fresh():
        model = build(fnn)
        model.load_state_dict({k: fnx.tensor(v) for k, v in weights.items()})
        return model

    out = {}
    model = fresh()
    out["fnx eager"] = (make_step(model, foptim.Adam(model.parameters(), lr=LR), crit), (x, y))
    model = fresh()
    compiled = fnx.compile(make_step(model, foptim.Adam(model.parameters(), lr=LR), crit))
    out["fnx.compile"] = (compiled, (x, y))
    jitted = {"fnx.compile": compiled}
    if functional:  # the MLP as pure functions of a parameter dict (JAX style)
        tx = foptim.adam(LR)

        def loss_fn(params, x, y):
            h = x
            for i in (0, 2, 4):
                h = F.linear(h, params[f"{i}.weight"], params[f"{i}.bias"])
                h = F.relu(h) if i < 4 else h
            return F.cross_entropy(h, y)

        @fnx.jit
        def train_step(params, opt_state, x, y):
            loss, grads = fnx.value_and_grad(loss_fn)(params, x, y)
            updates, opt_state = tx.update(grads, opt_state, params)
            return foptim.apply_updates(params, updates), opt_state, loss

        params = {k: fnx.tensor(v) for k, v in weights.items()}
        carry = [params, tx.init(params)]

        def functional_step(x, y):  # a real loop: the new state feeds the next step
            carry[0], carry[1], loss = train_step(carry[0], carry[1], x, y)
            return loss

        out["fnx jit (functional)"] = (functional_step, (x, y))
        jitted["fnx jit (functional)"] = train_step
    return out, jitted


# --- peers ---------------------------------------------------------------------------------

def torch_contestants(torch, build, weights, xn, yn, notes, what):
    x, y = torch.from_numpy(xn.copy()), torch.from_numpy(yn.copy())
    crit = torch.nn.CrossEntropyLoss()

    def fresh():
        model = build(torch.nn)
        model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in weights.items()})
        return model

    model = fresh()
    out = {"torch": (make_step(model, torch.optim.Adam(model.parameters(), lr=LR), crit), (x, y))}
    if what is not None:  # torch.compile of the model's forward and of opt.step
        model = fresh()
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        holder = {}

        def build_compiled(compiled_model):
            compiled_opt = torch.compile(opt.step)

            def step(x, y):
                opt.zero_grad()
                loss = crit(compiled_model(x), y)
                loss.backward()
                compiled_opt()
                return loss

            holder["step"] = step
            holder["loss0"] = step(x, y).item()

        if torch_compile(torch, model, build_compiled, notes, what) is not None:
            out["torch.compile"] = (holder["step"], (x, y), holder["loss0"])
    return out


def jax_mlp_contestant(jax, jnp, weights, xn, yn, notes):
    """jax.jit of value_and_grad + optax's Adam (or Adam by hand) on the MLP."""
    params = [(jnp.asarray(weights[f"{i}.weight"].T), jnp.asarray(weights[f"{i}.bias"]))
              for i in (0, 2, 4)]

    def loss_fn(params, x, y):
        h = x
        for i, (w, b) in enumerate(params):
            h = h @ w + b
            if i < 2:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    try:
        import optax

        tx = optax.adam(LR)
        notes.append(f"jax.jit MLP step: value_and_grad + optax {optax.__version__} adam")
    except ImportError:
        tx = _hand_adam(jax, jnp)
        notes.append("jax.jit MLP step: value_and_grad + Adam by hand (optax not installed)")

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
        return params, opt_state, loss

    carry = [params, tx.init(params)]
    x, y = jnp.asarray(xn), jnp.asarray(yn.astype(np.int32))

    def step(x, y):
        carry[0], carry[1], loss = train_step(carry[0], carry[1], x, y)
        return jax.block_until_ready(loss)

    return step, (x, y)


def _hand_adam(jax, jnp):
    """optax.adam's init/update pair, for a machine without optax."""
    class Adam:
        @staticmethod
        def init(params):
            zeros = jax.tree.map(jnp.zeros_like, params)
            return zeros, zeros, jnp.zeros((), jnp.int32)

        @staticmethod
        def update(grads, state, params=None):
            m, v, t = state
            t = t + 1
            m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, m, grads)
            v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, v, grads)
            c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
            updates = jax.tree.map(lambda m, v: -LR * (m / c1) / (jnp.sqrt(v / c2) + 1e-8), m, v)
            return updates, (m, v, t)

    return Adam()


# --- the run -------------------------------------------------------------------------------

def bench_workload(short, name, build, shape, peers, notes, rng):
    fnx.manual_seed(0)
    weights = {k: v.numpy().copy() for k, v in build(fnn).state_dict().items()}
    xn = rng.standard_normal(shape).astype(np.float32)
    yn = rng.integers(0, 10, shape[0]).astype(np.int64)
    is_mlp = build is mlp
    contestants, jitted = fnx_contestants(build, weights, xn, yn, functional=is_mlp)
    torch = peers.get("torch")
    if torch is not None:
        contestants.update(torch_contestants(torch, build, weights, xn, yn, notes,
                                             f"the {short} step" if is_mlp else None))
    if is_mlp and "jax" in peers:
        contestants["jax.jit"] = jax_mlp_contestant(*peers["jax"], weights, xn, yn, notes)
    # every contestant starts from the same weights: its first losses must be fnx eager's
    # (Adam's first steps move each weight by about lr, so they check the whole step)
    first = {}
    for mode, (step, args, *done) in contestants.items():
        t0 = time.perf_counter()
        first[mode] = done + runs(step, args, CHECK_STEPS - len(done))
        if mode.startswith("fnx"):
            notes.append(f"{short}, {mode}: first {CHECK_STEPS} steps (trace, compile or "
                         f"load kernels) {time.perf_counter() - t0:.2f} s")
    ref = first["fnx eager"]
    for mode, losses in first.items():
        np.testing.assert_allclose(losses, ref, rtol=2e-3, err_msg=f"{name}: {mode} losses")
    reps = 3 if QUICK else 10
    traces = {mode: fn.cache_info().traces for mode, fn in jitted.items()}
    times = paired_times({mode: (lambda s=step, a=args: s(*a))
                          for mode, (step, args, *_) in contestants.items()}, reps, CLOCK)
    retraced = set()
    for mode, fn in jitted.items():  # a compiled step must not re-trace once warm
        info = fn.cache_info()
        if info.traces != traces[mode]:
            retraced.add(mode)
            notes.append(f"**{short}, {mode} re-traced {info.traces - traces[mode]} times while "
                         f"timed** (its time is not the compiled step's): {info.misses[-1]}")
    return name, times, retraced


def small_op_rows(torch):
    """``x + y`` on 16 float32: untracked, and recorded by the tape (x requires grad)."""
    rng = np.random.default_rng(0)
    xn = rng.standard_normal(16).astype(np.float32)
    yn = rng.standard_normal(16).astype(np.float32)
    x, y = fnx.from_numpy(xn), fnx.from_numpy(yn)
    xg = fnx.tensor(xn, requires_grad=True)
    plain = {"numpy": lambda: xn + yn, "fnx": lambda: x + y}
    tracked = {"fnx": lambda: xg + y}
    if torch is not None:
        xt, yt = torch.from_numpy(xn.copy()), torch.from_numpy(yn.copy())
        xtg = xt.clone().requires_grad_()
        plain["torch"] = lambda: xt + yt
        tracked["torch"] = lambda: xtg + yt
    budget, repeat = (0.005, 7) if QUICK else (0.02, 41)
    return [("`x + y`", median_us(plain, budget, repeat, CLOCK)),
            ("`x + y`, x requires grad (tape node)", median_us(tracked, budget, repeat, CLOCK))]


def fmt_ms(t):
    return "-" if t is None else f"{t * 1e3:.2f}"


def main():
    peers = load_peers()
    torch = peers.get("torch")
    notes = []
    rng = np.random.default_rng(0)
    results = [bench_workload(*workload, peers, notes, rng) for workload in WORKLOADS]
    ops = small_op_rows(torch)

    columns = ["fnx eager", "fnx jit (functional)", "fnx.compile", "torch", "torch.compile",
               "jax.jit"]
    columns = [c for c in columns if any(c in t for _, t, _ in results)]
    print(machine_info())
    clock = "CPU time of the process" if CLOCK is time.process_time else "wall time"
    print(f"\n### training step, ms per step (median of paired rounds, {clock})\n")
    print("| step | " + " | ".join(columns) + " | fnx eager / torch | fnx.compile / torch |")
    print("|---|" + "---|" * (len(columns) + 2))
    for name, t, _ in results:
        ratios = [f"{t[m] / t['torch']:.2f}x" if "torch" in t else "-"
                  for m in ("fnx eager", "fnx.compile")]
        print(f"| {name} | " + " | ".join(fmt_ms(t.get(c)) for c in columns) + " | "
              + " | ".join(ratios) + " |")

    print(f"\n### eager small op, 16 float32, µs per call ({clock})\n")
    op_cols = [c for c in ("numpy", "fnx", "torch") if any(c in t for _, t in ops)]
    print("| op | " + " | ".join(op_cols) + " |")
    print("|---|" + "---|" * len(op_cols))
    for op, t in ops:
        print(f"| {op} | " + " | ".join(f"{t[c]:.2f}" if c in t else "-" for c in op_cols)
              + " |")

    _, mlp_t, mlp_retraced = results[0]
    checks = [("small op `x + y` <= 2 µs", ops[0][1]["fnx"], 2.0, "µs")]
    if "torch" in mlp_t:
        checks += [("MLP fnx.compile <= torch eager", mlp_t["fnx.compile"], mlp_t["torch"], "ms"),
                   ("MLP eager tape <= 1.5x torch eager", mlp_t["fnx eager"],
                    1.5 * mlp_t["torch"], "ms")]
    checks.append(("MLP fnx.compile <= 1.1x functional jit", mlp_t["fnx.compile"],
                   1.1 * mlp_t["fnx jit (functional)"], "ms"))
    void = {"MLP fnx.compile <= torch eager", "MLP fnx.compile <= 1.1x functional jit"} \
        if "fnx.compile" in mlp_retraced else set()
    if "fnx jit (functional)" in mlp_retraced:
        void.add("MLP fnx.compile <= 1.1x functional jit")
    print("\n### targets (issue 8)\n")
    print("| target | measured | bound | |")
    print("|---|---|---|---|")
    for what, got, bound, unit in checks:
        scale = 1e3 if unit == "ms" else 1.0
        verdict = "void (re-traced while timed)" if what in void else \
            "met" if got <= bound else "MISSED"
        print(f"| {what} | {got * scale:.2f} {unit} | {bound * scale:.2f} {unit} | {verdict} |")

    missing = [p for p in ("torch", "jax") if p not in peers]
    if missing:
        notes.append(f"not installed, not compared: {', '.join(missing)}")
    print()
    for note in notes:
        print(f"- {note}")


if __name__ == "__main__":
    main()
