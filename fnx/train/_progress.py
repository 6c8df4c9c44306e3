"""A tqdm progress bar over batches with running metrics and throughput in its postfix."""

import math
import time

from .. import numpy as fnp, tree
from ..core.array import Array
from ._metrics import Mean

__all__ = ["ProgressBar"]


def _leading_size(batch):
    """Samples in a batch: the leading dimension of its first array leaf (host metadata, so
    no device read); ``None`` when no leaf has one."""
    for leaf in tree.leaves(batch):
        shape = getattr(leaf, "shape", None)
        if shape:
            return int(shape[0])
    return None


class ProgressBar:
    """Iterate over ``iterable`` (usually a DataLoader) behind a tqdm bar whose postfix shows
    the running mean of each metric given to :meth:`update_metrics` and the throughput in
    samples per second.

    Metrics may be fnx arrays: ``update_metrics`` only queues their accumulation on the
    device. The postfix reads them from the device (a host sync, as ``loss.item()`` is) at
    most once per ``mininterval`` seconds and once more when the bar closes, in one transfer
    for all metrics, so a GPU step is not made to wait on every batch. Samples per batch come
    from the ``n`` given to ``update_metrics``, else from the batch's leading dimension.
    ``disable=True`` (or the environment variable ``TQDM_DISABLE=1``) prints nothing and
    reads nothing until :meth:`metrics` is called.

    >>> import io
    >>> batches = [(fnx.zeros((4, 2)), fnx.zeros(4)) for _ in range(3)]
    >>> bar = fnx.train.ProgressBar(batches, desc="epoch 1", file=io.StringIO())
    >>> for step, (x, y) in enumerate(bar):
    ...     bar.update_metrics(loss=fnx.tensor(float(step)), acc=0.5)
    >>> bar.metrics()
    {'loss': 1.0, 'acc': 0.5}
    >>> "loss=1, acc=0.5, samples/s=" in bar.postfix
    True
    """

    def __init__(self, iterable, *, desc=None, total=None, disable=False, file=None,
                 leave=True, mininterval=0.1, unit="batch"):
        # imported here so `import fnx.train` does not pay for tqdm until a bar is made
        from tqdm import tqdm

        if total is None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self._iterable = iterable
        self._bar = tqdm(total=total, desc=desc, disable=disable, file=file, leave=leave,
                         mininterval=mininterval, unit=unit, dynamic_ncols=True)
        self.mininterval = mininterval
        self._means = {}
        self._samples = 0
        self._batch_samples = None
        self._start = None
        self._last_postfix = -math.inf
        self._closed = False

    def __len__(self):
        return len(self._iterable)

    def __iter__(self):
        self._start = time.perf_counter()
        in_flight = False
        try:
            for batch in self._iterable:
                self._batch_samples = _leading_size(batch)
                in_flight = True
                yield batch
                in_flight = False
                self._count_batch()
        finally:  # also on `break` or an exception in the loop body
            if in_flight:  # the batch the loop body was working on counts too
                self._count_batch()
            self.close()

    def _count_batch(self):
        self._samples += self._batch_samples or 0
        self._render_postfix()
        self._bar.update(1)

    def update_metrics(self, n=None, **values):
        """Add this batch's values (``loss=loss, acc=acc``: Python numbers or 0-d fnx arrays,
        averaged with weight ``n``, the batch's sample count, which defaults to its leading
        dimension). Reads nothing from the device."""
        if n is not None:
            self._batch_samples = int(n)
        weight = self._batch_samples or 1
        for name, value in values.items():
            self._means.setdefault(name, Mean()).update(value, weight)

    def metrics(self):
        """``{name: running mean}`` as Python floats (one host read for all of them)."""
        results = {name: mean._result() for name, mean in self._means.items()}
        on_device = [name for name, value in results.items() if isinstance(value, Array)]
        if on_device:
            host = fnp.stack([results[name] for name in on_device]).tolist()
            results.update(zip(on_device, host, strict=True))
        return {name: float(value) for name, value in results.items()}

    @property
    def samples_per_second(self):
        """Samples seen so far over the seconds since the iteration started (the host's
        clock: on a GPU it is exact at the postfix's syncs)."""
        if self._start is None:
            return 0.0
        return self._samples / max(time.perf_counter() - self._start, 1e-9)

    @property
    def postfix(self):
        """The postfix text last rendered (``'loss=0.431, samples/s=1.2k'``)."""
        return self._bar.postfix or ""

    def _render_postfix(self, force=False):
        if self._bar.disable:
            return
        now = time.perf_counter()
        if not force and now - self._last_postfix < self.mininterval:
            return
        self._last_postfix = now
        shown = dict(self.metrics())
        shown["samples/s"] = self._bar.format_sizeof(self.samples_per_second)
        self._bar.set_postfix(shown, refresh=False)

    def close(self):
        """Render the final running values and close the bar (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._render_postfix(force=True)
        self._bar.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def __repr__(self):
        return f"ProgressBar({self._bar})"
