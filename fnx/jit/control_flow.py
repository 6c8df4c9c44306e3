"""Compiled lowerings of the higher-order primitives, and the structural executable cache.

``cond``, ``while`` and ``scan`` (``fori_loop`` arrives as one of the last two) carry their
sub-programs as ``ClosedProgram`` params. Under jit each sub-program is compiled ONCE, with the
same machinery as a top-level program (passes, fusion, Numba kernels, orchestrator), into a
sub-executable; the equation becomes one orchestrator step that calls it:

* ``cond``: read the index, clamp it, run only that branch's executable;
* ``while``: ``while cond_exe(...)[0]: carry = body_exe(...)`` in plain Python over buffers;
* ``scan``: ``ys`` preallocated once (``np.empty((length, ...))``), each iteration writes its
  ``y`` slices into row ``i``; ``xs`` are made C-contiguous once and sliced with ``x[i]``
  (``x[i, ...]``: a view, never a copy).

Nothing is unrolled and nothing is retraced per iteration: the sub-executables are built when
the enclosing executable is built. ``custom_jvp_call`` / ``custom_vjp_call`` / ``checkpoint``
compile their primal program the same way (``passes.inline_calls`` splices the constant-free
ones into the caller first, so they usually fuse with it).

Executables are cached STRUCTURALLY: ``structural_key(program)`` hashes the program's shape
(primitives, avals, literals, params; nested programs recursively; variables by position), so
re-tracing a function (a new batch size around an unchanged loop body, or two jitted functions
with the same body) reuses the compiled executables. Constants are not part of the key: every
cached executable takes them as leading run-time arguments.
"""

import collections
import hashlib
import weakref

import numpy as np

from ..core.array import Array
from ..core.ir import ClosedProgram, Literal, Program
from ..transforms.control_flow import cond_p, scan_p, while_p

# --- structural keys ---------------------------------------------------------------------------

_keys = weakref.WeakKeyDictionary()  # Program -> (hex digest, objects keyed by identity)
_BIG_CONST = 1 << 16  # bytes; larger nested constants are keyed by identity


def _array_key(buf, keepalive):
    buf = np.asarray(buf)
    if buf.nbytes <= _BIG_CONST:
        return f"arr({buf.dtype.str},{buf.shape},{hashlib.sha1(buf.tobytes()).hexdigest()})"
    keepalive.append(buf)
    return f"arrid({id(buf)})"


def _param_key(value, keepalive):
    if isinstance(value, ClosedProgram):
        consts = ",".join(_array_key(c._buf if type(c) is Array else c, keepalive)
                          for c in value.consts)
        return f"closed({structural_key(value.program, keepalive)};{consts})"
    if isinstance(value, Program):
        return f"prog({structural_key(value, keepalive)})"
    if isinstance(value, (tuple, list)):
        inner = ",".join(_param_key(v, keepalive) for v in value)
        return f"{type(value).__name__}({inner})"
    if value is None or isinstance(value, (bool, int, float, complex, str, np.generic)):
        return f"{type(value).__name__}:{value!r}"
    if isinstance(value, np.dtype):
        return f"dtype:{value.str}"
    if isinstance(value, np.ndarray):
        return _array_key(value, keepalive)
    if type(value) is Array:
        return _array_key(value._buf, keepalive)
    # Anything else (functions, custom objects): by identity, kept alive by the cache entry.
    keepalive.append(value)
    return f"id:{type(value).__name__}:{id(value)}"


def _type_key(aval):
    # weak types are part of a program's type: the programs jit derives from it (jvp, vmap,
    # ...) and memoizes by this key type their outputs by them
    return np.dtype(aval.dtype).str + ("w" if aval.weak_type else "")


def structural_key(program, keepalive=None):
    """A hex digest of ``program``'s structure: equal for programs that compute the same
    thing the same way (variables are numbered by position, literals and params by value).

    >>> structural_key(fnx.make_ir(f)(x)) == structural_key(fnx.make_ir(f)(x))  # doctest: +SKIP
    True
    """
    cached = _keys.get(program)
    if cached is not None:
        if keepalive is not None:
            keepalive.extend(cached[1])
        return cached[0]
    keep = []
    names = {}

    def ref(x):
        if isinstance(x, Literal):
            val = x.val._buf if type(x.val) is Array else x.val
            return f"lit:{_type_key(x.aval)}:" + _array_key(val, keep)
        return f"v{names[x]}"

    def bind(v):
        names[v] = len(names)
        return f"v{names[v]}:{_type_key(v.aval)}{tuple(v.aval.shape)}"

    parts = ["in " + " ".join(bind(v) for v in program.in_binders)]
    for e in program.eqns:
        ins = " ".join(ref(x) for x in e.inputs)
        params = ";".join(f"{k}={_param_key(v, keep)}" for k, v in sorted(e.params.items()))
        outs = " ".join(bind(v) for v in e.out_binders)
        parts.append(f"{outs} = {e.primitive.name}[{params}] {ins}")
    parts.append("out " + " ".join(ref(x) for x in program.outs))
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()
    _keys[program] = (digest, keep)
    if keepalive is not None:
        keepalive.extend(keep)
    return digest


# --- the structural executable cache -------------------------------------------------------------

STATS = {"executables_compiled": 0, "executables_reused": 0}
_MAX_ENTRIES = 1024
_exes = collections.OrderedDict()  # structural key -> (Executable, keepalive)


def executable_for(program, device="cpu"):
    """The compiled executable of ``program`` (a Program; its constants, if any, are its
    leading run-time arguments) for ``device`` ('cpu' or 'cuda'), shared by every
    structurally equal program."""
    keep = []
    key = (structural_key(program, keep), device)
    hit = _exes.get(key)
    if hit is not None:
        _exes.move_to_end(key)
        STATS["executables_reused"] += 1
        return hit[0]
    if device == "cuda":
        from .codegen.cuda import CudaExecutable

        exe = CudaExecutable(program, ())
    else:
        from .executable import get_executable

        exe = get_executable(program)
    STATS["executables_compiled"] += 1
    _exes[key] = (exe, keep)
    if len(_exes) > _MAX_ENTRIES:
        _exes.popitem(last=False)
    return exe


def clear():
    """Forget every cached executable (kernels stay in the kernel cache)."""
    _exes.clear()


def runner(closed):
    """``run(*bufs) -> tuple of bufs`` for a (Closed)Program, its constants bound."""
    if isinstance(closed, Program):
        closed = ClosedProgram(closed, [])
    run = executable_for(closed.program).run
    if not closed.consts:
        return run
    cbufs = tuple(c._buf if type(c) is Array else np.asarray(c) for c in closed.consts)

    def run_with_consts(*bufs):
        return run(*cbufs, *bufs)

    return run_with_consts


# --- lowerings: eqn -> callable over buffers ----------------------------------------------------
#
# Set as ``prim.lower`` on the primitives (their other rules live in fnx/transforms/
# control_flow.py): these compile the sub-programs with jit's own machinery, as jit_call_p's
# rules live in fnx/jit/api.py. Primitives that call one program (``prim.call_program``:
# custom_jvp_call, custom_vjp_call, checkpoint) need no rule of their own: ``runner``.


def _lower_cond(eqn):
    branches = [runner(b) for b in eqn.params["branches"]]
    last = len(branches) - 1

    def cond(index, *operands):
        i = int(index)
        return branches[0 if i < 0 else last if i > last else i](*operands)

    return cond


def _lower_while(eqn):
    p = eqn.params
    cond_run, body_run = runner(p["cond_program"]), runner(p["body_program"])
    ncc, nbc = p["cond_nconsts"], p["body_nconsts"]

    def while_loop(*args):
        cc, bc, carry = args[:ncc], args[ncc:ncc + nbc], args[ncc + nbc:]
        while cond_run(*cc, *carry)[0]:
            carry = body_run(*bc, *carry)
        return tuple(carry)

    return while_loop


def _lower_scan(eqn):
    p = eqn.params
    program = p["program"]
    body = runner(program)
    nc, nk, length, reverse = p["num_consts"], p["num_carry"], p["length"], p["reverse"]
    y_avals = [v.aval for v in eqn.out_binders[nk:]]
    order = range(length - 1, -1, -1) if reverse else range(length)

    def scan(*args):
        consts, carry = args[:nc], args[nc:nc + nk]
        xs = [x if x.flags.c_contiguous else np.ascontiguousarray(x) for x in args[nc + nk:]]
        ys = [np.empty(a.shape, a.dtype) for a in y_avals]
        ny = len(ys)
        for i in order:
            outs = body(*consts, *carry, *[x[i, ...] for x in xs])  # views, 0-d kept
            carry = outs[:nk]
            for k in range(ny):
                ys[k][i] = outs[nk + k]
        return (*carry, *ys)

    return scan


cond_p.lower = _lower_cond
while_p.lower = _lower_while
scan_p.lower = _lower_scan
