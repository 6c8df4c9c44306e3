"""``evaluate``: one pass over a loader in evaluation mode without recording gradients."""

from collections.abc import Mapping

import numpy as np

from ..autograd import no_grad
from ._metrics import Mean

__all__ = ["evaluate"]


class _BatchMean:
    """A plain function ``fn(outputs, targets)`` as a metric, averaged over the examples: it
    returns a batch's mean (weighted by the batch size) or one value per example."""

    def __init__(self, fn):
        self.fn = fn
        self.mean = Mean()

    def reset(self):
        self.mean.reset()

    def update(self, outputs, targets):
        value = self.fn(outputs, targets)
        self.mean.update(value, len(targets) if np.ndim(value) == 0 else 1)

    def compute(self):
        return self.mean.compute()


def _pair(batch):
    """``(inputs, targets)`` of a batch; a dict would unpack into its keys, so it is refused
    with the keys named rather than guessed (datasets name their fields freely)."""
    if isinstance(batch, Mapping):
        raise ValueError(
            f"evaluate: a batch must be an (inputs, targets) pair (a tuple or list, as a "
            f"TensorDataset gives), got a dict with keys {list(batch)}; pass the pairs, e.g. "
            f"evaluate(model, ((b['x'], b['y']) for b in loader), ...) with your keys")
    try:
        inputs, targets = batch
    except (TypeError, ValueError):
        raise ValueError(f"evaluate: a batch must be an (inputs, targets) pair, got "
                         f"{type(batch).__name__}") from None
    return inputs, targets


def evaluate(model, loader, loss_fn=None, metrics=None):
    """Run ``model`` over ``loader``'s ``(inputs, targets)`` batches under ``fnx.no_grad()``
    and ``model.eval()`` (each submodule's previous mode is restored afterwards) and return
    ``{'loss': mean loss, name: metric, ...}`` as Python floats.

    ``loss_fn(outputs, targets)`` returns a batch's mean loss; ``'loss'`` is its mean over
    the examples (batches weighted by their size, so a short last batch counts for what it
    holds). ``metrics`` maps names to metric objects (``Accuracy()``, ``TopKAccuracy(5)``:
    anything with ``reset``/``update(outputs, targets)``/``compute``), which are reset
    first, or to functions ``fn(outputs, targets)`` returning a batch's mean (averaged as
    the loss is) or one value per example. A batch is a tuple or list ``(inputs, targets)``;
    a dict batch is an error naming its keys (map it to pairs first).

    >>> model = fnx.nn.Linear(3, 2)
    >>> x, y = fnx.randn(10, 3), fnx.randint(0, 2, (10,))
    >>> loader = [(x[:4], y[:4]), (x[4:], y[4:])]
    >>> result = fnx.train.evaluate(model, loader, fnx.nn.CrossEntropyLoss(),
    ...                             metrics={"accuracy": fnx.train.Accuracy()})
    >>> sorted(result), model.training
    (['accuracy', 'loss'], True)
    """
    if loss_fn is None and not metrics:
        raise ValueError("evaluate: nothing to compute: pass loss_fn and/or metrics")
    tracked = {} if loss_fn is None else {"loss": _BatchMean(loss_fn)}
    for name, metric in (metrics or {}).items():
        if name in tracked:
            raise ValueError(f"evaluate: metric name {name!r} is taken by the loss_fn's result")
        tracked[name] = metric if hasattr(metric, "compute") else _BatchMean(metric)
    for metric in tracked.values():
        metric.reset()
    modes = [(module, module.training) for module in model.modules()]
    batches = 0
    try:
        model.eval()
        with no_grad():
            for batch in loader:
                inputs, targets = _pair(batch)
                outputs = model(inputs)
                for metric in tracked.values():
                    metric.update(outputs, targets)
                batches += 1
    finally:
        for module, training in modes:  # each flag on its own: train(mode) recurses
            object.__setattr__(module, "training", training)
    if batches == 0:
        raise ValueError("evaluate: the loader yielded no batches")
    return {name: metric.compute() for name, metric in tracked.items()}
