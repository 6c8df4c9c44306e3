"""Recurrent layers: ``RNN``, ``LSTM``, ``GRU`` and their cells, with ``torch.nn``'s contract.

Constructor signatures, parameter names (``weight_ih_l0``, ``bias_hh_l1_reverse``,
``weight_hr_l0`` ...), gate order (LSTM ``i, f, g, o``; GRU ``r, z, n`` with
``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``), default initialisation
``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))`` and input/output/state shapes are PyTorch's,
so state_dicts load both ways.

Each layer and direction is one primitive (``fnx.core.ops.rnn``: the input projection of
every time step as one matrix product, then a compiled loop over time, forward and backward,
the same kernels eagerly, under ``fnx.jit`` and in compiled steps). A ``PackedSequence``
input runs over its padded batch with a mask, so each sequence's final state is the one at its
last valid step (in both directions) and its padded outputs are zeros. The cells are the same
primitive over one step.
"""

import math
import numbers
import warnings

import numpy as np

from ... import numpy as fnp
from ...core.ops.rnn import MODES, recurrence
from ...core.errors import DTypeError, ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ..utils.rnn import PackedSequence, _lengths, _packed_to_padded, _padded_to_packed
from ._util import new_parameter

__all__ = ["RNNBase", "RNN", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell"]


def _check_int(layer, name, value, low):
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{layer}: {name} should be of type int, got: {type(value).__name__}")
    if value < low:
        raise ValueError(f"{layer}: {name} must be at least {low}, got {value}")


def _check_dtype(name, what, x, weight):
    if x.dtype != weight.dtype:
        # converting the module only helps towards another floating dtype (not int64)
        module = f" or the module with .to({x.dtype})" if x.dtype.kind == "f" else ""
        raise DTypeError(f"{name} expected {what} of dtype {weight.dtype} (its parameters' "
                         f"dtype), got {x.dtype}; convert it with .to({weight.dtype}){module}")


# --- layers ----------------------------------------------------------------------------------


class RNNBase(Module):
    """The multi-layer recurrent layer behind ``RNN``, ``LSTM`` and ``GRU`` (PyTorch's
    ``RNNBase``); ``mode`` is ``'RNN_TANH'``, ``'RNN_RELU'``, ``'LSTM'`` or ``'GRU'``.

    >>> gru = fnx.nn.RNNBase("GRU", 4, 8)
    >>> [name for name, _ in gru.named_parameters()]
    ['weight_ih_l0', 'weight_hh_l0', 'bias_ih_l0', 'bias_hh_l0']
    """

    def __init__(self, mode, input_size, hidden_size, num_layers=1, bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, proj_size=0,
                 device=None, dtype=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"RNNBase: unrecognized mode {mode!r}; expected one of "
                             f"{sorted(MODES)}")
        layer = mode.split("_")[0]
        for name, value, low in (("input_size", input_size, 0), ("hidden_size", hidden_size, 1),
                                 ("num_layers", num_layers, 1), ("proj_size", proj_size, 0)):
            _check_int(layer, name, value, low)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Number) \
                or not 0 <= dropout <= 1:
            raise ValueError(f"{layer}: dropout should be a number in range [0, 1] representing "
                             f"the probability of an element being zeroed, got {dropout!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(f"dropout option adds dropout after all but last recurrent layer, so "
                          f"non-zero dropout expects num_layers greater than 1, but got "
                          f"dropout={dropout} and num_layers={num_layers}", stacklevel=2)
        if proj_size and mode != "LSTM":
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if proj_size >= hidden_size:
            raise ValueError(f"proj_size has to be smaller than hidden_size, got proj_size="
                             f"{proj_size} and hidden_size={hidden_size}")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        self.proj_size = proj_size
        num_directions = 2 if bidirectional else 1
        gate_size = MODES[mode] * hidden_size
        real_hidden = proj_size or hidden_size
        self._flat_weights_names, self._all_weights = [], []
        for lay in range(num_layers):
            for direction in range(num_directions):
                in_size = input_size if lay == 0 else real_hidden * num_directions
                shapes = [("weight_ih", (gate_size, in_size)),
                          ("weight_hh", (gate_size, real_hidden))]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                if proj_size:
                    shapes.append(("weight_hr", (proj_size, hidden_size)))
                suffix = "_reverse" if direction else ""
                names = [f"{base}_l{lay}{suffix}" for base, _ in shapes]
                for name, (_, shape) in zip(names, shapes, strict=True):
                    setattr(self, name, new_parameter(shape, dtype, device))
                self._flat_weights_names.extend(names)
                self._all_weights.append(names)
        self.reset_parameters()

    def reset_parameters(self):
        """Every weight and bias from ``U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))``."""
        stdv = 1.0 / math.sqrt(self.hidden_size)
        for weight in self.parameters():
            init.uniform_(weight, -stdv, stdv)

    def flatten_parameters(self):
        """Nothing to do: PyTorch packs weights for cuDNN here; fnx needs no packed copy."""

    @property
    def all_weights(self):
        """The parameters per layer and direction, as lists in ``_all_weights`` order."""
        return [[getattr(self, name) for name in names] for names in self._all_weights]

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size != 0:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s

    def _name(self):
        return f"{self._get_name()}({self.extra_repr()})"

    # --- forward -----------------------------------------------------------------------------
    def forward(self, input, hx=None):
        """``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``) for ``input (L, N, H_in)``
        (``(N, L, H_in)`` with ``batch_first``, ``(L, H_in)`` unbatched, or a
        ``PackedSequence``); ``hx`` the initial state(s) ``(D * num_layers, N, H_out)``
        (zeros when omitted)."""
        name = self._name()
        weight = self.weight_ih_l0
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            self._check_input(name, data, (2,), "packed data (sum(lengths), H_in)")
            x = _packed_to_padded(data, batch_sizes)
            lengths = _lengths(batch_sizes)
            mask = np.arange(x.shape[0])[:, None] < lengths[None, :]
            mask = fnp.asarray(mask.astype(x.dtype), device=x.device)
            batched, batch_first = True, False
        else:
            x = fnp.asarray(input)
            self._check_input(name, x, (2, 3), "input (L, N, H_in) or unbatched (L, H_in)")
            batched, mask, sorted_indices = x.ndim == 3, None, None
            # batch-first input stays so: the recurrence reads and writes that layout itself
            batch_first = batched and self.batch_first
            x = x if batched else x[:, None]
        _check_dtype(name, "input", x, weight)
        state = self._initial_state(name, hx, x, x.shape[0 if batch_first else 1], batched,
                                    sorted_indices)
        out, state = self._run(x, state, mask, batch_first)
        if packed:
            out = PackedSequence(_padded_to_packed(out, batch_sizes), batch_sizes,
                                 sorted_indices, unsorted_indices)
            if unsorted_indices is not None:
                order = fnp.asarray(unsorted_indices.numpy(), device=x.device)
                state = tuple(fnp.take(s, order, axis=1) for s in state)
        elif not batched:
            out, state = out[:, 0], tuple(s[:, 0] for s in state)
        return out, (state if self.mode == "LSTM" else state[0])

    def _check_input(self, name, x, ranks, what):
        if x.ndim not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            raise ShapeError(f"{name} expected {want} {what}, got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{name} expected input with last dimension {self.input_size}, "
                             f"got shape {tuple(x.shape)}")

    def _state_shapes(self, batch):
        layers = self.num_layers * (2 if self.bidirectional else 1)
        h_shape = (layers, batch, self.proj_size or self.hidden_size)
        if self.mode == "LSTM":
            return ("h0", h_shape), ("c0", (layers, batch, self.hidden_size))
        return (("h0", h_shape),)

    def _initial_state(self, name, hx, x, batch, batched, sorted_indices):
        """The state tuple ``((D * num_layers, N, H_out), ...)`` in the scan's batch order."""
        shapes = self._state_shapes(batch)
        if hx is None:
            return tuple(fnp.zeros(shape, dtype=x.dtype, device=x.device) for _, shape in shapes)
        if self.mode == "LSTM":
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"{name} expected hx to be a tuple (h0, c0), got "
                                f"{type(hx).__name__}")
        elif isinstance(hx, (tuple, list)):
            raise TypeError(f"{name} expected hx to be one array h0, got a "
                            f"{type(hx).__name__}")
        states = []
        for (what, shape), h in zip(shapes, hx if self.mode == "LSTM" else (hx,), strict=True):
            h = fnp.asarray(h)
            want = shape if batched else (shape[0], shape[2])
            if not batched and h.ndim != 2:
                raise ShapeError(f"{name}: for unbatched 2-D input, {what} should also be "
                                 f"2-D {want}, got shape {tuple(h.shape)}")
            if tuple(h.shape) != want:
                raise ShapeError(f"{name} expected {what} of shape {want}, got shape "
                                 f"{tuple(h.shape)}")
            _check_dtype(name, what, h, self.weight_ih_l0)
            h = h if batched else h[:, None]
            if sorted_indices is not None:
                h = fnp.take(h, fnp.asarray(sorted_indices.numpy(), device=h.device), axis=1)
            states.append(h)
        return tuple(states)

    def _run(self, x, state, mask, batch_first):
        """All layers over ``x (T, B, H_in)`` (``(B, T, H_in)`` with ``batch_first``, the
        output likewise): ``(output, final state tuple)``."""
        num_directions = 2 if self.bidirectional else 1
        # the weights by attribute, as PyTorch's _flat_weights: a weight may be a plain array
        # set in place of its parameter (AWD-LSTM's WeightDrop: weight_hh_l0 = dropout(raw))
        params = {name: getattr(self, name, None) for name in self._flat_weights_names}
        lstm = self.mode == "LSTM"
        finals = []
        for lay in range(self.num_layers):
            outs = []
            for direction in range(num_directions):
                suffix = f"_l{lay}" + ("_reverse" if direction else "")
                index = lay * num_directions + direction
                ys, h, c = recurrence(x, params["weight_ih" + suffix],
                                      params.get("bias_ih" + suffix), state[0][index],
                                      state[1][index] if lstm else None,
                                      params["weight_hh" + suffix], params.get("bias_hh" + suffix),
                                      params.get("weight_hr" + suffix), mask, mode=self.mode,
                                      reverse=direction == 1, batch_first=batch_first)
                outs.append(ys)
                finals.append((h, c) if lstm else (h,))
            x = outs[0] if num_directions == 1 else fnp.concatenate(outs, axis=-1)
            if self.dropout and self.training and lay < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, tuple(fnp.stack(s) for s in zip(*finals, strict=True))


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or ``relu`` with
    ``nonlinearity='relu'``), stacked ``num_layers`` deep; PyTorch's arguments and shapes.

    >>> rnn = fnx.nn.RNN(4, 8, num_layers=2, batch_first=True)
    >>> out, h_n = rnn(fnx.randn(3, 5, 4))
    >>> out.shape, h_n.shape
    ((3, 5, 8), (2, 3, 8))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or "
                             f"'relu'.")
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device=device, dtype=dtype)
        self.nonlinearity = nonlinearity


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's equations (gates ``i, f, g, o`` in that order in
    ``weight_ih``/``weight_hh``); ``proj_size > 0`` projects ``h_t`` by ``weight_hr``.
    Returns ``(output, (h_n, c_n))``.

    >>> lstm = fnx.nn.LSTM(4, 8, bidirectional=True)
    >>> out, (h_n, c_n) = lstm(fnx.randn(5, 3, 4))
    >>> out.shape, h_n.shape, c_n.shape
    ((5, 3, 16), (2, 3, 8), (2, 3, 8))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, device=None, dtype=None):
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, proj_size, device=device, dtype=dtype)


class GRU(RNNBase):
    """Gated recurrent unit, PyTorch's equations (gates ``r, z, n``;
    ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``, ``h' = (1 - z) * n + z * h``).

    >>> gru = fnx.nn.GRU(4, 8)
    >>> out, h_n = gru(fnx.randn(5, 4))    # unbatched
    >>> out.shape, h_n.shape
    ((5, 8), (1, 8))
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, device=None, dtype=None):
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device=device, dtype=dtype)


# --- cells -----------------------------------------------------------------------------------


class RNNCellBase(Module):
    """One step of a recurrent layer (PyTorch's ``RNNCellBase``): ``weight_ih``,
    ``weight_hh``, ``bias_ih``, ``bias_hh`` with ``num_chunks`` gates.

    >>> cell = fnx.nn.RNNCellBase(3, 5, True, 4)
    >>> cell.weight_ih.shape, cell.weight_hh.shape
    ((20, 3), (20, 5))
    """

    def __init__(self, input_size, hidden_size, bias, num_chunks, device=None, dtype=None):
        super().__init__()
        layer = type(self).__name__
        _check_int(layer, "input_size", input_size, 0)
        _check_int(layer, "hidden_size", hidden_size, 1)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gates = num_chunks * hidden_size
        self.weight_ih = new_parameter((gates, input_size), dtype, device)
        self.weight_hh = new_parameter((gates, hidden_size), dtype, device)
        if bias:
            self.bias_ih = new_parameter((gates,), dtype, device)
            self.bias_hh = new_parameter((gates,), dtype, device)
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    reset_parameters = RNNBase.reset_parameters

    def extra_repr(self):
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _step(self, mode, input, hx, n_states):
        """One step of recurrence ``mode`` on ``input (N, H_in)`` or unbatched ``(H_in,)``
        from state(s) ``hx`` (zeros when ``None``)."""
        name = f"{self._get_name()}({self.extra_repr()})"
        x = fnp.asarray(input)
        if x.ndim not in (1, 2):
            raise ShapeError(f"{name} expected 1-D (unbatched) or 2-D (N, {self.input_size}) "
                             f"input, got shape {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"{name} expected input with last dimension {self.input_size}, "
                             f"got shape {tuple(x.shape)}")
        _check_dtype(name, "input", x, self.weight_ih)
        batched = x.ndim == 2
        x = x if batched else x[None]
        shape = (x.shape[0], self.hidden_size)
        if hx is None:
            state = (fnp.zeros(shape, dtype=x.dtype, device=x.device),) * n_states
        else:
            state = []
            expected = shape if batched else shape[1:]
            for h in (hx if n_states > 1 else (hx,)):
                h = fnp.asarray(h)
                if tuple(h.shape) != expected:
                    raise ShapeError(f"{name} expected hidden state of shape {expected}, got "
                                     f"shape {tuple(h.shape)}")
                _check_dtype(name, "hidden state", h, self.weight_ih)
                state.append(h if batched else h[None])
        _, h, c = recurrence(x[None], self.weight_ih, self.bias_ih, state[0],
                             state[1] if mode == "LSTM" else None, self.weight_hh, self.bias_hh,
                             mode=mode)
        new = (h, c) if mode == "LSTM" else (h,)
        return new if batched else tuple(s[0] for s in new)


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (or ``relu``).

    >>> cell = fnx.nn.RNNCell(4, 8)
    >>> cell(fnx.randn(3, 4)).shape
    (3, 8)
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None,
                 dtype=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}. Select from 'tanh' or "
                             f"'relu'.")
        super().__init__(input_size, hidden_size, bias, 1, device=device, dtype=dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input, hx=None):
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        return self._step(mode, input, hx, 1)[0]


class LSTMCell(RNNCellBase):
    """One LSTM step; returns ``(h', c')`` (``hx = (h, c)``, zeros when omitted).

    >>> cell = fnx.nn.LSTMCell(4, 8)
    >>> h, c = cell(fnx.randn(3, 4))
    >>> h.shape, c.shape
    ((3, 8), (3, 8))
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 4, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"LSTMCell({self.extra_repr()}) expected hx to be a tuple (h, c), "
                            f"got {type(hx).__name__}")
        return self._step("LSTM", input, hx, 2)


class GRUCell(RNNCellBase):
    """One GRU step (PyTorch's equations, gates ``r, z, n``).

    >>> cell = fnx.nn.GRUCell(4, 8)
    >>> cell(fnx.randn(4), fnx.zeros(8)).shape
    (8,)
    """

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None):
        super().__init__(input_size, hidden_size, bias, 3, device=device, dtype=dtype)

    def forward(self, input, hx=None):
        return self._step("GRU", input, hx, 1)[0]
