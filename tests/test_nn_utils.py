"""fnx.nn.utils: clip_grad_norm_ / clip_grad_value_ against NumPy (every norm type, in-place
updates of the gradient arrays, non-finite norms), and parameters_to_vector /
vector_to_parameters (round trip, gradients through the vector, errors)."""

import math

import numpy as np
import pytest

import fnx
import fnx.optim
from fnx import nn
from fnx.core.errors import ShapeError

R = np.random.default_rng(2)


def close(got, want, rtol=1e-6, atol=1e-7):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


def params_with_grads(*shapes, scale=1.0, dtype=fnx.float32):
    params = []
    for shape in shapes:
        p = nn.Parameter(fnx.zeros(*shape, dtype=dtype))
        p.grad = fnx.tensor(R.standard_normal(shape) * scale, dtype=dtype)
        params.append(p)
    return params


def np_total_norm(grads, p):
    flat = np.concatenate([np.asarray(g, dtype=np.float64).ravel() for g in grads])
    if p == math.inf:
        return np.abs(flat).max()
    return (np.abs(flat) ** p).sum() ** (1 / p)


@pytest.mark.parametrize("norm_type", [2.0, 1, 3.5, math.inf, "inf"])
@pytest.mark.parametrize("max_norm", [0.5, 1e3])
def test_clip_grad_norm_against_numpy(norm_type, max_norm):
    params = params_with_grads((3, 4), (5,), (2, 2, 2))
    params.append(nn.Parameter(fnx.zeros(2)))  # no gradient: skipped
    grads = [p.grad for p in params[:3]]
    before = [np.asarray(g).copy() for g in grads]
    p = float(norm_type)
    want_total = np_total_norm(before, p)
    total = nn.utils.clip_grad_norm_(iter(params), max_norm, norm_type=norm_type)
    close(total, want_total, rtol=1e-5)
    coef = min(1.0, max_norm / (want_total + 1e-6))
    for param, g, old in zip(params, grads, before, strict=False):
        assert param.grad is g  # rescaled in place: every holder sees the clipped values
        close(g, old * coef, rtol=1e-5)
    assert params[3].grad is None
    if max_norm < want_total:
        close(np_total_norm(grads, p), max_norm, rtol=1e-4)


def test_clip_grad_norm_inputs_and_dtypes():
    (single,) = params_with_grads((4,), scale=10.0, dtype=fnx.float64)
    old = np.asarray(single.grad).copy()
    total = nn.utils.clip_grad_norm_(single, max_norm=1.0)  # one array instead of a list
    close(total, np.linalg.norm(old), rtol=1e-12)
    assert total.dtype == fnx.float64
    close(single.grad, old / (np.linalg.norm(old) + 1e-6), rtol=1e-12)
    assert nn.utils.clip_grad_norm_([], 1.0).item() == 0.0
    assert nn.utils.clip_grad_norm_([nn.Parameter(fnx.ones(2))], 1.0).item() == 0.0
    params = params_with_grads((3,), (3,))
    nn.utils.clip_grad_norm_(params, 1.0, foreach=True)  # accepted (one implementation)
    close(nn.utils.get_total_norm([p.grad for p in params]), 1.0, rtol=1e-5)


def test_clip_grad_norm_non_finite():
    params = params_with_grads((3,), (2,))
    params[1].grad[0] = math.nan
    with pytest.raises(RuntimeError, match=r"The total norm of order 2.0 for gradients from "
                                           r"`parameters` is non-finite, so it cannot be clipped"):
        nn.utils.clip_grad_norm_(params, 1.0, error_if_nonfinite=True)
    params[1].grad[0] = math.inf
    with pytest.raises(RuntimeError, match="order inf .* is non-finite"):
        nn.utils.clip_grad_norm_(params, 1.0, norm_type="inf", error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):  # inf * 0 in the infinite entry, as in PyTorch
        total = nn.utils.clip_grad_norm_(params, 1.0)  # the default: scale by it anyway
    assert math.isinf(total.item())
    assert np.all(np.asarray(params[0].grad) == 0)


def test_clip_grad_value():
    params = params_with_grads((4, 3), (6,), scale=2.0)
    before = [np.asarray(p.grad).copy() for p in params]
    grads = [p.grad for p in params]
    assert nn.utils.clip_grad_value_((p for p in params), clip_value=0.7) is None
    for p, g, old in zip(params, grads, before, strict=True):
        assert p.grad is g
        close(g, np.clip(old, -0.7, 0.7), 0, 0)


def test_clip_inside_a_training_step():
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))
    opt = fnx.optim.SGD(model.parameters(), lr=0.1)
    x, y = fnx.randn(16, 4) * 10, fnx.randn(16, 2) * 10
    nn.functional.mse_loss(model(x), y).backward()
    grads = {k: np.asarray(p.grad).copy() for k, p in model.named_parameters()}
    old = {k: np.asarray(p).copy() for k, p in model.named_parameters()}
    total = nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()
    coef = min(1.0, 1.0 / (total.item() + 1e-6))
    for k, p in model.named_parameters():  # the optimizer stepped with the clipped gradients
        close(p, old[k] - 0.1 * coef * grads[k], rtol=1e-5, atol=1e-6)


def test_parameters_to_vector_round_trip_and_gradients():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))
    vec = nn.utils.parameters_to_vector(model.parameters())
    assert vec.shape == (3 * 4 + 4 + 4 * 2,)
    close(vec, np.concatenate([np.asarray(p).ravel() for p in model.parameters()]), 0, 0)
    (vec * vec).sum().backward()  # the vector is computed from the parameters: the tape sees it
    for p in model.parameters():
        close(p.grad, 2 * np.asarray(p), rtol=1e-6)
    params = list(model.parameters())
    new = fnx.arange(float(vec.shape[0]))
    nn.utils.vector_to_parameters(new, model.parameters())
    assert all(a is b for a, b in zip(params, model.parameters(), strict=True))  # in place
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in params)
    close(model[0].weight, np.arange(12.0).reshape(4, 3), 0, 0)
    close(model[1].weight, np.arange(16.0, 24.0).reshape(2, 4), 0, 0)
    close(nn.utils.parameters_to_vector(model.parameters()), np.arange(24.0), 0, 0)
    # under fnx.grad the same function is differentiable with respect to the parameters
    g = fnx.grad(lambda ps: (nn.utils.parameters_to_vector(ps) ** 2).sum())(params)
    for p, gp in zip(params, g, strict=True):
        close(gp, 2 * np.asarray(p), rtol=1e-6)


def test_vector_to_parameters_errors():
    params = [nn.Parameter(fnx.zeros(2, 2))]
    with pytest.raises(TypeError, match="vector_to_parameters: expected an fnx Array, but got: "
                                        "list"):
        nn.utils.vector_to_parameters([1.0, 2.0, 3.0, 4.0], params)
    with pytest.raises(ShapeError, match=r"expected a 1-D vector of 4 elements \(the "
                                         r"parameters' total size\), got shape \(5,\)"):
        nn.utils.vector_to_parameters(fnx.zeros(5), params)
