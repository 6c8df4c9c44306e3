"""``fnx.numpy``: the Python array API standard (2023.12) plus the NumPy functions deep-learning
code uses, every one written in fnx primitives (so differentiable, batchable and compilable).

>>> import fnx.numpy as fnp
>>> fnp.sum(fnp.arange(4.0) ** 2).item()
14.0
"""

from ..core import dtypes as _dt
from ._core import to_array as _to_array  # noqa: F401
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

bool = _dt.bool_  # noqa: A001
bool_ = _dt.bool_
int8, int16, int32, int64 = _dt.int8, _dt.int16, _dt.int32, _dt.int64
uint8, uint16, uint32, uint64 = _dt.uint8, _dt.uint16, _dt.uint32, _dt.uint64
float16, float32, float64 = _dt.float16, _dt.float32, _dt.float64
complex64, complex128 = _dt.complex64, _dt.complex128

import math as _math  # noqa: E402

e, pi, inf, nan, newaxis = _math.e, _math.pi, float("inf"), float("nan"), None
__array_api_version__ = "2023.12"
