"""fnx: a JIT-vectorizing functional deep-learning framework (JAX-style transforms,
Numba-compiled fused loops, a PyTorch-style surface).

>>> import fnx, fnx.numpy as fnp
>>> fnx.grad(lambda x: (x ** 2).sum())(fnp.asarray([1.0, 2.0])).tolist()
[2.0, 4.0]
"""

__version__ = "0.1.0"

from .core.array import Array  # noqa: F401
from .core.devices import Device as device, cuda, devices  # noqa: F401
from .core.dtypes import (  # noqa: F401
    bool_ as bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
    float16, float32, float64, complex64, complex128, set_default_dtype,
)
from . import numpy, random, tree, testing  # noqa: F401,E402
from .numpy import asarray  # noqa: F401,E402  (also torch.asarray)
from ._torch_api import *  # noqa: F401,F403,E402
from .transforms import (grad, hessian, jacfwd, jacrev, jvp, linearize, make_ir,  # noqa: F401
                         value_and_grad, vjp, vmap)
from .transforms.custom import custom_jvp, custom_vjp, checkpoint, remat, stop_gradient  # noqa: F401
from . import lax  # noqa: F401,E402
from .jit import jit  # noqa: F401,E402
from .jit.api import compile  # noqa: F401,E402,A004
from .serialization import CheckpointError, load, save  # noqa: F401,E402
from . import autograd  # noqa: F401,E402  (installs the eager tape's recorder)
from .autograd import (enable_grad, inference_mode, is_grad_enabled, no_grad,  # noqa: F401,E402
                       set_grad_enabled)


def __getattr__(name):
    # fnx.nn, fnx.optim, fnx.train, fnx.data, fnx.datasets and fnx.utils load on first use, so
    # `import fnx as torch; torch.nn.Linear` works without making every `import fnx` pay for them
    if name in ("nn", "optim", "train", "data", "datasets", "utils", "distributed"):
        import importlib

        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'fnx' has no attribute {name!r}")
