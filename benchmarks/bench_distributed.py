"""Data-parallel costs on this machine: all-reduce latency and bandwidth between 2 ranks
(1 KB - 64 MB of float32, MPI through mpi4py on the buffers), the per-step overhead
DistributedDataParallel adds to the MLP 784-512-512-10 step (batch 128 per rank, eager tape and
compiled), and weak scaling 1 -> 2 ranks (the same per-rank batch).

    python benchmarks/bench_distributed.py       # starts mpiexec -n 1 and -n 2 itself

docs/distributed.md turns these numbers into a ring all-reduce estimate for 8-512 workers.
"""

import os
import subprocess
import sys
import time

import numpy as np


def _median_time(fn, repeat, inner=1):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - start) / inner)
    return float(np.median(times))


def allreduce_table(dist):
    """(bytes, fnx all_reduce time, bus bandwidth, mpi4py's blocking Allreduce time): the
    last column is MPI alone, on the same buffers, in the same run (this machine's load
    moves both alike)."""
    from mpi4py import MPI

    import fnx

    comm = MPI.COMM_WORLD
    rows = []
    for size in [2 ** k for k in range(10, 27, 2)]:  # 1 KB .. 64 MB
        x = fnx.ones(size // 4)
        buf, out = np.ones(size // 4, np.float32), np.empty(size // 4, np.float32)
        dist.all_reduce(x)
        inner = max(1, min(200, 2 ** 22 // size))
        t = _median_time(lambda: dist.all_reduce(x), 7, inner)
        raw = _median_time(lambda: comm.Allreduce(buf, out), 7, inner)
        # a ring all-reduce moves 2 (n-1)/n of the data through each link: bus bandwidth
        rows.append((size, t, 2 * 0.5 * size / t / 1e9, raw))
    return rows


def mlp_steps(dist, compiled):
    import fnx
    from fnx import nn

    fnx.manual_seed(0)
    x = fnx.randn(128, 784)
    y = fnx.randint(0, 10, (128,))
    out = {}
    for wrap in (False, True):
        model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                              nn.Linear(512, 10))
        if wrap:
            model = nn.parallel.DistributedDataParallel(model)
        opt = fnx.optim.SGD(model.parameters(), lr=0.01)

        def step():
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        run = fnx.compile(step) if compiled else step
        for _ in range(3):
            float(run())
        dist.barrier()
        out[wrap] = _median_time(lambda: float(run()), 9, 5)
    return out


def worker():
    import fnx.distributed as dist

    dist.init_process_group("mpi")
    rank, size = dist.get_rank(), dist.get_world_size()
    lines = []
    if size == 2:
        lines.append("all-reduce (float32, 2 ranks): bytes, fnx time, bus bandwidth, "
                     "mpi4py Allreduce time")
        for nbytes, t, bw, raw in allreduce_table(dist):
            lines.append(f"  {nbytes:>9d} B  {t * 1e6:10.1f} us  {bw:7.2f} GB/s  "
                         f"{raw * 1e6:10.1f} us")
    for compiled in (False, True):
        t = mlp_steps(dist, compiled)
        kind = "compiled" if compiled else "eager"
        lines.append(f"MLP step, {kind}, {size} rank(s): plain {t[False] * 1e3:.2f} ms, "
                     f"DDP {t[True] * 1e3:.2f} ms (+{(t[True] - t[False]) * 1e3:.2f} ms)")
    if rank == 0:
        print("\n".join(lines), flush=True)
    dist.destroy_process_group()


def main():
    mpiexec = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    for n in (1, 2):
        subprocess.run([mpiexec, "-n", str(n), sys.executable, __file__, "--worker"], env=env,
                       check=True)


if __name__ == "__main__":
    worker() if "--worker" in sys.argv else main()
