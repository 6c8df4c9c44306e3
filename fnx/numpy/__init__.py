"""``fnx.numpy``: the Python array API standard (2023.12) plus the NumPy functions deep-learning
code uses, every one written in fnx primitives (so differentiable, batchable and compilable).

>>> import fnx.numpy as fnp
>>> fnp.sum(fnp.arange(4.0) ** 2).item()
14.0
"""

from ..core import dtypes as _dt
from ._core import to_array as _to_array  # noqa: F401
from ._creation import asarray as _asarray
from ._creation import *  # noqa: F401,F403
from ._elementwise import *  # noqa: F401,F403
from ._extra import *  # noqa: F401,F403
from ._fft import fft_namespace as fft  # noqa: F401
from ._indexing import _IndexUpdateHelper, _getitem  # noqa: F401
from ._info import __array_namespace_info__  # noqa: F401
from ._linalg import *  # noqa: F401,F403
from ._linalg import linalg  # noqa: F401
from ._manipulation import *  # noqa: F401,F403
from . import _methods  # noqa: F401  (sets the Array methods on ArrayOps)
from ._searching_sorting import *  # noqa: F401,F403
from ._set import *  # noqa: F401,F403
from ._statistical import *  # noqa: F401,F403
from ._utility import *  # noqa: F401,F403


class _ScalarType(type):
    """The type of fnx.numpy's dtype names (JAX's ``_ScalarMeta``): calling one makes an array
    of its dtype (strong, not weak; a traced value is converted), as ``jnp.float32(3)`` does,
    and the name still stands for the dtype wherever one is accepted: ``np.dtype`` reads its
    ``dtype`` attribute, it equals and hashes as that dtype (also as a dict key and in sets)
    and has the dtype's attributes (``kind``, ``itemsize``, ``name``, ...). ``fnx.float32``
    (the PyTorch-style name) stays a plain dtype and is not callable, as ``torch.float32``.

    >>> fnp.float32(3)
    Array(3., dtype=float32)
    >>> fnp.int8([1.7, -2.5]).tolist(), fnp.zeros(2, fnp.int8).dtype == fnp.int8
    ([1, -2], True)
    >>> np.dtype(fnp.float16), fnp.float16.itemsize, fnp.float16 == np.float16
    (dtype('float16'), 2, True)
    """

    def __call__(cls, x):
        return _asarray(x, dtype=cls.dtype)

    def __eq__(cls, other):
        return cls.dtype == other

    def __hash__(cls):
        return hash(cls.dtype)

    def __getattr__(cls, name):
        # not ``shape``/``ndim``: code that tells arrays by those must not take a dtype name
        if name in ("kind", "itemsize", "name", "char", "str", "num", "type", "byteorder",
                    "alignment", "descr", "isbuiltin", "isnative", "newbyteorder"):
            return getattr(cls.dtype, name)
        raise AttributeError(f"type object '{cls.__name__}' has no attribute '{name}'")


def _scalar_type(dtype):
    doc = f"The dtype {dtype.name}; ``fnx.numpy.{dtype.name}(x)`` is ``x`` as an array of it."
    return _ScalarType(dtype.name, (), {"dtype": dtype, "__module__": __name__, "__doc__": doc})


bool = bool_ = _scalar_type(_dt.bool_)  # noqa: A001
int8, int16, int32, int64 = map(_scalar_type, (_dt.int8, _dt.int16, _dt.int32, _dt.int64))
uint8, uint16, uint32, uint64 = map(_scalar_type, (_dt.uint8, _dt.uint16, _dt.uint32,
                                                   _dt.uint64))
float16, float32, float64 = map(_scalar_type, (_dt.float16, _dt.float32, _dt.float64))
complex64, complex128 = map(_scalar_type, (_dt.complex64, _dt.complex128))

import math as _math  # noqa: E402

e, pi, inf, nan, newaxis = _math.e, _math.pi, float("inf"), float("nan"), None
__array_api_version__ = "2023.12"
