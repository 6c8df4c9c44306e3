"""The PyTorch-style surface: top-level fnx functions and Array methods, against NumPy."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnx
import fnx.numpy as fnp
from fnx.core.errors import AxisError, DeviceError, DTypeError, ShapeError, TraceError


def arr(shape, dtype=np.float32, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def close(got, want, **kw):
    got = np.asarray(got)
    assert got.shape == np.shape(want), (got.shape, np.shape(want))
    np.testing.assert_allclose(got, want, **{"rtol": 1e-5, "atol": 1e-6, **kw})


# --- creation -------------------------------------------------------------------------------------


@pytest.mark.parametrize("make", [fnx.zeros, fnx.ones, fnx.empty])
def test_shape_spellings(make):
    a, b, c, d = make(3, 4), make((3, 4)), make([3, 4]), make(size=(3, 4))
    assert a.shape == b.shape == c.shape == d.shape == (3, 4)
    assert a.dtype == fnx.float32
    assert make(()).shape == () and make(0).shape == (0,)
    assert make(2, dtype=fnx.int64).dtype == fnx.int64
    assert make(2, device="cpu").device == fnx.device("cpu")


def test_creation_values_and_dtypes():
    close(fnx.ones(2, 3), np.ones((2, 3)))
    assert fnx.full((2,), 7).dtype == fnx.int64
    assert fnx.full((2,), 1.5).dtype == fnx.float32
    assert fnx.full((2,), True).dtype == fnx.bool
    assert fnx.full((2, 2), 3, dtype=fnx.float64).dtype == fnx.float64
    assert fnx.arange(5).tolist() == [0, 1, 2, 3, 4] and fnx.arange(5).dtype == fnx.int64
    assert fnx.arange(1, 7, 2).tolist() == [1, 3, 5]
    close(fnx.arange(0.0, 1.0, 0.25), np.arange(0, 1, 0.25))
    assert fnx.arange(0.0, 1.0, 0.25).dtype == fnx.float32
    close(fnx.linspace(0, 1, 5), np.linspace(0, 1, 5))
    close(fnx.eye(3), np.eye(3))
    close(fnx.eye(2, 3), np.eye(2, 3))
    x = fnx.tensor([[1, 2]], dtype=fnx.int32)
    for fn, value in [(fnx.zeros_like, 0), (fnx.ones_like, 1), (fnx.empty_like, 0)]:
        y = fn(x)
        assert y.dtype == fnx.int32 and y.tolist() == [[value, value]]
    assert fnx.full_like(x, 9).tolist() == [[9, 9]]
    assert fnx.zeros_like(x, dtype=fnx.float64).dtype == fnx.float64


def test_tensor_copies_and_from_numpy_shares():
    a = np.array([1.0, 2.0])
    t = fnx.tensor(a)
    a[0] = 100
    assert t.tolist() == [1.0, 2.0] and t.dtype == fnx.float64
    s = fnx.from_numpy(a)
    assert np.shares_memory(np.asarray(s), a) and s.tolist() == [100.0, 2.0]
    a[1] = -1  # a NumPy write shows through, as torch.from_numpy
    assert s.tolist() == [100.0, -1.0]
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray"):
        fnx.from_numpy([1, 2])
    assert fnx.tensor(3.5).shape == () and fnx.tensor(True).dtype == fnx.bool
    assert fnx.tensor([]).dtype == fnx.float32
    assert fnx.as_tensor(t) is t


def test_requires_grad_flag():
    assert fnx.ones(2).requires_grad is False
    t = fnx.tensor([1.0], requires_grad=True)
    assert t.requires_grad is True
    assert t.detach().requires_grad is False
    assert fnx.zeros(2, requires_grad=True).requires_grad is True
    assert t.requires_grad_(False) is t and t.requires_grad is False


# --- metadata -------------------------------------------------------------------------------------


def test_size_is_int_and_callable():
    x = fnx.zeros(2, 3, 4)
    assert x.size == 24 and x.size + 1 == 25 and isinstance(x.size, int)
    assert x.size() == (2, 3, 4) and isinstance(x.size(), tuple)
    assert x.size(0) == 2 and x.size(-1) == 4
    with pytest.raises(AxisError, match="size: axis 3 is out of bounds"):
        x.size(3)
    assert x.numel() == x.nelement() == 24 and fnx.numel(x) == 24
    assert x.dim() == x.ndimension() == 3
    assert x.element_size() == 4 and x.is_floating_point() and not x.is_complex()
    assert x.is_contiguous() and x.contiguous() is x
    assert x.get_device() == -1 and x.is_cuda is False
    assert fnx.Size([2, 3]).numel() == 6


# --- shape methods --------------------------------------------------------------------------------


def test_view_reshape_flatten():
    x = fnx.tensor(arr((2, 3, 4)))
    xn = np.asarray(x)
    close(x.view(6, 4), xn.reshape(6, 4))
    close(x.view((4, -1)), xn.reshape(4, -1))
    close(x.reshape(-1), xn.reshape(-1))
    close(x.flatten(), xn.reshape(-1))
    close(x.flatten(1), xn.reshape(2, 12))
    close(x.flatten(0, 1), xn.reshape(6, 4))
    close(x.flatten(start_dim=-2, end_dim=-1), xn.reshape(2, 12))
    assert fnx.tensor(1.0).flatten().shape == (1,)
    close(x.view_as(fnx.zeros(4, 6)), xn.reshape(4, 6))
    close(x.unflatten(2, (2, 2)), xn.reshape(2, 3, 2, 2))
    assert x.view(fnx.int32).dtype == fnx.int32
    np.testing.assert_array_equal(np.asarray(x.view(fnx.int32)), xn.view(np.int32))
    with pytest.raises(ShapeError, match="flatten: start_dim 2 comes after end_dim 0"):
        x.flatten(2, 0)


def test_squeeze_unsqueeze_transpose_permute():
    x = fnx.tensor(arr((1, 3, 1, 2)))
    xn = np.asarray(x)
    assert x.squeeze().shape == (3, 2)
    assert x.squeeze(0).shape == (3, 1, 2)
    assert x.squeeze(1).shape == (1, 3, 1, 2)  # not size 1: unchanged, as torch
    assert x.squeeze((0, 2)).shape == (3, 2)
    assert x.unsqueeze(-1).shape == (1, 3, 1, 2, 1)
    assert x.unsqueeze(1).shape == (1, 1, 3, 1, 2)
    close(x.permute(3, 1, 0, 2), xn.transpose(3, 1, 0, 2))
    close(x.permute((3, 1, 0, 2)), xn.transpose(3, 1, 0, 2))
    close(x.transpose(1, 3), np.swapaxes(xn, 1, 3))
    close(x.transpose(), xn.transpose())
    m = fnx.tensor(arr((2, 3)))
    close(m.t(), np.asarray(m).T)
    assert fnx.ones(3).t().shape == (3,)
    with pytest.raises(ShapeError, match="t: expects an array with at most 2 dims"):
        x.t()
    close(fnx.transpose(m, 0, 1), np.asarray(m).T)
    close(x.movedim(0, -1), np.moveaxis(xn, 0, -1))


def test_expand_repeat_tile_flip():
    x = fnx.tensor([[1], [2], [3]])
    assert x.expand(3, 4).tolist() == [[1] * 4, [2] * 4, [3] * 4]
    assert x.expand(2, -1, 4).shape == (2, 3, 4)
    assert x.expand_as(fnx.zeros(3, 2)).shape == (3, 2)
    with pytest.raises(ShapeError):
        x.expand(2, 4)
    with pytest.raises(ShapeError, match="-1 is not allowed for the new leading dim"):
        x.expand(-1, 3, 4)
    y = fnx.tensor(arr((2, 3)))
    yn = np.asarray(y)
    close(y.repeat(2, 3), np.tile(yn, (2, 3)))
    close(y.repeat(2, 1, 2), np.tile(yn, (2, 1, 2)))
    close(y.tile(2), np.tile(yn, 2))
    with pytest.raises(ShapeError, match="repeat: needs at least one repeat count per dim"):
        y.repeat(2)
    close(y.flip(0), yn[::-1])
    close(y.flip(0, 1), yn[::-1, ::-1])


def test_split_chunk_unbind_narrow():
    x = fnx.arange(10).view(5, 2)
    parts = x.split(2)
    assert [p.shape for p in parts] == [(2, 2), (2, 2), (1, 2)]
    assert fnx.cat(parts).tolist() == x.tolist()
    assert [p.shape[0] for p in x.split([1, 4])] == [1, 4]
    with pytest.raises(ShapeError, match="split: sections"):
        x.split([1, 2])
    assert [p.shape[0] for p in x.chunk(2)] == [3, 2]
    rows = x.unbind(0)
    assert len(rows) == 5 and rows[1].tolist() == [2, 3]
    assert x.narrow(0, 1, 2).tolist() == [[2, 3], [4, 5]]


def test_split_chunk_edge_cases_as_torch():
    x = fnx.arange(12).view(6, 2)
    # sections that add up but hold a negative size: torch rejects them (eagerly, slicing
    # took -1 as 'up to the last row' and returned pieces of 5 and 1 rows)
    with pytest.raises(ShapeError, match="non-negative"):
        x.split([-1, 7])
    for bad in (0, -1):
        with pytest.raises(ValueError, match="chunks must be positive"):
            x.chunk(bad)
    with pytest.raises(ValueError, match="split_size must be positive"):
        x.split(0)
    empty = fnx.zeros(0, 3)
    # torch: chunk of an empty dim gives `chunks` empty pieces, split size 0 one piece
    assert [p.shape for p in empty.chunk(3)] == [(0, 3)] * 3
    assert [p.shape for p in empty.split(0)] == [(0, 3)]
    assert [p.shape for p in x.chunk(4)] == [(2, 2)] * 3  # 6 rows in 4 chunks: 3 of 2, as torch
    # a 0-d integer array is a split size, as torch (it was iterated as sections); floats are
    # TypeErrors
    assert [p.shape for p in x.split(fnx.tensor(4))] == [(4, 2), (2, 2)]
    for bad in (lambda: x.split(2.0), lambda: x.chunk(2.5)):
        with pytest.raises(TypeError):
            bad()


def test_split_primitive_checks_eagerly_and_takes_negative_axes():
    from fnx.core.ops import shape as sh

    x = fnp.asarray(np.arange(10.0).reshape(2, 5))
    a, b = sh.split(x, (2, 3), -1)  # the last axis (the impl sliced axis 0 for axis=-1)
    close(a, np.asarray(x)[:, :2])
    close(b, np.asarray(x)[:, 2:])
    for sizes in ((-1, 6), (1, 1)):  # eagerly as traced: the shape rule's error
        for f in (lambda x: sh.split(x, sizes, 1), fnx.jit(lambda x: sh.split(x, sizes, 1))):
            with pytest.raises(ShapeError, match="non-negative and add up"):
                f(x)
    with pytest.raises(ShapeError, match="non-negative and add up"):
        sh.split_p.bind(x, sizes=(-1, 6), axis=1)


# --- reductions -----------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["sum", "mean", "prod"]), st.integers(-2, 1), st.booleans())
def test_reductions_dim_and_axis(name, dim, keep):
    x = fnx.tensor(arr((3, 4)))
    xn = np.asarray(x)
    want = getattr(np, name)(xn, axis=dim, keepdims=keep)
    close(getattr(x, name)(dim=dim, keepdim=keep), want, rtol=1e-4)
    close(getattr(x, name)(axis=dim, keepdims=keep), want, rtol=1e-4)
    close(getattr(x, name)(dim, keep), want, rtol=1e-4)
    close(getattr(fnx, name)(x, dim=dim, keepdim=keep), want, rtol=1e-4)


def test_reductions_misc():
    x = fnx.tensor(arr((3, 4)))
    xn = np.asarray(x)
    close(x.sum(), xn.sum(), rtol=1e-5)
    close(x.sum(dim=(0, 1)), xn.sum(), rtol=1e-5)
    close(x.sum([0, 1]), xn.sum(), rtol=1e-5)
    close(x.std(), xn.std(ddof=1))  # unbiased by default, as torch
    close(x.var(0), xn.var(0, ddof=1))
    close(x.var(0, unbiased=False), xn.var(0))
    close(x.std(1, correction=0, keepdim=True), xn.std(1, keepdims=True))
    close(x.var(False), xn.var())
    close(fnx.std(x, dim=1), xn.std(1, ddof=1))
    assert fnx.tensor([1, 2]).sum().dtype == fnx.int64
    with pytest.raises(TypeError, match="sum: got both dim=0 and axis=1"):
        x.sum(dim=0, axis=1)
    with pytest.raises(TypeError, match="either unbiased or correction"):
        x.std(unbiased=True, correction=1)
    b = fnx.tensor([[True, False], [True, True]])
    assert b.all(dim=1).tolist() == [False, True] and b.any().item() is True
    close(x.logsumexp(1), np.log(np.exp(xn).sum(1)), rtol=1e-5)
    sm = x.softmax(dim=1)
    close(sm, np.exp(xn) / np.exp(xn).sum(1, keepdims=True))
    close(x.log_softmax(1), np.log(np.asarray(sm)), atol=1e-5)
    close(fnx.softmax(x, 0).sum(0), np.ones(4))


def test_max_min_forms():
    x = fnx.tensor([[1.0, 5.0, 3.0], [7.0, 2.0, 7.0]])
    xn = np.asarray(x)
    assert x.max().item() == 7.0 and x.min().item() == 1.0
    r = x.max(1)
    assert isinstance(r, fnx.return_types.max) and isinstance(r, tuple)
    assert r.values.tolist() == [5.0, 7.0] and r.indices.tolist() == [1, 0]
    values, indices = fnx.max(x, 1)
    assert values.tolist() == [5.0, 7.0] and indices.dtype == fnx.int64
    v, i = x.min(dim=0, keepdim=True)
    assert v.shape == (1, 3) and v.tolist() == [[1.0, 2.0, 3.0]] and i.tolist() == [[0, 1, 0]]
    assert isinstance(fnx.min(x, 0), fnx.return_types.min)
    y = fnx.tensor([[4.0, 4.0, 4.0], [4.0, 4.0, 9.0]])
    close(fnx.max(x, y), np.maximum(xn, np.asarray(y)))
    close(x.min(y), np.minimum(xn, np.asarray(y)))
    close(x.max(axis=0), xn.max(0))  # NumPy style: values only
    close(x.amax((0, 1)), xn.max())
    close(fnx.amin(x, 1), xn.min(1))
    assert x.argmax().item() == 3 and x.argmin(dim=1).tolist() == [0, 1]
    assert x.argmax(1, keepdim=True).shape == (2, 1)
    assert fnx.argmax(x, dim=0).tolist() == [1, 0, 1]


def test_norm():
    x = fnx.tensor(arr((3, 4)))
    xn = np.asarray(x)
    close(x.norm(), np.linalg.norm(xn))
    close(x.norm(p=2, dim=1), np.linalg.norm(xn, axis=1))
    close(x.norm(1, dim=0), np.abs(xn).sum(0))
    close(x.norm(float("inf")), np.abs(xn).max())
    close(x.norm(3, dim=1, keepdim=True), (np.abs(xn) ** 3).sum(1, keepdims=True) ** (1 / 3),
          rtol=1e-5)
    close(fnx.tensor([0.0, 2.0, 0.0]).norm(0), 1.0)
    with pytest.raises(ValueError, match="norm: p='nuc' is not supported"):
        x.norm("nuc")


# --- elementwise ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name,ref", [
    ("abs", np.abs), ("exp", np.exp), ("sin", np.sin), ("cos", np.cos), ("tanh", np.tanh),
    ("neg", np.negative), ("sign", np.sign), ("floor", np.floor), ("ceil", np.ceil),
    ("round", np.round), ("trunc", np.trunc), ("square", np.square), ("expm1", np.expm1),
    ("sigmoid", lambda a: 1 / (1 + np.exp(-a))), ("relu", lambda a: np.maximum(a, 0)),
])
def test_unary_methods(name, ref):
    xn = arr((5,)) * 2
    x = fnx.tensor(xn)
    close(getattr(x, name)(), ref(xn), rtol=1e-5)
    close(getattr(fnx, name)(x), ref(xn), rtol=1e-5)


@pytest.mark.parametrize("name,ref", [
    ("log", np.log), ("sqrt", np.sqrt), ("rsqrt", lambda a: 1 / np.sqrt(a)),
    ("log1p", np.log1p), ("log2", np.log2), ("log10", np.log10), ("reciprocal", np.reciprocal),
])
def test_positive_unary_methods(name, ref):
    xn = np.abs(arr((5,))) + 0.5
    close(getattr(fnx.tensor(xn), name)(), ref(xn), rtol=1e-5)


def test_binary_methods():
    xn, yn = arr((4,)), np.abs(arr((4,), seed=1)) + 0.5
    x, y = fnx.tensor(xn), fnx.tensor(yn)
    close(x.add(y), xn + yn)
    close(x.add(y, alpha=2), xn + 2 * yn)
    close(fnx.sub(x, y, alpha=3), xn - 3 * yn)
    close(x.mul(y), xn * yn)
    close(x.div(y), xn / yn)
    close(x.div(y, rounding_mode="floor"), np.floor(xn / yn))
    close(x.div(y, rounding_mode="trunc"), np.trunc(xn / yn))
    assert fnx.tensor([-7, 7]).div(2, rounding_mode="trunc").tolist() == [-3, 3]
    assert fnx.tensor([-7, 7]).div(2, rounding_mode="floor").tolist() == [-4, 3]
    with pytest.raises(ValueError, match="rounding_mode must be"):
        x.div(y, rounding_mode="up")
    close(y.pow(2), yn ** 2)
    close(x.eq(x), np.ones(4, bool))
    assert x.gt(0).dtype == fnx.bool
    close(x.lerp(y, 0.25), xn + 0.25 * (yn - xn))
    close(x.addcmul(x, y, value=2), xn + 2 * xn * yn)
    close(x.addcdiv(x, y), xn + xn / yn)
    assert x.allclose(x + 1e-9) and not x.allclose(x + 1)
    assert fnx.allclose(x, x) and x.equal(fnx.tensor(xn)) and not x.equal(x[:2])


def test_dtype_promotion_int_float():
    i, f = fnx.tensor([1, 2]), fnx.tensor([0.5, 0.5])
    assert (i + f).dtype == fnx.float32
    assert (i * 2.5).dtype == fnx.float32
    assert (f * 2).dtype == fnx.float32
    assert (i / 2).dtype == fnx.float32
    assert (i ** 2).dtype == fnx.int64


def test_where_clamp_masked_fill():
    xn = np.array([-2.0, -0.5, 0.5, 2.0], np.float32)
    x = fnx.tensor(xn)
    close(x.clamp(min=-1, max=1), np.clip(xn, -1, 1))
    close(x.clamp(min=0), np.clip(xn, 0, None))
    close(fnx.clamp(x, max=0.0), np.clip(xn, None, 0))
    close(fnx.clip(x, -1, 1), np.clip(xn, -1, 1))
    assert x.clamp(min=0).dtype == fnx.float32
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        x.clamp()
    close(fnx.where(x > 0, x, fnx.zeros_like(x)), np.where(xn > 0, xn, 0))
    close(x.where(x > 0, 0.0), np.where(xn > 0, xn, 0))
    close(x.masked_fill(x < 0, -9.0), np.where(xn < 0, -9, xn))
    with pytest.raises(TypeError, match="one-argument form"):
        fnx.where(x > 0)


# --- conversions, copies, devices -----------------------------------------------------------------


def test_conversions():
    x = fnx.tensor([1.7, -2.2])
    for name, dt in [("float", fnx.float32), ("double", fnx.float64), ("half", fnx.float16),
                     ("int", fnx.int32), ("long", fnx.int64), ("short", fnx.int16),
                     ("bool", fnx.bool), ("byte", fnx.uint8)]:
        assert getattr(x, name)().dtype == dt
    assert x.long().tolist() == [1, -2]
    assert x.type() == "fnx.float32" and x.type(fnx.float64).dtype == fnx.float64
    assert x.type("fnx.int64").dtype == fnx.int64
    assert x.to(fnx.float64).dtype == fnx.float64
    assert x.to("cpu", fnx.int32).dtype == fnx.int32
    assert x.to(dtype=fnx.float16, device="cpu").dtype == fnx.float16
    assert x.to(fnx.tensor([1])).dtype == fnx.int64
    assert x.to(fnx.float32) is x and x.to("cpu") is x
    assert x.to("cpu", copy=True) is not x
    assert x.type_as(fnx.tensor([1])).dtype == fnx.int64
    assert x.astype(fnx.float64).dtype == fnx.float64
    assert (fnx.float, fnx.double, fnx.long, fnx.int, fnx.half) == (
        fnx.float32, fnx.float64, fnx.int64, fnx.int32, fnx.float16)
    assert fnx.get_default_dtype() == fnx.float32


def test_clone_detach_data_item():
    x = fnx.tensor([1.0, 2.0])
    c = x.clone()
    c.add_(1)
    assert x.tolist() == [1.0, 2.0] and c.tolist() == [2.0, 3.0]
    d = x.detach()
    assert d is not x and d.tolist() == [1.0, 2.0]
    assert np.shares_memory(np.asarray(d), np.asarray(x))
    assert x.data is x
    assert fnx.tensor([3.5]).item() == 3.5 and x.tolist() == [1.0, 2.0]
    assert isinstance(x.numpy(), np.ndarray)
    with pytest.raises(ValueError, match="size 1"):
        x.item()


def test_devices():
    cpu = fnx.device("cpu")
    assert repr(cpu) == "device(type='cpu')"
    x = fnx.ones(2)
    assert x.device == cpu and x.to(cpu) is x and x.to_device("cpu") is x and x.cpu() is x
    assert fnx.device_put(x, "cpu") is x
    moved = fnx.device_put({"a": x, "b": [x, 1.0]})
    assert moved["a"] is x and moved["b"][1].device == cpu
    assert x.new_zeros(2, 3).shape == (2, 3) and x.new_ones((2,)).dtype == fnx.float32
    assert x.new_full((2,), 3).tolist() == [3.0, 3.0]
    assert x.new_tensor([1, 2]).dtype == fnx.float32
    if not fnx.cuda.is_available():
        for move in (lambda: x.cuda(), lambda: x.to("cuda"), lambda: x.to("cuda:1"),
                     lambda: x.to_device(fnx.device("cuda")), lambda: fnx.device_put(x, "cuda"),
                     lambda: fnx.zeros(2, device="cuda"), lambda: fnx.tensor([1], device="cuda")):
            with pytest.raises(DeviceError, match="CUDA is not available"):
                move()


# --- in-place -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,args,ref", [
    ("add_", (2.0,), lambda a: a + 2), ("sub_", (1.0,), lambda a: a - 1),
    ("mul_", (3.0,), lambda a: a * 3), ("div_", (4.0,), lambda a: a / 4),
    ("pow_", (2,), lambda a: a ** 2), ("sqrt_", (), np.sqrt), ("exp_", (), np.exp),
    ("log_", (), np.log), ("neg_", (), np.negative), ("abs_", (), np.abs),
    ("zero_", (), np.zeros_like), ("fill_", (7.0,), lambda a: np.full_like(a, 7)),
    ("clamp_", (0.6, 1.2), lambda a: np.clip(a, 0.6, 1.2)),
    ("copy_", (fnx.tensor([9.0]),), lambda a: np.full_like(a, 9)),
    ("sigmoid_", (), lambda a: 1 / (1 + np.exp(-a))), ("tanh_", (), np.tanh),
])
def test_inplace_returns_self(name, args, ref):
    xn = np.array([0.5, 1.0, 1.5], np.float32)
    x = fnx.tensor(xn)
    before = x
    assert getattr(x, name)(*args) is before
    close(x, ref(xn))
    assert x.dtype == fnx.float32 and x.shape == (3,)


def test_inplace_keeps_dtype_and_aliases():
    i = fnx.tensor([1, 2, 3])
    i.mul_(2.5)  # cast back to the target's dtype
    assert i.dtype == fnx.int64 and i.tolist() == [2, 5, 7]
    x = fnx.ones(2, 3)
    v = x.view(6)
    x.add_(1)
    assert v.tolist() == [1.0] * 6  # views are values, not aliases
    with pytest.raises(ShapeError, match="add_: the result has shape \\(2, 2, 3\\)"):
        x.add_(fnx.ones(2, 1, 3))
    fnx.manual_seed(1)
    u = fnx.zeros(1000).uniform_(-2, 3)
    assert -2 <= u.min().item() and u.max().item() < 3 and abs(u.mean().item() - 0.5) < 0.2
    n = fnx.zeros(4000, dtype=fnx.float64).normal_(mean=5.0, std=2.0)
    assert n.dtype == fnx.float64 and abs(n.mean().item() - 5) < 0.2
    assert abs(n.std().item() - 2) < 0.2
    b = fnx.zeros(1000).bernoulli_(0.3)
    assert set(np.unique(np.asarray(b))) <= {0.0, 1.0} and 0.2 < b.mean().item() < 0.4


def test_inplace_inside_transforms_raises():
    def f(x):
        x.add_(1.0)
        return x.sum()

    with pytest.raises(TraceError, match="add_: in-place update of a traced array"):
        fnx.grad(f)(fnx.ones(3))
    with pytest.raises(TraceError, match="sqrt_: in-place update of a traced array"):
        fnx.vmap(lambda x: x.sqrt_())(fnx.ones((2, 3)))
    with pytest.raises(TraceError, match="zero_: in-place update of a traced array"):
        fnx.jit(lambda x: x.zero_())(fnx.ones(3))
    c = fnx.ones(3)

    def g(x):
        c.mul_(x)  # a concrete array updated with a traced value
        return x

    with pytest.raises(TraceError, match="mul_: an in-place update of a concrete array"):
        fnx.vmap(g)(fnx.ones((2, 3)))


# --- methods under transforms ---------------------------------------------------------------------


def test_methods_are_differentiable_and_batchable():
    w = fnx.tensor(arr((3, 2)))

    def loss(x):
        return (x.view(2, 3).t().mul(w).sum(dim=0) ** 2).mean()

    xn = arr((6,), seed=3)
    g = np.asarray(fnx.grad(loss)(fnx.tensor(xn)))
    wn = np.asarray(w)
    s = (xn.reshape(2, 3).T * wn).sum(0)
    want = (wn * s[None, :]).T.reshape(-1)  # d/dx mean(s**2) = 2 s w / 2
    close(g, want, rtol=1e-5)

    x12 = fnx.tensor(arr((12,), seed=4))
    f = fnx.jit(lambda x: x.view(3, 4).t().clamp(min=0).sum(dim=0).max(0).values)
    close(f(x12), np.clip(np.asarray(x12).reshape(3, 4).T, 0, None).sum(0).max(), rtol=1e-5)

    xs = fnx.tensor(arr((4, 3, 5)))
    out = fnx.vmap(lambda x: x.max(1).values + x.flatten().clamp(min=0).sum())(xs)
    xsn = np.asarray(xs)
    close(out, xsn.max(2) + np.clip(xsn, 0, None).reshape(4, -1).sum(1)[:, None], rtol=1e-5)
    assert fnx.vmap(lambda x: x.size(0) + x.numel() + 0 * x.sum())(xs).tolist() == [18.0] * 4


# --- random ---------------------------------------------------------------------------------------


def test_manual_seed_and_generators():
    fnx.manual_seed(123)
    a, b = fnx.rand(3), fnx.randn(2, 2)
    fnx.manual_seed(123)
    assert fnx.rand(3).tolist() == a.tolist() and fnx.randn(2, 2).tolist() == b.tolist()
    assert fnx.initial_seed() == 123
    g = fnx.Generator().manual_seed(7)
    x = fnx.rand(4, generator=g)
    assert fnx.rand(4, generator=fnx.Generator().manual_seed(7)).tolist() == x.tolist()
    assert fnx.rand(4, generator=g).tolist() != x.tolist()
    state = fnx.get_rng_state()
    y = fnx.randn(3)
    fnx.set_rng_state(state)
    assert fnx.randn(3).tolist() == y.tolist()


def test_random_signatures():
    assert fnx.rand(2, 3, dtype=fnx.float64).dtype == fnx.float64
    assert fnx.randn((4,)).shape == (4,) and fnx.randn(size=(2, 2)).shape == (2, 2)
    r = fnx.randint(5, (100,))
    assert r.dtype == fnx.int64 and 0 <= r.min().item() and r.max().item() < 5
    r = fnx.randint(-3, 3, size=(200,))
    assert -3 <= r.min().item() and r.max().item() < 3
    assert fnx.randint(0, 4, (3,), dtype=fnx.int32).dtype == fnx.int32
    like = fnx.randint_like(fnx.zeros(2, 2, dtype=fnx.int32), 10)
    assert like.dtype == fnx.int32 and like.shape == (2, 2)
    assert fnx.randn_like(fnx.zeros(3, dtype=fnx.float64)).dtype == fnx.float64
    assert sorted(fnx.randperm(6).tolist()) == list(range(6))
    assert fnx.normal(2.0, 0.1, (5,)).shape == (5,)
    assert set(np.asarray(fnx.bernoulli(fnx.full((50,), 0.5))).tolist()) <= {0.0, 1.0}
    with pytest.raises(DTypeError, match="rand: random floats need a floating dtype"):
        fnx.rand(2, dtype=fnx.int64)
    with pytest.raises(TypeError, match="randint: missing the size"):
        fnx.randint()


# --- linear algebra -------------------------------------------------------------------------------


def test_linalg_methods():
    a, b = fnx.tensor(arr((2, 3))), fnx.tensor(arr((3, 4), seed=1))
    close(a.mm(b), np.asarray(a) @ np.asarray(b), rtol=1e-5)
    close(fnx.mm(a, b), np.asarray(a) @ np.asarray(b), rtol=1e-5)
    close(a.matmul(b), np.asarray(a) @ np.asarray(b), rtol=1e-5)
    v = fnx.tensor(arr((3,)))
    close(a.mv(v), np.asarray(a) @ np.asarray(v), rtol=1e-5)
    close(v.dot(v), np.dot(np.asarray(v), np.asarray(v)), rtol=1e-5)
    p, q = fnx.tensor(arr((5, 2, 3))), fnx.tensor(arr((5, 3, 4)))
    close(p.bmm(q), np.asarray(p) @ np.asarray(q), rtol=1e-5)
    with pytest.raises(ShapeError, match="mm: both operands must be 2-D"):
        v.mm(b)
    with pytest.raises(ShapeError, match="bmm: expects two 3-D arrays"):
        a.bmm(b)
    with pytest.raises(ShapeError, match="dot: expects two 1-D arrays"):
        a.dot(v)


def test_array_api_methods():
    x = fnx.ones(2)
    assert x.__array_namespace__() is fnp
    assert x.to_device("cpu") is x
    assert fnp.sum(x).item() == 2.0


def test_cat_stack_variants():
    x, y = fnx.ones(2, 3), fnx.zeros(2, 3, dtype=fnx.int64)
    c = fnx.cat((x, y), dim=1)
    assert c.shape == (2, 6) and c.dtype == fnx.float32
    assert fnx.concat([x, x], axis=0).shape == (4, 3)
    assert fnx.concatenate([x, x], -1).shape == (2, 6)
    assert fnx.stack([x, x], dim=2).shape == (2, 3, 2)
    assert fnx.hstack([fnx.ones(2), fnx.ones(3)]).shape == (5,)
    assert fnx.vstack([fnx.ones(3), fnx.ones(2, 3)]).shape == (3, 3)
    with pytest.raises(ShapeError):
        fnx.stack([fnx.ones(2), fnx.ones(3)])


# --- documentation --------------------------------------------------------------------------------


@pytest.mark.parametrize("module", ["fnx._torch_api", "fnx.numpy._methods"])
def test_docstring_examples(module):
    import doctest
    import importlib

    mod = importlib.import_module(module)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = finder.find(mod, globs={"fnx": fnx, "np": np})
    assert sum(len(t.examples) for t in tests) >= 3
    for t in tests:
        runner.run(t)
    assert runner.failures == 0


def test_float_power_computes_in_double_precision_like_torch():
    x = fnx.tensor([2, 3])
    out = fnx.float_power(x, 2)
    assert out.dtype == np.float64 and out.tolist() == [4.0, 9.0]
    assert fnx.tensor([4.0], dtype=fnx.float32).float_power(fnx.tensor([0.5])).dtype == np.float64
    assert fnx.tensor([1.0]).float_power(2j).dtype == np.complex128


def test_tensor_split_and_h_v_dsplit_as_torch():
    """torch.tensor_split: n nearly equal sections (the first size % n one longer) or the
    pieces between indices (clipped, negative from the end), sections as an int, a list or an
    integer tensor; hsplit/vsplit/dsplit split dim 1 (0 for 1-D), 0 and 2."""
    x = fnx.arange(14).view(2, 7)
    assert [p.shape for p in x.tensor_split(3, dim=1)] == [(2, 3), (2, 2), (2, 2)]
    assert [p.tolist() for p in fnx.tensor_split(fnx.arange(7), [-2, 100])] == \
        [[0, 1, 2, 3, 4], [5, 6], []]
    assert [p.shape for p in x.tensor_split(fnx.tensor([1, 5]), 1)] == [(2, 1), (2, 4), (2, 2)]
    assert [p.shape for p in x.tensor_split(fnx.tensor(2))] == [(1, 7), (1, 7)]
    with pytest.raises(ValueError, match="greater than 0"):
        x.tensor_split(0)
    with pytest.raises(TypeError):
        x.tensor_split(fnx.tensor([1.5]))
    assert [p.shape for p in fnx.hsplit(fnx.ones(2, 4), 2)] == [(2, 2)] * 2
    assert [p.shape for p in fnx.hsplit(fnx.ones(6), [2])] == [(2,), (4,)]
    assert [p.shape for p in fnx.ones(4, 3).vsplit([1, 3])] == [(1, 3), (2, 3), (1, 3)]
    assert [p.shape for p in fnx.dsplit(fnx.ones(1, 2, 4), 2)] == [(1, 2, 2)] * 2
    with pytest.raises(ShapeError):
        fnx.hsplit(fnx.ones(2, 5), 2)  # an integer must divide the size, as torch
    # differentiable through the split primitive: the gradient of the pieces used
    w = fnx.tensor(np.arange(6.0), requires_grad=True)
    a, b, c = w.tensor_split(3)
    (a.sum() * 2 + c.sum()).backward()
    assert w.grad.tolist() == [2.0, 2.0, 0.0, 0.0, 1.0, 1.0]
