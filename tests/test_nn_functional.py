"""fnx.nn.functional against NumPy references written from PyTorch's documented formulas;
derivatives by float64 central differences (check_grads), jit against eager, vmap against a
Python loop, the functional and in-place running statistics, randomness, and the designed
errors. (tests/test_vs_torch_functional.py compares with PyTorch itself when installed.)"""

import math

import numpy as np
import pytest
from scipy import special as sp

import fnx
import fnx.numpy as fnp
import fnx.nn.functional as F
from fnx.core.errors import TraceError

R = np.random.default_rng(0)


def rand(*shape, low=-2.0, high=2.0):
    return R.uniform(low, high, shape)


def t(a):
    return fnx.tensor(a)


def close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


# --- NumPy references ------------------------------------------------------------------------


def np_conv(x, w, stride, pads, dilation, groups):
    """Direct cross-correlation, one output position at a time."""
    nsp = x.ndim - 2
    x = np.pad(x, [(0, 0), (0, 0)] + list(pads))
    n, c = x.shape[:2]
    o, k = w.shape[0], w.shape[2:]
    out_sp = [(x.shape[2 + i] - dilation[i] * (k[i] - 1) - 1) // stride[i] + 1
              for i in range(nsp)]
    out = np.zeros((n, o, *out_sp))
    cg, og = c // groups, o // groups
    for pos in np.ndindex(*out_sp):
        win = tuple(slice(pos[i] * stride[i], pos[i] * stride[i] + dilation[i] * (k[i] - 1) + 1,
                          dilation[i]) for i in range(nsp))
        for g in range(groups):
            xs = x[(slice(None), slice(g * cg, (g + 1) * cg)) + win]
            out[(slice(None), slice(g * og, (g + 1) * og)) + pos] = np.tensordot(
                xs, w[g * og:(g + 1) * og], axes=(list(range(1, nsp + 2)),) * 2)
    return out


def np_conv_transpose(x, w, stride, padding, output_padding, groups, dilation):
    """Scatter definition: input element i adds ``x[i] * w[k]`` at ``i * stride + k * dilation``
    of the uncropped output, which is then cropped by ``padding``."""
    nsp = x.ndim - 2
    n, c_in = x.shape[:2]
    cog, k = w.shape[1], w.shape[2:]
    full = [(x.shape[2 + i] - 1) * stride[i] + dilation[i] * (k[i] - 1) + 1 + output_padding[i]
            for i in range(nsp)]
    out = np.zeros((n, cog * groups, *full))
    cig = c_in // groups
    for pos in np.ndindex(*x.shape[2:]):
        for kk in np.ndindex(*k):
            tgt = tuple(pos[i] * stride[i] + kk[i] * dilation[i] for i in range(nsp))
            for g in range(groups):
                out[(slice(None), slice(g * cog, (g + 1) * cog)) + tgt] += np.einsum(
                    "nc,co->no", x[(slice(None), slice(g * cig, (g + 1) * cig)) + pos],
                    w[(slice(g * cig, (g + 1) * cig), slice(None)) + kk])
    crop = tuple(slice(padding[i], full[i] - padding[i]) for i in range(nsp))
    return out[(Ellipsis,) + crop]


def _pool_out(n, k, s, p, d, ceil_mode):
    if ceil_mode:
        o = math.ceil((n + 2 * p - d * (k - 1) - 1) / s) + 1
        return o - 1 if (o - 1) * s >= n + p else o
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def np_max_pool(x, k, s, p, d, ceil_mode):
    """Each window's first maximum over its in-bounds positions, and its flat index."""
    nsp = len(k)
    sp_ = x.shape[-nsp:]
    out_sp = [_pool_out(sp_[i], k[i], s[i], p[i], d[i], ceil_mode) for i in range(nsp)]
    lead = x.shape[:-nsp]
    out = np.full(lead + tuple(out_sp), -np.inf)
    idx = np.zeros(lead + tuple(out_sp), np.int64)
    for pos in np.ndindex(*out_sp):
        best = np.full(lead, -np.inf)
        arg = np.full(lead, -1)
        for kk in np.ndindex(*k):
            co = [pos[i] * s[i] - p[i] + kk[i] * d[i] for i in range(nsp)]
            if not all(0 <= co[i] < sp_[i] for i in range(nsp)):
                continue
            v = x[(Ellipsis,) + tuple(co)]
            flat = np.ravel_multi_index(co, sp_)
            better = (v > best) | (arg < 0)
            best = np.where(better, v, best)
            arg = np.where(better, flat, arg)
        out[(Ellipsis,) + pos] = best
        idx[(Ellipsis,) + pos] = arg
    return out, idx


def np_avg_pool(x, k, s, p, ceil_mode, count_include_pad, divisor_override=None):
    nsp = len(k)
    sp_ = x.shape[-nsp:]
    out_sp = [_pool_out(sp_[i], k[i], s[i], p[i], 1, ceil_mode) for i in range(nsp)]
    out = np.zeros(x.shape[:-nsp] + tuple(out_sp))
    for pos in np.ndindex(*out_sp):
        start = [pos[i] * s[i] - p[i] for i in range(nsp)]
        end = [min(start[i] + k[i], sp_[i] + p[i]) for i in range(nsp)]
        size = math.prod(e - b for b, e in zip(start, end))
        lo = [max(b, 0) for b in start]
        hi = [min(e, n) for e, n in zip(end, sp_)]
        total = x[(Ellipsis,) + tuple(slice(a, b) for a, b in zip(lo, hi))].sum(
            axis=tuple(range(-nsp, 0)))
        if divisor_override:
            div = divisor_override
        else:
            div = size if count_include_pad else math.prod(b - a for a, b in zip(lo, hi))
        out[(Ellipsis,) + pos] = total / div
    return out


def np_adaptive(x, out_sp, reducer):
    nsp = len(out_sp)
    sp_ = x.shape[-nsp:]
    out = np.zeros(x.shape[:-nsp] + tuple(out_sp))
    for pos in np.ndindex(*out_sp):
        win = tuple(slice(math.floor(pos[i] * sp_[i] / out_sp[i]),
                          math.ceil((pos[i] + 1) * sp_[i] / out_sp[i])) for i in range(nsp))
        out[(Ellipsis,) + pos] = reducer(x[(Ellipsis,) + win], axis=tuple(range(-nsp, 0)))
    return out


def np_linear_matrix(n_in, n_out, align_corners, scale=None):
    """Interpolation weights ``(n_out, n_in)`` from PyTorch's source-index formula."""
    m = np.zeros((n_out, n_in))
    for j in range(n_out):
        if align_corners:
            src = j * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            ratio = 1 / scale if scale else n_in / n_out
            src = max((j + 0.5) * ratio - 0.5, 0.0)
        i0 = min(int(math.floor(src)), n_in - 1)
        i1 = min(i0 + 1, n_in - 1)
        lam = src - i0
        m[j, i0] += 1 - lam
        m[j, i1] += lam
    return m


def np_cubic_matrix(n_in, n_out, align_corners):
    a = -0.75
    m = np.zeros((n_out, n_in))
    for j in range(n_out):
        if align_corners:
            src = j * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        else:
            src = (j + 0.5) * n_in / n_out - 0.5
        i = math.floor(src)
        tt = src - i
        for tap in range(-1, 3):
            dist = abs(tap - tt)
            if dist <= 1:
                wgt = ((a + 2) * dist - (a + 3)) * dist * dist + 1
            else:
                wgt = ((a * dist - 5 * a) * dist + 8 * a) * dist - 4 * a
            m[j, min(max(i + tap, 0), n_in - 1)] += wgt
    return m


def apply_axes(x, mats):
    for j, m in enumerate(mats):
        axis = x.ndim - len(mats) + j
        x = np.moveaxis(np.tensordot(x, m, axes=([axis], [1])), -1, axis)
    return x


def np_log_softmax(x, axis):
    return x - sp.logsumexp(x, axis=axis, keepdims=True)


def np_reduce(loss, reduction):
    return {"mean": np.mean, "sum": np.sum, "none": lambda v: v}[reduction](loss)


# --- references: linear, convolution ---------------------------------------------------------


def test_linear_and_bilinear():
    x, w, b = rand(2, 3, 4), rand(5, 4), rand(5)
    close(F.linear(t(x), t(w), t(b)), x @ w.T + b)
    x1, x2, wb = rand(3, 2), rand(3, 4), rand(5, 2, 4)
    close(F.bilinear(t(x1), t(x2), t(wb), t(b)), np.einsum("ni,kij,nj->nk", x1, wb, x2) + b)


@pytest.mark.parametrize("nsp,stride,padding,dilation,groups", [
    (1, 1, 0, 1, 1), (1, 2, 1, 2, 2), (1, 1, "same", 2, 1), (1, 3, "valid", 1, 2),
    (2, 1, 1, 1, 1), (2, (2, 1), (1, 2), (1, 2), 2), (2, 1, "same", (2, 1), 1),
    (2, 2, 0, 1, 4),
])
def test_conv_matches_direct_loop(nsp, stride, padding, dilation, groups):
    c_in, c_out = 4, 8
    k = (3,) if nsp == 1 else (3, 2)
    x = rand(2, c_in, *((9,) if nsp == 1 else (7, 6)))
    w, b = rand(c_out, c_in // groups, *k), rand(c_out)
    s = (stride,) * nsp if isinstance(stride, int) else stride
    d = (dilation,) * nsp if isinstance(dilation, int) else dilation
    if padding == "same":
        pads = [((di * (ki - 1)) // 2, di * (ki - 1) - (di * (ki - 1)) // 2)
                for di, ki in zip(d, k)]
    elif padding == "valid":
        pads = [(0, 0)] * nsp
    else:
        pads = [(p, p) for p in ((padding,) * nsp if isinstance(padding, int) else padding)]
    want = np_conv(x, w, s, pads, d, groups) + b.reshape((-1,) + (1,) * nsp)
    fn = F.conv1d if nsp == 1 else F.conv2d
    got = fn(t(x), t(w), t(b), stride=stride, padding=padding, dilation=dilation, groups=groups)
    close(got, want)
    # unbatched input gives the batch's first element
    close(fn(t(x[0]), t(w), t(b), stride, padding, dilation, groups), want[0])


@pytest.mark.parametrize("nsp,stride,padding,output_padding,groups,dilation", [
    (1, 1, 0, 0, 1, 1), (1, 3, 1, 2, 2, 1), (1, 2, 2, 1, 1, 2),
    (2, 2, 1, 1, 1, 1), (2, (2, 3), (1, 0), (1, 2), 2, 1), (2, 1, 0, 0, 1, (2, 1)),
])
def test_conv_transpose_matches_scatter_definition(nsp, stride, padding, output_padding,
                                                   groups, dilation):
    tup = (lambda v: (v,) * nsp if isinstance(v, int) else v)
    c_in, cog = 4, 3
    k = (3,) if nsp == 1 else (3, 2)
    x = rand(2, c_in, *((5,) if nsp == 1 else (4, 3)))
    w, b = rand(c_in, cog, *k), rand(cog * groups)
    want = np_conv_transpose(x, w, tup(stride), tup(padding), tup(output_padding), groups,
                             tup(dilation)) + b.reshape((-1,) + (1,) * nsp)
    fn = F.conv_transpose1d if nsp == 1 else F.conv_transpose2d
    close(fn(t(x), t(w), t(b), stride, padding, output_padding, groups, dilation), want)


def test_unfold_and_fold_are_adjoint_im2col():
    x = rand(2, 3, 6, 5)
    kw = dict(kernel_size=(2, 3), dilation=(2, 1), padding=1, stride=(2, 1))
    cols = np.asarray(F.unfold(t(x), **kw))
    # unfold is the conv with a one-hot kernel per (c, kh, kw) entry
    eye = np.eye(3 * 6).reshape(18, 3, 2, 3)
    want = np_conv(x, eye, (2, 1), [(1, 1), (1, 1)], (2, 1), 1).reshape(2, 18, -1)
    close(cols, want)
    # fold is unfold's adjoint: <unfold(x), y> == <x, fold(y)>
    y = rand(*cols.shape)
    folded = np.asarray(F.fold(t(y), (6, 5), **kw))
    np.testing.assert_allclose(np.vdot(cols, y), np.vdot(x, folded), rtol=1e-10)


# --- references: pooling ---------------------------------------------------------------------


@pytest.mark.parametrize("nsp,k,s,p,d,ceil_mode", [
    (1, 3, None, 0, 1, False), (1, 3, 2, 1, 2, True), (1, 4, 3, 2, 1, True),
    (2, 2, None, 0, 1, False), (2, (3, 2), (2, 3), (1, 1), 1, True),
    (2, 3, 1, 1, (3, 2), False), (2, (2, 3), (1, 2), (1, 0), (2, 1), True),
])
def test_max_pool_matches_reference(nsp, k, s, p, d, ceil_mode):
    tup = (lambda v: (v,) * nsp if isinstance(v, int) else v)
    x = rand(2, 3, *((11,) if nsp == 1 else (7, 8)))
    want, want_idx = np_max_pool(x, tup(k), tup(s if s is not None else k), tup(p), tup(d),
                                 ceil_mode)
    fn = F.max_pool1d if nsp == 1 else F.max_pool2d
    out, idx = fn(t(x), k, s, p, d, ceil_mode, return_indices=True)
    close(out, want)
    np.testing.assert_array_equal(np.asarray(idx), want_idx)
    assert idx.dtype == fnp.int64
    close(fn(t(x[0]), k, s, p, d, ceil_mode), want[0])


def test_max_pool_ties_nan_and_gradient_go_to_one_element():
    x = np.array([[[1.0, 3.0, 3.0, 2.0, np.nan, 0.0]]])
    out, idx = F.max_pool1d(t(x), 3, 1, return_indices=True)
    np.testing.assert_array_equal(np.asarray(out)[0, 0, :2], [3.0, 3.0])
    np.testing.assert_array_equal(np.asarray(idx)[0, 0], [1, 1, 4, 4])
    assert np.isnan(np.asarray(out)[0, 0, 2:]).all()
    # the first maximum of a window takes the whole gradient (PyTorch), not a share
    g = fnx.grad(lambda v: F.max_pool1d(v, 2, 2).sum())(t(np.array([[[2.0, 2.0, 1.0, 5.0]]])))
    np.testing.assert_array_equal(np.asarray(g), [[[1.0, 0.0, 0.0, 1.0]]])


@pytest.mark.parametrize("nsp,k,s,p,ceil_mode,count_include_pad,divisor", [
    (1, 3, 2, 1, True, True, None), (1, 4, 3, 2, True, False, None), (1, 2, None, 0, False,
                                                                       True, None),
    (2, (3, 2), (2, 3), 1, True, False, None), (2, 3, 1, 1, False, True, None),
    (2, 3, 2, 1, True, True, 5), (2, 2, None, 0, False, True, None),
])
def test_avg_pool_matches_reference(nsp, k, s, p, ceil_mode, count_include_pad, divisor):
    tup = (lambda v: (v,) * nsp if isinstance(v, int) else v)
    x = rand(2, 3, *((10,) if nsp == 1 else (7, 8)))
    want = np_avg_pool(x, tup(k), tup(s if s is not None else k), tup(p), ceil_mode,
                       count_include_pad, divisor)
    if nsp == 1:
        got = F.avg_pool1d(t(x), k, s, p, ceil_mode, count_include_pad)
    else:
        got = F.avg_pool2d(t(x), k, s, p, ceil_mode, count_include_pad, divisor)
    close(got, want)


@pytest.mark.parametrize("shape,out", [((2, 3, 10), (4,)), ((2, 3, 12), (4,)), ((2, 3, 3), (5,)),
                                       ((2, 3, 7, 9), (3, 4)), ((1, 2, 8, 6), (1, 1)),
                                       ((1, 2, 3, 4), (5, 6))])
def test_adaptive_pools_match_reference(shape, out):
    x = rand(*shape)
    nsp = len(out)
    avg = F.adaptive_avg_pool1d if nsp == 1 else F.adaptive_avg_pool2d
    mx = F.adaptive_max_pool1d if nsp == 1 else F.adaptive_max_pool2d
    close(avg(t(x), out), np_adaptive(x, out, np.mean))
    values, idx = mx(t(x), out, return_indices=True)
    close(values, np_adaptive(x, out, np.max))
    # the indices point at the maxima
    flat = x.reshape(x.shape[:2] + (-1,))
    picked = np.take_along_axis(flat, np.asarray(idx).reshape(x.shape[:2] + (-1,)), axis=-1)
    close(picked.reshape(np.asarray(values).shape), np.asarray(values))


def test_adaptive_pool_none_keeps_a_dimension():
    x = rand(1, 2, 5, 7)
    close(F.adaptive_avg_pool2d(t(x), (2, None)), np_adaptive(x, (2, 7), np.mean))


# --- references: normalization ---------------------------------------------------------------


def test_batch_norm_training_and_eval():
    x, w, b = rand(6, 3, 4), rand(3), rand(3)
    rm, rv = rand(3), R.uniform(0.5, 1.5, 3)
    mean, var = x.mean(axis=(0, 2)), x.var(axis=(0, 2))
    out, new_m, new_v = F.batch_norm_with_stats(t(x), t(rm), t(rv), t(w), t(b), training=True,
                                                momentum=0.3, eps=1e-3)
    c = (slice(None), None)
    close(out, (x - mean[c]) / np.sqrt(var[c] + 1e-3) * w[c] + b[c])
    close(new_m, 0.7 * rm + 0.3 * mean)
    close(new_v, 0.7 * rv + 0.3 * var * 24 / 23)  # the running variance is unbiased
    out, same_m, same_v = F.batch_norm_with_stats(t(x), t(rm), t(rv), training=False)
    close(out, (x - rm[c]) / np.sqrt(rv[c] + 1e-5))
    close(same_m, rm)
    # no running statistics: batch statistics, nothing to update
    out, none_m, none_v = F.batch_norm_with_stats(t(x), None, None, training=True)
    assert none_m is None and none_v is None


def test_batch_norm_updates_concrete_running_stats_in_place():
    x = rand(5, 2)
    rm, rv = fnx.zeros(2, dtype=fnx.float64), fnx.ones(2, dtype=fnx.float64)
    F.batch_norm(t(x), rm, rv, training=True)
    close(rm, 0.1 * x.mean(0))
    close(rv, 0.9 + 0.1 * x.var(0, ddof=1))
    before = np.asarray(rm).copy()
    F.batch_norm(t(x), rm, rv, training=False)
    close(rm, before)


def test_batch_norm_in_a_transform_needs_the_functional_form():
    rm, rv = fnx.zeros(2, dtype=fnx.float64), fnx.ones(2, dtype=fnx.float64)
    with pytest.raises(TraceError, match="batch_norm_with_stats"):
        fnx.jit(lambda x: F.batch_norm(x, rm, rv, training=True))(t(rand(4, 2)))

    @fnx.jit
    def step(x, rm, rv):
        return F.batch_norm_with_stats(x, rm, rv, training=True)

    x = rand(4, 2)
    out, m, v = step(t(x), rm, rv)
    want = F.batch_norm_with_stats(t(x), rm, rv, training=True)
    for g, w in zip((out, m, v), want):
        close(g, np.asarray(w))
    # grad flows through the output, not through the running statistics
    g = fnx.grad(lambda x: F.batch_norm_with_stats(x, rm, rv, training=True)[1].sum())(t(x))
    close(g, np.zeros_like(x))


def test_instance_layer_group_rms_norm():
    x = rand(2, 6, 5)
    w, b = rand(6), rand(6)
    m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    rm, rv = fnx.zeros(6, dtype=fnx.float64), fnx.ones(6, dtype=fnx.float64)
    out = F.instance_norm(t(x), rm, rv, t(w), t(b), momentum=0.2)
    close(out, (x - m) / np.sqrt(v + 1e-5) * w[:, None] + b[:, None])
    close(rm, 0.2 * m[..., 0].mean(0))
    close(rv, 0.8 + 0.2 * (v[..., 0] * 5 / 4).mean(0))

    lw, lb = rand(6, 5), rand(6, 5)
    lm, lv = x.mean((1, 2), keepdims=True), x.var((1, 2), keepdims=True)
    close(F.layer_norm(t(x), (6, 5), t(lw), t(lb)), (x - lm) / np.sqrt(lv + 1e-5) * lw + lb)

    g = x.reshape(2, 3, 10)
    gn = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))
    close(F.group_norm(t(x), 3, t(w), t(b)), gn.reshape(x.shape) * w[:, None] + b[:, None])

    rw = rand(5)
    close(F.rms_norm(t(x), (5,), t(rw), eps=1e-6),
          x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * rw)
    # eps=None is the dtype's machine epsilon
    close(F.rms_norm(t(x), (5,)), x / np.sqrt((x * x).mean(-1, keepdims=True)
                                              + np.finfo(np.float64).eps))

    y = rand(3, 4)
    close(F.normalize(t(y), p=3.0, dim=0),
          y / np.maximum((np.abs(y) ** 3).sum(0, keepdims=True) ** (1 / 3), 1e-12))


# --- references: embeddings, one_hot, pad, interpolate, distances, attention ----------------


def test_embedding_and_padding_idx_gradient():
    w = rand(5, 3)
    idx = np.array([[0, 3, 1], [3, 3, 2]])
    close(F.embedding(t(idx), t(w), padding_idx=3), w[idx])
    g = fnx.grad(lambda w: (F.embedding(t(idx), w, padding_idx=3) ** 2).sum())(t(w))
    want = np.zeros_like(w)
    np.add.at(want, idx, 2 * w[idx])
    want[3] = 0
    close(g, want)
    # scale_grad_by_freq divides each row's gradient by its count in the batch
    g = fnx.grad(lambda w: F.embedding(t(idx), w, scale_grad_by_freq=True).sum())(t(w))
    close(g, np.array([[1.0] * 3, [1.0] * 3, [1.0] * 3, [1.0] * 3, [0.0] * 3]))


def test_embedding_max_norm_renormalizes_in_place():
    w = t(rand(4, 3) * 5)
    before = np.asarray(w).copy()
    out = F.embedding(t(np.array([1, 2])), w, max_norm=1.0)
    norms = np.linalg.norm(np.asarray(w), axis=1)
    assert np.all(norms[[1, 2]] <= 1.0 + 1e-6)
    close(np.asarray(w)[[0, 3]], before[[0, 3]])
    close(out, np.asarray(w)[[1, 2]])


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_per_bag_reference(mode):
    w = rand(6, 3)
    idx = np.array([1, 2, 4, 4, 3, 0, 2])
    offsets = np.array([0, 2, 2, 5])
    red = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
    bounds = list(offsets) + [len(idx)]
    want = np.stack([red(w[idx[a:b]], axis=0) if b > a else np.zeros(3)
                     for a, b in zip(bounds[:-1], bounds[1:])])
    close(F.embedding_bag(t(idx), t(w), t(offsets), mode=mode), want)
    # traced offsets take the same path as concrete ones
    close(fnx.jit(lambda o: F.embedding_bag(t(idx), t(w), o, mode=mode))(t(offsets)), want)
    # 2-D input: every row a bag
    close(F.embedding_bag(t(idx[:6].reshape(3, 2)), t(w), mode=mode),
          red(w[idx[:6].reshape(3, 2)], axis=1))


def test_embedding_bag_weights_last_offset_and_padding():
    w = rand(6, 3)
    idx = np.array([1, 2, 4, 4, 3, 0, 2])
    psw = rand(7)
    out = F.embedding_bag(t(idx), t(w), t(np.array([0, 3, 5])), mode="sum",
                          per_sample_weights=t(psw), include_last_offset=True)
    close(out, np.stack([(w[idx[:3]] * psw[:3, None]).sum(0),
                         (w[idx[3:5]] * psw[3:5, None]).sum(0)]))
    out = F.embedding_bag(t(np.array([[1, 4, 4], [4, 4, 4]])), t(w), mode="mean", padding_idx=4)
    close(out, np.stack([w[1], np.zeros(3)]))


def test_one_hot():
    idx = np.array([[0, 3], [2, 1]])
    got = F.one_hot(t(idx), 5)
    np.testing.assert_array_equal(np.asarray(got), np.eye(5, dtype=np.int64)[idx])
    assert got.dtype == fnp.int64
    assert F.one_hot(t(idx)).shape == (2, 2, 4)


@pytest.mark.parametrize("pad,mode,np_mode", [
    ((1, 2), "constant", "constant"), ((2, 3, 1, 2), "reflect", "reflect"),
    ((3, 1, 2, 0), "replicate", "edge"), ((2, 3, 1, 4), "circular", "wrap"),
])
def test_pad_modes(pad, mode, np_mode):
    x = rand(2, 3, 4, 5)
    widths = [(0, 0)] * (4 - len(pad) // 2) + [(pad[2 * j], pad[2 * j + 1])
                                               for j in range(len(pad) // 2)][::-1]
    kw = {"constant_values": 0.5} if mode == "constant" else {}
    value = 0.5 if mode == "constant" else None
    close(F.pad(t(x), pad, mode=mode, value=value), np.pad(x, widths, mode=np_mode, **kw))


def test_pad_negative_crops_and_replicate_has_no_size_limit():
    x = rand(2, 5)
    close(F.pad(t(x), (-1, 2, 1, -1)), np.pad(x[:1, 1:], ((1, 0), (0, 2))))
    close(F.pad(t(x), (7, 9), mode="replicate"), np.pad(x, ((0, 0), (7, 9)), mode="edge"))


@pytest.mark.parametrize("shape,kwargs,mats", [
    ((2, 3, 5), dict(size=8, mode="linear"), lambda: [np_linear_matrix(5, 8, False)]),
    ((2, 3, 5), dict(size=3, mode="linear", align_corners=True),
     lambda: [np_linear_matrix(5, 3, True)]),
    ((1, 2, 4, 5), dict(scale_factor=(1.5, 2.3), mode="bilinear"),
     lambda: [np_linear_matrix(4, 6, False, 1.5), np_linear_matrix(5, 11, False, 2.3)]),
    ((1, 2, 4, 5), dict(scale_factor=(1.5, 2.3), mode="bilinear", recompute_scale_factor=True),
     lambda: [np_linear_matrix(4, 6, False), np_linear_matrix(5, 11, False)]),
    ((1, 2, 4, 5), dict(size=(9, 3), mode="bicubic"),
     lambda: [np_cubic_matrix(4, 9, False), np_cubic_matrix(5, 3, False)]),
    ((1, 2, 4, 5), dict(size=(6, 8), mode="bicubic", align_corners=True),
     lambda: [np_cubic_matrix(4, 6, True), np_cubic_matrix(5, 8, True)]),
    ((1, 1, 3, 4, 2), dict(size=(5, 3, 4), mode="trilinear"),
     lambda: [np_linear_matrix(3, 5, False), np_linear_matrix(4, 3, False),
              np_linear_matrix(2, 4, False)]),
])
def test_interpolate_linear_modes(shape, kwargs, mats):
    x = rand(*shape)
    close(F.interpolate(t(x), **kwargs), apply_axes(x, mats()))


def test_interpolate_nearest_and_area():
    x = rand(1, 2, 3, 5)
    rows = np.minimum(np.floor(np.arange(7) * np.float32(3 / 7)).astype(int), 2)
    cols = np.minimum(np.floor(np.arange(4) * np.float32(5 / 4)).astype(int), 4)
    close(F.interpolate(t(x), size=(7, 4)), x[:, :, rows][:, :, :, cols])
    exact_rows = np.minimum(np.floor((np.arange(7) + 0.5) * np.float32(3 / 7)).astype(int), 2)
    close(F.interpolate(t(x), size=(7, 5), mode="nearest-exact"), x[:, :, exact_rows])
    # integer upscaling repeats each element
    close(F.interpolate(t(x), scale_factor=2), x.repeat(2, axis=2).repeat(2, axis=3))
    close(F.interpolate(t(x), size=(2, 2), mode="area"), np_adaptive(x, (2, 2), np.mean))


def test_distances():
    a, b = rand(3, 4, 2), rand(1, 4, 2)
    an = np.maximum(np.linalg.norm(a, axis=1), 1e-8)
    bn = np.maximum(np.linalg.norm(b, axis=1), 1e-8)
    close(F.cosine_similarity(t(a), t(b)), (a * b).sum(1) / (an * bn))
    x, y = rand(3, 4), rand(3, 4)
    for p in (1.0, 2.0, 3.0, math.inf):
        d = np.abs(x - y + 1e-6)
        want = d.max(-1) if p == math.inf else (d ** p).sum(-1) ** (1 / p)
        close(F.pairwise_distance(t(x), t(y), p=p), want)


def np_sdpa(q, k, v, mask=None, scale=None):
    s = q @ np.swapaxes(k, -1, -2) * (scale or 1 / math.sqrt(q.shape[-1]))
    if mask is not None:
        s = np.where(mask, s, -np.inf) if mask.dtype == bool else s + mask
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True) @ v


def test_scaled_dot_product_attention():
    q, k, v = rand(2, 3, 4, 5), rand(2, 3, 6, 5), rand(2, 3, 6, 7)
    close(F.scaled_dot_product_attention(t(q), t(k), t(v)), np_sdpa(q, k, v))
    causal = np.tril(np.ones((4, 6), bool))
    close(F.scaled_dot_product_attention(t(q), t(k), t(v), is_causal=True, scale=0.3),
          np_sdpa(q, k, v, causal, 0.3))
    fm = rand(4, 6)
    close(F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(fm)), np_sdpa(q, k, v, fm))
    bm = R.uniform(size=(2, 1, 4, 6)) > 0.3
    bm[..., 0] = True
    close(F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(bm)),
          np_sdpa(q, k, v, bm))
    # grouped-query attention repeats each key/value head for consecutive query heads
    k2, v2 = rand(2, 1, 6, 5), rand(2, 1, 6, 7)
    close(F.scaled_dot_product_attention(t(q), t(k2), t(v2), enable_gqa=True),
          np_sdpa(q, np.repeat(k2, 3, 1), np.repeat(v2, 3, 1)))
    # a query whose keys are all masked attends to nothing (zeros, not NaN), gradients finite
    mask = np.ones((4, 6), bool)
    mask[2] = False
    out = F.scaled_dot_product_attention(t(q), t(k), t(v), attn_mask=t(mask))
    close(np.asarray(out)[:, :, 2], np.zeros((2, 3, 7)))
    g = fnx.grad(lambda q: F.scaled_dot_product_attention(q, t(k), t(v), t(mask)).sum())(t(q))
    assert np.isfinite(np.asarray(g)).all()


# --- references: activations -----------------------------------------------------------------

_ALPHA, _SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def np_softplus(x, beta=1.0, threshold=20.0):
    return np.where(x * beta > threshold, x, np.log1p(np.exp(np.minimum(x * beta, threshold)))
                    / beta)


ACTIVATIONS = [
    ("relu", {}, lambda x: np.maximum(x, 0)),
    ("relu6", {}, lambda x: np.clip(x, 0, 6)),
    ("leaky_relu", dict(negative_slope=0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    ("gelu", {}, lambda x: x * 0.5 * (1 + sp.erf(x / np.sqrt(2)))),
    ("gelu", dict(approximate="tanh"),
     lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))),
    ("sigmoid", {}, sp.expit),
    ("tanh", {}, np.tanh),
    ("softmax", dict(dim=0), lambda x: sp.softmax(x, axis=0)),
    ("log_softmax", dict(dim=1), lambda x: sp.log_softmax(x, axis=1)),
    ("softmin", dict(dim=1), lambda x: sp.softmax(-x, axis=1)),
    ("elu", dict(alpha=0.7), lambda x: np.where(x > 0, x, 0.7 * np.expm1(x))),
    ("selu", {}, lambda x: _SCALE * np.where(x > 0, x, _ALPHA * np.expm1(x))),
    ("celu", dict(alpha=1.5),
     lambda x: np.maximum(x, 0) + np.minimum(0, 1.5 * np.expm1(x / 1.5))),
    ("silu", {}, lambda x: x * sp.expit(x)),
    ("mish", {}, lambda x: x * np.tanh(np_softplus(x))),
    ("softplus", dict(beta=3, threshold=5), lambda x: np_softplus(x, 3, 5)),
    ("softsign", {}, lambda x: x / (1 + np.abs(x))),
    ("hardtanh", dict(min_val=-0.5, max_val=1.5), lambda x: np.clip(x, -0.5, 1.5)),
    ("hardswish", {}, lambda x: x * np.clip(x + 3, 0, 6) / 6),
    ("hardsigmoid", {}, lambda x: np.clip(x + 3, 0, 6) / 6),
    ("threshold", dict(threshold=0.3, value=-2.0), lambda x: np.where(x > 0.3, x, -2.0)),
    ("glu", dict(dim=0), lambda x: x[:2] * sp.expit(x[2:])),
    ("logsigmoid", {}, lambda x: -np.logaddexp(0, -x)),
]


@pytest.mark.parametrize("name,kwargs,ref", ACTIVATIONS,
                         ids=[f"{a[0]}-{i}" for i, a in enumerate(ACTIVATIONS)])
def test_activations(name, kwargs, ref):
    x = rand(4, 3, low=-5, high=5)
    close(getattr(F, name)(t(x), **kwargs), ref(x))


def test_prelu():
    x, w = rand(2, 3, 4), rand(3)
    close(F.prelu(t(x), t(w)), np.where(x > 0, x, x * w[:, None]))
    close(F.prelu(t(x), t(w[:1])), np.where(x > 0, x, x * w[0]))


def test_activation_gradients_at_kinks_follow_pytorch():
    x = t(np.array([-3.0, 0.0, 3.0, 6.0]))
    close(fnx.grad(lambda v: F.relu(v).sum())(x), [0, 0, 1, 1])
    close(fnx.grad(lambda v: F.relu6(v).sum())(x), [0, 0, 1, 0])
    close(fnx.grad(lambda v: F.hardswish(v).sum())(x), [-0.5, 0.5, 1.5, 1.0])
    close(fnx.grad(lambda v: F.hardsigmoid(v).sum())(x), [0, 1 / 6, 0, 0])
    # the branches a where() discards never overflow into NaN gradients
    big = t(np.array([-800.0, 800.0]))
    for fn in (F.elu, F.selu, F.celu, F.softplus, F.mish):
        assert np.isfinite(np.asarray(fnx.grad(lambda v, fn=fn: fn(v).sum())(big))).all()


def test_softmax_implicit_dim_warns_and_dtype_casts():
    x = rand(2, 3)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = F.softmax(t(x))
    close(out, sp.softmax(x, axis=1))
    got = F.log_softmax(t(x.astype(np.float32)), dim=1, dtype=fnx.float64)
    assert got.dtype == fnp.float64


def test_inplace_writes_concrete_input():
    x = t(np.array([-1.0, 2.0]))
    out = F.relu(x, inplace=True)
    assert out is x
    close(x, [0.0, 2.0])
    # a traced input cannot change: the result is returned
    close(fnx.jit(lambda v: F.relu(v, inplace=True))(t(np.array([-1.0, 2.0]))), [0.0, 2.0])


# --- references: losses ----------------------------------------------------------------------


def np_cross_entropy(x, y, weight=None, ignore_index=-100, reduction="mean", smoothing=0.0):
    """PyTorch's definition with class indices, written per element."""
    c = x.shape[1]
    logp = np_log_softmax(x, 1)
    xs = np.moveaxis(logp, 1, -1).reshape(-1, c)
    ys = y.reshape(-1)
    w = np.ones(c) if weight is None else weight
    valid = ys != ignore_index
    safe = np.where(valid, ys, 0)
    wt = w[safe] * valid
    nll = -xs[np.arange(len(ys)), safe] * wt
    smooth = -(xs * w).sum(-1) * valid
    if reduction == "mean":
        nll_r = nll.sum() / wt.sum()
        smooth_r = smooth.sum() / wt.sum() if weight is not None else smooth.sum() / valid.sum()
    elif reduction == "sum":
        nll_r, smooth_r = nll.sum(), smooth.sum()
    else:
        nll_r, smooth_r = nll.reshape(y.shape), smooth.reshape(y.shape)
    return (1 - smoothing) * nll_r + smoothing / c * smooth_r


@pytest.mark.parametrize("kwargs", [
    {}, dict(reduction="sum"), dict(reduction="none"), dict(weight=True),
    dict(weight=True, ignore_index=1, label_smoothing=0.2),
    dict(ignore_index=1, label_smoothing=0.3), dict(reduction="none", label_smoothing=0.3),
    dict(reduction="sum", weight=True, label_smoothing=0.1),
])
@pytest.mark.parametrize("spatial", [(), (3,)])
def test_cross_entropy_class_indices(kwargs, spatial):
    x = rand(5, 4, *spatial)
    kw = dict(kwargs)
    y = R.integers(0, 4, (5,) + spatial)
    y.flat[2] = kw.get("ignore_index", -100)
    weight = R.uniform(0.2, 1.0, 4) if kw.pop("weight", False) else None
    got = F.cross_entropy(t(x), t(y), weight=None if weight is None else t(weight), **kw)
    want = np_cross_entropy(x, y, weight, kw.get("ignore_index", -100),
                            kw.get("reduction", "mean"), kw.get("label_smoothing", 0.0))
    close(got, want)
    if not kw.get("label_smoothing"):
        logp = F.log_softmax(t(x), dim=1)
        close(F.nll_loss(logp, t(y), weight=None if weight is None else t(weight),
                         ignore_index=kw.get("ignore_index", -100),
                         reduction=kw.get("reduction", "mean")), want)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probability_targets(reduction):
    x, p = rand(5, 4, 2), R.dirichlet(np.ones(4), (5, 2)).transpose(0, 2, 1)
    w = R.uniform(0.2, 1.0, 4)
    smoothed = p * 0.9 + 0.1 / 4
    per = -(np_log_softmax(x, 1) * smoothed * w[:, None]).sum(1)
    want = {"mean": per.sum() / 10, "sum": per.sum(), "none": per}[reduction]
    close(F.cross_entropy(t(x), t(p), t(w), reduction=reduction, label_smoothing=0.1), want)


def test_cross_entropy_unbatched():
    x = rand(4)
    close(F.cross_entropy(t(x), t(np.array(2))), -np_log_softmax(x, 0)[2])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pointwise_losses(reduction):
    x, y = rand(3, 4), rand(3, 4)
    p, q = R.uniform(0.05, 0.95, (2, 3, 4))
    w = R.uniform(0.2, 1.0, (3, 4))
    pw = R.uniform(0.5, 3.0, 4)
    d = np.abs(x - y)
    cases = [
        (F.mse_loss(t(x), t(y), reduction=reduction), (x - y) ** 2),
        (F.l1_loss(t(x), t(y), reduction=reduction), d),
        (F.smooth_l1_loss(t(x), t(y), reduction=reduction, beta=0.7),
         np.where(d < 0.7, 0.5 * d ** 2 / 0.7, d - 0.35)),
        (F.smooth_l1_loss(t(x), t(y), reduction=reduction, beta=0.0), d),
        (F.huber_loss(t(x), t(y), reduction=reduction, delta=0.6),
         np.where(d < 0.6, 0.5 * d ** 2, 0.6 * (d - 0.3))),
        (F.binary_cross_entropy(t(p), t(q), t(w), reduction=reduction),
         -w * (q * np.log(p) + (1 - q) * np.log(1 - p))),
        (F.binary_cross_entropy_with_logits(t(x), t(q), t(w), reduction=reduction,
                                            pos_weight=t(pw)),
         w * (-pw * q * np.log(sp.expit(x)) - (1 - q) * np.log(1 - sp.expit(x)))),
        (F.kl_div(t(x), t(p), reduction=reduction), p * (np.log(p) - x)),
        (F.kl_div(t(x), t(y), reduction=reduction, log_target=True), np.exp(y) * (y - x)),
        (F.poisson_nll_loss(t(x), t(q * 5), reduction=reduction), np.exp(x) - q * 5 * x),
        (F.poisson_nll_loss(t(p), t(q * 5), log_input=False, full=True, reduction=reduction),
         p - q * 5 * np.log(p + 1e-8) + np.where(
             q * 5 > 1, q * 5 * np.log(q * 5) - q * 5 + 0.5 * np.log(2 * np.pi * q * 5), 0)),
    ]
    for got, per in cases:
        close(got, np_reduce(per, reduction))


def test_weighted_regression_losses_mean_as_pytorch():
    x, y, w = rand(3, 4), rand(3, 4), R.uniform(0.2, 1.0, (3, 4))
    close(F.mse_loss(t(x), t(y), weight=t(w)), (w * (x - y) ** 2).sum() / w.sum())
    close(F.l1_loss(t(x), t(y), weight=t(w)), (w * np.abs(x - y)).sum() / w.sum())
    d = np.abs(x - y)
    close(F.huber_loss(t(x), t(y), weight=t(w)),
          (w * np.where(d < 1, 0.5 * d ** 2, d - 0.5)).mean())


def test_bce_clamps_logs_at_minus_100():
    out = F.binary_cross_entropy(t(np.array([0.0, 1.0])), t(np.array([1.0, 0.0])),
                                 reduction="none")
    close(out, [100.0, 100.0])
    g = fnx.grad(lambda p: F.binary_cross_entropy(p, t(np.array([0.0, 1.0]))))(
        t(np.array([0.0, 1.0])))
    assert np.isfinite(np.asarray(g)).all()


def test_kl_div_batchmean_and_zero_targets():
    x, p = rand(3, 4), R.dirichlet(np.ones(4), 3)
    p[0, 1] = 0.0
    close(F.kl_div(t(x), t(p), reduction="batchmean"),
          (sp.xlogy(p, p) - p * x).sum() / 3)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_embedding_and_ranking_losses(reduction):
    a, b, c = rand(5, 3), rand(5, 3), rand(5, 3)
    y = R.choice([-1.0, 1.0], 5)
    cos = (a * b).sum(1) / np.sqrt(((a * a).sum(1) + 1e-12) * ((b * b).sum(1) + 1e-12))
    close(F.cosine_embedding_loss(t(a), t(b), t(y), margin=-0.2, reduction=reduction),
          np_reduce(np.where(y == 1, 1 - cos, np.maximum(cos + 0.2, 0)), reduction))
    x1, x2 = rand(5), rand(5)
    close(F.margin_ranking_loss(t(x1), t(x2), t(y), margin=0.3, reduction=reduction),
          np_reduce(np.maximum(-y * (x1 - x2) + 0.3, 0), reduction))

    def dist(u, v):
        return (np.abs(u - v + 1e-6) ** 3).sum(-1) ** (1 / 3)

    d_neg = np.minimum(dist(a, c), dist(b, c))
    close(F.triplet_margin_loss(t(a), t(b), t(c), margin=0.5, p=3, swap=True,
                                reduction=reduction),
          np_reduce(np.maximum(0.5 + dist(a, b) - d_neg, 0), reduction))
    h = rand(3, 4)
    hy = R.choice([-1.0, 1.0], (3, 4))
    close(F.hinge_embedding_loss(t(h), t(hy), margin=0.5, reduction=reduction),
          np_reduce(np.where(hy == 1, h, np.maximum(0.5 - h, 0)), reduction))


def test_legacy_size_average_and_reduce_map_to_reduction():
    x, y = rand(3), rand(3)
    with pytest.warns(UserWarning, match="reduction='sum'"):
        close(F.mse_loss(t(x), t(y), size_average=False), ((x - y) ** 2).sum())
    with pytest.warns(UserWarning, match="reduction='none'"):
        close(F.l1_loss(t(x), t(y), reduce=False), np.abs(x - y))


# --- dropout and randomness ------------------------------------------------------------------


def test_dropout_statistics_and_keys():
    x = fnx.ones(20000, dtype=fnx.float64)
    y = np.asarray(F.dropout(x, 0.3, key=fnx.random.key(0)))
    assert set(np.unique(y)) == {0.0, 1 / 0.7}
    assert abs((y == 0).mean() - 0.3) < 0.02
    # the same key gives the same mask; the global generator follows manual_seed
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.3, key=fnx.random.key(0))), y)
    fnx.manual_seed(5)
    a = np.asarray(F.dropout(x, 0.3))
    b = np.asarray(F.dropout(x, 0.3))
    fnx.manual_seed(5)
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.3)), a)
    assert (a != b).any()
    # eval mode and the edge probabilities
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.3, training=False)), 1.0)
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 1.0)), 0.0)
    np.testing.assert_array_equal(np.asarray(F.dropout(x, 0.0)), 1.0)


def test_channel_dropout_zeros_whole_channels():
    x = fnx.ones(4, 50, 3, 3)
    y = np.asarray(F.dropout2d(x, 0.4, key=fnx.random.key(1)))
    per_channel = y.reshape(4, 50, 9)
    assert ((per_channel == 0).all(-1) | (per_channel == per_channel[..., :1]).all(-1)).all()
    assert 0.2 < (per_channel[..., 0] == 0).mean() < 0.6
    y1 = np.asarray(F.dropout1d(fnx.ones(4, 50, 6), 0.4, key=fnx.random.key(1)))
    assert ((y1 == 0).all(-1) | (y1 == 1 / 0.6).all(-1)).all()
    with pytest.warns(UserWarning, match="3-D input"):
        y3 = np.asarray(F.dropout2d(fnx.ones(4, 50, 6), 0.4, key=fnx.random.key(1)))
    assert ((y3 == 0).all(-1) | (y3 == 1 / 0.6).all(-1)).all()


def test_alpha_dropout_keeps_mean_and_variance():
    x = fnx.randn(50000, generator=fnx.Generator().manual_seed(0), dtype=fnx.float64)
    y = np.asarray(F.alpha_dropout(x, 0.3, training=True, key=fnx.random.key(2)))
    assert abs(y.mean()) < 0.03 and abs(y.std() - 1) < 0.03
    # dropped units all take one value, -a * alpha' * (1 - p); kept ones are a * x + b
    alpha = 1.7580993408473766
    a = 1 / math.sqrt((alpha ** 2 * 0.3 + 1) * 0.7)
    dropped = np.isclose(y, -a * alpha * 0.7)
    assert abs(dropped.mean() - 0.3) < 0.02
    close(y[~dropped], a * np.asarray(x)[~dropped] + a * alpha * 0.3)


def test_dropout_under_vmap_and_jit_with_keys():
    keys = fnx.random.split(fnx.random.key(0), 3)
    x = fnx.ones(3, 100)
    out = fnx.vmap(lambda k, v: F.dropout(v, 0.5, key=k))(keys, x)
    for i in range(3):
        np.testing.assert_array_equal(np.asarray(out[i]),
                                      np.asarray(F.dropout(x[i], 0.5, key=keys[i])))
    jitted = fnx.jit(lambda k, v: F.dropout(v, 0.5, key=k))(keys[0], x[0])
    np.testing.assert_array_equal(np.asarray(jitted), np.asarray(F.dropout(x[0], 0.5,
                                                                           key=keys[0])))


# --- derivatives, jit and vmap ---------------------------------------------------------------


EMB_IDX = t(R.integers(0, 4, (2, 3)))
CE_LABELS = t(R.integers(0, 4, 4))


GRAD_CASES = [
    ("linear", lambda x, w, b: F.linear(x, w, b), (rand(3, 4), rand(2, 4), rand(2))),
    ("bilinear", F.bilinear, (rand(3, 2), rand(3, 4), rand(5, 2, 4), rand(5))),
    ("conv1d", lambda x, w: F.conv1d(x, w, stride=2, padding=1, dilation=2, groups=2),
     (rand(2, 4, 9), rand(4, 2, 3))),
    ("conv2d", lambda x, w, b: F.conv2d(x, w, b, padding="same"),
     (rand(1, 3, 5, 4), rand(2, 3, 3, 2), rand(2))),
    ("conv_transpose2d", lambda x, w: F.conv_transpose2d(x, w, stride=2, padding=1,
                                                         output_padding=1, groups=2),
     (rand(1, 4, 3, 3), rand(4, 1, 3, 3))),
    ("unfold", lambda x: F.unfold(x, 2, padding=1, stride=2), (rand(1, 2, 4, 5),)),
    ("fold", lambda x: F.fold(x, (4, 5), 2, padding=1, stride=2), (rand(1, 8, 9),)),
    ("max_pool2d", lambda x: F.max_pool2d(x, 3, 2, 1, ceil_mode=True), (rand(2, 2, 6, 7),)),
    ("avg_pool2d", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
     (rand(2, 2, 6, 7),)),
    ("adaptive_avg_pool2d", lambda x: F.adaptive_avg_pool2d(x, (3, 2)), (rand(1, 2, 7, 5),)),
    ("adaptive_max_pool2d", lambda x: F.adaptive_max_pool2d(x, (3, 2)), (rand(1, 2, 7, 5),)),
    ("batch_norm", lambda x, w, b: F.batch_norm_with_stats(x, None, None, w, b,
                                                           training=True)[0],
     (rand(4, 3, 2), rand(3), rand(3))),
    ("layer_norm", lambda x, w, b: F.layer_norm(x, (4,), w, b), (rand(3, 4), rand(4), rand(4))),
    ("group_norm", lambda x: F.group_norm(x, 2), (rand(2, 4, 3),)),
    ("instance_norm", lambda x: F.instance_norm(x), (rand(2, 3, 4),)),
    ("rms_norm", lambda x, w: F.rms_norm(x, (4,), w), (rand(3, 4), rand(4))),
    ("normalize", lambda x: F.normalize(x, dim=-1), (rand(3, 4),)),
    ("embedding", lambda w: F.embedding(EMB_IDX, w), (rand(4, 3),)),
    ("embedding_bag", lambda w, s: F.embedding_bag(t(np.array([0, 2, 1, 3])), w,
                                                   t(np.array([0, 1])), mode="sum",
                                                   per_sample_weights=s),
     (rand(4, 3), rand(4))),
    ("interpolate_bilinear", lambda x: F.interpolate(x, size=(5, 3), mode="bilinear"),
     (rand(1, 2, 3, 4),)),
    ("interpolate_bicubic", lambda x: F.interpolate(x, scale_factor=2, mode="bicubic",
                                                    align_corners=True), (rand(1, 1, 3, 3),)),
    ("pad_reflect", lambda x: F.pad(x, (2, 1, 1, 1), mode="reflect"), (rand(1, 3, 4),)),
    ("cosine_similarity", F.cosine_similarity, (rand(3, 4), rand(3, 4))),
    ("pairwise_distance", F.pairwise_distance, (rand(3, 4), rand(3, 4))),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     (rand(2, 3, 4), rand(2, 3, 4), rand(2, 3, 2))),
    ("prelu", F.prelu, (rand(2, 3, 4), rand(3))),
    ("cross_entropy", lambda x: F.cross_entropy(x, t(np.array([[0, 3], [1, -100], [2, 2]])),
                                                label_smoothing=0.1), (rand(3, 4, 2),)),
    ("cross_entropy_probs", lambda x, p: F.cross_entropy(x, p), (rand(3, 4),
                                                                 R.uniform(0, 1, (3, 4)))),
    ("bce", lambda p, y: F.binary_cross_entropy(p, y), (R.uniform(0.1, 0.9, (3, 4)),
                                                        R.uniform(0, 1, (3, 4)))),
    ("bce_logits", lambda x, y, pw: F.binary_cross_entropy_with_logits(x, y, pos_weight=pw),
     (rand(3, 4), R.uniform(0, 1, (3, 4)), R.uniform(0.5, 2, 4))),
    ("smooth_l1", lambda x, y: F.smooth_l1_loss(x, y, beta=0.5), (rand(3, 4), rand(3, 4))),
    ("huber", lambda x, y: F.huber_loss(x, y, delta=0.5), (rand(3, 4), rand(3, 4))),
    ("kl_div", lambda x, y: F.kl_div(x, y, reduction="batchmean"),
     (rand(3, 4), R.uniform(0.1, 1, (3, 4)))),
    ("triplet", lambda a, p, n: F.triplet_margin_loss(a, p, n, margin=3.0),
     (rand(3, 4), rand(3, 4), rand(3, 4))),
    ("cosine_embedding", lambda a, b: F.cosine_embedding_loss(a, b, t(np.array([1.0, -1, 1])),
                                                              margin=-0.5),
     (rand(3, 4), rand(3, 4))),
    ("poisson_nll", lambda x: F.poisson_nll_loss(x, t(np.array([0.0, 2, 5])), full=True),
     (rand(3),)),
] + [(f"act_{name}", lambda x, name=name, kw=kw: getattr(F, name)(x, **kw), (rand(4, 3) * 2,))
     for name, kw, _ in ACTIVATIONS]


@pytest.mark.parametrize("name,fn,args", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradients_by_finite_differences(name, fn, args):
    order = 2 if name in ("layer_norm", "cross_entropy", "sdpa", "act_gelu", "act_softmax",
                          "conv2d", "interpolate_bilinear") else 1
    fnx.testing.check_grads(fn, tuple(t(a) for a in args), order=order)


JIT_CASES = [
    ("conv_pool", lambda x, w: F.max_pool2d(F.relu(F.conv2d(x, w, padding=1)), 2,
                                            return_indices=True),
     (rand(2, 3, 6, 6), rand(4, 3, 3, 3))),
    ("norms", lambda x, w: F.layer_norm(F.group_norm(x, 2), (5,), w) +
     F.batch_norm_with_stats(x, None, None, training=True)[0], (rand(3, 4, 5), rand(5))),
    ("losses", lambda x, p: F.cross_entropy(x, CE_LABELS, label_smoothing=0.1)
     + F.binary_cross_entropy_with_logits(x, p) + F.kl_div(F.log_softmax(x, 1), p,
                                                           reduction="batchmean"),
     (rand(4, 4), R.uniform(0, 1, (4, 4)))),
    ("resample", lambda x: F.interpolate(F.pad(x, (1, 1, 2, 0), mode="replicate"),
                                         scale_factor=1.5, mode="bilinear")
     + 0 * F.adaptive_avg_pool2d(x, 1).sum(), (rand(1, 2, 4, 4),)),
    ("attention", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
     (rand(2, 3, 4), rand(2, 3, 4), rand(2, 3, 4))),
    ("embedding_bag", lambda w: F.embedding_bag(t(np.array([0, 2, 1, 3])), w,
                                                t(np.array([0, 1])), mode="max"),
     (rand(4, 3),)),
    ("activations", lambda x: F.gelu(x) + F.silu(x) + F.softplus(x) + F.hardswish(x)
     + F.elu(x) + F.glu(x, 0).sum(), (rand(4, 3),)),
]


@pytest.mark.parametrize("name,fn,args", JIT_CASES, ids=[c[0] for c in JIT_CASES])
def test_jit_matches_eager(name, fn, args):
    del name  # unused
    args = tuple(t(a) for a in args)
    got, want = fnx.jit(fn)(*args), fn(*args)
    for g, w in zip(fnx.tree.leaves(got), fnx.tree.leaves(want)):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-9, atol=1e-12)


VMAP_CASES = [
    ("conv2d", lambda x, w: F.conv2d(x, w, stride=2, padding=1), (rand(3, 2, 2, 5, 5),
                                                                  rand(3, 4, 2, 3, 3))),
    ("max_pool1d", lambda x: F.max_pool1d(x, 3, 2, 1, return_indices=True)[1],
     (rand(3, 2, 2, 7),)),
    ("cross_entropy", lambda x, y: F.cross_entropy(x, y, reduction="none"),
     (rand(3, 5, 4), R.integers(0, 4, (3, 5)))),
    ("layer_norm", lambda x, w: F.layer_norm(x, (4,), w), (rand(3, 2, 4), rand(3, 4))),
    ("batch_norm", lambda x: F.batch_norm_with_stats(x, fnx.zeros(3, dtype=fnx.float64),
                                                     fnx.ones(3, dtype=fnx.float64),
                                                     training=True)[1], (rand(3, 4, 3),)),
    ("embedding", lambda idx, w: F.embedding(idx, w), (R.integers(0, 5, (3, 4)), rand(3, 5, 2))),
    ("interpolate", lambda x: F.interpolate(x, size=(5, 2), mode="bicubic"),
     (rand(3, 1, 2, 3, 4),)),
    ("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
     (rand(3, 4, 2), rand(3, 5, 2), rand(3, 5, 3))),
]


@pytest.mark.parametrize("name,fn,args", VMAP_CASES, ids=[c[0] for c in VMAP_CASES])
def test_vmap_matches_loop(name, fn, args):
    del name  # unused
    args = tuple(t(a) for a in args)
    got = fnx.vmap(fn)(*args)
    for i in range(args[0].shape[0]):
        np.testing.assert_allclose(np.asarray(got[i]), np.asarray(fn(*(a[i] for a in args))),
                                   rtol=1e-10, atol=1e-12)


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize("call,error,match", [
    (lambda: F.conv2d(fnx.ones(3, 5, 5), fnx.ones(2, 3, 3)), ValueError,
     r"conv2d: expected a 4-D weight"),
    (lambda: F.conv2d(fnx.ones(5, 5), fnx.ones(2, 3, 3, 3)), ValueError,
     r"conv2d: expected 3-D or 4-D input \(N, C, H, W\).*got 2-D input of shape \(5, 5\)"),
    (lambda: F.conv2d(fnx.ones(1, 4, 5, 5), fnx.ones(2, 3, 3, 3)), ValueError,
     r"conv2d: expected input with 3 channels"),
    (lambda: F.conv1d(fnx.ones(1, 3, 5), fnx.ones(2, 3, 3), stride=2, padding="same"),
     ValueError, r"padding='same' is not supported for strided"),
    (lambda: F.conv_transpose1d(fnx.ones(1, 3, 5), fnx.ones(3, 2, 3), stride=2,
                                output_padding=2), ValueError,
     r"output_padding \(2,\) must be smaller than either stride"),
    (lambda: F.linear(fnx.ones(2, 100), fnx.ones(128, 784)), ValueError,
     r"linear: expected input with last dimension 784 .* got input of shape \(2, 100\)"),
    (lambda: F.cross_entropy(fnx.ones(2, 3), fnx.tensor([0, 3])), IndexError,
     r"cross_entropy: target 3 is out of range; expected values in \[0, 3\)"),
    (lambda: F.cross_entropy(fnx.ones(2, 3), fnx.ones(2)), ValueError,
     r"cross_entropy: float targets are class probabilities and must have the input's "
     r"shape \(2, 3\), got \(2,\)"),
    (lambda: F.cross_entropy(fnx.ones(2, 3), fnx.tensor([[0], [1]])), ValueError,
     r"cross_entropy: expected class-index target of shape \(2,\)"),
    (lambda: F.nll_loss(fnx.ones(2, 3), fnx.tensor([0, -1])), IndexError,
     r"nll_loss: target -1 is out of range"),
    (lambda: F.cross_entropy(fnx.ones(2, 3), fnx.tensor([0, 1]), reduction="avg"), ValueError,
     r"cross_entropy: reduction must be one of"),
    (lambda: F.binary_cross_entropy(fnx.tensor([1.5]), fnx.tensor([1.0])), ValueError,
     r"between 0 and 1"),
    (lambda: F.binary_cross_entropy_with_logits(fnx.ones(3), fnx.ones(2)), ValueError,
     r"target size \(2,\) that is different to the input size \(3,\)"),
    (lambda: F.max_pool2d(fnx.ones(1, 1, 4, 4), 2, padding=2), ValueError,
     r"should be at most half"),
    (lambda: F.max_pool2d(fnx.ones(1, 1, 2, 2), 3), ValueError, r"too small"),
    (lambda: F.batch_norm(fnx.ones(1, 3), fnx.zeros(3), fnx.ones(3), training=True),
     ValueError, r"more than 1 value per channel"),
    (lambda: F.layer_norm(fnx.ones(2, 5), (10,)), ValueError,
     r"normalized_shape=\[10\], expected input with shape \[\*, 10\]"),
    (lambda: F.group_norm(fnx.ones(2, 5, 3), 2), ValueError, r"divisible by num_groups=2"),
    (lambda: F.embedding(fnx.tensor([0, 5]), fnx.ones(5, 2)), IndexError,
     r"embedding: index 5 is out of range"),
    (lambda: F.embedding(fnx.ones(2), fnx.ones(5, 2)), TypeError, r"expected integer indices"),
    (lambda: F.embedding_bag(fnx.tensor([0, 1]), fnx.ones(5, 2)), ValueError, r"needs offsets"),
    (lambda: F.embedding_bag(fnx.tensor([0, 1]), fnx.ones(5, 2), fnx.tensor([0]), mode="max",
                             per_sample_weights=fnx.ones(2)), ValueError,
     r"only supported for mode='sum'"),
    (lambda: F.one_hot(fnx.tensor([0, 3]), 3), IndexError, r"one_hot: class value 3"),
    (lambda: F.pad(fnx.ones(2, 3), (3, 0), mode="reflect"), ValueError,
     r"reflect padding \(3, 0\) must be at most 2"),
    (lambda: F.pad(fnx.ones(2, 3), (1, 0), mode="wrap"), ValueError, r"mode must be"),
    (lambda: F.interpolate(fnx.ones(1, 1, 4), size=3, mode="bilinear"), ValueError,
     r"got 3-D input, but bilinear mode needs 4-D input"),
    (lambda: F.interpolate(fnx.ones(1, 1, 4), size=3, align_corners=True), ValueError,
     r"align_corners option can only be set"),
    (lambda: F.dropout(fnx.ones(2), 1.5), ValueError, r"between 0 and 1, but got 1.5"),
    (lambda: F.glu(fnx.ones(3)), ValueError, r"glu: halving only works on an even"),
    (lambda: F.scaled_dot_product_attention(fnx.ones(2, 3), fnx.ones(2, 3), fnx.ones(2, 3),
                                            attn_mask=fnx.ones(2, 2), is_causal=True),
     ValueError, r"attn_mask should not be set when is_causal=True"),
    (lambda: F.gelu(fnx.ones(2), approximate="fast"), ValueError, r"'none' or 'tanh'"),
    (lambda: F.mse_loss(fnx.ones(3), fnx.ones(3), weight=fnx.ones(2)), ValueError,
     r"weights and input must have the same size"),
])
def test_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_label_checks_skip_traced_labels_and_one_hot_needs_num_classes():
    # under jit the labels cannot be read: no check, no error
    fnx.jit(lambda y: F.cross_entropy(fnx.ones(2, 3), y))(fnx.tensor([0, 2]))
    with pytest.raises(ValueError, match="pass num_classes explicitly"):
        fnx.jit(lambda y: F.one_hot(y))(fnx.tensor([0, 2]))
    with pytest.raises(NotImplementedError, match="max_norm"):
        fnx.jit(lambda w: F.embedding(fnx.tensor([0]), w, max_norm=1.0))(fnx.ones(3, 2))


def test_every_public_function_has_an_example():
    # tests/test_docstrings.py runs the examples; this checks none is missing
    missing = [n for n in F.__all__ if ">>>" not in (getattr(F, n).__doc__ or "")]
    assert not missing, missing
    assert len(set(F.__all__)) == len(F.__all__)
