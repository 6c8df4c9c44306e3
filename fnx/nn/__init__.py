"""``fnx.nn``: neural-network building blocks with PyTorch's names (``torch.nn``).

``fnx.nn.Module`` and ``fnx.nn.Parameter`` carry PyTorch's stateful contract and are pytrees
(so ``fnx.grad``/``vmap``/``jit`` take modules); ``fnx.nn.functional`` holds the stateless
functions every layer calls (``import fnx.nn.functional as F``), ``fnx.nn.init`` the in-place
initializers.

>>> import fnx.nn.functional as F
>>> F.relu(fnx.tensor([-1.0, 2.0])).tolist()
[0.0, 2.0]
"""

from . import functional, init
from .containers import (Flatten, Identity, ModuleDict, ModuleList, ParameterDict,
                         ParameterList, Sequential, Unflatten)
from .module import Module, Parameter, RemovableHandle, functional_call

__all__ = ["functional", "init", "Module", "Parameter", "RemovableHandle", "functional_call",
           "Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
           "Identity", "Flatten", "Unflatten"]
