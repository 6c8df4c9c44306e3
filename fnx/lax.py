"""``fnx.lax``: structured control flow and primitive-level operations (JAX's ``jax.lax``).

Control flow (``cond``, ``switch``, ``while_loop``, ``fori_loop``, ``scan``, ``map``) is
traced once and staged as a single primitive, so it works under ``fnx.jit``/``fnx.make_ir``
and every transform (see ``fnx/transforms/control_flow.py`` for the primitives' params).

    >>> fnx.lax.fori_loop(0, 3, lambda i, x: x * 2.0, fnx.numpy.asarray(1.0)).item()
    8.0
"""

from .core.ops.elementwise import convert_element_type, full  # noqa: F401
from .core.ops.shape import broadcast_in_dim, iota, reshape, transpose  # noqa: F401
from .transforms.control_flow import (cond, fori_loop, map, scan, switch,  # noqa: F401,A004
                                      while_loop)
from .transforms.custom import stop_gradient  # noqa: F401


def select(pred, on_true, on_false):
    """Elementwise ``on_true if pred else on_false`` (same shapes and dtypes, bool ``pred``).

    >>> fnx.lax.select(fnx.numpy.asarray([True, False]), fnx.numpy.ones(2),
    ...                fnx.numpy.zeros(2)).tolist()
    [1.0, 0.0]
    """
    from .core.ops.elementwise import select_p

    return select_p.bind(pred, on_true, on_false)


def conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                         rhs_dilation=None, feature_group_count=1):
    """N-d convolution (cross-correlation) in PyTorch's layout: ``lhs (N, C, *spatial)``,
    ``rhs (O, C // feature_group_count, *window)``, output ``(N, O, *out_spatial)``.

    ``padding`` is one ``(lo, hi)`` pair per spatial dim (negative crops); ``lhs_dilation``
    dilates the input (transposed convolution), ``rhs_dilation`` the kernel (atrous).

    >>> x, w = fnx.numpy.ones((1, 1, 4)), fnx.numpy.ones((1, 1, 2))
    >>> fnx.lax.conv_general_dilated(x, w, (1,), ((0, 0),)).tolist()
    [[[2.0, 2.0, 2.0]]]
    """
    from .core.ops.conv import conv_general_dilated as conv

    return conv(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                feature_group_count)


__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan", "map", "stop_gradient",
           "select", "convert_element_type", "full", "broadcast_in_dim", "iota", "reshape",
           "transpose", "conv_general_dilated"]
