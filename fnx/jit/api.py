"""``fnx.jit`` and the higher-order primitive ``jit_call_p`` (Autodidax part 3's ``xla_call_p``).

``jit(f)`` traces ``f`` to a Program per (pytree structure, shapes, dtypes, devices, static
values) and runs its compiled executable. Under another transform the call binds ``jit_call_p``
with the Program as a param; its jvp / batch / partial-eval / transpose rules transform the
Program and re-bind ``jit_call_p``, so ``grad(jit(f))`` and ``vmap(jit(f))`` stay compiled.
"""

import collections
import functools
import inspect

import numpy as np

from ..core import state, tracing
from ..core.abstract import ShapedArray
from ..core.ad_util import Zero, instantiate, is_undefined
from ..core.array import Array, wrap, wrap_weak
from ..core.errors import ConcretizationError, FnxError
from ..core.ir import StagingTrace, make_program, pp_program
from ..core.primitive import Primitive
from ..core.pytree import tree_flatten, tree_unflatten
from ..core.tracing import Tracer, get_aval
from ..transforms import program_transforms as pt
from ..transforms.api import check_output_leaves
from . import cache, control_flow
from .control_flow import executable_for, structural_key
from .cuda_runtime import backend as cuda_backend, device_kind

# --- jit_call_p ---------------------------------------------------------------------------

jit_call_p = Primitive("jit_call", multiple_results=True)


def _jit_call_impl(*bufs, program, name):
    del name  # unused
    return executable_for(program, device_kind(bufs)).run(*bufs)


def _jit_call_abstract_eval(*avals, program, name):
    del name  # unused
    if len(avals) != len(program.in_binders):
        raise TypeError(f"jit_call: {len(avals)} operands for a program of "
                        f"{len(program.in_binders)} inputs")
    return [ShapedArray(x.aval.shape, x.aval.dtype) for x in program.outs]


# Derived programs (jvp / vmap / partial eval / transpose of a jit_call program), keyed by the
# program's STRUCTURE: re-tracing a function, or two functions with the same body, transform
# once. Values are what the fnx.transforms.program_transforms function returned.
_derived = collections.OrderedDict()
_MAX_DERIVED = 1024


def _memo(program, key, build):
    full = (structural_key(program), key)
    hit = _derived.get(full)
    if hit is None:
        hit = _derived[full] = build()
        if len(_derived) > _MAX_DERIVED:
            _derived.popitem(last=False)
    else:
        _derived.move_to_end(full)
    return hit


def _call(closed, args, name):
    """Bind jit_call_p on a ClosedProgram: its constants become leading operands."""
    return jit_call_p.bind(*closed.consts, *args, program=closed.program, name=name)


def _shaped(x):
    a = get_aval(x)
    return ShapedArray(a.shape, a.dtype, a.weak_type)


def _jit_call_jvp(primals, tangents, *, program, name):
    nz_in = tuple(type(t) is not Zero for t in tangents)
    jprog, nz_out = _memo(program, ("jvp", nz_in), lambda: pt.jvp_program(program, nz_in))
    outs = _call(jprog, [*primals, *[t for t in tangents if type(t) is not Zero]], name)
    n = len(program.outs)
    it = iter(outs[n:])
    return outs[:n], [next(it) if nz else Zero(_shaped(o))
                      for nz, o in zip(nz_out, outs[:n], strict=True)]


def _jit_call_batch(axis_size, args, dims, *, program, name):
    dims = tuple(dims)
    bprog, out_dims = _memo(program, ("vmap", dims, axis_size),
                            lambda: pt.vmap_program(program, axis_size, dims))
    return _call(bprog, args, name), list(out_dims)


def _jit_call_partial_eval(trace, tracers, *, program, name):
    unknowns = tuple(t.pval.is_unknown for t in tracers)
    known, unknown, out_unknowns, num_res = _memo(
        program, ("pe", unknowns), lambda: pt.partial_eval_program(program, unknowns))
    known_vals = [t.pval.const for t, u in zip(tracers, unknowns) if not u]
    res_out = _call(known, known_vals, name)
    n_known = len(res_out) - num_res
    known_outs, res = res_out[:n_known], res_out[n_known:]
    if any(out_unknowns):
        ins = ([trace.instantiate_const(trace.lift(c)) for c in unknown.consts]
               + [trace.instantiate_const(trace.lift(r)) for r in res]
               + [trace.instantiate_const(t) for t, u in zip(tracers, unknowns) if u])
        unk_outs = trace.default_process(jit_call_p, ins,
                                         dict(program=unknown.program, name=name))
    else:
        unk_outs = []
    ko, uo = iter(known_outs), iter(unk_outs)
    return [next(uo) if u else trace.lift(next(ko)) for u in out_unknowns]


def _jit_call_transpose(cts, *args, program, name):
    undefined = tuple(is_undefined(a) for a in args)
    cts = [instantiate(c) if type(c) is Zero else c for c in cts]
    tprog = _memo(program, ("T", undefined), lambda: pt.transpose_program(program, undefined))
    res = [a for a in args if not is_undefined(a)]
    outs = iter(_call(tprog, [*res, *cts], name))
    return [next(outs) if u else None for u in undefined]


jit_call_p.impl = _jit_call_impl
jit_call_p.abstract_eval = _jit_call_abstract_eval
jit_call_p.weak_type_rule = lambda weak, *, program, name: [x.aval.weak_type
                                                           for x in program.outs]
jit_call_p.jvp = _jit_call_jvp
jit_call_p.batch = _jit_call_batch
jit_call_p.partial_eval = _jit_call_partial_eval
jit_call_p.transpose = _jit_call_transpose
jit_call_p.fusion_kind = "opaque"  # inlined into the caller by passes.inline_jit_calls

# --- jit ----------------------------------------------------------------------------------


def _is_stateful(x):
    return getattr(type(x), "_fnx_stateful", False)


def _is_reference(x):
    return getattr(type(x), "_fnx_reference", False)


def _stateful_sizes(tree):
    """Leaf counts of the stateful objects (Modules) among ``tree``'s pieces, None for the
    other pieces (single leaves), in flatten order."""
    pieces = tree_flatten(tree, is_leaf=_is_stateful)[0]
    return [len(tree_flatten(p)[0]) if _is_stateful(p) else None for p in pieces]


def _rebound_leaves(tree, sizes, leaves, name):
    """``(leaf index, new value)`` for every leaf of a stateful argument that the traced call
    rebound (``self.running_mean = new`` in a Module)."""
    pieces = tree_flatten(tree, is_leaf=_is_stateful)[0]
    out, start = [], 0
    for piece, size in zip(pieces, sizes, strict=True):
        if size is None:
            start += 1
            continue
        now = tree_flatten(piece)[0]
        if len(now) != size:
            raise FnxError(
                f"jit({name}): the call changed the structure of a {type(piece).__name__} "
                f"argument (it had {size} arrays, now {len(now)}); register every parameter "
                f"and buffer before calling a compiled function")
        out += [(start + j, v) for j, v in enumerate(now) if v is not leaves[start + j]]
        start += size
    return out


def _write_back(entry, outs, leaves, dyn_args, as_array):
    """Write the rebound state outputs into the caller's objects: in place into concrete
    arrays (every holder sees them), else by rebinding the leaf in its stateful object."""
    n = len(outs) - len(entry.state_index)
    for index, value in zip(entry.state_index, outs[n:], strict=True):
        old = leaves[index]
        value = as_array(value)
        if type(old) is Array and type(value) is Array:
            old._set_buffer(value._buf)
        else:
            _rebind_leaf(dyn_args, index, value)
    return outs[:n]


def _rebind_leaf(dyn_args, index, value):
    pieces = tree_flatten(dyn_args, is_leaf=_is_stateful)[0]
    start = 0
    for piece in pieces:
        size = len(tree_flatten(piece)[0]) if _is_stateful(piece) else 1
        if index < start + size:
            piece._fnx_set_leaf(index - start, value)
            return
        start += size


def _journal_allowed():
    """Whether a jit traced now may run PyTorch-style stateful code (fnx.core.state): at the
    top level, or inside other such jit traces; not under grad/vmap/make_ir, whose values
    cannot be written into user objects."""
    for main in tracing._state.stack[1:]:
        if main.trace_type is not StagingTrace or \
                getattr(main.global_data, "journal", None) is None:
            return False
    return True


def _with_originals(dyn, leaves, builder):
    """``dyn`` (the call's dynamic arguments) with every stateful object (a Module) passed as
    ITSELF, its arrays standing for the trace's input values (so an optimizer holding the
    same parameters sees the same values), and every other leaf replaced by its input.
    Returns the arguments and ``(leaf index, array)`` of the stateful objects' leaves."""
    pieces, ptree = tree_flatten(dyn, is_leaf=_is_stateful)
    it = iter(enumerate(leaves))
    new_pieces, owned = [], []
    for piece in pieces:
        if not _is_stateful(piece):
            tracer = next(it)[1]
            if type(piece) is Array and piece._autograd is not None:
                tracer._autograd = piece._autograd  # an input that requires grad stays one
            new_pieces.append(tracer)
            continue
        for orig in tree_flatten(piece)[0]:
            index, tracer = next(it)
            if type(orig) is Array:
                builder.const_tracers[id(orig)] = tracer
                tracer._autograd = orig._autograd
                owned.append((index, orig))
        new_pieces.append(piece)
    return tree_unflatten(ptree, new_pieces), tuple(owned)


def _is_value(x):
    return isinstance(x, (Array, Tracer))


class _StateRecord:
    """What a stateful trace (fnx.core.state.Journal) left for every call of its program:
    guards to check before, host inputs to refresh, state to write back and deferred calls to
    run after."""

    def __init__(self, journal, written_slots, written_arrays, owned):
        self.slots = [s for s in journal.slots.values()]  # every slot read or written
        self.written_slots = written_slots
        self.written_arrays = [array for array, _ in written_arrays]
        self.guards = journal.guards
        self.host_inputs = list(journal.host_inputs.values())
        self.deferred = journal.deferred
        self.ran_backward = journal.ran_backward
        writes = bool(self.slots or self.written_arrays or self.host_inputs or self.deferred)
        self.active = writes or bool(self.guards)
        # a stateful argument must hold the same arrays (the write-back targets them)
        self.owned = owned if writes else ()
        self.owned_flags = tuple(a.requires_grad for _, a in self.owned)
        # rebound attributes (state.is_rebound): guarded by structure, their arrays re-read
        # at every call (see link)
        self.by_structure = {id(s) for s in self.slots if state.is_rebound(s.name)}
        self.reread = ()
        self.array_slots = [None] * len(self.written_arrays)  # see link
        # registered buffers of the modules holding rebound attributes (read through the
        # registry too, whose guard is identity): an attribute set to one holds the buffer
        # itself after the call, not a copy of its value
        self.buffers = {id(b) for m in {id(s.owner): s.owner for s in self.slots
                                        if id(s) in self.by_structure}.values()
                        if _is_stateful(m) for b in m.buffers()}

    def link(self, consts, guards):
        """Tie the program's constants to the rebound attributes and the array-holding slots
        (``.grad``) they were read from: such a constant is re-read from the attribute or
        slot at every call. An attribute whose array the trace used by identity (its value
        read in Python or baked in as a literal, updated in place — except a slot's own array,
        written back into what the slot holds then —, or recorded on the tape: a parameter, a
        graph node) keeps an identity guard instead."""
        pos = {id(c): i for i, c in enumerate(consts)}
        # an array updated in place is written back into the array its slot holds now
        # (``.grad`` accumulated by backward(): see write_back); any other is pinned
        held = {id(s.original): s for s in self.slots
                if not state.is_rebound(s.name) and type(s.original) is Array}
        pinned = {id(ref()) for ref, _ in guards}
        pinned.update(id(a) for a in self.written_arrays if id(a) not in held)
        pinned.update(id(c) for c in consts if getattr(c, "_autograd", None) is not None)
        # the trace made one constant of one array however it reached it: an array that
        # several attributes (``self.h = self.c = zeros``) or an attribute and a registered
        # buffer or another slot hold cannot be re-read from one of them for all, so those
        # attributes keep identity guards (a re-trace once they part)
        pinned |= self.buffers
        holders = collections.Counter()
        for slot in self.slots:
            if state.is_rebound(slot.name):
                holders.update(id(x) for x in (state.array_leaves(slot.original) or ((),))[0])
            elif type(slot.original) is Array:
                holders[id(slot.original)] += 1
                # a slot holding an array (``.grad``, an optimizer's state entry) is re-read
                # too: gradient accumulation's zero_grad() + backward() makes a new ``.grad``
                # of the same kind every cycle, which an identity guard re-traced each time
                self.by_structure.add(id(slot))
        pinned.update(i for i, n in holders.items() if n > 1)
        reread = []
        for slot in self.slots:
            if id(slot) not in self.by_structure:
                continue
            leaves = (state.array_leaves(slot.original) or ((),))[0]
            if any(id(x) in pinned for x in leaves):
                self.by_structure.discard(id(slot))
                continue
            reread += [(pos[id(x)], slot, j) for j, x in enumerate(leaves) if id(x) in pos]
        self.reread = tuple(reread)
        self.array_slots = [s if s is not None and id(s) in self.by_structure else None
                            for s in (held.get(id(a)) for a in self.written_arrays)]

    def consts(self, consts):
        """The program's constants for this call: the arrays re-read from rebound attributes
        (``link``) in place of those the trace saw."""
        if not self.reread:
            return consts
        consts, now = list(consts), {}
        for i, slot, j in self.reread:
            leaves = now.get(id(slot))
            if leaves is None:
                leaves = now[id(slot)] = state.array_leaves(
                    state._read(slot.owner, slot.name))[0]
            consts[i] = leaves[j]
        return consts

    def outputs(self, journal_values):
        """The extra program outputs: written slots' and arrays' final values (every array
        of a rebound attribute), then the deferred calls' arrays."""
        slot_values, array_values, deferred_values = journal_values
        outs = []
        for slot, v in zip(self.written_slots, slot_values, strict=True):
            if state.is_rebound(slot.name):
                outs += [x for x in (state.array_leaves(v) or ((),))[0]
                         if _is_value(x) and id(x) not in self.buffers]
            elif _is_value(v):
                outs.append(v)
        return outs + list(array_values) + list(deferred_values)

    def failure(self, leaves):
        """Why this trace no longer fits the state (None when it does)."""
        for (index, array), flag in zip(self.owned, self.owned_flags, strict=True):
            if leaves[index] is not array:
                return "a stateful argument (Module) holds other arrays than when traced"
            if array.requires_grad != flag:
                return f"requires_grad of an argument's array {array.aval.str_short()} changed"
        for slot in self.slots:
            now = state._read(slot.owner, slot.name)
            if now is slot.original or (id(slot) in self.by_structure
                                        and state.same_structure(now, slot.original)):
                continue
            return (f"{state._describe(slot.owner, slot.name)} changed from "
                    f"{_kind(slot.original)} to {_kind(now)} since the trace")
        for description, fn, expected in self.guards:
            if fn() != expected:
                return description
        return None

    def refresh_inputs(self):
        for placeholder, getter in self.host_inputs:
            value = getter()
            if type(value) is float and value == placeholder._buf:
                continue  # unchanged (the common case: one number per hyperparameter)
            placeholder._set_buffer(np.asarray(state._as_float(value), dtype=np.float64))

    def write_back(self, outs):
        """Write the state outputs ``outs`` (buffers or Arrays after a run, tracers when this
        call is itself staged) into the objects, then run the deferred calls. Arrays updated
        in place are written first, so a slot's final value wins over an in-place update of
        the array it held (``zero_grad(set_to_none=False)`` then ``backward()``)."""
        it = iter(outs)
        slot_values = [_rebuild(s.current, it, self.buffers) if state.is_rebound(s.name)
                       else next(it) if _is_value(s.current) else s.current
                       for s in self.written_slots]
        for array, slot in zip(self.written_arrays, self.array_slots, strict=True):
            _assign(array if slot is None else state._read(slot.owner, slot.name), next(it))
        for slot, value in zip(self.written_slots, slot_values, strict=True):
            orig = slot.original
            if id(slot) in self.by_structure:
                orig = state._read(slot.owner, slot.name)  # the array this call re-read
            if not _is_value(slot.current) or state.is_rebound(slot.name):
                state.set(slot.owner, slot.name, value)
            elif type(orig) is Array and orig.shape == value.shape and \
                    orig.dtype == value.dtype and not slot.dropped:
                _assign(orig, value)  # in place: the next call finds the same object
                state.set(slot.owner, slot.name, orig)
            else:
                state.set(slot.owner, slot.name, value if isinstance(value, Tracer)
                          else wrap(value._buf if type(value) is Array else value))
        values = [v if isinstance(v, (Array, Tracer)) else wrap(v) for v in it]
        for fn, spec in self.deferred:
            args = [values[v] if kind == "array" else v for kind, v in spec]
            if not state.defer(fn, *args):
                fn(*args)


def _rebuild(traced, outs, buffers):
    """A rebound attribute's new value: ``traced`` (its value in the trace) with every traced
    array replaced by the next of ``outs`` as a new Array (as PyTorch's assignment: earlier
    values kept elsewhere are not overwritten), except the registered buffers (ids in
    ``buffers``): it holds those themselves, as an eager ``self.alias = self.rb``. An output
    of a call recorded on the tape keeps its autograd record where the traced value had one
    (``self.aux_loss = loss``), not where it was untracked (``self.last_hidden =
    h.detach()``)."""
    found = state.array_leaves(traced)
    if found is None:
        return traced  # no arrays (None, or the attribute deleted)
    leaves, tree = found
    new = []
    for x in leaves:
        if _is_value(x) and id(x) not in buffers:
            out = next(outs)
            if type(out) is Array and out._autograd is not None and \
                    getattr(x, "_autograd", None) is None:
                out = out._buf
            if not isinstance(out, (Array, Tracer)):
                out = (wrap_weak if x.aval.weak_type else wrap)(out)
            x = out
        new.append(x)
    return tree_unflatten(tree, new)


def _kind(value):
    if value is None or value is state.MISSING:
        return "absent" if value is state.MISSING else "None"
    if type(value) is Array:
        grad = " that requires grad" if value.requires_grad else ""
        return f"an array {value.aval.str_short()}{grad}"
    found = state.array_leaves(value)
    if found is not None:  # a rebound attribute's container: (h, c)
        return f"a {type(value).__name__} of " + ", ".join(
            _kind(x) if type(x) is Array else repr(x) for x in found[0])
    return f"a {type(value).__name__}"


def _assign(array, value):
    """Write ``value`` (a buffer or an Array after a run, a tracer when the call is staged)
    into ``array`` in place."""
    if isinstance(value, Tracer):
        array._replace(value, "a compiled function's state update")
        return
    buf = value._buf if type(value) is Array else value
    array._set_buffer(buf if buf.dtype == array._buf.dtype else buf.astype(array._buf.dtype))


class _Entry:
    """One trace of a jitted function: its Program, the arrays it reads at every call and
    the guards that say when it is stale.

    ``consts`` are the Arrays the function closed over (or read from globals): they are
    operands of every call, re-read whenever their ``_version`` moved (an in-place update or
    a donation), so ``w.mul_(5)`` is seen by the next call without a re-trace. ``guards`` are
    ``(weakref, version)`` for the live 0-d Arrays whose values the program baked in as
    literals (fusion and constant folding see them): an in-place update of one makes the
    entry stale and the call re-traces.

    Rebinding a name or attribute to a NEW Array is not seen by an eager call (the trace read
    the old object), as in JAX; pass such values as arguments. Under an enclosing transform
    (grad, vmap, an outer jit) an entry that read any outside array (``reads_state``) is
    re-traced at every call, since the closure may now hold that transform's tracers (a
    functional_call-style parameter swap); the compiled executables are still shared.
    """

    __slots__ = ("program", "consts", "guards", "out_tree", "state_index", "exe", "run",
                 "unflatten", "device", "_seen", "state", "n_out")

    def __init__(self, program, consts, guards, out_tree, device="cpu", state_index=(),
                 state_record=None, n_out=None):
        self.program, self.consts, self.out_tree = program, consts, out_tree
        # a PyTorch-style stateful trace (fnx.core.state); None for pure functions
        self.state = state_record if state_record is not None and state_record.active else None
        self.n_out = n_out  # the function's own outputs (the rest are state)
        # argument leaves inside stateful objects (Modules) that the call rebinds (BatchNorm's
        # running statistics): extra outputs, written back into the caller's objects
        self.state_index = state_index
        # arrays that died with the trace (temporaries) need no guard
        self.guards = tuple({id(r): (r, v) for r, v in guards if r() is not None}.values())
        if self.state is not None:
            self.state.link(consts, self.guards)
        self.device = device
        self.exe = self.run = self._seen = None
        # an output the program types as weak (computed from weak values only) comes back weak
        wraps = [wrap_weak if x.aval.weak_type else wrap for x in program.outs]
        if n_out is not None:
            wraps = wraps[:n_out]
        if out_tree.node is None:
            wrap0 = wraps[0]
            self.unflatten = lambda outs: wrap0(outs[0])
        else:
            self.unflatten = lambda outs: tree_unflatten(
                out_tree, [w(o) for w, o in zip(wraps, outs, strict=True)])

    @property
    def reads_state(self):
        """Whether the trace read arrays from outside its arguments (closures, globals).
        Guards of arrays that have died since (temporaries of the trace) are dropped."""
        if self.guards:
            self.guards = tuple(g for g in self.guards if g[0]() is not None)
        return bool(self.consts or self.guards or self.state is not None)

    def reads_autograd(self):
        """Whether a closed-over array has an autograd record (the tape must see the call)."""
        for c in self.consts:
            if type(c) is Array and c._autograd is not None:
                return True
        return False

    @property
    def holds_tracers(self):
        """Whether the trace closed over values of an enclosing transform: such an entry is
        valid for that one call only and is never cached."""
        return any(isinstance(c, Tracer) for c in self.consts)

    def executable(self):
        """The (structurally cached) executable; ``self.run(*bufs)`` passes the constants."""
        if self.exe is None:
            self.exe = executable_for(self.program, self.device)
            self._bind_consts()
        return self.exe

    def _bind_consts(self):
        for c in self.consts:
            if type(c._buf) is _DonatedBuffer:
                raise DonatedArrayError(c._buf._msg)
        cbufs = tuple(c._buf for c in self.consts)
        if self.device == "cuda":
            cbufs = tuple(cuda_backend().on_device(b) for b in cbufs)
        run = self.exe.run
        self.run = run if not cbufs else (lambda *bufs: run(*cbufs, *bufs))
        self._seen = tuple(c._version for c in self.consts)

    def current(self):
        """False when a baked-in literal was updated in place (the caller re-traces); re-binds
        the closed-over arrays that were."""
        for ref, v in self.guards:
            a = ref()
            if a is not None and a._version != v:
                return False
        if self.consts and self._seen is not None and \
                tuple([c._version for c in self.consts]) != self._seen:
            self._bind_consts()
        return True


class CacheInfo:
    """What a jitted function traced and compiled, and why each trace missed.

    ``executables_compiled`` / ``executables_reused`` count programs (the function's own and
    every control-flow sub-program) compiled vs. found in the structural executable cache.
    """

    def __init__(self, traces, hits, misses, kernels_compiled, kernels_loaded, kernels_reused,
                 executables_compiled=0, executables_reused=0):
        self.traces, self.hits, self.misses = traces, hits, misses
        self.kernels_compiled, self.kernels_loaded = kernels_compiled, kernels_loaded
        self.kernels_reused = kernels_reused
        self.executables_compiled = executables_compiled
        self.executables_reused = executables_reused

    def __repr__(self):
        return (f"CacheInfo(traces={self.traces}, hits={self.hits}, "
                f"kernels_compiled={self.kernels_compiled}, "
                f"kernels_loaded={self.kernels_loaded}, kernels_reused={self.kernels_reused}, "
                f"executables_compiled={self.executables_compiled}, "
                f"executables_reused={self.executables_reused}, misses={self.misses})")


class DonatedArrayError(FnxError, RuntimeError):
    """Raised when an Array donated to a jitted function is used again."""


class _DonatedBuffer:
    """Stands in for the buffer of a donated Array: every use raises DonatedArrayError."""

    __slots__ = ("_msg",)

    def __init__(self, fname, aval):
        object.__setattr__(self, "_msg", (
            f"this Array ({aval.str_short()}) was donated to jit({fname}) "
            f"(donate_argnums) and deleted by that call; use the function's output instead, "
            f"or drop the argument from donate_argnums to keep it"))

    def __getattr__(self, name):
        raise DonatedArrayError(self._msg)

    def __array__(self, *args, **kwargs):
        raise DonatedArrayError(self._msg)

    def __repr__(self):
        return "<donated buffer>"


_STAT_KEYS = ("kernels_compiled", "kernels_loaded", "kernels_reused")
_MAX_ENTRIES_PER_KEY = 8
_EXE_KEYS = ("executables_compiled", "executables_reused")


class Lowered:
    """``jit(f).lower(*args)``: ``.ir`` (optimised program), ``.kernels`` (fusion plan),
    ``.source`` (generated kernels + orchestrator); ``.compile()`` compiles ahead of time."""

    def __init__(self, jitted, entry):
        self._jitted, self._entry = jitted, entry

    @property
    def _exe(self):
        return self._jitted._compile(self._entry)

    ir = property(lambda self: self._exe.ir)
    kernels = property(lambda self: self._exe.kernels)
    source = property(lambda self: self._exe.source)
    plan = property(lambda self: self._exe.plan)
    traced_ir = property(lambda self: pp_program(self._entry.program))

    def compile(self):
        self._jitted._compile(self._entry)
        return self._jitted

    def __repr__(self):
        return f"Lowered({self._jitted.__name__})\n{self.kernels}"


class JitFunction:
    """A compiled callable; see ``fnx.jit``."""

    def __init__(self, fun, static_argnums, static_argnames, donate_argnums,
                 specialize_python_ints=False):
        self.fun = fun
        # fnx.compile, as torch.compile: Python bools and ints are static (code branches on
        # flags and loops over counts); floats stay weakly typed inputs
        self._specialize = specialize_python_ints
        self.static_argnums = ((static_argnums,) if isinstance(static_argnums, int)
                               else tuple(static_argnums))
        self.static_argnames = ((static_argnames,) if isinstance(static_argnames, str)
                                else tuple(static_argnames))
        self.donate_argnums = ((donate_argnums,) if isinstance(donate_argnums, int)
                               else tuple(donate_argnums))
        self.__name__ = getattr(fun, "__name__", "fun")
        self.__doc__ = getattr(fun, "__doc__", None)
        self.__wrapped__ = fun
        self._entries = {}
        self._fast = {}
        self._fast_stateful = {}  # fast key -> the _entries list of that signature
        self._last_key = None
        self._stats = {"traces": 0, "hits": 0, "misses": [], "kernels_compiled": 0,
                       "kernels_loaded": 0, "kernels_reused": 0, "executables_compiled": 0,
                       "executables_reused": 0}
        try:
            self._sig = inspect.signature(fun)
        except (TypeError, ValueError):
            self._sig = None
        self._link_static_names()
        self._simple = (not self.static_argnums and not self.static_argnames
                        and not self.donate_argnums)

    def _link_static_names(self):
        """As in JAX, a static argument is static however it is passed: infer the names of
        ``static_argnums`` and the positions of ``static_argnames`` from the signature."""
        if self._sig is None:
            return
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY)
        positional = [p for p in self._sig.parameters.values() if p.kind in kinds]
        names = list(self.static_argnames)
        nums = list(self.static_argnums)
        if not any(p.kind is inspect.Parameter.VAR_POSITIONAL
                   for p in self._sig.parameters.values()):
            nums = [i + len(positional) if i < 0 else i for i in nums]
        for i in list(nums):
            if 0 <= i < len(positional) and positional[i].kind is kinds[0]:
                names.append(positional[i].name)
        for i, p in enumerate(positional):
            if p.name in names:
                nums.append(i)
        self.static_argnames = tuple(dict.fromkeys(names))
        self.static_argnums = tuple(dict.fromkeys(nums))

    def __get__(self, obj, objtype=None):
        return self if obj is None else functools.partial(self, obj)

    def __call__(self, *args, **kwargs):
        if self._simple and not kwargs and tracing._state.eager:
            try:
                key = tuple([(a._buf.shape, a._buf.dtype, type(a._buf), a._weak,
                               a._autograd is None) for a in args])
            except AttributeError:
                key = None
            entry = self._fast.get(key) if key is not None else None
            if entry is not None and entry.current() and not entry.reads_autograd():
                self._stats["hits"] += 1
                return entry.unflatten(entry.run(*[a._buf for a in args]))
            # a compiled PyTorch-style step: the traces of this signature, most recent first
            kept = self._fast_stateful.get(key, ()) if key is not None else ()
            for entry in kept:
                if entry.state is not None and entry.state.failure(args) is None and \
                        entry.current():
                    self._stats["hits"] += 1
                    if kept[0] is not entry:  # most recently used first
                        kept.remove(entry)
                        kept.insert(0, entry)
                    return self._call_stateful(entry, args)
        with cache.paused_gc():  # a trace and compile: see paused_gc
            return self._call_slow(args, kwargs)

    # --- the general path ------------------------------------------------------------------
    def _split(self, args, kwargs):
        static = self.static_argnums
        nargs = len(args)
        static = tuple(a + nargs if a < 0 else a for a in static)
        # stateful objects that are not pytrees (an optimizer, a scheduler, a generator) are
        # passed by reference: static by identity, their state read through fnx.core.state
        static += tuple(i for i, a in enumerate(args) if self._by_value(a) and i not in static)
        dyn_args = tuple(a for i, a in enumerate(args) if i not in static)
        static_vals = tuple((i, args[i]) for i in static if i < nargs)
        dyn_kwargs = {k: v for k, v in kwargs.items()
                      if k not in self.static_argnames and not self._by_value(v)}
        static_kw = tuple(sorted(((k, v) for k, v in kwargs.items() if k not in dyn_kwargs),
                                 key=lambda kv: kv[0]))
        return dyn_args, dyn_kwargs, static_vals + static_kw, static

    def _by_value(self, x):
        """Arguments that are static without being named so: stateful references, and
        Python bools/ints under fnx.compile."""
        return _is_reference(x) or (self._specialize and type(x) in (bool, int))

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
        # weak types key the trace too: f(x, 2) and f(x, np.int64(2)) promote differently;
        # and whether stateful code may run (at the top level, not under grad/vmap)
        key = (in_tree, tuple((a.shape, a.dtype) for a in avals), devs, statics,
               tuple(a.weak_type for a in avals), _journal_allowed())
        return key, leaves, in_tree, avals, static_pos

    def _miss_reason(self, key):
        last = self._last_key
        if last is None:
            return "first call"
        if key == last:
            return "the last trace held an enclosing transform's values and was not kept"
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
        if key[4] != last[4]:
            reasons.append("new weak types (Python scalars vs arrays) "
                           f"{[i for i, w in enumerate(key[4]) if w]}")
        if key[5] != last[5]:
            reasons.append("called at the top level after a call under grad/vmap, or back")
        return "; ".join(reasons) or "new signature"

    def _get_entry(self, args, kwargs):
        key, leaves, in_tree, avals, static_pos = self._trace_key(args, kwargs)
        entry, reason = self._find_entry(key, leaves)
        if entry is None:
            self._stats["misses"].append(reason or self._miss_reason(key))
            device = "cuda" if any(d.startswith("cuda") for d in key[2]) else "cpu"
            entry = self._trace(args, kwargs, in_tree, avals, static_pos, device,
                                stateful=key[5])
            if not entry.holds_tracers:
                # a few traces per signature: a step alternating train()/eval(), or the first
                # step creating gradients and optimizer state, keeps each compiled program
                kept = self._entries.setdefault(key, [])
                kept.insert(0, entry)
                del kept[_MAX_ENTRIES_PER_KEY:]
            self._stats["traces"] += 1
        else:
            self._stats["hits"] += 1
            tracing.note_inlined(entry.guards)  # an enclosing trace bakes them in too
        self._last_key = key
        return entry, leaves, key

    def _find_entry(self, key, leaves):
        """The kept trace of ``key`` that is still valid, or ``(None, why not)``."""
        reason = None
        for entry in list(self._entries.get(key, ())):
            if not entry.current():
                reason = "a 0-d array the program baked in as a constant was updated in place"
                self._forget(key, entry)
                continue
            if entry.reads_state and not tracing._state.eager:
                return None, ("called under a transform, and the trace read arrays outside "
                              "its arguments")
            if entry.state is not None:
                why = entry.state.failure(leaves)
                if why is not None:
                    reason = reason or why  # the most recently used trace's reason
                    continue
                kept = self._entries[key]
                if kept[0] is not entry:
                    kept.remove(entry)
                    kept.insert(0, entry)
            return entry, None
        return None, reason

    def _forget(self, key, entry):
        kept = self._entries.get(key, [])
        if entry in kept:
            kept.remove(entry)
        for k in [k for k, e in self._fast.items() if e is entry]:
            del self._fast[k]

    def _trace(self, args, kwargs, in_tree, avals, static_pos, device="cpu", stateful=False):
        store = []
        nargs = len(args)
        original = self._split(args, kwargs)[:2]

        def flat_f(*leaves):
            journal, owned = None, ()
            if stateful:
                main = tracing.current_dynamic()
                journal = main.global_data.journal = state.Journal(main, tracing._state.journal)
                (dyn_args, dyn_kwargs), owned = _with_originals(original, leaves,
                                                                main.global_data)
            else:
                dyn_args, dyn_kwargs = tree_unflatten(in_tree, list(leaves))
            it = iter(dyn_args)
            full = [args[i] if i in static_pos else next(it) for i in range(nargs)]
            kw = {k: dyn_kwargs.get(k, kwargs[k]) for k in kwargs}
            if journal is None:
                sizes = _stateful_sizes((dyn_args, dyn_kwargs))
                out = self.fun(*full, **kw)
            else:
                st = tracing._state
                prev, st.journal = st.journal, journal
                try:
                    for piece in tree_flatten((dyn_args, dyn_kwargs), is_leaf=_is_stateful)[0]:
                        if _is_stateful(piece):
                            piece._fnx_track_state()  # arrays in its plain attributes
                    journal.watch_function(self.fun)  # objects and lists its code names
                    out = self.fun(*full, **kw)
                finally:
                    st.journal = prev
                    written_slots, written_arrays = journal.finish()
            out_leaves, out_tree = tree_flatten(out)
            outs = check_output_leaves(out_leaves, out_tree, f"jit({self.__name__})")
            if journal is not None:
                record = _StateRecord(journal, written_slots, written_arrays, owned)
                store.append((out_tree, (), record, len(outs)))
                return outs + record.outputs(([s.current for s in written_slots],
                                              [v for _, v in written_arrays],
                                              journal.deferred_values))
            rebound = _rebound_leaves((dyn_args, dyn_kwargs), sizes, leaves, self.__name__)
            store.append((out_tree, tuple(i for i, _ in rebound), None, None))
            return outs + [v for _, v in rebound]

        try:
            with tracing.watch_inlined() as guards:
                program, consts = make_program(flat_f, list(avals))
        except ConcretizationError as err:
            raise ConcretizationError(
                f"in the function {self.__name__!r} compiled by fnx.jit: {err}") from None
        out_tree, state_index, record, n_out = store[-1]
        return _Entry(program, consts, guards, out_tree, device, state_index, record, n_out)

    def _call_slow(self, args, kwargs):
        entry, leaves, key = self._get_entry(args, kwargs)
        if entry.state is not None:
            if self._simple and not kwargs and key in self._entries and \
                    all(type(a) is Array for a in args):
                self._fast_stateful[tuple((a._buf.shape, a._buf.dtype, type(a._buf), a._weak,
                                           a._autograd is None) for a in args)] = \
                    self._entries[key]
            return self._call_stateful(entry, leaves)
        eager = tracing._state.eager and not any(isinstance(x, Tracer) for x in leaves) \
            and not entry.reads_autograd() and not any(
                type(x) is Array and x._autograd is not None for x in leaves)
        if eager:
            self._compile(entry)
            if self._simple and not kwargs and all(type(a) is Array for a in args):
                self._fast[tuple((a._buf.shape, a._buf.dtype, type(a._buf), a._weak,
                                  a._autograd is None) for a in args)] = entry
            outs = entry.run(*[x._buf for x in leaves])
            if entry.state_index:
                outs = _write_back(entry, outs, leaves, self._split(args, kwargs)[:2], wrap)
            if self.donate_argnums:
                self._donate(args, kwargs)
            return entry.unflatten(outs)
        # under a transform, or with autograd-tracked operands (the eager tape records the
        # call as one node): the higher-order primitive
        outs = jit_call_p.bind(*entry.consts, *leaves, program=entry.program, name=self.__name__)
        if entry.state_index:
            outs = _write_back(entry, list(outs), leaves, self._split(args, kwargs)[:2],
                               lambda v: v)
        return tree_unflatten(entry.out_tree, list(outs))

    def _call_stateful(self, entry, leaves):
        """Run a PyTorch-style trace: refresh the numbers it reads from Python state, run,
        write the state outputs back into the objects, run the deferred host calls."""
        record = entry.state
        record.refresh_inputs()
        concrete = tracing._state.eager and not any(isinstance(x, Tracer) for x in leaves)
        n = entry.n_out
        # code that ran backward() inside returns values without history (its graph was
        # used up); otherwise tracked operands make the call one node of the eager tape
        tracked = not record.ran_backward and (entry.reads_autograd() or any(
            type(x) is Array and x._autograd is not None for x in leaves))
        if concrete and not tracked:
            exe = self._compile(entry)
            # the state arrays change at every call: pass their buffers, no re-binding
            cbufs = [c._buf for c in record.consts(entry.consts)]
            if entry.device == "cuda":
                cbufs = [cuda_backend().on_device(b) for b in cbufs]
            outs = exe.run(*cbufs, *[x._buf for x in leaves])
            record.write_back(outs[n:])
            return entry.unflatten(outs[:n])
        outs = jit_call_p.bind(*record.consts(entry.consts), *leaves, program=entry.program,
                               name=self.__name__)
        record.write_back(list(outs[n:]))
        return tree_unflatten(entry.out_tree, list(outs[:n]))

    def _compile(self, entry):
        """Build ``entry``'s executable once, counting what was compiled into cache_info."""
        if entry.exe is None:
            before, before_exe = dict(cache.STATS), dict(control_flow.STATS)
            entry.executable()
            for k in _STAT_KEYS:
                self._stats[k] += cache.STATS[k] - before[k]
            for k in _EXE_KEYS:
                self._stats[k] += control_flow.STATS[k] - before_exe[k]
        return entry.exe

    def _donate(self, args, kwargs):
        """Delete the Arrays passed at ``donate_argnums``, by position or by name (after the
        call succeeded): their buffers are released and every later use raises."""
        nargs = len(args)
        donated = []
        for i in self.donate_argnums:
            j = i + nargs if i < 0 else i
            if 0 <= j < nargs and j not in self.static_argnums:
                donated.append(args[j])
            elif self._sig is not None and i >= 0:
                params = list(self._sig.parameters)
                if i < len(params) and params[i] in kwargs:
                    donated.append(kwargs[params[i]])
        for leaf in tree_flatten(donated)[0]:
            if type(leaf) is Array and not isinstance(leaf._buf, _DonatedBuffer):
                leaf._set_buffer(_DonatedBuffer(self.__name__, leaf.aval))

    # --- introspection ---------------------------------------------------------------------
    def lower(self, *args, **kwargs):
        entry, _, _ = self._get_entry(args, kwargs)
        return Lowered(self, entry)

    def cache_info(self):
        s = self._stats
        return CacheInfo(s["traces"], s["hits"], list(s["misses"]), s["kernels_compiled"],
                         s["kernels_loaded"], s["kernels_reused"], s["executables_compiled"],
                         s["executables_reused"])

    def clear_cache(self):
        self._entries.clear()
        self._fast.clear()
        self._fast_stateful.clear()
        self._last_key = None

    def __repr__(self):
        return f"<fnx.jit of {self.__name__}>"


def jit(f=None, *, static_argnums=(), static_argnames=(), donate_argnums=()):
    """Compile ``f`` (a function of pytrees of arrays) into fused Numba kernels.

    Traces are cached by pytree structure, shapes, dtypes, devices and static values; the
    native kernels are keyed by dtypes, ranks and broadcast pattern only, so a new batch size
    retraces (milliseconds) but compiles nothing new. Compiled executables are cached by the
    STRUCTURE of the traced program (``control_flow.structural_key``), so two functions with
    the same body, or an unchanged ``scan``/``while``/``cond`` body under a new batch size,
    share one executable. Control flow compiles natively: each branch / loop body is compiled
    once and called from a loop in the orchestrator (never unrolled).

    ``donate_argnums`` (int or tuple of positional indices): after a successful top-level
    call, every Array in those arguments (pytrees included) is deleted: its buffer is
    released and any later use raises ``DonatedArrayError``. The outputs are still freshly
    allocated (buffers are not yet written in place), so donation frees the input's memory as
    soon as the call returns but does not lower the call's peak memory. Under an outer
    transform (grad, vmap, an enclosing jit) donation is ignored, as in JAX.

    >>> f = fnx.jit(lambda x: fnx.numpy.tanh(x) * 2.0); f(fnx.numpy.zeros(3)).tolist()
    [0.0, 0.0, 0.0]
    """
    if f is None:
        return functools.partial(jit, static_argnums=static_argnums,
                                 static_argnames=static_argnames, donate_argnums=donate_argnums)
    return JitFunction(f, static_argnums, static_argnames, donate_argnums)


def compile(model=None, *, fullgraph=False, dynamic=None, backend="fnx", mode=None,  # noqa: A001
            options=None, disable=False):
    """``torch.compile`` for fnx: a function becomes ``fnx.jit(function)`` (a PyTorch-style
    training step, with ``zero_grad``/``backward``/``step`` inside, compiles into one program
    that updates the model, its gradients and the optimizer in place); a Module becomes a
    Module whose forward is compiled (its parameters are the original's).

    torch's tuning keywords (``fullgraph``, ``dynamic``, ``backend``, ``mode``, ``options``)
    are accepted and ignored: fnx always compiles the whole function, and a new input shape
    re-traces. ``disable=True`` returns ``model`` unchanged.

    >>> model = fnx.nn.Linear(3, 2)
    >>> fast = fnx.compile(model)
    >>> x = fnx.ones(4, 3)
    >>> bool(fnx.numpy.allclose(fast(x), model(x), atol=1e-6))
    True
    """
    del fullgraph, dynamic, backend, mode, options  # unused: see the docstring
    if model is None:
        return functools.partial(compile, disable=disable)
    if disable:
        return model
    hook = getattr(model, "_fnx_compile", None)  # a Module wraps itself (fnx.nn)
    if hook is not None:
        return hook()
    if not callable(model):
        raise TypeError(f"fnx.compile expects a function or an fnx.nn.Module, got "
                        f"{type(model).__name__}")
    return JitFunction(model, (), (), (), specialize_python_ints=True)


__all__ = ["jit", "compile", "jit_call_p", "JitFunction", "Lowered", "CacheInfo",
           "DonatedArrayError"]
