"""The CUDA launch path without a GPU: every generated kernel kind compiled to PTX (and a
cubin) at the raw-pointer signature, its PTX parameter list checked against the launch plan's
packed words, the disk cache, launch plans read back through a recording driver, and the
cuBLAS argument mapping against a column-major GEMM written from cuBLAS's definition.

Compiling needs libNVVM/libdevice (a CUDA toolkit; no GPU): those tests skip without them.
"""

import ctypes
import types

import numpy as np
import pytest

import fnx.numpy as fnp
from fnx.core.ir import make_program, to_shaped
from fnx.jit import cuda_compile, cuda_launch
from fnx.jit import cuda_runtime as crt

needs_nvvm = pytest.mark.skipif(not cuda_compile.available(),
                                reason="libNVVM/libdevice not loadable (no CUDA toolkit)")
CC = (9, 0)


class _HostBuffers:
    """Stands in for the GPU buffer layer while executables are built and planned (nothing
    runs): host arrays, with a CuPy-like ``.data.ptr`` on the scratch buffers of plans."""

    const = contiguous = staticmethod(np.asarray)

    @staticmethod
    def empty(shape, dtype):
        a = np.empty(shape, dtype)
        return types.SimpleNamespace(array=a, data=types.SimpleNamespace(ptr=a.ctypes.data))


@pytest.fixture
def cuda_kernels(monkeypatch):
    """``build(f, *args) -> [CudaKernel]`` of the CUDA executable of ``f`` (built, not run)."""
    from fnx.jit.codegen.cuda import CudaExecutable

    monkeypatch.setattr(crt, "backend", lambda: _HostBuffers)

    def build(f, *args):
        program, consts = make_program(lambda *a: list(f(*a)),
                                       [to_shaped(fnp.asarray(a)) for a in args])
        return CudaExecutable(program, consts).cuda_kernels

    return build


def _xent(logits, labels):
    m = fnp.max(logits, axis=1, keepdims=True)
    lse = fnp.log(fnp.sum(fnp.exp(logits - m), axis=1)) + m[:, 0]
    onehot = labels[:, None] == fnp.arange(logits.shape[1])
    return (fnp.mean(lse - fnp.sum(fnp.where(onehot, logits, 0.0), axis=1)),)


def _layer_norm(x):
    mu = fnp.mean(x, axis=1, keepdims=True)
    var = fnp.mean((x - mu) * (x - mu), axis=1, keepdims=True)
    return ((x - mu) / fnp.sqrt(var + 1e-5),)


X = np.linspace(-1, 1, 60, dtype=np.float32).reshape(6, 10)
# one program per kernel kind: elementwise (float32, float64, int, bool in and out), row
# (softmax, log-softmax, cross-entropy, argmax, layer norm), acc (column sums), full reductions
KINDS = {
    "elementwise f32 broadcast": (lambda x, y: (fnp.tanh(x * 0.5 + y) * fnp.exp(-x),),
                                  X, X[0]),
    "elementwise f64 + int + bool": (lambda x, i: (x.astype(np.float64) * 2.0, i // 3 + i % 5,
                                                   (x > 0) & (i > 2)),
                                     X, np.arange(60, dtype=np.int32).reshape(6, 10)),
    "softmax / log-softmax": (lambda x: (fnp.exp(x - fnp.max(x, axis=1, keepdims=True)),
                                         x - fnp.log(fnp.sum(fnp.exp(x), axis=1,
                                                             keepdims=True))), X),
    "cross-entropy": (_xent, X, np.arange(6, dtype=np.int32)),
    "argmax / min": (lambda x: (fnp.argmax(x, axis=1), fnp.min(x, axis=1)), X),
    "layer norm": (_layer_norm, X),
    "column sums": (lambda x: (fnp.sum(x * 2.0, axis=0), fnp.max(x, axis=0)), X),
    "full reduction": (lambda x: (fnp.sum(x), fnp.mean(x * x)), X),
    "integer_pow": (lambda x: (x ** 2, x ** 0, x ** -3), X),
}


def _variants(kernel):
    from fnx.jit.codegen.cuda import SPLIT, splittable

    out = ["thread", "warp", "block"] if kernel.nest.mode == "row" else ["thread"]
    return out + (list(SPLIT) if splittable(kernel.nest) else [])


@needs_nvvm
@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kernel_kind_compiles_to_ptx_matching_its_launch_plan(kind, cuda_kernels):
    f, *args = KINDS[kind]
    kernels = cuda_kernels(f, *args)
    assert kernels
    for k in kernels:
        for strategy in _variants(k):
            pk = k.ptx(strategy, CC)  # raises LaunchPlanError on a mismatch
            lead, outs = k.abi(strategy)  # split halves: G and the partial buffers too
            nwords = lead + k.ndim + k.nin + len(outs)
            assert len(pk.params) == nwords == len(k.signature(strategy))
            assert set(pk.params) <= {"u64", "s64", "b64"}
            assert ".target sm_90" in pk.ptx and f".entry {pk.entry}(" in pk.ptx
            if strategy == "warp":  # the warp reductions are shuffles, not shared memory
                assert "shfl.sync.bfly" in pk.ptx and ".shared" not in pk.ptx
            if strategy == "block":  # shuffles, then one shared slot per warp
                assert "shfl.sync.bfly" in pk.ptx and ".shared" in pk.ptx
            if cuda_compile.toolchain()["ptxas"]:
                assert pk.cubin[:4] == b"\x7fELF"  # a device ELF for sm_90
            # the plan packs sizes, then one pointer per input and output, in PTX order
            sizes = list(range(7, 7 + lead + k.ndim))
            drv = _RecordingDriver(nwords)
            plan = cuda_launch.LaunchPlan(drv, 99, 2, 128, sizes, k.nin + len(outs))
            ptrs = [0x7F0000000000 + 256 * i for i in range(k.nin + len(outs))]
            plan.launch(ptrs, stream=5)
            assert drv.calls == [(99, 2, 128, 0, 5, sizes + ptrs)]
            assert len(drv.calls[0][-1]) == len(pk.params)


@needs_nvvm
def test_every_elementwise_primitive_compiles_for_the_gpu(cuda_kernels):
    """The simulator runs kernels as Python, so only Numba's CUDA compiler shows what does
    not type or lower for a GPU: one kernel per elementwise primitive, as the simulator suite
    runs them (tests/test_jit_cuda.py), compiled to PTX."""
    from test_jit_cuda import ELEMENTWISE, NO_CUDA_LOWERING, SPECIAL_PARAMS, _inputs

    from fnx.core.primitive import PRIMITIVES

    rng = np.random.default_rng(0)
    failed = {}
    for name in ELEMENTWISE:
        if name in NO_CUDA_LOWERING:
            continue
        prim, params = PRIMITIVES[name], SPECIAL_PARAMS.get(name, {})
        try:
            for k in cuda_kernels(lambda *a, p=prim, kw=params: (p.bind(*a, **kw),),
                                  *_inputs(name, rng)):
                k.ptx("thread", CC)
        except Exception as err:  # noqa: BLE001 -- collect them all, report at once
            failed[name] = f"{type(err).__name__}: {str(err).splitlines()[-1][:160]}"
    assert not failed, failed


def test_check_params_rejects_a_mismatch():
    cuda_launch.check_params(("u64",) * 6, 1, 2, 1)
    with pytest.raises(cuda_launch.LaunchPlanError, match=r"6 64-bit words .*3 sizes, 2 inputs"):
        cuda_launch.check_params(("u64",) * 5, 1, 2, 1)
    with pytest.raises(cuda_launch.LaunchPlanError, match=r"not 64-bit: positions \[2\]"):
        cuda_launch.check_params(("u64", "u64", "f32", "u64", "u64", "u64"), 1, 2, 1)


def test_entry_params_reads_the_ptx_parameter_list():
    ptx = (".version 9.0\n.target sm_90\n.address_size 64\n"
           ".visible .entry _Z6kernel(\n\t.param .u64 _Z6kernel_param_0,\n"
           "\t.param .f32 _Z6kernel_param_1,\n\t.param .u64 .ptr .align 4 _Z6kernel_param_2\n)\n"
           "{\n\tret;\n}\n")
    assert cuda_compile.entry_params(ptx) == ("_Z6kernel", ("u64", "f32", "u64"))
    with pytest.raises(ValueError, match="one .entry"):
        cuda_compile.entry_params(ptx + ptx.split(".address_size 64\n")[1])


def test_raw_signature_has_one_pointer_per_buffer():
    from numba import types as nt

    sig = cuda_compile.raw_signature(2, [np.float32, np.bool_], [np.int64])
    assert sig == (nt.int64,) * 4 + (nt.CPointer(nt.float32), nt.CPointer(nt.uint8),
                                     nt.CPointer(nt.int64))
    assert cuda_compile.param_kinds(2, 2, 1) == [("size", 0), ("size", 1), ("size", 2),
                                                 ("size", 3), ("in", 0), ("in", 1), ("out", 0)]


@needs_nvvm
def test_ptx_disk_cache_is_keyed_by_source_signature_and_cc(tmp_path, monkeypatch):
    monkeypatch.setenv("FNX_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(cuda_compile, "_memo", {})
    src = ("import numba\nfrom numba import cuda\n\n"
           "def kernel(M, R, n0, a0, o0):\n"
           "    i = cuda.grid(1)\n"
           "    if i < M:\n"
           "        o0[i] = a0[i] * numba.float32(2)\n")
    ns = {}
    exec(compile(src, "<test kernel>", "exec"), ns)  # compile_ptx takes a plain function
    sig = cuda_compile.raw_signature(1, [np.float32], [np.float32])
    calls = []

    def load():
        calls.append(1)
        return ns["kernel"]

    before = dict(cuda_compile.STATS)
    k1 = cuda_compile.compile_ptx(src, sig, CC, load)
    assert calls == [1] and cuda_compile.STATS["ptx_compiled"] == before["ptx_compiled"] + 1
    assert (tmp_path / "cuda" / "ptx" / f"{k1.key}.ptx").read_text() == k1.ptx
    monkeypatch.setattr(cuda_compile, "_memo", {})  # a new process: from disk, no compile
    k2 = cuda_compile.compile_ptx(src, sig, CC, load)
    assert calls == [1] and k2 == k1
    assert cuda_compile.STATS["ptx_loaded"] == before["ptx_loaded"] + 1
    # another target or signature is another entry
    k3 = cuda_compile.compile_ptx(src, sig, (8, 0), load)
    assert k3.key != k1.key and ".target sm_80" in k3.ptx and calls == [1, 1]
    sig64 = cuda_compile.raw_signature(1, [np.float64], [np.float64])
    assert cuda_compile.cache_key(src, sig64, CC) != k1.key


class _RecordingDriver:
    """A ``cuda_launch`` driver without a GPU: records each launch with its parameter words
    read back through the ``kernelParams`` array, as cuLaunchKernel would read them."""

    def __init__(self, nwords):
        self.n, self.calls = nwords, []

    def launch(self, fn, grid, block, smem, stream, params):
        n = self.n
        argv = (ctypes.c_void_p * n).from_address(params)
        words = [ctypes.c_uint64.from_address(argv[i]).value for i in range(n)]
        self.calls.append((fn, grid, block, smem, stream, words))


def test_launch_plan_patches_only_pointers():
    drv = _RecordingDriver(5)
    plan = cuda_launch.LaunchPlan(drv, 7, 3, 256, [100, 1, 100], 2)
    plan.launch([0x1000, 0x2000], stream=0)
    plan.launch([0x3000, 0x4000], stream=11)
    assert drv.calls == [(7, 3, 256, 0, 0, [100, 1, 100, 0x1000, 0x2000]),
                         (7, 3, 256, 0, 11, [100, 1, 100, 0x3000, 0x4000])]
    assert plan.packed() == [100, 1, 100, 0x3000, 0x4000]


@needs_nvvm
def test_kernel_plan_is_built_once_per_sizes(cuda_kernels, monkeypatch):
    """CudaKernel.plan with a driver that loads nothing: one compile and one plan per sizes;
    the same choice of kernel as the dispatcher path (thread, warp, block, split)."""
    monkeypatch.setattr(crt, "_max_blocks", lambda: 132 * 32)  # an H100's 132 SMs
    (k,) = cuda_kernels(lambda x: (fnp.sum(fnp.exp(x), axis=1),), X)
    loaded = []
    drv = types.SimpleNamespace(compute_capability=lambda: CC,
                                function=lambda pk: loaded.append(pk) or len(loaded))
    p1 = k.plan([6, 10], drv)
    assert k.plan([6, 10], drv) is p1 and len(loaded) == 1
    assert p1.sizes == (6, 10, 6, 10) and p1.block == crt.BLOCK
    assert k.launched == {"thread"}  # 10 < ROW_WARP_MIN reduced elements
    p2 = k.plan([4096, 1000], drv)  # a warp per row: 8 rows per block of 256
    assert (p2.grid, p2.block) == (512, crt.BLOCK) and k.launched == {"thread", "warp"}
    p3 = k.plan([600, 5000], drv)  # a block per row
    assert p3.grid == 600 and k.launched == {"thread", "warp", "block"} and len(loaded) == 3
    # two long rows would use two blocks of a 132-SM GPU: split, 78 partials per row
    p4 = k.plan([2, 5000], drv)
    assert isinstance(p4, cuda_launch.ChainedPlan) and len(loaded) == 5
    assert [p.sizes for p in p4.plans] == [(2, 5000, 78, 2, 5000)] * 2
    assert [p.grid for p in p4.plans] == [1, 1] and len(p4.scratch) == 1
    assert p4.scratch[0].array.shape == (2 * 78,) and p4.scratch[0].array.dtype == np.float32
    assert k.plan([0, 10], drv) is None  # no rows: nothing to launch


def test_chained_plan_appends_its_scratch_pointers():
    drv = _RecordingDriver(4)
    scratch = [types.SimpleNamespace(data=types.SimpleNamespace(ptr=0xBEEF))]
    plans = [cuda_launch.LaunchPlan(drv, f, 1, 32, [5], 3) for f in (1, 2)]
    cuda_launch.ChainedPlan(plans, scratch).launch([0x10, 0x20], stream=3)
    assert drv.calls == [(1, 1, 32, 0, 3, [5, 0x10, 0x20, 0xBEEF]),
                         (2, 1, 32, 0, 3, [5, 0x10, 0x20, 0xBEEF])]


# --- cuBLAS argument mapping ---------------------------------------------------------------------


class _HostCublas:
    """cuBLAS's column-major GEMM from its definition, on host memory addressed by pointers:
    C(m x n, ldc) = op_a(A) @ op_b(B), op(X) = X or X^T, X stored column-major with ld."""

    def __init__(self, dtype):
        self.dt = np.dtype(dtype)

    def _mat(self, ptr, rows, cols, ld):
        n = ld * (cols - 1) + rows
        buf = np.ctypeslib.as_array((ctypes.c_byte * (n * self.dt.itemsize)).from_address(ptr))
        flat = buf.view(self.dt)
        return np.lib.stride_tricks.as_strided(
            flat, (rows, cols), (self.dt.itemsize, ld * self.dt.itemsize), writeable=True)

    def sgemm(self, handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc):
        one = np.ctypeslib.as_array((ctypes.c_byte * self.dt.itemsize).from_address(alpha))
        zero = np.ctypeslib.as_array((ctypes.c_byte * self.dt.itemsize).from_address(beta))
        assert one.view(self.dt)[0] == 1 and zero.view(self.dt)[0] == 0
        a = self._mat(A, *((k, m) if transa else (m, k)), lda)
        b = self._mat(B, *((n, k) if transb else (k, n)), ldb)
        c = self._mat(C, m, n, ldc)
        c[...] = (a.T if transa else a) @ (b.T if transb else b)

    dgemm = sgemm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_arguments_give_the_row_major_product(dtype, ta, tb, rng):
    m, k, n = 5, 7, 3
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    args, shape = cuda_launch.gemm_args(a.shape, b.shape, ta, tb)
    c = np.full(shape, np.nan, dtype)
    cuda_launch.gemm(_HostCublas(dtype), 0, dtype, a.ctypes.data, b.ctypes.data,
                     c.ctypes.data, args)
    want = (a.T if ta else a) @ (b.T if tb else b)
    np.testing.assert_allclose(c, want, rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_gemm_arguments_reject_mismatched_sizes():
    with pytest.raises(ValueError, match=r"gemm: contracting sizes differ: \(2, 3\)"):
        cuda_launch.gemm_args((2, 3), (4, 5), False, False)
