"""``fnx.jit`` and the higher-order primitive ``jit_call_p`` (Autodidax part 3's ``xla_call_p``).

``jit(f)`` traces ``f`` to a Program per (pytree structure, shapes, dtypes, devices, static
values) and runs its compiled executable. Under another transform the call binds ``jit_call_p``
with the Program as a param; its jvp / batch / partial-eval / transpose rules transform the
Program and re-bind ``jit_call_p``, so ``grad(jit(f))`` and ``vmap(jit(f))`` stay compiled.
"""

import functools
import inspect
import weakref

import numpy as np

from ..core import tracing
from ..core.abstract import ShapedArray
from ..core.ad_util import UndefinedPrimal, Zero, instantiate, is_undefined
from ..core.array import Array, wrap
from ..core.errors import ConcretizationError
from ..core.ir import eval_program, make_program, pp_program
from ..core.primitive import Primitive
from ..core.pytree import tree_flatten, tree_unflatten
from ..core.tracing import Tracer, get_aval
from . import cache
from .executable import get_executable

# --- jit_call_p ---------------------------------------------------------------------------

jit_call_p = Primitive("jit_call", multiple_results=True)


def _jit_call_impl(*bufs, program, name):
    del name  # unused
    return get_executable(program).run(*bufs)


def _jit_call_abstract_eval(*avals, program, name):
    del name  # unused
    if len(avals) != len(program.in_binders):
        raise TypeError(f"jit_call: {len(avals)} operands for a program of "
                        f"{len(program.in_binders)} inputs")
    return [ShapedArray(x.aval.shape, x.aval.dtype) for x in program.outs]


_derived = weakref.WeakKeyDictionary()  # Program -> {key: (program, consts)}


def _memo(program, key, build):
    per = _derived.setdefault(program, {})
    if key not in per:
        per[key] = build()
    return per[key]


def _call(program, consts, args, name):
    return jit_call_p.bind(*consts, *args, program=program, name=name)


def _shaped(x):
    a = get_aval(x)
    return ShapedArray(a.shape, a.dtype)


def jvp_program(program):
    """Program (primals..., tangents...) -> (outs..., tangent outs...)."""
    from ..transforms.jvp import jvp_flat

    n = len(program.in_binders)
    avals = [v.aval for v in program.in_binders]

    def f(*args):
        outs, t_outs = jvp_flat(lambda *a: eval_program(program, a), args[:n], args[n:])
        return [*outs, *t_outs]

    return make_program(f, avals + avals)


def _jit_call_jvp(primals, tangents, *, program, name):
    jprog, consts = _memo(program, "jvp", lambda: jvp_program(program))
    tangents = [instantiate(t) for t in tangents]
    outs = _call(jprog, consts, [*primals, *tangents], name)
    n = len(program.outs)
    return outs[:n], outs[n:]


def vmap_program(program, in_axes, axis_size):
    """Program over batched inputs (batch axis 0 where mapped) -> outputs batched at axis 0."""
    from ..transforms.vmap import move_batch_axis, vmap_flat

    avals = [ShapedArray(((axis_size,) if ax is not None else ()) + v.aval.shape, v.aval.dtype)
             for v, ax in zip(program.in_binders, in_axes, strict=True)]

    def f(*args):
        vals, dims = vmap_flat(lambda *a: eval_program(program, a), list(in_axes), axis_size,
                               list(args))
        return [move_batch_axis(axis_size, d, 0, v) for v, d in zip(vals, dims, strict=True)]

    return make_program(f, avals)


def _jit_call_batch(axis_size, args, dims, *, program, name):
    from ..core.ops.shape import move_axis

    args = [x if d is None else move_axis(x, d, 0) for x, d in zip(args, dims, strict=True)]
    in_axes = tuple(None if d is None else 0 for d in dims)
    bprog, consts = _memo(program, ("vmap", in_axes, axis_size),
                          lambda: vmap_program(program, in_axes, axis_size))
    outs = _call(bprog, consts, args, name)
    return outs, [0] * len(outs)


def partial_eval_program(program, unknowns):
    """Split ``program`` into a known part (run now, compiled) and an unknown part.

    Returns ``(known_program, known_consts, unknown_program, out_unknowns, num_res)``: the
    known program maps the known inputs to (known outputs..., residuals...); the unknown one
    maps (residuals..., unknown inputs...) to the unknown outputs.
    """
    from ..transforms.partial_eval import PartialVal, partial_eval_flat

    avals = [v.aval for v in program.in_binders]
    box = {}

    def known_fn(*kvals):
        it = iter(kvals)
        pvals = [PartialVal.unknown(a) if u else PartialVal.known(next(it))
                 for a, u in zip(avals, unknowns, strict=True)]
        unk, pvals_out, res = partial_eval_flat(lambda *a: eval_program(program, a), pvals,
                                                [False] * len(program.outs))
        box["unk"], box["out_unknowns"] = unk, [p.is_unknown for p in pvals_out]
        box["num_res"] = len(res)
        return [p.const for p in pvals_out if p.is_known] + list(res)

    known, kconsts = make_program(known_fn, [a for a, u in zip(avals, unknowns) if not u])
    return known, kconsts, box["unk"], box["out_unknowns"], box["num_res"]


def _jit_call_partial_eval(trace, tracers, *, program, name):
    unknowns = tuple(t.pval.is_unknown for t in tracers)
    known, kconsts, unk, out_unknowns, num_res = _memo(
        program, ("pe", unknowns), lambda: partial_eval_program(program, unknowns))
    known_vals = [t.pval.const for t, u in zip(tracers, unknowns) if not u]
    res_out = _call(known, kconsts, known_vals, name)
    n_known = len(res_out) - num_res
    known_outs, res = res_out[:n_known], res_out[n_known:]
    res_tracers = [trace.instantiate_const(trace.lift(r)) for r in res]
    unk_in = [trace.instantiate_const(t) for t, u in zip(tracers, unknowns) if u]
    unk_outs = trace.default_process(jit_call_p, res_tracers + unk_in,
                                     dict(program=unk, name=name))
    ko, uo = iter(known_outs), iter(unk_outs)
    return [next(uo) if u else trace.lift(next(ko)) for u in out_unknowns]


def transpose_program(program, undefined, ct_avals):
    """Program (residuals..., cotangents...) -> cotangents of the undefined (linear) inputs."""
    from ..transforms.partial_eval import backward_pass

    avals = [v.aval for v in program.in_binders]
    res_avals = [a for a, u in zip(avals, undefined) if not u]
    nres = len(res_avals)

    def f(*args):
        it = iter(args[:nres])
        full = [UndefinedPrimal(a) if u else next(it) for a, u in zip(avals, undefined)]
        cts = backward_pass(program, full, list(args[nres:]))
        return [instantiate(c) for c in cts]

    return make_program(f, res_avals + list(ct_avals))


def _jit_call_transpose(cts, *args, program, name):
    undefined = tuple(is_undefined(a) for a in args)
    cts = [instantiate(c) if type(c) is Zero else c for c in cts]
    ct_avals = tuple(_shaped(c) for c in cts)
    tprog, consts = _memo(program, ("T", undefined, ct_avals),
                          lambda: transpose_program(program, undefined, ct_avals))
    res = [a for a in args if not is_undefined(a)]
    outs = iter(_call(tprog, consts, [*res, *cts], name))
    return [next(outs) if u else None for u in undefined]


jit_call_p.impl = _jit_call_impl
jit_call_p.abstract_eval = _jit_call_abstract_eval
jit_call_p.jvp = _jit_call_jvp
jit_call_p.batch = _jit_call_batch
jit_call_p.partial_eval = _jit_call_partial_eval
jit_call_p.transpose = _jit_call_transpose
jit_call_p.fusion_kind = "opaque"  # inlined into the caller by passes.inline_jit_calls

# --- jit ----------------------------------------------------------------------------------


class _Entry:
    __slots__ = ("program", "consts", "out_tree", "exe", "unflatten", "nflat")

    def __init__(self, program, consts, out_tree):
        self.program, self.consts, self.out_tree = program, consts, out_tree
        self.exe = None
        n = out_tree.num_leaves
        if out_tree.node is None:
            self.unflatten = lambda outs: wrap(outs[0])
        else:
            self.unflatten = lambda outs: tree_unflatten(out_tree, [wrap(o) for o in outs])
        self.nflat = n

    def executable(self):
        if self.exe is None:
            self.exe = get_executable(self.program, self.consts)
        return self.exe


class CacheInfo:
    """What a jitted function traced and compiled, and why each trace missed."""

    def __init__(self, traces, hits, misses, kernels_compiled, kernels_loaded, kernels_reused):
        self.traces, self.hits, self.misses = traces, hits, misses
        self.kernels_compiled, self.kernels_loaded = kernels_compiled, kernels_loaded
        self.kernels_reused = kernels_reused

    def __repr__(self):
        return (f"CacheInfo(traces={self.traces}, hits={self.hits}, "
                f"kernels_compiled={self.kernels_compiled}, "
                f"kernels_loaded={self.kernels_loaded}, kernels_reused={self.kernels_reused}, "
                f"misses={self.misses})")


class Lowered:
    """``jit(f).lower(*args)``: ``.ir`` (optimised program), ``.kernels`` (fusion plan),
    ``.source`` (generated kernels + orchestrator); ``.compile()`` compiles ahead of time."""

    def __init__(self, jitted, entry):
        self._jitted, self._entry = jitted, entry

    @property
    def _exe(self):
        return self._entry.executable()

    ir = property(lambda self: self._exe.ir)
    kernels = property(lambda self: self._exe.kernels)
    source = property(lambda self: self._exe.source)
    plan = property(lambda self: self._exe.plan)
    traced_ir = property(lambda self: pp_program(self._entry.program))

    def compile(self):
        self._entry.executable()
        return self._jitted

    def __repr__(self):
        return f"Lowered({self._jitted.__name__})\n{self.kernels}"


class JitFunction:
    """A compiled callable; see ``fnx.jit``."""

    def __init__(self, fun, static_argnums, static_argnames, donate_argnums):
        self.fun = fun
        self.static_argnums = ((static_argnums,) if isinstance(static_argnums, int)
                               else tuple(static_argnums))
        self.static_argnames = ((static_argnames,) if isinstance(static_argnames, str)
                                else tuple(static_argnames))
        self.donate_argnums = donate_argnums  # accepted; outputs never alias inputs here
        self.__name__ = getattr(fun, "__name__", "fun")
        self.__doc__ = getattr(fun, "__doc__", None)
        self.__wrapped__ = fun
        self._entries = {}
        self._fast = {}
        self._last_key = None
        self._stats = {"traces": 0, "hits": 0, "misses": [], "kernels_compiled": 0,
                       "kernels_loaded": 0, "kernels_reused": 0}
        self._simple = not self.static_argnums and not self.static_argnames
        try:
            self._sig = inspect.signature(fun)
        except (TypeError, ValueError):
            self._sig = None

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        if self._simple and not kwargs and len(tracing.trace_stack) == 1 and \
                tracing._dynamic[0] is None:
            try:
                key = tuple([(a._buf.shape, a._buf.dtype, type(a._buf)) for a in args])
            except AttributeError:
                key = None
            entry = self._fast.get(key) if key is not None else None
            if entry is not None:
                self._stats["hits"] += 1
                return entry.unflatten(entry.exe.run(*[a._buf for a in args]))
        return self._call_slow(args, kwargs)

    # --- the general path ------------------------------------------------------------------
    def _split(self, args, kwargs):
        static = self.static_argnums
        nargs = len(args)
        static = tuple(a % nargs if nargs else a for a in static)
        dyn_args = tuple(a for i, a in enumerate(args) if i not in static)
        static_vals = tuple((i, args[i]) for i in static if i < nargs)
        dyn_kwargs = {k: v for k, v in kwargs.items() if k not in self.static_argnames}
        static_kw = tuple(sorted((k, v) for k, v in kwargs.items() if k in self.static_argnames))
        return dyn_args, dyn_kwargs, static_vals + static_kw, static

    def _trace_key(self, args, kwargs):
        from ..transforms.api import _as_arrays

        dyn_args, dyn_kwargs, statics, static_pos = self._split(args, kwargs)
        leaves, in_tree = tree_flatten((dyn_args, dyn_kwargs))
        leaves = _as_arrays(leaves, f"jit({self.__name__})")
        avals = tuple(_shaped(x) for x in leaves)
        devs = tuple(str(x.device) if not isinstance(x, Tracer) else "traced" for x in leaves)
        try:
            hash(statics)
        except TypeError as err:
            raise TypeError(f"jit({self.__name__}): static arguments must be hashable, got "
                            f"{statics!r}") from err
        key = (in_tree, tuple((a.shape, a.dtype) for a in avals), devs, statics)
        return key, leaves, in_tree, avals, static_pos

    def _miss_reason(self, key):
        last = self._last_key
        if last is None:
            return "first call"
        reasons = []
        if key[0] != last[0]:
            reasons.append("new pytree structure")
        elif [s for s, _ in key[1]] != [s for s, _ in last[1]]:
            reasons.append(f"new shapes {[s for s, _ in key[1]]} (was "
                           f"{[s for s, _ in last[1]]})")
        if [d for _, d in key[1]] != [d for _, d in last[1]]:
            reasons.append(f"new dtypes {[str(d) for _, d in key[1]]}")
        if key[2] != last[2]:
            reasons.append(f"new devices {key[2]}")
        if key[3] != last[3]:
            reasons.append(f"new static values {key[3]!r}")
        return "; ".join(reasons) or "new signature"

    def _get_entry(self, args, kwargs):
        key, leaves, in_tree, avals, static_pos = self._trace_key(args, kwargs)
        entry = self._entries.get(key)
        if entry is None:
            self._stats["misses"].append(self._miss_reason(key))
            entry = self._trace(args, kwargs, in_tree, avals, static_pos)
            self._entries[key] = entry
            self._stats["traces"] += 1
        else:
            self._stats["hits"] += 1
        self._last_key = key
        return entry, leaves, key

    def _trace(self, args, kwargs, in_tree, avals, static_pos):
        store = []
        nargs = len(args)

        def flat_f(*leaves):
            dyn_args, dyn_kwargs = tree_unflatten(in_tree, list(leaves))
            it = iter(dyn_args)
            full = [args[i] if i in static_pos else next(it) for i in range(nargs)]
            kw = {k: (kwargs[k] if k in self.static_argnames else dyn_kwargs[k]) for k in kwargs}
            out = self.fun(*full, **kw)
            out_leaves, out_tree = tree_flatten(out)
            store.append(out_tree)
            return out_leaves

        try:
            program, consts = make_program(flat_f, list(avals))
        except ConcretizationError as err:
            raise ConcretizationError(
                f"in the function {self.__name__!r} compiled by fnx.jit: {err}") from None
        return _Entry(program, consts, store[-1])

    def _call_slow(self, args, kwargs):
        entry, leaves, key = self._get_entry(args, kwargs)
        eager = len(tracing.trace_stack) == 1 and tracing._dynamic[0] is None and not any(
            isinstance(x, Tracer) for x in leaves)
        if eager:
            before = dict(cache.STATS)
            exe = entry.executable()
            for k in ("kernels_compiled", "kernels_loaded", "kernels_reused"):
                self._stats[k] += cache.STATS[k] - before[k]
            if self._simple and not kwargs and all(type(a) is Array for a in args):
                self._fast[tuple((a._buf.shape, a._buf.dtype, type(a._buf)) for a in args)] = \
                    entry
            return entry.unflatten(exe.run(*[x._buf for x in leaves]))
        outs = jit_call_p.bind(*entry.consts, *leaves, program=entry.program, name=self.__name__)
        return tree_unflatten(entry.out_tree, list(outs))

    # --- introspection ---------------------------------------------------------------------
    def lower(self, *args, **kwargs):
        entry, _, _ = self._get_entry(args, kwargs)
        return Lowered(self, entry)

    def cache_info(self):
        s = self._stats
        return CacheInfo(s["traces"], s["hits"], list(s["misses"]), s["kernels_compiled"],
                         s["kernels_loaded"], s["kernels_reused"])

    def clear_cache(self):
        self._entries.clear()
        self._fast.clear()
        self._last_key = None

    def __repr__(self):
        return f"<fnx.jit of {self.__name__}>"


def jit(f=None, *, static_argnums=(), static_argnames=(), donate_argnums=()):
    """Compile ``f`` (a function of pytrees of arrays) into fused Numba kernels.

    Traces are cached by pytree structure, shapes, dtypes, devices and static values; the
    native kernels are keyed by dtypes, ranks and broadcast pattern only, so a new batch size
    retraces (milliseconds) but compiles nothing new.

    >>> f = fnx.jit(lambda x: fnx.numpy.tanh(x) * 2.0); f(fnx.numpy.zeros(3)).tolist()
    [0.0, 0.0, 0.0]
    """
    if f is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames, donate_argnums=donate_argnums)
    return JitFunction(f, static_argnums, static_argnames, donate_argnums)


__all__ = ["jit", "jit_call_p", "JitFunction", "Lowered", "CacheInfo", "jvp_program",
           "vmap_program", "partial_eval_program", "transpose_program"]

_ = np  # keep numpy imported for doctest namespaces
