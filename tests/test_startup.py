"""`import fnx` (and its public subpackages) is cheap and has no side effects: no Numba (or
SciPy / llvmlite through it) until something compiles, and no process-wide setting changed.
Timing lives in benchmarks/bench_startup.py, not here."""

import json
import os
import subprocess
import sys
import textwrap

import fnx

PROBE = textwrap.dedent("""
    import gc, json, os, sys, warnings
    import numpy as np

    def state():
        return {"env": dict(os.environ), "gc": [gc.isenabled(), list(gc.get_threshold())],
                "np_err": np.geterr(), "np_print": repr(np.get_printoptions()),
                "switch": sys.getswitchinterval(), "recursion": sys.getrecursionlimit(),
                "warnings": [repr(f) for f in warnings.filters]}

    before = state()
    import importlib, importlib.util
    import fnx, fnx.numpy as fnp
    for name in ("fnx.scipy.special", "fnx.nn", "fnx.optim", "fnx.lax", "fnx.random",
                 "fnx.train"):
        if importlib.util.find_spec(name) is not None:  # the public packages that exist
            importlib.import_module(name)
    loaded = sorted({m.split(".")[0] for m in sys.modules} & {"numba", "llvmlite", "scipy"})
    from fnx.jit import memory
    print(json.dumps({"loaded": loaded, "same": before == state(),
                      "malloc_tuned": memory.tune_malloc.cache_info().currsize}))
    # compiling is what brings Numba in
    fnx.jit(lambda x: x * 2.0)(fnp.ones(3))
    print(json.dumps({"numba": "numba" in sys.modules,
                      "malloc_tuned": memory.tune_malloc.cache_info().currsize}))
""")


def test_import_fnx_loads_no_numba_and_changes_no_setting(tmp_path):
    env = dict(os.environ, FNX_CACHE_DIR=str(tmp_path),
               PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(fnx.__file__))))
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    after_import, after_jit = (json.loads(line) for line in out.stdout.splitlines())
    assert after_import == {"loaded": [], "same": True, "malloc_tuned": 0}
    assert after_jit == {"numba": True, "malloc_tuned": 1}
