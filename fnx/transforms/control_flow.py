"""Structured control flow as higher-order primitives (Autodidax part 5): ``cond`` (also
``switch``), ``while`` and ``scan``. Each carries its sub-programs as ClosedProgram params and
has every rule: impl, abstract_eval, jvp, batch, partial_eval and (cond, scan) transpose.
The user-facing wrappers (``fnx.lax.cond`` ...) trace the Python callables once, hoist the
values they close over into ordinary operands, and bind the primitive.

Primitives and params (the jit compiler lowers these to native loops):

``cond_p.bind(index, *operands, branches)``
    ``index``: int32 scalar, clamped to ``[0, len(branches) - 1]`` by impl (and by ``switch``).
    ``branches``: tuple of ClosedProgram, each ``(*operands) -> outs``, identical in/out avals.
    ``fnx.lax.cond(pred, t, f)`` binds ``branches=(f, t)`` with ``index = int32(pred)``.

``while_p.bind(*cond_consts, *body_consts, *init, cond_program, body_program, cond_nconsts,
body_nconsts)``
    ``cond_program``: ``(*cond_consts, *carry) -> [bool scalar]``;
    ``body_program``: ``(*body_consts, *carry) -> carry`` (same avals). Outputs: final carry.
    No transpose: reverse mode raises an error pointing at scan / fori_loop.

``scan_p.bind(*consts, *init, *xs, program, num_consts, num_carry, length, reverse, unroll)``
    ``program``: ``(*consts, *carry, *x_slices) -> (*carry, *y_slices)``; every ``xs`` array
    has leading axis ``length`` and ``x_slices`` drop it. Outputs: ``(*final_carry, *ys)``
    where ``ys`` stack the per-iteration ``y_slices`` on a new leading axis of size
    ``length``. ``reverse=True`` runs iterations ``length-1 .. 0`` (ys stay indexed by
    iteration). ``unroll`` (int) is a hint for the compiler only.

Programs in these params have no constants of their own when built by the wrappers; rules
may produce ClosedPrograms whose constants are concrete arrays.
"""

import numpy as np

from ..core import dtypes
from ..core.abstract import ShapedArray, typematch
from ..core.ad_util import Zero, add_tangents, instantiate, is_undefined
from ..core.array import Array, wrap
from ..core.devices import array_module
from ..core.errors import DTypeError, ShapeError, TraceError
from ..core.ir import Var, to_shaped
from ..core.primitive import Primitive
from ..core.pytree import tree_flatten, tree_unflatten
from ..core.tracing import get_aval
from .program_transforms import (closed_call, dce_program, in_avals, jvp_program,
                                 out_avals, partial_eval_program, program_from_fun,
                                 reorder_program, trace_hoisted, transpose_program,
                                 vmap_program)
from .api import _as_arrays as as_arrays
from .vmap import move_batch_axis

__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan", "map",
           "cond_p", "while_p", "scan_p"]

INDEX_DTYPE = np.dtype(np.int32)


# --- helpers -----------------------------------------------------------------------------------


def _as_arrays(leaves, what, exact=True):
    return as_arrays(leaves, what, noun="operands", fix="close over non-array values instead",
                     lists=False, exact=exact)


def _trace_fun(f, in_tree, avals, what):
    """Trace ``f(*tree)`` at ``avals``: ``(program, consts, out_tree)`` (consts hoisted)."""
    store = []

    def flat_f(*leaves):
        out = f(*tree_unflatten(in_tree, list(leaves)))
        out_leaves, out_tree = tree_flatten(out)
        store.append(out_tree)
        return _as_arrays(out_leaves, what, exact=False)

    program, consts = trace_hoisted(flat_f, avals)
    return program, consts, store[-1]


def _same_types(avals, others):
    """Equal shapes and dtypes. Weak types may differ (a carry initialised from a Python scalar
    and updated with arrays); the weak types of the outputs follow the programs (each
    primitive's ``weak_type_rule``)."""
    avals, others = list(avals), list(others)
    return len(avals) == len(others) and all(
        typematch(a, b) for a, b in zip(avals, others, strict=True))


def _join_weak_carries(leaves, avals, outs):
    """JAX's rule for a loop carry that starts weakly typed (from a Python scalar): where its
    update has another dtype, the carry starts at the dtype they promote to, so
    ``scan(lambda c, x: (c + x, None), 0.0, float16_xs)`` carries float16, as the Python loop
    would. Returns ``(leaves, avals, changed)``; the caller re-traces when changed."""
    from ..core.ops.elementwise import convert_element_type, convert_element_type_p

    new_leaves, new_avals, changed = [], [], False
    for x, a, o in zip(leaves, avals, outs, strict=True):
        if a.weak_type and a.shape == o.shape and a.dtype != o.dtype:
            strong, weak = ([], [a.dtype, o.dtype]) if o.weak_type else ([o.dtype], [a.dtype])
            dt, still_weak = dtypes.result_dtype(strong, weak)
            if dt != a.dtype:  # else the update cannot be carried: the type check says so
                x = (convert_element_type_p.bind(x, new_dtype=dt, weak_type=True) if still_weak
                     else convert_element_type(x, dt))
                a, changed = get_aval(x), True
        new_leaves.append(x)
        new_avals.append(a)
    return new_leaves, new_avals, changed


def _avals_str(avals):
    return "(" + ", ".join(a.str_short() for a in avals) + ")"


def _out_leaves(vals):
    return [v._buf if type(v) is Array else np.asarray(v) for v in vals]


def _or(a, b):
    return [x or y for x, y in zip(a, b, strict=True)]


def _split(xs, *sizes):
    out, start = [], 0
    for n in sizes:
        out.append(list(xs[start:start + n]))
        start += n
    out.append(list(xs[start:]))
    return out


def _zeros(aval):
    return instantiate(Zero(aval))


def _bool_scalar(x, what):
    from ..core.ops.elementwise import convert_element_type, ne_p

    x = _as_arrays([x], what)[0]
    aval = get_aval(x)
    if aval.shape != ():
        raise ShapeError(f"{what}: the predicate must be a scalar, got shape {aval.shape}; "
                         f"reduce it (e.g. .any()) or use fnx.numpy.where for elementwise "
                         f"selection")
    if aval.dtype.kind == "b":
        return x
    if aval.dtype.kind not in "iuf":
        raise DTypeError(f"{what}: the predicate must be bool or a number, got {aval.dtype}")
    return ne_p.bind(x, convert_element_type(wrap(np.zeros((), aval.dtype)), aval.dtype))


# --- cond / switch -------------------------------------------------------------------------------

cond_p = Primitive("cond", multiple_results=True)


def _cond_abstract_eval(index, *operands, branches):
    if index.shape != () or index.dtype.kind not in "iu":
        raise DTypeError(f"cond: the branch index must be an integer scalar, got "
                         f"{index.str_short()}")
    ops = list(operands)
    outs0 = out_avals(branches[0])
    for i, br in enumerate(branches):
        if not _same_types(in_avals(br), ops):
            raise TypeError(f"cond: branch {i} takes {_avals_str(in_avals(br))} but the "
                            f"operands are {_avals_str(ops)}")
        if not _same_types(out_avals(br), outs0):
            raise TypeError(f"cond: branch outputs must have identical types, got "
                            f"{_avals_str(outs0)} from branch 0 and "
                            f"{_avals_str(out_avals(br))} from branch {i}")
    return list(outs0)


def _cond_impl(index, *operands, branches):
    i = min(max(int(index), 0), len(branches) - 1)
    return _out_leaves(closed_call(branches[i], [wrap(b) for b in operands]))


def _cond_jvp(primals, tangents, *, branches):
    index, ops = primals[0], primals[1:]
    op_tangents = tangents[1:]
    nz_in = [type(t) is not Zero for t in op_tangents]
    nz_out = [False] * len(out_avals(branches[0]))
    for br in branches:
        nz_out = _or(nz_out, jvp_program(br, nz_in, False)[1])
    new_branches = tuple(jvp_program(br, nz_in, nz_out)[0] for br in branches)
    outs = cond_p.bind(index, *ops, *[t for t in op_tangents if type(t) is not Zero],
                       branches=new_branches)
    n = len(nz_out)
    primals_out, it = outs[:n], iter(outs[n:])
    avals = out_avals(branches[0])
    return primals_out, [next(it) if nz else Zero(a) for nz, a in zip(nz_out, avals)]


def _cond_batch(axis_size, args, dims, *, branches):
    from ..core.ops.elementwise import eq_p, select_p
    from ..core.ops.shape import broadcast_in_dim

    index, ops = args[0], args[1:]
    index_dim, op_dims = dims[0], list(dims[1:])
    n_out = len(out_avals(branches[0]))
    if index_dim is not None:
        # Each example may take a different branch: run them all and select per example.
        index = move_batch_axis(axis_size, index_dim, 0, index)
        outs_per_branch = [closed_call(vmap_program(br, axis_size, op_dims, [0] * n_out)[0], ops)
                           for br in branches]
        outs = list(outs_per_branch[0])
        for i in range(1, len(branches)):
            is_i = eq_p.bind(index, wrap(np.full((axis_size,), i, get_aval(index).dtype)))
            for k, (cur, new) in enumerate(zip(outs, outs_per_branch[i], strict=True)):
                shape = get_aval(new).shape
                pred = broadcast_in_dim(is_i, shape, (0,))
                outs[k] = select_p.bind(pred, new, cur)
        return outs, [0] * n_out
    out_batched = [False] * n_out
    for br in branches:
        out_batched = _or(out_batched, [d is not None
                                        for d in vmap_program(br, axis_size, op_dims)[1]])
    wanted = [0 if b else None for b in out_batched]
    new_branches = tuple(vmap_program(br, axis_size, op_dims, wanted)[0] for br in branches)
    outs = cond_p.bind(index, *ops, branches=new_branches)
    return outs, wanted


def _join_residuals(knowns, n_known_out):
    """Known branches output (known outs, their residuals); make each output every branch's
    residual slots (zeros for the others') so all branches have one type (``_join_jaxpr_res``)."""
    res_avals = [out_avals(k)[n_known_out:] for k in knowns]
    joined = []
    for i, k in enumerate(knowns):
        def fun(*args, k=k, i=i):
            outs = closed_call(k, args)
            mine = outs[n_known_out:]
            res = []
            for j, avals in enumerate(res_avals):
                res.extend(mine if j == i else [_zeros(a) for a in avals])
            return outs[:n_known_out] + res
        joined.append(program_from_fun(fun, in_avals(k)))
    return tuple(joined), [a for avals in res_avals for a in avals]


def _cond_partial_eval(trace, tracers, *, branches):
    index, ops = tracers[0], tracers[1:]
    if index.pval.is_unknown:
        return trace.default_process(cond_p, tracers, {"branches": branches})
    ops_uk = [t.pval.is_unknown for t in ops]
    n_out = len(out_avals(branches[0]))
    out_uk = [False] * n_out
    for br in branches:
        out_uk = _or(out_uk, partial_eval_program(br, ops_uk, False)[2])
    splits = [partial_eval_program(br, ops_uk, out_uk) for br in branches]
    n_known_out = out_uk.count(False)
    known_branches, _ = _join_residuals([s[0] for s in splits], n_known_out)
    known_outs = cond_p.bind(index.pval.const, *[t.pval.const for t in ops if t.pval.is_known],
                             branches=known_branches)
    known_vals, residuals = known_outs[:n_known_out], known_outs[n_known_out:]
    # Unknown branch i reads its own slice of the joined residuals.
    num_res = [s[3] for s in splits]
    res_avals = [a for s in splits for a in in_avals(s[1])[:s[3]]]
    uk_avals = [t.aval for t in ops if t.pval.is_unknown]
    unknown_branches, start = [], 0
    for s, n in zip(splits, num_res, strict=True):
        def fun(*args, unknown=s[1], start=start, n=n):
            res, uk = args[:len(res_avals)], args[len(res_avals):]
            return closed_call(unknown, [*res[start:start + n], *uk])
        unknown_branches.append(program_from_fun(fun, res_avals + uk_avals))
        start += n
    if any(out_uk):
        res_tracers = [trace.lift(r) for r in residuals]
        uk_outs = trace.default_process(
            cond_p, [index, *res_tracers, *[t for t in ops if t.pval.is_unknown]],
            {"branches": tuple(unknown_branches)})
    else:
        uk_outs = []
    kv, uv = iter(known_vals), iter(uk_outs)
    return [next(uv) if uk else trace.lift(next(kv)) for uk in out_uk]


def _cond_transpose(cts, index, *ops, branches):
    if is_undefined(index):
        raise TraceError("cond: the branch index cannot be linear")
    mask = [is_undefined(x) for x in ops]
    cts = [_zeros(a) if type(ct) is Zero else ct for ct, a in zip(cts, out_avals(branches[0]))]
    new_branches = tuple(transpose_program(br, mask) for br in branches)
    cts_in = cond_p.bind(index, *[x for x in ops if not is_undefined(x)], *cts,
                         branches=new_branches)
    it = iter(cts_in)
    return [None] + [next(it) if lin else None for lin in mask]


cond_p.impl = _cond_impl
cond_p.abstract_eval = _cond_abstract_eval
# an output is weakly typed when it is in every branch
cond_p.weak_type_rule = lambda weak, *, branches: [
    all(flags) for flags in zip(*[[a.weak_type for a in out_avals(br)] for br in branches])]
cond_p.jvp = _cond_jvp
cond_p.batch = _cond_batch
cond_p.partial_eval = _cond_partial_eval
cond_p.transpose = _cond_transpose


def _trace_branches(funs, operands, what):
    leaves, in_tree = tree_flatten(tuple(operands))
    leaves = _as_arrays(leaves, what)
    avals = [get_aval(x) for x in leaves]  # a weak operand promotes in a branch as outside
    traced = [_trace_fun(f, in_tree, avals, what) for f in funs]
    out_tree = traced[0][2]
    for i, (prog, _, tree) in enumerate(traced):
        if tree != out_tree:
            raise TypeError(f"{what}: branch outputs must have the same pytree structure, got "
                            f"{out_tree} from branch 0 and {tree} from branch {i}")
        if not _same_types(out_avals(prog), out_avals(traced[0][0])):
            raise TypeError(f"{what}: branch outputs must have identical types (shapes and "
                            f"dtypes), got {_avals_str(out_avals(traced[0][0]))} from branch 0 "
                            f"and {_avals_str(out_avals(prog))} from branch {i}; convert with "
                            f".astype() or broadcast so they agree")
    # Every branch takes all branches' constants followed by the operands.
    all_consts = [c for _, consts, _ in traced for c in consts]
    const_avals = [to_shaped(c) for c in all_consts]
    branches, start = [], 0
    for prog, consts, _ in traced:
        def fun(*args, prog=prog, start=start, n=len(consts)):
            cs, ops = args[:len(const_avals)], args[len(const_avals):]
            return closed_call(prog, [*cs[start:start + n], *ops])
        branches.append(program_from_fun(fun, const_avals + avals))
        start += len(consts)
    return tuple(branches), all_consts + leaves, out_tree


def switch(index, branches, *operands):
    """Apply ``branches[index](*operands)``; ``index`` is clamped to the valid range.

    >>> fnx.lax.switch(1, [lambda x: x + 1.0, lambda x: x * 2.0], fnx.numpy.asarray(3.0)).item()
    6.0
    """
    from ..core.ops.elementwise import convert_element_type, max_p, min_p

    branches = list(branches)
    if not branches:
        raise ValueError("switch: at least one branch is required")
    index = _as_arrays([index], "switch")[0]
    aval = get_aval(index)
    if aval.shape != () or aval.dtype.kind not in "iub":
        raise TypeError(f"switch: the index must be an integer scalar, got {aval.str_short()}")
    index = convert_element_type(index, INDEX_DTYPE)
    if len(branches) == 1:
        return branches[0](*operands)
    index = max_p.bind(index, wrap(np.zeros((), INDEX_DTYPE)))
    index = min_p.bind(index, wrap(np.array(len(branches) - 1, INDEX_DTYPE)))
    progs, args, out_tree = _trace_branches(branches, operands, "switch")
    return tree_unflatten(out_tree, cond_p.bind(index, *args, branches=progs))


def cond(pred, true_fun, false_fun, *operands):
    """``true_fun(*operands)`` if ``pred`` else ``false_fun(*operands)``, as one staged
    primitive (both branches are traced; under vmap a batched ``pred`` selects per example).

    >>> fnx.lax.cond(True, lambda x: x + 1.0, lambda x: x - 1.0, fnx.numpy.asarray(1.0)).item()
    2.0
    """
    from ..core.ops.elementwise import convert_element_type

    if not callable(true_fun) or not callable(false_fun):
        raise TypeError("cond: true_fun and false_fun must be callables; pass operands after "
                        "them: cond(pred, true_fun, false_fun, *operands)")
    index = convert_element_type(_bool_scalar(pred, "cond"), INDEX_DTYPE)
    progs, args, out_tree = _trace_branches([false_fun, true_fun], operands, "cond")
    return tree_unflatten(out_tree, cond_p.bind(index, *args, branches=progs))


# --- while ------------------------------------------------------------------------------------

while_p = Primitive("while", multiple_results=True)

_WHILE_REVERSE_MSG = (
    "Reverse-mode differentiation does not work for fnx.lax.while_loop: its trip count is only "
    "known at run time, so the intermediate values cannot be saved. Use fnx.lax.scan, or "
    "fnx.lax.fori_loop with Python int bounds (it lowers to scan), or forward mode "
    "(fnx.jvp / fnx.jacfwd).")


def _while_abstract_eval(*args, cond_program, body_program, cond_nconsts, body_nconsts):
    cc, bc, init = _split(args, cond_nconsts, body_nconsts)
    if not _same_types(in_avals(cond_program), cc + init):
        raise TypeError(f"while: cond_program takes {_avals_str(in_avals(cond_program))}, got "
                        f"{_avals_str(cc + init)}")
    pred = out_avals(cond_program)
    if len(pred) != 1 or pred[0].shape != () or pred[0].dtype.kind != "b":
        raise TypeError(f"while_loop: cond_fun must return a boolean scalar, got "
                        f"{_avals_str(pred)}")
    if not _same_types(in_avals(body_program), bc + init):
        raise TypeError(f"while: body_program takes {_avals_str(in_avals(body_program))}, got "
                        f"{_avals_str(bc + init)}")
    if not _same_types(out_avals(body_program), init):
        raise TypeError(f"while_loop: body_fun output and input must have identical types, got "
                        f"input {_avals_str(init)} and output "
                        f"{_avals_str(out_avals(body_program))}")
    return list(init)


def _while_impl(*args, cond_program, body_program, cond_nconsts, body_nconsts):
    vals = [wrap(b) for b in args]
    cc, bc, carry = _split(vals, cond_nconsts, body_nconsts)
    while bool(closed_call(cond_program, [*cc, *carry])[0]._buf):
        carry = closed_call(body_program, [*bc, *carry])
    return _out_leaves(carry)


def _while_jvp(primals, tangents, *, cond_program, body_program, cond_nconsts, body_nconsts):
    cc, bc, init = _split(primals, cond_nconsts, body_nconsts)
    _, bc_t, init_t = _split(tangents, cond_nconsts, body_nconsts)
    bc_nz = [type(t) is not Zero for t in bc_t]
    carry_nz = [type(t) is not Zero for t in init_t]
    while True:
        _, nz_out = jvp_program(body_program, bc_nz + carry_nz, carry_nz)
        if nz_out == carry_nz:
            break
        carry_nz = _or(carry_nz, nz_out)
    body_jvp, _ = jvp_program(body_program, bc_nz + carry_nz, carry_nz)
    nb, nk, nbt, nkt = len(bc), len(init), sum(bc_nz), sum(carry_nz)
    # jvp order (bc, carry, bc_t, carry_t) -> while order (bc, bc_t, carry, carry_t)
    perm = (list(range(nb)) + list(range(nb + nk, nb + nk + nbt)) + list(range(nb, nb + nk))
            + list(range(nb + nk + nbt, nb + nk + nbt + nkt)))
    body_jvp = reorder_program(body_jvp, perm)
    carry_t_avals = [a for a, nz in zip(in_avals(body_program)[nb:], carry_nz) if nz]
    cond_jvp = program_from_fun(
        lambda *a: closed_call(cond_program, a[:cond_nconsts + nk]),
        list(in_avals(cond_program)) + carry_t_avals)
    carry_t = [instantiate(t) for t, nz in zip(init_t, carry_nz) if nz]
    outs = while_p.bind(*cc, *bc, *[t for t in bc_t if type(t) is not Zero], *init, *carry_t,
                        cond_program=cond_jvp, body_program=body_jvp,
                        cond_nconsts=cond_nconsts, body_nconsts=nb + nbt)
    it = iter(outs[nk:])
    return outs[:nk], [next(it) if nz else Zero(to_shaped(p)) for nz, p in zip(carry_nz, init)]


def _while_batch(axis_size, args, dims, *, cond_program, body_program, cond_nconsts,
                 body_nconsts):
    from ..core.ops.elementwise import select_p
    from ..core.ops.reduction import reduce_or_p
    from ..core.ops.shape import broadcast_in_dim

    args = [x if d is None else move_batch_axis(axis_size, d, 0, x) for x, d in zip(args, dims)]
    dims = [None if d is None else 0 for d in dims]
    cc, bc, init = _split(args, cond_nconsts, body_nconsts)
    cc_d, bc_d, init_d = _split(dims, cond_nconsts, body_nconsts)
    carry_b = [d is not None for d in init_d]
    while True:
        _, out_dims = vmap_program(body_program, axis_size,
                                   bc_d + [0 if b else None for b in carry_b])
        new_b = _or(carry_b, [d is not None for d in out_dims])
        _, (pred_d,) = vmap_program(cond_program, axis_size,
                                    cc_d + [0 if b else None for b in new_b])
        if pred_d is not None:
            new_b = [True] * len(new_b)  # a batched predicate makes every carry batched
        if new_b == carry_b:
            break
        carry_b = new_b
    carry_d = [0 if b else None for b in carry_b]
    init = [move_batch_axis(axis_size, d, 0, x) if b else x
            for x, d, b in zip(init, init_d, carry_b, strict=True)]
    body_b, _ = vmap_program(body_program, axis_size, bc_d + carry_d, carry_d)
    cond_b, (pred_d,) = vmap_program(cond_program, axis_size, cc_d + carry_d)
    if pred_d is None:
        outs = while_p.bind(*cc, *bc, *init, cond_program=cond_b, body_program=body_b,
                            cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
        return outs, carry_d
    # Batched predicate: loop while any example continues; finished examples keep their carry.
    nc, nb = len(cc), len(bc)
    cond_any = program_from_fun(
        lambda *a: [reduce_or_p.bind(closed_call(cond_b, a)[0], axes=(0,))], in_avals(cond_b))

    def body_fun(*a):
        c_consts, b_consts, carry = _split(a, nc, nb)
        pred = closed_call(cond_b, [*c_consts, *carry])[0]
        new = closed_call(body_b, [*b_consts, *carry])
        return [select_p.bind(broadcast_in_dim(pred, get_aval(n).shape, (0,)), n, c)
                for n, c in zip(new, carry, strict=True)]

    body_sel = program_from_fun(body_fun, in_avals(cond_b)[:nc] + list(in_avals(body_b)))
    outs = while_p.bind(*cc, *cc, *bc, *init, cond_program=cond_any, body_program=body_sel,
                        cond_nconsts=nc, body_nconsts=nc + nb)
    return outs, carry_d


def _while_partial_eval(trace, tracers, *, cond_program, body_program, cond_nconsts,
                        body_nconsts):
    """Known carries (those not depending on unknowns, with a known predicate) are computed by
    a known while; the unknown outputs come from the whole loop, recomputing the known part."""
    params = dict(cond_program=cond_program, body_program=body_program,
                  cond_nconsts=cond_nconsts, body_nconsts=body_nconsts)
    cc, bc, init = _split(tracers, cond_nconsts, body_nconsts)
    cc_uk = [t.pval.is_unknown for t in cc]
    bc_uk = [t.pval.is_unknown for t in bc]
    carry_uk = [t.pval.is_unknown for t in init]
    while True:
        _, _, out_uk, _ = partial_eval_program(body_program, bc_uk + carry_uk, carry_uk)
        if out_uk == carry_uk:
            break
        carry_uk = _or(carry_uk, out_uk)
    cond_known, _, (pred_uk,), cond_nres = partial_eval_program(cond_program, cc_uk + carry_uk)
    if pred_uk or all(carry_uk):
        return trace.default_process(while_p, tracers, params)
    body_known, _, _, body_nres = partial_eval_program(body_program, bc_uk + carry_uk, carry_uk)
    n_known = carry_uk.count(False)
    body_known, _ = dce_program(body_known, [True] * n_known + [False] * body_nres, True)
    cond_known, _ = dce_program(cond_known, [True] + [False] * cond_nres, True)
    known_cc = [t.pval.const for t in cc if t.pval.is_known]
    known_bc = [t.pval.const for t in bc if t.pval.is_known]
    known_init = [t.pval.const for t, uk in zip(init, carry_uk) if not uk]
    known_outs = while_p.bind(*known_cc, *known_bc, *known_init, cond_program=cond_known,
                              body_program=body_known, cond_nconsts=len(known_cc),
                              body_nconsts=len(known_bc))
    all_outs = trace.default_process(while_p, tracers, params)
    kv = iter(known_outs)
    return [o if uk else trace.lift(next(kv)) for o, uk in zip(all_outs, carry_uk, strict=True)]


def _while_transpose(cts, *args, **params):
    del cts, args, params  # unused
    raise TraceError(_WHILE_REVERSE_MSG)


while_p.impl = _while_impl
while_p.abstract_eval = _while_abstract_eval


def _while_weak_type_rule(weak, *, cond_program, body_program, cond_nconsts, body_nconsts):
    del weak, cond_program, cond_nconsts  # unused: the carry's traced types decide
    return [a.weak_type for a in in_avals(body_program)[body_nconsts:]]


while_p.weak_type_rule = _while_weak_type_rule
while_p.jvp = _while_jvp
while_p.batch = _while_batch
while_p.partial_eval = _while_partial_eval
while_p.transpose = _while_transpose


def while_loop(cond_fun, body_fun, init_val):
    """``val = init_val; while cond_fun(val): val = body_fun(val)``, as one staged primitive.

    Forward-mode differentiable and batchable; for reverse mode use ``scan`` or a
    ``fori_loop`` with Python int bounds.

    >>> fnx.lax.while_loop(lambda i: i < 10, lambda i: i + 3, 0).item()
    12
    """
    leaves, in_tree = tree_flatten(init_val)
    leaves = _as_arrays(leaves, "while_loop")
    avals = [get_aval(x) for x in leaves]
    arg_tree = tree_flatten((init_val,))[1]  # the functions take the carry as one argument
    body_prog, body_consts, body_tree = _trace_fun(body_fun, arg_tree, avals, "while_loop")
    if body_tree != in_tree:
        raise TypeError(f"while_loop: body_fun must return the same pytree structure as "
                        f"init_val, got {body_tree} for {in_tree}")
    leaves, avals, changed = _join_weak_carries(leaves, avals, out_avals(body_prog))
    if changed:
        body_prog, body_consts, _ = _trace_fun(body_fun, arg_tree, avals, "while_loop")
    cond_prog, cond_consts, cond_tree = _trace_fun(cond_fun, arg_tree, avals, "while_loop")
    pred = out_avals(cond_prog)
    if cond_tree.num_leaves != 1 or pred[0].shape != () or pred[0].dtype.kind != "b":
        raise TypeError(f"while_loop: cond_fun must return a boolean scalar, got "
                        f"{_avals_str(pred)}")
    if not _same_types(out_avals(body_prog), avals):
        raise TypeError(f"while_loop: body_fun output and input must have identical types, got "
                        f"input {_avals_str(avals)} and output "
                        f"{_avals_str(out_avals(body_prog))}; convert with .astype() so the "
                        f"carry keeps its shape and dtype")
    outs = while_p.bind(*cond_consts, *body_consts, *leaves, cond_program=cond_prog,
                        body_program=body_prog, cond_nconsts=len(cond_consts),
                        body_nconsts=len(body_consts))
    return tree_unflatten(in_tree, outs)


# --- scan -------------------------------------------------------------------------------------

scan_p = Primitive("scan", multiple_results=True)


def _scan_abstract_eval(*args, program, num_consts, num_carry, length, reverse, unroll):
    del reverse, unroll  # unused
    consts, init, xs = _split(args, num_consts, num_carry)
    body_in = list(in_avals(program))
    for x in xs:
        if x.ndim == 0 or x.shape[0] != length:
            raise ShapeError(f"scan: every xs array needs a leading axis of length {length}, "
                             f"got {x.str_short()}")
    x_avals = [ShapedArray(x.shape[1:], x.dtype) for x in xs]
    if not _same_types(body_in, consts + init + x_avals):
        raise TypeError(f"scan: the body takes {_avals_str(body_in)}, got "
                        f"{_avals_str(consts + init + x_avals)}")
    body_out = list(out_avals(program))
    if not _same_types(body_out[:num_carry], init):
        raise TypeError(f"scan: the body function's carry output must have the same types as "
                        f"its carry input, got input {_avals_str(init)} and output "
                        f"{_avals_str(body_out[:num_carry])}")
    return init + [ShapedArray((length,) + y.shape, y.dtype) for y in body_out[num_carry:]]


def _scan_impl(*args, program, num_consts, num_carry, length, reverse, unroll):
    del unroll  # unused
    consts, carry, xs = _split([wrap(b) for b in args], num_consts, num_carry)
    xs_bufs = [x._buf for x in xs]
    ys = []
    for i in (range(length - 1, -1, -1) if reverse else range(length)):
        outs = closed_call(program, [*consts, *carry, *[wrap(x[i]) for x in xs_bufs]])
        carry, y = outs[:num_carry], outs[num_carry:]
        ys.append(_out_leaves(y))
    if reverse:
        ys.reverse()
    y_avals = out_avals(program)[num_carry:]
    stacked = []
    for k, aval in enumerate(y_avals):
        if length == 0:
            stacked.append(np.zeros((0,) + aval.shape, aval.dtype))
        else:
            xp = array_module(ys[0][k])
            stacked.append(xp.stack([y[k] for y in ys]))
    return _out_leaves(carry) + stacked


def _scan_jvp(primals, tangents, *, program, num_consts, num_carry, length, reverse, unroll):
    consts, init, xs = _split(primals, num_consts, num_carry)
    consts_t, init_t, xs_t = _split(tangents, num_consts, num_carry)
    consts_nz = [type(t) is not Zero for t in consts_t]
    xs_nz = [type(t) is not Zero for t in xs_t]
    carry_nz = [type(t) is not Zero for t in init_t]
    n_y = len(out_avals(program)) - num_carry
    while True:
        _, nz_out = jvp_program(program, consts_nz + carry_nz + xs_nz,
                                carry_nz + [False] * n_y)
        if nz_out[:num_carry] == carry_nz:
            break
        carry_nz = _or(carry_nz, nz_out[:num_carry])
    jvp_prog, nz_out = jvp_program(program, consts_nz + carry_nz + xs_nz,
                                   carry_nz + [False] * n_y)
    ys_nz = nz_out[num_carry:]
    nc, nk, nx = num_consts, num_carry, len(xs)
    nct, nkt, nxt = sum(consts_nz), sum(carry_nz), sum(xs_nz)
    p0 = nc + nk + nx  # start of the tangent inputs
    in_perm = (list(range(nc)) + list(range(p0, p0 + nct))
               + list(range(nc, nc + nk)) + list(range(p0 + nct, p0 + nct + nkt))
               + list(range(nc + nk, p0)) + list(range(p0 + nct + nkt, p0 + nct + nkt + nxt)))
    ny, nyt = n_y, sum(ys_nz)
    q0 = nk + ny
    out_perm = (list(range(nk)) + list(range(q0, q0 + nkt)) + list(range(nk, nk + ny))
                + list(range(q0 + nkt, q0 + nkt + nyt)))
    jvp_prog = reorder_program(jvp_prog, in_perm, out_perm)
    outs = scan_p.bind(
        *consts, *[t for t in consts_t if type(t) is not Zero],
        *init, *[instantiate(t) for t, nz in zip(init_t, carry_nz) if nz],
        *xs, *[t for t in xs_t if type(t) is not Zero],
        program=jvp_prog, num_consts=nc + nct, num_carry=nk + nkt, length=length,
        reverse=reverse, unroll=unroll)
    carry, carry_t, ys, ys_t = _split(outs, nk, nkt, ny)
    ct_it, yt_it = iter(carry_t), iter(ys_t)
    out_t = [next(ct_it) if nz else Zero(to_shaped(c)) for nz, c in zip(carry_nz, carry)]
    out_t += [next(yt_it) if nz else Zero(to_shaped(y)) for nz, y in zip(ys_nz, ys)]
    return carry + ys, out_t


def _scan_batch(axis_size, args, dims, *, program, num_consts, num_carry, length, reverse,
                unroll):
    consts, init, xs = _split(args, num_consts, num_carry)
    consts_d, init_d, xs_d = _split(dims, num_consts, num_carry)
    consts = [x if d is None else move_batch_axis(axis_size, d, 0, x)
              for x, d in zip(consts, consts_d)]
    consts_d = [None if d is None else 0 for d in consts_d]
    # The batch axis of xs goes after the scanned axis, so each slice is batched at 0.
    xs = [x if d is None else move_batch_axis(axis_size, d, 1, x) for x, d in zip(xs, xs_d)]
    x_slice_d = [None if d is None else 0 for d in xs_d]
    carry_b = [d is not None for d in init_d]
    while True:
        _, out_dims = vmap_program(program, axis_size,
                                   consts_d + [0 if b else None for b in carry_b] + x_slice_d)
        new_b = _or(carry_b, [d is not None for d in out_dims[:num_carry]])
        if new_b == carry_b:
            break
        carry_b = new_b
    carry_d = [0 if b else None for b in carry_b]
    ys_d = [None if d is None else 0 for d in out_dims[num_carry:]]
    batched, _ = vmap_program(program, axis_size, consts_d + carry_d + x_slice_d,
                              carry_d + ys_d)
    init = [move_batch_axis(axis_size, d, 0, x) if b else x
            for x, d, b in zip(init, init_d, carry_b, strict=True)]
    outs = scan_p.bind(*consts, *init, *xs, program=batched, num_consts=num_consts,
                       num_carry=num_carry, length=length, reverse=reverse, unroll=unroll)
    return outs, carry_d + [None if d is None else 1 for d in ys_d]


def _loop_invariant_outputs(closed, n_invariant_ins, first_out):
    """For outputs ``first_out:`` of ``closed``: whether each depends only on its first
    ``n_invariant_ins`` (non-constant) inputs."""
    prog = closed.program
    varying = set(prog.in_binders[len(closed.consts) + n_invariant_ins:])
    for eqn in prog.eqns:
        if any(isinstance(x, Var) and x in varying for x in eqn.inputs):
            varying.update(eqn.out_binders)
    return [not (isinstance(x, Var) and x in varying) for x in prog.outs[first_out:]]


def _scan_partial_eval(trace, tracers, *, program, num_consts, num_carry, length, reverse,
                       unroll):
    """Known scan: known carry/ys plus the residuals of every iteration stacked as extra ys
    (residuals computed from the constants alone are computed once, outside the loop).
    Unknown scan: consts = (invariant residuals, unknown consts), unknown carry,
    xs = (stacked residuals, unknown xs)."""
    consts, init, xs = _split(tracers, num_consts, num_carry)
    consts_uk = [t.pval.is_unknown for t in consts]
    xs_uk = [t.pval.is_unknown for t in xs]
    carry_uk = [t.pval.is_unknown for t in init]
    n_y = len(out_avals(program)) - num_carry
    while True:
        _, _, out_uk, _ = partial_eval_program(program, consts_uk + carry_uk + xs_uk,
                                               carry_uk + [False] * n_y)
        if out_uk[:num_carry] == carry_uk:
            break
        carry_uk = _or(carry_uk, out_uk[:num_carry])
    known, unknown, out_uk, num_res = partial_eval_program(
        program, consts_uk + carry_uk + xs_uk, carry_uk + [False] * n_y)
    n_known_out = out_uk.count(False)
    known_consts = [t.pval.const for t in consts if t.pval.is_known]
    known_init = [t.pval.const for t, uk in zip(init, carry_uk) if not uk]
    known_xs = [t.pval.const for t in xs if t.pval.is_known]
    n_kc = carry_uk.count(False)
    invariant = _loop_invariant_outputs(known, len(known_consts), n_known_out)
    # A residual that is an x slice itself is the known xs array: no need to restack it.
    x_binders = known.program.in_binders[len(known.consts) + len(known_consts) + n_kc:]
    res_outs = known.program.outs[n_known_out:]
    from_xs = [x_binders.index(r) if not inv and r in x_binders else None
               for r, inv in zip(res_outs, invariant, strict=True)]
    if any(invariant):
        inv_prog, used = dce_program(known, [False] * n_known_out + invariant)
        inv_res = closed_call(inv_prog, [c for c, u in zip(known_consts, used) if u])
    else:
        inv_res = []
    stacked = [not inv and k is None for inv, k in zip(invariant, from_xs)]
    if not all(stacked):
        known, _ = dce_program(known, [True] * n_known_out + stacked, True)
    known_outs = scan_p.bind(*known_consts, *known_init, *known_xs, program=known,
                             num_consts=len(known_consts), num_carry=n_kc, length=length,
                             reverse=reverse, unroll=unroll)
    n_known_y = n_known_out - n_kc
    known_carry, known_ys, stacked_iter = _split(known_outs, n_kc, n_known_y)
    stacked_iter = iter(stacked_iter)
    stacked_res = [known_xs[k] if k is not None else next(stacked_iter)
                   for k, inv in zip(from_xs, invariant) if not inv]
    uk_consts = [t for t in consts if t.pval.is_unknown]
    uk_init = [t for t, uk in zip(init, carry_uk) if uk]
    uk_xs = [t for t in xs if t.pval.is_unknown]
    # unknown takes (res, uk consts, uk carry, uk xs); the scan wants
    # (invariant res, uk consts, uk carry, stacked res, uk xs)
    a, b, c = len(uk_consts), len(uk_init), len(uk_xs)
    inv_idx = [i for i, inv in enumerate(invariant) if inv]
    var_idx = [i for i, inv in enumerate(invariant) if not inv]
    perm = (inv_idx + list(range(num_res, num_res + a + b)) + var_idx
            + list(range(num_res + a + b, num_res + a + b + c)))
    unknown = reorder_program(unknown, perm)
    if any(out_uk):
        uk_outs = trace.default_process(
            scan_p, [*[trace.lift(r) for r in inv_res], *uk_consts, *uk_init,
                     *[trace.lift(r) for r in stacked_res], *uk_xs],
            dict(program=unknown, num_consts=len(inv_idx) + a, num_carry=b, length=length,
                 reverse=reverse, unroll=unroll))
    else:
        uk_outs = []
    kv, uv = iter([*known_carry, *known_ys]), iter(uk_outs)
    return [next(uv) if uk else trace.lift(next(kv)) for uk in out_uk]


def _scan_transpose(cts, *args, program, num_consts, num_carry, length, reverse, unroll):
    consts, init, xs = _split(args, num_consts, num_carry)
    ct_carry, ct_ys = cts[:num_carry], cts[num_carry:]
    consts_lin = [is_undefined(x) for x in consts]
    xs_lin = [is_undefined(x) for x in xs]
    res_consts = [x for x in consts if not is_undefined(x)]
    res_xs = [x for x in xs if not is_undefined(x)]
    body_in = list(in_avals(program))
    lin_const_avals = [a for a, lin in zip(body_in[:num_consts], consts_lin) if lin]
    n_lc, n_rc, n_rx = len(lin_const_avals), len(res_consts), len(res_xs)
    # Carries are always linear here: a known carry init is an instantiated zero tangent.
    body_t = transpose_program(program, consts_lin + [True] * num_carry + xs_lin)

    def body_fun(*a):
        rc, acc, ctc, rx, cty = _split(a, n_rc, n_lc, num_carry, n_rx)
        cts_in = closed_call(body_t, [*rc, *rx, *ctc, *cty])
        ct_consts, ct_carry_in, ct_xs = _split(cts_in, n_lc, num_carry)
        return ([add_tangents(s, c) for s, c in zip(acc, ct_consts, strict=True)]
                + ct_carry_in + ct_xs)

    body_avals = [a for a, lin in zip(body_in[:num_consts], consts_lin) if not lin]
    x_avals = body_in[num_consts + num_carry:]
    trans_avals = (list(body_avals) + lin_const_avals + body_in[num_consts:num_consts + num_carry]
                   + [a for a, lin in zip(x_avals, xs_lin) if not lin]
                   + list(out_avals(program)[num_carry:]))
    trans = program_from_fun(body_fun, trans_avals)
    carry_avals = body_in[num_consts:num_consts + num_carry]
    ct_carry = [_zeros(a) if type(c) is Zero else c for c, a in zip(ct_carry, carry_avals)]
    y_avals = [ShapedArray((length,) + a.shape, a.dtype) for a in out_avals(program)[num_carry:]]
    ct_ys = [_zeros(a) if type(c) is Zero else c for c, a in zip(ct_ys, y_avals)]
    outs = scan_p.bind(*res_consts, *[_zeros(a) for a in lin_const_avals], *ct_carry, *res_xs,
                       *ct_ys, program=trans, num_consts=n_rc, num_carry=n_lc + num_carry,
                       length=length, reverse=not reverse, unroll=unroll)
    ct_consts, ct_init, ct_xs = _split(outs, n_lc, num_carry)
    it_c, it_x = iter(ct_consts), iter(ct_xs)
    return ([next(it_c) if lin else None for lin in consts_lin]
            + [ct if is_undefined(x) else None for ct, x in zip(ct_init, init)]
            + [next(it_x) if lin else None for lin in xs_lin])


scan_p.impl = _scan_impl
scan_p.abstract_eval = _scan_abstract_eval


def _scan_weak_type_rule(weak, *, program, num_consts, num_carry, length, reverse, unroll):
    del weak, length, reverse, unroll  # unused: the carry's traced types and the body's ys
    carry = in_avals(program)[num_consts:num_consts + num_carry]
    return [a.weak_type for a in [*carry, *out_avals(program)[num_carry:]]]


scan_p.weak_type_rule = _scan_weak_type_rule
scan_p.jvp = _scan_jvp
scan_p.batch = _scan_batch
scan_p.partial_eval = _scan_partial_eval
scan_p.transpose = _scan_transpose


def scan(f, init, xs=None, length=None, reverse=False, unroll=1):
    """Loop ``carry, y = f(carry, x)`` over the leading axis of ``xs``, stacking the ``y``s:

    ``def scan(f, init, xs): carry = init; ys = [];  for x in xs: carry, y = f(carry, x);
    ys.append(y);  return carry, stack(ys)``, as one staged, differentiable primitive.
    ``xs``/``ys`` are pytrees (``xs=None`` with ``length`` loops without inputs).

    >>> c, ys = fnx.lax.scan(lambda c, x: (c + x, c), 0.0, fnx.numpy.arange(3.0))
    >>> c.item(), ys.tolist()
    (3.0, [0.0, 0.0, 1.0])
    """
    if not callable(f):
        raise TypeError("scan: f must be a callable (carry, x) -> (carry, y)")
    init_leaves, carry_tree = tree_flatten(init)
    init_leaves = _as_arrays(init_leaves, "scan")
    xs_leaves, xs_tree = tree_flatten(xs)
    xs_leaves = _as_arrays(xs_leaves, "scan")
    lengths = set()
    for x in xs_leaves:
        shape = get_aval(x).shape
        if not shape:
            raise ShapeError("scan: every leaf of xs must have a leading axis to scan over, got "
                             "a scalar")
        lengths.add(shape[0])
    if length is not None:
        length = int(length)
        lengths.add(length)
    if len(lengths) > 1:
        detail = ", ".join(str(get_aval(x).shape) for x in xs_leaves)
        raise ShapeError(f"scan: xs leaves have different leading axis sizes ({detail})"
                         + (f" and length={length}" if length is not None else "")
                         + "; all must have the same length")
    if not lengths:
        raise ValueError("scan: xs is None (or empty), so pass length= to set the number of "
                         "iterations")
    length = lengths.pop()
    carry_avals = [get_aval(x) for x in init_leaves]
    x_avals = [ShapedArray(get_aval(x).shape[1:], get_aval(x).dtype) for x in xs_leaves]
    n_carry = len(init_leaves)
    store = []

    def flat_f(*leaves):
        carry = tree_unflatten(carry_tree, list(leaves[:n_carry]))
        x = tree_unflatten(xs_tree, list(leaves[n_carry:]))
        out = f(carry, x)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(f"scan: f must return a pair (carry, y), got {type(out).__name__}")
        new_carry, y = out
        c_leaves, c_tree = tree_flatten(new_carry)
        y_leaves, y_tree = tree_flatten(y)
        if c_tree != carry_tree:
            raise TypeError(f"scan: the body function's carry output must have the same pytree "
                            f"structure as its carry input, got {c_tree} for {carry_tree}")
        store.append(y_tree)
        return _as_arrays(c_leaves, "scan", exact=False) + \
            _as_arrays(y_leaves, "scan", exact=False)

    program, consts = trace_hoisted(flat_f, carry_avals + x_avals)
    init_leaves, carry_avals, changed = _join_weak_carries(
        init_leaves, carry_avals, out_avals(program)[:n_carry])
    if changed:
        program, consts = trace_hoisted(flat_f, carry_avals + x_avals)
    body_carry_out = list(out_avals(program)[:n_carry])
    if not _same_types(body_carry_out, carry_avals):
        raise TypeError(f"scan: the body function's carry output must have the same types as "
                        f"its carry input, got input {_avals_str(carry_avals)} and output "
                        f"{_avals_str(body_carry_out)}; convert with .astype() so the carry "
                        f"keeps its shape and dtype")
    outs = scan_p.bind(*consts, *init_leaves, *xs_leaves, program=program,
                       num_consts=len(consts), num_carry=n_carry, length=length,
                       reverse=bool(reverse), unroll=int(unroll))
    return tree_unflatten(carry_tree, outs[:n_carry]), tree_unflatten(store[-1], outs[n_carry:])


def map(f, xs):  # noqa: A001  (the name is JAX's lax.map)
    """``stack([f(x) for x in xs])`` over the leading axis of ``xs`` (a scan without carry).

    >>> fnx.lax.map(lambda x: x * 2.0, fnx.numpy.arange(3.0)).tolist()
    [0.0, 2.0, 4.0]
    """
    return scan(lambda carry, x: (carry, f(x)), None, xs)[1]


# --- fori_loop ---------------------------------------------------------------------------------


def _static_int(x):
    if isinstance(x, (bool, np.bool_)):
        return None
    if isinstance(x, (int, np.integer)):
        return int(x)
    if type(x) is Array and x.ndim == 0 and x.dtype.kind in "iu":
        return int(x)  # a host read: a jit being traced guards on it
    return None


def fori_loop(lower, upper, body_fun, init_val):
    """``val = init_val; for i in range(lower, upper): val = body_fun(i, val)``.

    With Python int (concrete) bounds it lowers to ``scan`` (reverse-mode differentiable);
    with traced bounds to ``while_loop`` (forward mode only).

    >>> fnx.lax.fori_loop(0, 4, lambda i, x: x + i, 0).item()
    6
    """
    import fnx.numpy as fnp

    lo, hi = _static_int(lower), _static_int(upper)
    if lo is not None and hi is not None:
        i0 = fnp.asarray(lo)

        def step(carry, _):
            i, val = carry
            return (i + 1, body_fun(i, val)), None

        (_, val), _ = scan(step, (i0, init_val), None, length=max(hi - lo, 0))
        return val
    lower = _as_arrays([lower], "fori_loop")[0]
    upper = _as_arrays([upper], "fori_loop")[0]
    dt = np.result_type(get_aval(lower).dtype, get_aval(upper).dtype)
    lower, upper = lower.astype(dt), upper.astype(dt)

    def body(carry):
        i, val = carry
        return i + 1, body_fun(i, val)

    _, val = while_loop(lambda carry: carry[0] < upper, body, (lower, init_val))
    return val
