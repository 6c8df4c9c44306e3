"""Trace cache, kernel cache (in-process and on disk, shared across processes)."""

import ast
import collections
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
import fnx.scipy.special
from fnx.jit import cache, control_flow
from fnx.jit.codegen import cpu


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


def _copy_runtime(root):
    for rel in cache.RUNTIME_SOURCES:
        os.makedirs(os.path.dirname(root / rel), exist_ok=True)
        shutil.copyfile(os.path.join(cache._FNX_ROOT, rel), root / rel)


def test_runtime_digest_follows_the_content_of_every_helper(tmp_path):
    """The key is content, not location or a version string: a copy hashes the same, and any
    edit to any helper module (here a comment) changes it."""
    _copy_runtime(tmp_path)
    assert cache.runtime_digest(str(tmp_path)) == cache.runtime_digest()
    seen = {cache.runtime_digest()}
    for rel in cache.RUNTIME_SOURCES:
        with open(tmp_path / rel, "a") as f:
            f.write("\n# edited\n")
        seen.add(cache.runtime_digest(str(tmp_path)))
    assert len(seen) == len(cache.RUNTIME_SOURCES) + 1
    assert cache.runtime_digest() in cache.backend_key()


def _fnx_imports(source, module):
    """fnx modules that ``source`` (of module ``module``) imports, as paths under fnx/."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(module.split(".")[:-node.level] + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            rel = name.split(".")[1:]
            if name.startswith("fnx.") and os.path.isfile(os.path.join(cache._FNX_ROOT, *rel)
                                                          + ".py"):
                found.add("/".join(rel) + ".py")
    return found


def test_runtime_sources_cover_everything_generated_kernels_import():
    """RUNTIME_SOURCES is closed: the kernel header's fnx imports, the eager ufuncs' helper
    module, and whatever those import from fnx are all hashed into the key."""
    listed = set(cache.RUNTIME_SOURCES)
    todo = _fnx_imports(cpu.header("x"), "fnx.jit.generated")
    todo.add("core/ops/_scalar_special.py")  # imported by the eager ufuncs' modules
    assert todo <= listed
    for rel in listed:
        with open(os.path.join(cache._FNX_ROOT, rel)) as f:
            module = "fnx." + rel[:-3].replace("/", ".")
            assert _fnx_imports(f.read(), module) <= listed, rel


def test_a_helper_edit_gives_new_kernel_and_ufunc_files(tmp_path, monkeypatch):
    """Kernels and eager ufuncs written under one runtime are not reused once a helper they
    call changes (simulated with an edited copy of the runtime modules)."""
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path / "cache"))
    x = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    gamma, ln2 = 0.5772156649015329, np.log(2.0)
    expected = np.array([-gamma - 2 * ln2, -gamma, 2 - gamma - 2 * ln2, 1 - gamma, 1.5 - gamma])

    def run():
        monkeypatch.setattr(control_flow, "_exes", collections.OrderedDict())  # build anew
        f = fnx.jit(lambda a: fnx.scipy.special.digamma(a) * 2.0)
        out = np.asarray(f(fnp.asarray(x)))
        ufunc = cache.load_ufunc("_scalar_special.digamma(x)", ["float64(float64)"],
                                 ["from fnx.core.ops import _scalar_special"])
        np.testing.assert_allclose(out, 2 * expected, rtol=1e-10)
        np.testing.assert_allclose(ufunc(x), expected, rtol=1e-10)
        return {p for p in os.listdir(tmp_path / "cache") if p.endswith(".py")}

    before = run()
    assert run() == before  # same runtime: same files
    root = tmp_path / "fnx_copy"
    _copy_runtime(root)
    with open(root / "core/ops/_scalar_special.py", "a") as f:
        f.write("\n# a changed helper\n")
    monkeypatch.setattr(cache, "_FNX_ROOT", str(root))
    monkeypatch.setattr(cache, "_backend_key", None)
    new = run() - before
    assert len(new) == len(before)  # a new module for each kernel and for the ufunc
    key = cache.backend_key()
    assert all(key in (tmp_path / "cache" / p).read_text() for p in new)


SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np, fnx, fnx.numpy as fnp, fnx.scipy.special
    from fnx.jit import cache
    f = fnx.jit(lambda x, b: fnp.sum(fnp.exp(x - b) * 0.75, axis=1))
    out = f(fnp.ones((3, 4)), fnp.ones(4))
    stats = dict(cache.STATS)
    setup = "numba.np.arraymath" in sys.modules  # Numba's first-compile setup has run
    psi = fnx.scipy.special.digamma(fnp.ones(2, dtype=fnx.float64))  # an eager Numba ufunc
    # a kernel compiled after cached ones were loaded
    new = fnx.jit(lambda x: fnp.sin(x) * 2.0)(fnp.ones(3)) if "--new" in sys.argv else [0.0]
    print(stats["kernels_compiled"], stats["kernels_loaded"], int(setup), float(out[0]),
          float(psi[0]), float(new[0]))
""")


def _subprocess_env(cache_dir):
    return dict(os.environ, FNX_CACHE_DIR=str(cache_dir), OPENBLAS_NUM_THREADS="1",
                NUMBA_NUM_THREADS="1",
                PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(fnx.__file__))))


def test_disk_cache_is_reused_by_a_subprocess(tmp_path):
    """A second process loads every kernel from disk without Numba's first-compile setup
    (cache._load_cached), and can still compile a new kernel afterwards."""
    env = _subprocess_env(tmp_path)

    def run(*args):
        out = subprocess.run([sys.executable, "-c", SCRIPT, *args], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        return out.stdout.split()

    compiled1, loaded1, setup1, v1, psi1, _ = run()
    compiled2, loaded2, setup2, v2, psi2, new = run("--new")
    assert int(compiled1) >= 1 and setup1 == "1"
    assert int(compiled2) == 0 and int(loaded2) == int(compiled1) + int(loaded1)
    assert setup2 == "0"
    assert v1 == v2 and np.isclose(float(v1), 3.0)
    assert psi1 == psi2 and np.isclose(float(psi1), -0.5772156649015329)
    assert np.isclose(float(new), 2 * np.sin(1.0))


def test_concurrent_processes_share_one_cache_without_corrupting_it(tmp_path):
    """Three processes compile the same new kernels and eager ufunc into one empty cache at
    once; all get the right answer, and a fourth process then loads everything and compiles
    nothing (Numba's cache files are left as they were)."""
    env = _subprocess_env(tmp_path)
    procs = [subprocess.Popen([sys.executable, "-c", SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(3)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        assert np.isclose(float(out.split()[3]), 3.0)
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".tmp_")]
    assert leftovers == []

    def numba_files():
        d = tmp_path / "__pycache__"
        return {n: os.stat(d / n).st_mtime_ns for n in os.listdir(d) if n.endswith((".nbi",
                                                                                    ".nbc"))}

    files = numba_files()
    assert any(".kernel-" in n for n in files)
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                         text=True, timeout=300)
    compiled, loaded, _, value, psi, _ = out.stdout.split()
    assert out.returncode == 0 and int(compiled) == 0 and int(loaded) >= 1
    assert np.isclose(float(value), 3.0) and np.isclose(float(psi), -0.5772156649015329)
    assert numba_files() == files


HASH_SCRIPT = textwrap.dedent("""
    import fnx, fnx.numpy as fnp, fnx.nn.functional as F
    from fnx.jit import cache
    w = fnp.arange(12.0).reshape(3, 4)
    # a row kernel whose costly values several passes reuse (three row buffers _m<name>)
    f = lambda x: (F.softmax(fnp.tanh(x) * fnp.sin(x), -1) * w).sum()
    fnx.jit(fnx.grad(f))(fnp.ones((3, 4)))
    print(cache.STATS["kernels_compiled"], cache.STATS["kernels_loaded"])
""")


def test_kernel_text_does_not_depend_on_the_hash_seed(tmp_path):
    """Kernel files are keyed by their text: emitting anything in set order (string hashes
    differ per process) gave every new process new kernels to compile."""
    compiled = []
    for seed in ("1", "2"):
        env = dict(_subprocess_env(tmp_path), PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", HASH_SCRIPT], env=env, capture_output=True,
                             text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        compiled.append([int(n) for n in out.stdout.split()])
    assert compiled[0][0] >= 1 and compiled[1] == [0, sum(compiled[0])]


def test_gc_is_paused_while_tracing_and_the_users_settings_win_afterwards():
    import gc
    import threading

    x = fnp.ones((3,))
    inside = []

    @fnx.jit
    def raises(x):
        inside.append(gc.get_threshold()[0])
        return x @ fnp.ones((4, 5))  # a shape error while tracing

    before = gc.get_threshold()
    with pytest.raises(Exception):
        raises(x)
    assert inside == [0] and gc.get_threshold() == before and gc.isenabled()

    @fnx.jit
    def disables(x):  # the user's gc.disable() inside a trace is not undone by fnx
        gc.disable()
        return x * 5

    try:
        disables(x)
        assert not gc.isenabled() and gc.get_threshold() == before
    finally:
        gc.enable()

    # another thread traces; this one disables the collector meanwhile and then traces and
    # finishes first: the collector stays off, the thresholds come back when both are done
    release = threading.Event()

    @fnx.jit
    def waits(x):
        release.wait(10)
        return x * 7

    t = threading.Thread(target=waits, args=(x,))
    t.start()
    try:
        gc.disable()
        fnx.jit(lambda x: x * 8)(x)
        assert gc.get_threshold()[0] == 0  # the other trace still runs
        release.set()
        t.join()
        assert not gc.isenabled() and gc.get_threshold() == before
    finally:
        release.set()
        gc.enable()


def test_paused_gc_recovers_from_a_skipped_exit():
    """A KeyboardInterrupt can skip a block's ``__exit__`` (Python takes pending signals at a
    frame's first instruction and after C calls): the dropped block closes itself, and a
    block that finds the threshold left at 0 restores the thresholds saved before it."""
    import gc

    from fnx.jit import cache

    before = gc.get_threshold()
    block = cache.paused_gc()
    block.__enter__()
    assert gc.get_threshold()[0] == 0
    del block  # the unwinding drops it without __exit__
    assert gc.get_threshold() == before
    try:
        gc.set_threshold(0, *before[1:])  # as an interrupt between the restore's two calls
        with cache.paused_gc():
            assert gc.get_threshold()[0] == 0
        assert gc.get_threshold() == before
    finally:
        gc.set_threshold(*before)
