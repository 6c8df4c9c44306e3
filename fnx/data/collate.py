"""Batching samples into pytrees of fnx arrays (``torch.utils.data.default_collate``)."""

import collections.abc

import numpy as np

__all__ = ["default_collate", "default_convert"]

_COLLATE_TYPES = "fnx arrays, numpy arrays, numbers, strings, dicts or lists"


def _is_namedtuple(x):
    return isinstance(x, tuple) and hasattr(x, "_fields")


def _numeric_numpy(x):
    return isinstance(x, (np.ndarray, np.generic)) and x.dtype.kind not in "OSUV"


def _stack(samples):
    """Stack fnx arrays along a new first axis. Untracked host arrays are stacked by NumPy
    (one copy, no per-sample primitive calls); tracked or GPU arrays go through
    ``fnx.numpy.stack``, which records them for autograd and keeps their device."""
    from .. import numpy as fnp
    from ..core.array import Array

    shapes = {tuple(s.shape) for s in samples}
    if len(shapes) > 1:
        raise ValueError(f"default_collate: the samples of a batch have different shapes "
                         f"{sorted(shapes)}; pad or crop them to one shape in the dataset, or "
                         f"pass a collate_fn that batches them (e.g. returns a list)")
    if all(type(s) is Array and not s.requires_grad and s.device.type == "cpu"
           for s in samples):
        return fnp.asarray(np.stack([s.numpy() for s in samples]))
    return fnp.stack(samples)


def default_collate(batch):
    """Collate a list of samples into a batch, as PyTorch's ``default_collate``: fnx arrays
    and NumPy arrays are stacked along a new first axis into an fnx array; Python ints become
    an int64 array, floats an array of the default float dtype (float32, as
    ``fnx.tensor([0.5])``; PyTorch makes float64 here), bools a bool array, NumPy scalars an
    array of their dtype; strings stay a list; dicts, namedtuples and lists are collated
    field by field, and tuples become lists (as PyTorch).

    >>> xs, ys = fnx.data.default_collate([(np.zeros(2), 1), (np.ones(2), 0)])
    >>> xs.shape, xs.dtype, ys.tolist(), ys.dtype
    ((2, 2), dtype('float64'), [1, 0], dtype('int64'))
    >>> fnx.data.default_collate([{"x": 0.5, "name": "a"}, {"x": 1.5, "name": "b"}])
    {'x': Array([0.5, 1.5], dtype=float32), 'name': ['a', 'b']}
    """
    from .. import numpy as fnp
    from ..core.dtypes import default_float
    from ..numpy._core import is_array

    if not isinstance(batch, collections.abc.Sequence) or not batch:
        raise TypeError(f"default_collate: expected a non-empty list of samples, got "
                        f"{batch!r:.80}")
    elem = batch[0]
    if is_array(elem):
        return _stack(batch)
    if isinstance(elem, np.ndarray) and _numeric_numpy(elem):
        return _stack([fnp.asarray(b) for b in batch])
    if isinstance(elem, np.generic) and _numeric_numpy(elem):
        return fnp.asarray(np.asarray(batch))
    if isinstance(elem, bool):
        return fnp.asarray(np.asarray(batch, dtype=np.bool_))
    if isinstance(elem, int):
        return fnp.asarray(np.asarray(batch, dtype=np.int64))
    if isinstance(elem, float):
        return fnp.asarray(np.asarray(batch, dtype=default_float()))
    if isinstance(elem, (str, bytes)):
        return batch
    if isinstance(elem, collections.abc.Mapping):
        collated = {key: default_collate([d[key] for d in batch]) for key in elem}
        try:
            return type(elem)(collated)
        except TypeError:  # a mapping type that cannot be built from a dict
            return collated
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch, strict=True)))
    if isinstance(elem, collections.abc.Sequence):
        if any(len(s) != len(elem) for s in batch):
            raise RuntimeError(f"default_collate: each element in list of batch should be of "
                               f"equal size, got lengths {[len(s) for s in batch]}")
        collated = [default_collate(list(s)) for s in zip(*batch)]
        if isinstance(elem, tuple):
            return collated  # a list, as PyTorch
        try:
            return type(elem)(collated)
        except TypeError:  # a sequence type that cannot be built from a list
            return collated
    raise TypeError(f"default_collate: batch must contain {_COLLATE_TYPES}; found "
                    f"{getattr(elem, 'dtype', type(elem))}")


def default_convert(data):
    """Convert NumPy arrays in a sample to fnx arrays, keeping everything else (the
    DataLoader's ``collate_fn`` when ``batch_size=None``), as PyTorch's ``default_convert``:
    numbers stay Python numbers, tuples become lists.

    >>> fnx.data.default_convert((np.arange(2), 3))
    [Array([0, 1], dtype=int64), 3]
    """
    from .. import numpy as fnp

    if _numeric_numpy(data):
        return fnp.asarray(data)
    if isinstance(data, (str, bytes)):
        return data
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(value) for key, value in data.items()}
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence):
        converted = [default_convert(d) for d in data]
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    return data
