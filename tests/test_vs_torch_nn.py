"""fnx.nn layers, losses and utils against PyTorch itself, when torch is importable (skipped
otherwise): each layer is built with the same arguments in both libraries, torch's state_dict
is copied into the fnx layer, and the outputs, input and parameter gradients, updated buffers
(BatchNorm running statistics), state_dict keys and reprs must agree, in float64."""

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import fnx  # noqa: E402
from fnx import nn  # noqa: E402

R = np.random.default_rng(0)


def close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=rtol, atol=atol)


def pair(name, *args, **kwargs):
    """The same layer in both libraries, fnx's holding torch's parameters and buffers."""
    theirs = getattr(torch.nn, name)(*args, **kwargs).double()
    ours = getattr(nn, name)(*args, **kwargs)
    sd = {k: fnx.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    ours.load_state_dict(sd)
    ours.double()
    return theirs, ours


# (layer name, args, kwargs, input shapes; "int:<high>" marks integer inputs)
LAYERS = [
    ("Linear", (5, 3), {}, [(4, 5)]),
    ("Bilinear", (3, 4, 2), {}, [(5, 3), (5, 4)]),
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=2, dilation=2, groups=2), [(2, 4, 11)]),
    ("Conv1d", (3, 4, 4), dict(padding="same", padding_mode="circular"), [(2, 3, 9)]),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 2), groups=2,
                                     padding_mode="reflect"), [(2, 4, 7, 6)]),
    ("Conv2d", (3, 4, 4), dict(padding="same", dilation=(1, 2), padding_mode="replicate"),
     [(1, 3, 8, 9)]),
    ("Conv2d", (3, 4, 3), dict(padding="valid", bias=False), [(3, 7, 7)]),
    ("ConvTranspose1d", (4, 6, 3), dict(stride=2, padding=1, output_padding=1, groups=2),
     [(2, 4, 5)]),
    ("ConvTranspose2d", (4, 2, (3, 2)), dict(stride=(2, 3), padding=(1, 0), dilation=(2, 1)),
     [(2, 4, 4, 3)]),
    ("MaxPool1d", (3,), dict(stride=2, padding=1, dilation=2), [(2, 3, 11)]),
    ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), [(2, 3, 8, 7)]),
    ("AvgPool1d", (3,), dict(stride=2, padding=1, count_include_pad=False), [(2, 3, 10)]),
    ("AvgPool2d", ((3, 2),), dict(stride=2, padding=1, ceil_mode=True, divisor_override=None),
     [(2, 3, 8, 7)]),
    ("AdaptiveAvgPool1d", (4,), {}, [(2, 3, 10)]),
    ("AdaptiveAvgPool2d", ((3, None),), {}, [(2, 3, 8, 7)]),
    ("AdaptiveMaxPool1d", (3,), {}, [(2, 3, 10)]),
    ("AdaptiveMaxPool2d", ((3, 4),), {}, [(2, 3, 8, 7)]),
    ("BatchNorm1d", (3,), {}, [(5, 3)]),
    ("BatchNorm1d", (3,), dict(momentum=None, affine=False), [(5, 3, 4)]),
    ("BatchNorm2d", (3,), dict(eps=1e-3, momentum=0.3), [(4, 3, 2, 3)]),
    ("BatchNorm2d", (3,), dict(track_running_stats=False), [(4, 3, 2, 3)]),
    ("InstanceNorm1d", (3,), dict(affine=True, track_running_stats=True), [(2, 3, 6)]),
    ("InstanceNorm2d", (3,), {}, [(2, 3, 4, 5)]),
    ("LayerNorm", ((3, 4),), dict(eps=1e-3), [(2, 5, 3, 4)]),
    ("LayerNorm", (4,), dict(bias=False), [(2, 4)]),
    ("GroupNorm", (2, 4), {}, [(3, 4, 5)]),
    ("RMSNorm", (4,), {}, [(3, 4)]),
    ("Embedding", (10, 3), dict(padding_idx=2), ["int:10"]),
    ("EmbeddingBag", (10, 3), dict(mode="max"), ["int:10"]),
    ("PReLU", (3,), dict(init=0.1), [(4, 3, 2)]),
    ("GELU", (), dict(approximate="tanh"), [(3, 4)]),
    ("Softplus", (2.0, 3.0), {}, [(3, 4)]),
    ("GLU", (1,), {}, [(3, 4)]),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear", align_corners=True),
     [(1, 2, 3, 4)]),
    ("PixelShuffle", (2,), {}, [(1, 8, 2, 3)]),
    ("PixelUnshuffle", (2,), {}, [(1, 2, 4, 6)]),
    ("EmbeddingBag", (10, 3), dict(mode="mean"), ["int:10"]),
    ("EmbeddingBag", (10, 3), dict(mode="sum", padding_idx=0), ["int:10"]),
    ("MaxPool1d", (4,), dict(stride=3, ceil_mode=True, return_indices=True), [(2, 3, 11)]),
    ("MaxPool2d", ((2, 3),), dict(padding=1, dilation=(2, 1), return_indices=True),
     [(2, 3, 7, 8)]),
    ("AdaptiveMaxPool2d", (3,), dict(return_indices=True), [(2, 3, 7, 5)]),
    ("Flatten", (0, 1), {}, [(2, 3, 4)]),
    ("Unflatten", (1, (2, 3)), {}, [(4, 6, 2)]),
    ("Identity", (), {}, [(3, 2)]),
    ("Dropout", (0.0,), {}, [(3, 4)]),
    ("ReLU", (), {}, [(3, 4)]),
    ("ReLU6", (), {}, [(3, 4)]),
    ("LeakyReLU", (0.3,), {}, [(3, 4)]),
    ("PReLU", (), {}, [(4, 3)]),
    ("GELU", (), {}, [(3, 4)]),
    ("Sigmoid", (), {}, [(3, 4)]),
    ("Tanh", (), {}, [(3, 4)]),
    ("Softmax", (), dict(dim=1), [(3, 4)]),
    ("LogSoftmax", (0,), {}, [(3, 4)]),
    ("ELU", (0.5,), {}, [(3, 4)]),
    ("SELU", (), {}, [(3, 4)]),
    ("CELU", (1.5,), {}, [(3, 4)]),
    ("SiLU", (), {}, [(3, 4)]),
    ("Mish", (), {}, [(3, 4)]),
    ("Softplus", (), {}, [(3, 4)]),
    ("Softsign", (), {}, [(3, 4)]),
    ("Hardtanh", (-0.5, 0.8), {}, [(3, 4)]),
    ("Hardswish", (), {}, [(3, 4)]),
    ("Hardsigmoid", (), {}, [(3, 4)]),
    ("Threshold", (0.1, 20.0), {}, [(3, 4)]),
]


def _inputs(specs):
    ours, theirs = [], []
    for spec in specs:
        if isinstance(spec, str):
            a = R.integers(0, int(spec.split(":")[1]), (4, 3))
            ours.append(fnx.tensor(a))
            theirs.append(torch.tensor(a))
        else:
            a = R.standard_normal(spec)
            ours.append(fnx.tensor(a, requires_grad=True))
            theirs.append(torch.tensor(a, requires_grad=True))
    return ours, theirs


@pytest.mark.parametrize("name,args,kwargs,shapes", LAYERS,
                         ids=[f"{n}-{i}" for i, (n, *_) in enumerate(LAYERS)])
def test_layer_matches_torch(name, args, kwargs, shapes):
    theirs, ours = pair(name, *args, **kwargs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x_ours, x_theirs = _inputs(shapes)
    out_theirs = theirs(*x_theirs)
    out_ours = ours(*x_ours)
    if isinstance(out_theirs, tuple):  # (values, indices)
        assert np.asarray(out_ours[1]).tolist() == out_theirs[1].tolist()
        out_ours, out_theirs = out_ours[0], out_theirs[0]
    close(out_ours, out_theirs.detach().numpy())
    ct = R.standard_normal(tuple(out_theirs.shape))
    (out_theirs * torch.tensor(ct)).sum().backward()
    (out_ours * fnx.tensor(ct)).sum().backward()
    for a, b in zip(x_ours, x_theirs, strict=True):
        if b.grad is not None:
            # torch's hardsigmoid backward multiplies by 1/6 rounded to float32, even in float64
            close(a.grad, b.grad.numpy(), rtol=1e-7 if name == "Hardsigmoid" else 1e-10)
    params = dict(theirs.named_parameters())
    for k, p in ours.named_parameters():
        close(p.grad, params[k].grad.numpy())
    buffers = dict(theirs.named_buffers())
    for k, b in ours.named_buffers():
        close(b, buffers[k].numpy())


def test_batch_norm_sequence_and_eval_match_torch():
    theirs, ours = pair("BatchNorm2d", 3, momentum=None)
    for step in range(3):
        x = R.standard_normal((4, 3, 2, 2)) * (step + 1)
        close(ours(fnx.tensor(x)), theirs(torch.tensor(x)).detach().numpy())
    close(ours.running_var, theirs.running_var.numpy())
    assert ours.num_batches_tracked.item() == theirs.num_batches_tracked.item() == 3
    x = R.standard_normal((2, 3, 2, 2))
    close(ours.eval()(fnx.tensor(x)), theirs.eval()(torch.tensor(x)).detach().numpy())


def test_conv_transpose_output_size_matches_torch():
    theirs, ours = pair("ConvTranspose2d", 3, 2, 3, stride=3, padding=1)
    x = R.standard_normal((1, 3, 4, 5))
    for size in ([10, 13], [12, 15], (1, 2, 11, 14)):
        close(ours(fnx.tensor(x), output_size=size),
              theirs(torch.tensor(x), output_size=size).detach().numpy())


def test_default_initialisation_distributions_match_torch():
    # the same bounds: the largest magnitudes of big weights agree to a few percent
    for name, args in [("Linear", (300, 200)), ("Conv2d", (16, 32, 3)),
                       ("ConvTranspose2d", (32, 16, 3)), ("Bilinear", (20, 30, 40))]:
        theirs, ours = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
        for k, p in theirs.named_parameters():
            if p.numel() < 1000:  # too few draws for the maximum to pin the bound down
                continue
            want = p.detach().abs().max().item()
            got = float(dict(ours.named_parameters())[k].abs().max())
            assert abs(got - want) < 0.05 * want, (name, k, got, want)


LOSSES = [
    ("CrossEntropyLoss", dict(weight=[0.5, 2.0, 1.0], ignore_index=1, label_smoothing=0.2),
     (5, 3), "class:3"),
    ("CrossEntropyLoss", dict(label_smoothing=0.1), (4, 3, 2), "class:3"),
    ("NLLLoss", dict(weight=[1.0, 2.0, 0.5]), (5, 3), "class:3"),
    ("BCEWithLogitsLoss", dict(pos_weight=[1.0, 3.0, 0.5]), (5, 3), "prob"),
    ("BCELoss", dict(weight=[1.0, 3.0, 0.5]), (5, 3), "prob"),
    ("MSELoss", {}, (4, 3), "real"),
    ("L1Loss", dict(reduction="sum"), (4, 3), "real"),
    ("SmoothL1Loss", dict(beta=0.5), (4, 3), "real"),
    ("HuberLoss", dict(delta=0.7, reduction="none"), (4, 3), "real"),
    ("KLDivLoss", dict(reduction="batchmean", log_target=True), (4, 3), "real"),
    ("PoissonNLLLoss", dict(full=True), (4, 3), "count"),
    ("HingeEmbeddingLoss", dict(margin=0.5), (6,), "sign"),
]


def _target(kind, shape):
    if kind.startswith("class"):
        c = int(kind.split(":")[1])
        a = R.integers(0, c, (shape[0],) + shape[2:])
        return fnx.tensor(a), torch.tensor(a)
    a = {"prob": lambda: R.uniform(0, 1, shape), "real": lambda: R.standard_normal(shape),
         "count": lambda: R.poisson(2.0, shape).astype(float),
         "sign": lambda: R.choice([-1.0, 1.0], shape)}[kind]()
    return fnx.tensor(a), torch.tensor(a)


@pytest.mark.parametrize("name,kwargs,shape,target", LOSSES,
                         ids=[f"{n}-{i}" for i, (n, *_) in enumerate(LOSSES)])
def test_loss_matches_torch(name, kwargs, shape, target):
    tensors = {k: v for k, v in kwargs.items() if isinstance(v, list)}
    theirs = getattr(torch.nn, name)(**{**kwargs, **{k: torch.tensor(v, dtype=torch.float64)
                                                     for k, v in tensors.items()}})
    ours = getattr(nn, name)(**{**kwargs, **{k: fnx.tensor(v, dtype=fnx.float64)
                                             for k, v in tensors.items()}})
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert repr(ours) == repr(theirs)
    x = R.uniform(0.05, 0.95, shape) if name == "BCELoss" else R.standard_normal(shape)
    y_ours, y_theirs = _target(target, shape)
    x_ours, x_theirs = fnx.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_theirs = theirs(x_theirs, y_theirs)
    out_ours = ours(x_ours, y_ours)
    close(out_ours, out_theirs.detach().numpy())
    out_theirs.sum().backward()
    out_ours.sum().backward()
    close(x_ours.grad, x_theirs.grad.numpy())


def test_clip_grad_norm_matches_torch():
    grads = [R.standard_normal(s) for s in [(3, 4), (5,), (2, 2)]]
    for norm_type in (2.0, 1.0, float("inf"), 3.0):
        ours = [nn.Parameter(fnx.zeros(*g.shape, dtype=fnx.float64)) for g in grads]
        theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
        for p, q, g in zip(ours, theirs, grads, strict=True):
            p.grad, q.grad = fnx.tensor(g), torch.tensor(g)
        close(nn.utils.clip_grad_norm_(ours, 0.5, norm_type),
              torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type).numpy())
        for p, q in zip(ours, theirs, strict=True):
            close(p.grad, q.grad.numpy())
    vec = torch.nn.utils.parameters_to_vector(theirs)
    close(nn.utils.parameters_to_vector(ours), vec.detach().numpy())


def _real(*shape):
    return R.standard_normal(shape)


def _prob(*shape):
    return R.uniform(0.05, 0.95, shape)


def _sign(*shape):
    return R.choice([-1.0, 1.0], shape)


def _labels(high, *shape):
    return R.integers(0, high, shape)


# every loss of the issue under each reduction: (name, kwargs, inputs, differentiated inputs)
REDUCED_LOSSES = [
    ("CrossEntropyLoss", dict(weight=[0.3, 1.0, 2.0], ignore_index=2, label_smoothing=0.1),
     lambda: [_real(4, 3, 2), _labels(3, 4, 2)], [0]),
    ("CrossEntropyLoss", dict(label_smoothing=0.2), lambda: [_real(4, 3), _prob(4, 3)], [0, 1]),
    ("NLLLoss", dict(weight=[0.3, 1.0, 2.0], ignore_index=0), lambda: [_real(5, 3),
                                                                        _labels(3, 5)], [0]),
    ("BCELoss", {}, lambda: [_prob(4, 3), _prob(4, 3)], [0]),
    ("BCEWithLogitsLoss", dict(pos_weight=[0.5, 2.0, 1.0]), lambda: [_real(4, 3), _prob(4, 3)],
     [0, 1]),
    ("MSELoss", {}, lambda: [_real(4, 3), _real(4, 3)], [0, 1]),
    ("L1Loss", {}, lambda: [_real(4, 3), _real(4, 3)], [0, 1]),
    ("SmoothL1Loss", dict(beta=0.5), lambda: [_real(4, 3), _real(4, 3)], [0, 1]),
    ("HuberLoss", dict(delta=0.6), lambda: [_real(4, 3), _real(4, 3)], [0, 1]),
    ("KLDivLoss", {}, lambda: [_real(4, 3), _prob(4, 3)], [0, 1]),
    ("KLDivLoss", dict(log_target=True), lambda: [_real(4, 3), _real(4, 3)], [0, 1]),
    ("CosineEmbeddingLoss", dict(margin=0.2), lambda: [_real(5, 3), _real(5, 3), _sign(5)],
     [0, 1]),
    ("MarginRankingLoss", dict(margin=0.1), lambda: [_real(6), _real(6), _sign(6)], [0, 1]),
    ("TripletMarginLoss", dict(margin=0.5, p=1.5), lambda: [_real(5, 3), _real(5, 3),
                                                            _real(5, 3)], [0, 1, 2]),
]


@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("name,kwargs,make,diff", REDUCED_LOSSES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(REDUCED_LOSSES)])
def test_every_loss_and_reduction_matches_torch(name, kwargs, make, diff, reduction):
    arrays = {k: v for k, v in kwargs.items() if isinstance(v, list)}
    theirs = getattr(torch.nn, name)(reduction=reduction, **{
        **kwargs, **{k: torch.tensor(v, dtype=torch.float64) for k, v in arrays.items()}})
    ours = getattr(nn, name)(reduction=reduction, **{
        **kwargs, **{k: fnx.tensor(v, dtype=fnx.float64) for k, v in arrays.items()}})
    assert repr(ours) == repr(theirs)
    inputs = make()
    x_theirs = [torch.tensor(a, requires_grad=i in diff) for i, a in enumerate(inputs)]
    x_ours = [fnx.tensor(a, requires_grad=i in diff) for i, a in enumerate(inputs)]
    out_theirs, out_ours = theirs(*x_theirs), ours(*x_ours)
    close(out_ours, out_theirs.detach().numpy())
    ct = R.standard_normal(tuple(out_theirs.shape))
    (out_theirs * torch.tensor(ct)).sum().backward()
    (out_ours * fnx.tensor(ct)).sum().backward()
    for i in diff:
        close(x_ours[i].grad, x_theirs[i].grad.numpy())


def _same_distribution(ours, theirs, what):
    """Equal constants exactly (ones, zeros, PReLU's 0.25); otherwise a two-sample
    Kolmogorov-Smirnov test (fixed seeds, so deterministic) that a wrong bound or scale fails."""
    from scipy import stats

    ours, theirs = np.ravel(np.asarray(ours, np.float64)), np.ravel(theirs.astype(np.float64))
    if np.all(theirs == theirs[0]):
        assert np.all(ours == theirs[0]), what
        return
    assert stats.ks_2samp(ours, theirs).pvalue > 1e-3, what


INITS = [
    ("uniform_", (100, 200), dict(a=-2.0, b=3.0)),
    ("normal_", (100, 200), dict(mean=1.0, std=0.5)),
    ("trunc_normal_", (100, 200), dict(mean=0.5, std=1.0, a=-1.0, b=1.5)),
    ("constant_", (3, 4), dict(val=0.3)),
    ("zeros_", (3, 4), {}),
    ("ones_", (3, 4), {}),
    ("xavier_uniform_", (100, 200), dict(gain=2.0)),
    ("xavier_normal_", (20, 40, 3, 3), {}),
    ("kaiming_uniform_", (100, 200), dict(a=0.1, mode="fan_out")),
    ("kaiming_normal_", (40, 20, 5), dict(nonlinearity="relu")),
    ("kaiming_normal_", (100, 200), dict(a=0.2, mode="fan_out", nonlinearity="leaky_relu")),
    ("orthogonal_", (150, 100), dict(gain=1.5)),
]


@pytest.mark.parametrize("name,shape,kwargs", INITS,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(INITS)])
def test_init_distributions_match_torch(name, shape, kwargs):
    torch.manual_seed(0)
    fnx.manual_seed(0)
    theirs = getattr(torch.nn.init, name)(torch.empty(shape, dtype=torch.float64), **kwargs)
    ours = getattr(nn.init, name)(fnx.empty(*shape, dtype=fnx.float64), **kwargs)
    _same_distribution(ours, theirs.numpy(), name)
    if name == "orthogonal_":
        w = np.asarray(ours).reshape(shape[0], -1)
        close(w.T @ w, kwargs["gain"] ** 2 * np.eye(w.shape[1]), rtol=0, atol=1e-10)


def test_deterministic_inits_match_torch():
    for name, shape, kwargs in [("eye_", (5, 7), {}), ("dirac_", (6, 2, 3, 3), dict(groups=3)),
                                ("dirac_", (4, 4, 5), {})]:
        theirs = getattr(torch.nn.init, name)(torch.empty(shape, dtype=torch.float64), **kwargs)
        ours = getattr(nn.init, name)(fnx.empty(*shape, dtype=fnx.float64), **kwargs)
        close(ours, theirs.numpy(), 0, 0)


# every layer with parameters, built several times (enough draws for small biases; fewer
# for the big ones, whose construction draws many arrays)
DEFAULT_INITS = [
    ("Linear", (30, 200), {}, 10), ("Bilinear", (6, 5, 100), {}, 20),
    ("Conv1d", (6, 100, 3), {}, 20), ("Conv2d", (4, 100, (3, 2)), dict(groups=2), 20),
    ("ConvTranspose1d", (6, 100, 3), {}, 20),
    ("ConvTranspose2d", (4, 100, 3), dict(groups=2), 20),
    ("BatchNorm1d", (8,), {}, 1), ("BatchNorm2d", (8,), {}, 1), ("LayerNorm", (8,), {}, 1),
    ("GroupNorm", (2, 8), {}, 1), ("InstanceNorm1d", (8,), dict(affine=True), 1),
    ("InstanceNorm2d", (8,), dict(affine=True, track_running_stats=True), 1),
    ("Embedding", (200, 8), dict(padding_idx=3), 2), ("EmbeddingBag", (200, 8), {}, 2),
    ("PReLU", (8,), {}, 1),
    ("RNN", (5, 16), dict(num_layers=2), 5), ("LSTM", (5, 16), dict(bidirectional=True), 3),
    ("GRU", (5, 16), {}, 5), ("RNNCell", (5, 16), {}, 5), ("LSTMCell", (5, 16), {}, 5),
    ("GRUCell", (5, 16), {}, 5),
    ("MultiheadAttention", (32, 2), dict(add_bias_kv=True, kdim=6, vdim=4), 5),
    ("TransformerEncoderLayer", (16, 2, 32), {}, 3),
    ("TransformerDecoderLayer", (16, 2, 32), {}, 3),
    ("Transformer", (), dict(d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                             dim_feedforward=32), 2),
]


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("name,args,kwargs,copies", DEFAULT_INITS,
                         ids=[c[0] for c in DEFAULT_INITS])
def test_default_initialisation_of_every_layer_matches_torch(name, args, kwargs, copies):
    torch.manual_seed(0)
    fnx.manual_seed(0)
    theirs = [getattr(torch.nn, name)(*args, **kwargs) for _ in range(copies)]
    ours = [getattr(nn, name)(*args, **kwargs) for _ in range(copies)]
    assert list(ours[0].state_dict()) == list(theirs[0].state_dict())
    for key, value in theirs[0].state_dict().items():
        if not value.is_floating_point():
            continue
        want = np.concatenate([m.state_dict()[key].numpy().ravel() for m in theirs])
        got = np.concatenate([np.asarray(m.state_dict()[key]).ravel() for m in ours])
        assert np.asarray(ours[0].state_dict()[key]).dtype == np.float32, key
        _same_distribution(got, want, f"{name}.{key}")


@pytest.mark.parametrize("name,p,shape", [("Dropout", 0.3, (200, 50)),
                                          ("Dropout2d", 0.4, (60, 40, 2, 3)),
                                          ("AlphaDropout", 0.2, (200, 50))])
def test_dropout_family_matches_torch_statistically(name, p, shape):
    """The same rule (which values survive, how they are scaled, what the dropped ones
    become), the same drop rate within sampling error, the tape gradient through the drawn
    mask, and the identity in eval mode."""
    x = R.standard_normal(shape) + 0.1
    ct = R.standard_normal(shape)
    stats = {}
    for lib, mod, T in [("torch", torch.nn, torch.tensor), ("fnx", nn, fnx.tensor)]:
        layer = getattr(mod, name)(p)
        xt = T(x, requires_grad=True)
        out = layer(xt)
        (out * T(ct)).sum().backward()
        out, grad = np.asarray(out.detach()), np.asarray(xt.grad)
        if name == "AlphaDropout":  # kept: a * x + b; dropped: one constant c
            values, counts = np.unique(out, return_counts=True)
            c = values[counts.argmax()]
            kept = out != c
            a, b = np.polyfit(x[kept], out[kept], 1)
            rule = (a, b, c)
            close(grad, np.where(kept, a * ct, 0.0))
        else:
            kept = out != 0
            close(out[kept], x[kept] / (1 - p))
            close(grad, np.where(kept, ct / (1 - p), 0.0))
            rule = ()
            if name == "Dropout2d":  # whole channels
                per_channel = kept.reshape(shape[0], shape[1], -1)
                assert np.all(per_channel.all(-1) | ~per_channel.any(-1))
        units = kept.reshape(shape[0], shape[1], -1)[..., 0] if name == "Dropout2d" else kept
        stats[lib] = (1 - units.mean(), units.size, rule)
        layer.eval()
        close(np.asarray(layer(T(x)).detach()), x, 0, 0)
    (rate_t, n, rule_t), (rate_f, _, rule_f) = stats["torch"], stats["fnx"]
    assert abs(rate_f - p) < 4 * np.sqrt(p * (1 - p) / n), (rate_f, rate_t)
    close(rule_f, rule_t, rtol=1e-5, atol=1e-6)


def _hooked_pair():
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(),
                                 torch.nn.Linear(4, 2)).double()
    ours = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    ours.load_state_dict({k: fnx.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    return theirs, ours


def _np_or_none(values):
    return [None if v is None else v.detach().numpy().copy() if isinstance(v, torch.Tensor)
            else np.array(v) for v in values]


@pytest.mark.parametrize("scenario", ["observe", "replace", "no_input_grad"])
def test_full_backward_hooks_match_torch(scenario):
    results = []
    for lib, model, T in zip(("torch", "fnx"), _hooked_pair(), (torch.tensor, fnx.tensor)):
        log = []

        def hook(name, replace=None):
            def fn(mod, grad_input, grad_output):
                log.append((name, _np_or_none(grad_input), _np_or_none(grad_output)))
                return None if replace is None else replace(grad_input)
            return fn

        if scenario == "replace":
            model[2].register_full_backward_hook(hook(2, lambda gin: (gin[0] * 2,)))
            model[1].register_full_backward_pre_hook(lambda mod, gout: (gout[0] * 3,))
            model[0].register_full_backward_hook(hook(0))
        else:
            for i, sub in enumerate(model):
                sub.register_full_backward_hook(hook(i))
            model.register_full_backward_hook(hook("model"))
        x = T(np.linspace(-1, 1, 15).reshape(5, 3), requires_grad=scenario != "no_input_grad")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            (model(x) * T(np.arange(10.0).reshape(5, 2))).sum().backward()
        grads = _np_or_none([p.grad for p in model.parameters()] + [x.grad])
        results.append((log, grads, sum("Full backward hook is firing" in str(w.message)
                                        for w in caught)))
    (log_t, grads_t, warned_t), (log_f, grads_f, warned_f) = results
    assert [e[0] for e in log_f] == [e[0] for e in log_t] and warned_f == warned_t
    for (_, gin_t, gout_t), (_, gin_f, gout_f) in zip(log_t, log_f, strict=True):
        for want, got in zip(gin_t + gout_t, gin_f + gout_f, strict=True):
            assert (want is None) == (got is None)
            if want is not None:
                close(got, want)
    for want, got in zip(grads_t, grads_f, strict=True):
        assert (want is None) == (got is None)
        if want is not None:
            close(got, want)


@pytest.mark.filterwarnings("ignore:invalid value encountered")
def test_grad_utils_match_torch():
    grads = [R.standard_normal(s) * 3 for s in [(3, 4), (5,), (2, 2)]]
    ours = [nn.Parameter(fnx.zeros(*g.shape, dtype=fnx.float64)) for g in grads]
    theirs = [torch.nn.Parameter(torch.zeros(g.shape, dtype=torch.float64)) for g in grads]
    for p, q, g in zip(ours, theirs, grads, strict=True):
        p.grad, q.grad = fnx.tensor(g), torch.tensor(g)
    nn.utils.clip_grad_value_(ours, 1.5)
    torch.nn.utils.clip_grad_value_(theirs, 1.5)
    for p, q in zip(ours, theirs, strict=True):
        close(p.grad, q.grad.numpy())
    vec = R.standard_normal(sum(g.size for g in grads))
    nn.utils.vector_to_parameters(fnx.tensor(vec), ours)
    torch.nn.utils.vector_to_parameters(torch.tensor(vec), theirs)
    for p, q in zip(ours, theirs, strict=True):
        close(p, q.detach().numpy(), 0, 0)
    ours[0].grad = fnx.tensor(np.full((3, 4), np.inf))  # (inf * 0 warns in NumPy: allowed)
    theirs[0].grad = torch.tensor(np.full((3, 4), np.inf))
    with pytest.raises(RuntimeError, match="non-finite"):
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    total = nn.utils.clip_grad_norm_(ours, 1.0)
    assert np.isinf(float(total)) and torch.nn.utils.clip_grad_norm_(theirs, 1.0).isinf()


def test_consume_prefix_matches_torch_on_a_data_parallel_checkpoint():
    from fnx.nn.layers.utils import consume_prefix_in_state_dict_if_present
    from torch.nn.modules.utils import consume_prefix_in_state_dict_if_present as torch_consume

    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4)).double()
    theirs = torch.nn.DataParallel(model).state_dict()  # keys and _metadata under "module."
    ours = type(theirs)((k, fnx.tensor(v.numpy())) for k, v in theirs.items())
    ours._metadata = type(theirs._metadata)(theirs._metadata)
    torch_consume(theirs, "module.")
    consume_prefix_in_state_dict_if_present(ours, "module.")
    assert list(ours) == list(theirs) == list(model.state_dict())
    assert ours._metadata == theirs._metadata
    bare = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4)).double()
    assert bare.load_state_dict(ours) == ([], [])
    for key, value in model.state_dict().items():
        close(bare.state_dict()[key], value.numpy(), 0, 0)
