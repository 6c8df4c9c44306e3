"""Forward-mode differentiation: ``JVPTrace`` carries (primal, tangent) pairs through
each primitive's ``jvp`` rule. Tangents may be the symbolic ``Zero``."""

from ..core.abstract import ShapedArray
from ..core.ad_util import Zero, instantiate
from ..core.errors import TraceError
from ..core.tracing import Trace, Tracer, get_aval, new_main


class JVPTracer(Tracer):
    __slots__ = ("primal", "tangent")

    def __init__(self, trace, primal, tangent):
        self._trace = trace
        self.primal = primal
        self.tangent = tangent

    @property
    def aval(self):
        return get_aval(self.primal)

    def primal_value(self):
        return self.primal

    def concrete_value(self):
        # Python control flow on a primal under grad works when the primal is concrete.
        return self.primal.concrete_value()

    def concrete_device(self):
        return self.primal.device


class JVPTrace(Trace):
    def pure(self, val):
        aval = get_aval(val)
        return JVPTracer(self, val, Zero(ShapedArray(aval.shape, aval.dtype)))

    lift = pure

    def process_primitive(self, primitive, tracers, params):
        primals = [t.primal for t in tracers]
        tangents = [t.tangent for t in tracers]
        if not primitive.differentiable or all(type(t) is Zero for t in tangents):
            out = primitive.bind(*primals, **params)
            if primitive.multiple_results:
                return [self.pure(o) for o in out]
            return self.pure(out)
        if primitive.jvp is None:
            raise TraceError(
                f"{primitive.name} has no JVP rule, so it cannot be differentiated; "
                f"wrap the computation in fnx.custom_jvp / fnx.custom_vjp or stop_gradient it"
            )
        primal_out, tangent_out = primitive.jvp(primals, tangents, **params)
        if primitive.multiple_results:
            return [JVPTracer(self, p, t) for p, t in zip(primal_out, tangent_out, strict=True)]
        return JVPTracer(self, primal_out, tangent_out)


def check_tangent(x, t):
    xa, ta = get_aval(x), get_aval(t)
    if xa.shape != ta.shape:
        raise ValueError(f"jvp: primal shape {xa.shape} and tangent shape {ta.shape} differ")
    if xa.dtype.kind in "fc" and ta.dtype != xa.dtype:
        raise TypeError(f"jvp: primal dtype {xa.dtype} and tangent dtype {ta.dtype} differ")


def jvp_flat(f, primals, tangents, instantiate_zeros=True):
    """Push ``tangents`` forward through ``f`` (flat lists in and out)."""
    with new_main(JVPTrace) as main:
        trace = JVPTrace(main)
        tracers_in = []
        for x, t in zip(primals, tangents, strict=True):
            aval = get_aval(x)
            if type(t) is not Zero and aval.dtype.kind not in "fc":
                t = Zero(ShapedArray(aval.shape, aval.dtype))  # integers have no tangent
            tracers_in.append(JVPTracer(trace, x, t))
        outs = f(*tracers_in)
        primals_out, tangents_out = [], []
        for out in outs:
            from ..core.tracing import full_raise

            t = full_raise(trace, out)
            primals_out.append(t.primal)
            tangents_out.append(instantiate(t.tangent) if instantiate_zeros else t.tangent)
    return primals_out, tangents_out
