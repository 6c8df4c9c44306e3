"""Primitive: one object per primitive op, carrying every rule side by side (R1 of docs/architecture).

A primitive's module section sets, on the one ``Primitive`` object:

* ``impl(*buffers, **params)``: eager evaluation on NumPy (CPU) or CuPy (CUDA) buffers;
* ``abstract_eval(*avals, **params)``: the shape/dtype rule, raising fnx errors on bad input;
* ``jvp(primals, tangents, **params)``: forward derivative written with ``bind`` only
  (tangents may be the symbolic ``Zero``); linear primitives set ``linear=True`` instead;
* ``transpose(cts, *args, **params)``: for primitives that can appear in linearized programs;
* ``batch(axis_size, args, dims, **params)``: the vmap rule;
* ``fusion_kind`` and ``scalar_expr`` / ``reducer``: how jit lowers it into fused loops;
  ``call_kind`` / ``call_program`` / ``lower``: how jit runs it outside fused loops.

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
        # The dtype kinds ('biufc' letters) the first operand may have, when the rule allows
        # fewer than NumPy's impl accepts: eager calls check them so they raise the rule's
        # DTypeError too (one test in eval_impl, no wrapper frame per call).
        self.dtype_kinds = None
        # Higher-order primitives (jit, cond, scan, custom rules) add partial-evaluation rules.
        self.partial_eval = None
        # jit lowering (docs/architecture.md): 'elementwise' | 'reduce' | 'layout' | 'opaque'
        # (+ scalar_expr / reducer for the fused kinds).
        self.fusion_kind = "opaque"
        self.scalar_expr = None
        self.reducer = None
        # How jit's orchestrator runs an equation outside fused loops: 'impl' (its eager impl,
        # on purpose), 'view' (its impl returns a view of the input, no copy) or 'blas' (a
        # matrix product: np.matmul / cuBLAS). None: fused kinds run their impl where they
        # cannot fuse (complex, float16), other primitives warn once that they fell back.
        self.call_kind = None
        # Whether the impl's results are always new arrays sharing no memory with its operands
        # (or each other): jit's orchestrator may then store a kernel's output into one once
        # it is dead (buffer donation, ``Executable._buffer_lives``). False: unknown.
        self.fresh_results = False
        # Higher-order primitives that call one program: the name of the param holding it
        # (jit splices it into the caller or compiles it).
        self.call_program = None
        # ``lower(eqn) -> callable(*buffers)``: a compiled lowering the CPU orchestrator runs
        # instead of ``impl`` (cond/while/scan: fnx/jit/control_flow.py).
        self.lower = None
        # Weak types (docs/transforms.md): an output is weakly typed iff every input is, unless
        # ``weak_type_rule(weak_in, **params)`` (``weak_in``: one bool per input) says otherwise,
        # returning a bool for every output or a list with one per output (explicit
        # conversions; higher-order primitives, whose outputs follow their programs).
        self.weak_type_rule = None

    def weak_outputs(self, weak_in, params):
        """Whether the outputs are weakly typed: one bool for all of them, or a list."""
        if self.weak_type_rule is not None:
            return self.weak_type_rule(weak_in, **params)
        return bool(weak_in) and all(weak_in)

    def out_avals(self, avals, params):
        """``abstract_eval`` with the weak types of the outputs filled in: what staging,
        partial evaluation and ``typecheck`` use, so every transform types outputs alike."""
        out = self.abstract_eval(*avals, **params)
        weak = self.weak_outputs([a.weak_type for a in avals], params)
        if not self.multiple_results:
            return out if out.weak_type == weak else out.update(weak_type=weak)
        flags = weak if isinstance(weak, (list, tuple)) else [weak] * len(out)
        return [a if a.weak_type == w else a.update(weak_type=w)
                for a, w in zip(out, flags, strict=True)]

    def bind(self, *args, **params):
        """Apply the primitive (``fnx.core.tracing`` replaces this with the real ``bind``)."""
        raise NotImplementedError

    def __repr__(self):
        return self.name

from . import tracing as _tracing  # noqa: E402,F401  (installs Primitive.bind)
