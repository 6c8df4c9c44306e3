"""``fnx.nn.utils.rnn``: variable-length batches for the recurrent layers (``torch.nn.utils.rnn``).

A ``PackedSequence`` holds the time steps of a batch of sequences back to back in PyTorch's
layout: sequences sorted by decreasing length, ``data`` the rows of step 0 for every sequence,
then the rows of step 1 for the sequences that have one, and so on; ``batch_sizes[t]`` is the
number of sequences still running at step ``t``. ``RNN``/``LSTM``/``GRU`` accept one and
return one.

The layout (``batch_sizes`` and the sort order) is static: a packed batch is a pytree whose only
leaf is ``data``, so ``fnx.jit``/``grad``/``vmap`` trace it, and a new length pattern is a new
trace. Every conversion is a gather with constant indices, so it is differentiable.

>>> from fnx.nn.utils.rnn import pack_sequence, pad_packed_sequence
>>> packed = pack_sequence([fnx.ones(3, 2), fnx.ones(1, 2)])
>>> packed.batch_sizes.tolist()
[2, 1, 1]
>>> padded, lengths = pad_packed_sequence(packed, batch_first=True)
>>> padded.shape, lengths.tolist()
((2, 3, 2), [3, 1])
"""

import collections

import numpy as np

import fnx
from ... import numpy as fnp
from ...core.errors import ShapeError, TraceError
from ...core.pytree import register_pytree_node

__all__ = ["PackedSequence", "pad_sequence", "pack_padded_sequence", "pad_packed_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation"]


def invert_permutation(permutation):
    """The inverse of an index permutation (``None`` stays ``None``).

    >>> fnx.nn.utils.rnn.invert_permutation(fnx.tensor([2, 0, 1])).tolist()
    [1, 2, 0]
    """
    if permutation is None:
        return None
    perm = _host_ints("invert_permutation", "permutation", permutation)
    out = np.empty_like(perm)
    out[perm] = np.arange(len(perm))
    return fnx.asarray(out)


def _host_ints(op, name, values):
    """Concrete int64 NumPy values: lengths and orders fix the packed layout (shapes), so they
    are never traced."""
    if isinstance(values, fnx.Array) and type(values) is not fnx.Array:
        raise TraceError(f"{op}: {name} must be concrete (a list or an eager array), because it "
                         f"decides the packed layout's shapes; it was traced. Compute it outside "
                         f"fnx.jit/vmap/grad, or pass the PackedSequence into the transform")
    return np.asarray(values.numpy() if isinstance(values, fnx.Array) else values,
                      dtype=np.int64).reshape(-1)


_PackedSequenceBase = collections.namedtuple(
    "PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])


class PackedSequence(_PackedSequenceBase):
    """A batch of variable-length sequences packed for the recurrent layers (PyTorch's fields
    and layout; build it with ``pack_padded_sequence`` or ``pack_sequence``).

    ``data (sum(lengths), *)``; ``batch_sizes (max_len,)`` int64; ``sorted_indices`` the batch
    order by decreasing length (``None`` when the input was sorted) and ``unsorted_indices``
    its inverse.

    >>> p = fnx.nn.utils.rnn.PackedSequence(fnx.arange(3.0), fnx.tensor([2, 1]))
    >>> p.data.tolist(), p.batch_sizes.tolist(), p.sorted_indices
    ([0.0, 1.0, 2.0], [2, 1], None)
    """

    __slots__ = ()

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError("PackedSequence: batch_sizes is required (build packed batches with "
                            "pack_padded_sequence or pack_sequence)")
        batch_sizes = fnx.asarray(_host_ints("PackedSequence", "batch_sizes", batch_sizes))
        if sorted_indices is not None:
            sorted_indices = fnx.asarray(
                _host_ints("PackedSequence", "sorted_indices", sorted_indices))
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        else:
            unsorted_indices = fnx.asarray(
                _host_ints("PackedSequence", "unsorted_indices", unsorted_indices))
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        """``data`` converted as ``Array.to`` converts it; the layout arrays stay on the host."""
        return type(self)(self.data.to(*args, **kwargs), *self[1:])

    def float(self):
        return type(self)(self.data.float(), *self[1:])

    def double(self):
        return type(self)(self.data.double(), *self[1:])

    def cpu(self):
        return self.to("cpu")

    @property
    def is_cuda(self):
        return self.data.device.type == "cuda"


def _packed_static(p):
    return tuple(None if a is None else tuple(a.tolist()) for a in p[1:])


register_pytree_node(
    PackedSequence, lambda p: ((p.data,), _packed_static(p)),
    lambda aux, children: PackedSequence(children[0], *aux))


# --- layout ----------------------------------------------------------------------------------


def _layout(batch_sizes):
    """``(valid (T, B) bool, flat (T, B) row of each packed step in data)`` for PyTorch's
    packed layout: step ``t`` holds the first ``batch_sizes[t]`` sequences."""
    bs = _host_ints("PackedSequence", "batch_sizes", batch_sizes)
    valid = np.arange(bs[0])[None, :] < bs[:, None]
    offsets = np.concatenate([[0], np.cumsum(bs)[:-1]])
    return valid, offsets[:, None] + np.arange(bs[0])[None, :]


def _lengths(batch_sizes):
    bs = _host_ints("PackedSequence", "batch_sizes", batch_sizes)
    return (np.arange(bs[0])[:, None] < bs[None, :]).sum(axis=1)


def _packed_to_padded(data, batch_sizes, padding_value=0.0, order=None):
    """``(T, B, *)`` padded time-major batch from packed ``data``; batch column ``j`` is sorted
    sequence ``order[j]`` (default: the sorted order). One gather from ``data`` with a padding
    row appended, so the gradient flows back to ``data``."""
    valid, rows = _layout(batch_sizes)
    total = int(valid.sum())
    if data.shape[0] != total:
        raise ShapeError(f"PackedSequence: data has {data.shape[0]} rows but batch_sizes "
                         f"{valid.sum(axis=1).tolist()} add up to {total}")
    index = np.where(valid, rows, total)
    if order is not None:
        index = index[:, np.asarray(order)]
    pad = fnp.full((1,) + tuple(data.shape[1:]), padding_value, dtype=data.dtype,
                   device=data.device)
    padded = fnp.take(fnp.concatenate([data, pad]),
                      fnp.asarray(index.reshape(-1), device=data.device), axis=0)
    return padded.reshape(index.shape + tuple(data.shape[1:]))


def _padded_to_packed(padded, batch_sizes):
    """Packed ``data`` from a ``(T, B, *)`` padded time-major batch in sorted order."""
    valid, _ = _layout(batch_sizes)
    n_t, n_b = valid.shape
    flat = padded[:n_t, :n_b].reshape((n_t * n_b,) + tuple(padded.shape[2:]))
    return fnp.take(flat, fnp.asarray(np.flatnonzero(valid), device=padded.device), axis=0)


# --- public functions ------------------------------------------------------------------------


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack ``L_i x *`` sequences into one ``(max_len, B, *)`` array (``(B, max_len, *)``
    with ``batch_first``), filling with ``padding_value`` on the ``padding_side``.

    >>> from fnx.nn.utils.rnn import pad_sequence
    >>> pad_sequence([fnx.tensor([1.0, 2.0]), fnx.tensor([3.0])], batch_first=True).tolist()
    [[1.0, 2.0], [3.0, 0.0]]
    """
    if padding_side not in ("right", "left"):
        raise ValueError(f"pad_sequence: padding_side must be 'left' or 'right', got "
                         f"{padding_side!r}")
    seqs = [fnp.asarray(s) for s in sequences]
    if not seqs:
        raise ValueError("pad_sequence: received an empty list of sequences")
    trailing = tuple(seqs[0].shape[1:])
    for i, s in enumerate(seqs):
        if s.ndim == 0 or tuple(s.shape[1:]) != trailing:
            raise ShapeError(f"pad_sequence: every sequence must be (L_i, *{trailing}), got "
                             f"shape {tuple(s.shape)} for sequence {i}")
    max_len = max(s.shape[0] for s in seqs)
    rest = [(0, 0)] * len(trailing)
    padded = [fnp.pad(s, [(0, max_len - s.shape[0]) if padding_side == "right"
                          else (max_len - s.shape[0], 0)] + rest,
                      constant_values=padding_value) for s in seqs]
    return fnp.stack(padded, axis=0 if batch_first else 1)


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch ``(T, B, *)`` (``(B, T, *)`` with ``batch_first``) whose sequence
    ``b`` has ``lengths[b]`` valid steps. ``enforce_sorted=True`` requires decreasing lengths;
    ``False`` sorts them and records the order in ``sorted_indices``.

    >>> from fnx.nn.utils.rnn import pack_padded_sequence
    >>> x = fnx.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
    >>> p = pack_padded_sequence(x, [3, 2], batch_first=True)
    >>> p.data.tolist(), p.batch_sizes.tolist()
    ([1.0, 4.0, 2.0, 5.0, 3.0], [2, 2, 1])
    """
    x = fnp.asarray(input)
    lens = _host_ints("pack_padded_sequence", "lengths", lengths)
    if x.ndim < 2:
        raise ShapeError(f"pack_padded_sequence: expected a padded batch with at least 2 "
                         f"dimensions, got shape {tuple(x.shape)}")
    if batch_first:
        x = fnp.swapaxes(x, 0, 1)
    if len(lens) != x.shape[1]:
        raise ShapeError(f"pack_padded_sequence: got {len(lens)} lengths for a batch of "
                         f"{x.shape[1]} sequences (input shape {tuple(fnp.asarray(input).shape)}"
                         f", batch_first={batch_first})")
    if len(lens) and (lens.min() <= 0 or lens.max() > x.shape[0]):
        raise ValueError(f"pack_padded_sequence: every length must be in [1, {x.shape[0]}] "
                         f"(the padded length), got {lens.tolist()}")
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise ValueError(f"pack_padded_sequence: `lengths` array must be sorted in "
                             f"decreasing order when `enforce_sorted` is True, got "
                             f"{lens.tolist()}. Pass enforce_sorted=False to sort it here")
        sorted_indices = None
    else:
        order = np.argsort(-lens, kind="stable")
        lens = lens[order]
        x = fnp.take(x, fnp.asarray(order, device=x.device), axis=1)
        sorted_indices = fnx.asarray(order)
    batch_sizes = (np.arange(lens[0])[:, None] < lens[None, :]).sum(axis=1)
    return PackedSequence(_padded_to_packed(x, batch_sizes), batch_sizes, sorted_indices)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """Inverse of ``pack_padded_sequence``: ``(padded, lengths)`` in the original batch order,
    padded to the longest sequence (or ``total_length``).

    >>> from fnx.nn.utils.rnn import pack_sequence, pad_packed_sequence
    >>> padded, lengths = pad_packed_sequence(pack_sequence(
    ...     [fnx.tensor([1.0]), fnx.tensor([2.0, 3.0])], enforce_sorted=False))
    >>> padded.tolist(), lengths.tolist()
    ([[1.0, 2.0], [0.0, 3.0]], [1, 2])
    """
    data, batch_sizes, _, unsorted = sequence
    lengths = _lengths(batch_sizes)
    max_len = len(batch_sizes)
    padded = _packed_to_padded(data, batch_sizes, padding_value,
                               None if unsorted is None else unsorted.tolist())
    if unsorted is not None:
        lengths = lengths[unsorted.tolist()]
    if total_length is not None:
        if total_length < max_len:
            raise ValueError(f"pad_packed_sequence: expected total_length to be at least the "
                             f"length of the longest sequence in input ({max_len}), got "
                             f"total_length={total_length}")
        extra = [(0, total_length - max_len)] + [(0, 0)] * (padded.ndim - 1)
        padded = fnp.pad(padded, extra, constant_values=padding_value)
    if batch_first:
        padded = fnp.swapaxes(padded, 0, 1)
    return padded, fnx.asarray(lengths)


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of ``L_i x *`` sequences (``pad_sequence`` then ``pack_padded_sequence``).

    >>> from fnx.nn.utils.rnn import pack_sequence
    >>> pack_sequence([fnx.tensor([1.0, 2.0]), fnx.tensor([3.0])]).data.tolist()
    [1.0, 3.0, 2.0]
    """
    lengths = [fnp.asarray(s).shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """Split a padded batch back into its list of sequences (``lengths[b]`` steps each).

    >>> from fnx.nn.utils.rnn import unpad_sequence
    >>> [s.tolist() for s in unpad_sequence(fnx.tensor([[1.0, 2.0], [3.0, 0.0]]), [2, 1],
    ...                                     batch_first=True)]
    [[1.0, 2.0], [3.0]]
    """
    x = fnp.asarray(padded_sequences)
    if not batch_first:
        x = fnp.swapaxes(x, 0, 1)
    lens = _host_ints("unpad_sequence", "lengths", lengths)
    return [x[b, :int(n)] for b, n in enumerate(lens)]


def unpack_sequence(packed_sequences):
    """The list of sequences in a ``PackedSequence``, in their original order.

    >>> from fnx.nn.utils.rnn import pack_sequence, unpack_sequence
    >>> seqs = [fnx.tensor([1.0]), fnx.tensor([2.0, 3.0])]
    >>> [s.tolist() for s in unpack_sequence(pack_sequence(seqs, enforce_sorted=False))]
    [[1.0], [2.0, 3.0]]
    """
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
