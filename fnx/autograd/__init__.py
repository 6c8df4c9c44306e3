"""``fnx.autograd``: PyTorch's eager autograd (``requires_grad``, ``loss.backward()``,
``autograd.grad``, grad modes) on fnx's one source of derivatives, the primitives' rules.

>>> x = fnx.tensor([1.0, 2.0, 3.0], requires_grad=True)
>>> loss = (x ** 2).sum(); loss.backward(); x.grad.tolist()
[2.0, 4.0, 6.0]
"""

from .function import Function, FunctionCtx
from .tape import (Node, backward, enable_grad, grad, inference_mode, is_grad_enabled,
                   no_grad, register_hook, set_grad_enabled)

__all__ = ["Function", "FunctionCtx", "Node", "backward", "grad", "no_grad", "enable_grad", "inference_mode",
           "set_grad_enabled", "is_grad_enabled", "register_hook"]
