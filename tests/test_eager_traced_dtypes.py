"""Eager and traced code follow one dtype rule (the primitives' shape/dtype rules): the
fnx.numpy wrapper converts where NumPy promotes, and both raise the same DTypeError where
fnx does not support an input (complex ordering)."""

import numpy as np
import pytest

import fnx
import fnx.numpy as fnp
from fnx.core.errors import DTypeError

INTS = np.array([1, -2, 3], np.int32)
BOOLS = np.array([True, False, True])
Z = np.array([1 + 2j, 3 - 1j], np.complex64)


def _both(f, *args):
    """f eagerly and under jit (and vmap), each as a NumPy array with its dtype."""
    arrs = [fnp.asarray(a) for a in args]
    return [np.asarray(g(*arrs)) for g in (f, fnx.jit(f), fnx.vmap(f))]


@pytest.mark.parametrize("name", ["copysign", "nextafter"])
@pytest.mark.parametrize("x", [INTS, BOOLS, INTS.astype(np.uint8)], ids=["int32", "bool", "uint8"])
def test_float_ops_promote_ints_to_default_float(name, x):
    y = x[::-1].copy()
    # NumPy promotes to a float (float64 for int32); fnx to its default float, float32
    expected = getattr(np, name)(x.astype(np.float32), y.astype(np.float32))
    for got in _both(getattr(fnp, name), x, y):
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("op", [lambda a, b: a << b, lambda a, b: a >> b], ids=["lshift", "rshift"])
def test_bool_shifts_are_int8_as_numpy(op):
    expected = op(BOOLS, BOOLS[::-1].copy())
    assert expected.dtype == np.int8
    for got in _both(op, BOOLS, BOOLS[::-1].copy()):
        assert got.dtype == np.int8
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("f", [fnp.maximum, fnp.minimum, fnp.fmax, fnp.less, fnp.logaddexp,
                               fnp.heaviside, lambda a, b: fnp.max(a), lambda a, b: fnp.argmax(a)],
                         ids=["maximum", "minimum", "fmax", "less", "logaddexp", "heaviside",
                              "max", "argmax"])
def test_complex_ordering_raises_eagerly_and_traced(f):
    z = fnp.asarray(Z)
    with pytest.raises(DTypeError, match="complex64") as eager:
        f(z, z)
    with pytest.raises(DTypeError, match="complex64") as traced:
        fnx.jit(f)(z, z)
    assert str(eager.value) == str(traced.value)


def test_sign_of_negative_zero_is_positive_zero():
    x = np.array([-0.0, 0.0, -2.0, np.nan], np.float32)
    for got in _both(fnp.sign, x):
        np.testing.assert_array_equal(np.signbit(got), np.signbit(np.sign(x)))
        np.testing.assert_array_equal(got, np.sign(x))
