"""conv_general_dilated: N-d convolution (cross-correlation, as every DL framework) in PyTorch's
layout, lhs ``(N, C, *spatial)`` and rhs ``(O, C // feature_group_count, *window)``, output
``(N, O, *out_spatial)``.

Params (all tuples with one entry per spatial dim): ``window_strides``, ``padding`` (explicit
``(lo, hi)`` pairs, negative crops), ``lhs_dilation`` (transposed-conv style input dilation),
``rhs_dilation`` (atrous kernel dilation), and ``feature_group_count``.

Three primitives, closed under transposition, each with every rule here:

* ``conv_general_dilated(lhs, rhs)``: the convolution;
* ``conv_lhs_grad(ct, rhs)``: its adjoint in lhs (the input gradient; PyTorch's transposed
  convolution);
* ``conv_rhs_grad(lhs, ct)``: its adjoint in rhs (the weight gradient).

All are linear in each operand, and the transpose of each one w.r.t. either operand is one of
the other two, so grad-of-grad, vmap and jit stay within the family. Their impls share one
column matrix (im2col, col2im + one GEMM per group; see the impls section): no transposed
convolution ever runs over a zero-dilated input.
"""

import functools
import itertools
import math

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero, add_tangents, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .indexing import checked
from .shape import broadcast_in_dim, move_axis, reshape, transpose

conv_general_dilated_p = Primitive("conv_general_dilated")


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


def _dilate(n, d):
    return 0 if n == 0 else 1 + d * (n - 1)


def conv_output_shape(lhs_shape, rhs_shape, window_strides, padding, lhs_dilation,
                      rhs_dilation):
    """Spatial output sizes of a convolution (0 when the window does not fit)."""
    out = []
    for n, k, s, (lo, hi), ld, rd in zip(lhs_shape[2:], rhs_shape[2:], window_strides, padding,
                                         lhs_dilation, rhs_dilation, strict=True):
        size = _dilate(n, ld) + lo + hi
        kd = _dilate(k, rd)
        out.append((size - kd) // s + 1 if size >= kd and kd > 0 else 0)
    return tuple(out)


def _conv_abstract_eval(lhs, rhs, **params):
    return _conv_check("conv_general_dilated", lhs, rhs, **params)


def _conv_check(name, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                feature_group_count):
    nsp = lhs.ndim - 2
    where = f"lhs {lhs.shape}, rhs {rhs.shape}"
    if lhs.ndim < 3 or rhs.ndim != lhs.ndim:
        raise ShapeError(f"{name}: expected lhs (N, C, *spatial) and rhs "
                         f"(O, C/groups, *window) of one rank >= 3, got {where}")
    for pname, p in (("window_strides", window_strides), ("padding", padding),
                     ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if len(p) != nsp:
            raise ShapeError(f"{name}: {pname} {p} needs one entry per spatial "
                             f"dim ({nsp}) for {where}")
    if any(s < 1 for s in window_strides + lhs_dilation + rhs_dilation):
        raise ShapeError(f"{name}: strides and dilations must be >= 1, got "
                         f"{window_strides}, {lhs_dilation}, {rhs_dilation}")
    g = feature_group_count
    if g < 1 or lhs.shape[1] != rhs.shape[1] * g or rhs.shape[0] % g:
        raise ShapeError(
            f"{name}: {where} with feature_group_count={g}: need "
            f"lhs channels == rhs.shape[1] * groups and rhs.shape[0] divisible by groups "
            f"(the weight is (out_channels, in_channels // groups, *window))"
        )
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"{name}: lhs dtype {lhs.dtype} != rhs dtype "
                         f"{rhs.dtype}; convert with .astype() first")
    if lhs.dtype.kind not in "iufc":
        raise DTypeError(f"{name}: dtype {lhs.dtype} is not supported")
    out = conv_output_shape(lhs.shape, rhs.shape, window_strides, padding, lhs_dilation,
                            rhs_dilation)
    return ShapedArray((lhs.shape[0], rhs.shape[0]) + out, lhs.dtype)


# --- impls: im2col / col2im + GEMM --------------------------------------------------------------
#
# All three primitives run on one column matrix: per image, ``cols (groups, Cg * K, P)``
# (K window taps, P output positions) with ``out = W @ cols``, ``d cols = W^T @ ct`` scattered
# back by col2im, and ``d W = ct @ cols^T``. 1-D and 2-D convolutions on NumPy float32/float64
# run as one compiled call each (fnx/jit/kernels/conv.py: per image, im2col into a scratch
# buffer that stays in cache, then one BLAS GEMM per group) and never materialize a padded or
# dilated input. Other ranks and dtypes, input dilation (conv_transpose binds conv_lhs_grad
# instead) and CuPy buffers take the array-module path below (strided slices of the padded,
# dilated input, one per window tap).

_lib = None
_compiled = {}


def _kernel(dtype):
    """The compiled convolution kernel of fnx/jit/kernels/conv.py for ``dtype``."""
    disp = _compiled.get(dtype)
    if disp is None:
        global _lib
        from ...jit import cache

        if _lib is None:
            _lib = cache.load_library("conv")
        # the arrays it reads are typed read-only (``_read_only``): fnx arrays' buffers need
        # no copy, and writeable ones no second signature
        sig = cache.signature_of([(1, dtype)] * 5, 17)
        a, b, cols, out = sig[17], sig[18], sig[19], sig[21]
        sig = sig[:17] + (a.copy(readonly=True), b.copy(readonly=True), cols,
                          cols.copy(readonly=True), out)
        disp = _compiled[dtype] = cache.compile_kernel(f"{_lib.__name__}.conv", _lib.conv, sig)
    return disp


def _read_only(a):
    """A read-only C-contiguous view of ``a`` (no copy unless it is not contiguous): the type
    the kernels' inputs are compiled for."""
    a = np.ascontiguousarray(a).view()
    a.flags.writeable = False
    return a


def _fast(buf, nsp, lhs_dilation):
    """Whether the compiled kernels serve this convolution (else the array-module path)."""
    return (type(buf) is np.ndarray and nsp <= 2 and buf.dtype in (np.float32, np.float64)
            and all(d == 1 for d in lhs_dilation))


class _Geometry:
    """One convolution's sizes: window taps ``kk``, output positions ``p``, the column rows per
    group ``kg``, and (1-D and 2-D) the kernels' ints, a 1-D convolution as a 2-D one of unit
    height."""

    def __init__(self, n, c, lhs_sp, o, window, out_sp, g, window_strides, padding,
                 rhs_dilation):
        def two(v, fill):
            return (fill,) * (2 - len(v)) + tuple(int(e) for e in v)

        self.n, self.c, self.o, self.g = n, c, o, g
        self.lhs = two(lhs_sp, 1)
        k, out = two(window, 1), two(out_sp, 1)
        self.kk = math.prod(window)
        self.p = math.prod(out_sp)
        self.kg = c // g * self.kk
        # the kernel's (n, o, g, c, h, w, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        self.ints = ((n, o, g, c) + self.lhs + k + two(window_strides, 1)
                     + two([lo for lo, _ in padding], 0) + two(rhs_dilation, 1) + out)


def _geometry(lhs_shape, rhs_shape, out_sp, params):
    """The (cached: an eager call's Python work is a tenth of a small convolution's time)
    geometry of a convolution."""
    return _cached_geometry(tuple(lhs_shape), tuple(rhs_shape), tuple(out_sp),
                            params["feature_group_count"], params["window_strides"],
                            params["padding"], params["rhs_dilation"])


@functools.lru_cache(maxsize=256)
def _cached_geometry(lhs_shape, rhs_shape, out_sp, g, window_strides, padding, rhs_dilation):
    return _Geometry(lhs_shape[0], lhs_shape[1], lhs_shape[2:], rhs_shape[0], rhs_shape[2:],
                     out_sp, g, window_strides, padding, rhs_dilation)


def _run(mode, geo, a, b, out):
    """Run the kernel in ``mode`` (0: convolution, 1: input gradient, 2: weight gradient)."""
    cols = np.empty(geo.c * geo.kk * geo.p, out.dtype)
    _kernel(out.dtype)(mode, *geo.ints, _read_only(a).reshape(-1), _read_only(b).reshape(-1),
                       cols, _read_only(cols), out)
    return out


def _forward_fast(lhs, rhs, geo):
    return _run(0, geo, lhs, rhs, np.empty(geo.n * geo.o * geo.p, lhs.dtype))


def _lhs_grad_fast(ct, rhs, geo):
    return _run(1, geo, ct, rhs, np.empty(geo.n * geo.c * math.prod(geo.lhs), ct.dtype))


def _rhs_grad_fast(lhs, ct, geo):
    g, og, kg = geo.g, geo.o // geo.g, geo.kg
    dw_t = _run(2, geo, lhs, ct, np.empty(g * kg * og, lhs.dtype))
    return np.ascontiguousarray(np.swapaxes(dw_t.reshape(g, kg, og), 1, 2))


def _frame(n, lo, hi, ld):
    """The padded, dilated frame of one spatial dim: its size and the slices ``(of x, of the
    frame)`` where the elements of x that survive the crop sit."""
    size = _dilate(n, ld) + lo + hi
    first = 0 if lo >= 0 else (-lo + ld - 1) // ld  # first element not cropped in front
    last = n if size <= 0 else min(n, (size - 1 - lo) // ld + 1)
    last = max(last, first)
    start = lo + first * ld
    return max(size, 0), slice(first, last), slice(start, start + (last - first - 1) * ld + 1
                                                    if last > first else start, ld)


def _taps(window, out_sp, strides, rhs_dilation):
    """For each window tap: its index and the frame slices it reads at every output."""
    for tap in itertools.product(*[range(k) for k in window]):
        yield tap, tuple(slice(t * d, t * d + (o - 1) * s + 1, s) for t, d, o, s in
                         zip(tap, rhs_dilation, out_sp, strides, strict=True))


def _im2col_generic(xp, x, window, out_sp, params):
    """``(N, C, *window, *out_sp)`` columns through the array module (any rank, any device)."""
    frames = [_frame(n, lo, hi, ld) for n, (lo, hi), ld in
              zip(x.shape[2:], params["padding"], params["lhs_dilation"], strict=True)]
    frame = xp.zeros(x.shape[:2] + tuple(f[0] for f in frames), x.dtype)
    all2 = (slice(None), slice(None))
    frame[all2 + tuple(f[2] for f in frames)] = x[all2 + tuple(f[1] for f in frames)]
    cols = xp.empty(x.shape[:2] + tuple(window) + tuple(out_sp), x.dtype)
    for tap, where in _taps(window, out_sp, params["window_strides"], params["rhs_dilation"]):
        cols[all2 + tap] = frame[all2 + where]
    return cols


def _col2im_generic(xp, cols, lhs_shape, window, out_sp, params):
    """The adjoint of ``_im2col_generic``: ``cols (N, C, *window, *out_sp)`` summed back."""
    frames = [_frame(n, lo, hi, ld) for n, (lo, hi), ld in
              zip(lhs_shape[2:], params["padding"], params["lhs_dilation"], strict=True)]
    frame = xp.zeros(cols.shape[:2] + tuple(f[0] for f in frames), cols.dtype)
    all2 = (slice(None), slice(None))
    for tap, where in _taps(window, out_sp, params["window_strides"], params["rhs_dilation"]):
        frame[all2 + where] += cols[all2 + tap]
    dx = xp.zeros(tuple(lhs_shape), cols.dtype)
    dx[all2 + tuple(f[1] for f in frames)] = frame[all2 + tuple(f[2] for f in frames)]
    return dx


def _group_matrices(xp, cols, n, g, kg, p):
    """``(N, C, *window, *out)`` columns as ``(N, groups, Cg * K, P)``."""
    return xp.ascontiguousarray(cols).reshape(n, g, kg, p)


def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               feature_group_count):
    from ..devices import array_module

    xp = array_module(lhs)
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation, feature_group_count=feature_group_count)
    out_sp = conv_output_shape(lhs.shape, rhs.shape, window_strides, padding, lhs_dilation,
                               rhs_dilation)
    n, o = lhs.shape[0], rhs.shape[0]
    if 0 in (n, o) + out_sp + lhs.shape[1:2]:
        return xp.zeros((n, o) + out_sp, lhs.dtype)
    geo = _geometry(lhs.shape, rhs.shape, out_sp, params)
    if _fast(lhs, len(out_sp), lhs_dilation):
        return _forward_fast(lhs, rhs, geo).reshape((n, o) + out_sp)
    g = feature_group_count
    cols = _im2col_generic(xp, lhs, rhs.shape[2:], out_sp, params)
    w = xp.ascontiguousarray(rhs).reshape(g, o // g, geo.kg)
    out = xp.matmul(w, _group_matrices(xp, cols, n, g, geo.kg, geo.p))
    return out.reshape((n, o) + out_sp).astype(lhs.dtype, copy=False)


def _conv_lhs_grad_impl(ct, rhs, *, lhs_shape, window_strides, padding, lhs_dilation,
                        rhs_dilation, feature_group_count):
    from ..devices import array_module

    xp = array_module(ct)
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation, feature_group_count=feature_group_count)
    g = feature_group_count
    full_shape = (ct.shape[0], rhs.shape[1] * g) + tuple(lhs_shape)
    out_sp = ct.shape[2:]
    if 0 in ct.shape + full_shape[1:2] or 0 in rhs.shape[2:]:
        return xp.zeros(full_shape, ct.dtype)
    geo = _geometry(full_shape, rhs.shape, out_sp, params)
    if _fast(ct, len(out_sp), lhs_dilation):
        return _lhs_grad_fast(ct, rhs, geo).reshape(full_shape)
    og = rhs.shape[0] // g
    w_t = xp.swapaxes(xp.ascontiguousarray(rhs).reshape(g, og, geo.kg), 1, 2)
    cols = xp.matmul(w_t, xp.ascontiguousarray(ct).reshape(geo.n, g, og, geo.p))
    cols = cols.reshape(full_shape[:2] + rhs.shape[2:] + out_sp)
    return _col2im_generic(xp, cols, full_shape, rhs.shape[2:], out_sp, params).astype(
        ct.dtype, copy=False)


def _conv_rhs_grad_impl(lhs, ct, *, rhs_shape, window_strides, padding, lhs_dilation,
                        rhs_dilation, feature_group_count):
    from ..devices import array_module

    xp = array_module(lhs)
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation, feature_group_count=feature_group_count)
    g = feature_group_count
    o = ct.shape[1]
    full_shape = (o, lhs.shape[1] // g) + tuple(rhs_shape)
    out_sp = ct.shape[2:]
    if 0 in ct.shape + full_shape:
        return xp.zeros(full_shape, lhs.dtype)
    geo = _geometry(lhs.shape, full_shape, out_sp, params)
    if _fast(lhs, len(out_sp), lhs_dilation):
        return _rhs_grad_fast(lhs, ct, geo).reshape(full_shape)
    cols = _im2col_generic(xp, lhs, tuple(rhs_shape), out_sp, params)
    cols = _group_matrices(xp, cols, geo.n, g, geo.kg, geo.p)
    ct = xp.ascontiguousarray(ct).reshape(geo.n, g, o // g, geo.p)
    dw = xp.matmul(ct, xp.swapaxes(cols, 2, 3)).sum(0)
    return dw.reshape(full_shape).astype(lhs.dtype, copy=False)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, feature_group_count=1):
    """Bind ``conv_general_dilated_p`` with normalized (tuple) params."""
    nsp = _aval(lhs).ndim - 2
    ones = (1,) * nsp
    return conv_general_dilated_p.bind(
        lhs, rhs,
        window_strides=tuple(int(s) for s in window_strides),
        padding=tuple((int(lo), int(hi)) for lo, hi in padding),
        lhs_dilation=ones if lhs_dilation is None else tuple(int(d) for d in lhs_dilation),
        rhs_dilation=ones if rhs_dilation is None else tuple(int(d) for d in rhs_dilation),
        feature_group_count=int(feature_group_count),
    )


def _bilinear_jvp(prim):
    """The JVP of a primitive linear in each of its two operands (all three here)."""

    def jvp(primals, tangents, **params):
        a, b = primals
        t_a, t_b = tangents
        ans = prim.bind(a, b, **params)
        out = Zero(_aval(ans))
        if type(t_a) is not Zero:
            out = add_tangents(out, prim.bind(t_a, b, **params))
        if type(t_b) is not Zero:
            out = add_tangents(out, prim.bind(a, t_b, **params))
        return ans, out

    return jvp


def _define(prim, abstract_eval, impl, transpose, batch):
    """Set the rules of one of the three (bilinear, opaque) primitives; jit's orchestrator
    runs its impl (im2col/col2im kernels + BLAS)."""
    prim.impl = checked(abstract_eval, impl)
    prim.abstract_eval = abstract_eval
    prim.jvp = _bilinear_jvp(prim)
    prim.transpose = transpose
    prim.batch = batch
    prim.fusion_kind = "opaque"
    prim.call_kind = "impl"


def _trivial_transpose(name, ct, args):
    """What every transpose here starts with: exactly one operand is linear, and a symbolic
    zero cotangent gives zeros for it (None: nothing trivial)."""
    from .elementwise import full

    if all(is_undefined(a) for a in args):
        raise TypeError(f"{name}: transpose of a product of two linear values")
    if type(ct) is not Zero:
        return None
    return [full(a.aval.shape, 0, a.aval.dtype) if is_undefined(a) else None for a in args]


def _conv_transpose(ct, lhs, rhs, **params):
    zeros = _trivial_transpose("conv_general_dilated", ct, (lhs, rhs))
    if zeros is not None:
        return zeros
    if is_undefined(lhs):
        return [conv_lhs_grad_p.bind(ct, rhs, lhs_shape=lhs.aval.shape[2:], **params), None]
    return [None, conv_rhs_grad_p.bind(lhs, ct, rhs_shape=rhs.aval.shape[2:], **params)]


def _unbatched_out(abstract_eval, args, dims, params):
    avals = [_aval(x) for x in args]
    avals = [a if d is None else ShapedArray(a.shape[:d] + a.shape[d + 1:], a.dtype)
             for a, d in zip(avals, dims, strict=True)]
    return abstract_eval(*avals, **params)


def _empty_batch(abstract_eval, args, dims, params):
    """vmap over a batch of 0: an empty batch cannot become feature groups (0 groups)."""
    from .elementwise import full

    out = _unbatched_out(abstract_eval, args, dims, params)
    return full((0,) + out.shape, 0, out.dtype), 0


def _as_features(x, d, b):
    """``x (N, F, ...)`` batched at ``d`` (or unbatched: broadcast) as ``(N, b * F, ...)``, the
    batch outermost in the features (so batch entries become feature groups)."""
    if d is None:
        shape = _aval(x).shape
        x = broadcast_in_dim(x, (shape[0], b) + shape[1:], (0,) + tuple(range(2, len(shape) + 1)))
    else:
        x = move_axis(x, d, 1)
    shape = _aval(x).shape
    return reshape(x, (shape[0], b * shape[2]) + shape[3:])


def _conv_batch(axis_size, args, dims, *, window_strides, padding, lhs_dilation, rhs_dilation,
                feature_group_count):
    lhs, rhs = args
    d_lhs, d_rhs = dims
    b, g = axis_size, feature_group_count
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation)
    if b == 0:
        return _empty_batch(_conv_abstract_eval, args, dims,
                            dict(params, feature_group_count=g))
    if d_rhs is None:
        # fold the batch into N
        x = move_axis(lhs, d_lhs, 0)
        shape = _aval(x).shape
        out = conv_general_dilated_p.bind(reshape(x, (b * shape[1],) + shape[2:]), rhs,
                                          feature_group_count=g, **params)
        oshape = _aval(out).shape
        return reshape(out, (b, shape[1]) + oshape[1:]), 0
    w = move_axis(rhs, d_rhs, 0)
    wshape = _aval(w).shape  # (B, O, Cg, *window)
    o, nsp = wshape[1], len(wshape) - 3
    og = o // g
    if d_lhs is None:
        # fold the batch into the output features, keeping each group's features contiguous
        w = reshape(w, (b, g, og) + wshape[2:])
        w = transpose(w, (1, 0, 2) + tuple(range(3, 4 + nsp)))
        w = reshape(w, (g * b * og,) + wshape[2:])
        out = conv_general_dilated_p.bind(lhs, w, feature_group_count=g, **params)
        oshape = _aval(out).shape
        out = reshape(out, (oshape[0], g, b, og) + oshape[2:])
        out = transpose(out, (0, 2, 1, 3) + tuple(range(4, 4 + nsp)))
        return reshape(out, (oshape[0], b, o) + oshape[2:]), 1
    # both batched: the batch becomes extra feature groups
    x = _as_features(lhs, d_lhs, b)
    w = reshape(w, (b * o,) + wshape[2:])
    out = conv_general_dilated_p.bind(x, w, feature_group_count=b * g, **params)
    oshape = _aval(out).shape
    return reshape(out, (oshape[0], b, o) + oshape[2:]), 1


_define(conv_general_dilated_p, _conv_abstract_eval, _conv_impl, _conv_transpose, _conv_batch)


# --- conv_lhs_grad: the input gradient (PyTorch's conv_transpose) -------------------------------
#
# ``conv_lhs_grad(ct, rhs)`` is the adjoint of ``lhs -> conv_general_dilated(lhs, rhs)`` applied
# to ``ct (N, O, *out)``: GEMM ``W^T @ ct`` and a col2im scatter-add, never a convolution of a
# zero-dilated cotangent. ``lhs_shape`` is the input's spatial shape (a strided convolution's
# output does not determine it). Params otherwise as the forward convolution's.

conv_lhs_grad_p = Primitive("conv_lhs_grad")


def _adjoint_check(name, ct, other, spatial, lhs, rhs, params):
    """The shape rule of an adjoint: ``ct`` is the output of convolving ``lhs`` with
    ``rhs`` (one of them built from the params)."""
    if ct.ndim != other.ndim or len(spatial) != ct.ndim - 2:
        raise ShapeError(f"{name}: cotangent {ct.shape}, operand {other.shape} and spatial "
                         f"shape {spatial} need one rank (spatial dims + 2)")
    if ct.dtype != other.dtype:
        raise DTypeError(f"{name}: cotangent dtype {ct.dtype} != operand dtype {other.dtype}")
    out = _conv_check(name, lhs, rhs, **params)
    if out.shape != ct.shape:
        raise ShapeError(f"{name}: cotangent {ct.shape} is not the shape {out.shape} of the "
                         f"convolution of lhs {lhs.shape} with rhs {rhs.shape}")


def _lhs_grad_abstract_eval(ct, rhs, *, lhs_shape, **params):
    lhs = ShapedArray((ct.shape[0], rhs.shape[1] * params["feature_group_count"])
                      + tuple(lhs_shape), ct.dtype)
    _adjoint_check("conv_lhs_grad", ct, rhs, lhs_shape, lhs, rhs, params)
    return lhs


def _lhs_grad_transpose(u, ct, rhs, *, lhs_shape, **params):
    zeros = _trivial_transpose("conv_lhs_grad", u, (ct, rhs))
    if zeros is not None:
        return zeros
    if is_undefined(ct):
        return [conv_general_dilated_p.bind(u, rhs, **params), None]
    return [None, conv_rhs_grad_p.bind(u, ct, rhs_shape=rhs.aval.shape[2:], **params)]


def _lhs_grad_batch(axis_size, args, dims, *, lhs_shape, feature_group_count, **params):
    ct, rhs = args
    d_ct, d_rhs = dims
    b, g = axis_size, feature_group_count
    if b == 0:
        return _empty_batch(_lhs_grad_abstract_eval, args, dims,
                            dict(params, lhs_shape=lhs_shape, feature_group_count=g))
    if d_rhs is None:
        # fold the batch into N
        x = move_axis(ct, d_ct, 0)
        shape = _aval(x).shape
        out = conv_lhs_grad_p.bind(reshape(x, (b * shape[1],) + shape[2:]), rhs,
                                   lhs_shape=lhs_shape, feature_group_count=g, **params)
        return reshape(out, (b, shape[1]) + _aval(out).shape[1:]), 0
    # the batch becomes extra feature groups (a batched weight acts on its own cotangent)
    w = move_axis(rhs, d_rhs, 0)
    wshape = _aval(w).shape
    out = conv_lhs_grad_p.bind(_as_features(ct, d_ct, b), reshape(w, (b * wshape[1],)
                                                                    + wshape[2:]),
                               lhs_shape=lhs_shape, feature_group_count=b * g, **params)
    oshape = _aval(out).shape
    return reshape(out, (oshape[0], b, oshape[1] // b) + oshape[2:]), 1


_define(conv_lhs_grad_p, _lhs_grad_abstract_eval, _conv_lhs_grad_impl, _lhs_grad_transpose,
        _lhs_grad_batch)


# --- conv_rhs_grad: the weight gradient ---------------------------------------------------------
#
# ``conv_rhs_grad(lhs, ct)`` is the adjoint of ``rhs -> conv_general_dilated(lhs, rhs)`` applied
# to ``ct``: ``ct @ cols^T`` summed over the images, with im2col's columns of ``lhs``.
# ``rhs_shape`` is the window (spatial) shape.

conv_rhs_grad_p = Primitive("conv_rhs_grad")


def _rhs_grad_abstract_eval(lhs, ct, *, rhs_shape, **params):
    g = max(params["feature_group_count"], 1)
    rhs = ShapedArray((ct.shape[1] if ct.ndim > 1 else 0, lhs.shape[1] // g) + tuple(rhs_shape),
                      lhs.dtype)
    _adjoint_check("conv_rhs_grad", ct, lhs, rhs_shape, lhs, rhs, params)
    return rhs


def _rhs_grad_transpose(v, lhs, ct, *, rhs_shape, **params):
    zeros = _trivial_transpose("conv_rhs_grad", v, (lhs, ct))
    if zeros is not None:
        return zeros
    if is_undefined(lhs):
        return [conv_lhs_grad_p.bind(ct, v, lhs_shape=lhs.aval.shape[2:], **params), None]
    return [None, conv_general_dilated_p.bind(lhs, v, **params)]


def _rhs_grad_batch(axis_size, args, dims, *, rhs_shape, feature_group_count, **params):
    lhs, ct = args
    b, g = axis_size, feature_group_count
    if b == 0:
        return _empty_batch(_rhs_grad_abstract_eval, args, dims,
                            dict(params, rhs_shape=rhs_shape, feature_group_count=g))
    # the batch becomes extra feature groups: each entry's images and cotangent pair up
    out = conv_rhs_grad_p.bind(_as_features(lhs, dims[0], b), _as_features(ct, dims[1], b),
                               rhs_shape=rhs_shape, feature_group_count=b * g, **params)
    oshape = _aval(out).shape
    return reshape(out, (b, oshape[0] // b) + oshape[1:]), 0


_define(conv_rhs_grad_p, _rhs_grad_abstract_eval, _conv_rhs_grad_impl, _rhs_grad_transpose,
        _rhs_grad_batch)
