"""The README's code blocks and the examples run as written."""

import os
import re
import subprocess
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_blocks(path):
    with open(path) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_readme_python_blocks_run(capsys):
    blocks = _python_blocks(os.path.join(ROOT, "README.md"))
    assert len(blocks) >= 3
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})


def test_readme_taste_computes_the_gradient_numpy_gets():
    import fnx
    import fnx.numpy as fnp

    def loss(w, x, y):
        return fnp.mean((fnp.tanh(x @ w) - y) ** 2)

    rng = np.random.default_rng(0)
    w, x, y = (rng.normal(size=s).astype(np.float32) for s in ((3, 1), (8, 3), (8, 1)))
    g = fnx.grad(loss)(fnp.asarray(w), fnp.asarray(x), fnp.asarray(y))
    t = np.tanh(x @ w)
    expected = x.T @ (2 * (t - y) * (1 - t * t) / t.size)
    np.testing.assert_allclose(g.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_quickstart_example_fits_the_line():
    env = dict(os.environ, PYTHONPATH=ROOT)
    out = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "quickstart.py")],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr
    w = float(re.search(r"fitted w=([-+0-9.]+)", out.stdout).group(1))
    b = float(re.search(r"b=([-+0-9.]+)", out.stdout).group(1))
    assert abs(w - 3.0) < 0.05 and abs(b + 0.5) < 0.05
    assert "reduce_sum" in out.stdout  # the printed program
