"""Running metrics: accumulate batch by batch on the arrays' device, read once at the end.

``update`` only queues array operations (no host read, so on a GPU it does not wait for the
step to finish); ``compute`` reads the result to a Python float, which is the one host sync.
"""

import math

import numpy as np

from .. import numpy as fnp
from ..core import dtypes
from ..core.array import Array

__all__ = ["Mean", "Accuracy", "TopKAccuracy"]


def _is_array(x):
    return isinstance(x, Array) or np.ndim(x) > 0


def _value(x):
    """An untracked fnx array: a metric must never extend the autograd tape it reads."""
    return x.detach() if isinstance(x, Array) else fnp.asarray(x)


class Mean:
    """Weighted running mean, e.g. of the loss over an epoch.

    ``update(value, weight=1)`` adds ``sum(value * weight)`` and ``sum(weight)`` (``weight``
    broadcasts against ``value``): pass a batch's mean loss with ``weight=batch_size`` for the
    mean over examples, or per-example losses with the default weight. Values may be Python
    numbers or fnx arrays; arrays are summed in float64 on their device.

    >>> m = fnx.train.Mean()
    >>> m.update(fnx.tensor(2.0), weight=3); m.update(4.0, weight=1)
    >>> m.compute()
    2.5
    >>> m.update(fnx.tensor([10.0, 20.0])); round(m.compute(), 4)
    6.6667
    """

    def __init__(self):
        self.reset()

    def reset(self):
        """Forget every update."""
        self._total = 0.0
        self._weight = 0.0

    def update(self, value, weight=1):
        """Accumulate ``value`` with ``weight``; queues device work, reads nothing."""
        if not _is_array(value) and not _is_array(weight):
            self._total += float(value) * float(weight)
            self._weight += float(weight)
            return
        value = _value(value).astype(dtypes.float64)
        if _is_array(weight):
            value, weight = fnp.broadcast_arrays(value, _value(weight).astype(dtypes.float64))
            self._total = self._total + (value * weight).sum()
            self._weight = self._weight + weight.sum()
        else:
            self._total = self._total + value.sum() * float(weight)
            self._weight += float(weight) * value.size

    def _result(self):
        """The mean, still on the device (no host read); NaN before any update."""
        if isinstance(self._weight, float) and self._weight == 0.0:
            return math.nan
        return self._total / self._weight

    def compute(self):
        """The weighted mean as a Python float (NaN before any update); reads the device."""
        return float(self._result())

    def __repr__(self):
        return f"{type(self).__name__}()"


class _CountingMetric:
    """Shared by the accuracies: a device count of correct predictions over a host count."""

    def __init__(self):
        self.reset()

    def reset(self):
        """Forget every update."""
        self._correct = 0
        self._count = 0

    def _add(self, correct, count):
        self._correct = self._correct + correct.sum()
        self._count += count

    def compute(self):
        """The fraction of correct predictions as a Python float (NaN before any update)."""
        return math.nan if self._count == 0 else int(self._correct) / self._count


def _class_scores(op, logits, labels):
    logits, labels = _value(logits), _value(labels)
    if logits.ndim != labels.ndim + 1 or tuple(logits.shape[:-1]) != tuple(labels.shape):
        raise ValueError(
            f"{op}: logits of shape {tuple(logits.shape)} and labels of shape "
            f"{tuple(labels.shape)} do not match: expected logits (..., num_classes) and "
            f"integer labels (...); for one-hot labels pass labels.argmax(-1)")
    if labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: labels must be integer class indices, got {labels.dtype}; "
                         f"convert them with labels.long()")
    return logits, labels


class Accuracy(_CountingMetric):
    """Running classification accuracy from logits (or probabilities) and labels.

    Multi-class: ``logits`` of shape ``(..., C)`` and integer ``labels`` of shape ``(...)``;
    the prediction is ``logits.argmax(-1)``. Binary: ``logits`` and 0/1 ``labels`` of the same
    shape; the prediction is ``logits > threshold`` (``0`` for logits, use ``0.5`` for
    probabilities).

    >>> acc = fnx.train.Accuracy()
    >>> acc.update(fnx.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), fnx.tensor([0, 1, 1]))
    >>> round(acc.compute(), 4)
    0.6667
    >>> acc.reset(); acc.update(fnx.tensor([-1.0, 2.0]), fnx.tensor([0.0, 1.0])); acc.compute()
    1.0
    """

    def __init__(self, threshold=0.0):
        self.threshold = threshold
        super().__init__()

    def update(self, logits, labels):
        """Count the correct predictions of one batch; reads nothing from the device."""
        logits, labels = _value(logits), _value(labels)
        if tuple(logits.shape) == tuple(labels.shape):
            self._add((logits > self.threshold) == (labels != 0), labels.size)
            return
        logits, labels = _class_scores("Accuracy.update", logits, labels)
        self._add(logits.argmax(-1) == labels, labels.size)

    def __repr__(self):
        return f"Accuracy(threshold={self.threshold})"


class TopKAccuracy(_CountingMetric):
    """Running top-``k`` accuracy: a prediction counts as correct when the label's score is
    among the ``k`` highest, i.e. fewer than ``k`` classes score strictly higher (a tie with
    the label counts in its favour).

    >>> top2 = fnx.train.TopKAccuracy(2)
    >>> top2.update(fnx.tensor([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1]]), fnx.tensor([2, 2]))
    >>> top2.compute()
    0.5
    """

    def __init__(self, k):
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"TopKAccuracy: k must be a positive int, got {k!r}")
        self.k = k
        super().__init__()

    def update(self, logits, labels):
        """Count the correct top-``k`` predictions of one batch; reads nothing."""
        logits, labels = _class_scores("TopKAccuracy.update", logits, labels)
        if self.k > logits.shape[-1]:
            raise ValueError(f"TopKAccuracy.update: k={self.k} is more than the "
                             f"{logits.shape[-1]} classes of logits {tuple(logits.shape)}")
        label_score = fnp.take_along_axis(logits, labels[..., None], axis=-1)
        higher = (logits > label_score).sum(-1)
        self._add(higher < self.k, labels.size)

    def __repr__(self):
        return f"TopKAccuracy(k={self.k})"
