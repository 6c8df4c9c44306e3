"""Host-side random numbers for data loading, drawn from fnx's generators.

Shuffling, sampling and augmentation run on the host with NumPy, but their randomness comes
from an ``fnx.Generator`` (the global one unless one is given), so ``fnx.manual_seed`` fixes
it. An fnx key split costs milliseconds eagerly, too much per sample, so a NumPy generator
is seeded from one fnx draw and then reused:

* ``numpy_rng(generator)`` draws one fnx key per call: for per-epoch work (a permutation);
* ``host_stream(generator)`` keeps one NumPy stream per fnx generator and state: while the fnx
  generator is untouched, successive calls continue the same stream; once it moves (a
  ``manual_seed``, an ``fnx.rand``, a new epoch's shuffle) the next call seeds a new stream
  from it. The numbers are therefore a function of the seed and of the sequence of calls;
* a DataLoader fetching a batch installs a stream of its own for the current thread
  (``batch_stream``), seeded by the epoch's base seed and the batch's position, so random
  transforms give the same batches whichever worker thread runs them.
"""

import contextlib
import threading
import weakref

import numpy as np

_local = threading.local()
_streams = weakref.WeakKeyDictionary()  # fnx Generator -> (its key words then, NumPy stream)
_lock = threading.Lock()


def _generator(generator):
    if generator is not None:
        return generator
    from .._torch_api import default_generator

    return default_generator


def draw_seed(generator=None):
    """A 64-bit integer seed drawn from ``generator`` (the global one if None); advances it."""
    hi, lo = _generator(generator).next_key().tolist()
    return (hi << 32) | lo


def numpy_rng(generator=None):
    """A fresh NumPy generator seeded by one draw from the fnx ``generator``."""
    return np.random.default_rng(draw_seed(generator))


def host_stream(generator=None):
    """The NumPy stream random transforms draw from (see the module docstring)."""
    if generator is None:
        stream = getattr(_local, "stream", None)
        if stream is not None:
            return stream
    generator = _generator(generator)
    with _lock:
        entry = _streams.get(generator)
        # compared by value: the generator updates its key in place (fnx.jit keeps finding
        # the same array); two 32-bit words collide by chance with probability 2**-64
        if entry is None or entry[0] != generator.get_state().tolist():
            seed = draw_seed(generator)
            entry = (generator.get_state().tolist(), np.random.default_rng(seed))
            _streams[generator] = entry
        return entry[1]


@contextlib.contextmanager
def batch_stream(*entropy):
    """Within the block, transforms on this thread draw from a stream seeded by ``entropy``."""
    previous = getattr(_local, "stream", None)
    _local.stream = np.random.default_rng(entropy)
    try:
        yield
    finally:
        _local.stream = previous
