"""Run under ``mpiexec -n N`` by tests/test_distributed.py: N ranks each with B/N examples give
the parameters one process gets with batch B (each rank also runs that one process itself, as
the reference), for SGD and Adam, with SyncBatchNorm, gradient accumulation under no_sync,
unused parameters, eager and compiled steps, and a checkpoint written by rank 0 and resumed.
Prints ``PASS <case>`` per case; any failure raises, which aborts every rank."""

import os
import sys

import numpy as np

import fnx
import fnx.distributed as dist
from fnx import nn
from fnx.nn.parallel import DistributedDataParallel as DDP

dist.init_process_group("mpi")
RANK, SIZE = dist.get_rank(), dist.get_world_size()
B, STEPS = 12, 2
rng = np.random.default_rng(0)
X = fnx.tensor(rng.normal(size=(STEPS, B, 5)).astype(np.float32))
Y = fnx.tensor(rng.integers(0, 3, size=(STEPS, B)))
LO, HI = RANK * B // SIZE, (RANK + 1) * B // SIZE


def build(norm):
    fnx.manual_seed(1 + RANK * 100)  # different on every rank: DDP broadcasts rank 0's
    layers = [nn.Linear(5, 8)]
    if norm is not None:
        layers.append(norm(8))
    layers += [nn.ReLU(), nn.Linear(8, 3)]
    return nn.Sequential(*layers)


def make_optimizer(name, params):
    if name == "sgd":
        return fnx.optim.SGD(params, lr=0.1, momentum=0.9)
    return fnx.optim.Adam(params, lr=0.01)


def step_fn(model, opt, accumulate):
    def step(x, y):
        opt.zero_grad()
        if accumulate:
            half = x.shape[0] // 2
            with model.no_sync() if isinstance(model, DDP) else _nothing():
                (nn.functional.cross_entropy(model(x[:half]), y[:half]) / 2).backward()
            loss = nn.functional.cross_entropy(model(x[half:]), y[half:]) / 2
        else:
            loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def reference(norm, opt_name, accumulate):
    """One process, the whole batch, rank 0's initial weights; accumulation splits every
    rank's share in two halves, as the distributed run does."""
    model = build(norm)
    start = _rank0_state(norm)
    model.load_state_dict(start)
    opt = make_optimizer(opt_name, model.parameters())
    for s in range(STEPS):
        opt.zero_grad()
        if accumulate:
            loss = 0
            for r in range(SIZE):
                lo, hi = r * B // SIZE, (r + 1) * B // SIZE
                half = (hi - lo) // 2
                for a, b in ((lo, lo + half), (lo + half, hi)):
                    part = nn.functional.cross_entropy(model(X[s, a:b]), Y[s, a:b])
                    loss = loss + part * (b - a) / B
            loss.backward()
        else:
            nn.functional.cross_entropy(model(X[s]), Y[s]).backward()
        opt.step()
    return model


def _rank0_state(norm):
    fnx.manual_seed(1)
    layers = [nn.Linear(5, 8)] + ([norm(8)] if norm is not None else []) + \
        [nn.ReLU(), nn.Linear(8, 3)]
    return nn.Sequential(*layers).state_dict()


def distributed(norm, opt_name, accumulate, compiled, find_unused=False):
    model = build(None if norm is None else nn.SyncBatchNorm)
    ddp = DDP(model, find_unused_parameters=find_unused, bucket_cap_mb=1e-4)
    opt = make_optimizer(opt_name, ddp.parameters())
    step = step_fn(ddp, opt, accumulate)
    if compiled:
        step = fnx.compile(step)
    for s in range(STEPS):
        step(X[s, LO:HI], Y[s, LO:HI])
    if compiled:
        # the gradient all-reduces are equations of the step's compiled program (one per
        # bucket), not host calls made while tracing
        program = str(step.lower(X[0, LO:HI], Y[0, LO:HI]).ir)
        buckets = len(ddp._reducer.buckets)
        assert program.count("all_reduce_sum") >= buckets, program
        assert step.cache_info().traces == 2, step.cache_info()
    return model


def check_close(got, want, what):
    for (name, a), (_, b) in zip(got.state_dict().items(), want.state_dict().items(),
                                 strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6,
                                   err_msg=f"{what}: {name} differs on rank {RANK}")
    # and every rank holds the same parameters
    for name, a in got.state_dict().items():
        everyone = dist.functional.all_gather(fnx.tensor(np.asarray(a)))
        assert np.array_equal(np.asarray(everyone), np.broadcast_to(np.asarray(a),
                                                                    everyone.shape)), name


CASES = {
    "sgd": dict(norm=None, opt_name="sgd", accumulate=False),
    "adam": dict(norm=None, opt_name="adam", accumulate=False),
    "syncbn": dict(norm=nn.BatchNorm1d, opt_name="sgd", accumulate=False),
    "no_sync": dict(norm=None, opt_name="adam", accumulate=True),
}


def run_equivalence(selected, compiled):
    for name in selected:
        case = CASES[name]
        if case["accumulate"] and (B // SIZE) % 2:
            continue
        got = distributed(compiled=compiled, **case)
        want = reference(case["norm"], case["opt_name"], case["accumulate"])
        check_close(got, want, f"{name} compiled={compiled}")
        print(f"PASS {name}{' compiled' if compiled else ''}", flush=True)


def run_unused():
    """A branch only some ranks use: find_unused_parameters lets backward finish, the
    gradient of the branch is averaged over the ranks that used it and zeros."""

    class Branchy(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(3, 1), nn.Linear(3, 1)

        def forward(self, x, use_b):
            return self.a(x) + (self.b(x) if use_b else 0)

    fnx.manual_seed(0)
    ddp = DDP(Branchy(), find_unused_parameters=True)
    x = fnx.ones(2, 3) * (RANK + 1)
    ddp(x, RANK == 0).sum().backward()
    expected_b = np.full((1, 3), 2.0 / SIZE)  # only rank 0 used b: (2 + 0 + ...) / SIZE
    np.testing.assert_allclose(np.asarray(ddp.module.b.weight.grad), expected_b, rtol=1e-6)
    mean_x = sum(2.0 * (r + 1) for r in range(SIZE)) / SIZE
    np.testing.assert_allclose(np.asarray(ddp.module.a.weight.grad), np.full((1, 3), mean_x))
    # a branch nobody used keeps no gradient
    ddp.zero_grad()
    ddp(x, False).sum().backward()
    assert ddp.module.b.weight.grad is None
    # without find_unused_parameters the next forward names the parameters that got none
    strict = DDP(Branchy())
    strict(x, False).sum().backward()
    try:
        strict(x, False)
    except RuntimeError as err:
        assert "b.weight" in str(err) and "find_unused_parameters=True" in str(err), err
    else:
        raise AssertionError("an unfinished reduction was not reported")
    print("PASS unused", flush=True)


def run_no_sync_outside_compiled():
    """Entering no_sync() around a compiled step re-traces it without the all-reduces, and
    leaving it brings the synchronized program back (kept in the trace cache)."""
    fnx.manual_seed(0)
    ddp = DDP(nn.Linear(3, 1))

    @fnx.compile
    def backward(x):
        ddp.zero_grad()
        ddp(x).sum().backward()
        return ddp.module.bias.grad

    x = fnx.ones(2, 3) * (RANK + 1)
    local = np.asarray(fnx.grad(lambda m: m(x).sum())(ddp.module).weight)
    for _ in range(2):
        synced = np.asarray(backward(x) * 1)
        with ddp.no_sync():
            unsynced = np.asarray(backward(x) * 1)
        np.testing.assert_allclose(np.asarray(ddp.module.weight.grad), local)
    assert synced.tolist() == [2.0] and unsynced.tolist() == [2.0]
    backward(x)
    np.testing.assert_allclose(np.asarray(ddp.module.weight.grad),
                               np.full((1, 3), 2.0 * sum(r + 1 for r in range(SIZE)) / SIZE))
    assert "require_backward_grad_sync" in " ".join(backward.cache_info().misses)
    print("PASS no_sync outside", flush=True)


def run_copy():
    """copy.deepcopy of a wrapped model (an EMA copy, say) averages its own gradients."""
    import copy

    fnx.manual_seed(0)
    ddp = DDP(nn.Linear(3, 1))
    twin = copy.deepcopy(ddp)
    assert twin.module.weight is not ddp.module.weight
    x = fnx.ones(2, 3) * (RANK + 1)
    twin(x).sum().backward()
    ddp(x * 2).sum().backward()
    mean = sum(2.0 * (r + 1) for r in range(SIZE)) / SIZE
    assert twin.module.weight.grad.tolist() == [[mean] * 3], twin.module.weight.grad
    assert ddp.module.weight.grad.tolist() == [[2 * mean] * 3], ddp.module.weight.grad
    print("PASS copy", flush=True)


def run_checkpoint(directory):
    """Rank 0 saves (atomically); after a barrier every rank resumes from the file and the
    run continues exactly as the uninterrupted one."""
    path = os.path.join(directory, "ckpt.safetensors")

    def fresh():
        model = DDP(build(None))
        return model, make_optimizer("adam", model.parameters())

    model, opt = fresh()
    step = step_fn(model, opt, accumulate=False)
    for s in range(STEPS):
        step(X[s, LO:HI], Y[s, LO:HI])
        if s == 0 and RANK == 0:
            fnx.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    dist.barrier()
    resumed, ropt = fresh()
    saved = fnx.load(path)
    resumed.load_state_dict(saved["model"])
    ropt.load_state_dict(saved["optimizer"])
    rstep = step_fn(resumed, ropt, accumulate=False)
    for s in range(1, STEPS):
        rstep(X[s, LO:HI], Y[s, LO:HI])
    for (name, a), (_, b) in zip(model.state_dict().items(), resumed.state_dict().items(),
                                 strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b)), name
    print("PASS checkpoint", flush=True)


if __name__ == "__main__":
    what = sys.argv[1].split(",")
    if "eager" in what:
        run_equivalence(list(CASES), compiled=False)
    if "compiled" in what:
        run_equivalence(list(CASES), compiled=True)
    if "unused" in what:
        run_unused()
    if "no_sync_outside" in what:
        run_no_sync_outside_compiled()
    if "checkpoint" in what:
        run_checkpoint(sys.argv[2])
    if "copy" in what:
        run_copy()
    dist.destroy_process_group()
