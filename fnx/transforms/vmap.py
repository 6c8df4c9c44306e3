"""Vectorizing map: ``BatchTrace`` carries (value, batch_dim) pairs through each primitive's
``batch`` rule. ``batch_dim`` None means the value is the same for every example."""

from ..core.abstract import ShapedArray
from ..core.errors import BatchingError, TraceError
from ..core.ops.shape import broadcast_batched, move_axis
from ..core.tracing import Trace, Tracer, full_lower, full_raise, get_aval, new_main


class BatchTracer(Tracer):
    __slots__ = ("val", "batch_dim")

    def __init__(self, trace, val, batch_dim):
        self._trace, self.val, self.batch_dim = trace, val, batch_dim

    @property
    def aval(self):
        aval = get_aval(self.val)
        if self.batch_dim is None:
            return aval
        shape = aval.shape[:self.batch_dim] + aval.shape[self.batch_dim + 1:]
        return aval.update(shape=shape)

    def full_lower(self):
        return full_lower(self.val) if self.batch_dim is None else self

    def concrete_value(self):
        if self.batch_dim is None:
            return self.val.concrete_value()
        raise BatchingError(
            f"A value batched by fnx.vmap ({self.aval.str_short()} per example) was used where "
            f"a single Python value is needed (if/while/bool()/int()). Each example may take a "
            f"different branch: select with fnp.where(cond, a, b), or use fnx.lax.cond / "
            f"fnx.lax.while_loop, which batch."
        )


class BatchTrace(Trace):
    def pure(self, val):
        return BatchTracer(self, val, None)

    lift = pure

    @property
    def axis_size(self):
        return self.main.global_data

    def process_primitive(self, primitive, tracers, params):
        vals = [t.val for t in tracers]
        dims = [t.batch_dim for t in tracers]
        if all(d is None for d in dims):
            out = primitive.bind(*vals, **params)
            return [self.pure(o) for o in out] if primitive.multiple_results else self.pure(out)
        if primitive.batch is None:
            raise TraceError(f"{primitive.name} has no batching rule, so it cannot be vmapped")
        out, out_dims = primitive.batch(self.axis_size, vals, dims, **params)
        if primitive.multiple_results:
            return [BatchTracer(self, o, d) for o, d in zip(out, out_dims, strict=True)]
        return BatchTracer(self, out, out_dims)


def move_batch_axis(axis_size, src, dst, x):
    """Move (or create, by broadcasting) the batch axis of ``x`` from ``src`` to ``dst``."""
    if dst is None:
        if src is not None:
            raise ValueError("vmap: out_axes=None for an output that depends on the mapped axis")
        return x
    if src is None:
        x = broadcast_batched(x, axis_size)
        src = 0
    return move_axis(x, src, dst)


def vmap_flat(f, in_axes, axis_size, args):
    with new_main(BatchTrace, axis_size) as main:
        trace = BatchTrace(main)
        tracers_in = [BatchTracer(trace, x, ax) if ax is not None else x
                      for x, ax in zip(args, in_axes, strict=True)]
        outs = f(*tracers_in)
        tracers_out = [full_raise(trace, out) for out in outs]
        vals_out = [t.val for t in tracers_out]
        dims_out = [t.batch_dim for t in tracers_out]
    return vals_out, dims_out
