"""fnx.nn layer modules: outputs against NumPy references written from PyTorch's documented
formulas, eager-tape gradients equal fnx.grad's over the module, jit (module as an argument)
equals eager, vmap over a stacked module equals a loop, PyTorch's state_dict keys, reprs and
default initialisation statistics, train/eval behaviour (BatchNorm running statistics in place
eagerly and written back after jit, dropout), and the designed errors."""

import copy
import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from scipy import special as sp

import fnx
import fnx.numpy as fnp
import fnx.optim
from fnx import nn
from fnx.core.errors import DTypeError, ShapeError

F64 = fnx.float64
R = np.random.default_rng(0)


def rand(*shape):
    return R.standard_normal(shape)


def t(a, **kw):
    return fnx.tensor(a, **kw)


def close(got, want, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(np.asarray(got), want, rtol=rtol, atol=atol)


def params_np(module):
    return {k: np.asarray(v) for k, v in module.named_parameters()}


# --- NumPy references ------------------------------------------------------------------------


def np_conv2d(x, w, b=None, stride=(1, 1), dilation=(1, 1), groups=1):
    """Cross-correlation of an already padded ``x (N, C, H, W)`` through sliding windows."""
    kh, kw = w.shape[2:]
    span = (dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1)
    win = sliding_window_view(x, span, axis=(2, 3))
    win = win[:, :, ::stride[0], ::stride[1], ::dilation[0], ::dilation[1]]
    n, c, oh, ow = win.shape[:4]
    win = win.reshape(n, groups, c // groups, oh, ow, kh, kw)
    wg = w.reshape(groups, w.shape[0] // groups, c // groups, kh, kw)
    out = np.einsum("ngchwij,gocij->ngohw", win, wg).reshape(n, -1, oh, ow)
    return out if b is None else out + b[:, None, None]


_NP_PAD = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def np_pad2d(x, widths, mode):
    return np.pad(x, [(0, 0), (0, 0), *widths], mode=_NP_PAD[mode])


def np_windows(x, k, s, p, d, fill):
    """``(N, C, oh, ow, kh, kw)`` pooling windows of ``x`` padded with ``fill``."""
    xp = np.pad(x, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])], constant_values=fill)
    span = (d[0] * (k[0] - 1) + 1, d[1] * (k[1] - 1) + 1)
    win = sliding_window_view(xp, span, axis=(2, 3))
    return win[:, :, ::s[0], ::s[1], ::d[0], ::d[1]]


def np_batch_norm(x, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return y * w.reshape(shape) + b.reshape(shape)


# --- generic checks: tape == fnx.grad, jit == eager, over groups of layers --------------------


class Pair(nn.Module):
    """Two-input layers (Bilinear) next to a Linear."""

    def __init__(self):
        super().__init__()
        self.bil = nn.Bilinear(3, 4, 5, dtype=F64)
        self.lin = nn.Linear(5, 2, dtype=F64)
        self.lin_nobias = nn.Linear(4, 2, bias=False, dtype=F64)

    def forward(self, a, b):
        return self.lin(self.bil(a, b)) + self.lin_nobias(b)


class Lookups(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(10, 4, padding_idx=1, dtype=F64)
        self.bag = nn.EmbeddingBag(10, 4, mode="max", dtype=F64)
        self.bag_sum = nn.EmbeddingBag(10, 4, mode="sum", dtype=F64)

    def forward(self, idx, w):
        flat = idx.reshape(-1)
        offsets = t([0, 2, 2])
        return (self.emb(idx).sum(1) + self.bag(idx)
                + self.bag_sum(flat, offsets, per_sample_weights=w))


class Transposed(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(4, 6, 3, stride=2, padding=1, groups=2, dtype=F64)
        self.t1 = nn.ConvTranspose1d(6, 4, 3, stride=2, padding=1, dtype=F64)

    def forward(self, x):
        return self.t1(self.c1(x), output_size=[9])


def _activations():
    # a representative chain (a parameter, options, a dim, a halving): compiling the tape's
    # backward of all of them at once takes half a minute; every activation is checked
    # against NumPy and under vmap below
    return nn.Sequential(nn.PReLU(4, dtype=F64), nn.LeakyReLU(0.2), nn.GELU("tanh"),
                         nn.Hardtanh(-0.5, 0.7), nn.Softmax(dim=0), nn.GLU(dim=1))


def _all_activations():
    # every activation module and the shape modules, in two chains (smaller backward
    # programs compile faster than one long one)
    return [nn.Sequential(nn.ReLU(), nn.ReLU6(), nn.Sigmoid(), nn.Tanh(), nn.LogSoftmax(dim=1),
                          nn.ELU(0.5), nn.SELU(), nn.CELU(1.5), nn.SiLU(), nn.Mish()),
            nn.Sequential(nn.Unflatten(1, (2, 2)), nn.Flatten(), nn.Identity(), nn.Softplus(2.0),
                          nn.Softsign(), nn.Hardswish(), nn.Hardsigmoid(),
                          nn.Threshold(0.6, -1.0), nn.GELU())]


class Recurrent(nn.Module):
    """Every recurrent layer and cell, options varied, reduced to one array."""

    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 4, nonlinearity="relu", dtype=F64)
        self.lstm = nn.LSTM(4, 3, batch_first=True, bidirectional=True, proj_size=2, dtype=F64)
        self.gru = nn.GRU(4, 2, num_layers=2, dtype=F64)
        self.rnn_cell = nn.RNNCell(3, 4, dtype=F64)
        self.lstm_cell = nn.LSTMCell(3, 4, dtype=F64)
        self.gru_cell = nn.GRUCell(3, 4, bias=False, dtype=F64)

    def forward(self, x):  # (L, N, 3)
        y, _ = self.rnn(x)
        z, (h, c) = self.lstm(y.transpose(1, 0, 2))
        g, hg = self.gru(z.transpose(1, 0, 2))
        h1 = self.rnn_cell(x[0])
        h2, c2 = self.lstm_cell(x[1], (h1, h1 * 0.5))
        h3 = self.gru_cell(x[2], c2)
        return fnp.concatenate([g.reshape(-1), hg.reshape(-1), h.reshape(-1), c.reshape(-1),
                                h2.reshape(-1), h3.reshape(-1)])


class Attention(nn.Module):
    """MultiheadAttention, the encoder and decoder layers and a Transformer, masks included."""

    def __init__(self):
        super().__init__()
        kw = dict(dropout=0.0, batch_first=True, dtype=F64)
        self.mha = nn.MultiheadAttention(4, 2, add_bias_kv=True, kdim=3, **kw)
        self.enc = nn.TransformerEncoderLayer(4, 2, 8, norm_first=True, **kw)
        self.dec = nn.TransformerDecoderLayer(4, 2, 8, activation="gelu", **kw)
        self.tr = nn.Transformer(4, 2, 1, 1, 8, **kw)

    def forward(self, x):  # (N, L, 4)
        padding = fnp.asarray([[False, False, True], [False, False, False]])
        causal = nn.Transformer.generate_square_subsequent_mask(3, dtype=F64)
        a, w = self.mha(x, x[..., :3], x, key_padding_mask=padding)
        e = self.enc(a, src_key_padding_mask=padding)
        d = self.dec(x, e, tgt_mask=causal, tgt_is_causal=True)
        return self.tr(e, d, tgt_mask=causal) + w.sum(-1, keepdims=True)


def _bn_eval():
    bn = nn.BatchNorm1d(3, dtype=F64)
    bn.running_mean.copy_(t(rand(3)))
    bn.running_var.copy_(t(rand(3) ** 2 + 0.5))
    return nn.Sequential(bn.eval(), nn.InstanceNorm1d(3, affine=True, dtype=F64))


# name -> (module factory, input shapes; an int shape entry means integer indices in [0, 10))
GROUPS = {
    "linear": (Pair, [(6, 3), (6, 4)]),
    "conv1d": (Transposed, [(2, 4, 9)]),
    "conv2d": (lambda: nn.Sequential(
        nn.Conv2d(3, 4, (3, 2), stride=(2, 1), padding=(1, 2), padding_mode="reflect",
                  dtype=F64),
        nn.Conv2d(4, 4, 4, padding="same", dilation=2, groups=2, padding_mode="circular",
                  dtype=F64),
        nn.Conv2d(4, 6, 2, padding=1, padding_mode="replicate", bias=False, dtype=F64),
        nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1, groups=2,
                           dtype=F64)), [(2, 3, 7, 6)]),
    "pool2d": (lambda: nn.Sequential(
        nn.MaxPool2d(3, 2, 1, ceil_mode=True), nn.AvgPool2d(2, 1, 1, count_include_pad=False),
        nn.AdaptiveMaxPool2d((3, 2)), nn.AdaptiveAvgPool2d(2)), [(2, 3, 9, 8)]),
    "pool1d": (lambda: nn.Sequential(
        nn.MaxPool1d(2, dilation=2), nn.AvgPool1d(3, 1, 1), nn.AdaptiveMaxPool1d(4),
        nn.AdaptiveAvgPool1d(3)), [(2, 3, 12)]),
    "norm": (lambda: nn.Sequential(
        nn.BatchNorm2d(4, dtype=F64), nn.GroupNorm(2, 4, dtype=F64),
        nn.InstanceNorm2d(4, affine=True, track_running_stats=True, dtype=F64),
        nn.LayerNorm((3, 5), dtype=F64), nn.RMSNorm(5, dtype=F64)), [(3, 4, 3, 5)]),
    "norm_eval": (_bn_eval, [(4, 3, 5)]),
    "lookup": (Lookups, [(3, 2), (6,)]),
    "activation": (_activations, [(3, 4)]),
    "resample": (lambda: nn.Sequential(
        nn.Upsample(scale_factor=2, mode="bilinear"), nn.PixelUnshuffle(2),
        nn.PixelShuffle(2), nn.UpsamplingNearest2d(size=(5, 7)), nn.Dropout(0.5).eval(),
        nn.UpsamplingBilinear2d(scale_factor=1.5)), [(1, 2, 3, 3)]),
    "activation_all_1": (lambda: _all_activations()[0], [(3, 4)]),
    "activation_all_2": (lambda: _all_activations()[1], [(3, 4)]),
    # training-mode dropout: the tests seed the global generator before each forward
    "dropout": (lambda: nn.Sequential(
        nn.Conv2d(2, 4, 1, dtype=F64), nn.Dropout(0.5), nn.Dropout2d(0.3),
        nn.AlphaDropout(0.2)), [(3, 2, 2, 2)]),
    "recurrent": (Recurrent, [(5, 2, 3)]),
    "attention": (Attention, [(2, 3, 4)]),
}

# training-mode randomness: a loop draws a new mask per member, vmap one for all
RANDOM_GROUPS = {"dropout"}


def _inputs(shapes, requires_grad=False):
    out = []
    for shape in shapes:
        if len(shape) == 2 and shape == (3, 2):  # the lookup group's indices
            out.append(t(R.integers(0, 10, shape)))
        else:
            out.append(t(rand(*shape), requires_grad=requires_grad))
    return out


def _randomize(module):
    """Random parameters (norm layers start at ones/zeros, which hides argument mix-ups)."""
    for p in module.parameters():
        p.copy_(t(rand(*p.shape)))
    return module


@pytest.mark.parametrize("name", list(GROUPS))
def test_tape_gradients_equal_fnx_grad(name):
    factory, shapes = GROUPS[name]
    module = _randomize(factory())
    xs = _inputs(shapes, requires_grad=True)
    out = module(*xs)
    ct = t(rand(*out.shape))

    def loss(m, *args):
        return (m(*args) * ct).sum()

    float_args = tuple(i + 1 for i, x in enumerate(xs) if x.dtype.kind == "f")
    argnums = (0,) + float_args
    fnx.manual_seed(0)  # the same dropout masks in both passes
    if all(b.dtype.kind == "f" for b in module.buffers()):
        grads = fnx.grad(loss, argnums=argnums)(module, *xs)
        want = dict(grads[0].named_parameters())
    else:
        # fnx.grad refuses integer leaves (BatchNorm's num_batches_tracked): differentiate
        # with respect to the parameters through functional_call, buffers passed along
        buffers = dict(module.named_buffers())

        def param_loss(params, *args):
            return (nn.functional_call(module, (params, buffers), args) * ct).sum()

        grads = fnx.grad(param_loss, argnums=argnums)(dict(module.named_parameters()), *xs)
        want = grads[0]
    fnx.manual_seed(0)
    loss(module, *xs).backward()
    got = {k: p.grad for k, p in module.named_parameters()}
    assert set(got) == set(want)
    for k in got:
        close(got[k], np.asarray(want[k]), rtol=1e-9, atol=1e-11)
    for i, g in zip(float_args, grads[1:], strict=True):
        close(xs[i - 1].grad, np.asarray(g), rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", list(GROUPS))
def test_jit_with_module_argument_equals_eager(name):
    factory, shapes = GROUPS[name]
    module = _randomize(factory())
    xs = _inputs(shapes)
    twin = copy.deepcopy(module)
    fnx.manual_seed(0)
    out, new_module = fnx.jit(lambda m, *a: (m(*a), m))(module, *xs)
    fnx.manual_seed(0)
    close(out, np.asarray(twin(*xs)), rtol=1e-10, atol=1e-12)
    # the traced call's buffer updates are written back into the caller's module (in place),
    # exactly as the eager call on the twin left them
    for k, v in module.named_buffers():
        close(v, np.asarray(dict(twin.named_buffers())[k]), rtol=1e-12, atol=1e-14)
        close(dict(new_module.named_buffers())[k], np.asarray(v), rtol=1e-12, atol=1e-14)


def _check_vmapped(out, updated, twins, batches):
    for i, (m, xs) in enumerate(zip(twins, batches, strict=True)):
        close(out[i], np.asarray(m(*xs)), rtol=1e-10, atol=1e-12)
        for k, v in updated.named_buffers():  # statistics updated per member, as the loop
            close(v[i], np.asarray(m.get_buffer(k)), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", [n for n in GROUPS if n not in RANDOM_GROUPS])
def test_vmap_per_example_equals_a_loop(name):
    """vmap over a stack of inputs with the module shared equals one call per input."""
    factory, shapes = GROUPS[name]
    module = _randomize(factory())
    twins = [copy.deepcopy(module) for _ in range(3)]
    batches = [_inputs(shapes) for _ in range(3)]
    stacked = [fnp.stack(a) for a in zip(*batches, strict=True)]
    in_axes = (None,) + (0,) * len(stacked)
    out, updated = fnx.vmap(lambda m, *a: (m(*a), m), in_axes=in_axes)(module, *stacked)
    _check_vmapped(out, updated, twins, batches)


@pytest.mark.parametrize("name", [n for n in GROUPS if n not in RANDOM_GROUPS
                                  and list(GROUPS[n][0]().parameters())])
def test_vmap_over_stacked_modules_equals_a_loop(name):
    """An ensemble: vmap over a stack of differently initialised modules (inputs shared)
    equals calling each; buffer updates (BatchNorm statistics) come out stacked."""
    factory, shapes = GROUPS[name]
    models = [_randomize(factory()) for _ in range(3)]
    xs = _inputs(shapes)
    stacked = fnx.tree.map(lambda *a: fnp.stack(a), *models)
    in_axes = (0,) + (None,) * len(xs)
    out, updated = fnx.vmap(lambda m, *a: (m(*a), m), in_axes=in_axes)(stacked, *xs)
    _check_vmapped(out, updated, models, [xs] * len(models))


# --- Linear, Bilinear --------------------------------------------------------------------------


def test_linear_and_bilinear_against_numpy():
    lin = _randomize(nn.Linear(5, 3, dtype=F64))
    x = rand(2, 4, 5)
    w, b = np.asarray(lin.weight), np.asarray(lin.bias)
    close(lin(t(x)), x @ w.T + b)
    bil = _randomize(nn.Bilinear(3, 4, 2, dtype=F64))
    x1, x2 = rand(6, 3), rand(6, 4)
    w, b = np.asarray(bil.weight), np.asarray(bil.bias)
    close(bil(t(x1), t(x2)), np.einsum("ni,kij,nj->nk", x1, w, x2) + b)


def test_linear_bad_input_names_the_layer():
    with pytest.raises(ShapeError, match=r"Linear\(784, 128\) expected input with last "
                                         r"dimension 784, got shape \(2, 100\)"):
        nn.Linear(784, 128)(fnx.ones(2, 100))
    with pytest.raises(ShapeError, match=r"Bilinear\(3, 4, 2\) expected inputs with last "
                                         r"dimensions 3 and 4"):
        nn.Bilinear(3, 4, 2)(fnx.ones(2, 3), fnx.ones(2, 3))


# --- convolutions ------------------------------------------------------------------------------


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv2d_padding_modes_against_numpy(padding_mode):
    conv = _randomize(nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2),
                                groups=2, padding_mode=padding_mode, dtype=F64))
    x = rand(2, 4, 7, 6)
    want = np_conv2d(np_pad2d(x, [(1, 1), (2, 2)], padding_mode), np.asarray(conv.weight),
                     np.asarray(conv.bias), (2, 1), (1, 2), 2)
    close(conv(t(x)), want)
    close(conv(t(x[0])), want[0])  # unbatched (C, H, W)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_conv_same_and_valid_padding(padding_mode):
    # an even kernel: PyTorch pads the odd element of 'same' on the right/bottom
    conv = _randomize(nn.Conv2d(2, 3, (4, 3), padding="same", dilation=(1, 2),
                                padding_mode=padding_mode, dtype=F64))
    x = rand(1, 2, 8, 9)
    want = np_conv2d(np_pad2d(x, [(1, 2), (2, 2)], padding_mode), np.asarray(conv.weight),
                     np.asarray(conv.bias), dilation=(1, 2))
    assert want.shape[2:] == x.shape[2:]
    close(conv(t(x)), want)
    valid = _randomize(nn.Conv2d(2, 3, 3, padding="valid", dtype=F64))
    close(valid(t(x)), np_conv2d(x, np.asarray(valid.weight), np.asarray(valid.bias)))


@pytest.mark.parametrize("padding_mode", ["zeros", "circular", "replicate"])
def test_conv1d_against_numpy(padding_mode):
    conv = _randomize(nn.Conv1d(3, 4, 3, stride=2, padding=2, padding_mode=padding_mode,
                                bias=False, dtype=F64))
    x = rand(2, 3, 9)
    xp = np_pad2d(x[:, :, None, :], [(0, 0), (2, 2)], padding_mode)
    want = np_conv2d(xp, np.asarray(conv.weight)[:, :, None, :], stride=(1, 2))[:, :, 0]
    close(conv(t(x)), want)


@pytest.mark.parametrize("stride,padding,output_padding,groups,dilation", [
    ((2, 2), (1, 0), (1, 0), 1, (1, 1)),
    ((3, 1), (0, 1), (2, 0), 2, (1, 2)),
])
def test_conv_transpose2d_is_the_adjoint_of_conv2d(stride, padding, output_padding, groups,
                                                   dilation):
    ct = _randomize(nn.ConvTranspose2d(4, 6, (3, 2), stride, padding, output_padding, groups,
                                       bias=False, dilation=dilation, dtype=F64))
    x = rand(2, 4, 4, 5)
    y = np.asarray(ct(t(x)))
    # <ct(x), z> = <x, conv(z)> with the same weight read as a conv's (out=4, in/groups=3)
    z = rand(*y.shape)
    conv_z = np_conv2d(np_pad2d(z, [(p, p) for p in padding], "zeros"), np.asarray(ct.weight),
                       stride=stride, dilation=dilation, groups=groups)
    assert conv_z.shape == x.shape
    close(np.vdot(y, z), np.vdot(x, conv_z), rtol=1e-10)
    with_bias = nn.ConvTranspose2d(4, 6, (3, 2), stride, padding, output_padding, groups,
                                   dilation=dilation, dtype=F64)
    with_bias.weight.copy_(ct.weight)
    close(with_bias(t(x)), y + np.asarray(with_bias.bias)[:, None, None])


def test_conv_transpose_output_size():
    up = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    x = fnx.ones(1, 3, 5, 5)
    assert up(x).shape == (1, 2, 9, 9)
    assert up(x, output_size=[10, 9]).shape == (1, 2, 10, 9)
    assert up(x, output_size=(1, 2, 10, 10)).shape == (1, 2, 10, 10)
    assert up(x[0], output_size=(2, 10, 10)).shape == (2, 10, 10)
    with pytest.raises(ValueError, match=r"requested an output size of \[11, 9\], but valid "
                                         r"sizes range from \[9, 9\] to \[10, 10\]"):
        up(x, output_size=[11, 9])
    with pytest.raises(ValueError, match="output_size must have 2 or 4 elements"):
        up(x, output_size=[9])
    up1 = nn.ConvTranspose1d(2, 2, 4, stride=3)
    assert up1(fnx.ones(1, 2, 4), output_size=[15]).shape == (1, 2, 15)


def test_conv_errors_name_the_layer():
    conv = nn.Conv2d(3, 8, 3)
    with pytest.raises(ShapeError, match=r"Conv2d\(3, 8, kernel_size=\(3, 3\)\) expected 3-D "
                                         r"\(unbatched\) or 4-D \(batched\) input"):
        conv(fnx.ones(5, 5))
    with pytest.raises(ShapeError, match=r"got 5-D input of shape \(1, 1, 3, 5, 5\)"):
        conv(fnx.ones(1, 1, 3, 5, 5))
    assert conv(fnx.ones(3, 5, 5)).shape == (8, 3, 3)  # unbatched (C, H, W), as torch
    with pytest.raises(ShapeError, match=r"expected input with 3 channels, got 4 channels"):
        conv(fnx.ones(1, 4, 5, 5))
    with pytest.raises(ShapeError, match=r"Conv1d\(2, 2, kernel_size=\(3,\)\) expected 2-D "):
        nn.Conv1d(2, 2, 3)(fnx.ones(1, 1, 2, 5))
    with pytest.raises(ValueError, match="in_channels \\(3\\) must be divisible by groups"):
        nn.Conv2d(3, 4, 3, groups=2)
    with pytest.raises(ValueError, match="out_channels \\(3\\) must be divisible by groups"):
        nn.Conv2d(4, 3, 3, groups=2)
    with pytest.raises(ValueError, match="groups must be a positive integer"):
        nn.Conv2d(4, 4, 3, groups=0)
    with pytest.raises(ValueError, match="padding must be 'same', 'valid', an int or a tuple"):
        nn.Conv2d(4, 4, 3, padding="full")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv1d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match='Only "zeros" padding mode is supported for '
                                         'ConvTranspose2d'):
        nn.ConvTranspose2d(4, 4, 3, padding_mode="reflect")
    with pytest.raises(ValueError, match="padding must be an int or a tuple"):
        nn.ConvTranspose1d(4, 4, 3, padding="same")


# --- pooling -----------------------------------------------------------------------------------


def test_max_pool2d_with_indices_against_numpy():
    x = rand(2, 3, 9, 8)
    pool = nn.MaxPool2d(3, stride=2, padding=1, dilation=(1, 2), return_indices=True)
    out, idx = pool(t(x))
    win = np_windows(x, (3, 3), (2, 2), (1, 1), (1, 2), -np.inf)
    close(out, win.max(axis=(-2, -1)))
    # the indices are flat h * W + w positions of the maxima in the unpadded input
    close(np.take_along_axis(x.reshape(2, 3, -1), np.asarray(idx).reshape(2, 3, -1), -1),
          np.asarray(out).reshape(2, 3, -1))


def test_max_pool_ceil_mode_and_1d():
    x = rand(1, 2, 7, 7)
    out = nn.MaxPool2d(2, ceil_mode=True)(t(x))
    assert out.shape == (1, 2, 4, 4)
    close(out[:, :, 3, 3], x[:, :, 6, 6])  # the last window holds one element
    x1 = rand(2, 3, 10)
    win = np_windows(x1[:, :, None, :], (1, 3), (1, 2), (0, 1), (1, 1), -np.inf)
    close(nn.MaxPool1d(3, 2, 1)(t(x1)), win.max(axis=(-2, -1))[:, :, 0])


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_against_numpy(count_include_pad):
    x = rand(2, 3, 7, 6)
    pool = nn.AvgPool2d((3, 2), stride=(2, 2), padding=1, count_include_pad=count_include_pad)
    sums = np_windows(x, (3, 2), (2, 2), (1, 1), (1, 1), 0.0).sum(axis=(-2, -1))
    counts = np_windows(np.ones_like(x), (3, 2), (2, 2), (1, 1), (1, 1), 0.0).sum(
        axis=(-2, -1))
    close(pool(t(x)), sums / (6 if count_include_pad else counts))
    close(nn.AvgPool2d(2, divisor_override=3)(t(x)),
          np_windows(x, (2, 2), (2, 2), (0, 0), (1, 1), 0).sum(axis=(-2, -1)) / 3)
    x1 = rand(2, 3, 8)
    win = np_windows(x1[:, :, None, :], (1, 3), (1, 3), (0, 1), (1, 1), 0.0)
    counts1 = np_windows(np.ones_like(x1[:, :, None, :]), (1, 3), (1, 3), (0, 1), (1, 1), 0.0)
    want = win.sum(axis=(-2, -1)) / (3 if count_include_pad else counts1.sum(axis=(-2, -1)))
    close(nn.AvgPool1d(3, padding=1, count_include_pad=count_include_pad)(t(x1)), want[:, :, 0])


def test_adaptive_pools_against_numpy():
    x = rand(2, 3, 7, 6)
    # PyTorch's windows [floor(i n / o), ceil((i + 1) n / o))
    rows = [(i * 7 // 3, -(-(i + 1) * 7 // 3)) for i in range(3)]
    cols = [(j * 6 // 4, -(-(j + 1) * 6 // 4)) for j in range(4)]
    avg = np.array([[x[:, :, a:b, c:d].mean(axis=(-2, -1)) for c, d in cols] for a, b in rows])
    mx = np.array([[x[:, :, a:b, c:d].max(axis=(-2, -1)) for c, d in cols] for a, b in rows])
    close(nn.AdaptiveAvgPool2d((3, 4))(t(x)), avg.transpose(2, 3, 0, 1))
    close(nn.AdaptiveMaxPool2d((3, 4))(t(x)), mx.transpose(2, 3, 0, 1))
    close(nn.AdaptiveAvgPool2d((None, 2))(t(x)), x.reshape(2, 3, 7, 2, 3).mean(-1))
    close(nn.AdaptiveAvgPool1d(1)(t(x[:, :, 0])), x[:, :, 0].mean(-1, keepdims=True))
    close(nn.AdaptiveMaxPool1d(2)(t(x[:, :, 0])), x[:, :, 0].reshape(2, 3, 2, 3).max(-1))


# --- normalization -----------------------------------------------------------------------------


def test_batch_norm_training_eval_and_running_stats():
    bn = nn.BatchNorm2d(3, dtype=F64)
    _randomize(bn)
    w, b = np.asarray(bn.weight), np.asarray(bn.bias)
    held_mean = bn.running_mean  # another holder of the buffer (an optimizer, a user)
    rm, rv = np.zeros(3), np.ones(3)
    for step in range(1, 3):
        x = rand(4, 3, 2, 3) * step + step
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        close(bn(t(x)), np_batch_norm(x, mean, var, w, b, 1e-5))
        rm = 0.9 * rm + 0.1 * mean
        rv = 0.9 * rv + 0.1 * x.var(axis=(0, 2, 3), ddof=1)
        close(bn.running_mean, rm)
        close(bn.running_var, rv)
        assert bn.num_batches_tracked.item() == step
        assert bn.num_batches_tracked.dtype == fnx.int64
    assert held_mean is bn.running_mean  # updated in place, not rebound
    close(held_mean, rm)
    x = rand(2, 3, 2, 2)
    close(bn.eval()(t(x)), np_batch_norm(x, rm, rv, w, b, 1e-5))
    close(bn.running_mean, rm)  # eval mode leaves the statistics alone
    assert bn.num_batches_tracked.item() == 2


def test_batch_norm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None, eps=1e-3, dtype=F64)
    batches = [rand(5, 2) + i for i in range(3)]
    for x in batches:
        bn(t(x))
    close(bn.running_mean, np.mean([x.mean(0) for x in batches], axis=0))
    close(bn.running_var, np.mean([x.var(0, ddof=1) for x in batches], axis=0))
    # the same under jit, where the count is traced
    bn2 = nn.BatchNorm1d(2, momentum=None, eps=1e-3, dtype=F64)
    step = fnx.jit(lambda m, x: (m(x), m)[1])
    for x in batches:
        new = step(bn2, t(x))
        bn2.load_state_dict(new.state_dict())
    close(bn2.running_mean, np.asarray(bn.running_mean))
    assert bn2.num_batches_tracked.item() == 3


def test_batch_norm_without_running_stats_or_affine():
    bn = nn.BatchNorm1d(3, affine=False, track_running_stats=False, dtype=F64)
    assert list(bn.state_dict()) == [] and bn.running_mean is None and bn.weight is None
    x = rand(6, 3, 4)
    want = np_batch_norm(x, x.mean(axis=(0, 2)), x.var(axis=(0, 2)), np.ones(3), np.zeros(3),
                         1e-5)
    close(bn(t(x)), want)
    close(bn.eval()(t(x)), want)  # no running statistics: eval normalizes by the batch too
    bn_eval = nn.BatchNorm1d(3, dtype=F64).eval()
    close(bn_eval(t(x)), x / np.sqrt(1 + 1e-5))


def test_batch_norm_ensemble_under_vmap_rebinds_batched_statistics():
    models = [nn.BatchNorm1d(2, dtype=F64) for _ in range(3)]
    stacked = fnx.tree.map(lambda *a: fnp.stack(a), *models)
    xs = rand(3, 5, 2)
    out, new = fnx.vmap(lambda m, x: (m(x), m))(stacked, t(xs))
    for i, m in enumerate(models):
        close(out[i], np.asarray(m(t(xs[i]))), rtol=1e-12)
        close(new.running_mean[i], np.asarray(m.running_mean), rtol=1e-12)
        close(new.running_var[i], np.asarray(m.running_var), rtol=1e-12)
    assert new.num_batches_tracked.tolist() == [1, 1, 1]
    close(stacked.running_mean, np.zeros((3, 2)), 0, 0)  # the caller's stack is untouched


def test_batch_norm_closed_over_by_grad_updates_its_statistics_in_place():
    """fnx.grad of a function that closes over a module (rather than taking it as an
    argument) updates the running statistics as the eager call does, and leaves no tracer in
    the module (it was left holding a dead JVP tracer)."""
    x = t(rand(5, 3))
    eager, closed = nn.BatchNorm1d(3, dtype=F64), nn.BatchNorm1d(3, dtype=F64)
    mean = closed.running_mean
    eager(x)
    g = fnx.grad(lambda x: (closed(x) * x).sum())(x)
    assert closed.running_mean is mean and type(mean) is fnx.Array  # updated in place
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        close(closed.get_buffer(name), np.asarray(eager.get_buffer(name)), rtol=1e-12)
    close(g, np.asarray(fnx.grad(lambda x: (eager(x) * x).sum())(x)), rtol=1e-12)
    closed.eval()(x)  # still usable eagerly


def test_instance_norm_against_numpy():
    x = rand(3, 2, 4, 5)
    inorm = nn.InstanceNorm2d(2, affine=True, track_running_stats=True, momentum=0.3,
                              dtype=F64)
    _randomize(inorm)
    w, b = np.asarray(inorm.weight), np.asarray(inorm.bias)
    m, v = x.mean(axis=(2, 3)), x.var(axis=(2, 3))
    y = (x - m[..., None, None]) / np.sqrt(v[..., None, None] + 1e-5)
    close(inorm(t(x)), y * w[:, None, None] + b[:, None, None])
    rm = 0.3 * m.mean(0)
    rv = 0.7 + 0.3 * x.var(axis=(2, 3), ddof=1).mean(0)
    close(inorm.running_mean, rm)
    close(inorm.running_var, rv)
    close(inorm.eval()(t(x[0])), np_batch_norm(x[:1], rm, rv, w, b, 1e-5)[0])  # unbatched
    plain = nn.InstanceNorm1d(3)
    assert list(plain.state_dict()) == []
    x1 = rand(2, 3, 6)
    want = (x1 - x1.mean(-1, keepdims=True)) / np.sqrt(x1.var(-1, keepdims=True) + 1e-5)
    close(plain(t(x1, dtype=F64)), want)
    with pytest.warns(UserWarning, match="does not match num_features"):
        plain(t(rand(2, 4, 6)))


def test_layer_group_and_rms_norm_against_numpy():
    x = rand(2, 4, 3, 5)
    ln = _randomize(nn.LayerNorm((3, 5), eps=1e-3, dtype=F64))
    m, v = x.mean(axis=(2, 3), keepdims=True), x.var(axis=(2, 3), keepdims=True)
    close(ln(t(x)), (x - m) / np.sqrt(v + 1e-3) * np.asarray(ln.weight) + np.asarray(ln.bias))
    ln_nobias = nn.LayerNorm(5, bias=False)
    assert list(ln_nobias.state_dict()) == ["weight"] and ln_nobias.bias is None
    assert list(nn.LayerNorm(5, elementwise_affine=False).state_dict()) == []
    gn = _randomize(nn.GroupNorm(2, 4, dtype=F64))
    g = x.reshape(2, 2, -1)
    y = ((g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5)).reshape(
        x.shape)
    close(gn(t(x)), y * np.asarray(gn.weight)[:, None, None] + np.asarray(gn.bias)[:, None, None])
    rms = _randomize(nn.RMSNorm([5], eps=1e-6, dtype=F64))
    close(rms(t(x)), x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * np.asarray(rms.weight))


def test_norm_errors_name_the_layer():
    with pytest.raises(ShapeError, match=r"BatchNorm2d\(3\) expected 4-D input \(N, C, H, W\), "
                                         r"got 3-D input of shape \(2, 3, 4\)"):
        nn.BatchNorm2d(3)(fnx.ones(2, 3, 4))
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(3\) expected input with 3 channels in "
                                         r"dim 1, got shape \(2, 4\)"):
        nn.BatchNorm1d(3)(fnx.ones(2, 4))
    with pytest.raises(ValueError, match="expected more than 1 value per channel"):
        nn.BatchNorm1d(3)(fnx.ones(1, 3))
    with pytest.raises(ShapeError, match=r"InstanceNorm2d\(3\) expected 3-D or 4-D input"):
        nn.InstanceNorm2d(3)(fnx.ones(2, 3))
    with pytest.raises(ShapeError, match=r"InstanceNorm1d\(3\) expected input with 3 channels"):
        nn.InstanceNorm1d(3, affine=True)(fnx.ones(2, 4, 5))
    with pytest.raises(ShapeError, match=r"LayerNorm\(\(128,\)\) expected input with shape "
                                         r"\[\*, 128\], got shape \(2, 100\)"):
        nn.LayerNorm(128)(fnx.ones(2, 100))
    with pytest.raises(ValueError, match=r"num_channels \(6\) must be divisible by num_groups"):
        nn.GroupNorm(4, 6)
    with pytest.raises(ShapeError, match=r"GroupNorm\(2, 4\) expected input \(N, 4, \*\)"):
        nn.GroupNorm(2, 4)(fnx.ones(2, 6, 3))


# --- dropout -----------------------------------------------------------------------------------


def test_dropout_train_and_eval():
    x = fnx.ones(20000)
    drop = nn.Dropout(0.3)
    y = np.asarray(drop(x))
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.7)}
    assert abs((y == 0).mean() - 0.3) < 0.02
    assert drop.eval()(x) is x  # the identity in eval mode
    fnx.manual_seed(5)
    a = np.asarray(drop.train()(x))
    fnx.manual_seed(5)
    close(drop(x), a, 0, 0)  # the global generator makes masks reproducible
    z = fnx.ones(1000)
    out = nn.Dropout(0.5, inplace=True)(z)
    assert out is z and (np.asarray(z) == 0).any()
    ch = np.asarray(nn.Dropout2d(0.5)(fnx.ones(4, 50, 3, 3)))
    assert np.all((ch == 0).all(axis=(2, 3)) | (ch == 2).all(axis=(2, 3)))
    ch1 = np.asarray(nn.Dropout1d(0.5)(fnx.ones(4, 50, 3)))
    assert np.all((ch1 == 0).all(axis=2) | (ch1 == 2).all(axis=2))
    x4 = fnx.ones(2, 3, 2, 2)
    assert nn.Dropout2d().eval()(x4) is x4
    xs = fnx.randn(40000)
    ys = np.asarray(nn.AlphaDropout(0.3)(xs))
    assert abs(ys.mean()) < 0.03 and abs(ys.std() - 1) < 0.03
    _, counts = np.unique(ys, return_counts=True)
    assert abs(counts.max() / ys.size - 0.3) < 0.02  # the dropped units all sit at one value
    assert nn.AlphaDropout(0.3).eval()(xs) is xs
    with pytest.raises(ValueError, match="Dropout: dropout probability has to be between 0 and "
                                         "1, but got 1.5"):
        nn.Dropout(1.5)


# --- embeddings --------------------------------------------------------------------------------


def test_embedding_lookup_padding_and_pretrained():
    emb = nn.Embedding(10, 3, padding_idx=-2, dtype=F64)
    assert emb.padding_idx == 8
    close(emb.weight[8], np.zeros(3), 0, 0)
    idx = np.array([[1, 8, 3], [8, 8, 0]])
    w = np.asarray(emb.weight)
    close(emb(t(idx)), w[idx])
    emb(t(idx)).sum().backward()
    counts = np.bincount(idx.ravel(), minlength=10).astype(float)
    counts[8] = 0  # the padding row gets no gradient
    close(emb.weight.grad, np.repeat(counts[:, None], 3, 1))
    table = t(rand(4, 2))
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad and frozen.weight.shape == (4, 2)
    close(frozen(t([3, 0])), np.asarray(table)[[3, 0]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    capped = nn.Embedding(5, 4, max_norm=1.0, dtype=F64)
    capped(t([0, 2]))
    norms = np.linalg.norm(np.asarray(capped.weight), axis=1)
    assert np.all(norms[[0, 2]] <= 1.0 + 1e-6)


@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_against_numpy(mode):
    bag = nn.EmbeddingBag(10, 3, mode=mode, dtype=F64)
    w = np.asarray(bag.weight)
    idx = np.array([1, 2, 4, 5, 4, 3, 2, 9])
    offsets = [0, 4, 4, 6]  # bags [1 2 4 5], [], [4 3], [2 9]
    reduce = {"sum": np.sum, "mean": np.mean, "max": np.max}[mode]
    want = [reduce(w[idx[a:b]], axis=0) if b > a else np.zeros(3)
            for a, b in zip(offsets, offsets[1:] + [len(idx)])]
    close(bag(t(idx), t(offsets)), np.array(want))
    close(bag(t(idx.reshape(2, 4))), reduce(w[idx.reshape(2, 4)], axis=1))
    if mode == "sum":
        psw = rand(8)
        got = bag(t(idx), t(offsets), per_sample_weights=t(psw))
        close(got[0], (w[idx[:4]] * psw[:4, None]).sum(0))


def test_embedding_errors():
    with pytest.raises(ValueError, match=r"Embedding: padding_idx 10 must be within "
                                         r"num_embeddings \(10\)"):
        nn.Embedding(10, 3, padding_idx=10)
    with pytest.raises(ShapeError, match="embeddings are expected to be 2-dimensional"):
        nn.Embedding.from_pretrained(fnx.ones(3))
    with pytest.raises(ShapeError, match=r"shape of weight \(3, 2\) does not match"):
        nn.Embedding(4, 2, _weight=fnx.ones(3, 2))
    with pytest.raises(IndexError, match=r"embedding: index 12 is out of range; expected values "
                                         r"in \[0, 10\)"):
        nn.Embedding(10, 3)(t([1, 12]))
    with pytest.raises(DTypeError, match="expected integer indices"):
        nn.Embedding(10, 3)(fnx.ones(2))
    with pytest.raises(ValueError, match="mode must be 'sum', 'mean' or 'max'"):
        nn.EmbeddingBag(10, 3, mode="min")


# --- activations -------------------------------------------------------------------------------

_SELU = (1.6732632423543772848170429916717, 1.0507009873554804934193349852946)


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


ACTIVATIONS = [
    (nn.ReLU(), lambda x: np.maximum(x, 0)),
    (nn.ReLU6(), lambda x: np.clip(x, 0, 6)),
    (nn.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
    (nn.GELU(), lambda x: x * 0.5 * (1 + sp.erf(x / np.sqrt(2)))),
    (nn.GELU("tanh"), lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi)
                                                       * (x + 0.044715 * x ** 3)))),
    (nn.Sigmoid(), sp.expit),
    (nn.Tanh(), np.tanh),
    (nn.Softmax(dim=1), lambda x: _softmax(x, 1)),
    (nn.LogSoftmax(dim=0), lambda x: np.log(_softmax(x, 0))),
    (nn.Softmin(dim=-1), lambda x: _softmax(-x, -1)),
    (nn.ELU(0.5), lambda x: np.where(x > 0, x, 0.5 * np.expm1(x))),
    (nn.SELU(), lambda x: _SELU[1] * np.where(x > 0, x, _SELU[0] * np.expm1(x))),
    (nn.CELU(2.0), lambda x: np.maximum(x, 0) + np.minimum(0, 2 * np.expm1(x / 2))),
    (nn.SiLU(), lambda x: x * sp.expit(x)),
    (nn.Mish(), lambda x: x * np.tanh(np.log1p(np.exp(x)))),
    (nn.Softplus(2.0, 3.0), lambda x: np.where(2 * x > 3, x, np.log1p(np.exp(2 * x)) / 2)),
    (nn.Softsign(), lambda x: x / (1 + np.abs(x))),
    (nn.Hardtanh(-0.5, 1.5), lambda x: np.clip(x, -0.5, 1.5)),
    (nn.Hardswish(), lambda x: x * np.clip(x + 3, 0, 6) / 6),
    (nn.Hardsigmoid(), lambda x: np.clip(x + 3, 0, 6) / 6),
    (nn.Threshold(0.1, 20.0), lambda x: np.where(x > 0.1, x, 20.0)),
    (nn.GLU(dim=0), lambda x: x[:3] * sp.expit(x[3:])),
    (nn.LogSigmoid(), lambda x: -np.logaddexp(0, -x)),
]


@pytest.mark.parametrize("module,reference", ACTIVATIONS, ids=lambda v: repr(v)[:24])
def test_activations_against_numpy_and_under_vmap(module, reference):
    x = rand(6, 5) * 3
    close(module(t(x)), reference(x), rtol=1e-9, atol=1e-12)
    batch = rand(3, 6, 5)
    close(fnx.vmap(lambda m, x: m(x), in_axes=(None, 0))(module, t(batch)),
          np.stack([reference(b) for b in batch]), rtol=1e-9, atol=1e-12)


def test_prelu_and_inplace_activations():
    prelu = nn.PReLU(3, init=0.1, dtype=F64)
    close(prelu.weight, np.full(3, 0.1))
    x = rand(4, 3, 2)
    close(prelu(t(x)), np.where(x > 0, x, 0.1 * x))
    shared = nn.PReLU()
    close(shared(t(x)), np.where(x > 0, x, 0.25 * x))
    for module in (nn.ReLU(inplace=True), nn.ELU(inplace=True), nn.LeakyReLU(inplace=True),
                   nn.Hardtanh(inplace=True), nn.SiLU(inplace=True), nn.Threshold(0, 0, True)):
        z = t(x)
        out = module(z)
        assert out is z  # written into the concrete input, as PyTorch
    with pytest.raises(ValueError, match=r"Hardtanh: max_val \(-1\) must be greater than"):
        nn.Hardtanh(1, -1)
    with pytest.raises(ValueError, match="GELU: approximate must be 'none' or 'tanh'"):
        nn.GELU("erf")


# --- resampling --------------------------------------------------------------------------------


def test_upsample_and_pixel_shuffle_against_numpy():
    x = rand(1, 2, 3, 4)
    close(nn.Upsample(scale_factor=2)(t(x)), x.repeat(2, axis=2).repeat(2, axis=3))
    up = nn.UpsamplingBilinear2d(size=(5, 7))(t(x))
    rows = np.linspace(0, 2, 5)  # align_corners=True samples the corners exactly
    cols = np.linspace(0, 3, 7)
    by_rows = np.stack([[np.interp(rows, np.arange(3), x[0, c, :, j]) for j in range(4)]
                        for c in range(2)]).transpose(0, 2, 1)
    want = np.stack([[np.interp(cols, np.arange(4), by_rows[c, i]) for i in range(5)]
                     for c in range(2)])
    close(up[0], want)
    y = rand(2, 3 * 4, 2, 3)
    out = np.asarray(nn.PixelShuffle(2)(t(y)))
    assert out.shape == (2, 3, 4, 6)
    for c, i, j, h, w in np.ndindex(3, 2, 2, 2, 3):
        assert out[:, c, h * 2 + i, w * 2 + j].tolist() == y[:, c * 4 + i * 2 + j, h, w].tolist()
    close(nn.PixelUnshuffle(2)(t(out)), y, 0, 0)
    with pytest.raises(ShapeError, match=r"PixelShuffle\(2\): expected input .* divisible by "
                                         r"upscale_factor\^2 = 4"):
        nn.PixelShuffle(2)(fnx.ones(1, 6, 2, 2))
    with pytest.raises(ShapeError, match=r"PixelUnshuffle\(2\).*divisible by downscale_factor"):
        nn.PixelUnshuffle(2)(fnx.ones(1, 1, 3, 4))


# --- state dicts, reprs, initialisation ----------------------------------------------------------

STATE_KEYS = [
    (lambda: nn.Linear(3, 2), ["weight", "bias"], {"weight": (2, 3), "bias": (2,)}),
    (lambda: nn.Linear(3, 2, bias=False), ["weight"], {"weight": (2, 3)}),
    (lambda: nn.Bilinear(2, 3, 4), ["weight", "bias"], {"weight": (4, 2, 3)}),
    (lambda: nn.Conv2d(4, 8, (3, 2), groups=2), ["weight", "bias"], {"weight": (8, 2, 3, 2)}),
    (lambda: nn.Conv1d(4, 8, 3, bias=False), ["weight"], {"weight": (8, 4, 3)}),
    (lambda: nn.ConvTranspose2d(4, 6, 3, groups=2), ["weight", "bias"],
     {"weight": (4, 3, 3, 3), "bias": (6,)}),
    (lambda: nn.ConvTranspose1d(4, 6, 3), ["weight", "bias"], {"weight": (4, 6, 3)}),
    (lambda: nn.BatchNorm2d(5), ["weight", "bias", "running_mean", "running_var",
                                 "num_batches_tracked"], {"num_batches_tracked": ()}),
    (lambda: nn.BatchNorm1d(5, affine=False), ["running_mean", "running_var",
                                               "num_batches_tracked"], {"running_var": (5,)}),
    (lambda: nn.InstanceNorm2d(5), [], {}),
    (lambda: nn.InstanceNorm1d(5, affine=True, track_running_stats=True),
     ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"], {}),
    (lambda: nn.LayerNorm([3, 4]), ["weight", "bias"], {"weight": (3, 4)}),
    (lambda: nn.GroupNorm(2, 4), ["weight", "bias"], {"bias": (4,)}),
    (lambda: nn.GroupNorm(2, 4, bias=False), ["weight"], {"weight": (4,)}),
    (lambda: nn.BatchNorm2d(5, bias=False), ["weight", "running_mean", "running_var",
                                             "num_batches_tracked"], {}),
    (lambda: nn.RMSNorm(4), ["weight"], {"weight": (4,)}),
    (lambda: nn.Embedding(10, 3), ["weight"], {"weight": (10, 3)}),
    (lambda: nn.EmbeddingBag(10, 3), ["weight"], {"weight": (10, 3)}),
    (lambda: nn.PReLU(3), ["weight"], {"weight": (3,)}),
    (lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(), nn.Linear(2, 1)),
     ["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var",
      "1.num_batches_tracked", "3.weight", "3.bias"], {}),
]


@pytest.mark.parametrize("factory,keys,shapes", STATE_KEYS)
def test_state_dict_keys_are_pytorchs(factory, keys, shapes):
    module = factory()
    sd = module.state_dict()
    assert list(sd) == keys
    for k, shape in shapes.items():
        assert tuple(sd[k].shape) == shape
    other = factory()
    assert repr(other.load_state_dict(sd)) == "<All keys matched successfully>"
    for k in keys:
        close(other.state_dict()[k], np.asarray(sd[k]), 0, 0)


REPRS = [
    (nn.Linear(784, 128), "Linear(in_features=784, out_features=128, bias=True)"),
    (nn.Linear(3, 2, bias=False), "Linear(in_features=3, out_features=2, bias=False)"),
    (nn.Bilinear(20, 30, 40), "Bilinear(in1_features=20, in2_features=30, out_features=40, "
                              "bias=True)"),
    (nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1),
     "Conv2d(3, 64, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))"),
    (nn.Conv1d(256, 128, kernel_size=5), "Conv1d(256, 128, kernel_size=(5,), stride=(1,))"),
    (nn.Conv2d(3, 8, 3, padding="same", bias=False, padding_mode="reflect"),
     "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1), padding=same, bias=False, "
     "padding_mode=reflect)"),
    (nn.Conv2d(4, 4, 3, dilation=2, groups=4),
     "Conv2d(4, 4, kernel_size=(3, 3), stride=(1, 1), dilation=(2, 2), groups=4)"),
    (nn.ConvTranspose2d(64, 32, kernel_size=4, stride=2, padding=1),
     "ConvTranspose2d(64, 32, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))"),
    (nn.ConvTranspose1d(4, 6, 3, stride=2, output_padding=1, groups=2),
     "ConvTranspose1d(4, 6, kernel_size=(3,), stride=(2,), output_padding=(1,), groups=2)"),
    (nn.MaxPool2d(kernel_size=2, stride=2),
     "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"),
    (nn.MaxPool1d(3), "MaxPool1d(kernel_size=3, stride=3, padding=0, dilation=1, "
                      "ceil_mode=False)"),
    (nn.AvgPool2d(kernel_size=2, stride=2), "AvgPool2d(kernel_size=2, stride=2, padding=0)"),
    (nn.AvgPool1d(3), "AvgPool1d(kernel_size=(3,), stride=(3,), padding=(0,))"),
    (nn.AdaptiveAvgPool2d(output_size=(7, 7)), "AdaptiveAvgPool2d(output_size=(7, 7))"),
    (nn.AdaptiveMaxPool2d(1), "AdaptiveMaxPool2d(output_size=1)"),
    (nn.BatchNorm2d(num_features=64),
     "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, bias=True, "
     "track_running_stats=True)"),
    (nn.BatchNorm1d(10, eps=1e-3, momentum=None, affine=False),
     "BatchNorm1d(10, eps=0.001, momentum=None, affine=False, bias=False, "
     "track_running_stats=True)"),
    (nn.InstanceNorm2d(num_features=64),
     "InstanceNorm2d(64, eps=1e-05, momentum=0.1, affine=False, bias=False, "
     "track_running_stats=False)"),
    (nn.LayerNorm(normalized_shape=[128]), "LayerNorm((128,), eps=1e-05, "
                                           "elementwise_affine=True, bias=True)"),
    (nn.GroupNorm(num_groups=8, num_channels=64),
     "GroupNorm(8, 64, eps=1e-05, affine=True, bias=True)"),
    (nn.GroupNorm(2, 4, bias=False), "GroupNorm(2, 4, eps=1e-05, affine=True, bias=False)"),
    (nn.BatchNorm1d(3, bias=False), "BatchNorm1d(3, eps=1e-05, momentum=0.1, affine=True, "
                                    "bias=False, track_running_stats=True)"),
    (nn.Dropout(p=0.5), "Dropout(p=0.5, inplace=False)"),
    (nn.Dropout2d(p=0.2, inplace=True), "Dropout2d(p=0.2, inplace=True)"),
    (nn.AlphaDropout(p=0.5), "AlphaDropout(p=0.5, inplace=False)"),
    (nn.Embedding(10, 3, padding_idx=0), "Embedding(10, 3, padding_idx=0)"),
    (nn.Embedding(10, 3, max_norm=1.0), "Embedding(10, 3, max_norm=1.0)"),
    (nn.EmbeddingBag(10, 3, mode="sum"), "EmbeddingBag(10, 3, mode='sum')"),
    (nn.ReLU(), "ReLU()"), (nn.ReLU(inplace=True), "ReLU(inplace=True)"),
    (nn.ReLU6(), "ReLU6()"), (nn.LeakyReLU(), "LeakyReLU(negative_slope=0.01)"),
    (nn.LeakyReLU(0.2, True), "LeakyReLU(negative_slope=0.2, inplace=True)"),
    (nn.PReLU(), "PReLU(num_parameters=1)"), (nn.GELU("tanh"), "GELU(approximate='tanh')"),
    (nn.Sigmoid(), "Sigmoid()"), (nn.Tanh(), "Tanh()"), (nn.Softmax(dim=-1), "Softmax(dim=-1)"),
    (nn.LogSoftmax(dim=1), "LogSoftmax(dim=1)"), (nn.Softmin(1), "Softmin(dim=1)"),
    (nn.ELU(alpha=1.0), "ELU(alpha=1.0)"), (nn.CELU(), "CELU(alpha=1.0)"), (nn.SELU(), "SELU()"),
    (nn.SiLU(), "SiLU()"), (nn.Mish(), "Mish()"),
    (nn.Softplus(), "Softplus(beta=1.0, threshold=20.0)"), (nn.Softsign(), "Softsign()"),
    (nn.Hardtanh(), "Hardtanh(min_val=-1.0, max_val=1.0)"), (nn.Hardswish(), "Hardswish()"),
    (nn.Hardsigmoid(inplace=True), "Hardsigmoid()"),
    (nn.Threshold(0.1, 20.0), "Threshold(threshold=0.1, value=20.0)"), (nn.GLU(), "GLU(dim=-1)"),
    (nn.LogSigmoid(), "LogSigmoid()"),
    (nn.Upsample(scale_factor=2), "Upsample(scale_factor=2.0, mode='nearest')"),
    (nn.Upsample(size=(4, 4), mode="bilinear"), "Upsample(size=(4, 4), mode='bilinear')"),
    (nn.PixelShuffle(3), "PixelShuffle(upscale_factor=3)"),
    (nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU()),
     "Sequential(\n  (0): Conv2d(1, 20, kernel_size=(5, 5), stride=(1, 1))\n  (1): ReLU()\n)"),
]


@pytest.mark.parametrize("module,text", REPRS, ids=lambda v: str(v)[:30])
def test_reprs_are_pytorchs(module, text):
    assert repr(module) == text


def _uniform_check(w, bound):
    w = np.asarray(w).ravel()
    assert np.all(np.abs(w) <= bound)
    assert abs(w.mean()) < 0.05 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound


def test_default_initialisation_statistics():
    lin = nn.Linear(400, 300)
    _uniform_check(lin.weight, 1 / 20)  # kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in))
    assert np.all(np.abs(np.asarray(lin.bias)) <= 1 / 20)
    conv = nn.Conv2d(16, 64, 3)
    _uniform_check(conv.weight, 1 / 12)
    convt = nn.ConvTranspose2d(64, 16, 3)  # PyTorch's fan_in of (in, out/g, k): 16 * 9
    _uniform_check(convt.weight, 1 / 12)
    assert np.all(np.abs(np.asarray(convt.bias)) <= 1 / 12)
    bil = nn.Bilinear(25, 30, 40)
    _uniform_check(bil.weight, 1 / 5)
    emb = np.asarray(nn.Embedding(1000, 50).weight)
    assert abs(emb.mean()) < 0.02 and abs(emb.std() - 1) < 0.02
    bn = nn.BatchNorm2d(4)
    for name, value in [("weight", 1), ("bias", 0), ("running_mean", 0), ("running_var", 1)]:
        close(getattr(bn, name), np.full(4, value), 0, 0)
    assert bn.num_batches_tracked.item() == 0
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in conv.parameters())
    double = nn.Conv1d(2, 2, 3, dtype=F64)
    assert double.weight.dtype == F64 and double.bias.dtype == F64
    assert nn.BatchNorm1d(2, dtype=F64).running_var.dtype == F64
    fnx.manual_seed(3)
    a = np.asarray(nn.Linear(4, 4).weight)
    fnx.manual_seed(3)
    close(nn.Linear(4, 4).weight, a, 0, 0)  # fnx.manual_seed reproduces an initialisation
    lin.reset_parameters()
    _uniform_check(lin.weight, 1 / 20)


def test_layers_train_with_an_optimizer_and_keep_their_parameters():
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.1),
                          nn.Linear(8, 3))
    opt = fnx.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    weight = model[0].weight
    x, y = fnx.randn(16, 6), t(R.integers(0, 3, 16))
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] and math.isfinite(losses[-1])
    assert model[0].weight is weight and isinstance(weight, nn.Parameter)
    assert model[1].num_batches_tracked.item() == 5
