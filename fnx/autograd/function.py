"""``fnx.autograd.Function``: PyTorch's custom-gradient classes, mapped onto ``custom_vjp``
so one definition works with the eager tape and under ``fnx.grad``/``vmap``/``jit``."""

import fnx
from fnx.core.array import Array

__all__ = ["Function", "FunctionCtx"]


class FunctionCtx:
    """The ``ctx`` passed to ``forward`` and ``backward``: ``save_for_backward(*arrays)``,
    ``saved_tensors``, ``needs_input_grad``, and any attributes ``forward`` sets."""

    def __init__(self, needs_input_grad):
        self.needs_input_grad = needs_input_grad
        self.saved_tensors = ()

    def save_for_backward(self, *tensors):
        self.saved_tensors = tuple(tensors)

    def mark_non_differentiable(self, *tensors):
        del tensors  # unused: integer outputs are never differentiated in fnx

    def set_materialize_grads(self, value):
        del value  # unused: fnx always passes materialized (zero) cotangents


def _is_array(x):
    return isinstance(x, Array)  # tracers count (see fnx.Array's isinstance)


class Function:
    """Subclass with static ``forward(ctx, *args)`` and ``backward(ctx, *grad_outputs)``; call
    ``YourFunction.apply(*args)``. ``backward`` returns one gradient (or ``None``) per
    ``forward`` argument. Works eagerly (``loss.backward()``) and under fnx transforms.

    >>> class Cube(fnx.autograd.Function):
    ...     @staticmethod
    ...     def forward(ctx, x):
    ...         ctx.save_for_backward(x)
    ...         return x ** 3
    ...     @staticmethod
    ...     def backward(ctx, g):
    ...         (x,) = ctx.saved_tensors
    ...         return g * 3 * x ** 2
    >>> x = fnx.tensor(2.0, requires_grad=True); Cube.apply(x).backward(); x.grad.item()
    12.0
    >>> fnx.grad(Cube.apply)(fnx.tensor(2.0)).item()
    12.0
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("a Function subclass must define a static forward(ctx, ...)")

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise NotImplementedError("a Function subclass must define a static backward(ctx, ...)")

    @classmethod
    def apply(cls, *args):
        positions = [i for i, a in enumerate(args) if _is_array(a) and a.dtype.kind in "fc"]
        needs = tuple(i in positions and (type(args[i]) is not Array or args[i].requires_grad)
                      for i in range(len(args)))
        state = {}  # the forward's ctx, for the backward of the same pass

        def full(arrays):
            merged = list(args)
            for i, a in zip(positions, arrays, strict=True):
                merged[i] = a
            return merged

        def primal(*arrays):
            return cls.forward(FunctionCtx(needs), *full(arrays))

        def fwd(*arrays):
            ctx = FunctionCtx(needs)
            out = cls.forward(ctx, *full(arrays))
            attrs = {k: v for k, v in vars(ctx).items() if _is_array(v)}
            state["ctx"] = ctx
            return out, (ctx.saved_tensors, attrs)

        def bwd(residuals, g):
            saved, attrs = residuals
            ctx = state["ctx"]
            ctx.saved_tensors = tuple(saved)
            for k, v in attrs.items():
                setattr(ctx, k, v)
            grads = cls.backward(ctx, *(g if isinstance(g, tuple) else (g,)))
            grads = grads if isinstance(grads, tuple) else (grads,)
            if len(grads) > len(args) and all(g is None for g in grads[len(args):]):
                grads = grads[:len(args)]  # PyTorch allows trailing Nones (optional inputs)
            if len(grads) != len(args):
                raise TypeError(f"{cls.__name__}.backward returned {len(grads)} gradients, "
                                f"but forward takes {len(args)} arguments; return None for "
                                f"the ones without a gradient")
            return tuple(grads[i] for i in positions)

        custom = fnx.custom_vjp(primal)
        custom.defvjp(fwd, bwd)
        return custom(*[args[i] for i in positions])
