"""conv_general_dilated: N-d convolution (cross-correlation, as every DL framework) in PyTorch's
layout, lhs ``(N, C, *spatial)`` and rhs ``(O, C // feature_group_count, *window)``, output
``(N, O, *out_spatial)``.

Params (all tuples with one entry per spatial dim): ``window_strides``, ``padding`` (explicit
``(lo, hi)`` pairs, negative crops), ``lhs_dilation`` (transposed-conv style input dilation),
``rhs_dilation`` (atrous kernel dilation), and ``feature_group_count``.

The impl is im2col + one batched matmul per group. The transposes are themselves convolutions
(the formulas of JAX's ``_conv_general_dilated_transpose_lhs/rhs``): w.r.t. lhs, a conv of the
cotangent with the flipped kernel, ``lhs_dilation = window_strides``; w.r.t. rhs, a conv of the
lhs with the cotangent as kernel, ``rhs_dilation = window_strides``, groups folded into the
feature dim.
"""

import numpy as np

from ..abstract import ShapedArray
from ..ad_util import Zero, add_tangents, instantiate, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .indexing import checked
from .shape import move_axis, reshape, rev_p, transpose

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


def _conv_abstract_eval(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                        feature_group_count):
    nsp = lhs.ndim - 2
    where = f"lhs {lhs.shape}, rhs {rhs.shape}"
    if lhs.ndim < 3 or rhs.ndim != lhs.ndim:
        raise ShapeError(f"conv_general_dilated: expected lhs (N, C, *spatial) and rhs "
                         f"(O, C/groups, *window) of one rank >= 3, got {where}")
    for pname, p in (("window_strides", window_strides), ("padding", padding),
                     ("lhs_dilation", lhs_dilation), ("rhs_dilation", rhs_dilation)):
        if len(p) != nsp:
            raise ShapeError(f"conv_general_dilated: {pname} {p} needs one entry per spatial "
                             f"dim ({nsp}) for {where}")
    if any(s < 1 for s in window_strides + lhs_dilation + rhs_dilation):
        raise ShapeError("conv_general_dilated: strides and dilations must be >= 1, got "
                         f"{window_strides}, {lhs_dilation}, {rhs_dilation}")
    g = feature_group_count
    if g < 1 or lhs.shape[1] != rhs.shape[1] * g or rhs.shape[0] % g:
        raise ShapeError(
            f"conv_general_dilated: {where} with feature_group_count={g}: need "
            f"lhs channels == rhs.shape[1] * groups and rhs.shape[0] divisible by groups "
            f"(the weight is (out_channels, in_channels // groups, *window))"
        )
    if lhs.dtype != rhs.dtype:
        raise DTypeError(f"conv_general_dilated: lhs dtype {lhs.dtype} != rhs dtype "
                         f"{rhs.dtype}; convert with .astype() first")
    if lhs.dtype.kind not in "iufc":
        raise DTypeError(f"conv_general_dilated: dtype {lhs.dtype} is not supported")
    out = conv_output_shape(lhs.shape, rhs.shape, window_strides, padding, lhs_dilation,
                            rhs_dilation)
    return ShapedArray((lhs.shape[0], rhs.shape[0]) + out, lhs.dtype)


def _conv_impl(lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
               feature_group_count):
    from ..devices import array_module

    xp = array_module(lhs)
    n, c = lhs.shape[:2]
    o, g = rhs.shape[0], feature_group_count
    window = rhs.shape[2:]
    out_sp = conv_output_shape(lhs.shape, rhs.shape, window_strides, padding, lhs_dilation,
                               rhs_dilation)
    if any(d == 0 for d in (n, o) + out_sp):
        return xp.zeros((n, o) + out_sp, lhs.dtype)
    x = lhs
    if any(d > 1 for d in lhs_dilation):
        shape = (n, c) + tuple(_dilate(s, d) for s, d in zip(x.shape[2:], lhs_dilation))
        dilated = xp.zeros(shape, x.dtype)
        dilated[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in lhs_dilation)] = x
        x = dilated
    # negative padding crops, positive padding adds zeros
    crop = tuple(slice(max(-lo, 0), s - max(-hi, 0)) for s, (lo, hi) in zip(x.shape[2:], padding))
    x = x[(slice(None), slice(None)) + crop]
    pads = ((0, 0), (0, 0)) + tuple((max(lo, 0), max(hi, 0)) for lo, hi in padding)
    if any(p != (0, 0) for p in pads):
        x = xp.pad(x, pads)
    x = xp.ascontiguousarray(x)
    st = x.strides
    view = xp.lib.stride_tricks.as_strided(
        x, shape=(n, c) + out_sp + window,
        strides=st[:2] + tuple(s * k for s, k in zip(st[2:], window_strides))
        + tuple(s * d for s, d in zip(st[2:], rhs_dilation)),
    )
    nsp = len(out_sp)
    cg, og = c // g, o // g
    p = int(np.prod(out_sp, dtype=np.int64))
    kk = int(np.prod(window, dtype=np.int64))
    # im2col: (G, N*P, Cg*K) @ (G, Cg*K, Og)
    view = view.reshape((n, g, cg) + out_sp + window)
    perm = (1, 0) + tuple(range(3, 3 + nsp)) + (2,) + tuple(range(3 + nsp, 3 + 2 * nsp))
    cols = xp.transpose(view, perm).reshape(g, n * p, cg * kk)
    w = xp.transpose(rhs.reshape(g, og, cg * kk), (0, 2, 1))
    out = xp.matmul(cols, w).reshape((g, n) + out_sp + (og,))
    out = xp.transpose(out, (1, 0, 2 + nsp) + tuple(range(2, 2 + nsp)))
    return xp.ascontiguousarray(out.reshape((n, o) + out_sp)).astype(lhs.dtype, copy=False)


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


def _conv_jvp(primals, tangents, **params):
    lhs, rhs = primals
    t_lhs, t_rhs = tangents
    ans = conv_general_dilated_p.bind(lhs, rhs, **params)
    out = Zero(_aval(ans))
    if type(t_lhs) is not Zero:
        out = add_tangents(out, conv_general_dilated_p.bind(t_lhs, rhs, **params))
    if type(t_rhs) is not Zero:
        out = add_tangents(out, conv_general_dilated_p.bind(lhs, t_rhs, **params))
    return ans, out


def _vjp_lhs_padding(in_shape, window, strides, out_shape, padding, lhs_dilation,
                     rhs_dilation):
    pads = []
    for n, k, s, o, (lo, _), ld, rd in zip(in_shape, window, strides, out_shape, padding,
                                           lhs_dilation, rhs_dilation, strict=True):
        before = _dilate(k, rd) - lo - 1
        after = _dilate(n, ld) + _dilate(k, rd) - 1 - _dilate(o, s) - before
        pads.append((before, after))
    return tuple(pads)


def _vjp_rhs_padding(in_shape, window, strides, out_shape, padding, lhs_dilation,
                     rhs_dilation):
    pads = []
    for n, k, s, o, (lo, _), ld, rd in zip(in_shape, window, strides, out_shape, padding,
                                           lhs_dilation, rhs_dilation, strict=True):
        hi = (_dilate(o, s) - _dilate(n, ld)) + (_dilate(k, rd) - lo - 1)
        pads.append((lo, hi))
    return tuple(pads)


def _conv_transpose(ct, lhs, rhs, *, window_strides, padding, lhs_dilation, rhs_dilation,
                    feature_group_count):
    if is_undefined(lhs) and is_undefined(rhs):
        raise TypeError("conv_general_dilated: transpose of a product of two linear values")
    from .elementwise import full

    g = feature_group_count
    lhs_shape = lhs.aval.shape if is_undefined(lhs) else _aval(lhs).shape
    rhs_shape = rhs.aval.shape if is_undefined(rhs) else _aval(rhs).shape
    dtype = (lhs.aval if is_undefined(lhs) else _aval(lhs)).dtype
    ct_shape = _aval(ct).shape if type(ct) is not Zero else ct.aval.shape
    nsp = len(lhs_shape) - 2
    sdims = tuple(range(2, 2 + nsp))
    if type(ct) is Zero or int(np.prod(ct_shape, dtype=np.int64)) == 0:
        # no cotangent (or an empty one: avoid degenerate convolutions with empty windows)
        zeros = full(lhs_shape if is_undefined(lhs) else rhs_shape, 0, dtype)
        return [zeros, None] if is_undefined(lhs) else [None, zeros]
    ct = instantiate(ct)
    if is_undefined(lhs):
        o, cg = rhs_shape[:2]
        og = o // g
        w = reshape(rhs, (g, og, cg) + rhs_shape[2:])
        w = transpose(w, (0, 2, 1) + tuple(range(3, 3 + nsp)))
        w = reshape(w, (g * cg, og) + rhs_shape[2:])
        w = rev_p.bind(w, dimensions=sdims)
        pads = _vjp_lhs_padding(lhs_shape[2:], rhs_shape[2:], window_strides, ct_shape[2:],
                                padding, lhs_dilation, rhs_dilation)
        out = conv_general_dilated_p.bind(
            ct, w, window_strides=lhs_dilation, padding=pads, lhs_dilation=window_strides,
            rhs_dilation=rhs_dilation, feature_group_count=g)
        return [out, None]
    # w.r.t. rhs: the batch N becomes the contracted feature dim, with groups kept apart
    n, c = lhs_shape[:2]
    cg = c // g
    x = reshape(lhs, (n, g, cg) + lhs_shape[2:])
    x = transpose(x, (2, 1, 0) + tuple(range(3, 3 + nsp)))
    x = reshape(x, (cg, g * n) + lhs_shape[2:])
    k = transpose(ct, (1, 0) + sdims)
    pads = _vjp_rhs_padding(lhs_shape[2:], rhs_shape[2:], window_strides, ct_shape[2:],
                            padding, lhs_dilation, rhs_dilation)
    out = conv_general_dilated_p.bind(
        x, k, window_strides=rhs_dilation, padding=pads, lhs_dilation=lhs_dilation,
        rhs_dilation=window_strides, feature_group_count=g)
    return [None, transpose(out, (1, 0) + sdims)]


def _conv_batch(axis_size, args, dims, *, window_strides, padding, lhs_dilation, rhs_dilation,
                feature_group_count):
    lhs, rhs = args
    d_lhs, d_rhs = dims
    b, g = axis_size, feature_group_count
    params = dict(window_strides=window_strides, padding=padding, lhs_dilation=lhs_dilation,
                  rhs_dilation=rhs_dilation)
    if b == 0:
        # an empty batch cannot become feature groups (0 groups): the result is just empty
        from .elementwise import full

        avals = [_aval(x) for x in args]
        avals = [a if d is None else ShapedArray(a.shape[:d] + a.shape[d + 1:], a.dtype)
                 for a, d in zip(avals, dims, strict=True)]
        out = _conv_abstract_eval(*avals, feature_group_count=g, **params)
        return full((0,) + out.shape, 0, out.dtype), 0
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
    x = move_axis(lhs, d_lhs, 1)  # (N, B, C, *spatial)
    xshape = _aval(x).shape
    x = reshape(x, (xshape[0], b * xshape[2]) + xshape[3:])
    w = reshape(w, (b * o,) + wshape[2:])
    out = conv_general_dilated_p.bind(x, w, feature_group_count=b * g, **params)
    oshape = _aval(out).shape
    return reshape(out, (oshape[0], b, o) + oshape[2:]), 1


conv_general_dilated_p.impl = checked(_conv_abstract_eval, _conv_impl)
conv_general_dilated_p.abstract_eval = _conv_abstract_eval
conv_general_dilated_p.jvp = _conv_jvp
conv_general_dilated_p.transpose = _conv_transpose
conv_general_dilated_p.batch = _conv_batch
conv_general_dilated_p.fusion_kind = "opaque"
conv_general_dilated_p.call_kind = "impl"  # im2col + BLAS
