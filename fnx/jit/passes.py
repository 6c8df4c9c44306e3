"""IR passes run by jit before fusion: inlining of nested jit calls (and custom-rule /
checkpoint calls, constant-index conds), DCE, CSE, constant folding and algebraic
simplification, and the one-hot pick rewrite (``pick_onehot``: a cross-entropy's label
term as a gather). Each pass returns a new Program; ``optimize`` typechecks the result of the
pipeline once (after every pass it was ~0.15 s of a Transformer step's cold compile)."""

import numpy as np

from ..core.array import Array, wrap
from ..core.ir import ClosedProgram, Eqn, Literal, Program, Var, typecheck


def _subst(x, env):
    while isinstance(x, Var) and x in env:
        x = env[x]
    return x


def _rebuild(program, eqns, env):
    new_eqns = [Eqn(e.primitive, [_subst(x, env) for x in e.inputs], e.params, e.out_binders)
                for e in eqns]
    return Program(program.in_binders, new_eqns, [_subst(x, env) for x in program.outs])


def _inlinable(e):
    """``(program, inputs)`` to splice in place of equation ``e``, or None. Higher-order
    primitives that call one program (``prim.call_program``: custom rules, checkpoint) are
    spliced when it is constant-free: once compiled, no transform will see them again, so
    only their primal program matters."""
    from ..transforms.control_flow import cond_p
    from .api import jit_call_p

    p = e.primitive
    if p is jit_call_p:
        return e.params["program"], e.inputs
    if p.call_program is not None:
        closed = e.params[p.call_program]
        inputs = e.inputs
    elif p is cond_p and isinstance(e.inputs[0], Literal):
        # a constant branch index (e.g. a Python bool predicate): keep only that branch
        branches = e.params["branches"]
        i = min(max(int(_buf(e.inputs[0])), 0), len(branches) - 1)
        closed, inputs = branches[i], e.inputs[1:]
    else:
        return None
    if isinstance(closed, Program):
        return closed, inputs
    if isinstance(closed, ClosedProgram) and not closed.consts:
        return closed.program, inputs
    return None  # programs with constants stay calls (compiled by control_flow.runner)


def inline_jit_calls(program):
    """Splice nested ``jit_call`` programs into the caller (jit inside jit compiles as one),
    and likewise constant-free ``custom_jvp_call`` / ``custom_vjp_call`` / ``checkpoint``
    programs and ``cond``s with a constant index, so they fuse with their surroundings."""
    if not any(_inlinable(e) is not None for e in program.eqns):
        return program
    eqns, env = [], {}
    for e in program.eqns:
        found = _inlinable(e)
        if found is None:
            eqns.append(Eqn(e.primitive, [_subst(x, env) for x in e.inputs], e.params,
                            e.out_binders))
            continue
        inner = inline_jit_calls(found[0])
        inner_env = {v: _subst(x, env) for v, x in zip(inner.in_binders, found[1], strict=True)}
        ren = {}

        def read(x):
            if isinstance(x, Literal):
                return x
            return ren.get(x, inner_env.get(x, x))

        for ie in inner.eqns:
            outs = [Var(v.aval) for v in ie.out_binders]
            ren.update(zip(ie.out_binders, outs))
            eqns.append(Eqn(ie.primitive, [read(x) for x in ie.inputs], ie.params, outs))
        for v, x in zip(e.out_binders, inner.outs, strict=True):
            env[v] = read(x)
    return _rebuild(program, eqns, env)


def dce(program):
    """Drop equations whose results are never used (every primitive is pure)."""
    live = {x for x in program.outs if isinstance(x, Var)}
    kept = []
    for e in reversed(program.eqns):
        if any(v in live for v in e.out_binders):
            kept.append(e)
            live.update(x for x in e.inputs if isinstance(x, Var))
    kept.reverse()
    return _rebuild(program, kept, {})


def _lit_key(x):
    v = x.val._buf if type(x.val) is Array else np.asarray(x.val)
    return ("lit", v.dtype.str, v.shape, v.tobytes())


def _param_key(params):
    return tuple(sorted((k, v if not isinstance(v, np.ndarray) else v.tobytes())
                        for k, v in params.items()))


def cse(program):
    """Merge equations with the same primitive, inputs and params."""
    env, seen, eqns = {}, {}, []
    for e in program.eqns:
        ins = [_subst(x, env) for x in e.inputs]
        try:
            key = (e.primitive, tuple(_lit_key(x) if isinstance(x, Literal) else x for x in ins),
                   _param_key(e.params))
            hash(key)
        except TypeError:
            key = None
        if key is not None and key in seen:
            for v, w in zip(e.out_binders, seen[key], strict=True):
                env[v] = w
            continue
        if key is not None:
            seen[key] = e.out_binders
        eqns.append(Eqn(e.primitive, ins, e.params, e.out_binders))
    return _rebuild(program, eqns, env)


def _scalar_of(x, bcast):
    """The scalar Literal behind ``x`` (a Literal or a broadcast of one), else None."""
    if isinstance(x, Literal):
        return x if np.ndim(_buf(x)) == 0 else None
    return bcast.get(x)


def _buf(lit):
    return lit.val._buf if type(lit.val) is Array else np.asarray(lit.val)


def fold_constants(program):
    """Evaluate elementwise ops on scalar constants (or broadcasts of them) at compile time."""
    from ..core.ops.shape import broadcast_in_dim_p

    bcast, env, eqns = {}, {}, []
    for e in program.eqns:
        ins = [_subst(x, env) for x in e.inputs]
        if e.primitive is broadcast_in_dim_p and isinstance(ins[0], Literal) and \
                np.ndim(_buf(ins[0])) == 0:
            bcast[e.out_binders[0]] = ins[0]
        elif (e.primitive.fusion_kind == "elementwise" and ins and not
              e.primitive.multiple_results and
              all(_scalar_of(x, bcast) is not None for x in ins)):
            scalars = [_buf(_scalar_of(x, bcast)) for x in ins]
            with np.errstate(all="ignore"):
                val = np.asarray(e.primitive.impl(*scalars, **e.params))
            lit = Literal(wrap(val))
            out = e.out_binders[0]
            if out.aval.shape == ():
                env[out] = lit
                continue
            bcast[out] = lit
            e = Eqn(broadcast_in_dim_p, [lit], dict(shape=out.aval.shape,
                                                    broadcast_dimensions=()), [out])
            eqns.append(e)
            continue
        eqns.append(Eqn(e.primitive, ins, e.params, e.out_binders))
    return _rebuild(program, eqns, env)


def _is_value(lit, value):
    b = _buf(lit)
    return b.dtype.kind != "b" and bool(b == value)


def simplify(program):
    """x*1, x+0, x-0, x/1, converts to the same dtype, transpose of transpose, reshape of
    reshape and broadcast of broadcast."""
    from ..core.ops import elementwise as ew
    from ..core.ops import shape as sh

    bcast, producer, env, eqns = {}, {}, {}, []
    identities = {ew.mul_p: (1, (0, 1)), ew.add_p: (0, (0, 1)), ew.sub_p: (0, (1,)),
                  ew.div_p: (1, (1,))}
    for e in program.eqns:
        ins = [_subst(x, env) for x in e.inputs]
        p, out = e.primitive, e.out_binders[0] if e.out_binders else None
        if p is sh.broadcast_in_dim_p and isinstance(ins[0], Literal):  # noqa: SIM114
            bcast[out] = ins[0]
        if p in identities:
            value, positions = identities[p]
            for pos in positions:
                s = _scalar_of(ins[pos], bcast)
                other = ins[1 - pos]
                if s is not None and _is_value(s, value) and other.aval == out.aval:
                    env[out] = other
                    break
            if out in env:
                continue
        if p is ew.convert_element_type_p and ins[0].aval.dtype == e.params["new_dtype"]:
            env[out] = ins[0]
            continue
        if p in (sh.reshape_p, sh.squeeze_p) and ins[0].aval.shape == out.aval.shape:
            env[out] = ins[0]
            continue
        src = producer.get(ins[0]) if ins and isinstance(ins[0], Var) else None
        if p is sh.transpose_p and src is not None and src.primitive is sh.transpose_p:
            inner = src.params["permutation"]
            perm = tuple(inner[i] for i in e.params["permutation"])
            x = src.inputs[0]
            if perm == tuple(range(len(perm))):
                env[out] = x
                continue
            e = Eqn(sh.transpose_p, [x], dict(permutation=perm), [out])
            ins = [x]
        elif p is sh.reshape_p and src is not None and src.primitive in (sh.reshape_p,
                                                                          sh.squeeze_p):
            x = src.inputs[0]
            if x.aval.shape == out.aval.shape:
                env[out] = x
                continue
            ins = [x]
        elif p is sh.broadcast_in_dim_p and src is not None and \
                src.primitive is sh.broadcast_in_dim_p:
            dims = e.params["broadcast_dimensions"]
            inner = src.params["broadcast_dimensions"]
            x = src.inputs[0]
            new_dims = tuple(dims[d] for d in inner)
            # only compose when no size-1 dim of the middle value was expanded
            mid = ins[0].aval.shape
            if all(mid[i] == out.aval.shape[d] for i, d in enumerate(dims)):
                e = Eqn(sh.broadcast_in_dim_p, [x], dict(shape=out.aval.shape,
                                                        broadcast_dimensions=new_dims), [out])
                ins = [x]
                if isinstance(x, Literal):
                    bcast[out] = x
        for v in e.out_binders:
            producer[v] = e
        eqns.append(Eqn(e.primitive, ins, e.params, e.out_binders))
    return _rebuild(program, eqns, env)



# --- one-hot picks ----------------------------------------------------------------------------
#
# ``sum(z * (label[..., None] == iota), axis=-1)`` (a cross-entropy's label term) is a gather:
# ``z[..., label]``, 0 where the label is out of range. ``onehot_pick`` is that gather, an
# internal primitive that only this pass creates (after every transform has run); fusion lowers
# it in a ``row`` group as one scalar load per row (``loops``: statement kind ``pick``) instead
# of a compare, convert, multiply and add per element. The primitive lives with the other
# indexing primitives (fnx/core/ops/indexing.py).


from ..core.ops.indexing import onehot_pick_p  # noqa: E402


def _int_widening(src, dst):
    """Whether converting integer dtype ``src`` to ``dst`` keeps every value."""
    src, dst = np.dtype(src), np.dtype(dst)
    return src.kind in "iu" and dst.kind in "iu" and np.can_cast(src, dst, "safe")


def _iota_axis(x, producer):
    """The axis of ``x`` along which it is ``0, 1, .., n-1`` (an iota seen through broadcasts,
    unit reshapes and exact integer converts), constant along the others; else None."""
    from ..core.ops import elementwise as ew
    from ..core.ops import shape as sh
    from .fusion import _unit_reshape_map

    e = producer.get(x) if isinstance(x, Var) else None
    if e is None:
        return None
    p, src = e.primitive, (e.inputs[0] if e.inputs else None)
    shape = tuple(x.aval.shape)
    if p is sh.iota_p:
        a = e.params["dimension"]
        dt = np.dtype(e.params["dtype"])
        return a if dt.kind in "iu" and shape[a] - 1 <= np.iinfo(dt).max else None
    if p is ew.convert_element_type_p:
        a = _iota_axis(src, producer)
        dt = np.dtype(e.params["new_dtype"])
        ok = a is not None and src.aval.dtype.kind in "iu" and dt.kind in "iu" and \
            shape[a] - 1 <= np.iinfo(dt).max
        return a if ok else None
    if p is sh.broadcast_in_dim_p:
        a = _iota_axis(src, producer)
        if a is None:
            return None
        d = e.params["broadcast_dimensions"][a]
        return d if src.aval.shape[a] == shape[d] else None
    if p in (sh.reshape_p, sh.squeeze_p):
        a = _iota_axis(src, producer)
        m = _unit_reshape_map(src.aval.shape, shape) if a is not None else None
        return None if m is None or m[a] is None else m[a]
    return None


def _label_root(x, producer, last):
    """``(root, dims)`` when ``x`` is a Var ``root`` seen through broadcasts, unit reshapes and
    value-preserving integer converts that is constant along axis ``last`` of ``x``:
    ``dims[i]`` is the axis of ``x`` that ``root``'s axis i follows (None: a size-1 axis that
    does not). Else None."""
    from ..core.ops import elementwise as ew
    from ..core.ops import shape as sh
    from .fusion import _unit_reshape_map

    if not isinstance(x, Var):
        return None
    e = producer.get(x)
    shape = tuple(x.aval.shape)
    p = e.primitive if e is not None else None
    if p is ew.convert_element_type_p and _int_widening(e.inputs[0].aval.dtype, x.aval.dtype):
        return _label_root(e.inputs[0], producer, last)
    if p is sh.broadcast_in_dim_p or p in (sh.reshape_p, sh.squeeze_p):
        src = e.inputs[0]
        if p is sh.broadcast_in_dim_p:
            bd = e.params["broadcast_dimensions"]
            m = tuple(d if src.aval.shape[i] == shape[d] else None for i, d in enumerate(bd))
        else:
            m = _unit_reshape_map(src.aval.shape, shape)
        inner = _label_root(src, producer, None) if m is not None else None
        if inner is None:
            return None
        root, dims = inner
        dims = tuple(None if d is None else m[d] for d in dims)
    elif x.aval.dtype.kind in "iu":
        root, dims = x, tuple(i if s != 1 else None for i, s in enumerate(shape))
    else:
        return None
    if last is not None and (last in dims or np.dtype(root.aval.dtype).kind not in "iu"):
        return None
    return root, dims


def _through_layout(x, producer):
    """``(base, m)``: ``x`` is ``base`` seen through broadcasts and unit reshapes, base axis i
    at axis ``m[i]`` of ``x`` (None: a size-1 axis expanded)."""
    from ..core.ops import shape as sh
    from .fusion import _unit_reshape_map

    m = tuple(range(x.aval.ndim))
    while isinstance(x, Var):
        e = producer.get(x)
        if e is None or not isinstance(e.inputs[0] if e.inputs else None, Var):
            break
        src, shape = e.inputs[0], tuple(x.aval.shape)
        if e.primitive is sh.broadcast_in_dim_p:
            step = tuple(d if src.aval.shape[i] == shape[d] else None
                         for i, d in enumerate(e.params["broadcast_dimensions"]))
        elif e.primitive in (sh.reshape_p, sh.squeeze_p):
            step = _unit_reshape_map(src.aval.shape, shape)
            if step is None:
                break
        else:
            break
        x, m = src, tuple(None if d is None else m[d] for d in step)
    return x, m


def _pick_operands(e, producer, bcast):
    """``(z, root, dims)`` when reduce ``e`` sums ``z`` times a one-hot mask of a label over
    its last axis (``z * convert(label == iota)`` in either order, or ``select(label == iota,
    z, 0)``, the mask possibly broadcast); the label is ``root`` with its axis i at axis
    ``dims[i]`` of ``z`` (None: size 1). Else None."""
    from ..core.ops import elementwise as ew
    from ..core.ops import reduction as rd

    if e.primitive is not rd.reduce_sum_p:
        return None
    x = e.inputs[0]
    last = x.aval.ndim - 1
    if last < 0 or tuple(e.params["axes"]) != (last,) \
            or np.dtype(x.aval.dtype).kind not in "iuf" or x.aval.shape[last] == 0:
        return None
    q = producer.get(x)
    if q is None:
        return None
    cands = []  # (z, the boolean mask, its map into z's axes)
    if q.primitive is ew.mul_p:
        for zi in (0, 1):
            if not isinstance(q.inputs[1 - zi], Var):
                continue
            base, m1 = _through_layout(q.inputs[1 - zi], producer)
            c = producer.get(base)
            if c is not None and c.primitive is ew.convert_element_type_p and \
                    c.inputs[0].aval.dtype == np.dtype(bool):
                cands.append((q.inputs[zi], c.inputs[0], m1))
    elif q.primitive is ew.select_p:
        s = _scalar_of(q.inputs[2], bcast)
        if s is not None and _is_value(s, 0) and isinstance(q.inputs[0], Var):
            cands.append((q.inputs[1], q.inputs[0], tuple(range(x.aval.ndim))))
    for z, mask, m1 in cands:
        if not isinstance(mask, Var) or z.aval != x.aval:
            continue
        base, m2 = _through_layout(mask, producer)
        m = tuple(None if d is None else m1[d] for d in m2)  # eq's axes -> z's axes
        eq = producer.get(base)
        if eq is None or eq.primitive is not ew.eq_p:
            continue
        for li in (0, 1):
            lab, col = eq.inputs[li], eq.inputs[1 - li]
            a = _iota_axis(col, producer)
            if a is None or m[a] != last:
                continue
            found = _label_root(lab, producer, None)
            if found is None:
                continue
            root, dims = found
            dims = tuple(None if d is None else m[d] for d in dims)
            if last not in dims:
                return z, root, dims
    return None


def pick_onehot(program):
    """Rewrite ``sum(z * (label[..., None] == iota), axis=-1)`` (and the ``where(label ==
    iota, z, 0)`` form) into ``onehot_pick(z, label)``: one read of ``z`` per row instead of a
    compare, convert, multiply and add per element. Out-of-range labels (negative ones too)
    give 0, as the sum does. Unlike the product form, entries of ``z`` off the label do not
    propagate: an infinite or NaN ``z[j]`` with ``j != label`` no longer turns the sum into
    NaN (the ``where`` form never did). The unused mask is left to ``dce``."""
    from ..core.abstract import ShapedArray
    from ..core.ops import shape as sh

    producer, bcast = {}, {}
    for e in program.eqns:
        for v in e.out_binders:
            producer[v] = e
        if e.primitive is sh.broadcast_in_dim_p and isinstance(e.inputs[0], Literal):
            bcast[e.out_binders[0]] = e.inputs[0]
    eqns, changed = [], False
    for e in program.eqns:
        found = _pick_operands(e, producer, bcast)
        if found is None:
            eqns.append(e)
            continue
        z, root, dims = found
        out = e.out_binders[0]
        outer = tuple(out.aval.shape)
        # the label as an outer-shaped array: drop root's unit axes, then broadcast
        keep = [i for i, d in enumerate(dims) if d is not None]
        bd = tuple(dims[i] for i in keep)
        if list(bd) != sorted(set(bd)):  # (layout chains without transposes keep the order)
            eqns.append(e)
            continue
        lab = root
        squeezed = tuple(root.aval.shape[i] for i in keep)
        if squeezed != tuple(root.aval.shape):
            v = Var(ShapedArray(squeezed, root.aval.dtype))
            eqns.append(Eqn(sh.reshape_p, [lab], dict(new_sizes=squeezed), [v]))
            lab = v
        if squeezed != outer or bd != tuple(range(len(outer))):
            v = Var(ShapedArray(outer, root.aval.dtype))
            eqns.append(Eqn(sh.broadcast_in_dim_p, [lab], dict(shape=outer,
                                                               broadcast_dimensions=bd), [v]))
            lab = v
        eqns.append(Eqn(onehot_pick_p, [z, lab], {}, [out]))
        changed = True
    if not changed:
        return program
    return _rebuild(program, eqns, {})

def optimize(program):
    """The pass pipeline jit runs before fusion."""
    program = inline_jit_calls(program)
    program = simplify(fold_constants(program))
    inlined = inline_jit_calls(program)  # conds whose index folded to a constant
    if inlined is not program:
        program = simplify(fold_constants(inlined))
    program = dce(pick_onehot(cse(program)))
    typecheck(program)
    return program
