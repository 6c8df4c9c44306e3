"""``fnx.nn``: PyTorch-style modules on fnx's functional core (``import fnx.nn as nn``)."""

from .containers import (Flatten, Identity, ModuleDict, ModuleList, ParameterDict,
                         ParameterList, Sequential, Unflatten)
from .module import Module, Parameter, RemovableHandle, functional_call

__all__ = ["Module", "Parameter", "RemovableHandle", "functional_call", "Sequential",
           "ModuleList", "ModuleDict", "ParameterList", "ParameterDict", "Identity", "Flatten",
           "Unflatten"]
