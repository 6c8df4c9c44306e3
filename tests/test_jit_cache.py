"""Trace cache, kernel cache (in-process and on disk, shared across processes)."""

import os
import subprocess
import sys
import textwrap

import numpy as np

import fnx
import fnx.numpy as fnp
from fnx.jit import cache


def _f(x, w):
    return fnp.sum(fnp.tanh(x @ w) * 0.5 + 0.25, axis=1)


def test_no_retrace_for_same_shapes():
    f = fnx.jit(_f)
    x, w = fnp.ones((4, 3)), fnp.ones((3, 2))
    f(x, w)
    f(x + 1.0, w)
    info = f.cache_info()
    assert info.traces == 1 and info.hits == 1 and info.misses == ["first call"]


def test_new_batch_size_retraces_but_compiles_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    f = fnx.jit(lambda x, b: fnp.max(fnp.exp(x * 1.5 + b), axis=1) + 0.125)
    b = fnp.ones(7)
    f(fnp.ones((4, 7)), b)
    first = f.cache_info().kernels_compiled + f.cache_info().kernels_loaded
    assert first >= 1
    for n in (5, 9, 33):
        out = f(fnp.ones((n, 7)), b)
        assert out.shape == (n,)
    info = f.cache_info()
    assert info.traces == 4
    assert info.kernels_compiled + info.kernels_loaded == first
    assert "new shapes" in info.misses[1]


def test_dtype_change_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    f = fnx.jit(lambda x: x * 2)
    f(fnp.ones(3))
    f(fnp.ones(3, dtype=fnx.float64))
    assert "new dtypes" in f.cache_info().misses[-1]


def test_kernel_files_are_content_addressed(tmp_path, monkeypatch):
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    f = fnx.jit(lambda x: fnp.log1p(fnp.abs(x)) * 3.0)
    lo = f.lower(fnp.ones(5))
    f(fnp.ones(5))
    files = [p for p in os.listdir(tmp_path) if p.startswith("fnx_") and p.endswith(".py")]
    assert files, "no kernel written"
    text = (tmp_path / files[0]).read_text()
    assert cache.backend_key() in text and "runtime=" in text and "numba=" in text
    assert cache.source_hash(text) in files[0]
    assert lo.source.split("# orchestrator")[0].strip().split("\n", 1)[1] in text


SCRIPT = textwrap.dedent("""
    import numpy as np, fnx, fnx.numpy as fnp
    from fnx.jit import cache
    f = fnx.jit(lambda x, b: fnp.sum(fnp.exp(x - b) * 0.75, axis=1))
    out = f(fnp.ones((3, 4)), fnp.ones(4))
    print(cache.STATS["kernels_compiled"], cache.STATS["kernels_loaded"], float(out[0]))
""")


def _subprocess_env(cache_dir):
    return dict(os.environ, FNX_CACHE_DIR=str(cache_dir), OPENBLAS_NUM_THREADS="1",
                NUMBA_NUM_THREADS="1",
                PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(fnx.__file__))))


def test_disk_cache_is_reused_by_a_subprocess(tmp_path):
    env = _subprocess_env(tmp_path)

    def run():
        out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    compiled1, loaded1, v1 = run()
    compiled2, loaded2, v2 = run()
    assert int(compiled1) >= 1
    assert int(compiled2) == 0 and int(loaded2) == int(compiled1) + int(loaded1)
    assert v1 == v2 and np.isclose(float(v1), 3.0)


def test_concurrent_processes_share_one_cache_without_corrupting_it(tmp_path):
    """Three processes compile the same new kernels into one empty cache at once; all get the
    right answer, and a fourth process then loads everything and compiles nothing."""
    env = _subprocess_env(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert np.isclose(float(out.split()[2]), 3.0)
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".tmp_")]
    assert leftovers == []
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    compiled, loaded, value = out.stdout.split()
    assert out.returncode == 0 and int(compiled) == 0 and int(loaded) >= 1
    assert np.isclose(float(value), 3.0)
