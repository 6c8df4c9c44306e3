"""``fnx.utils.tensorboard``: ``SummaryWriter`` as in ``torch.utils.tensorboard``, backed by
the ``tensorboardX`` package (``pip install tensorboardX``, or the ``tensorboard`` extra:
``pip install 'fnx[tensorboard]'``); fnx itself does not depend on it.

>>> import importlib.util, tempfile
>>> from fnx.utils.tensorboard import SummaryWriter
>>> if importlib.util.find_spec("tensorboardX"):  # the optional package is installed
...     with SummaryWriter(tempfile.mkdtemp()) as writer:
...         writer.add_scalar("train/loss", fnx.tensor(0.25), global_step=1)
"""

import os

from .. import tree
from ..core.array import Array

__all__ = ["SummaryWriter"]

MISSING_TENSORBOARDX = (
    "fnx.utils.tensorboard.SummaryWriter needs the tensorboardX package, which is not "
    "installed: pip install tensorboardX (or pip install 'fnx[tensorboard]')")

ADD_GRAPH_UNSUPPORTED = (
    "SummaryWriter.add_graph is not supported in fnx: TensorBoard's graph view comes from "
    "tracing a torch model with torch.jit.trace, and an fnx model is not a torch model. To "
    "see what a model computes, print its traced program: print(fnx.make_ir(model)(inputs))")


def _host(leaf):
    """tensorboardX knows NumPy and Python numbers, not fnx arrays (reading them syncs)."""
    if not isinstance(leaf, Array):
        return leaf
    return leaf.item() if leaf.ndim == 0 else leaf.numpy()


class SummaryWriter:
    """Write TensorBoard event files under ``log_dir`` (``runs/<date>_<host>`` by default).

    Every ``add_*`` method of ``tensorboardX.SummaryWriter`` is available (``add_scalar``,
    ``add_scalars``, ``add_histogram``, ``add_image``, ``add_text``, ``add_hparams``,
    ``add_figure``, ...) with the same arguments; fnx arrays among them, also inside lists
    and dicts, are converted to NumPy first. ``add_graph`` needs a torch model and raises
    ``NotImplementedError``. View the files with ``tensorboard --logdir runs``.

    >>> import importlib.util, tempfile
    >>> from fnx.utils.tensorboard import SummaryWriter
    >>> if importlib.util.find_spec("tensorboardX"):
    ...     writer = SummaryWriter(tempfile.mkdtemp())
    ...     writer.add_histogram("weights", fnx.randn(100), global_step=0)
    ...     writer.close()
    """

    def __init__(self, log_dir=None, **kwargs):
        try:
            from tensorboardX import SummaryWriter as TensorboardXWriter
        except ImportError as err:
            raise ImportError(MISSING_TENSORBOARDX) from err
        self._writer = TensorboardXWriter(None if log_dir is None else os.fspath(log_dir),
                                          **kwargs)

    @property
    def log_dir(self):
        """The directory the event files go to."""
        return self._writer.logdir

    def __getattr__(self, name):
        if name == "_writer":  # __init__ failed before setting it
            raise AttributeError(name)
        attr = getattr(self._writer, name)
        if not name.startswith("add_"):
            return attr

        def add(*args, **kwargs):
            return attr(*tree.map(_host, args), **tree.map(_host, kwargs))

        add.__name__ = name
        add.__doc__ = attr.__doc__
        return add

    def add_graph(self, model, input_to_model=None, verbose=False, **kwargs):
        """Not supported: tensorboardX draws the graph by tracing a torch model with
        ``torch.jit.trace``, which an fnx model is not (it would fail with "No module named
        'torch'" or a torch error), so it raises ``NotImplementedError`` saying so. To look at
        the computation, print the traced program: ``print(fnx.make_ir(model)(inputs))``.

        >>> import importlib.util, tempfile
        >>> from fnx.utils.tensorboard import SummaryWriter
        >>> if importlib.util.find_spec("tensorboardX"):
        ...     with SummaryWriter(tempfile.mkdtemp()) as writer:
        ...         try:
        ...             writer.add_graph(fnx.nn.Linear(2, 2), fnx.ones(1, 2))
        ...         except NotImplementedError as err:
        ...             assert "print(fnx.make_ir(model)(inputs))" in str(err)
        """
        del model, input_to_model, verbose, kwargs  # unused
        raise NotImplementedError(ADD_GRAPH_UNSUPPORTED)

    def flush(self):
        """Write pending events to disk."""
        self._writer.flush()

    def close(self):
        """Flush and close the event files."""
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
