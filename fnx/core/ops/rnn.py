"""Recurrences: one layer and direction of an LSTM, GRU or Elman RNN over all time steps, as
three primitives with every rule side by side.

``recurrence(x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr, mask, mode=, reverse=, batch_first=)``
runs the recurrence over the inputs ``x (T, B, I)`` of every step (``batch_first``: ``x`` and
the output ``ys`` are ``(B, T, .)``, as a batch-first layer has them: no transposed copies
around the primitive; everything else stays time-major) from ``h0 (B, P)`` (and the LSTM's
``c0 (B, H)``), with ``w_ih (G, I)``, ``b_ih (G,)``, ``w_hh (G, P)``, ``b_hh (G,)``, the LSTM's
projection ``w_hr (P, H)`` (``proj_size``) and a packed batch's ``mask (T, B)`` (1 on valid
steps: a row keeps its state through its padding, where its output is 0). Gate order and
equations are PyTorch's (LSTM ``i, f, g, o``; GRU ``r, z, n`` with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``). The input projection
``gi = x W_ih^T + b_ih`` lives inside the primitive (the kernels multiply each step's
``[x_t | h | 1]`` by both weights and biases in one product), so that the backward computes
both weight gradients as one GEMM over the saved ``[x | h_prev | 1]`` rows (where ``dgi`` is
the gradient of both products: all modes but the GRU).

* ``rnn_p(*args)``: the outputs ``ys (T, B, P)``, ``h_T`` (and ``c_T``), then the residuals the
  backward needs (gate activations, each step's input and the states it starts from). Its
  impl is one compiled loop over time (``fnx/jit/kernels/rnn.py``: per step one BLAS product
  and the gate math fused); non-NumPy buffers (CuPy) run the scan composition below.
* ``rnn_lin_p(*args, *residuals, *tangents)``: the tangent of the outputs, linear in the
  tangents of every argument but the mask. Its transpose is ``rnn_bwd_p`` (and ``dgi W_ih``
  for ``x``, only where ``x`` needs a cotangent); evaluated (forward mode) it differentiates
  the composition.
* ``rnn_bwd_p(*args, *residuals, *cts)``: the fast backward: ``dgi`` (the gradient of the
  input projection, for ``x``'s cotangent ``dgi W_ih``) and the cotangents of the other
  arguments: one reverse compiled loop (the gradients of every step's pre-activation gates,
  and of the initial state through ``W_hh``), then ``dW_ih``, ``dW_hh`` (one GEMM),
  ``db_ih``, ``db_hh`` (and ``dW_hr``) over all steps and rows.

The residuals are functions of the arguments that only ``rnn_lin_p`` and ``rnn_bwd_p``
consume, so their tangents are defined as zero and the derivative rules of those two
(higher-order derivatives) differentiate the scan composition of the arguments alone.
Batching folds the vmapped axis into the batch axis when the weights are unbatched (rows
are independent); with batched weights, and for ``rnn_bwd_p`` (whose weight gradients are
per example), it runs the primitive once per example.
"""

import collections
import threading
import weakref

import numpy as np

from .. import blas
from ..abstract import ShapedArray
from ..ad_util import Zero, instantiate, is_undefined
from ..errors import DTypeError, ShapeError
from ..primitive import Primitive
from .indexing import checked

__all__ = ["recurrence", "rnn_p", "rnn_lin_p", "rnn_bwd_p"]

MODES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}  # gates per hidden unit


def _aval(x):
    from ..tracing import get_aval

    return get_aval(x)


# --- argument layout ------------------------------------------------------------------------
# Each name's batch axis (None: shared by all rows, i.e. a weight); with batch_first, x and
# ys (and its cotangent) have it first.
_BATCH_AXIS = {"x": 1, "w_ih": None, "b_ih": None, "h0": 0, "c0": 0, "w_hh": None,
               "b_hh": None, "w_hr": None, "mask": 1,
               "ys": 1, "h": 0, "c": 0, "acts": 1, "xh": 1, "cprev": 1, "hu": 1,
               "dgi": 1, "dw_ih": None, "db_ih": None, "dh0": 0, "dc0": 0, "dw_hh": None,
               "db_hh": None, "dw_hr": None}


def _batch_axis(name, params):
    if params["batch_first"] and name in ("x", "ys"):
        return 0
    return _BATCH_AXIS[name]


def _arg_names(mode, proj, masked):
    lstm = mode == "LSTM"
    return (("x", "w_ih", "b_ih", "h0") + (("c0",) if lstm else ()) + ("w_hh", "b_hh")
            + (("w_hr",) if proj else ()) + (("mask",) if masked else ()))


def _diff_names(mode, proj):
    """The arguments with tangents (all but the mask)."""
    return _arg_names(mode, proj, False)


def _out_names(mode):
    return ("ys", "h", "c") if mode == "LSTM" else ("ys", "h")


def _res_names(mode, proj):
    if mode == "LSTM":
        return ("acts", "xh", "cprev") + (("hu",) if proj else ())
    return ("acts", "xh")


def _bwd_out_names(mode, proj):
    return (("dgi", "dw_ih", "db_ih", "dh0") + (("dc0",) if mode == "LSTM" else ())
            + ("dw_hh", "db_hh")
            + (("dw_hr",) if proj else ()))


def _split(values, *groups):
    out, i = [], 0
    for names in groups:
        out.append(dict(zip(names, values[i:i + len(names)], strict=True)))
        i += len(names)
    if i != len(values):
        raise ShapeError(f"rnn: expected {i} operands, got {len(values)}")
    return out


# --- shape rule ---------------------------------------------------------------------------------


def _dims(a, mode, proj, batch_first):
    """``(T, B, G, H, P, I)`` from the argument avals, checking every shape and dtype."""
    x, w_hh = a["x"], a["w_hh"]
    where = ", ".join(f"{k} {tuple(v.shape)}" for k, v in a.items())
    if x.ndim != 3 or w_hh.ndim != 2:
        layout = "(B, T, I)" if batch_first else "(T, B, I)"
        raise ShapeError(f"rnn ({mode}): expected x {layout} and w_hh (G, P), got {where}")
    B, T, I = x.shape if batch_first else (x.shape[1], x.shape[0], x.shape[2])
    G = w_hh.shape[0]
    if G % MODES[mode]:
        raise ShapeError(f"rnn ({mode}): w_hh's rows must be {MODES[mode]} * hidden_size, "
                         f"got {where}")
    H, P = G // MODES[mode], w_hh.shape[1]
    want = {"w_ih": (G, I), "b_ih": (G,), "h0": (B, P), "c0": (B, H), "b_hh": (G,),
            "w_hr": (P, H), "mask": (T, B)}
    if not proj and P != H:
        raise ShapeError(f"rnn ({mode}): w_hh must be (G, hidden_size) without a projection, "
                         f"got {where}")
    for name, shape in want.items():
        if name in a and tuple(a[name].shape) != shape:
            raise ShapeError(f"rnn ({mode}): expected {name} of shape {shape}, got {where}")
    if x.dtype.kind != "f":
        raise DTypeError(f"rnn ({mode}): x must have a floating dtype, got {x.dtype}; "
                         f"convert it with .astype(w_ih's dtype)")
    for name, v in a.items():
        if v.dtype != x.dtype:
            raise DTypeError(f"rnn ({mode}): every operand must have x's floating dtype "
                             f"{x.dtype}, got {name} {v.dtype}")
    return T, B, G, H, P, I


def _shapes(dims, names, mode, batch_first):
    T, B, G, H, P, I = dims
    acts = 4 * H if mode != "RNN_TANH" and mode != "RNN_RELU" else H
    table = {"ys": (B, T, P) if batch_first else (T, B, P), "h": (B, P), "c": (B, H),
             "acts": (T, B, acts), "xh": (T, B, I + P + 1), "cprev": (T, B, H), "hu": (T, B, H),
             "dgi": (T, B, G), "dw_ih": (G, I), "db_ih": (G,), "dh0": (B, P), "dc0": (B, H),
             "dw_hh": (G, P), "db_hh": (G,), "dw_hr": (P, H)}
    return [table[n] for n in names]


def _rnn_abstract_eval(*avals, mode, reverse, proj, masked, batch_first):
    del reverse  # unused
    (a,) = _split(avals, _arg_names(mode, proj, masked))
    dims = _dims(a, mode, proj, batch_first)
    names = _out_names(mode) + _res_names(mode, proj)
    return [ShapedArray(s, a["x"].dtype) for s in _shapes(dims, names, mode, batch_first)]


def _lin_abstract_eval(*avals, mode, reverse, proj, masked, batch_first):
    del reverse  # unused
    a, _, _ = _split(avals, _arg_names(mode, proj, masked), _res_names(mode, proj),
                     _diff_names(mode, proj))
    dims = _dims(a, mode, proj, batch_first)
    return [ShapedArray(s, a["x"].dtype)
            for s in _shapes(dims, _out_names(mode), mode, batch_first)]


def _bwd_abstract_eval(*avals, mode, reverse, proj, masked, batch_first):
    del reverse  # unused
    a, _, _ = _split(avals, _arg_names(mode, proj, masked), _res_names(mode, proj),
                     _out_names(mode))
    dims = _dims(a, mode, proj, batch_first)
    return [ShapedArray(s, a["x"].dtype)
            for s in _shapes(dims, _bwd_out_names(mode, proj), mode, batch_first)]


# --- the scan composition (reference, CuPy path, higher-order derivatives) --------------------


def _input_projection(a):
    from ... import numpy as fnp

    return fnp.matmul(a["x"], fnp.matrix_transpose(a["w_ih"])) + a["b_ih"]


def _time_major(a, batch_first):
    """The arguments with ``x`` time-major."""
    from ... import numpy as fnp

    return dict(a, x=fnp.swapaxes(a["x"], 0, 1)) if batch_first else a


def _compose(a, mode, reverse, proj, batch_first):
    """``outs + residuals`` of the recurrence as one ``lax.scan`` of fnx ops."""
    from ... import numpy as fnp

    a = _time_major(a, batch_first)
    outs = _compose_gi(dict(a, gi=_input_projection(a)), mode, reverse, proj)
    return [fnp.swapaxes(outs[0], 0, 1), *outs[1:]] if batch_first else outs


def _compose_gi(a, mode, reverse, proj):
    """``_compose`` from the input projection ``a["gi"]`` of every step (and the time-major
    input ``a["x"]``, for the residual ``xh``)."""
    from ... import lax
    from ... import numpy as fnp
    from .elementwise import logistic_p

    sigmoid = logistic_p.bind
    lstm = mode == "LSTM"
    H = a["gi"].shape[2] // MODES[mode]
    w_t, b = fnp.matrix_transpose(a["w_hh"]), a["b_hh"]
    xs = {"gi": a["gi"], "x": a["x"]}
    if "mask" in a:
        xs["mask"] = a["mask"]

    def step(carry, x):
        h, c = carry if lstm else (carry[0], None)
        gh = fnp.matmul(h, w_t) + b
        pre = x["gi"] + gh
        if lstm:
            i, f, o = (sigmoid(pre[:, k * H:(k + 1) * H]) for k in (0, 1, 3))
            g = fnp.tanh(pre[:, 2 * H:3 * H])
            acts = fnp.concatenate([i, f, g, o], axis=-1)
            c_new = f * c + i * g
            hu = o * fnp.tanh(c_new)
            h_new = fnp.matmul(hu, fnp.matrix_transpose(a["w_hr"])) if proj else hu
        elif mode == "GRU":
            r, z = (sigmoid(pre[:, k * H:(k + 1) * H]) for k in (0, 1))
            n = fnp.tanh(x["gi"][:, 2 * H:] + r * gh[:, 2 * H:])
            acts = fnp.concatenate([r, z, n, gh[:, 2 * H:]], axis=-1)
            h_new = (1 - z) * n + z * h
        else:
            h_new = fnp.tanh(pre) if mode == "RNN_TANH" else fnp.maximum(pre, 0)
            acts = h_new
        xh = fnp.concatenate([x["x"], h, fnp.ones_like(h[:, :1])], axis=-1)
        res = [acts, xh] + ([c] if lstm else []) + ([hu] if proj else [])
        if "mask" in x:
            keep = x["mask"][:, None] > 0
            h_out = fnp.where(keep, h_new, 0)
            res[0] = fnp.where(keep, acts, 0)  # residuals of padded steps are 0
            if proj:
                res[3] = fnp.where(keep, hu, 0)
            h_new = fnp.where(keep, h_new, h)
            if lstm:
                c_new = fnp.where(keep, c_new, c)
        else:
            h_out = h_new
        carry = (h_new, c_new) if lstm else (h_new,)
        return carry, [h_out, *res]

    init = (a["h0"], a["c0"]) if lstm else (a["h0"],)
    final, ys = lax.scan(step, init, xs, reverse=reverse)
    return [ys[0], *final, *ys[1:]]


def _composite_outs(mode, reverse, proj, mask, batch_first):
    """``f(*diff_args) -> outs`` (the mask closed over), for ``fnx.jvp``."""
    names = _diff_names(mode, proj)
    n = len(_out_names(mode))

    def f(*args):
        a = dict(zip(names, args, strict=True))
        if mask is not None:
            a["mask"] = mask
        return _compose(a, mode, reverse, proj, batch_first)[:n]

    return f


def _composite_bwd(a, cts, mode, reverse, proj, batch_first):
    """``rnn_bwd_p``'s outputs: the VJP of the composition (``dgi`` in place of ``x``'s)."""
    from ... import numpy as fnp
    from ...transforms.api import vjp

    a = _time_major(a, batch_first)
    cts = [fnp.swapaxes(cts[0], 0, 1), *cts[1:]] if batch_first else list(cts)
    names = ("gi",) + _diff_names(mode, proj)[3:]  # x, w_ih, b_ih act through gi
    n = len(_out_names(mode))

    def f(*args):
        b = dict(zip(names, args, strict=True), x=a["x"])
        if "mask" in a:
            b["mask"] = a["mask"]
        return _compose_gi(b, mode, reverse, proj)[:n]

    _, pullback = vjp(f, _input_projection(a), *[a[k] for k in names[1:]])
    dgi, *rest = pullback(list(cts))
    dw_ih = fnp.tensordot(dgi, a["x"], axes=((0, 1), (0, 1)))
    return [dgi, dw_ih, fnp.sum(dgi, axis=(0, 1)), *rest]


def _on_arrays(fn, bufs):
    """Run ``fn`` on buffers wrapped as Arrays; the results as buffers."""
    from ..array import wrap

    outs = fn([wrap(b) for b in bufs])
    return [o._buf for o in outs]


def _is_host(bufs):
    return all(isinstance(b, np.ndarray) and b.dtype in (np.float32, np.float64) for b in bufs)


# --- rnn_p: the forward loop ----------------------------------------------------------------------

rnn_p = Primitive("rnn", multiple_results=True)

_EMPTY = {}


def _empty(dtype, ndim):
    key = (np.dtype(dtype), ndim)
    e = _EMPTY.get(key)
    if e is None:
        e = _EMPTY[key] = np.empty((0,) * ndim, dtype)
    return e


def _kernels():
    from ...jit import cache

    return cache.load_library("rnn")


def _c(x):
    return x if x.flags.c_contiguous and x.flags.writeable else np.ascontiguousarray(x)


# The eager tape's backward program evaluates a recorded rnn_p again on the very buffers the
# forward call got (its JVP needs the residuals, which the tape does not keep): the last
# calls' outputs, keyed on the identity of their input buffers (fnx replaces buffers, it never
# writes into one it handed out; weak references rule out a reused id), are returned once
# instead of running the loop a second time. Only while grad mode is on, and bounded in
# entries and bytes (a call under fnx.jit, whose backward reuses the forward in the same
# program, leaves entries that are never claimed). Entries whose input buffers are gone
# (their graph was freed: no backward can claim them) leave at the next insert; past a bound,
# the oldest go. A seq2seq step (a 3-layer bidirectional encoder, then 20 decoder-cell steps)
# has 26 live calls: with only the newest 8 kept, its backward ran 18 forward loops again
# (19% of the step).
# One lock guards it: threads share it (a module called from several threads at once; the
# kernels release the GIL), and an unguarded eviction walk raced with another thread's insert
# ("OrderedDict mutated during iteration").
_MEMO = collections.OrderedDict()
_MEMO_SIZE = 64
_MEMO_BYTES = 256 << 20
_MEMO_LOCK = threading.Lock()
_memo_bytes = 0  # the outputs' bytes held by _MEMO (under the lock)
# keys of entries an input buffer of which died (appended by weakref callbacks, which must not
# take the lock: they run wherever a buffer is freed); dropped at the next insert
_memo_dead = collections.deque()


def _memo_drop(key):
    global _memo_bytes
    _memo_bytes -= _MEMO.pop(key)[2]


def _memo_put(key, entry):
    global _memo_bytes
    with _MEMO_LOCK:
        if key in _MEMO:
            _memo_drop(key)
        _MEMO[key] = entry
        _memo_bytes += entry[2]
        while _memo_dead:
            k = _memo_dead.popleft()
            e = _MEMO.get(k)
            if e is not None and any(r() is None for r in e[0]):  # not a newer call's key
                _memo_drop(k)
        while len(_MEMO) > _MEMO_SIZE or _memo_bytes > _MEMO_BYTES:
            _memo_drop(next(iter(_MEMO)))


def _rnn_impl(*bufs, mode, reverse, proj, masked, batch_first):
    if not _is_host(bufs) or (mode == "GRU" and _infinite_state(bufs, proj, masked,
                                                                batch_first)):
        names = _arg_names(mode, proj, masked)
        return _on_arrays(lambda xs: _compose(dict(zip(names, xs, strict=True)), mode,
                                              reverse, proj, batch_first), bufs)
    key = (mode, reverse, proj, masked, batch_first) + tuple(id(b) for b in bufs)
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
        if hit is not None:
            _memo_drop(key)
    if hit is not None and all(r() is b for r, b in zip(hit[0], bufs, strict=True)):
        return hit[1]
    outs = _rnn_kernel(bufs, mode, reverse, proj, masked, batch_first)
    from ...autograd.tape import is_grad_enabled

    if is_grad_enabled():
        refs = [weakref.ref(b, lambda _, k=key: _memo_dead.append(k)) for b in bufs]
        _memo_put(key, (refs, outs, sum(o.nbytes for o in outs)))
    return outs


def _infinite_state(bufs, proj, masked, batch_first):
    """Whether a GRU's input (at its valid steps) or initial state holds an infinity. The
    GRU kernels' stacked weight has zero blocks (``i_n`` reads no ``h``, ``W_hn h + b_hn`` no
    ``x``), and 0 * inf is NaN where PyTorch's separate products give ``n = tanh(+-inf + .)``
    = +-1: such calls run the scan composition (``_compose``), which multiplies as PyTorch."""
    a = dict(zip(_arg_names("GRU", proj, masked), bufs, strict=True))
    x = a["x"].swapaxes(0, 1) if batch_first else a["x"]  # (T, B, I)
    if masked:
        x = x[a["mask"] > 0]
    return not (np.isfinite(x).all() and np.isfinite(a["h0"]).all())


def _step_weight(w, rows):
    """``(w, packed)`` for the kernels' step product ``(rows, K) @ w``: oneMKL's packed form
    of ``w`` once per call, which each of the T step products reuses (~25% faster each), and
    an empty stand-in for ``w``; with NumPy's BLAS, ``w`` C-contiguous and an empty buffer."""
    packed = blas.pack_b(w, rows)
    if packed.size:
        return _empty(w.dtype, 2), packed
    return np.ascontiguousarray(w), packed


def _rnn_kernel(bufs, mode, reverse, proj, masked, batch_first):
    (a,) = _split([_c(b) for b in bufs], _arg_names(mode, proj, masked))
    dims = _dims({k: ShapedArray(v.shape, v.dtype) for k, v in a.items()}, mode, proj,
                 batch_first)
    T, B, G, H, P, I = dims
    dt = a["x"].dtype
    names = _out_names(mode) + _res_names(mode, proj)
    outs = dict(zip(names, [np.empty(s, dt) for s in _shapes(dims, names, mode, batch_first)],
                    strict=True))
    mask = a["mask"] if masked else _empty(dt, 2)
    k = _kernels()
    # the input projection inside the loop: one product per step of [x_t | h | 1] by both
    # weights and the biases (see the kernels)
    w_t, w_pack = _step_weight(_stacked_weight(a, mode, I, P).T, B)
    if mode == "LSTM":
        w_hr_t = np.ascontiguousarray(a["w_hr"].T) if proj else _empty(dt, 2)
        k.lstm_forward(a["x"], w_t, w_pack, a["h0"], a["c0"], w_hr_t, mask, reverse,
                       batch_first, outs["ys"], outs["h"], outs["c"], outs["acts"], outs["xh"],
                       outs["cprev"], outs.get("hu", _empty(dt, 3)))
    elif mode == "GRU":
        k.gru_forward(a["x"], w_t, w_pack, a["h0"], mask, reverse, batch_first, outs["ys"],
                      outs["h"], outs["acts"], outs["xh"])
    else:
        k.rnn_forward(a["x"], w_t, w_pack, a["h0"], mask, reverse, batch_first,
                      mode == "RNN_RELU", outs["ys"], outs["h"], outs["acts"], outs["xh"])
    return [outs[n] for n in names]


def _stacked_weight(a, mode, I, P):
    """The ``(G', I + P + 1)`` matrix whose product with a step's ``[x_t | h | 1]`` is its
    pre-activations: ``[W_ih | W_hh | b_ih + b_hh]``; for the GRU four blocks of rows, r and z
    as that, then ``i_n`` (``[W_in | 0 | b_in]``) and ``W_hn h + b_hn`` (``[0 | W_hn | b_hn]``),
    which ``n = tanh(i_n + r * (W_hn h + b_hn))`` keeps apart."""
    w_ih, w_hh, b_ih, b_hh = a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"]
    if mode != "GRU":
        return np.concatenate((w_ih, w_hh, (b_ih + b_hh)[:, None]), axis=1)
    H = w_hh.shape[0] // 3
    w = np.zeros((4 * H, I + P + 1), w_ih.dtype)
    w[:2 * H, :I] = w_ih[:2 * H]  # r, z
    w[:2 * H, I:-1] = w_hh[:2 * H]
    w[:2 * H, -1] = b_ih[:2 * H] + b_hh[:2 * H]
    w[2 * H:3 * H, :I] = w_ih[2 * H:]  # i_n
    w[2 * H:3 * H, -1] = b_ih[2 * H:]
    w[3 * H:, I:-1] = w_hh[2 * H:]  # W_hn h + b_hn
    w[3 * H:, -1] = b_hh[2 * H:]
    return w


def _rnn_jvp(primals, tangents, *, mode, reverse, proj, masked, batch_first):
    params = dict(mode=mode, reverse=reverse, proj=proj, masked=masked,
                  batch_first=batch_first)
    outs = rnn_p.bind(*primals, **params)
    n = len(_out_names(mode))
    diff = tangents[:len(_diff_names(mode, proj))]
    zeros = [Zero(_aval(o)) for o in outs]
    if all(type(t) is Zero for t in diff):
        return outs, zeros
    t_out = rnn_lin_p.bind(*primals, *outs[n:], *[instantiate(t) for t in diff], **params)
    # the residuals' tangents are zero by definition (see the module docstring)
    return outs, list(t_out) + zeros[n:]


# --- rnn_lin_p: the tangent map, transposed into the backward loop --------------------------------

rnn_lin_p = Primitive("rnn_lin", multiple_results=True)


def _lin_parts(values, mode, proj, masked):
    return _split(values, _arg_names(mode, proj, masked), _res_names(mode, proj),
                  _diff_names(mode, proj))


def _lin_eval(args, mode, reverse, proj, masked, batch_first):
    """The tangent outputs by forward-mode differentiation of the composition."""
    from ...transforms.api import jvp

    a, _, t = _lin_parts(args, mode, proj, masked)
    names = _diff_names(mode, proj)
    f = _composite_outs(mode, reverse, proj, a.get("mask"), batch_first)
    _, t_out = jvp(f, tuple(a[k] for k in names), tuple(t[k] for k in names))
    return list(t_out)


def _lin_impl(*bufs, mode, reverse, proj, masked, batch_first):
    return _on_arrays(lambda xs: _lin_eval(xs, mode, reverse, proj, masked, batch_first),
                      bufs)


def _lin_jvp(primals, tangents, *, mode, reverse, proj, masked, batch_first):
    from ...transforms.api import jvp

    names = _diff_names(mode, proj)
    a, _, t = _lin_parts(primals, mode, proj, masked)
    da, _, dt = _lin_parts(tangents, mode, proj, masked)
    n = len(names)

    def f(*xs):
        g = _composite_outs(mode, reverse, proj, a.get("mask"), batch_first)
        return list(jvp(g, tuple(xs[:n]), tuple(xs[n:]))[1])

    xs = [a[k] for k in names] + [t[k] for k in names]
    dxs = [instantiate(da[k]) for k in names] + [instantiate(dt[k]) for k in names]
    outs, t_out = jvp(f, tuple(xs), tuple(dxs))
    return list(outs), list(t_out)


def _lin_transpose(cts, *args, mode, reverse, proj, masked, batch_first):
    params = dict(mode=mode, reverse=reverse, proj=proj, masked=masked,
                  batch_first=batch_first)
    a, r, t = _lin_parts(args, mode, proj, masked)
    if any(is_undefined(v) for v in (*a.values(), *r.values())):
        raise ShapeError("rnn_lin: only the tangents are linear (an fnx bug)")
    cts = [instantiate(c) for c in cts]
    grads = list(rnn_bwd_p.bind(*a.values(), *r.values(), *cts, **params))
    if is_undefined(t["x"]):  # x's cotangent from dgi only where it is needed
        from ... import numpy as fnp

        dx = fnp.matmul(grads[0], a["w_ih"])  # dgi is time-major
        grads[0] = fnp.swapaxes(dx, 0, 1) if batch_first else dx
    return ([None] * (len(a) + len(r))
            + [g if is_undefined(v) else None for g, v in zip(grads, t.values(), strict=True)])


# --- rnn_bwd_p: the reverse loop ------------------------------------------------------------

rnn_bwd_p = Primitive("rnn_bwd", multiple_results=True)


def _bwd_parts(values, mode, proj, masked):
    return _split(values, _arg_names(mode, proj, masked), _res_names(mode, proj),
                  _out_names(mode))


def _bwd_impl(*bufs, mode, reverse, proj, masked, batch_first):
    if not _is_host(bufs):
        def run(xs):
            a, _, ct = _bwd_parts(xs, mode, proj, masked)
            return _composite_bwd(a, list(ct.values()), mode, reverse, proj, batch_first)

        return _on_arrays(run, bufs)
    a, r, ct = _bwd_parts([_c(b) for b in bufs], mode, proj, masked)
    dims = _dims({k: ShapedArray(v.shape, v.dtype) for k, v in a.items()}, mode, proj,
                 batch_first)
    dt = a["x"].dtype
    names = _bwd_out_names(mode, proj)
    g = dict(zip(names, [np.empty(s, dt) for s in _shapes(dims, names, mode, batch_first)],
                 strict=True))
    mask = a["mask"] if masked else _empty(dt, 2)
    T, B, G, H, P, I = dims
    k = _kernels()
    w_hh, w_pack = _step_weight(a["w_hh"], B)
    dgh = g["dgi"]  # the gradient of h W_hh^T + b_hh per step: the GRU's differs
    if mode == "LSTM":
        dr = np.empty((T, B, P), dt) if proj else _empty(dt, 3)
        k.lstm_backward(r["acts"], r["cprev"], w_hh, w_pack,
                        a["w_hr"] if proj else _empty(dt, 2), mask, reverse, batch_first,
                        ct["ys"], ct["h"], ct["c"], g["dgi"], g["dh0"], g["dc0"], dr)
        if proj:
            blas.matmul(dr.reshape(T * B, P).T, r["hu"].reshape(T * B, H), out=g["dw_hr"])
    elif mode == "GRU":
        dgh = np.empty((T, B, G), dt)
        k.gru_backward(r["acts"], r["xh"], w_hh, w_pack, mask, reverse, batch_first,
                       ct["ys"], ct["h"], g["dgi"], dgh, g["dh0"])
    else:
        k.rnn_backward(r["acts"], w_hh, w_pack, mask, reverse, batch_first,
                       mode == "RNN_RELU", ct["ys"], ct["h"], g["dgi"], g["dh0"])
    # the weight and bias gradients over all steps and rows as products of the saved
    # [x | h_prev | 1] rows: transposed ((K, G), the faster orientation here), the bias
    # gradient the last row (no separate pass over dgi). Where dgi is also dgh (all but the
    # GRU) one GEMM gives all of them (W9 LSTM: 2.4 ms against 3.2 ms for dgi^T x and
    # dgi^T h_prev, and 0.13 ms for the sum); the forward kernels write the rows side by side
    # (a copy here took 0.3 ms of W9's step).
    xh = r["xh"].reshape(T * B, I + P + 1)
    dgi = g["dgi"].reshape(T * B, G)
    if dgh is g["dgi"]:
        both = blas.matmul(xh.T, dgi)
        g["dw_ih"][...] = both[:I].T
        g["dw_hh"][...] = both[I:I + P].T
        g["db_ih"][...] = g["db_hh"][...] = both[-1]
    else:
        g["dw_ih"][...] = blas.matmul(xh[:, :I].T, dgi).T
        g["db_ih"][...] = dgi.sum(axis=0)
        prod = blas.matmul(xh[:, I:].T, dgh.reshape(T * B, G))  # [h_prev | 1]
        g["dw_hh"][...] = prod[:-1].T
        g["db_hh"][...] = prod[-1]
    return [g[n] for n in names]


def _bwd_jvp(primals, tangents, *, mode, reverse, proj, masked, batch_first):
    from ...transforms.api import jvp

    names = _diff_names(mode, proj)
    a, _, ct = _bwd_parts(primals, mode, proj, masked)
    da, _, dct = _bwd_parts(tangents, mode, proj, masked)
    n = len(names)

    def f(*xs):
        b = dict(zip(names, xs[:n], strict=True))
        if masked:
            b["mask"] = a["mask"]
        return _composite_bwd(b, list(xs[n:]), mode, reverse, proj, batch_first)

    xs = [a[k] for k in names] + list(ct.values())
    dxs = [instantiate(da[k]) for k in names] + [instantiate(v) for v in dct.values()]
    outs, t_out = jvp(f, tuple(xs), tuple(dxs))
    return list(outs), list(t_out)


# --- batching (all three) ---------------------------------------------------------------------


def _batch_rule(prim, in_names, out_names):
    """vmap: fold the mapped axis into the batch axis when no weight is mapped, else one
    call per example."""

    def batch(axis_size, args, dims, **params):
        from ... import numpy as fnp

        ins, outs = in_names(params), out_names(params)
        avals = [_aval(x) for x in args]
        avals = [a if d is None else ShapedArray(a.shape[:d] + a.shape[d + 1:], a.dtype)
                 for a, d in zip(avals, dims, strict=True)]
        if axis_size == 0:  # nothing to run: empty outputs of the right types
            out_avals = prim.abstract_eval(*avals, **params)
            return [fnp.zeros((0,) + a.shape, a.dtype) for a in out_avals], [0] * len(outs)
        # a mapped weight, or per-example weight gradients (rnn_bwd_p): one call per example
        if any(_batch_axis(n, params) is None for n in outs) or any(
                d is not None and _batch_axis(n, params) is None
                for n, d in zip(ins, dims, strict=True)):
            per = [prim.bind(*[x if d is None else fnp.moveaxis(x, d, 0)[v]
                               for x, d in zip(args, dims, strict=True)], **params)
                   for v in range(axis_size)]
            return [fnp.stack(list(o)) for o in zip(*per, strict=True)], [0] * len(outs)
        batch = avals[0].shape[_batch_axis("x", params)]  # the rows of one example
        folded = []
        for x, d, n in zip(args, dims, ins, strict=True):
            ax = _batch_axis(n, params)
            if ax is None:
                folded.append(x)
                continue
            shape = tuple(_aval(x).shape)
            if d is None:
                x = fnp.broadcast_to(fnp.expand_dims(x, ax), shape[:ax] + (axis_size,)
                                     + shape[ax:])
            else:
                x = fnp.moveaxis(x, d, ax)
            s = tuple(_aval(x).shape)
            folded.append(fnp.reshape(x, s[:ax] + (s[ax] * s[ax + 1],) + s[ax + 2:]))
        results = prim.bind(*folded, **params)
        unfolded = []
        for o, n in zip(results, outs, strict=True):
            ax = _batch_axis(n, params)
            s = tuple(_aval(o).shape)
            unfolded.append(fnp.reshape(o, s[:ax] + (axis_size, batch) + s[ax + 1:]))
        return unfolded, [_batch_axis(n, params) for n in outs]

    return batch


def _fwd_ins(p):
    return _arg_names(p["mode"], p["proj"], p["masked"])


def _fwd_outs(p):
    return _out_names(p["mode"]) + _res_names(p["mode"], p["proj"])


def _lin_ins(p):
    return _fwd_ins(p) + _res_names(p["mode"], p["proj"]) + _diff_names(p["mode"], p["proj"])


def _bwd_ins(p):
    cts = {"ys": "ys", "h": "h0", "c": "c0"}  # a cotangent batches like its value
    return (_fwd_ins(p) + _res_names(p["mode"], p["proj"])
            + tuple(cts[n] for n in _out_names(p["mode"])))


rnn_p.impl = checked(_rnn_abstract_eval, _rnn_impl)
rnn_p.abstract_eval = _rnn_abstract_eval
rnn_p.jvp = _rnn_jvp
rnn_p.batch = _batch_rule(rnn_p, _fwd_ins, _fwd_outs)
rnn_p.call_kind = "impl"  # one compiled loop over time (fnx/jit/kernels/rnn.py)

rnn_lin_p.impl = checked(_lin_abstract_eval, _lin_impl)
rnn_lin_p.abstract_eval = _lin_abstract_eval
rnn_lin_p.jvp = _lin_jvp
rnn_lin_p.transpose = _lin_transpose
rnn_lin_p.batch = _batch_rule(rnn_lin_p, _lin_ins, lambda p: _out_names(p["mode"]))
rnn_lin_p.call_kind = "impl"  # forward mode: the composition's JVP

rnn_bwd_p.impl = checked(_bwd_abstract_eval, _bwd_impl)
rnn_bwd_p.abstract_eval = _bwd_abstract_eval
rnn_bwd_p.jvp = _bwd_jvp
rnn_bwd_p.batch = _batch_rule(rnn_bwd_p, _bwd_ins,
                              lambda p: _bwd_out_names(p["mode"], p["proj"]))
rnn_bwd_p.call_kind = "impl"  # one compiled reverse loop


def recurrence(x, w_ih, b_ih, h0, c0, w_hh, b_hh, w_hr=None, mask=None, *, mode,
               reverse=False, batch_first=False):
    """One recurrent layer and direction over all steps: ``(ys, h_T, c_T)`` (``c_T`` None
    except for the LSTM) for the inputs ``x (T, B, I)`` of every step (``(B, T, I)`` and
    ``ys (B, T, P)`` with ``batch_first``), see the module docstring; a bias that is None is
    zeros.

    >>> zeros = fnx.numpy.zeros
    >>> ys, h, c = fnx.core.ops.rnn.recurrence(zeros((5, 2, 3)), zeros((8, 3)), None,
    ...     zeros((2, 2)), zeros((2, 2)), fnx.numpy.ones((8, 2)), None, mode="LSTM")
    >>> ys.shape, h.shape, c.shape
    ((5, 2, 2), (2, 2), (2, 2))
    """
    if mode not in MODES:
        raise ValueError(f"recurrence: mode must be one of {sorted(MODES)}, got {mode!r}")
    lstm = mode == "LSTM"
    if lstm != (c0 is not None):
        raise ValueError(f"recurrence: c0 is {'required' if lstm else 'only'} for the LSTM")
    if w_hr is not None and not lstm:
        raise ValueError("recurrence: w_hr (a projection) is only supported for the LSTM")
    from ... import numpy as fnp

    b_ih, b_hh = (fnp.zeros(w_ih.shape[:1], dtype=w_ih.dtype, device=w_ih.device)
                  if b is None else b for b in (b_ih, b_hh))
    args = [x, w_ih, b_ih, h0] + ([c0] if lstm else []) + [w_hh, b_hh]
    args += ([w_hr] if w_hr is not None else []) + ([mask] if mask is not None else [])
    outs = rnn_p.bind(*args, mode=mode, reverse=bool(reverse), proj=w_hr is not None,
                      masked=mask is not None, batch_first=bool(batch_first))
    return outs[0], outs[1], (outs[2] if lstm else None)
