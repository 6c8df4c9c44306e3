"""Eager evaluation vs the NumPy reference, for every record of op_db over its dtypes and
shapes (scalars, empty arrays, broadcasting cases), with hypothesis drawing the data."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx.numpy as fnp
from op_db import RECORDS, sample_args

REF_RECORDS = [r for r in RECORDS if r.ref is not None]


def _compare(out, expected, tol, dtype):
    outs = out if isinstance(out, (tuple, list)) else (out,)
    exps = expected if isinstance(expected, (tuple, list)) else (expected,)
    assert len(outs) == len(exps)
    for o, e in zip(outs, exps):
        o, e = np.asarray(o), np.asarray(e)
        assert o.shape == e.shape, (o.shape, e.shape)
        atol, rtol = tol.get(np.dtype(dtype), (1e-6, 1e-6))
        if e.dtype.kind in "biu":
            np.testing.assert_array_equal(o, e)
        else:
            np.testing.assert_allclose(o, e, atol=atol, rtol=rtol, equal_nan=True)


@pytest.mark.parametrize("rec", REF_RECORDS, ids=lambda r: r.name)
@settings(max_examples=6, deadline=None)
@given(data=st.data())
def test_reference(rec, data):
    dtype = data.draw(st.sampled_from(rec.dtypes), label="dtype")
    shapes = data.draw(st.sampled_from(rec.shapes), label="shapes")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    args = sample_args(np.random.default_rng(seed), rec, shapes, dtype)
    expected = rec.ref(*args)
    out = rec.op(*[fnp.asarray(a) for a in args])
    _compare(out, expected, rec.tol, dtype)
    if rec.kind == "primitive" and not isinstance(out, (tuple, list)):
        # primitives keep their operand dtype unless they say otherwise
        assert np.asarray(out).dtype == np.asarray(expected).dtype or rec.name.startswith(
            ("real", "imag", "argm", "is_", "eq", "ne", "lt", "le", "gt", "ge", "complex"))


def test_pad_impl_matches_an_element_by_element_reference():
    """pad's strided-slice impl (negative, interior and empty padding) against placing each
    element of x at lo + i * (interior + 1) by hand."""
    import itertools

    from fnx.core.abstract import ShapedArray
    from fnx.core.ops import shape as sh

    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(3000):
        shp = tuple(int(v) for v in rng.integers(0, 5, rng.integers(1, 4)))
        cfg = tuple((int(rng.integers(-5, 4)), int(rng.integers(-5, 4)), int(rng.integers(0, 3)))
                    for _ in shp)
        try:
            out_shape = sh._pad_abstract_eval(ShapedArray(shp, np.float32),
                                              ShapedArray((), np.float32),
                                              padding_config=cfg).shape
        except Exception:  # noqa: BLE001 - a negative output size: the rule refuses it
            continue
        x = rng.normal(size=shp).astype(np.float32)
        want = np.full(out_shape, -1.0, np.float32)
        for i in itertools.product(*map(range, shp)):
            pos = tuple(lo + k * (interior + 1) for k, (lo, _, interior) in zip(i, cfg))
            if all(0 <= p < n for p, n in zip(pos, out_shape)):
                want[pos] = x[i]
        got = sh._pad_impl(x, np.float32(-1.0), padding_config=cfg)
        np.testing.assert_array_equal(got, want, err_msg=str((shp, cfg)))
        checked += 1
    assert checked > 1000
