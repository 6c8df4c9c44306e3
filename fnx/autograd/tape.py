"""The eager autograd tape: PyTorch's ``loss.backward()`` on fnx's one source of derivatives.

Recording: every eager primitive call with an input that requires grad (and grad mode on)
becomes a ``Node`` holding the primitive, its params, the inputs' autograd records and their
buffers at that moment; the outputs get records pointing at the node (``grad_fn``). Arrays
that require nothing pay one ``_autograd is None`` test per operand.

Backward: the nodes reachable from the roots ARE a program. ``backward`` writes them as an
fnx ``Program`` (the recorded buffers are its inputs), takes its VJP with the primitives' own
JVP and transpose rules (``fnx.vjp``), and runs that as one compiled ``jit_call``, cached by
the program's structure: a training loop's backward is one fused, compiled call from the
second step on. With ``create_graph=True`` that call is itself recorded, so gradients of
gradients work; without it the call runs with grad mode off.
"""

import collections
import itertools
import threading

import numpy as np

from fnx.core import state, tracing
from fnx.core.abstract import ShapedArray
from fnx.core.array import Array, AutogradMeta, wrap
from fnx.core.ir import ClosedProgram, Eqn, Program, Var, eval_program, make_program
from fnx.core.ops.elementwise import add_p, convert_element_type_p
from fnx.jit.api import jit_call_p
from fnx.jit.control_flow import structural_key
from fnx.transforms.custom import recorded_value_p

__all__ = ["Node", "backward", "grad", "is_grad_enabled", "set_grad_enabled", "no_grad",
           "enable_grad", "inference_mode"]


# --- grad mode (per thread, as PyTorch) -------------------------------------------------------


class _Mode(threading.local):
    enabled = True


_mode = _Mode()


def is_grad_enabled():
    """Whether eager operations are recorded for ``backward`` in this thread.

    >>> fnx.is_grad_enabled()
    True
    """
    return _mode.enabled


class set_grad_enabled:
    """Turn recording on or off: as a function call, a context manager or a decorator.

    >>> with fnx.set_grad_enabled(False):
    ...     fnx.is_grad_enabled()
    False
    """

    def __init__(self, mode):
        self.prev = _mode.enabled
        self.mode = bool(mode)
        _mode.enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev

    def __call__(self, fn):
        import functools

        mode = self.mode
        _mode.enabled = self.prev  # used as a decorator: the construction must not stick

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper


class _ModeContext:
    """Base of ``no_grad``/``enable_grad``: a context manager and a decorator."""

    mode = True

    def __enter__(self):
        self.prev = _mode.enabled
        _mode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _mode.enabled = self.prev

    def __call__(self, fn):
        import functools

        ctx = type(self)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with ctx():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_ModeContext):
    """Operations inside are not recorded (evaluation, optimizer updates).

    >>> w = fnx.ones(2, requires_grad=True)
    >>> with fnx.no_grad():
    ...     y = w * 2
    >>> y.requires_grad
    False
    """

    mode = False


class enable_grad(_ModeContext):
    """Re-enables recording inside a ``no_grad`` block.

    >>> with fnx.no_grad():
    ...     with fnx.enable_grad():
    ...         fnx.is_grad_enabled()
    True
    """

    mode = True


class inference_mode(_ModeContext):
    """As ``no_grad`` (fnx arrays carry no version-counter cost to skip).

    >>> with fnx.inference_mode():
    ...     fnx.is_grad_enabled()
    False
    """

    def __init__(self, mode=True):
        self.mode = not mode


# --- recording -------------------------------------------------------------------------------


_node_seq = itertools.count()


def _camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


class Node:
    """One recorded primitive application (an array's ``grad_fn``)."""

    __slots__ = ("primitive", "params", "in_metas", "bufs", "out_avals", "seq", "__weakref__")

    def __init__(self, primitive, params, in_metas, bufs, out_avals):
        self.primitive, self.params = primitive, params
        self.in_metas, self.bufs, self.out_avals = in_metas, bufs, out_avals
        self.seq = next(_node_seq)  # creation order is a topological order

    def name(self):
        """PyTorch-style name for debugging, e.g. ``'MulBackward'``."""
        return f"{_camel(self.primitive.name)}Backward"

    @property
    def next_functions(self):
        """``(grad_fn or None, output index)`` per input, as torch's graph introspection."""
        return tuple((None, 0) if m is None else (m.grad_fn, m.output_nr or 0)
                     for m in self.in_metas)

    def __repr__(self):
        return f"<{self.name()}>"


def _record(primitive, params, args, bufs, out):
    # ``args``/``bufs`` are Arrays and their buffers eagerly, the staged values themselves
    # inside a compiled step (fnx.core.state): the tape records and differentiates both
    if not _mode.enabled or not primitive.differentiable:
        return
    metas = [getattr(a, "_autograd", None) for a in args]
    metas = [m if m is not None and m.requires_grad else None for m in metas]
    if not any(metas):
        return
    outs = out if primitive.multiple_results else [out]
    node = Node(primitive, params, metas, bufs, [o.aval for o in outs])
    for i, o in enumerate(outs):
        if o.dtype.kind in "fc":
            meta = o._autograd = AutogradMeta(True)
            meta.grad_fn, meta.output_nr = node, i


tracing.set_eager_recorder(_record)


# --- backward -----------------------------------------------------------------------------------

_FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors "
    "after they have already been freed). Saved intermediate values of the graph are freed "
    "when you call .backward() or autograd.grad(). Specify retain_graph=True if you need to "
    "backward through the graph a second time or if you need to access saved tensors after "
    "calling backward.")


def _collect(roots, cuts=frozenset()):
    """The nodes reachable from ``roots`` (metas) without passing a meta in ``cuts``,
    producers before consumers."""
    order, state = [], {}
    for root in roots:
        if root.grad_fn is None:
            continue
        stack = [(root.grad_fn, False)]
        while stack:
            node, done = stack.pop()
            key = id(node)
            if done:
                if state[key] != 2:
                    state[key] = 2
                    order.append(node)
                continue
            if key in state:
                continue
            if node.bufs is None:
                raise RuntimeError(_FREED)
            state[key] = 1
            stack.append((node, True))
            for m in node.in_metas:
                if m is not None and m.grad_fn is not None and id(m) not in cuts and \
                        id(m.grad_fn) not in state:
                    stack.append((m.grad_fn, False))
    return order


class _Graph:
    """The recorded nodes between ``roots`` and the leaves as one Program. Its inputs are the
    differentiated leaves (one per distinct buffer: a leaf updated in place between uses is
    two inputs; a value in ``cuts`` counts as a leaf), then ``delta`` inputs added to the
    non-leaf targets (the gradient in ``delta`` is the gradient in that value), then the
    constants (operands that require no grad). ``roots``: ``(meta, buffer)`` pairs."""

    def __init__(self, roots, targets, cuts, reuse_recorded=True):
        self.nodes = _collect([m for m, _ in roots], cuts)
        self.leaf_vars, self.leaf_metas, self.leaf_bufs = [], [], []
        self.const_vars, self.const_bufs = [], []
        self.delta_vars, self.delta_metas = [], []
        leaf_index, const_index, produced, recorded = {}, {}, {}, {}
        wanted = {(id(m.grad_fn), m.output_nr): m for m in targets if m.grad_fn is not None}
        eqns = []

        def operand(meta, buf):
            if meta is None:
                if id(buf) not in const_index:
                    const_index[id(buf)] = v = Var(ShapedArray(buf.shape, buf.dtype))
                    self.const_vars.append(v)
                    self.const_bufs.append(buf)
                return const_index[id(buf)]
            if meta.grad_fn is None or id(meta) in cuts:
                key = (id(meta), id(buf))
                if key not in leaf_index:
                    leaf_index[key] = v = Var(ShapedArray(buf.shape, buf.dtype))
                    self.leaf_vars.append(v)
                    self.leaf_metas.append(meta)
                    self.leaf_bufs.append(buf)
                return leaf_index[key]
            value = produced[id(meta.grad_fn), meta.output_nr]
            if not reuse_recorded or buf is None:
                return value
            # the recorded buffer stands for the value (recorded_value_p): the backward
            # program does not compute the forward pass again
            key = (id(meta), id(buf))
            if key not in recorded:
                saved = Var(ShapedArray(buf.shape, buf.dtype))
                self.const_vars.append(saved)
                self.const_bufs.append(buf)
                recorded[key] = Var(value.aval)
                eqns.append(Eqn(recorded_value_p, [value, saved], {}, [recorded[key]]))
            return recorded[key]

        for node in self.nodes:
            ins = [operand(m, b) for m, b in zip(node.in_metas, node.bufs, strict=True)]
            outs = [Var(a) for a in node.out_avals]
            eqns.append(Eqn(node.primitive, ins, node.params, outs))
            for i, v in enumerate(outs):
                produced[id(node), i] = v
                meta = wanted.get((id(node), i))
                if meta is not None:
                    delta, shifted = Var(v.aval), Var(v.aval)
                    eqns.append(Eqn(add_p, [v, delta], {}, [shifted]))
                    produced[id(node), i] = shifted
                    self.delta_vars.append(delta)
                    self.delta_metas.append(meta)
        outs = [produced[id(m.grad_fn), m.output_nr] if m.grad_fn is not None and
                id(m) not in cuts else operand(m, buf) for m, buf in roots]
        self.program = Program(self.leaf_vars + self.delta_vars + self.const_vars, eqns, outs)


# backward programs by forward structure; bounded, since a graph holding Python callables
# (custom rules) is keyed by their identity and may be new on every step
_vjp_programs = collections.OrderedDict()
_MAX_VJP_PROGRAMS = 256


def _vjp_program(program, n_diff):
    """``(diff..., consts..., cts...) -> grads of diff``, staged once per program structure."""
    key = (structural_key(program), n_diff)
    closed = _vjp_programs.get(key)
    if closed is not None:
        _vjp_programs.move_to_end(key)
    else:
        from fnx.transforms.api import vjp

        n_in = len(program.in_binders)

        def f(*args):
            diff, rest = args[:n_diff], args[n_diff:n_in]
            cts = args[n_in:]
            _, pullback = vjp(lambda *d: eval_program(program, [*d, *rest]), *diff)
            return list(pullback(list(cts)))

        avals = [v.aval for v in program.in_binders] + [x.aval for x in program.outs]
        prog, consts = make_program(f, avals)
        closed = _vjp_programs[key] = ClosedProgram(prog, consts)
        if len(_vjp_programs) > _MAX_VJP_PROGRAMS:
            _vjp_programs.popitem(last=False)
    return closed


def _phase(roots, root_cts, targets, cuts, create_graph):
    """One compiled backward from ``roots`` to the leaves, stopping at ``cuts``: gradients
    by id(meta) for the targets and the cut values reached; the graph's nodes. With
    ``create_graph`` the forward is recomputed from the leaves inside the recorded call, so
    higher derivatives see every path; otherwise the recorded buffers are reused."""
    graph = _Graph(roots, targets, cuts, reuse_recorded=not create_graph)
    diff_metas = graph.leaf_metas + graph.delta_metas
    if not diff_metas:
        return {}, graph.nodes
    closed = _vjp_program(graph.program, len(diff_metas))

    def operand(buf, meta):
        a = _as_value(buf)
        if create_graph and meta is not None:
            a._autograd = meta  # the recorded backward call links to the same leaf
        return a

    diff_vals = [operand(b, m) for b, m in zip(graph.leaf_bufs, graph.leaf_metas, strict=True)]
    diff_vals += [wrap(np.zeros(v.aval.shape, v.aval.dtype)) for v in graph.delta_vars]
    const_vals = [_as_value(b) for b in graph.const_bufs]
    with set_grad_enabled(create_graph):
        grads = jit_call_p.bind(*closed.consts, *diff_vals, *const_vals, *root_cts,
                                program=closed.program, name="backward")
    out = {}
    for meta, g in zip(diff_metas, grads, strict=True):
        key = id(meta)
        out[key] = g if key not in out else out[key] + g
    return out, graph.nodes


def _hooked_values(metas):
    """The non-leaf values under ``metas`` that carry hooks (``register_hook``)."""
    found = {}
    for node in _collect(metas):
        for m in node.in_metas:
            if m is not None and m.grad_fn is not None and m.hooks:
                found[id(m)] = m
    for m in metas:
        if m.grad_fn is not None and m.hooks:
            found[id(m)] = m
    return found


def _run_hooks(meta, g):
    for hook in list(meta.hooks.values()):
        if type(hook) is _GroupHook:
            continue  # runs once for its whole group, after every member's own hooks
        new = hook(g)
        if new is not None:
            g = new
    return g


class _GroupHook:
    """``fn(grads) -> None or replacements`` over several values at once (a Module's inputs
    or its outputs, see ``hooked_identity``), stored in each member's ``hooks``."""

    __slots__ = ("metas", "fn")

    def __init__(self, metas, fn):
        self.metas, self.fn = metas, fn


def _group_of(meta):
    return next((h for h in meta.hooks.values() if type(h) is _GroupHook), None)


def _run_group(group, grads):
    """Call a group hook with its members' gradients (``None`` where none arrived) and store
    its replacements; a ``None`` replacement stops that member's gradient."""
    old = [grads.get(id(m)) for m in group.metas]
    new = group.fn(old)
    if new is None:
        return
    for m, g_old, g in zip(group.metas, old, new, strict=True):
        if g is None:
            grads.pop(id(m), None)
        elif not isinstance(g, Array) or (g_old is not None and g.shape != g_old.shape):
            want = "an fnx Array" if g_old is None else f"an fnx Array of shape {g_old.shape}"
            raise RuntimeError(f"backward hook returned {type(g).__name__} "
                               f"{getattr(g, 'shape', '')} where {want} was expected")
        else:
            grads[id(m)] = g


def hooked_identity(tensors, fn):
    """``tensors`` passed through an identity the tape records, so that during backward
    ``fn(grads)`` runs once with the gradients of all of them (a tuple, ``None`` for an array
    that requires no grad or gets none) and may return a tuple of replacements. The mechanism
    of ``Module.register_full_backward_hook``, as torch's ``BackwardHookFunction``.

    >>> x = fnx.tensor([1.0, 2.0], requires_grad=True)
    >>> (y,) = fnx.autograd.tape.hooked_identity([x], lambda gs: (gs[0] * 10,))
    >>> (y * y).sum().backward(); x.grad.tolist()
    [20.0, 40.0]
    """
    out, metas, positions = list(tensors), [], []
    for i, t in enumerate(tensors):
        meta = getattr(t, "_autograd", None)
        if meta is None or not meta.requires_grad or not _mode.enabled:
            continue
        if type(t) is Array:
            node = Node(convert_element_type_p, {"new_dtype": t.dtype}, [meta], [t._buf],
                        [ShapedArray(t.shape, t.dtype)])
            new = out[i] = wrap(t._buf)  # in-place updates replace buffers: sharing is safe
            new._autograd = m = AutogradMeta(True)
            m.grad_fn = node
        else:  # a staged value of a compiled step: the identity is staged and recorded
            new = out[i] = convert_element_type_p.bind(t, new_dtype=t.dtype)
            m = new._autograd
        m.hooks = {}
        metas.append(m)
        positions.append(i)

    def member_fn(grads):
        full = [None] * len(out)
        for i, g in zip(positions, grads, strict=True):
            full[i] = g
        new = fn(tuple(full))
        if new is None:
            return None
        if len(new) != len(out):
            raise RuntimeError(f"backward hook returned {len(new)} gradients, expected "
                               f"{len(out)}")
        return [new[i] for i in positions]

    group = _GroupHook(metas, member_fn)
    for m in metas:
        m.hooks[id(group)] = group
    return out


def _add(grads, key, g):
    grads[key] = g if key not in grads else grads[key] + g


def _run_backward(roots, root_cts, targets, retain_graph, create_graph):
    """Gradients of the arrays ``roots`` with cotangents ``root_cts`` for the leaf and
    non-leaf ``targets`` (metas): a dict id(meta) -> gradient (summed over a leaf's buffers).

    Without hooks on intermediate values this is one compiled call. A hooked value cuts the
    graph: the part above it runs first, then its hooks see its complete gradient (hooked
    values are taken latest-created first, so every contribution has arrived) and the part
    below runs from it with the gradient the hooks returned."""
    metas = [t._autograd for t in roots]
    hooked = _hooked_values(metas)
    grads, nodes = {}, []
    pending = [((m, _buffer(t)), c) for m, t, c in zip(metas, roots, root_cts, strict=True)]
    processed = set()
    while True:
        if pending:
            cuts = frozenset(k for k in hooked if k not in processed)
            wanted = [m for m in targets + list(hooked.values()) if id(m) not in processed]
            found, phase_nodes = _phase([r for r, _ in pending], [c for _, c in pending],
                                        wanted, cuts, create_graph)
            nodes += phase_nodes
            for key, g in found.items():
                _add(grads, key, g)
        ready = sorted((m for k, m in hooked.items() if k not in processed and k in grads),
                       key=lambda m: m.grad_fn.seq, reverse=True)
        if not ready:
            break
        # a group (a Module's inputs or outputs) is complete when its latest member is: the
        # values between its members' creation are the group's own
        group = _group_of(ready[0])
        members = [ready[0]] if group is None else group.metas
        for m in members:
            processed.add(id(m))
            if id(m) in grads:
                grads[id(m)] = _run_hooks(m, grads[id(m)])
        if group is not None:
            _run_group(group, grads)
        pending = [((m, None), grads[id(m)]) for m in members if id(m) in grads]
    if not retain_graph:
        for node in nodes:
            # a view's node keeps its operands, as torch's view nodes save no tensors: its
            # outputs hold that memory already, and a second backward through it works
            # (a, b = x.unbind(0); a.sum().backward(); b.sum().backward(): one split node)
            if node.primitive.call_kind != "view":
                node.bufs = None
    return grads


def _root_ct(tensor, gradient, what):
    meta = getattr(tensor, "_autograd", None)
    if meta is None or not meta.requires_grad:
        raise RuntimeError(f"{what}: element 0 of tensors does not require grad and does not "
                           f"have a grad_fn")
    if gradient is None:
        if int(np.prod(tensor.shape)) != 1:
            raise RuntimeError(f"{what}: grad can be implicitly created only for scalar "
                               f"outputs; pass gradient= (an array of shape {tensor.shape})")
        ct = wrap(np.ones(tensor.shape, tensor.dtype))
    else:
        ct = gradient if isinstance(gradient, Array) else wrap(np.asarray(gradient, tensor.dtype))
        if ct.shape != tensor.shape:
            raise RuntimeError(f"{what}: gradient has shape {ct.shape}, but the output has "
                               f"shape {tensor.shape}")
    return ct


# One lock for ``.grad`` read-add-write: backward passes running in several threads on a
# shared model must not lose each other's accumulations (PyTorch locks per variable).
_accumulate_lock = threading.Lock()


def _accumulate(meta, g, create_graph):
    if meta.hooks and meta.grad_fn is None:  # a non-leaf's hooks ran during backward
        g = _run_hooks(meta, g)
    with _accumulate_lock:
        _add_to_grad(meta, g, create_graph)


def _add_to_grad(meta, g, create_graph):
    old = state.get(meta, "grad")
    if old is None:
        state.set(meta, "grad", g)
    elif type(old) is Array and not create_graph and old._autograd is None and \
            old.dtype == g.dtype:
        # in place, as PyTorch: holders of .grad see it (staged inside a compiled step)
        if type(g) is Array:
            old._set_buffer((old + g)._buf)
        else:
            old._replace(old + g, "gradient accumulation")
    else:
        state.set(meta, "grad", old + g)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate into ``.grad`` of every leaf the ``tensors`` depend on (``torch.autograd
    .backward``); ``tensor.backward()`` calls this.

    >>> w = fnx.tensor([1.0, 2.0], requires_grad=True)
    >>> (w * w).sum().backward(); w.grad.tolist()
    [2.0, 4.0]
    """
    tensors = [tensors] if isinstance(tensors, Array) or not isinstance(tensors, (list, tuple)) \
        else list(tensors)
    if grad_tensors is None or type(grad_tensors) is Array:
        grad_tensors = [grad_tensors] * len(tensors) if grad_tensors is None else [grad_tensors]
    cts = [_root_ct(t, g, "backward") for t, g in zip(tensors, grad_tensors, strict=True)]
    retain_graph = create_graph if retain_graph is None else retain_graph
    _note_backward()
    if inputs is not None:
        inputs = [inputs] if isinstance(inputs, Array) else list(inputs)
        targets = [i._meta() for i in inputs]
    else:
        targets = _leaves_and_retained([t._autograd for t in tensors])
    grads = _run_backward(tensors, cts, targets, retain_graph, create_graph)
    for meta in targets:
        g = grads.get(id(meta))
        if g is None:
            continue
        if meta.grad_fn is None or meta.retains_grad or inputs is not None:
            _accumulate(meta, g if create_graph else _detached(g), create_graph)


def _detached(g):
    return wrap(g._buf) if type(g) is Array and g._autograd is not None else g


def _buffer(x):
    return x._buf if type(x) is Array else x


def _as_value(buf):
    """An operand of the backward call: a recorded buffer as an Array; a staged value (a
    compiled step's) as it is."""
    return buf if isinstance(buf, Array) else wrap(buf)


def _note_backward():
    journal = state.active()
    if journal is not None:
        journal.ran_backward = True


def _leaves_and_retained(roots):
    """The requires-grad leaves under ``roots`` and the non-leaves that ``retain_grad()``."""
    out, seen = [], set()
    for root in roots:
        if root.grad_fn is None and id(root) not in seen:
            seen.add(id(root))
            out.append(root)
        if root.retains_grad and id(root) not in seen:
            seen.add(id(root))
            out.append(root)
    for node in _collect(roots):
        for m in node.in_metas:
            if m is not None and id(m) not in seen and (m.grad_fn is None or m.retains_grad):
                seen.add(id(m))
                out.append(m)
    return out


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs`` (``torch.autograd.grad``):
    returned, not accumulated. ``create_graph=True`` records them, for higher derivatives
    and gradient penalties.

    >>> x = fnx.tensor(3.0, requires_grad=True)
    >>> (dx,) = fnx.autograd.grad(x ** 3, x, create_graph=True)
    >>> (ddx,) = fnx.autograd.grad(dx, x); dx.item(), ddx.item()
    (27.0, 18.0)
    """
    single = isinstance(outputs, Array)
    outputs = [outputs] if single else list(outputs)
    inputs = [inputs] if isinstance(inputs, Array) else list(inputs)
    if grad_outputs is None or type(grad_outputs) is Array:
        grad_outputs = [grad_outputs] * len(outputs) if grad_outputs is None else [grad_outputs]
    cts = [_root_ct(t, g, "autograd.grad") for t, g in zip(outputs, grad_outputs, strict=True)]
    retain_graph = create_graph if retain_graph is None else retain_graph
    _note_backward()
    for i, x in enumerate(inputs):
        if getattr(x, "_autograd", None) is None or not x._autograd.requires_grad:
            raise RuntimeError(f"autograd.grad: input {i} does not require grad")
    targets = [x._autograd for x in inputs]
    grads = _run_backward(outputs, cts, targets, retain_graph, create_graph)
    result = []
    for i, (x, meta) in enumerate(zip(inputs, targets, strict=True)):
        g = grads.get(id(meta))
        if g is None:
            if materialize_grads:
                g = wrap(np.zeros(x.shape, x.dtype))
            elif not allow_unused:
                raise RuntimeError(f"autograd.grad: input {i} was not used in the graph of "
                                   f"the outputs; pass allow_unused=True to get None for it")
        elif not create_graph:
            g = _detached(g)
        result.append(g)
    return tuple(result)


class _HookHandle:
    """Returned by ``register_hook``; ``.remove()`` unregisters the hook."""

    _ids = iter(range(1 << 62))

    def __init__(self, hooks):
        self.hooks, self.id = hooks, next(self._ids)

    def remove(self):
        self.hooks.pop(self.id, None)


def register_hook(tensor, hook):
    """Run ``hook(grad)`` when ``tensor``'s gradient is computed (``Tensor.register_hook``);
    a returned array replaces the gradient.

    >>> w = fnx.tensor([1.0, 2.0], requires_grad=True)
    >>> h = w.register_hook(lambda g: g * 10); (w * w).sum().backward(); w.grad.tolist()
    [20.0, 40.0]
    """
    meta = getattr(tensor, "_autograd", None)
    if meta is None or not meta.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if meta.hooks is None:
        meta.hooks = {}
    handle = _HookHandle(meta.hooks)
    meta.hooks[handle.id] = hook
    return handle
