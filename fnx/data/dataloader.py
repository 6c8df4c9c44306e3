"""``DataLoader`` (``torch.utils.data.DataLoader``): batches from a dataset, optionally
prefetched by worker threads.

Workers are threads, not processes. The trace state of fnx is per thread (docs/architecture.md),
so a worker may run fnx code; threads share memory, so a batch reaches the training loop
without being pickled and copied between processes, datasets need not be picklable, and no
process is forked after Numba or OpenMP started threads (which is unsafe). Reading files,
decompressing and NumPy work release the GIL and overlap with the training step; Python-heavy
per-sample code does not run in parallel (the GIL), so for it workers give prefetching rather
than more CPU.

Order and randomness are deterministic whatever the number of workers: each epoch draws one
base seed from the loader's ``generator`` (the global generator if None), batches are
yielded in sampler order, and while a batch is fetched the random transforms of
``fnx.data.transforms`` draw from a stream seeded by the base seed and the batch's position
(``fnx.data._random``), so ``num_workers=4`` gives exactly the batches ``num_workers=0``
gives.
"""

import copy
import dataclasses
import itertools
import queue
import threading

from . import _random
from .collate import default_collate, default_convert
from .dataset import IterableDataset
from .sampler import BatchSampler, RandomSampler, SequentialSampler

__all__ = ["DataLoader", "WorkerInfo", "get_worker_info"]

_local = threading.local()
_END = object()  # an iterable worker ran out of data
_POLL_S = 0.1  # how often a blocked worker checks whether the loader stopped


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """What ``get_worker_info()`` returns inside a worker thread: ``id`` (0 to
    ``num_workers - 1``), ``num_workers``, ``seed`` (the epoch's base seed plus ``id``, as
    PyTorch) and ``dataset`` (this worker's shallow copy of the dataset)."""

    id: int
    num_workers: int
    seed: int
    dataset: object


def get_worker_info():
    """Inside a DataLoader worker thread, its ``WorkerInfo``; None in the main thread (and with
    ``num_workers=0``). An ``IterableDataset`` uses it to give each worker its own shard.

    >>> class Shards(fnx.data.IterableDataset):
    ...     def __iter__(self):
    ...         info = fnx.data.get_worker_info()
    ...         wid, n = (0, 1) if info is None else (info.id, info.num_workers)
    ...         return iter(range(wid, 6, n))
    >>> sorted(fnx.data.DataLoader(Shards(), batch_size=None, num_workers=2))
    [0, 1, 2, 3, 4, 5]
    >>> fnx.data.get_worker_info() is None
    True
    """
    return getattr(_local, "worker_info", None)


class DataLoader:
    """Batches from ``dataset``, as PyTorch's DataLoader (same arguments and defaults).

    * ``batch_size`` (default 1) groups the sampler's indices with a ``BatchSampler``;
      ``batch_size=None`` yields single samples, converted by ``default_convert``.
    * ``shuffle=True`` draws a new permutation each epoch from ``generator`` (an
      ``fnx.Generator``; the global one if None, so ``fnx.manual_seed`` fixes the order).
    * ``sampler`` / ``batch_sampler`` replace the default index order / batching;
      ``drop_last`` drops the last incomplete batch.
    * ``collate_fn`` turns a list of samples into a batch (``default_collate``: pytrees of
      fnx arrays).
    * ``num_workers > 0`` fetches and collates up to ``prefetch_factor * num_workers`` batches
      ahead in background threads (see the module docstring for why threads), yielding them
      in order; each worker calls ``worker_init_fn(worker_id)`` first and works on a shallow
      copy of the dataset, so attributes it sets (an open file, a shard) stay its own.
      ``timeout`` (seconds, 0 for none) bounds the wait for a batch.
    * ``pin_memory``, ``pin_memory_device``, ``persistent_workers``, ``multiprocessing_context``
      and ``in_order`` are accepted for PyTorch code: batches are host arrays that need no
      pinning, threads start in microseconds (so workers are started for each epoch), and
      batches always come in order.

    >>> ds = fnx.data.TensorDataset(fnx.arange(10.0).reshape(5, 2), fnx.arange(5))
    >>> loader = fnx.data.DataLoader(ds, batch_size=2, shuffle=True, drop_last=True)
    >>> len(loader), [tuple(x.shape) for x, y in loader]
    (2, [(2, 2), (2, 2)])
    """

    def __init__(self, dataset, batch_size=1, shuffle=None, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, pin_memory_device="",
                 in_order=True):
        del multiprocessing_context, pin_memory_device, in_order  # unused: see the docstring
        if num_workers < 0:
            raise ValueError("DataLoader: num_workers option should be non-negative; use "
                             "num_workers=0 to load in the main thread.")
        if timeout < 0:
            raise ValueError("DataLoader: timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError("DataLoader: prefetch_factor option could only be specified with "
                             "num_workers > 0; otherwise set prefetch_factor to None.")
        if persistent_workers and num_workers == 0:
            raise ValueError("DataLoader: persistent_workers option needs num_workers > 0")
        if isinstance(dataset, IterableDataset):
            for name, value in (("shuffle", shuffle), ("sampler", sampler),
                                ("batch_sampler", batch_sampler)):
                if value not in (None, False):
                    raise ValueError(f"DataLoader with IterableDataset: expected unspecified "
                                     f"{name} option, but got {name}={value!r}; an iterable "
                                     f"dataset decides its own order")
        elif shuffle not in (None, False) and sampler is not None:
            raise ValueError("DataLoader: sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError("DataLoader: batch_sampler option is mutually exclusive with "
                                 "batch_size, shuffle, sampler, and drop_last")
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError("DataLoader: batch_size=None option disables auto-batching and is "
                             "mutually exclusive with drop_last")

        if sampler is None and not isinstance(dataset, IterableDataset):
            sampler = (RandomSampler(dataset, generator=generator) if shuffle
                       else SequentialSampler(dataset))
        if batch_size is not None and batch_sampler is None and sampler is not None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)

        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        if prefetch_factor is None and num_workers > 0:
            prefetch_factor = 2
        self.prefetch_factor = prefetch_factor
        self.collate_fn = collate_fn or (default_convert if self._auto_collation is False
                                         else default_collate)
        self.pin_memory = pin_memory
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.generator = generator
        self.persistent_workers = persistent_workers

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None or (
            isinstance(self.dataset, IterableDataset) and self.batch_size is not None)

    def __len__(self):
        if isinstance(self.dataset, IterableDataset):
            n = len(self.dataset)  # a TypeError for datasets without a length, as PyTorch
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return len(self.batch_sampler if self.batch_sampler is not None else self.sampler)

    def __iter__(self):
        # drawn first, as PyTorch, so the shuffle order is the same for any num_workers
        base_seed = _random.draw_seed(self.generator)
        if isinstance(self.dataset, IterableDataset):
            if self.num_workers == 0:
                return self._iterable_batches(self.dataset, base_seed)
            return self._iterable_with_workers(base_seed)
        tasks = iter(self.batch_sampler if self.batch_sampler is not None else self.sampler)
        if self.num_workers == 0:
            return (self._fetch(self.dataset, t, base_seed, i) for i, t in enumerate(tasks))
        return self._map_with_workers(tasks, base_seed)

    # --- fetching ---------------------------------------------------------------------------

    def _fetch(self, dataset, task, base_seed, position):
        """One batch (or sample) of a map-style dataset; ``task`` is its index or indices."""
        with _random.batch_stream(base_seed, position):
            if not self._auto_collation:
                return self.collate_fn(dataset[task])
            if callable(getattr(dataset, "__getitems__", None)):
                samples = dataset.__getitems__(task)
            else:
                samples = [dataset[i] for i in task]
            return self.collate_fn(samples)

    def _iterable_batches(self, dataset, base_seed, worker_id=None):
        """The batches of an iterable dataset (in a worker: of its copy of the dataset)."""
        it = iter(dataset)
        entropy = (base_seed,) if worker_id is None else (base_seed, worker_id)
        for position in itertools.count():
            # the stream covers the dataset's own code too (it runs inside next(it)), but not
            # the consumer's loop body between batches
            with _random.batch_stream(*entropy, position):
                batch = self._next_iterable_batch(it)
            if batch is _END:
                return
            yield batch

    def _next_iterable_batch(self, it):
        if not self._auto_collation:
            sample = next(it, _END)
            return sample if sample is _END else self.collate_fn(sample)
        samples = list(itertools.islice(it, self.batch_size))
        if not samples or (self.drop_last and len(samples) < self.batch_size):
            return _END
        return self.collate_fn(samples)

    # --- worker threads ---------------------------------------------------------------------

    def _start_worker(self, worker_id, base_seed):
        """Runs first in worker thread ``worker_id``: its info and init function. Returns the
        dataset copy it works on."""
        dataset = copy.copy(self.dataset)
        _local.worker_info = WorkerInfo(worker_id, self.num_workers,
                                        (base_seed + worker_id) % 2 ** 64, dataset)
        if self.worker_init_fn is not None:
            self.worker_init_fn(worker_id)
        return dataset

    def _start_threads(self, work):
        threads = [threading.Thread(target=work, args=(w,), daemon=True,
                                    name=f"fnx-DataLoader-worker-{w}")
                   for w in range(self.num_workers)]
        for t in threads:
            t.start()
        return threads

    def _timed_out(self):
        return RuntimeError(f"DataLoader timed out after {self.timeout} seconds waiting for a "
                            f"batch from its worker threads; raise timeout (0 waits forever)")

    def _map_with_workers(self, tasks, base_seed):
        """Worker threads take (position, indices) tasks from one queue and post results by
        position; batches are yielded in position order, with at most
        ``prefetch_factor * num_workers`` tasks submitted ahead."""
        todo = queue.SimpleQueue()
        done = {}
        ready = threading.Condition()

        def work(worker_id):
            try:
                dataset = self._start_worker(worker_id, base_seed)
                failure = None
            except BaseException as err:  # reported with the first batch this worker takes
                dataset, failure = None, err
            while (task := todo.get()) is not None:
                position, indices = task
                try:
                    if failure is not None:
                        raise failure
                    result = (True, self._fetch(dataset, indices, base_seed, position))
                except BaseException as err:  # re-raised in the main thread
                    result = (False, err)
                with ready:
                    done[position] = result
                    ready.notify_all()

        def next_result(position):
            with ready:
                if not ready.wait_for(lambda: position in done, timeout=self.timeout or None):
                    raise self._timed_out()
                return done.pop(position)

        threads = self._start_threads(work)
        numbered = enumerate(tasks)
        submitted = 0
        try:
            for task in itertools.islice(numbered, self.prefetch_factor * self.num_workers):
                todo.put(task)
                submitted += 1
            for position in itertools.count():
                if position == submitted:
                    return
                ok, value = next_result(position)
                for task in itertools.islice(numbered, 1):
                    todo.put(task)
                    submitted += 1
                if not ok:
                    raise value
                yield value
        finally:
            for _ in threads:
                todo.put(None)

    def _iterable_with_workers(self, base_seed):
        """Each worker thread iterates its own copy of the dataset into its own bounded queue;
        batches are taken from the workers in turn, skipping workers that ran out, as
        PyTorch's round-robin over worker processes."""
        stop = threading.Event()
        outs = [queue.Queue(maxsize=self.prefetch_factor) for _ in range(self.num_workers)]

        def post(out, item):
            while not stop.is_set():
                try:
                    out.put(item, timeout=_POLL_S)
                    return True
                except queue.Full:
                    continue
            return False

        def work(worker_id):
            out = outs[worker_id]
            try:
                dataset = self._start_worker(worker_id, base_seed)
                for batch in self._iterable_batches(dataset, base_seed, worker_id):
                    if not post(out, (True, batch)):
                        return
            except BaseException as err:  # re-raised in the main thread
                post(out, (False, err))
                return
            post(out, (True, _END))

        self._start_threads(work)
        active = list(range(self.num_workers))
        try:
            while active:
                for w in list(active):
                    try:
                        ok, value = outs[w].get(timeout=self.timeout or None)
                    except queue.Empty:
                        raise self._timed_out() from None
                    if not ok:
                        raise value
                    if value is _END:
                        active.remove(w)
                    else:
                        yield value
        finally:
            stop.set()
