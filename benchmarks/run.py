"""Run every CPU benchmark and print their tables: ``python benchmarks/run.py [--quick]``.

Each workload is its own script (bench_eager, bench_transforms, bench_vecmath, bench_jit,
bench_nn, bench_layers, bench_distributed), run in a fresh process with one BLAS and one Numba
thread, as docs/benchmarks.md records.
"""

import os
import platform
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = [
    ("eager dispatch and throughput", "bench_eager.py", ["--quick"]),
    ("transforms: per-example gradients, grad overhead", "bench_transforms.py", ["--quick"]),
    ("vecmath: vectorizable transcendental helpers", "bench_vecmath.py", []),
    ("jit: fused kernels, train step, call overhead, compile latency", "bench_jit.py", []),
    ("nn: PyTorch-style training steps (eager tape, functional jit, fnx.compile)", "bench_nn.py",
     ["--quick"]),
    ("layer kernels: conv, CNN / LSTM / Transformer steps, cold compile", "bench_layers.py",
     ["--quick", "--cpu-time"]),
    ("data parallel: all-reduce, DDP overhead, weak scaling (MPI)", "bench_distributed.py", []),
]


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    quick = "--quick" in argv
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1")
    print(f"# fnx benchmarks — {time.strftime('%Y-%m-%d')}, {cpu_model()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, one thread\n")
    failed = []
    for title, script, quick_args in SCRIPTS:
        print(f"## {title} ({script})\n", flush=True)
        cmd = [sys.executable, os.path.join(HERE, script)] + (quick_args if quick else [])
        result = subprocess.run(cmd, env=env)
        if result.returncode:
            failed.append(script)
        print(flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
