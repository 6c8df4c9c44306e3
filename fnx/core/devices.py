"""Devices: where an array's buffer lives. CPU buffers are NumPy arrays, CUDA buffers CuPy arrays.

CuPy and numba-cuda are optional (``pip install fnx[cuda]``); without them, or without a GPU,
every CUDA request raises a DeviceError that says so.
"""

import functools

import numpy as np

from .errors import DeviceError


class Device:
    """A device, as ``torch.device``: ``fnx.device("cpu")``, ``fnx.device("cuda:0")``.

    >>> fnx.device("cpu")
    device(type='cpu')
    """

    __slots__ = ("type", "index")

    def __init__(self, type, index=None):
        if isinstance(type, Device):
            type, index = type.type, type.index
        if not isinstance(type, str):
            raise DeviceError(f"device: expected a string like 'cpu' or 'cuda:0', got {type!r}")
        if ":" in type:
            type, idx = type.split(":", 1)
            index = int(idx)
        if type not in ("cpu", "cuda"):
            raise DeviceError(f"device: unknown device type {type!r}; use 'cpu' or 'cuda'")
        if type == "cuda" and index is None:
            index = 0
        self.type = type
        self.index = index

    def __eq__(self, other):
        if isinstance(other, str):
            other = Device(other)
        return isinstance(other, Device) and (self.type, self.index) == (other.type, other.index)

    def __hash__(self):
        return hash((self.type, self.index))

    def __str__(self):
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self):
        if self.index is None:
            return f"device(type='{self.type}')"
        return f"device(type='{self.type}', index={self.index})"


CPU = Device("cpu")


@functools.cache
def _cupy():
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:  # no cupy, no driver or no device: all mean "no CUDA"
        return None


class cuda:
    """``fnx.cuda``: CUDA availability queries, as ``torch.cuda``."""

    @staticmethod
    def is_available():
        """True when CuPy is installed and a CUDA GPU is visible.

        >>> fnx.cuda.is_available() in (True, False)
        True
        """
        return _cupy() is not None

    @staticmethod
    def device_count():
        cp = _cupy()
        return 0 if cp is None else cp.cuda.runtime.getDeviceCount()

    @staticmethod
    def get_device_name(index=0):
        cp = _cupy()
        if cp is None:
            raise DeviceError(_NO_CUDA)
        return cp.cuda.runtime.getDeviceProperties(index)["name"].decode()


_NO_CUDA = (
    "CUDA is not available: fnx needs CuPy and a visible NVIDIA GPU "
    "(pip install 'fnx[cuda]'); use fnx.cuda.is_available() to choose the device"
)


def cupy_module():
    """The cupy module, or a DeviceError explaining why CUDA cannot be used."""
    cp = _cupy()
    if cp is None:
        raise DeviceError(_NO_CUDA)
    return cp


def devices(kind=None):
    """The devices fnx can use: the CPU, then every CUDA GPU.

    >>> fnx.devices()[0]
    device(type='cpu')
    """
    out = [CPU] + [Device("cuda", i) for i in range(cuda.device_count())]
    return [d for d in out if kind is None or d.type == kind]


def as_device(spec):
    return spec if isinstance(spec, Device) else Device(spec)


def device_of_buffer(buf):
    if isinstance(buf, np.ndarray):
        return CPU
    return Device("cuda", buf.device.id)


def array_module(buf):
    """numpy for CPU buffers, cupy for CUDA buffers."""
    return np if isinstance(buf, np.ndarray) else cupy_module()


def put_buffer(buf, device):
    """Copy ``buf`` to ``device`` (a no-op when it is already there)."""
    device = as_device(device)
    if device.type == "cpu":
        return buf if isinstance(buf, np.ndarray) else buf.get()
    cp = cupy_module()
    if device.index >= cp.cuda.runtime.getDeviceCount():
        raise DeviceError(f"device {device} does not exist; fnx.cuda.device_count() is "
                          f"{cp.cuda.runtime.getDeviceCount()}")
    with cp.cuda.Device(device.index):
        return cp.asarray(buf)


def _scalar_like(buf):
    # Python scalars become 0-d host arrays and fnp.full broadcasts them with zero strides:
    # such constants follow the device of the other operands, as uncommitted arrays in JAX.
    return isinstance(buf, np.ndarray) and (buf.size <= 1 or not any(buf.strides))


def _scalar_to_gpu(cp, buf):
    if buf.size == 0:
        return cp.empty(buf.shape, buf.dtype)
    return cp.broadcast_to(cp.asarray(buf.reshape(-1)[:1].reshape(())), buf.shape)


def unify_devices(op, bufs):
    """``bufs`` on one device: host scalar constants move to the GPU of the other operands;
    any other mix raises a DeviceError naming ``op``."""
    devs = {device_of_buffer(b) for b in bufs if not _scalar_like(b)}
    if len(devs) == 1:
        (dev,) = devs
        if dev.type == "cuda":
            cp = cupy_module()
            with cp.cuda.Device(dev.index):
                return [_scalar_to_gpu(cp, b) if _scalar_like(b) else b for b in bufs]
        return bufs
    if len(devs) > 1:
        names = ", ".join(sorted(map(str, devs)))
        raise DeviceError(
            f"{op}: arguments are on different devices ({names}); move them to one device "
            "first with x.to(device) or fnx.device_put(x, device)"
        )
    return bufs
