"""Loop nest -> ``numba.cuda`` kernels (the CUDA backend), and the CUDA executable.

The same ``loops.LoopNest`` the CPU backend consumes becomes one of these kernels:

* ``thread``: one thread per outer index (a grid-stride loop over the kept axes); reduced axes,
  if any, are walked serially by that thread in the nest's passes. Map groups (no reduced axes)
  are plain grid-stride elementwise loops; acc groups (column sums) read coalesced because
  neighbouring threads own neighbouring outputs; short rows (fewer than
  ``cuda_runtime.ROW_WARP_MIN`` reduced elements) use it too.
* ``warp``: row groups with rows up to ``ROW_BLOCK_MIN - 1`` elements (softmax, log-softmax,
  cross-entropy over up to ~1000 classes, layer norm): one warp per row, lanes stride over the
  row, and each reduction of each pass is a butterfly of ``shfl_xor_sync`` (no shared memory,
  no barrier), after which every lane holds the row's value for the next pass.
* ``block``: longer rows: one block per row (grid-stride over rows), threads stride over the
  reduced elements, and each reduction of each pass is a warp butterfly followed by a fold of
  the warps' values through shared memory (argmax/argmin carry the index beside the value);
  the reduced value is then visible to every thread for the next pass.
* ``split``: few one-pass reductions over many elements (full sums, column sums of a tall
  matrix): two kernels, G partials per output, then an in-order fold (``_render_split``).

Every combine runs in a fixed order (butterfly, warp order, partial order), so results do not
change between runs.

Buffers are passed flat (1-D views of C-contiguous arrays); broadcasting is index arithmetic
from the sizes ``n0..``. Statements and the pass structure of a row come from
``loops.Emitter`` (shared with the CPU backend); each scalar op is spelled by the ``cuda``
rule of the one scalar table (``fnx/jit/scalar.py``), reducer combines through the same table.
Transcendentals use ``math.*`` (CUDA libdevice), constants are typed (``np.float32(c)``), and
the small device helpers those rules call (NaN-propagating max, C-style integer division,
digamma, ...) are emitted into the kernel module that uses them; those the CPU backend also
has are the source text of its ``fnx.jit._rt`` functions.

Kernel modules are written to ``<fnx cache dir>/cuda/fnx_cuda_<sha256>.py`` and imported (never
exec'd), so Numba's ``cache=True`` can keep the PTX between processes on a real GPU.

Entry points: ``compile_nest(nest) -> CudaKernel`` (callable as ``k(n0.., a0.., o0..)``, the
CPU dispatcher's convention, on GPU buffers) and ``CudaExecutable(program, consts)``
(``executable.Executable`` with GPU hooks: same attributes, ``run(*gpu_buffers)``).
"""

import functools
import hashlib
import inspect
import os
import re
import textwrap
import threading
import warnings

import numpy as np

from ...core.array import Array
from .. import cuda_runtime as crt
from .. import scalar
from ..executable import Executable, matmul_form
from . import loops
from .loops import indent as ind

CODEGEN_VERSION = "cuda-3"

_lock = threading.Lock()
_modules = {}  # source hash -> module
STATS = {"kernels_compiled": 0, "kernels_reused": 0, "launch_path_fallbacks": 0}


class CudaLoweringError(NotImplementedError):
    """A statement of a fused group has no CUDA lowering."""


# --- scalar source --------------------------------------------------------------------------


def _tyname(dt):
    dt = np.dtype(dt)
    return "boolean" if dt.kind == "b" else dt.name


def _np(dt):
    return f"np.{np.dtype(dt).name}"


# device helpers written only for CUDA; ``_SHARED`` ones are the CPU backend's own functions
_HELPERS = {
    "_popcount": """
def _popcount(x):
    y = np.int64(x)
    if y < 0:
        y = -y
    v = np.uint64(y)
    c = 0
    while v:
        v &= v - np.uint64(1)
        c += 1
    return c
""",
    "_fsign": """
def _fsign(x):
    if x > 0:
        return 1.0    # the caller casts to x's dtype (x - x + 1 was NaN for inf)
    if x < 0:
        return -1.0
    return x - x  # +0.0 for -0.0 (as NumPy), NaN for NaN
""",
    "_ftrunc": """
def _ftrunc(x):
    if not (abs(x) < 4503599627370496.0):  # NaN, inf, or already integral
        return x
    return math.copysign(float(np.int64(x)), x)
""",
    "_ffloor": """
def _ffloor(x):
    t = _ftrunc(x)
    return t - 1.0 if t > x else t
""",
    "_fceil": """
def _fceil(x):
    t = _ftrunc(x)
    return t + 1.0 if t < x else t
""",
    "_rint": """
def _rint(x):
    r = _ffloor(x + 0.5)
    if r - x == 0.5 and _ftrunc(r * 0.5) * 2.0 != r:
        r -= 1.0
    return r
""",
}

# device helpers whose source is the plain-Python body of the CPU runtime's function (one source
# of truth: the njit functions of ``fnx.jit._rt``, which re-exports ``_scalar_special``'s)
_SHARED = {"_fmax_nan": "fmax_nan", "_fmin_nan": "fmin_nan", "_idiv": "idiv", "_udiv": "udiv",
           "_irem": "irem", "_ipow": "ipow", "_shl": "shl", "_shr": "shr",
           "_digamma": "digamma", "_erf_inv": "erf_inv"}


@functools.cache
def _helper_src(h):
    """Source of device helper ``h`` (its ``def``, after a newline): from ``_HELPERS``, or the
    Python source of the shared ``_rt`` function, decorators dropped and renamed ``h``."""
    if h not in _SHARED:
        return _HELPERS[h]
    from .. import _rt

    fn = getattr(_rt, _SHARED[h])
    lines = textwrap.dedent(inspect.getsource(getattr(fn, "py_func", fn))).splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("def "))
    lines[start] = re.sub(r"^def \w+", f"def {h}", lines[start])
    return "\n" + "\n".join(lines[start:]) + "\n"


_HELPER_DEPS = {"_ffloor": ("_ftrunc",), "_fceil": ("_ftrunc",), "_rint": ("_ffloor", "_ftrunc")}
_CALLS = re.compile(r"\b(_\w+)\(")


def op_src(op, a, dts, out, statics, use):
    """CUDA source of vocabulary op ``op`` on operand sources ``a``: the ``cuda`` rule of the
    scalar table (``fnx/jit/scalar.py``); ``use(h)`` records each device helper it calls.
    Raises CudaLoweringError for ops with no CUDA lowering."""
    dts = [np.dtype(d) for d in dts]
    src = scalar.OPS[op].cuda(a, dts, np.dtype(out), statics)
    if src is None:
        raise CudaLoweringError(f"no CUDA lowering for '{op}' on {[d.name for d in dts]}")
    for h in _CALLS.findall(src):
        if h in _HELPERS or h in _SHARED:
            use(h)
    return src


class _Cuda(loops.Emitter):
    """CUDA spellings; ``use(h)`` records the device helpers the kernel calls."""

    inp, out = "a{}", "o{}"
    nan, inf = "math.nan", "math.inf"

    def __init__(self, nest=None):
        super().__init__(nest)
        self.helpers = set()

    def use(self, h):
        self.helpers.add(h)
        for dep in _HELPER_DEPS.get(h, ()):
            self.use(dep)

    def op(self, s):
        return op_src(s.op, s.args, s.in_dtypes, s.dtype, s.statics, self.use)

    def stmt(self, s):
        lines = super().stmt(s)
        if s.kind == "load" and np.dtype(self.nest.inputs[s.args[0]][0]).kind == "b":
            # the raw-pointer compilation reads bool buffers through uint8 pointers
            # (cuda_compile.buffer_dtype); ``!= 0`` gives a bool from either element type
            lines[-1] += " != 0"
        return lines


def _decompose(var, axes):
    """Lines that split flat index ``var`` (C order over ``axes``) into ``i<axis>``."""
    axes = list(axes)
    if not axes:
        return []
    if len(axes) == 1:
        return [f"i{axes[0]} = {var}"]
    lines = [f"_q = {var}"]
    for a in reversed(axes[1:]):
        lines += [f"i{a} = _q % n{a}", f"_q = _q // n{a}"]
    lines.append(f"i{axes[0]} = _q")
    return lines


# --- rendering ------------------------------------------------------------------------------


def render(nest, strategy="thread", block=None):
    """Python source of a module defining ``kernel(M, R, n0.., a0.., o0..)`` for ``nest``.

    ``M``/``R``: the product of the kept / reduced sizes. ``strategy``: 'thread', or 'warp' /
    'block' (row groups only). ``block``: threads per block (the shared-array size of
    'block'; a multiple of 32 for 'warp')."""
    block = block or crt.block_size(strategy)
    if strategy in SPLIT:
        return _render_split(nest, strategy)
    if strategy != "thread" and nest.mode != "row":
        raise ValueError(f"the {strategy} strategy is for row groups")
    nin, nout = len(nest.inputs), len(nest.outputs)
    em = _Cuda(nest)
    args = (["M", "R"] + [f"n{i}" for i in range(nest.ndim)] + [f"a{k}" for k in range(nin)]
            + [f"o{j}" for j in range(nout)])
    all_axes = list(range(nest.ndim))
    kept = [a for a in all_axes if not nest.reduced[a]]
    red = [a for a in all_axes if nest.reduced[a]]
    reduces = [s for s in nest.stmts if s.kind == "reduce"]
    if nest.mode != "row":
        levels = {s.name: 0 for s in nest.stmts}
    else:
        levels = {s.name: s.level for s in nest.stmts}
    npasses = nest.npasses if nest.mode == "row" else 1
    stmt_src, store = em.stmt, em.store
    outer = [s for s in nest.stmts if s.outer and s.kind != "reduce"]
    outer_outs = [(j, o[2]) for j, o in enumerate(nest.outputs) if o[3] == "outer"]

    body = []
    if strategy == "thread":
        body += ["_q0 = cuda.grid(1)", "_step = cuda.gridsize(1)", "while _q0 < M:"]
        d0 = 1
        body += ind(_decompose("_q0", kept), d0)
        body += em.passes(d0, levels, npasses)
        body += ind(["_q0 += _step"], d0)
    else:
        # a group of threads per row -- a block ('block') or a warp ('warp') -- strides over
        # the reduced elements; each pass's reductions are then combined across the group, so
        # every thread of the group holds the row's values for the next pass
        if strategy == "block":
            width, row_step = block, "cuda.gridDim.x"
            body += ["_tid = cuda.threadIdx.x", "_row = cuda.blockIdx.x"]
            for s in reduces:  # one slot per warp
                vt = _tyname(s.in_dtypes[0] if s.op in ("argmax", "argmin") else s.dtype)
                nw = block // crt.WARP
                body.append(f"_sh_{s.name} = cuda.shared.array({nw}, numba.{vt})")
                if s.op in ("argmax", "argmin"):
                    body.append(f"_si_{s.name} = cuda.shared.array({nw}, numba.int64)")
        else:
            warps = block // crt.WARP
            width, row_step = crt.WARP, f"cuda.gridDim.x * {warps}"
            body += [f"_tid = cuda.threadIdx.x % {crt.WARP}",
                     f"_row = cuda.blockIdx.x * {warps} + cuda.threadIdx.x // {crt.WARP}"]
        body.append("while _row < M:")
        d0 = 1
        body += ind(_decompose("_row", kept), d0)
        body += ind([ln for s in outer if levels[s.name] == 0 for ln in stmt_src(s)], d0)
        for p in range(npasses):
            in_pass, stores, needed, _ = em.pass_parts(p, levels)
            for s in in_pass:  # argmax/argmin: the position in <name>i (a row offset)
                body += ind(em.reduce_init(s, "0", s.name + "i"), d0)
            body += ind(["_r = _tid", "while _r < R:"], d0)
            d = d0 + 1
            inner = list(_decompose("_r", red))
            inner += [ln for s in nest.stmts if s.name in needed for ln in stmt_src(s)]
            for s in in_pass:
                inner += em.reduce_update(s, s.args[0], "_r", s.name + "i")
            inner += [store(j, n) for j, n in stores]
            inner.append(f"_r += {width}")
            body += ind(inner, d)
            if in_pass:
                across = _block_combine if strategy == "block" else _warp_combine
                body += ind(across(em, in_pass, block), d0)
            body += ind([ln for s in outer if levels[s.name] == p + 1 for ln in stmt_src(s)],
                        d0)
        if outer_outs:
            body += ind(["if _tid == 0:"] + ind([store(j, n) for j, n in outer_outs], 1), d0)
        body += ind([f"_row += {row_step}"], d0)

    lines = [f"@cuda.jit(cache={not crt.simulator()})",
             f"def kernel({', '.join(args)}):"]
    lines += ["    " + ln for ln in body]
    helper_src = "".join("\n@cuda.jit(device=True)" + _helper_src(h) + "\n"
                         for h in sorted(em.helpers, key=_helper_rank))
    return helper_src + "\n" + "\n".join(lines) + "\n"


SPLIT = ("split_partial", "split_finish")


def splittable(nest):
    """Whether a nest's reductions can be split over many threads: one pass (each element is
    read once), at least one reduction, and an acc group or a row group."""
    if nest.mode not in ("row", "acc") or (nest.mode == "row" and nest.npasses != 1):
        return False
    return any(s.kind == "reduce" for s in nest.stmts)


def split_buffers(nest):
    """``[(reduce stmt, 'v' | 'i', dtype)]``: the partial buffers ``p0..`` of a split
    reduction, one per reduction (argmax/argmin: its value and its position)."""
    out = []
    for s in nest.stmts:
        if s.kind != "reduce":
            continue
        if s.op in ("argmax", "argmin"):
            out += [(s, "v", np.dtype(s.in_dtypes[0])), (s, "i", np.dtype(np.int64))]
        else:
            out.append((s, "", np.dtype(s.dtype)))
    return out


def _render_split(nest, part):
    """``kernel(M, R, G, n0.., a0.., o0.., p0..)``, one half of a split reduction.

    'split_partial': G threads per output (grid-stride over M*G work items); thread g folds
    reduced elements g, g + G, g + 2G, ... (neighbouring threads read neighbouring elements:
    consecutive g in a row group, whose reduced axes are innermost, consecutive outputs in an
    acc group), stores the full outputs of those elements, and writes its partial values.
    'split_finish': a thread per output folds its G partials in order g = 0, 1, .. (a fixed
    order: deterministic), then computes the outer statements and stores the outer outputs."""
    em = _Cuda(nest)
    nin, nout = len(nest.inputs), len(nest.outputs)
    bufs = split_buffers(nest)
    args = (["M", "R", "G"] + [f"n{i}" for i in range(nest.ndim)]
            + [f"a{k}" for k in range(nin)] + [f"o{j}" for j in range(nout)]
            + [f"p{k}" for k in range(len(bufs))])
    kept = [a for a in range(nest.ndim) if not nest.reduced[a]]
    red = [a for a in range(nest.ndim) if nest.reduced[a]]
    row = nest.mode == "row"
    levels = ({s.name: s.level for s in nest.stmts} if row else
              {s.name: 0 for s in nest.stmts})
    outer = [s for s in nest.stmts if s.outer and s.kind != "reduce"]
    level0 = [ln for s in outer if levels[s.name] == 0 for ln in em.stmt(s)]
    in_pass, stores, needed, _ = em.pass_parts(0, levels)

    def part_of(s, kind):
        return s.name + kind if s.op in ("argmax", "argmin") else s.name

    if part == "split_partial":
        body = ["_q0 = cuda.grid(1)", "_step = cuda.gridsize(1)", "while _q0 < M * G:"]
        inner = (["_m = _q0 // G", "_g = _q0 % G"] if row else ["_m = _q0 % M", "_g = _q0 // M"])
        inner += _decompose("_m", kept) + level0
        for s in in_pass:
            inner += em.reduce_init(s, "0", s.name + "i")
        loop = list(_decompose("_r", red))
        loop += [ln for s in nest.stmts if s.name in needed for ln in em.stmt(s)]
        for s in in_pass:
            loop += em.reduce_update(s, s.args[0], "_r", s.name + "i")
        loop += [em.store(j, n) for j, n in stores] + ["_r += G"]
        inner += ["_r = _g", "while _r < R:"] + ind(loop, 1)
        inner += [f"p{k}[_q0] = {part_of(s, kind)}" for k, (s, kind, _) in enumerate(bufs)]
        body += ind(inner + ["_q0 += _step"], 1)
    else:
        at = "_m * G + _g" if row else "_g * M + _m"
        inner = ["_m = _q0"] + _decompose("_m", kept) + level0 + ["_g = 0"]
        inner += [f"{part_of(s, kind)} = p{k}[{at}]" for k, (s, kind, _) in enumerate(bufs)]
        fold = []
        for k, (s, kind, _) in enumerate(bufs):
            if s.op in ("argmax", "argmin"):
                if kind == "v":
                    isf = np.dtype(s.in_dtypes[0]).kind == "f"
                    v, i = f"{s.name}v", f"{s.name}i"
                    fold += [f"_bv = p{k}[{at}]", f"_bi = p{k + 1}[{at}]",
                             f"if {_take(s.op, isf, v, i, '_bv', '_bi')}:",
                             f"    {v} = _bv", f"    {i} = _bi"]
            else:
                fold += [f"{s.name} = {em.combine(s.op, s.name, f'p{k}[{at}]', s.dtype)}"]
        inner += ["_g = 1", "while _g < G:"] + ind(fold + ["_g += 1"], 1)
        inner += [f"{s.name} = {_np(s.dtype)}({s.name}i)" for s in in_pass
                  if s.op in ("argmax", "argmin")]
        inner += [ln for s in outer if levels[s.name] == 1 for ln in em.stmt(s)]
        inner += [em.store(j, o[2]) for j, o in enumerate(nest.outputs) if o[3] == "outer"]
        body = ["_q0 = cuda.grid(1)", "_step = cuda.gridsize(1)", "while _q0 < M:"]
        body += ind(inner + ["_q0 += _step"], 1)
    lines = [f"@cuda.jit(cache={not crt.simulator()})", f"def kernel({', '.join(args)}):"]
    lines += ind(body, 1)
    helper_src = "".join("\n@cuda.jit(device=True)" + _helper_src(h) + "\n"
                         for h in sorted(em.helpers, key=_helper_rank))
    return helper_src + "\n" + "\n".join(lines) + "\n"


def _take(op, isf, av, ai, bv, bi):
    """Condition under which argmax/argmin candidate (bv, bi) beats (av, ai): a larger
    (smaller) value, a NaN over a number, or an equal value (NaN: any NaN) at a lower index --
    symmetric, so both sides of a pairwise combine agree."""
    cmp = ">" if op == "argmax" else "<"
    return (f"({bv} {cmp} {av})" + (f" or ({bv} != {bv} and {av} == {av})" if isf else "")
            + f" or (({bv} == {av}" + (f" or ({bv} != {bv} and {av} != {av})" if isf else "")
            + f") and {bi} < {ai})")


def _block_combine(em, in_pass, block):
    """Lines combining each reduction of a pass across a block: a butterfly within each warp
    (``_warp_combine``), lane 0 of each warp writes its value to shared memory, and after one
    barrier every thread folds the warps' values in warp order (fixed: deterministic). A
    second barrier keeps the slots until everyone has read them."""
    warps = block // crt.WARP
    out = _warp_combine(em, in_pass, block, final=False)
    write, fold = [], []
    for s in in_pass:
        if s.op in ("argmax", "argmin"):
            isf = np.dtype(s.in_dtypes[0]).kind == "f"
            v, i = f"{s.name}v", f"{s.name}i"
            write += [f"_sh_{s.name}[_w] = {v}", f"_si_{s.name}[_w] = {i}"]
            fold += [f"{v} = _sh_{s.name}[0]", f"{i} = _si_{s.name}[0]"]
            step = [f"_bv = _sh_{s.name}[_k]", f"_bi = _si_{s.name}[_k]",
                    f"if {_take(s.op, isf, v, i, '_bv', '_bi')}:", f"    {v} = _bv",
                    f"    {i} = _bi"]
        else:
            write += [f"_sh_{s.name}[_w] = {s.name}"]
            fold += [f"{s.name} = _sh_{s.name}[0]"]
            step = [f"{s.name} = {em.combine(s.op, s.name, f'_sh_{s.name}[_k]', s.dtype)}"]
        fold += ["for _k in range(1, %d):" % warps] + ind(step, 1)
    out += [f"_w = _tid // {crt.WARP}", f"if _tid % {crt.WARP} == 0:"] + ind(write, 1)
    out += ["cuda.syncthreads()"] + fold + ["cuda.syncthreads()"]
    return out + [f"{s.name} = {_np(s.dtype)}({s.name}i)" for s in in_pass
                  if s.op in ("argmax", "argmin")]


def _shfl(expr, dt):
    """Source of lane ``_tid ^ _o``'s value of ``expr`` (dtype ``dt``): Numba shuffles 32- and
    64-bit ints and floats, so other dtypes travel as int64."""
    dt = np.dtype(dt)
    if dt.name in ("int32", "int64", "float32", "float64"):
        return f"cuda.shfl_xor_sync(0xFFFFFFFF, {expr}, _o)"
    if dt.kind == "b":
        return f"(cuda.shfl_xor_sync(0xFFFFFFFF, np.int64({expr}), _o) != 0)"
    return f"{_np(dt)}(cuda.shfl_xor_sync(0xFFFFFFFF, np.int64({expr}), _o))"


def _warp_combine(em, in_pass, block, final=True):
    """Lines combining each reduction of a pass across a warp: a butterfly of xor shuffles
    (5 steps, no shared memory, no barrier). Combines are commutative, so the two lanes of
    each exchange compute the same value and all lanes end with the warp's (deterministic)
    result. ``final``: argmax/argmin's result is then the position (else it stays in
    ``<name>v``/``<name>i`` for ``_block_combine``)."""
    del block  # unused: a warp is 32 lanes whatever the block
    step = []
    for s in in_pass:
        if s.op in ("argmax", "argmin"):
            isf = np.dtype(s.in_dtypes[0]).kind == "f"
            v, i = f"{s.name}v", f"{s.name}i"
            step += [f"_bv = {_shfl(v, s.in_dtypes[0])}", f"_bi = {_shfl(i, np.int64)}",
                     f"if {_take(s.op, isf, v, i, '_bv', '_bi')}:",
                     f"    {v} = _bv", f"    {i} = _bi"]
        else:
            step += [f"_b = {_shfl(s.name, s.dtype)}",
                     f"{s.name} = {em.combine(s.op, s.name, '_b', s.dtype)}"]
    out = [f"_o = {crt.WARP // 2}", "while _o > 0:"] + ind(step + ["_o //= 2"], 1)
    return out + [f"{s.name} = {_np(s.dtype)}({s.name}i)" for s in in_pass
                  if final and s.op in ("argmax", "argmin")]


def _helper_rank(h):
    return (-len([k for k, deps in _HELPER_DEPS.items() if h in deps]), h)


def header():
    import numba

    return (f"# fnx generated CUDA kernel; backend {CODEGEN_VERSION} numba={numba.__version__}\n"
            "import math  # noqa: F401\n"
            "import numba  # noqa: F401\n"
            "import numpy as np  # noqa: F401\n"
            "from numba import cuda\n\n")


# --- loading and launching ------------------------------------------------------------------


def _load_module(source):
    from .. import cache

    h = hashlib.sha256(source.encode()).hexdigest()[:32]
    mod = _modules.get(h)
    if mod is not None:
        STATS["kernels_reused"] += 1
        return h, mod
    with _lock:
        d = os.path.join(cache.cache_dir(), "cuda")
        mod = _modules[h] = cache.import_generated(
            os.path.join(d, f"fnx_cuda_{h}.py"), source, f"fnx_cuda_kernels.fnx_cuda_{h}")
        STATS["kernels_compiled"] += 1
    return h, mod


class CudaKernel:
    """A fused group on the GPU: ``k(n0.., a0.., o0..)`` with GPU buffers (C-contiguous, any
    shape), the CPU dispatcher's calling convention. Row groups pick a thread, a warp or a
    block per row by row length, or split few long reductions over many threads (``choose``);
    each variant is generated on first use.

    On a real GPU with a PTX toolchain a call goes through the launch path: ``plan(sizes)``
    (compiled at the raw-pointer signature, loaded once, parameters packed) then
    ``LaunchPlan.launch`` with the buffers' pointers; otherwise (the simulator, no toolchain)
    through Numba's dispatcher."""

    def __init__(self, nest):
        self.nest = nest
        self.ndim = nest.ndim
        self.nin, self.nout = len(nest.inputs), len(nest.outputs)
        self.reduced = list(nest.reduced)
        self._variants = {}
        self.sources = {}
        self.launched = set()
        self._plans = {}  # sizes -> cuda_launch.LaunchPlan (None: nothing to launch)
        self._dispatcher_only = False  # the launch path failed for this kernel once

    def variant(self, strategy):
        v = self._variants.get(strategy)
        if v is None:
            src = header() + render(self.nest, strategy, crt.block_size(strategy))
            h, mod = _load_module(src)
            v = self._variants[strategy] = mod.kernel
            self.sources[strategy] = src
        return v

    def choose(self, M, R):
        """``(strategy, G)`` for ``M`` outputs over ``R`` reduced elements: 'thread' (map and
        acc groups, short rows), 'warp' (rows of ``ROW_WARP_MIN`` up to ``ROW_BLOCK_MIN - 1``
        elements) or 'block' (longer rows), with G = 1; or ('split', G) when those would leave
        the GPU mostly idle and the nest can split (``cuda_runtime.split_count``)."""
        if self.nest.mode != "row" or R < crt.ROW_WARP_MIN:
            strategy, width = "thread", 1
        elif R < crt.ROW_BLOCK_MIN:
            strategy, width = "warp", crt.WARP
        else:
            strategy, width = "block", crt.block_size("block")
        G = crt.split_count(M, R, width) if splittable(self.nest) else 1
        return ("split", G) if G > 1 else (strategy, 1)

    def abi(self, strategy):
        """``(sizes before n0, output-side buffers)`` of variant ``strategy``'s kernel: the
        split halves take G after M, R and their partial buffers after the outputs."""
        outs = [np.dtype(o[0]) for o in self.nest.outputs]
        if strategy in SPLIT:
            return 3, outs + [dt for _, _, dt in split_buffers(self.nest)]
        return 2, outs

    def signature(self, strategy="thread"):
        """The raw-pointer signature the launch path compiles (``cuda_compile``)."""
        from .. import cuda_compile

        lead, outs = self.abi(strategy)
        return cuda_compile.raw_signature(self.ndim + lead - 2,
                                          [i[0] for i in self.nest.inputs], outs)

    def ptx(self, strategy, cc):
        """The ``cuda_compile.PtxKernel`` of variant ``strategy`` for compute capability
        ``cc`` (no GPU needed), its parameters checked against the launch plan's words."""
        from .. import cuda_compile, cuda_launch

        self.variant(strategy)
        k = cuda_compile.compile_ptx(self.sources[strategy], self.signature(strategy), cc,
                                     lambda: self.variant(strategy).py_func)
        lead, outs = self.abi(strategy)
        cuda_launch.check_params(k.params, self.ndim + lead - 2, self.nin, len(outs))
        return k

    def _partials(self, M, G, empty):
        return [empty((M * G,), dt) for _, _, dt in split_buffers(self.nest)]

    def plan(self, sizes, driver):
        """The ``cuda_launch.LaunchPlan`` of a launch at ``sizes`` (None when there is no work):
        the variant for these sizes compiled, loaded once, grid and parameters fixed."""
        from .. import cuda_launch

        key = tuple(sizes)
        if key in self._plans:
            return self._plans[key]
        M, R = _work(sizes, self.reduced)
        plan = None
        if M:
            strategy, G = self.choose(M, R)
            cc = driver.compute_capability()
            block = crt.block_size(strategy)
            if strategy == "split":
                partials = self._partials(M, G, crt.backend().empty)
                plans = [cuda_launch.LaunchPlan(
                    driver, driver.function(self.ptx(part, cc)), crt.grid_for(n, block),
                    block, [M, R, G, *key], self.nin + self.nout + len(partials))
                    for part, n in zip(SPLIT, (M * G, M), strict=True)]
                plan = cuda_launch.ChainedPlan(plans, partials)
            else:
                plan = cuda_launch.LaunchPlan(
                    driver, driver.function(self.ptx(strategy, cc)),
                    crt.grid_for(M, crt.rows_per_block(strategy, block)), block,
                    [M, R, *key], self.nin + self.nout)
            self.launched.add(strategy)
        self._plans[key] = plan
        return plan

    def __call__(self, *args):
        sizes = [int(s) for s in args[:self.ndim]]
        bufs = args[self.ndim:]
        drv = None if self._dispatcher_only else crt.raw_driver()
        if drv is not None:
            plan = self._plans.get(tuple(sizes))
            if plan is None:
                try:
                    plan = self.plan(sizes, drv)
                except Exception as err:  # noqa: BLE001 -- compiling/loading: fall back, loudly
                    self._dispatcher_only = True
                    STATS["launch_path_fallbacks"] += 1
                    warnings.warn(_FALLBACK.format(err=f"{type(err).__name__}: {err}"),
                                  stacklevel=2)
            if not self._dispatcher_only:
                if plan is not None:
                    plan.launch([b.data.ptr for b in bufs], drv.stream())
                return
        M, R = _work(sizes, self.reduced)
        if M == 0:
            return
        strategy, G = self.choose(M, R)
        self.launched.add(strategy)
        be = crt.backend()
        flat = [be.kernel_arg(b) for b in bufs]
        block = crt.block_size(strategy)
        if strategy == "split":
            flat += [be.kernel_arg(p) for p in self._partials(M, G, be.empty)]
            for part, n in zip(SPLIT, (M * G, M), strict=True):
                self.variant(part)[crt.grid_for(n, block), block, be.stream()](
                    M, R, G, *sizes, *flat)
            return
        kern = self.variant(strategy)
        grid = crt.grid_for(M, crt.rows_per_block(strategy, block))
        kern[grid, block, be.stream()](M, R, *sizes, *flat)


_FALLBACK = ("fnx.jit (CUDA): the launch path could not compile or load a kernel ({err}); it "
             "launches through Numba's dispatcher instead (slower per launch). "
             "FNX_CUDA_LAUNCH=numba uses the dispatcher for every kernel.")


def _work(sizes, reduced):
    """``(M, R)``: the products of the kept and of the reduced sizes."""
    M = R = 1
    for s, r in zip(sizes, reduced, strict=True):
        if r:
            R *= s
        else:
            M *= s
    return M, R


def compile_nest(nest, warm=False):
    """The CUDA kernel of a loop nest (from ``loops.build``); ``warm=True`` generates and
    imports the source now (CUDA compiles to PTX at the first launch of each signature)."""
    k = CudaKernel(nest)
    if warm:
        for strategy in ("thread", "warp", "block") if nest.mode == "row" else ("thread",):
            k.variant(strategy)
        if splittable(nest):
            for part in SPLIT:
                k.variant(part)
    return k


# --- the CUDA executable ----------------------------------------------------------------------


class CudaExecutable(Executable):
    """``run(*gpu_buffers) -> list of gpu buffers``: ``executable.Executable``'s orchestrator
    (same attributes: ``ir``, ``plan``, ``kernels``, ``source``, ``orchestrator``) with GPU
    hooks: it allocates GPU buffers, launches one CUDA kernel per fused group, calls cuBLAS
    (``cupy.matmul``) and runs eager impls on GPU buffers (``cuda_runtime.backend()``)."""

    device = "cuda"
    _target = " for CUDA"
    _filename = "<fnx.jit CUDA orchestrator>"

    def __init__(self, program, consts):
        self.cuda_kernels = []
        super().__init__(program, consts)

    def _namespace(self):
        from ...core.ops.linalg import _dot_general_impl

        return {"np": np, "_B": crt.backend(), "functools": functools,
                "_dot_general_impl": _dot_general_impl}

    @staticmethod
    def _host(val):
        buf = val._buf if type(val) is Array else val
        return buf if crt.is_cuda_buffer(buf) else np.asarray(buf)

    def _literal(self, x):
        v = self._host(x.val)
        return v if crt.is_cuda_buffer(v) else crt.backend().const(v)

    def _constant(self, c):
        c = self._host(c)
        be = crt.backend()
        return be.contiguous(c) if crt.is_cuda_buffer(c) else be.const(c)

    def _prologue(self, params):
        return [f"    {p} = _B.on_device({p})" for p in params]

    def _allocation_scope(self, body, ns):
        return body  # buffers live in GPU memory (CuPy's pool), not NumPy's handler

    _donates = False  # the CUDA kernels take every output as its own buffer

    def _compile(self, nest):
        kern = compile_nest(nest, warm=True)
        self.kernel_sources.append("\n".join(kern.sources.values()))
        self.cuda_kernels.append(kern)
        return kern

    def _scalar_inputs(self, nest):
        return ()  # CUDA kernels read every input from device memory

    def _kernel_arg(self, n, how, ns, lines):
        # constants, matmul results and run-time scalars are contiguous on the device already
        if how == "other":
            lines.append(f"    {n} = _B.contiguous({n})")
        return n

    def _output(self, v, n, lines):
        lines.append(f"    {n} = _B.empty({tuple(v.aval.shape)}, "
                     f"np.{np.dtype(v.aval.dtype).name})")
        return n, []

    def _blas_call(self, eqn, ins, transposed=False):
        return None if transposed else _blas_call(eqn, ins)

    def _call(self, eqn, fname, ins, ns):
        ns[fname] = functools.partial(eqn.primitive.impl, **eqn.params)
        return f"_B.eager({fname}{''.join(', ' + i for i in ins)})"

    def _warn_fallback(self, eqn):
        warnings.warn(f"fnx.jit (CUDA): primitive '{eqn.primitive.name}' has no "
                      f"compiled lowering; it runs its eager implementation", stacklevel=5)


def _blas_call(eqn, ins):
    form = matmul_form(eqn)
    if form is not None and form[0] == "mm":
        return f"_B.matmul({ins[0]}, {ins[1]}, {form[1]}, {form[2]})"
    if form is not None and form[0] in ("mv", "vm"):
        return f"_B.matmul({ins[0]}, {ins[1]})"
    if form is not None:
        return f"_B.dot({ins[0]}, {ins[1]})"
    return (f"_B.eager(functools.partial(_dot_general_impl, dimension_numbers="
            f"{eqn.params['dimension_numbers']!r}), {ins[0]}, {ins[1]})")


__all__ = ["CudaExecutable", "CudaKernel", "CudaLoweringError", "compile_nest", "render",
           "op_src"]
