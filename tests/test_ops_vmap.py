"""``vmap`` of every op_db record vs a Python loop over the examples, over every combination of
in_axes (None, 0, -1, and a middle axis), and a size-0 batch (JAX's ``_CheckBatching`` +
``all_bdims``)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx
import fnx.numpy as fnp
from op_db import RECORDS, sample_args

VMAP_RECORDS = [r for r in RECORDS if r.vmap and r.nargs > 0]


def _axes_for(ndim):
    # where the batch axis is inserted: unmapped, front, back (as a negative axis), middle
    out = [None, 0, -1]
    if ndim >= 1:
        out.append(1)
    return out


def _all_in_axes(shapes):
    combos = itertools.product(*[_axes_for(len(s)) for s in shapes])
    return [c for c in combos if any(a is not None for a in c)]


def _insert(x, ax, b):
    """Stack ``b`` independent draws of ``x`` along ``ax`` (the caller supplies them)."""
    return np.stack(x, axis=ax if ax >= 0 else ax)


def _check(rec, shapes, dtype, in_axes, b, seed):
    rng = np.random.default_rng(seed)
    per_example = [sample_args(rng, rec, shapes, dtype) for _ in range(max(b, 1))]
    batched = []
    for i, ax in enumerate(in_axes):
        if ax is None:
            batched.append(per_example[0][i])
        else:
            stacked = np.stack([ex[i] for ex in per_example[:b]], axis=0) if b else \
                np.zeros((0,) + np.shape(per_example[0][i]), per_example[0][i].dtype)
            batched.append(np.moveaxis(stacked, 0, ax))
    out = fnx.vmap(rec.op, in_axes=tuple(in_axes))(*[fnp.asarray(a) for a in batched])
    outs = out if isinstance(out, (tuple, list)) else (out,)
    if b == 0:
        proto = rec.op(*[fnp.asarray(a) for a in per_example[0]])
        protos = proto if isinstance(proto, (tuple, list)) else (proto,)
        for o, p in zip(outs, protos, strict=True):
            assert o.shape == (0,) + p.shape
            assert o.dtype == p.dtype
        return
    loop = []
    for j in range(b):
        args = [fnp.asarray(per_example[0][i] if ax is None else per_example[j][i])
                for i, ax in enumerate(in_axes)]
        res = rec.op(*args)
        loop.append(res if isinstance(res, (tuple, list)) else (res,))
    for k, o in enumerate(outs):
        expected = np.stack([np.asarray(r[k]) for r in loop])
        assert o.shape == expected.shape, (o.shape, expected.shape)
        assert o.dtype == expected.dtype
        np.testing.assert_allclose(np.asarray(o), expected, rtol=1e-5, atol=1e-6)


def _vmap_shapes(rec):
    return [s for s in rec.shapes if all(0 not in shape for shape in s)] or list(rec.shapes)


@pytest.mark.parametrize("rec", VMAP_RECORDS, ids=lambda r: r.name)
@settings(max_examples=4, deadline=None)
@given(data=st.data())
def test_vmap_vs_loop(rec, data):
    shapes = data.draw(st.sampled_from(_vmap_shapes(rec)), label="shapes")
    dtype = data.draw(st.sampled_from(rec.dtypes), label="dtype")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    combos = _all_in_axes(shapes)
    # every in_axes combination for <= 2 arguments, a hypothesis-chosen subset beyond
    if len(combos) > 16:
        combos = data.draw(st.lists(st.sampled_from(combos), min_size=4, max_size=6,
                                    unique=True), label="in_axes")
    for in_axes in combos:
        _check(rec, shapes, dtype, in_axes, 3, seed)


@pytest.mark.parametrize("rec", VMAP_RECORDS, ids=lambda r: r.name)
def test_vmap_size_zero_batch(rec):
    shapes = _vmap_shapes(rec)[0]
    _check(rec, shapes, rec.dtypes[0], (0,) * rec.nargs, 0, 0)
    if rec.nargs > 1:
        _check(rec, shapes, rec.dtypes[0], (0,) + (None,) * (rec.nargs - 1), 0, 0)
