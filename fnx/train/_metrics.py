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


AMBIGUOUS_SAME_SHAPE = (
    "Accuracy.update: logits and labels both have shape {shape}: that is either one-hot (or "
    "class-probability) labels of a {classes}-class problem, or {classes} separate yes/no "
    "targets per example (multi-label, or a binary mask). For one-hot labels pass "
    "labels.argmax(-1); for yes/no targets use Accuracy(multilabel=True), which scores every "
    "element as logits > threshold")


class Accuracy(_CountingMetric):
    """Running classification accuracy from logits (or probabilities) and labels.

    * Multi-class: ``logits`` ``(..., C)`` and integer ``labels`` ``(...)``; the prediction is
      ``logits.argmax(-1)``.
    * Binary: ``logits`` and 0/1 ``labels`` of the same shape, or ``logits`` ``(..., 1)`` (an
      ``nn.Linear(h, 1)`` head for ``BCEWithLogitsLoss``) and ``labels`` ``(...)``; the
      prediction is ``logits > threshold`` (``0`` for logits, use ``0.5`` for
      probabilities).
    * Same shape ``(..., C)`` with ``C > 1`` could be one-hot labels or ``C`` yes/no targets
      per example, so it is an error unless ``multilabel=True`` (every element is a binary
      prediction, as torchmetrics' ``task="multilabel"``); pass one-hot labels as
      ``labels.argmax(-1)``.

    A NaN score is never correct (a diverged model scores 0, not the share of one class).

    >>> acc = fnx.train.Accuracy()
    >>> acc.update(fnx.tensor([[2.0, 1.0], [0.0, 3.0], [1.0, 0.0]]), fnx.tensor([0, 1, 1]))
    >>> round(acc.compute(), 4)
    0.6667
    >>> acc.reset(); acc.update(fnx.tensor([[-1.0], [2.0]]), fnx.tensor([0, 1])); acc.compute()
    1.0
    >>> tags = fnx.train.Accuracy(multilabel=True)
    >>> tags.update(fnx.tensor([[1.0, -1.0], [2.0, 3.0]]), fnx.tensor([[1, 0], [1, 0]]))
    >>> tags.compute()
    0.75
    """

    def __init__(self, threshold=0.0, multilabel=False):
        self.threshold = threshold
        self.multilabel = multilabel
        super().__init__()

    def update(self, logits, labels):
        """Count the correct predictions of one batch; reads nothing from the device."""
        logits, labels = _value(logits), _value(labels)
        shape, label_shape = tuple(logits.shape), tuple(labels.shape)
        if shape == (*label_shape, 1):  # one binary score per example
            logits = logits[..., 0]
        elif shape == label_shape and len(shape) >= 2 and shape[-1] > 1 and not self.multilabel:
            raise ValueError(AMBIGUOUS_SAME_SHAPE.format(shape=shape, classes=shape[-1]))
        if tuple(logits.shape) == label_shape:
            correct = (logits > self.threshold) == (labels != 0)
            self._add(correct & ~fnp.isnan(logits), labels.size)
            return
        logits, labels = _class_scores("Accuracy.update", logits, labels)
        # argmax picks a NaN when there is one: such a row must not count when it is the label
        correct = (logits.argmax(-1) == labels) & ~fnp.isnan(logits).any(-1)
        self._add(correct, labels.size)

    def __repr__(self):
        return f"Accuracy(threshold={self.threshold}, multilabel={self.multilabel})"


class TopKAccuracy(_CountingMetric):
    """Running top-``k`` accuracy: a prediction counts as correct when the label's score is
    among the ``k`` highest, i.e. fewer than ``k`` classes score strictly higher (a tie with
    the label counts in its favour). A NaN ranks above every number, as in ``torch.topk``,
    and a NaN label score is wrong: all-NaN logits score 0, as with ``Accuracy``.

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
        # every comparison with NaN is False: count NaNs as higher explicitly
        higher = ((logits > label_score) | fnp.isnan(logits)).sum(-1)
        self._add((higher < self.k) & ~fnp.isnan(label_score[..., 0]), labels.size)

    def __repr__(self):
        return f"TopKAccuracy(k={self.k})"
