"""Primitive: one object per primitive op, carrying every rule side by side (R1 of docs/architecture).

A primitive's module section sets, on the one ``Primitive`` object:

* ``impl(*buffers, **params)``: eager evaluation on NumPy (CPU) or CuPy (CUDA) buffers;
* ``abstract_eval(*avals, **params)``: the shape/dtype rule, raising fnx errors on bad input;
* ``jvp(primals, tangents, **params)``: forward derivative written with ``bind`` only
  (tangents may be the symbolic ``Zero``); linear primitives set ``linear=True`` instead;
* ``transpose(cts, *args, **params)``: for primitives that can appear in linearized programs;
* ``batch(axis_size, args, dims, **params)``: the vmap rule;
* ``fusion_kind`` and ``scalar_expr`` / ``reducer``: how jit lowers it into fused loops.

Transforms look rules up on the primitive and never keep tables of their own.
"""

PRIMITIVES = {}


class Primitive:
    """A primitive operation. Positional arguments are arrays, params are hashable keywords.

    >>> from fnx.core.ops.elementwise import tanh_p
    >>> tanh_p.bind(fnx.asarray([0.0]))
    Array([0.], dtype=float32)
    """

    def __init__(self, name, *, multiple_results=False):
        if name in PRIMITIVES:
            raise ValueError(f"primitive {name!r} defined twice")
        PRIMITIVES[name] = self
        self.name = name
        self.multiple_results = multiple_results
        self.impl = None
        self.abstract_eval = None
        self.jvp = None
        self.linear = False
        self.transpose = None
        self.batch = None
        # Integer/bool-valued primitives (argmax, comparisons, iota, ...) have zero tangents.
        self.differentiable = True
        # Higher-order primitives (jit, cond, scan, custom rules) add partial-evaluation rules.
        self.partial_eval = None
        # jit lowering: 'elementwise' | 'reduce' | 'layout' | 'opaque' (+ scalar_expr/reducer).
        self.fusion_kind = "opaque"
        self.scalar_expr = None
        self.reducer = None
        self.lower = None

    def bind(self, *args, **params):
        """Apply the primitive (``fnx.core.tracing`` replaces this with the real ``bind``)."""
        raise NotImplementedError

    def __repr__(self):
        return self.name

from . import tracing as _tracing  # noqa: E402,F401  (installs Primitive.bind)
