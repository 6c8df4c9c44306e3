"""fnx.scipy.special against SciPy (values) and finite differences (gradients), including the
-inf entries of logsumexp."""

import math

import numpy as np
import pytest
import scipy.special as ss
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fnx
import fnx.numpy as fnp
import fnx.scipy.special as sps
from fnx.core.errors import DTypeError
from fnx.testing import check_grads


@settings(max_examples=25, deadline=None)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4),
                    elements=st.floats(-50, 50)),
       keepdims=st.booleans(), data=st.data())
def test_logsumexp_matches_scipy(x, keepdims, data):
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1))
    got = sps.logsumexp(fnp.asarray(x), axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(np.asarray(got), ss.logsumexp(x, axis=axis, keepdims=keepdims),
                               rtol=1e-12)


def test_logsumexp_infinities_weights_and_sign():
    a = np.array([[1.0, -np.inf, 3.0], [-np.inf, -np.inf, -np.inf], [1e30, 1e30, 0.0]])
    np.testing.assert_allclose(np.asarray(sps.logsumexp(fnp.asarray(a), axis=1)),
                               ss.logsumexp(a, axis=1))
    b = np.array([1.0, 2.0, -1.0])
    out, sign = sps.logsumexp(fnp.asarray(a[0]), b=fnp.asarray(b), return_sign=True)
    want, want_sign = ss.logsumexp(a[0], b=b, return_sign=True)
    assert math.isclose(out.item(), want) and sign.item() == want_sign
    assert sps.logsumexp(fnp.asarray(np.float32([1.0, 2.0]))).dtype == fnp.float32


def test_logsumexp_gradient_at_minus_inf():
    x = fnp.asarray([1.0, -math.inf, 3.0], dtype=fnp.float64)
    g = np.asarray(fnx.grad(lambda v: sps.logsumexp(v))(x))
    np.testing.assert_allclose(g, ss.softmax(np.asarray([1.0, -np.inf, 3.0])), rtol=1e-12)
    assert g[1] == 0.0
    # keepdims + axis, finite inputs: derivative checks in both modes
    check_grads(lambda v: sps.logsumexp(v, axis=0, keepdims=True),
                (fnp.asarray(np.linspace(-2, 2, 6).reshape(3, 2)),), order=2)


def test_softmax_family():
    x = np.array([[1.0, 2.0, 1000.0], [-1.0, 0.0, 1.0]])
    for axis in (None, 0, 1):
        np.testing.assert_allclose(np.asarray(sps.softmax(fnp.asarray(x), axis=axis)),
                                   ss.softmax(x, axis=axis), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(sps.log_softmax(fnp.asarray(x), axis=axis)),
                                   ss.log_softmax(x, axis=axis), rtol=1e-12)
    check_grads(lambda v: sps.log_softmax(v, axis=-1), (fnp.asarray(x[1]),), order=2)


@pytest.mark.parametrize("name,domain", [
    ("erf", (-3, 3)), ("erfc", (-3, 3)), ("erfinv", (-0.99, 0.99)), ("expit", (-20, 20)),
    ("logit", (0.01, 0.99)), ("gammaln", (0.1, 10)), ("digamma", (0.1, 10)),
    ("ndtr", (-5, 5)), ("ndtri", (0.01, 0.99)), ("log_ndtr", (-30, 5)), ("log_expit", (-40, 40)),
    ("entr", (0, 3)),
])
def test_unary_matches_scipy(name, domain):
    x = np.linspace(*domain, 41)
    got = getattr(sps, name)(fnp.asarray(x))
    np.testing.assert_allclose(np.asarray(got), getattr(ss, name)(x), rtol=1e-7, atol=1e-12)
    assert getattr(sps, name)(fnp.asarray(x.astype(np.float32))).dtype == fnp.float32


@pytest.mark.parametrize("name", ["erf", "erfinv", "expit", "logit", "gammaln"])
def test_unary_gradients(name):
    x = fnp.asarray(np.array([0.2, 0.5, 0.7]))
    check_grads(getattr(sps, name), (x,), order=1)


def test_xlogy_at_zero():
    x = np.array([0.0, 0.0, 2.0])
    y = np.array([0.0, 3.0, 3.0])
    np.testing.assert_allclose(np.asarray(sps.xlogy(fnp.asarray(x), fnp.asarray(y))),
                               ss.xlogy(x, y))
    np.testing.assert_allclose(np.asarray(sps.xlog1py(fnp.asarray(x), fnp.asarray(y - 1))),
                               ss.xlog1py(x, y - 1))


def test_integer_inputs_promote_and_complex_rejected():
    assert sps.expit(fnp.asarray([0, 1])).dtype == fnp.float32
    with pytest.raises(DTypeError, match="erf: complex input"):
        sps.erf(fnp.asarray([1j]))
