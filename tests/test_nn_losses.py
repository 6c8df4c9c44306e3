"""fnx.nn loss modules: each against a NumPy reference of PyTorch's documented formula for
reduction none/mean/sum, class weights and pos_weight registered as buffers (state_dict,
.double()), PyTorch's legacy size_average/reduce, tape == fnx.grad, jit == eager, reprs and
the designed errors."""

import numpy as np
import pytest
from scipy import special as sp

import fnx
from fnx import nn

F64 = fnx.float64
R = np.random.default_rng(1)


def t(a, **kw):
    return fnx.tensor(a, **kw)


def close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


def reduce(per_element, reduction, denominator=None):
    if reduction == "none":
        return per_element
    total = per_element.sum()
    if reduction == "sum":
        return total
    return total / (per_element.size if denominator is None else denominator)


# --- NumPy references: (module, inputs, per-element loss, mean denominator or None) ----------


def _cross_entropy(weight=None, ignore_index=-100, label_smoothing=0.0, spatial=False):
    shape = (4, 3, 2) if spatial else (5, 3)
    x = R.standard_normal(shape)
    y = R.integers(0, 3, (shape[0],) + shape[2:])
    y.flat[1] = 2 if ignore_index == 2 else y.flat[1]
    w = np.ones(3) if weight is None else weight
    logp = x - sp.logsumexp(x, axis=1, keepdims=True)
    picked = np.take_along_axis(logp, y[:, None], 1)[:, 0]
    valid = y != ignore_index
    wy = np.where(valid, w[np.where(valid, y, 0)], 0.0)
    smooth = np.where(valid, -(logp * w.reshape((1, 3) + (1,) * (x.ndim - 2))).sum(1), 0.0)
    per = (1 - label_smoothing) * (-picked * wy) + label_smoothing / 3 * smooth
    module = nn.CrossEntropyLoss(None if weight is None else t(weight),
                                 ignore_index=ignore_index, label_smoothing=label_smoothing)
    return module, (x, y), per, wy.sum()


def _probability_targets():
    x = R.standard_normal((4, 3))
    p = sp.softmax(R.standard_normal((4, 3)), axis=1)
    logp = x - sp.logsumexp(x, axis=1, keepdims=True)
    return nn.CrossEntropyLoss(), (x, p), -(p * logp).sum(1), None


def _nll(weight):
    x = np.log(sp.softmax(R.standard_normal((6, 4)), axis=1))
    y = R.integers(0, 4, 6)
    y[0] = 1
    w = np.ones(4) if weight is None else weight
    wy = np.where(y != 1, w[y], 0.0)
    per = -np.take_along_axis(x, y[:, None], 1)[:, 0] * wy
    module = nn.NLLLoss(None if weight is None else t(weight), ignore_index=1)
    return module, (x, y), per, wy.sum()


def _bce(weighted):
    x = R.uniform(0.05, 0.95, (4, 3))
    y = R.uniform(0, 1, (4, 3))
    w = R.uniform(0.5, 2, 3)
    per = -(y * np.log(x) + (1 - y) * np.log(1 - x)) * (w if weighted else 1)
    return nn.BCELoss(t(w) if weighted else None), (x, y), per, None


def _bce_logits():
    x = R.standard_normal((4, 3)) * 3
    y = R.uniform(0, 1, (4, 3))
    w, pw = R.uniform(0.5, 2, (4, 1)), R.uniform(0.5, 3, 3)
    log_sig, log_1m = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    per = -(pw * y * log_sig + (1 - y) * log_1m) * w
    return nn.BCEWithLogitsLoss(t(w), pos_weight=t(pw)), (x, y), per, None


def _pointwise(module, fn):
    x, y = R.standard_normal((3, 4)) * 2, R.standard_normal((3, 4))
    return module, (x, y), fn(x - y), None


def _kl(log_target):
    x = np.log(sp.softmax(R.standard_normal((3, 4)), axis=1))
    p = sp.softmax(R.standard_normal((3, 4)), axis=1)
    y = np.log(p) if log_target else p
    return nn.KLDivLoss(log_target=log_target), (x, y), p * (np.log(p) - x), None


def _cosine_embedding():
    a, b = R.standard_normal((5, 3)), R.standard_normal((5, 3))
    y = np.array([1, -1, 1, -1, -1])
    cos = (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1))
    per = np.where(y == 1, 1 - cos, np.maximum(cos - 0.2, 0))
    return nn.CosineEmbeddingLoss(margin=0.2), (a, b, y), per, None


def _margin_ranking():
    a, b = R.standard_normal(6), R.standard_normal(6)
    y = np.sign(R.standard_normal(6))
    return nn.MarginRankingLoss(0.5), (a, b, y), np.maximum(-y * (a - b) + 0.5, 0), None


def _triplet(swap, p):
    a, pos, neg = (R.standard_normal((5, 3)) for _ in range(3))

    def dist(u, v):
        return (np.abs(u - v + 1e-6) ** p).sum(1) ** (1 / p)

    d_neg = dist(a, neg)
    if swap:
        d_neg = np.minimum(d_neg, dist(pos, neg))
    per = np.maximum(dist(a, pos) - d_neg + 1.5, 0)
    return nn.TripletMarginLoss(1.5, p, swap=swap), (a, pos, neg), per, None


def _poisson(log_input, full):
    x = R.standard_normal((3, 4)) if log_input else R.uniform(0.1, 3, (3, 4))
    y = R.poisson(2.0, (3, 4)).astype(float)
    per = np.exp(x) - y * x if log_input else x - y * np.log(x + 1e-8)
    if full:
        ys = np.where(y > 1, y, 1)
        per = per + np.where(y > 1, ys * np.log(ys) - ys + 0.5 * np.log(2 * np.pi * ys), 0)
    return nn.PoissonNLLLoss(log_input, full), (x, y), per, None


def _hinge():
    x, y = R.standard_normal(6), np.array([1, -1, 1, -1, 1, -1.0])
    return nn.HingeEmbeddingLoss(0.7), (x, y), np.where(y == 1, x, np.maximum(0, 0.7 - x)), None


def _smooth_l1(d):
    a = np.abs(d)
    return np.where(a < 0.5, 0.5 * a * a / 0.5, a - 0.25)


def _huber(d):
    a = np.abs(d)
    return np.where(a < 1.5, 0.5 * a * a, 1.5 * (a - 0.75))


CASES = {
    "cross_entropy": lambda: _cross_entropy(),
    "cross_entropy_weighted_ignored": lambda: _cross_entropy(np.array([0.5, 2.0, 1.0]), 2),
    "cross_entropy_smoothing": lambda: _cross_entropy(np.array([0.5, 2.0, 1.0]), 0, 0.3),
    "cross_entropy_spatial": lambda: _cross_entropy(label_smoothing=0.1, spatial=True),
    "cross_entropy_probabilities": _probability_targets,
    "nll": lambda: _nll(None),
    "nll_weighted": lambda: _nll(np.array([1.0, 2.0, 0.5, 3.0])),
    "bce": lambda: _bce(False),
    "bce_weighted": lambda: _bce(True),
    "bce_with_logits": _bce_logits,
    "mse": lambda: _pointwise(nn.MSELoss(), lambda d: d * d),
    "l1": lambda: _pointwise(nn.L1Loss(), np.abs),
    "smooth_l1": lambda: _pointwise(nn.SmoothL1Loss(beta=0.5), _smooth_l1),
    "huber": lambda: _pointwise(nn.HuberLoss(delta=1.5), _huber),
    "kl_div": lambda: _kl(False),
    "kl_div_log_target": lambda: _kl(True),
    "cosine_embedding": _cosine_embedding,
    "margin_ranking": _margin_ranking,
    "triplet": lambda: _triplet(False, 2.0),
    "triplet_swap_l1": lambda: _triplet(True, 1.0),
    "poisson": lambda: _poisson(True, False),
    "poisson_full_rates": lambda: _poisson(False, True),
    "hinge_embedding": _hinge,
}


def _as_inputs(arrays):
    return [t(a) if a.dtype.kind == "f" else t(a.astype(np.int64)) for a in arrays]


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name", list(CASES))
def test_losses_against_numpy(name, reduction):
    module, arrays, per, denominator = CASES[name]()
    module.reduction = reduction
    module.double()
    close(module(*_as_inputs(arrays)), reduce(per, reduction, denominator))


def test_kl_div_batchmean():
    module, arrays, per, _ = _kl(False)
    loss = nn.KLDivLoss(reduction="batchmean")
    close(loss(*_as_inputs(arrays)), per.sum() / 3)


def test_weights_are_buffers():
    w = t([1.0, 2.0, 3.0])
    ce = nn.CrossEntropyLoss(weight=w)
    assert ce.weight is w and list(ce.state_dict()) == ["weight"]
    assert list(dict(ce.named_buffers())) == ["weight"] and list(ce.parameters()) == []
    assert list(nn.CrossEntropyLoss().state_dict()) == []
    bce = nn.BCEWithLogitsLoss(pos_weight=t([2.0]))
    assert list(bce.state_dict()) == ["pos_weight"] and bce.weight is None
    assert list(nn.BCEWithLogitsLoss(t([1.0]), pos_weight=t([2.0])).state_dict()) == [
        "weight", "pos_weight"]
    assert nn.NLLLoss(weight=t([1.0, 2.0])).double().weight.dtype == F64
    model = nn.Sequential(nn.Linear(2, 3))
    model.criterion = nn.CrossEntropyLoss(weight=t([1.0, 1.0, 2.0]))
    assert list(model.state_dict()) == ["0.weight", "0.bias", "criterion.weight"]


def test_reduction_options_and_legacy_arguments():
    x, y = t([1.0, 2.0]), t([0.0, 0.0])
    with pytest.warns(UserWarning, match="size_average and reduce are deprecated"):
        loss = nn.MSELoss(size_average=False)
    assert loss.reduction == "sum" and loss(x, y).item() == 5.0
    with pytest.warns(UserWarning):
        assert nn.L1Loss(reduce=False).reduction == "none"
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: reduction must be one of \('none', "
                                         r"'mean', 'sum'\), got 'avg'"):
        nn.CrossEntropyLoss(reduction="avg")
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="batchmean")
    assert nn.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    with pytest.raises(ValueError, match="TripletMarginLoss: margin must be greater than 0"):
        nn.TripletMarginLoss(margin=0.0)


def test_cross_entropy_label_errors():
    ce = nn.CrossEntropyLoss()
    with pytest.raises(IndexError, match=r"cross_entropy: target 5 is out of range; expected "
                                         r"values in \[0, 3\)"):
        ce(fnx.zeros(2, 3), t([0, 5]))
    with pytest.raises(ValueError, match=r"cross_entropy: float targets are class probabilities "
                                         r"and must have the input's shape \(2, 3\), got \(2,\)"):
        ce(fnx.zeros(2, 3), t([0.0, 1.0]))
    with pytest.raises(ValueError, match="expected class-index target of shape"):
        ce(fnx.zeros(2, 3), t([[0, 1]]))
    with pytest.raises(ValueError, match="binary_cross_entropy: all elements of input should be "
                                         "between 0 and 1"):
        nn.BCELoss()(t([1.5]), t([1.0]))


def test_reprs():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.MSELoss(reduction="sum")) == "MSELoss()"
    assert repr(nn.BCEWithLogitsLoss(pos_weight=t([2.0]))) == "BCEWithLogitsLoss()"


class Head(nn.Module):
    def __init__(self, criterion):
        super().__init__()
        self.lin = nn.Linear(4, 3, dtype=F64)
        self.criterion = criterion

    def forward(self, x, y):
        return self.criterion(self.lin(x), y)


TRAINABLE = {
    "cross_entropy": (lambda: nn.CrossEntropyLoss(t([0.5, 2.0, 1.0], dtype=F64), ignore_index=1,
                                                  label_smoothing=0.2),
                      lambda: t(R.integers(0, 3, 6))),
    "bce_with_logits": (lambda: nn.BCEWithLogitsLoss(pos_weight=t([1.0, 2.0, 3.0], dtype=F64)),
                        lambda: t(R.uniform(0, 1, (6, 3)))),
    "smooth_l1": (lambda: nn.SmoothL1Loss(beta=0.3), lambda: t(R.standard_normal((6, 3)))),
}


@pytest.mark.parametrize("name", list(TRAINABLE))
def test_tape_equals_grad_and_jit_equals_eager(name):
    criterion, target = TRAINABLE[name]
    head = Head(criterion())
    x = t(R.standard_normal((6, 4)), requires_grad=True)
    y = target()
    g_head, g_x = fnx.grad(lambda m, x: m(x, y), argnums=(0, 1))(head, x)
    head(x, y).backward()
    close(head.lin.weight.grad, np.asarray(g_head.lin.weight), rtol=1e-12)
    close(head.lin.bias.grad, np.asarray(g_head.lin.bias), rtol=1e-12)
    close(x.grad, np.asarray(g_x), rtol=1e-12)
    close(fnx.jit(lambda m, x, y: m(x, y))(head, x, y), head(x, y).item(), rtol=1e-12)


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_mean_over_only_ignored_targets_is_nan_with_zero_gradients(label_smoothing):
    # a batch that is all padding: PyTorch's loss is NaN (0 / 0) but its backward gives zero
    # gradients; the 0 / 0 in the derivative once made every gradient NaN (NaN parameters)
    x = t(R.standard_normal((2, 4, 3)), dtype=F64, requires_grad=True)
    y = t(np.ones((2, 3), np.int64))
    loss = nn.CrossEntropyLoss(ignore_index=1, label_smoothing=label_smoothing)
    value = loss(x, y)
    assert np.isnan(value.item())
    value.backward()
    close(x.grad, np.zeros((2, 4, 3)))
    grad = fnx.jit(fnx.grad(lambda a: loss(a, y)))(x.detach())
    close(grad, np.zeros((2, 4, 3)))
