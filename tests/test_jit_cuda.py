"""The CUDA backend of fnx.jit: generated ``numba.cuda`` kernels and the CUDA orchestrator
against the CPU executable / NumPy.

The checks run on a real GPU when CuPy sees one, else under Numba's CUDA simulator: the
simulator must be switched on before numba is imported, so without a GPU the single test
``test_cuda_suite_under_simulator`` re-runs this file in a subprocess with
``NUMBA_ENABLE_CUDASIM=1`` (sizes stay small: the simulator costs ~0.1-2 ms per element).
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings

import fnx
import fnx.numpy as fnp
from fnx.core.primitive import PRIMITIVES
from fnx.jit import cuda_runtime as crt
from program_gen import programs
from test_programs import assert_same

SIM = os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")
ON_GPU = not SIM and fnx.cuda.is_available()
needs_cuda = pytest.mark.skipif(not (SIM or ON_GPU),
                                reason="runs under the CUDA simulator subprocess or on a GPU")


@pytest.mark.skipif(SIM or ON_GPU, reason="the checks run directly")
def test_cuda_suite_under_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", OPENBLAS_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        os.path.abspath(__file__)], env=env, cwd=root, capture_output=True,
                       text=True, timeout=1200)
    tail = (r.stdout + r.stderr)[-6000:]
    assert r.returncode == 0, tail
    assert " passed" in r.stdout and "failed" not in r.stdout, tail


# --- helpers ---------------------------------------------------------------------------------


def _flat(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _cuda_exe(f, *xs):
    from fnx.core.ir import make_program, to_shaped
    from fnx.jit.codegen.cuda import CudaExecutable

    program, consts = make_program(lambda *a: _flat(f(*a)),
                                   [to_shaped(fnp.asarray(x)) for x in xs])
    return CudaExecutable(program, consts), program


def run_both(f, *xs):
    """(outputs of the CUDA executable as host arrays, outputs of fnx.jit on the CPU)."""
    exe, _ = _cuda_exe(f, *xs)
    got = exe.run(*[crt.to_device(np.asarray(x)) for x in xs])
    assert all(crt.is_cuda_buffer(g) for g in got)
    want = _flat(fnx.jit(f)(*[fnp.asarray(x) for x in xs]))
    return [crt.to_host(g) for g in got], [np.asarray(w) for w in want], exe


def check(f, *xs, rtol=2e-6, atol=1e-6):
    got, want, exe = run_both(f, *xs)
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, w.dtype, g.shape, w.shape)
        if g.dtype.kind in "biu":
            np.testing.assert_array_equal(g, w)
        else:
            np.testing.assert_allclose(g, w, rtol=rtol, atol=atol)
    return exe


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(params=["thread", "warp", "block"])
def row_strategy(request, monkeypatch):
    """Row groups through all three kernels: a thread, a warp, a block per row."""
    monkeypatch.setattr(crt, "ROW_WARP_MIN", 10**9 if request.param == "thread" else 1)
    monkeypatch.setattr(crt, "ROW_BLOCK_MIN", 1 if request.param == "block" else 10**9)
    return request.param


# --- buffers ---------------------------------------------------------------------------------


def test_is_cuda_buffer_and_device_kind():
    assert not crt.is_cuda_buffer(np.zeros(3))
    assert not crt.is_cuda_buffer(np.float32(1))
    assert crt.device_kind([np.zeros(2), 3]) == "cpu"

    class CAI:
        __cuda_array_interface__ = {}

    assert crt.is_cuda_buffer(CAI())
    assert crt.device_kind([np.zeros(2), CAI()]) == "cuda"


@needs_cuda
def test_device_buffers_round_trip():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = crt.to_device(x)
    assert crt.is_cuda_buffer(d)
    np.testing.assert_array_equal(crt.to_host(d), x)


# --- elementwise -------------------------------------------------------------------------------

ELEMENTWISE = sorted(name for name, p in PRIMITIVES.items()
                     if p.fusion_kind == "elementwise" and p.scalar_expr and name != "iota")
SPECIAL_PARAMS = {"convert_element_type": dict(new_dtype=np.dtype("int32")),
                  "bitcast_convert_type": dict(new_dtype=np.dtype("int32")),
                  "integer_pow": dict(y=3)}
INT_ONLY = {"shift_left", "shift_right", "population_count", "and", "or", "xor", "not"}
NO_CUDA_LOWERING = {"nextafter", "bitcast_convert_type"}


def _inputs(name, rng, shape=(3, 5)):
    prim = PRIMITIVES[name]
    n = 3 if name == "select" else (2 if prim.scalar_expr.count("{1}") else 1)
    if name in INT_ONLY:
        xs = [rng.integers(-20, 20, shape).astype(np.int32) for _ in range(n)]
        if name.startswith("shift"):
            xs[1] = rng.integers(-2, 40, shape).astype(np.int32)
        return xs
    xs = [rng.uniform(0.1, 0.9, shape).astype(np.float32) for _ in range(n)]
    if name == "select":
        xs[0] = rng.uniform(size=shape) > 0.5
    if name == "acosh":
        xs[0] = xs[0] + 1.5
    return xs


@needs_cuda
@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if n not in NO_CUDA_LOWERING])
def test_every_elementwise_primitive_cuda_matches_cpu(name, rng):
    prim = PRIMITIVES[name]
    params = SPECIAL_PARAMS.get(name, {})
    check(lambda *a: prim.bind(*a, **params), *_inputs(name, rng), rtol=2e-6, atol=2e-6)


@needs_cuda
def test_no_cuda_lowering_is_a_compile_error(rng):
    from fnx.core.errors import CompileError

    x = rng.uniform(size=4).astype(np.float32)
    with pytest.raises(CompileError, match=r"for CUDA .*nextafter"):
        _cuda_exe(lambda a: fnp.nextafter(a * 2.0, a), x)


@needs_cuda
def test_fused_chain_with_broadcasting(rng):
    x = rng.standard_normal((4, 1, 6)).astype(np.float32)
    y = rng.standard_normal((5, 1)).astype(np.float32)

    def f(x, y):
        return fnp.tanh(x * 0.5 + y) * (1 / (1 + fnp.exp(-x))) + 0.1 * x * x - 0.25 * y

    exe = check(f, x, y, rtol=1e-5, atol=1e-6)
    assert exe.kernels == fnx.jit(f).lower(fnp.asarray(x), fnp.asarray(y)).kernels
    assert "cuda.grid(1)" in exe.source and "math.tanh" in exe.source


@needs_cuda
def test_p1_benchmark_expression_1d(rng):
    x = rng.standard_normal(1000).astype(np.float32)
    y = rng.standard_normal(1000).astype(np.float32)
    got, want, _ = run_both(lambda x, y: fnp.tanh(x * 0.5 + y) * (1 / (1 + fnp.exp(-x)))
                            + 0.1 * x * x - 0.25 * y, x, y)
    ref = np.tanh(x * 0.5 + y) / (1 + np.exp(-x)) + 0.1 * x * x - 0.25 * y
    np.testing.assert_allclose(got[0], ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)


@needs_cuda
def test_scalars_iota_and_mixed_dtypes(rng):
    x = rng.integers(-9, 9, (3, 4)).astype(np.int32)
    w = rng.standard_normal(4)

    def f(x, w):
        i = fnp.arange(4)
        return (x // 3 + i) % 5, fnp.where(x > 0, w, -w) * 2.0, (x << 2) ^ x

    check(f, x, w)


@needs_cuda
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the simulator wraps in NumPy scalars
@pytest.mark.parametrize("dtype", [np.int8, np.int64, np.uint64])
def test_integer_division_edge_cases(dtype):
    # the device helpers are _rt's idiv/udiv/irem: INT_MIN // -1 wraps, x // 0 == x % 0 == 0
    info = np.iinfo(dtype)
    vals = sorted({int(info.min), 0, 1, 7, int(info.max)} | ({-1} if info.min < 0 else set()))
    a = np.array([x for x in vals for _ in vals], dtype)
    b = np.array([y for _ in vals for y in vals], dtype)
    got, want, _ = run_both(lambda x, y: (x // y, x % y, fnp.fmod(x, y)), a, b)
    with np.errstate(all="ignore"):
        refs = [np.floor_divide(a, b), np.remainder(a, b), np.fmod(a, b)]
    for g, w, r in zip(got, want, refs, strict=True):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(g, r)


@needs_cuda
def test_zero_dim_and_empty(rng):
    check(lambda a, b: a * b + 1.0, np.float32(3.0), np.float32(2.0))
    check(lambda a: fnp.exp(a), np.zeros((0, 3), np.float32))
    # a 0-d result of an eager (non-kernel) step stays 0-d (np.ascontiguousarray made it 1-d)
    check(lambda a: (a[0, 0], fnx.lax.cond(True, lambda b: b[1, 1], lambda b: b[0, 1], a)),
          rng.standard_normal((2, 3)).astype(np.float32))


@needs_cuda
def test_sign_of_specials():
    # sign(+-inf) is +-1 (x - x + 1 gave NaN), sign(-0.0) is +0.0, NaN stays NaN; integer sign
    for x in (np.array([np.inf, -np.inf, np.nan, -0.0, 0.0, 2.5, -3.0], np.float32),
              np.array([np.inf, -np.inf, -0.0, 1e-300], np.float64),
              np.array([3, 0, -2], np.int64), np.array([3, 0, -2], np.int32)):
        (got,), _, _ = run_both(fnp.sign, x)
        want = np.sign(x) + x.dtype.type(0)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want))


@needs_cuda
@settings(max_examples=25, deadline=None, derandomize=True)
@given(programs(max_ops=8, big_dims=False, scalar_args=False))
def test_random_programs_match_eager(program):
    """Random array programs (tests/program_gen.py, small sizes for the simulator) through
    the CUDA executable against eager fnx."""
    from fnx.core.ir import make_program, to_shaped
    from fnx.jit.codegen.cuda import CudaExecutable

    f, make_args = program.load()
    args = make_args(np.random.default_rng(0))
    flat, consts = make_program(lambda *a: fnx.tree.leaves(f(*a)),
                                [to_shaped(fnp.asarray(x)) for x in args])
    got = CudaExecutable(flat, consts).run(*[crt.to_device(np.asarray(x)) for x in args])
    assert_same([crt.to_host(g) for g in got], f(*args), "CUDA vs eager", program.precision)


# --- row reductions ----------------------------------------------------------------------------


@needs_cuda
def test_row_reductions(rng, row_strategy):
    x = rng.standard_normal((5, 40)).astype(np.float32)
    x[1, 7] = x[1, 30] = 9.0   # ties: the first index wins
    x[2, 11] = np.nan          # NaN wins argmax/argmin and propagates through max/min

    def f(x):
        return (fnp.sum(x, axis=1), fnp.max(x, axis=1), fnp.min(x, axis=-1),
                fnp.argmax(x, axis=1), fnp.argmin(x, axis=1), fnp.prod(x * 0.5 + 1.0, axis=1))

    got, want, exe = run_both(f, x)
    assert exe.cuda_kernels[0].launched == {row_strategy}
    assert "cuda.shared.array" in exe.cuda_kernels[0].sources["block"]
    assert "cuda.shfl_xor_sync" in exe.cuda_kernels[0].sources["warp"]
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(got[3], np.argmax(x, axis=1))
    np.testing.assert_array_equal(got[4], np.argmin(x, axis=1))
    np.testing.assert_allclose(got[0][[0, 1, 3, 4]], x[[0, 1, 3, 4]].sum(1), rtol=1e-5)


@needs_cuda
def test_row_reductions_int_and_bool(rng, row_strategy):
    x = rng.integers(-50, 50, (4, 33)).astype(np.int32)
    check(lambda x: (fnp.sum(x, axis=1), fnp.max(x, axis=1), fnp.argmin(x, axis=1),
                     fnp.any(x > 45, axis=1), fnp.all(x > -49, axis=1)), x)


@needs_cuda
def test_logsumexp_and_softmax(rng, row_strategy):
    x = (rng.standard_normal((6, 70)) * 4).astype(np.float32)

    def f(x):
        m = fnp.max(x, axis=1, keepdims=True)
        e = fnp.exp(x - m)
        s = fnp.sum(e, axis=1, keepdims=True)
        return fnp.log(s[:, 0]) + m[:, 0], e / s

    got, _, exe = run_both(f, x)
    assert exe.kernels.count("kernel") == 1, exe.kernels
    x64 = x.astype(np.float64)
    lse = np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1)) + x64.max(1)
    np.testing.assert_allclose(got[0], lse, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[1], np.exp(x64 - lse[:, None]), rtol=1e-5, atol=1e-7)


def _softmax_xent(logits, labels):
    m = fnp.max(logits, axis=1, keepdims=True)
    lse = fnp.log(fnp.sum(fnp.exp(logits - m), axis=1)) + m[:, 0]
    onehot = labels[:, None] == fnp.arange(logits.shape[1])
    picked = fnp.sum(fnp.where(onehot, logits, 0.0), axis=1)
    return fnp.mean(lse - picked)


@needs_cuda
def test_softmax_cross_entropy(rng, row_strategy):
    logits = (rng.standard_normal((8, 100)) * 3).astype(np.float32)
    labels = rng.integers(0, 100, 8).astype(np.int32)
    got, want, _ = run_both(_softmax_xent, logits, labels)
    l64 = logits.astype(np.float64)
    mx = l64.max(1, keepdims=True)
    lse = np.log(np.exp(l64 - mx).sum(1)) + mx[:, 0]
    ref = np.mean(lse - l64[np.arange(8), labels])
    np.testing.assert_allclose(got[0], ref, rtol=1e-5)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5)


@needs_cuda
def test_softmax_cross_entropy_grad(rng, row_strategy):
    logits = (rng.standard_normal((4, 80)) * 3).astype(np.float32)
    labels = rng.integers(0, 80, 4).astype(np.int32)
    got, want, _ = run_both(fnx.grad(_softmax_xent), logits, labels)
    l64 = logits.astype(np.float64)
    p = np.exp(l64 - l64.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(4), labels] -= 1
    np.testing.assert_allclose(got[0], p / 4, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-7)


@needs_cuda
def test_log_softmax_and_its_grad(rng, row_strategy):
    x = (rng.standard_normal((5, 70)) * 3).astype(np.float32)
    w = rng.standard_normal((5, 70)).astype(np.float32)

    def f(x, w):
        ls = x - fnp.log(fnp.sum(fnp.exp(x - fnp.max(x, axis=1, keepdims=True)), axis=1,
                                 keepdims=True)) - fnp.max(x, axis=1, keepdims=True)
        return ls, fnx.grad(lambda z: fnp.sum(w * fnx.nn.functional.log_softmax(z, dim=1)))(x)

    got, _, exe = run_both(f, x, w)
    assert row_strategy in set().union(*(k.launched for k in exe.cuda_kernels))
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    ls = x64 - np.log(np.exp(x64 - x64.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - x64.max(1, keepdims=True)
    np.testing.assert_allclose(got[0], ls, rtol=1e-5, atol=1e-5)
    p = np.exp(ls)
    np.testing.assert_allclose(got[1], w64 - p * w64.sum(1, keepdims=True), rtol=1e-4,
                               atol=1e-5)


@needs_cuda
def test_layer_norm_forward_and_backward(rng, row_strategy):
    x = rng.standard_normal((6, 40)).astype(np.float32)
    g = rng.standard_normal((6, 40)).astype(np.float32)

    def ln(x):
        mu = fnp.mean(x, axis=1, keepdims=True)
        xc = x - mu
        return xc / fnp.sqrt(fnp.mean(xc * xc, axis=1, keepdims=True) + 1e-5)

    got, want, _ = run_both(lambda x, g: (ln(x), fnx.grad(lambda z: fnp.sum(ln(z) * g))(x)),
                            x, g)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)
    xc = x64 - x64.mean(1, keepdims=True)
    sd = np.sqrt((xc * xc).mean(1, keepdims=True) + 1e-5)
    y = xc / sd
    dx = (g64 - g64.mean(1, keepdims=True) - y * (g64 * y).mean(1, keepdims=True)) / sd
    np.testing.assert_allclose(got[0], y, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got[1], dx, rtol=1e-3, atol=1e-4)
    for gv, wv in zip(got, want, strict=True):
        np.testing.assert_allclose(gv, wv, rtol=1e-4, atol=1e-5)


# --- acc (column) reductions ---------------------------------------------------------------------


@needs_cuda
def test_column_and_middle_axis_reductions(rng):
    x = rng.standard_normal((20, 7)).astype(np.float32)
    z = rng.standard_normal((3, 10, 4)).astype(np.float32)
    exe = check(lambda x: (fnp.sum(x * 2.0, axis=0), fnp.max(x, axis=0), x * 2.0), x,
                rtol=1e-5)
    assert "acc[" in exe.kernels
    check(lambda z: (fnp.sum(z, axis=1), fnp.mean(z, axis=(0, 2)), fnp.min(z, axis=(0, 2))),
          z, rtol=1e-5, atol=1e-6)


# --- split reductions (many threads per output, partials folded in order) -----------------------


@pytest.fixture
def split(monkeypatch):
    """Split reductions at simulator sizes (each thread folds at least 8 elements)."""
    monkeypatch.setattr(crt, "SPLIT_MIN_CHUNK", 8)


def _launched(exe):
    return set().union(*(k.launched for k in exe.cuda_kernels))


@needs_cuda
def test_split_full_reductions(rng, split):
    x = rng.standard_normal(400).astype(np.float32)
    x[[37, 300]] = 5.0  # a tie: the first index wins
    i = rng.integers(-100, 100, 400).astype(np.int32)

    def f(x, i):
        return (fnp.sum(x), fnp.max(x), fnp.argmax(x), fnp.argmin(x), fnp.mean(x * x),
                fnp.min(i), fnp.sum(i))

    got, want, exe = run_both(f, x, i)
    assert "split" in _launched(exe)
    x64 = x.astype(np.float64)
    refs = [x64.sum(), x64.max(), 37, np.argmin(x), (x64 * x64).mean(), i.min(), i.sum()]
    for g, w, r in zip(got, want, refs, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    # the fold runs in a fixed order: the same bits at every call
    again = [crt.to_host(b) for b in exe.run(crt.to_device(x), crt.to_device(i))]
    for g, a in zip(got, again, strict=True):
        np.testing.assert_array_equal(g, a)


@needs_cuda
def test_split_argmax_nan(split):
    x = np.arange(200, dtype=np.float32)
    x[[150, 60]] = np.nan  # the first NaN wins argmax and argmin
    got, _, exe = run_both(lambda x: (fnp.argmax(x), fnp.argmin(x), fnp.max(x)), x)
    assert "split" in _launched(exe)
    assert got[0] == 60 and got[1] == 60 and np.isnan(got[2])


@needs_cuda
def test_split_column_reductions(rng, split):
    x = rng.standard_normal((300, 3)).astype(np.float32)

    def f(x):
        return fnp.sum(x * 2.0, axis=0), fnp.max(x, axis=0), x * 3.0

    got, want, exe = run_both(f, x)
    assert "split" in _launched(exe) and "acc[" in exe.kernels
    refs = [(x.astype(np.float64) * 2).sum(0), x.max(0), x * 3]
    for g, w, r in zip(got, want, refs, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@needs_cuda
def test_launch_path_failure_falls_back_to_the_dispatcher(rng, monkeypatch):
    """A kernel the launch path cannot compile or load warns once and runs through Numba's
    dispatcher, with the same results."""
    from fnx.jit.codegen import cuda as cg

    class Broken:
        def compute_capability(self):
            return (9, 0)

        def function(self, ptx_kernel):
            raise RuntimeError("module load refused")

    monkeypatch.setattr(crt, "raw_driver", Broken)
    monkeypatch.setattr(cg.CudaKernel, "ptx", lambda self, strategy, cc: None)
    before = cg.STATS["launch_path_fallbacks"]
    x = rng.standard_normal((4, 5)).astype(np.float32)
    with pytest.warns(UserWarning, match=r"launch path could not .*module load refused"):
        exe = check(lambda a: fnp.exp(a) * 2.0, x, rtol=1e-6)
    assert cg.STATS["launch_path_fallbacks"] == before + 1
    exe.run(crt.to_device(x))  # no second attempt, no second warning
    assert cg.STATS["launch_path_fallbacks"] == before + 1


# --- orchestrator: BLAS, eager primitives, constants -------------------------------------------


@needs_cuda
def test_mlp_forward_backward(rng):
    x = rng.standard_normal((16, 8)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    w1 = (rng.standard_normal((8, 12)) * 0.3).astype(np.float32)
    b1 = np.zeros(12, np.float32)
    w2 = (rng.standard_normal((12, 3)) * 0.3).astype(np.float32)

    def loss(w1, b1, w2, x, y):
        h = fnp.tanh(x @ w1 + b1)
        return fnp.mean((h @ w2 - y) ** 2)

    def step(w1, b1, w2, x, y):
        lval, (g1, gb, g2) = fnx.value_and_grad(loss, argnums=(0, 1, 2))(w1, b1, w2, x, y)
        return lval, w1 - 0.1 * g1, b1 - 0.1 * gb, w2 - 0.1 * g2

    got, want, exe = run_both(step, w1, b1, w2, x, y)
    assert "blas" in exe.kernels and "_B.matmul" in exe.orchestrator
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)


@needs_cuda
def test_eager_primitives_and_closed_over_constants(rng):
    x = rng.standard_normal((3, 6)).astype(np.float32)
    c = rng.standard_normal(6).astype(np.float32)

    def f(x):
        s = fnp.sort(x * 2.0, axis=1)
        return fnp.concatenate([s, x + fnp.asarray(c)], axis=0), fnp.cumsum(x, axis=1)

    exe, _ = _cuda_exe(f, x)
    got = [crt.to_host(g) for g in exe.run(crt.to_device(x))]
    np.testing.assert_allclose(got[0], np.concatenate([np.sort(x * 2, axis=1), x + c]),
                               rtol=1e-6)
    np.testing.assert_allclose(got[1], np.cumsum(x, axis=1), rtol=1e-5, atol=1e-6)
    assert "_B.eager" in exe.orchestrator


@needs_cuda
def test_kernel_calling_convention_matches_cpu(rng):
    """compile_nest(nest) launches on GPU buffers with the CPU dispatcher's arguments."""
    from fnx.core.ir import make_program
    from fnx.jit import fusion, passes
    from fnx.jit.codegen import loops
    from fnx.jit.codegen.cuda import compile_nest

    x = rng.standard_normal((4, 9)).astype(np.float32)
    program, _ = make_program(lambda a: [fnp.sum(fnp.exp(a), axis=1)],
                              [fnx.core.ir.to_shaped(fnp.asarray(x))])
    program = passes.optimize(program)
    plan = fusion.plan(program)
    (g,) = plan.groups
    nest, in_vars, sizes = loops.build(g, plan, [program.outs[0]])
    k = compile_nest(nest)
    out = crt.backend().empty((4,), np.float32)
    k(*sizes, crt.to_device(x), out)
    np.testing.assert_allclose(crt.to_host(out), np.exp(x).sum(1), rtol=1e-5)
