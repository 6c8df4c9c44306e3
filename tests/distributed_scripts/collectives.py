"""Run under ``mpiexec -n N`` by tests/test_distributed.py: the collective primitives against
NumPy, eagerly and under jit (the compiled program calls MPI), their derivatives against float64
central differences of the whole job's function, vmap against a loop, and the torch-style
in-place and non-blocking forms."""

import threading

import numpy as np

import fnx
import fnx.distributed as dist
import fnx.distributed.functional as dF
import fnx.numpy as fnp

dist.init_process_group("mpi")
R, N = dist.get_rank(), dist.get_world_size()
base = np.arange(6, dtype=np.float64).reshape(2, 3) - 2.5
mine = base * (R + 1) + R  # a different array on every rank
every = [base * (r + 1) + r for r in range(N)]
x = fnx.asarray(mine)

refs = {"sum": sum(every), "mean": sum(every) / N, "max": np.max(every, 0),
        "min": np.min(every, 0)}
for op, want in refs.items():
    np.testing.assert_allclose(dF.all_reduce(x, op), want)
    np.testing.assert_allclose(fnx.jit(lambda v, op=op: dF.all_reduce(v, op))(x), want)
np.testing.assert_allclose(dF.all_gather(x), np.stack(every))
np.testing.assert_allclose(dF.all_gather(x, axis=1), np.stack(every, 1))
np.testing.assert_allclose(dF.all_gather(x, tiled=True), np.concatenate(every))
stacked = fnx.asarray(np.stack([mine + k for k in range(N)]))  # block k goes to rank k
np.testing.assert_allclose(dF.reduce_scatter(stacked), sum(e + R for e in every))
np.testing.assert_allclose(fnx.jit(dF.reduce_scatter)(stacked), sum(e + R for e in every))
np.testing.assert_allclose(dF.broadcast(x, src=N - 1), every[-1])
np.testing.assert_allclose(fnx.jit(lambda v: dF.broadcast(v, src=N - 1))(x), every[-1])

# vmap: the batch axis rides along, at any position
for fn in (lambda v: dF.all_reduce(v), lambda v: dF.all_gather(v),
           lambda v: dF.reduce_scatter(fnp.stack([v] * N)), lambda v: dF.broadcast(v, 1 % N)):
    for axis in (0, 1):
        got = fnx.vmap(fn, in_axes=axis)(x)
        loop = np.stack([np.asarray(fn(x[:, i] if axis else x[i]))
                         for i in range(x.shape[axis])])
        np.testing.assert_allclose(got, loop)

# gradients of the job's total: f_r(x_r) = sum(w_r * collective(x_r)); the derivative of
# sum_r f_r with respect to this rank's x, by central differences in which only this rank
# perturbs (the others perturb in turn: every rank runs every evaluation)
w = fnx.asarray(np.cos(np.arange(6.0)).reshape(2, 3) * (R + 1))
fns = {"sum": lambda v: dF.all_reduce(v), "max": lambda v: dF.all_reduce(v, "max"),
       "gather": lambda v: dF.all_gather(v)[N - 1] * 2 + dF.all_gather(v)[0],
       "scatter": lambda v: dF.reduce_scatter(fnp.stack([v * (k + 1) for k in range(N)])),
       "bcast": lambda v: dF.broadcast(v * v, src=0)}
for name, fn in fns.items():
    def local(v, fn=fn):
        return fnp.sum(w * fn(v))
    grad = np.asarray(fnx.grad(local)(x))
    jit_grad = np.asarray(fnx.jit(fnx.grad(local))(x))
    np.testing.assert_allclose(jit_grad, grad, rtol=1e-12)
    numeric = np.zeros_like(mine)
    eps = 1e-6
    for owner in range(N):
        for idx in np.ndindex(mine.shape):
            total = []
            for sign in (1, -1):
                v = mine.copy()
                if owner == R:
                    v[idx] += sign * eps
                total.append(float(dF.all_reduce(local(fnx.asarray(v)))))
            if owner == R:
                numeric[idx] = (total[0] - total[1]) / (2 * eps)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-6, err_msg=name)

# torch-style: in place, blocking and not
t = fnx.asarray(mine.copy())
assert dist.all_reduce(t) is t
np.testing.assert_allclose(t, refs["sum"])
work = dist.all_reduce(fnx.asarray(mine.copy()), op=dist.ReduceOp.AVG, async_op=True)
np.testing.assert_allclose(work.wait(), refs["mean"])
outs = [fnx.zeros((2, 3), dtype=fnx.float64) for _ in range(N)]
dist.all_gather(outs, x)
for o, e in zip(outs, every):
    np.testing.assert_allclose(o, e)
got = [fnx.zeros((2, 3), dtype=fnx.float64) for _ in range(N)] if R == 0 else None
dist.gather(x, got, dst=0)
if R == 0:
    for o, e in zip(got, every):
        np.testing.assert_allclose(o, e)
part = fnx.zeros(3, dtype=fnx.float64)
dist.scatter(part, [fnx.asarray(np.full(3, float(k))) for k in range(N)] if R == 0 else None)
np.testing.assert_allclose(part, np.full(3, float(R)))
dist.barrier(async_op=True).wait()

# PyTorch's hand-written data parallelism: parameters (leaves that require grad) and their
# .data are written in place without recording anything; they stay trainable leaves
fnx.manual_seed(R)
layer = fnx.nn.Linear(3, 2)
for p in layer.parameters():
    dist.broadcast(p.data, src=N - 1)
fnx.manual_seed(N - 1)
np.testing.assert_array_equal(layer.weight, fnx.nn.Linear(3, 2).weight)
layer(fnx.ones(1, 3) * (R + 1)).sum().backward()
assert layer.weight.requires_grad and layer.weight.grad_fn is None
for p in layer.parameters():
    dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)
np.testing.assert_allclose(layer.weight.grad, np.full((2, 3), (N + 1) / 2))

# the helpers PyTorch scripts log and share with: reduce to one rank, picklable objects
logged = fnx.tensor([float(R)])
assert dist.reduce(logged, dst=0).tolist() == [sum(range(N))]
objects = [None] * N
dist.all_gather_object(objects, {"rank": R, "name": "x" * R})
assert objects == [{"rank": r, "name": "x" * r} for r in range(N)], objects
shared = ["config.yaml", N - 1] if R == N - 1 else [None, None]
dist.broadcast_object_list(shared, src=N - 1)
assert shared == ["config.yaml", N - 1], shared

# bool arrays reduce as PyTorch's (sum and max: or, min: and; MPI has no sum of C bools),
# in place and as the primitive; complex arrays are summed, and max of them is a clear error
flags = np.array([True, R == 0, False])
for op, want in (("sum", [True, True, False]), ("max", [True, True, False]),
                 ("min", [True, N == 1, False])):
    assert dist.all_reduce(fnx.asarray(flags), op=op).tolist() == want, op
    assert dF.all_reduce(fnx.asarray(flags), op).tolist() == want, op
np.testing.assert_array_equal(dF.reduce_scatter(fnx.asarray(np.stack([flags] * N))),
                              [True, True, False])
z = fnx.asarray(np.array([1 + 2j, R * 1j], np.complex128))
np.testing.assert_allclose(fnx.jit(dF.all_reduce)(z), [N * (1 + 2j), sum(range(N)) * 1j])
np.testing.assert_allclose(dist.all_reduce(z), [N * (1 + 2j), sum(range(N)) * 1j])
try:
    dist.all_reduce(z, op="max")
    raise AssertionError("max of complex numbers did not raise")
except dist.DistributedError as err:
    assert "op 'max' is not defined for complex128" in str(err), err

# threads of one rank calling collectives at once: each collective's check and operation stay
# together (MPI would otherwise pair one thread's check with another's data)
results = []


def worker():
    results.extend(float(dist.all_reduce(fnx.ones(50) * 2)[0]) for _ in range(10))


threads = [threading.Thread(target=worker) for _ in range(3)]
for th in threads:
    th.start()
for th in threads:
    th.join()
assert results == [2.0 * N] * 30, results
print("PASS collectives", flush=True)
dist.destroy_process_group()
