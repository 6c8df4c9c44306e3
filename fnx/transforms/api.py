"""The public transforms over pytrees: jvp, linearize, vjp, grad, value_and_grad, jacfwd,
jacrev, hessian, vmap, make_ir, stop_gradient. Each flattens its arguments and calls the flat
machinery in jvp.py / partial_eval.py / vmap.py."""

import functools

import numpy as np

from ..core.abstract import ShapedArray
from ..core.ad_util import UndefinedPrimal, instantiate
from ..core.array import Array, wrap_weak
from ..core.errors import ShapeError
from ..core.ops.elementwise import convert_element_type_p
from ..core.ir import eval_program, make_program, pp_program
from ..core.pytree import tree_flatten, tree_leaves, tree_map, tree_unflatten
from ..core.tracing import Tracer, get_aval
from .jvp import check_tangent, jvp_flat
from .partial_eval import backward_pass, linearize_flat
from .vmap import move_batch_axis, vmap_flat


def _as_arrays(leaves, what, noun="arguments",
               fix="mark non-array arguments static or close over them", lists=True,
               exact=True):
    """Arrays for the leaves of a transform's arguments: Arrays and tracers pass, Python and
    NumPy scalars/arrays (and, with ``lists``, Python lists) convert; anything else is a
    TypeError naming ``what`` and suggesting ``fix``.

    Python scalars become weakly typed arrays, so ``jit(f)(f16_array, 0.1)`` promotes as
    ``f(f16_array, 0.1)``. With ``exact`` (values going in), a Python float or complex keeps
    its exact value as a weak float64 / complex128, as eagerly, where the scalar converts
    straight to the dtype it meets: ``jit(f)(f64_array, 0.1)`` multiplies by 0.1, not by
    float32(0.1), and weak, it still never widens a narrower array. Without it (what a traced
    function returns), it takes the default dtype, as ``fnp.asarray``."""
    import fnx.numpy as fnp

    convertible = (int, float, complex, bool, np.ndarray, np.generic) + ((list,) if lists else ())
    out = []
    for x in leaves:
        if isinstance(x, (Array, Tracer)):
            out.append(x)
        elif exact and type(x) in (float, complex):
            out.append(wrap_weak(np.asarray(x)))
        elif isinstance(x, convertible):
            out.append(fnp.asarray(x))
        else:
            raise TypeError(f"{what}: {noun} must be arrays or pytrees of arrays, got "
                            f"{type(x).__name__}; {fix}")
    return out


def _as_tangents(leaves, primals, what):
    """``_as_arrays`` for tangents: a Python scalar tangent takes its primal's dtype, as it
    would meeting the primal (``jvp(f, (f32_array,), (1.0,))``)."""
    leaves = [wrap_weak(np.asarray(t, get_aval(p).dtype))
              if type(t) in (int, float) and get_aval(p).dtype.kind in "fc" else t
              for t, p in zip(leaves, primals, strict=True)]
    return _as_arrays(leaves, what)


def check_output_leaves(leaves, out_tree, what):
    """The output leaves of a transformed function, or a TypeError naming the function
    (``what``), the leaf's position and its type for a value that is not an array."""
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, (Array, Tracer, bool, int, float, complex, np.ndarray,
                                 np.generic)):
            where = "" if out_tree.node is None else f" (leaf {i} of the returned {out_tree})"
            raise TypeError(
                f"{what}: the function returned a {type(leaf).__name__} ({leaf!r:.60})"
                f"{where}; a transformed function returns arrays (or pytrees of them). Return "
                f"other values from a plain Python function around it, or use has_aux=True")
    return leaves


def _flatten_fun(f, in_tree):
    """``f`` as a function of flat leaves; the output treedef is stored in ``store[0]``."""
    store = []

    def flat_f(*leaves):
        out = f(*tree_unflatten(in_tree, list(leaves)))
        out_leaves, out_tree = tree_flatten(out)
        store.append(out_tree)
        return check_output_leaves(out_leaves, out_tree, getattr(f, "__name__", "function"))

    return flat_f, store


def _split_aux(f, has_aux):
    """``(call, aux_box)``: with has_aux, call returns f's output and appends its aux to aux_box."""
    aux_box = []
    if not has_aux:
        return f, aux_box

    def call(*args):
        out, aux = f(*args)
        aux_box.append(aux)
        return out

    return call, aux_box


# --- forward mode ------------------------------------------------------------------------------


def jvp(f, primals, tangents, has_aux=False):
    """Forward-mode derivative: ``(f(*primals), J_f(primals) @ tangents)``.

    >>> fnx.jvp(fnx.numpy.sin, (fnx.numpy.asarray(0.0),), (fnx.numpy.asarray(1.0),))[1].item()
    1.0
    """
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError("jvp: primals and tangents must be tuples (one entry per argument)")
    p_leaves, p_tree = tree_flatten(tuple(primals))
    t_leaves, t_tree = tree_flatten(tuple(tangents))
    if p_tree != t_tree:
        raise ValueError(f"jvp: primals {p_tree} and tangents {t_tree} differ in structure")
    p_leaves = _as_arrays(p_leaves, "jvp")
    t_leaves = _as_tangents(t_leaves, p_leaves, "jvp")
    for p, t in zip(p_leaves, t_leaves):
        check_tangent(p, t)
    call, aux_box = _split_aux(f, has_aux)
    flat_f, store = _flatten_fun(call, p_tree)
    outs, t_outs = jvp_flat(flat_f, p_leaves, t_leaves)
    out_tree = store[-1]
    res = tree_unflatten(out_tree, outs), tree_unflatten(out_tree, t_outs)
    return (*res, _strip(aux_box[-1])) if has_aux else res


def linearize(f, *primals):
    """``(f(*primals), f_jvp)`` where ``f_jvp(*tangents)`` evaluates the linearized function.

    >>> y, f_jvp = fnx.linearize(fnx.numpy.sin, fnx.numpy.asarray(0.0)); f_jvp(2.0).item()
    2.0
    """
    p_leaves, p_tree = tree_flatten(tuple(primals))
    p_leaves = _as_arrays(p_leaves, "linearize")
    flat_f, store = _flatten_fun(f, p_tree)
    outs, program, consts = linearize_flat(flat_f, p_leaves)
    out_tree = store[-1]

    def f_jvp(*tangents):
        t_leaves, t_tree = tree_flatten(tuple(tangents))
        if t_tree != p_tree:
            raise ValueError(f"linearize: tangents {t_tree} do not match primals {p_tree}")
        t_leaves = _as_tangents(t_leaves, p_leaves, "linearize")
        return tree_unflatten(out_tree, eval_program(program, [*consts, *t_leaves]))

    return tree_unflatten(out_tree, outs), f_jvp


# --- reverse mode ------------------------------------------------------------------------------


def _vjp_flat(flat_f, p_leaves):
    outs, program, consts = linearize_flat(flat_f, p_leaves)

    def f_vjp_flat(cts):
        undef = [UndefinedPrimal(ShapedArray(get_aval(x).shape, get_aval(x).dtype))
                 for x in p_leaves]
        cts_in = backward_pass(program, [*consts, *undef], cts)
        return [_typed_like(instantiate(ct), x) for ct, x in zip(cts_in, p_leaves, strict=True)]

    return outs, f_vjp_flat


def _typed_like(ct, primal):
    """A cotangent with its primal's weak type, as JAX: the gradient with respect to a Python
    scalar is weak, with respect to an array strong, whatever the cotangent fed in was."""
    weak = get_aval(primal).weak_type
    if get_aval(ct).weak_type == weak:
        return ct
    return convert_element_type_p.bind(ct, new_dtype=get_aval(ct).dtype, weak_type=weak)


def vjp(f, *primals, has_aux=False):
    """``(f(*primals), f_vjp)`` where ``f_vjp(ct)`` returns the cotangents of the primals.

    >>> y, f_vjp = fnx.vjp(fnx.numpy.sin, fnx.numpy.asarray(0.0)); f_vjp(1.0)[0].item()
    1.0
    """
    p_leaves, p_tree = tree_flatten(tuple(primals))
    p_leaves = _as_arrays(p_leaves, "vjp")
    call, aux_box = _split_aux(f, has_aux)
    flat_f, store = _flatten_fun(call, p_tree)
    outs, f_vjp_flat = _vjp_flat(flat_f, p_leaves)
    out_tree = store[-1]

    def f_vjp(ct):
        ct_leaves, ct_tree = tree_flatten(ct)
        if ct_tree != out_tree:
            raise ValueError(f"vjp: cotangent structure {ct_tree} != output structure {out_tree}")
        ct_leaves = _as_arrays(ct_leaves, "vjp")
        for o, c in zip(outs, ct_leaves):
            if get_aval(o).shape != get_aval(c).shape:
                raise ShapeError(f"vjp: cotangent shape {get_aval(c).shape} does not match the "
                                 f"output shape {get_aval(o).shape}")
        ct_leaves = [c if get_aval(c).dtype == get_aval(o).dtype else c.astype(get_aval(o).dtype)
                     for o, c in zip(outs, ct_leaves)]
        return tree_unflatten(p_tree, f_vjp_flat(ct_leaves))

    out = tree_unflatten(out_tree, outs)
    return (out, f_vjp, _strip(aux_box[-1])) if has_aux else (out, f_vjp)


def _strip(aux):
    """Aux outputs are not differentiated: unwrap them from the transforms that have returned
    (JVP pairs to their primal, known partial values to their value, unbatched values to
    themselves), so no tracer of a finished transform escapes to the caller."""
    from .partial_eval import PartialEvalTracer
    from .vmap import BatchTracer
    from .jvp import JVPTracer

    def lower(x):
        while isinstance(x, Tracer) and not x._trace.main.live:
            if isinstance(x, JVPTracer):
                x = x.primal
            elif isinstance(x, PartialEvalTracer) and x.pval.is_known:
                x = x.pval.const
            elif isinstance(x, BatchTracer) and x.batch_dim is None:
                x = x.val
            else:
                raise TypeError(f"an auxiliary output depends on a value of a finished "
                                f"transform ({x!r}); return it as a regular output instead")
        return x

    return tree_map(lower, aux)


def _with_args_replaced(f, args, nums, kwargs=None):
    """``f`` as a function of the arguments at positions ``nums`` (the others fixed)."""
    kwargs = kwargs or {}

    def partial_f(*dargs):
        full = list(args)
        for i, a in zip(nums, dargs):
            full[i] = a
        return f(*full, **kwargs)

    return partial_f


def _check_argnums(argnums, nargs, what):
    multi = isinstance(argnums, (tuple, list))
    nums = tuple(argnums) if multi else (argnums,)
    for a in nums:
        if not isinstance(a, int) or not -nargs <= a < nargs:
            raise ValueError(f"{what}: argnums {argnums} out of range for {nargs} positional "
                             f"arguments")
    return multi, tuple(a % nargs for a in nums)


def _differentiated(f, args, kwargs, argnums, what):
    """What grad/jacfwd/jacrev share: ``(multi, leaves, tree, partial_f)`` — the checked float
    leaves of the arguments at ``argnums`` (and their treedef), and ``f`` as a function of
    just those arguments."""
    multi, nums = _check_argnums(argnums, len(args), what)
    leaves, tree = tree_flatten(tuple(args[i] for i in nums))
    leaves = _as_arrays(leaves, what)
    _check_float_inputs(leaves, what)
    return multi, leaves, tree, _with_args_replaced(f, args, nums, kwargs)


def _check_float_inputs(leaves, what):
    """Differentiated arguments must hold floating-point arrays. Integer and bool leaves
    beside float ones (a Module's step counter, BatchNorm's num_batches_tracked) are allowed:
    they are constants of the function and get zero gradients of their own dtype."""
    kinds = [get_aval(x).dtype.kind for x in leaves]
    if any(k in "fc" for k in kinds):
        return
    for x in leaves:
        dt = get_aval(x).dtype
        if dt.kind not in "fc":
            raise TypeError(
                f"{what} requires floating-point inputs to differentiate, got an array of dtype "
                f"{dt}; convert it with .astype(fnx.float32), or differentiate with respect to "
                f"other arguments (argnums)"
            )


def value_and_grad(f, argnums=0, has_aux=False):
    """A function returning ``(f(*args), grad f(*args))`` (``((value, aux), grad)`` with aux).

    >>> fnx.value_and_grad(lambda x: (x ** 2).sum())(fnx.numpy.asarray([3.0]))[1].tolist()
    [6.0]
    """

    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        multi, leaves, tree, partial_f = _differentiated(f, args, kwargs, argnums, "grad")
        aux_box = []

        def call(*dargs):
            out = partial_f(*dargs)
            if has_aux:
                if not (isinstance(out, tuple) and len(out) == 2):
                    raise TypeError("grad(has_aux=True): the function must return (value, aux)")
                out, aux = out
                aux_box.append(aux)
            out_leaves, out_tree = tree_flatten(out)
            check_output_leaves(out_leaves, out_tree, f"grad({getattr(f, '__name__', 'f')})")
            if len(out_leaves) != 1 or get_aval(out_leaves[0]).shape != ():
                shapes = [get_aval(o).shape for o in out_leaves]
                raise TypeError(
                    f"grad requires a function with a scalar output, got output shape(s) "
                    f"{shapes}; reduce it (e.g. .sum()), or use fnx.vjp / fnx.jacrev"
                )
            if get_aval(out_leaves[0]).dtype.kind not in "fc":
                raise TypeError(f"grad requires a floating-point output, got "
                                f"{get_aval(out_leaves[0]).dtype}")
            return out

        flat_f, store = _flatten_fun(call, tree)
        outs, f_vjp_flat = _vjp_flat(flat_f, leaves)
        ct = Array(np.ones((), get_aval(outs[0]).dtype))
        grads = tree_unflatten(tree, f_vjp_flat([ct]))
        value = tree_unflatten(store[-1], outs)
        g = grads if multi else grads[0]
        if has_aux:
            return (value, _strip(aux_box[-1])), g
        return value, g

    return value_and_grad_f


def grad(f, argnums=0, has_aux=False):
    """The gradient of a scalar function with respect to argument(s) ``argnums``.

    >>> fnx.grad(lambda x: (x ** 2).sum())(fnx.numpy.asarray([1.0, 2.0])).tolist()
    [2.0, 4.0]
    """
    vg = value_and_grad(f, argnums, has_aux)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        (value, g) = vg(*args, **kwargs)
        if has_aux:
            return g, value[1]
        return g

    return grad_f


# --- jacobians ---------------------------------------------------------------------------------


def _std_basis(leaves):
    """Rows of the identity over all leaves' elements, one array per leaf of shape (n,)+shape."""
    import fnx.numpy as fnp

    sizes = [int(np.prod(get_aval(x).shape, dtype=np.int64)) for x in leaves]
    total = sum(sizes)
    out, start = [], 0
    for x, n in zip(leaves, sizes):
        aval = get_aval(x)
        eye = fnp.eye(total, n, k=-start, dtype=aval.dtype)
        out.append(fnp.reshape(eye, (total,) + aval.shape))
        start += n
    return out, total


def jacfwd(f, argnums=0, has_aux=False):
    """Jacobian by forward mode (a vmap of jvp over the standard basis).

    Output: for each output leaf of shape S and input leaf of shape T, an array S + T.

    >>> fnx.jacfwd(lambda x: x * 2.0)(fnx.numpy.ones(2)).tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """

    def jac_f(*args):
        multi, leaves, tree, partial_f = _differentiated(f, args, {}, argnums, "jacfwd")

        def pushfwd(*tangent_leaves):
            # (y, jvp) or (y, jvp, aux); aux does not depend on the tangents: out_axes None
            return jvp(partial_f, tree_unflatten(tree, leaves),
                       tree_unflatten(tree, list(tangent_leaves)), has_aux=has_aux)

        basis, total = _std_basis(leaves)
        out_axes = (None, -1, None) if has_aux else (None, -1)
        pushed = vmap(pushfwd, in_axes=0, out_axes=out_axes)(*basis)
        jac_t = pushed[1]
        in_shapes = [get_aval(x).shape for x in leaves]

        def split(j):
            # j: out_shape + (total,) -> per input leaf out_shape + in_shape, weakly typed
            # where the input is (as jacrev's and grad's: a cotangent is typed like its primal)
            parts, start = [], 0
            for shape, x in zip(in_shapes, leaves, strict=True):
                n = int(np.prod(shape, dtype=np.int64))
                piece = j[..., start:start + n]
                parts.append(_typed_like(piece.reshape(j.shape[:-1] + shape), x))
                start += n
            res = tree_unflatten(tree, parts)
            return res if multi else res[0]

        out = tree_map(split, jac_t)
        return (out, pushed[2]) if has_aux else out

    return jac_f


def jacrev(f, argnums=0, has_aux=False):
    """Jacobian by reverse mode (a vmap of vjp over the output's standard basis).

    >>> fnx.jacrev(lambda x: x * 2.0)(fnx.numpy.ones(2)).tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """

    def jac_f(*args):
        multi, leaves, tree, partial_f = _differentiated(f, args, {}, argnums, "jacrev")
        if has_aux:
            y, f_vjp, aux = vjp(partial_f, *tree_unflatten(tree, leaves), has_aux=True)
        else:
            y, f_vjp = vjp(partial_f, *tree_unflatten(tree, leaves))
        y_leaves, y_tree = tree_flatten(y)
        basis, total = _std_basis(y_leaves)
        cts = vmap(lambda *b: f_vjp(tree_unflatten(y_tree, list(b))))(*basis)
        # cts: tuple over inputs of (total,) + in_shape; split rows per output leaf
        ct_leaves, ct_tree = tree_flatten(cts)
        per_out, start = [], 0
        for yl in y_leaves:
            shape = get_aval(yl).shape
            n = int(np.prod(shape, dtype=np.int64))
            parts = [c[start:start + n].reshape(shape + c.shape[1:]) for c in ct_leaves]
            res = tree_unflatten(ct_tree, parts)
            per_out.append(res if multi else res[0])
            start += n
        out = tree_unflatten(y_tree, per_out)
        return (out, aux) if has_aux else out

    return jac_f


def hessian(f, argnums=0):
    """Hessian as ``jacfwd(jacrev(f))``.

    >>> fnx.hessian(lambda x: (x ** 3).sum())(fnx.numpy.asarray([1.0])).tolist()
    [[6.0]]
    """
    return jacfwd(jacrev(f, argnums), argnums)


# --- vmap ---------------------------------------------------------------------------------------


def _axes_per_leaf(axes, tree, what):
    """Broadcast an axes prefix tree (ints/None) over the leaves of ``tree``."""
    if axes is None or isinstance(axes, int):
        return [axes] * len(tree_leaves(tree))
    ax_leaves, ax_tree = tree_flatten(axes, is_leaf=lambda x: x is None)
    subtrees = ax_tree.flatten_up_to(tree, what=what)
    out = []
    for ax, sub in zip(ax_leaves, subtrees, strict=True):
        if ax is not None and not isinstance(ax, int):
            raise TypeError(f"{what}: axis specs must be ints or None, got {ax!r}")
        out.extend([ax] * len(tree_leaves(sub)))
    return out


def vmap(f, in_axes=0, out_axes=0, axis_size=None):
    """Vectorize ``f`` over a mapped axis of its arguments.

    ``in_axes``/``out_axes``: an int, None (not mapped) or a pytree prefix of the arguments
    (a tuple with one entry per positional argument) / outputs. Negative axes count from the end.

    >>> fnx.vmap(lambda x: x.sum())(fnx.numpy.ones((3, 2))).tolist()
    [2.0, 2.0, 2.0]
    """
    if isinstance(in_axes, list):
        in_axes = tuple(in_axes)

    @functools.wraps(f)
    def vmapped(*args):
        if isinstance(in_axes, tuple) and len(in_axes) != len(args):
            raise ValueError(f"vmap: in_axes has {len(in_axes)} entries for {len(args)} "
                             f"positional arguments")
        leaves, tree = tree_flatten(args)
        leaves = _as_arrays(leaves, "vmap")
        axes = _axes_per_leaf(in_axes, args, "vmap in_axes")
        sizes = set()
        norm_axes = []
        for x, ax in zip(leaves, axes):
            if ax is None:
                norm_axes.append(None)
                continue
            nd = get_aval(x).ndim
            if not -nd <= ax < nd:
                raise ValueError(f"vmap: in_axes {ax} is out of range for an argument of shape "
                                 f"{get_aval(x).shape}")
            ax %= nd
            norm_axes.append(ax)
            sizes.add(get_aval(x).shape[ax])
        if axis_size is not None:
            sizes.add(axis_size)
        if not sizes:
            raise ValueError("vmap: no argument is mapped (all in_axes are None) and axis_size "
                             "is not given")
        if len(sizes) > 1:
            detail = ", ".join(f"{get_aval(x).shape} at axis {a}" for x, a in zip(leaves, norm_axes)
                               if a is not None)
            raise ValueError(f"vmap: mapped axes have different sizes: {detail}")
        size = sizes.pop()
        flat_f, store = _flatten_fun(f, tree)
        vals, dims = vmap_flat(flat_f, norm_axes, size, leaves)
        out_tree = store[-1]
        outs_proto = tree_unflatten(out_tree, vals)
        o_axes = _axes_per_leaf(out_axes, outs_proto, "vmap out_axes")
        moved = []
        for v, d, oa in zip(vals, dims, o_axes, strict=True):
            if oa is not None:
                oa %= get_aval(v).ndim + (1 if d is None else 0)
            moved.append(move_batch_axis(size, d, oa, v))
        return tree_unflatten(out_tree, moved)

    return vmapped


# --- make_ir --------------------------------------------------------------------------------


def make_ir(f, static_argnums=()):
    """A function returning the traced program of ``f`` at its arguments, printable as text.

    >>> print(fnx.make_ir(lambda x: fnx.numpy.sin(x) * 2.0)(fnx.numpy.ones(3)))  # doctest: +SKIP
    { lambda a:f32[3] . ... }
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    def make(*args):
        dyn = tuple(a for i, a in enumerate(args) if i not in static)
        leaves, tree = tree_flatten(dyn)
        leaves = _as_arrays(leaves, "make_ir")

        def rebuild(*dyn_args):
            d = iter(dyn_args)
            full = [args[i] if i in static else next(d) for i in range(len(args))]
            return f(*full)

        flat_f, store = _flatten_fun(rebuild, tree)
        avals = [get_aval(x) for x in leaves]
        program, consts = make_program(flat_f, avals)
        return IRListing(program, consts)

    return make


class IRListing:
    """The result of ``make_ir``: prints as the program; ``.program`` and ``.consts``."""

    def __init__(self, program, consts):
        self.program, self.consts = program, consts

    def __str__(self):
        return pp_program(self.program)

    __repr__ = __str__
