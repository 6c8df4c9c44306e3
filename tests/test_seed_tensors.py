"""The seed document's "Tensors" and "Moving Tensors Between Devices" sections, ported with
``torch`` renamed to ``fnx``, checked against NumPy."""

import numpy as np
import pytest

import fnx
from fnx.core.errors import DeviceError


def np_of(x):
    return np.asarray(x)


# --- Creating Tensors ---------------------------------------------------------------------------


def test_creating_tensors():
    tensor_a = fnx.tensor([1, 2, 3, 4])
    tensor_b = fnx.tensor([[1, 2], [3, 4]])
    np.testing.assert_array_equal(np_of(tensor_a), [1, 2, 3, 4])
    assert tensor_a.dtype == fnx.int64 and tensor_b.shape == (2, 2)
    np.testing.assert_array_equal(np_of(tensor_b), [[1, 2], [3, 4]])

    zeros = fnx.zeros(3, 4)
    ones = fnx.ones(2, 3)
    np.testing.assert_array_equal(np_of(zeros), np.zeros((3, 4), np.float32))
    np.testing.assert_array_equal(np_of(ones), np.ones((2, 3), np.float32))
    assert zeros.dtype == ones.dtype == fnx.float32

    rand_uniform = fnx.rand(2, 3)
    rand_normal = fnx.randn(2, 3)
    rand_int = fnx.randint(0, 10, (3, 3))
    assert rand_uniform.shape == rand_normal.shape == (2, 3)
    assert rand_uniform.dtype == rand_normal.dtype == fnx.float32
    u = np_of(rand_uniform)
    assert ((u >= 0) & (u < 1)).all()
    assert rand_int.shape == (3, 3) and rand_int.dtype == fnx.int64
    r = np_of(rand_int)
    assert ((r >= 0) & (r < 10)).all()

    numpy_array = np.array([1, 2, 3])
    tensor_from_numpy = fnx.from_numpy(numpy_array)
    np.testing.assert_array_equal(np_of(tensor_from_numpy), numpy_array)
    assert tensor_from_numpy.dtype == numpy_array.dtype
    assert np.shares_memory(np_of(tensor_from_numpy), numpy_array)

    x = fnx.ones(2, 3)
    y = fnx.zeros_like(x)
    z = fnx.rand_like(x)
    np.testing.assert_array_equal(np_of(y), np.zeros((2, 3), np.float32))
    assert y.dtype == z.dtype == fnx.float32 and z.shape == (2, 3)
    assert ((np_of(z) >= 0) & (np_of(z) < 1)).all()

    float_tensor = fnx.tensor([1, 2, 3], dtype=fnx.float32)
    int_tensor = fnx.tensor([1.5, 2.7], dtype=fnx.int64)
    assert float_tensor.dtype == fnx.float32 and int_tensor.dtype == fnx.int64
    np.testing.assert_array_equal(np_of(float_tensor), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np_of(int_tensor), [1, 2])  # truncation, as torch


def test_random_statistics():
    fnx.manual_seed(0)
    n = fnx.randn(20000)
    assert abs(float(n.mean())) < 0.05 and abs(float(n.std()) - 1) < 0.05
    u = fnx.rand(20000)
    assert abs(float(u.mean()) - 0.5) < 0.02
    counts = np.bincount(np_of(fnx.randint(0, 10, (20000,))), minlength=10)
    assert counts.min() > 1700 and counts.max() < 2300


# --- Tensor Properties ------------------------------------------------------------------------


def test_tensor_properties():
    tensor = fnx.randn(3, 4, 5)
    assert tensor.shape == (3, 4, 5)
    assert tensor.size() == tensor.shape
    assert tensor.size() == fnx.Size([3, 4, 5])
    assert repr(tensor.size()) == "fnx.Size([3, 4, 5])"
    assert tensor.dtype == fnx.float32
    assert str(tensor.device) == "cpu" and tensor.device == fnx.device("cpu")
    assert tensor.requires_grad is False
    assert tensor.ndim == 3
    assert tensor.numel() == 60
    # the array API's int-valued x.size still works
    assert tensor.size == 60 and isinstance(tensor.size, int)
    assert tensor.size(1) == 4 and tensor.size(-1) == 5


# --- Tensor Operations ------------------------------------------------------------------------


def test_elementwise_and_inplace():
    x = fnx.tensor([1.0, 2.0, 3.0])
    y = fnx.tensor([4.0, 5.0, 6.0])
    xn, yn = np.array([1.0, 2.0, 3.0], np.float32), np.array([4.0, 5.0, 6.0], np.float32)

    addition = x + y
    subtraction = x - y
    multiplication = x * y
    division = x / y
    power = x ** 2
    for got, want in [(addition, xn + yn), (subtraction, xn - yn), (multiplication, xn * yn),
                      (division, xn / yn), (power, xn ** 2)]:
        assert got.dtype == fnx.float32
        np.testing.assert_allclose(np_of(got), want, rtol=1e-6)

    before = x
    assert x.add_(y) is x
    x.mul_(2)
    x.sqrt_()
    assert x is before
    np.testing.assert_allclose(np_of(x), np.sqrt((xn + yn) * 2), rtol=1e-6)
    assert x.dtype == fnx.float32
    # the out-of-place results computed before are values: untouched by the in-place ops
    np.testing.assert_allclose(np_of(addition), xn + yn)


def test_matrix_operations():
    a = fnx.randn(3, 4)
    b = fnx.randn(4, 5)
    an, bn = np_of(a), np_of(b)

    matmul = fnx.matmul(a, b)
    np.testing.assert_allclose(np_of(matmul), an @ bn, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np_of(a @ b), an @ bn, rtol=1e-5, atol=1e-6)
    matmul = a.mm(b)
    np.testing.assert_allclose(np_of(matmul), an @ bn, rtol=1e-5, atol=1e-6)
    transpose = a.t()
    np.testing.assert_array_equal(np_of(transpose), an.T)
    np.testing.assert_array_equal(np_of(a.T), an.T)


def test_reductions():
    tensor = fnx.randn(3, 4)
    tn = np_of(tensor)
    sum_all = tensor.sum()
    sum_dim0 = tensor.sum(dim=0)
    mean = tensor.mean()
    max_val = tensor.max()
    argmax = tensor.argmax()
    np.testing.assert_allclose(float(sum_all), tn.sum(), rtol=1e-5, atol=1e-5)
    assert sum_all.shape == () and sum_dim0.shape == (4,)
    np.testing.assert_allclose(np_of(sum_dim0), tn.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(mean), tn.mean(), rtol=1e-5, atol=1e-6)
    assert float(max_val) == tn.max()
    assert int(argmax) == tn.argmax() and argmax.dtype == fnx.int64


def test_reshaping():
    x = fnx.randn(12)
    xn = np_of(x)
    reshaped = x.view(3, 4)
    np.testing.assert_array_equal(np_of(reshaped), xn.reshape(3, 4))
    reshaped = x.reshape(3, 4)
    np.testing.assert_array_equal(np_of(reshaped), xn.reshape(3, 4))
    flattened = x.flatten()
    np.testing.assert_array_equal(np_of(flattened), xn)
    squeezed = fnx.randn(1, 3, 1).squeeze()
    assert squeezed.shape == (3,)
    unsqueezed = x.unsqueeze(0)
    assert unsqueezed.shape == (1, 12)
    np.testing.assert_array_equal(np_of(unsqueezed)[0], xn)


def test_concatenation_and_stacking():
    x = fnx.randn(2, 3)
    y = fnx.randn(2, 3)
    concatenated = fnx.cat([x, y], dim=0)
    stacked = fnx.stack([x, y], dim=0)
    assert concatenated.shape == (4, 3)
    assert stacked.shape == (2, 2, 3)
    np.testing.assert_array_equal(np_of(concatenated), np.concatenate([np_of(x), np_of(y)]))
    np.testing.assert_array_equal(np_of(stacked), np.stack([np_of(x), np_of(y)]))


# --- Moving Tensors Between Devices ---------------------------------------------------------------


def test_cuda_queries():
    assert fnx.cuda.is_available() in (True, False)
    count = fnx.cuda.device_count()
    assert isinstance(count, int) and count >= 0
    if fnx.cuda.is_available():
        assert isinstance(fnx.cuda.get_device_name(0), str)
    else:
        assert count == 0
        with pytest.raises(DeviceError, match="CUDA is not available"):
            fnx.cuda.get_device_name(0)


def test_moving_tensors():
    device = fnx.device("cuda" if fnx.cuda.is_available() else "cpu")

    tensor_gpu = fnx.randn(3, 4, device=device)
    assert tensor_gpu.device == device and tensor_gpu.shape == (3, 4)

    tensor_cpu = fnx.randn(3, 4)
    tensor_gpu = tensor_cpu.to(device)
    assert tensor_gpu.device == device
    np.testing.assert_array_equal(np_of(tensor_gpu), np_of(tensor_cpu))
    if fnx.cuda.is_available():
        tensor_gpu = tensor_cpu.cuda()  # Alternative
        assert tensor_gpu.device == fnx.device("cuda:0")
    else:
        with pytest.raises(DeviceError, match="CUDA is not available"):
            tensor_cpu.cuda()

    tensor_cpu = tensor_gpu.cpu()
    assert tensor_cpu.device == fnx.device("cpu")
    tensor_cpu = tensor_gpu.to("cpu")
    assert tensor_cpu.device == fnx.device("cpu")
    np.testing.assert_array_equal(np_of(tensor_cpu), np_of(tensor_gpu))


@pytest.mark.parametrize("index", [0, 1])
def test_multi_gpu(index):
    if fnx.cuda.device_count() > index:
        t = fnx.randn(3, 4, device=f"cuda:{index}")
        assert t.device == fnx.device(f"cuda:{index}")
        return
    if not fnx.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            fnx.randn(3, 4, device=f"cuda:{index}")
        pytest.skip("CUDA is not available (the clear DeviceError was checked)")
    with pytest.raises(DeviceError, match=f"device cuda:{index} does not exist"):
        fnx.randn(3, 4, device=f"cuda:{index}")
    pytest.skip(f"only {fnx.cuda.device_count()} GPU(s): the DeviceError was checked")
