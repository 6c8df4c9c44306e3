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


__all__ = ["cond", "switch", "while_loop", "fori_loop", "scan", "map", "stop_gradient",
           "select", "convert_element_type", "full", "broadcast_in_dim", "iota", "reshape",
           "transpose"]
