"""Transforms: jvp, linearize, vjp, grad, jacobians, vmap, make_ir, custom rules, control flow."""

from .api import (grad, hessian, jacfwd, jacrev, jvp, linearize, make_ir, value_and_grad,  # noqa: F401
                  vjp, vmap)
