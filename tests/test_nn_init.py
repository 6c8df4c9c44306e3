"""fnx.nn.init: PyTorch's fan and gain computations exactly, the distributions statistically
(generous tolerances, large draws), in-place filling of concrete arrays, generators."""

import math

import numpy as np
import pytest
from scipy import stats

import fnx
import fnx.nn.functional as F
import fnx.nn.init as init
from fnx.core.errors import TraceError


def draw(*shape):
    return fnx.empty(*shape, dtype=fnx.float64)


def test_calculate_gain():
    for name in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                 "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        assert init.calculate_gain(name) == 1
    assert init.calculate_gain("tanh") == 5.0 / 3
    assert init.calculate_gain("relu") == math.sqrt(2.0)
    assert init.calculate_gain("leaky_relu") == math.sqrt(2.0 / (1 + 0.01 ** 2))
    assert init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2.0 / 1.04)
    assert init.calculate_gain("leaky_relu", 0) == math.sqrt(2.0)
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ValueError, match="not a valid number"):
        init.calculate_gain("leaky_relu", True)


@pytest.mark.parametrize("shape,fans", [((3, 4), (4, 3)), ((8, 3, 5), (15, 40)),
                                        ((8, 3, 5, 2), (30, 80)), ((2, 3, 1, 1, 4), (12, 8))])
def test_fan_in_and_fan_out(shape, fans):
    assert init._calculate_fan_in_and_fan_out(fnx.empty(*shape)) == fans


def test_fan_needs_two_dims():
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init._calculate_fan_in_and_fan_out(fnx.empty(5))
    with pytest.raises(ValueError, match="Mode fan_avg not supported"):
        init.kaiming_uniform_(fnx.empty(3, 4), mode="fan_avg")


def test_fills_in_place_and_returns_the_tensor():
    w = draw(50, 40)
    alias = w
    out = init.uniform_(w, -1.0, 1.0)
    assert out is w and alias is w
    assert w.dtype == fnx.float64 and w.shape == (50, 40)
    # other holders of the array see the new values (the buffer is replaced in place)
    ones = init.ones_(w)
    np.testing.assert_array_equal(np.asarray(alias), 1.0)
    assert ones is w
    # arrays are values inside transforms: only concrete ones can be filled
    with pytest.raises(TraceError):
        fnx.jit(lambda v: init.constant_(v, 1.0))(fnx.ones(3))


def _check_uniform(w, low, high):
    v = np.asarray(w).ravel()
    assert v.min() >= low and v.max() <= high
    assert abs(v.mean() - (low + high) / 2) < 0.05 * (high - low)
    assert abs(v.std() / ((high - low) / math.sqrt(12)) - 1) < 0.05


def _check_normal(w, mean, std):
    v = np.asarray(w).ravel()
    assert abs(v.mean() - mean) < 0.05 * std
    assert abs(v.std() / std - 1) < 0.05


def test_uniform_and_normal():
    _check_uniform(init.uniform_(draw(100, 100), -3.0, 1.0), -3.0, 1.0)
    _check_normal(init.normal_(draw(100, 100), 2.0, 0.5), 2.0, 0.5)


def test_trunc_normal_matches_scipy_truncnorm():
    w = np.asarray(init.trunc_normal_(draw(200, 100), mean=1.0, std=2.0, a=-1.0, b=2.0)).ravel()
    assert w.min() >= -1.0 and w.max() <= 2.0
    ref = stats.truncnorm((-1.0 - 1.0) / 2.0, (2.0 - 1.0) / 2.0, loc=1.0, scale=2.0)
    assert abs(w.mean() - ref.mean()) < 0.02
    assert abs(w.std() - ref.std()) < 0.02
    assert stats.kstest(w[:2000], ref.cdf).pvalue > 1e-3
    with pytest.warns(UserWarning, match="more than 2 std"):
        init.trunc_normal_(draw(10), mean=10.0, std=1.0)


def test_constant_zeros_ones_eye_dirac():
    np.testing.assert_array_equal(np.asarray(init.constant_(draw(2, 3), 0.25)), 0.25)
    np.testing.assert_array_equal(np.asarray(init.zeros_(draw(2, 3))), 0.0)
    np.testing.assert_array_equal(np.asarray(init.ones_(draw(2, 3))), 1.0)
    np.testing.assert_array_equal(np.asarray(init.eye_(draw(2, 3))), np.eye(2, 3))
    with pytest.raises(ValueError, match="only 2-D tensors"):
        init.eye_(draw(2, 2, 2))
    # dirac_ with groups: each group's output channels copy that group's input channels
    w = init.dirac_(draw(4, 2, 3, 3), groups=2)
    x = fnx.tensor(np.random.default_rng(0).standard_normal((1, 4, 5, 5)))
    np.testing.assert_allclose(np.asarray(F.conv2d(x, w, padding=1, groups=2)), np.asarray(x))
    with pytest.raises(ValueError, match="only 3, 4 and 5-D"):
        init.dirac_(draw(2, 2))


def test_xavier():
    fan_in, fan_out = 60 * 3, 50 * 3
    bound = 0.7 * math.sqrt(6 / (fan_in + fan_out))
    _check_uniform(init.xavier_uniform_(draw(50, 60, 3), gain=0.7), -bound, bound)
    _check_normal(init.xavier_normal_(draw(50, 60, 3), gain=0.7), 0.0,
                  0.7 * math.sqrt(2 / (fan_in + fan_out)))


@pytest.mark.parametrize("a,mode,nonlinearity", [
    (math.sqrt(5), "fan_in", "leaky_relu"),  # PyTorch's Linear/Conv default
    (0, "fan_out", "relu"), (0.1, "fan_in", "leaky_relu"), (0, "fan_in", "tanh"),
])
def test_kaiming(a, mode, nonlinearity):
    shape = (40, 30, 3, 3)
    fan = 30 * 9 if mode == "fan_in" else 40 * 9
    std = init.calculate_gain(nonlinearity, a) / math.sqrt(fan)
    bound = math.sqrt(3) * std
    _check_uniform(init.kaiming_uniform_(draw(*shape), a, mode, nonlinearity), -bound, bound)
    _check_normal(init.kaiming_normal_(draw(*shape), a, mode, nonlinearity), 0.0, std)


def test_kaiming_on_empty_tensor_warns():
    w = draw(0, 3)
    with pytest.warns(UserWarning, match="zero-element tensor"):
        assert init.kaiming_uniform_(w) is w


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (8, 2, 3, 1)])
def test_orthogonal(shape):
    w = np.asarray(init.orthogonal_(draw(*shape), gain=2.0)).reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-10)


def test_generators_make_draws_reproducible():
    g = fnx.Generator()
    a = np.asarray(init.kaiming_normal_(draw(5, 4), generator=g.manual_seed(3)))
    b = np.asarray(init.kaiming_normal_(draw(5, 4), generator=g.manual_seed(3)))
    np.testing.assert_array_equal(a, b)
    fnx.manual_seed(11)
    c = np.asarray(init.trunc_normal_(draw(5, 4)))
    d = np.asarray(init.orthogonal_(draw(5, 4)))
    fnx.manual_seed(11)
    np.testing.assert_array_equal(np.asarray(init.trunc_normal_(draw(5, 4))), c)
    np.testing.assert_array_equal(np.asarray(init.orthogonal_(draw(5, 4))), d)
    assert not np.array_equal(c, d)
