"""Normalization primitives: ``normalize`` (statistics and the affine normalization in one
call), its tangent ``normalize_jvp`` (linear in the tangents) and that tangent's transpose
``normalize_vjp`` (the fused backward). BatchNorm, LayerNorm, GroupNorm, InstanceNorm and
RMSNorm (``fnx.nn.functional``) each bind ``normalize`` once, on their own shapes.

Params: ``layout`` (which axes a statistic covers), ``dims`` (how the layout views ``x``: no
reshape is bound, so the eager tape records one node), ``eps``, ``center`` (False: the RMS
form, no mean subtracted, ``var`` is the mean square and ``mean`` is 0).

* ``layout="channel"`` (BatchNorm): ``dims = (N, C, S)``; statistics per ``c`` over
  ``(N, S)``; ``w``, ``b`` have ``C`` elements; ``mean``, ``var`` are ``(C,)``.
* ``layout="group"``: ``dims = (N, G, K, S)``; statistics per ``(n, g)`` over ``(K, S)``;
  ``w``, ``b`` have ``G * K`` elements (broadcast over ``S``); ``mean``, ``var`` are
  ``(N, G)``. LayerNorm is ``(rows, 1, K, 1)``, GroupNorm ``(N, G, C // G, HW)``,
  InstanceNorm ``(N, C, 1, HW)``.

``normalize(x, w, b) -> (y, mean, var)`` with ``y = (x - mean) * rsqrt(var + eps) * w + b`` and
``var`` biased. Its JVP is ``normalize_jvp(dx, dw, db, x, w)``, whose transpose is
``normalize_vjp(ct_y, ct_mean, ct_var, x, w) -> (ct_x, ct_w, ct_b)``: so ``grad`` of a
normalization runs two kernels, the forward and the fused backward, eagerly, under ``jit`` and
in compiled steps alike (``call_kind = "impl"``). The backward computes the statistics again
(in cache, beside its own sums) rather than taking the forward's: its residuals are only
``x`` and ``w``, and the eager tape's backward program, which feeds the recorded ``x`` and
recomputes what a rule needs, drops the forward kernel as dead code. On NumPy float32/float64 the
impls run the Numba kernels of ``fnx/jit/kernels/norm.py``; float16 is computed in float32;
other array modules (CuPy) run the same formulas in array code.

The formulas are written once (``_forward``, ``_tangent``, ``_backward``) over an array
namespace: NumPy/CuPy in the impls, ``fnx.numpy`` in the rules that are rarely hot: the JVPs
of ``normalize_jvp`` / ``normalize_vjp`` (higher derivatives) and the batching rules other than
``normalize``'s fold of a vmapped axis into ``N``, which run the formula under ``vmap``.
"""

import math

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import instantiate, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .family import formula_batch, formula_jvp
from .shape import move_axis, reshape

LAYOUTS = ("channel", "group")


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


# --- the formulas, over an array namespace (NumPy, CuPy or fnx.numpy) ------------------------


def _stat_axes(layout):
    return (0, 2) if layout == "channel" else (2, 3)


def _stat_shape(dims, layout):
    return (dims[1],) if layout == "channel" else (dims[0], dims[1])


def _weight_size(dims, layout):
    return dims[1] if layout == "channel" else dims[1] * dims[2]


def _keep(ns, stat, dims, layout):
    """A statistic reshaped to broadcast against ``x`` viewed as ``dims``."""
    return ns.reshape(stat, (1, dims[1], 1) if layout == "channel" else dims[:2] + (1, 1))


def _affine_view(ns, w, dims, layout):
    return ns.reshape(w, (1, dims[1], 1) if layout == "channel" else (1,) + dims[1:3] + (1,))


def _count(dims, layout):
    axes = _stat_axes(layout)
    return dims[axes[0]] * dims[axes[1]]


def _normalized(ns, x, layout, dims, eps, center):
    """``x`` viewed as ``dims`` and normalized, ``r = rsqrt(var + eps)`` and the statistics
    (all broadcastable against the view)."""
    axes = _stat_axes(layout)
    xv = ns.reshape(x, dims)
    mean = ns.mean(xv, axis=axes, keepdims=True) if center else None
    xc = xv - mean if center else xv
    var = ns.mean(xc * xc, axis=axes, keepdims=True)
    r = 1 / ns.sqrt(var + eps)
    return xc * r, r, mean, var


def _forward(ns, x, w, b, *, layout, dims, eps, center):
    shape = _stat_shape(dims, layout)
    xhat, _, mean, var = _normalized(ns, x, layout, dims, eps, center)
    y = xhat * _affine_view(ns, w, dims, layout) + _affine_view(ns, b, dims, layout)
    mean = ns.reshape(mean, shape) if center else ns.zeros(shape, dtype=x.dtype)
    return ns.reshape(y, x.shape), mean, ns.reshape(var, shape)


def _tangent(ns, dx, dw, db, x, w, *, layout, dims, eps, center):
    axes, shape = _stat_axes(layout), _stat_shape(dims, layout)
    xhat, r, _, _ = _normalized(ns, x, layout, dims, eps, center)
    dxv = ns.reshape(dx, dims)
    p = ns.mean(xhat * dxv, axis=axes, keepdims=True)
    if center:
        dm = ns.mean(dxv, axis=axes, keepdims=True)
        dxhat = r * (dxv - dm - xhat * p)
        dmean = ns.reshape(dm, shape)
    else:
        dxhat = r * (dxv - xhat * p)
        dmean = ns.zeros(shape, dtype=x.dtype)
    dy = (dxhat * _affine_view(ns, w, dims, layout) + xhat * _affine_view(ns, dw, dims, layout)
          + _affine_view(ns, db, dims, layout))
    return ns.reshape(dy, x.shape), dmean, ns.reshape(2 * p / r, shape)


def _backward(ns, ct, cm, cv, x, w, *, layout, dims, eps, center):
    axes = _stat_axes(layout)
    param_axes = (0, 2) if layout == "channel" else (0, 3)
    n = max(_count(dims, layout), 1)  # an empty x has empty gradients
    xhat, r, _, _ = _normalized(ns, x, layout, dims, eps, center)
    ctv = ns.reshape(ct, dims)
    gb = ns.reshape(ns.sum(ctv, axis=param_axes), w.shape)
    gw = ns.reshape(ns.sum(ctv * xhat, axis=param_axes), w.shape)
    gxhat = ctv * _affine_view(ns, w, dims, layout)
    b = ns.mean(gxhat * xhat, axis=axes, keepdims=True)
    gx = r * (gxhat - xhat * b) + _keep(ns, cv, dims, layout) * (2 / n) * (xhat / r)
    if center:
        gx = gx - r * ns.mean(gxhat, axis=axes, keepdims=True) + _keep(
            ns, cm, dims, layout) / n
    return ns.reshape(gx, x.shape), gw, gb


# --- shape rules -------------------------------------------------------------------------------


def _check(name, x, w, layout, dims):
    """The statistics' aval, after checking ``x`` and a weight-shaped ``w`` against ``dims``."""
    if layout not in LAYOUTS:
        raise ValueError(f"{name}: layout must be one of {LAYOUTS}, got {layout!r}")
    nd = 3 if layout == "channel" else 4
    if len(dims) != nd or math.prod(dims) != math.prod(x.shape):
        raise ShapeError(f"{name}: layout {layout!r} views x as {nd} dims, got dims={dims} for "
                         f"x of shape {x.shape}")
    if x.dtype.kind != "f":
        raise DTypeError(f"{name}: x must have a floating dtype, got {x.dtype}; convert with "
                         f".astype(fnx.float32)")
    size = _weight_size(dims, layout)
    if math.prod(w.shape) != size or w.dtype != x.dtype:
        raise ShapeError(f"{name}: weight and bias must be {x.dtype} with {size} elements for x "
                         f"{x.dtype}{list(x.shape)} viewed as {dims} (layout {layout!r}), got "
                         f"{w.dtype}{list(w.shape)}")
    return ShapedArray(_stat_shape(dims, layout), x.dtype)


def _check_like(name, what, a, like):
    if a.shape != like.shape or a.dtype != like.dtype:
        raise ShapeError(f"{name}: {what} must be {like.dtype}{list(like.shape)}, got "
                         f"{a.dtype}{list(a.shape)}")


def _normalize_abstract_eval(x, w, b, *, layout, dims, eps, center):
    stat = _check("normalize", x, w, layout, dims)
    _check_like("normalize", "bias", b, w)
    return ShapedArray(x.shape, x.dtype), stat, stat


def _tangent_abstract_eval(dx, dw, db, x, w, *, layout, dims, eps, center):
    stat = _check("normalize_jvp", x, w, layout, dims)
    _check_like("normalize_jvp", "the tangent of x", dx, x)
    for what, a in (("the weight's tangent", dw), ("the bias' tangent", db)):
        _check_like("normalize_jvp", what, a, w)
    return ShapedArray(x.shape, x.dtype), stat, stat


def _backward_abstract_eval(ct, cm, cv, x, w, *, layout, dims, eps, center):
    stat = _check("normalize_vjp", x, w, layout, dims)
    _check_like("normalize_vjp", "the cotangent of y", ct, x)
    for what, a in (("the cotangent of mean", cm), ("the cotangent of var", cv)):
        _check_like("normalize_vjp", what, a, stat)
    return ShapedArray(x.shape, x.dtype), ShapedArray(w.shape, w.dtype), ShapedArray(
        w.shape, w.dtype)


# --- impls: the Numba kernels on NumPy float32/float64 ------------------------------------------

_KERNELS = {}


def _kernel(name, dtype):
    """``(kernel, scratch)``: the compiled kernel and its scratch sizes (or None)."""
    k = _KERNELS.get((name, dtype))
    if k is None:
        from ...jit import cache

        lib = cache.load_library("norm")
        k = (cache.compile_kernel(("norm", name), getattr(lib, name), lib.signature(name, dtype)),
             lib.SCRATCH.get(name))
        _KERNELS[(name, dtype)] = k
    return k


def _run(name, x, view, w, *args):
    """Run kernel ``name`` on ``args``, plus the zeroed scratch it takes."""
    kernel, scratch = _kernel(name, x.dtype)
    if scratch is not None:
        n64, nt = scratch(view, w.size)
        args = args[:-2] + (np.zeros(n64), np.zeros(nt, x.dtype)) + args[-2:]
    kernel(*args)


def _c(a, shape):
    """``a`` as the C-contiguous read-only view of ``shape`` the kernel signatures take for
    inputs (read-only parameters and writeable intermediates share one signature, uncopied)."""
    v = np.ascontiguousarray(a).reshape(shape)
    v.flags.writeable = False
    return v


def _on_kernel_dtype(impl):
    """Run ``impl`` on float32/float64 NumPy buffers: narrower floats are computed in float32
    and rounded back; other array modules run the array-code formulas instead (``None``)."""

    def run(*bufs, **params):
        if not isinstance(bufs[0], np.ndarray):
            return None
        dtype = bufs[0].dtype
        if dtype in (np.float32, np.float64):
            return impl(*bufs, **params)
        outs = impl(*[np.asarray(a, np.float32) for a in bufs], **params)
        return tuple(o.astype(dtype) for o in outs)

    return run


def _family(layout, dims):
    """The kernel family (fnx/jit/kernels/norm.py) for ``dims``, with ``x``'s shape there."""
    if layout == "channel":
        return ("cols", dims[:2]) if dims[2] == 1 else ("channel", dims)
    return ("row", (dims[0], dims[2])) if dims[1] == 1 and dims[3] == 1 else ("group", dims)


def _stat(a, family):
    return a if family == "group" else a.reshape(-1)


@_on_kernel_dtype
def _normalize_kernel(x, w, b, *, layout, dims, eps, center):
    family, view = _family(layout, dims)
    shape = _stat_shape(dims, layout)
    y, mean, var = np.empty(view, x.dtype), np.empty(shape, x.dtype), np.empty(shape, x.dtype)
    _run(f"{family}_forward", x, view, w, _c(x, view), _c(w, w.size), _c(b, w.size), y,
         _stat(mean, family), _stat(var, family), eps, center)
    return y.reshape(x.shape), mean, var


@_on_kernel_dtype
def _backward_kernel(ct, cm, cv, x, w, *, layout, dims, eps, center):
    family, view = _family(layout, dims)
    gx, gw, gb = np.empty(view, x.dtype), np.empty(w.size, x.dtype), np.empty(w.size, x.dtype)
    _run(f"{family}_backward", x, view, w, _c(ct, view), _stat(_c(cm, cm.shape), family),
         _stat(_c(cv, cv.shape), family), _c(x, view), _c(w, w.size), gx, gw, gb, eps, center)
    return gx.reshape(x.shape), gw.reshape(w.shape), gb.reshape(w.shape)


def _array_code(formula, bufs, params):
    from ..devices import array_module

    return formula(array_module(bufs[0]), *bufs, **params)


def _normalize_impl(*bufs, **params):
    # the kernels trust their shapes (no bounds checks): check them eagerly too
    _normalize_abstract_eval(*bufs, **params)
    out = _normalize_kernel(*bufs, **params)
    return tuple(_array_code(_forward, bufs, params) if out is None else out)


def _tangent_impl(*bufs, **params):
    with np.errstate(all="ignore"):
        outs = _array_code(_tangent, bufs, params)
    return tuple(o.astype(bufs[0].dtype, copy=False) for o in outs)


def _backward_impl(*bufs, **params):
    _backward_abstract_eval(*bufs, **params)
    out = _backward_kernel(*bufs, **params)
    return tuple(_array_code(_backward, bufs, params) if out is None else out)


# --- rules ---------------------------------------------------------------------------------------


def _normalize_jvp(primals, tangents, **params):
    x, w, b = primals
    y, mean, var = normalize_p.bind(x, w, b, **params)
    dx, dw, db = (instantiate(t) for t in tangents)
    return [y, mean, var], normalize_jvp_p.bind(dx, dw, db, x, w, **params)


def _normalize_batch(axis_size, args, bdims, *, layout, dims, eps, center):
    x, w, b = args
    if layout == "group" and bdims[1] is None and bdims[2] is None:
        # the vmapped axis is more instances: fold it into N
        x = move_axis(x, bdims[0], 0)
        y, mean, var = normalize_p.bind(x, w, b, layout=layout,
                                        dims=(axis_size * dims[0],) + dims[1:], eps=eps,
                                        center=center)
        stat = (axis_size,) + dims[:2]
        return [y, reshape(mean, stat), reshape(var, stat)], [0, 0, 0]
    return formula_batch(_forward)(axis_size, args, bdims, layout=layout, dims=dims, eps=eps,
                                    center=center)


def _tangent_transpose(cts, dx, dw, db, x, w, **params):
    ct_y, ct_mean, ct_var = (instantiate(c) for c in cts)
    gx, gw, gb = normalize_vjp_p.bind(ct_y, ct_mean, ct_var, x, w, **params)
    return [gx if is_undefined(dx) else None, gw if is_undefined(dw) else None,
            gb if is_undefined(db) else None, None, None]


normalize_p = Primitive("normalize", multiple_results=True)
normalize_p.impl = _normalize_impl
normalize_p.abstract_eval = _normalize_abstract_eval
normalize_p.jvp = _normalize_jvp
normalize_p.batch = _normalize_batch
normalize_p.call_kind = "impl"

normalize_jvp_p = Primitive("normalize_jvp", multiple_results=True)
normalize_jvp_p.impl = _tangent_impl
normalize_jvp_p.abstract_eval = _tangent_abstract_eval
normalize_jvp_p.jvp = formula_jvp(_tangent)
normalize_jvp_p.transpose = _tangent_transpose
normalize_jvp_p.batch = formula_batch(_tangent)
normalize_jvp_p.call_kind = "impl"

normalize_vjp_p = Primitive("normalize_vjp", multiple_results=True)
normalize_vjp_p.impl = _backward_impl
normalize_vjp_p.abstract_eval = _backward_abstract_eval
normalize_vjp_p.jvp = formula_jvp(_backward)
normalize_vjp_p.batch = formula_batch(_backward)
normalize_vjp_p.call_kind = "impl"


def normalize(x, w, b, *, layout, dims, eps, center=True):
    """``(y, mean, var)``: ``x`` (viewed as ``dims``) normalized by statistics over the axes
    ``layout`` names (see the module docstring), scaled by ``w`` and shifted by ``b``; ``y``
    has ``x``'s shape.

    >>> from fnx.core.ops.normalization import normalize
    >>> y, m, v = normalize(fnx.tensor([[1.0], [3.0]]), fnx.ones(1), fnx.zeros(1),
    ...                     layout="channel", dims=(2, 1, 1), eps=0.0)
    >>> y.tolist(), m.tolist(), v.tolist()
    ([[-1.0], [1.0]], [2.0], [1.0])
    """
    return normalize_p.bind(x, w, b, layout=layout, dims=tuple(int(d) for d in dims),
                            eps=float(eps), center=bool(center))
