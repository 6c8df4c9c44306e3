"""Imported first by every benchmark script: one BLAS, Numba, OpenMP and XLA thread, and JAX on
the CPU, so timings on the 2-vCPU machine are stable and peers compare like with like.
Values already set in the environment win."""

import os

for _var in ("OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")  # compare CPU with CPU even on a GPU machine
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
