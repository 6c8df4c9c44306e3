"""Training logs: a CSV file with one row per call, and training curves as a PNG."""

import csv
import math
import os

from ..core.array import Array

__all__ = ["CSVLogger", "plot_history"]


def _scalar(value):
    """A cell: 0-d arrays become Python numbers (a host read), the rest stays as given."""
    return value.item() if isinstance(value, Array) else value


class CSVLogger:
    """Append rows (``log(epoch=1, loss=0.3)``) to a CSV file: the header is written once,
    and each row is flushed to the file before ``log`` returns, so a killed run keeps every
    row it logged. Appending to an existing log with the same columns continues it (resume a
    run with the same path); different columns are an error. ``append=False`` starts the
    file over. Columns are fixed by ``fieldnames`` or by the first row.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "log.csv")
    >>> logger = fnx.train.CSVLogger(path)
    >>> logger.log(epoch=1, loss=fnx.tensor(0.5)); logger.log(epoch=2, loss=0.25)
    >>> print(open(path).read())
    epoch,loss
    1,0.5
    2,0.25
    <BLANKLINE>
    >>> fnx.train.CSVLogger(path).read()
    [{'epoch': 1, 'loss': 0.5}, {'epoch': 2, 'loss': 0.25}]
    """

    def __init__(self, path, fieldnames=None, append=True):
        self.path = os.fspath(path)
        self.fieldnames = None if fieldnames is None else list(fieldnames)
        if not append and os.path.exists(self.path):
            os.remove(self.path)
        existing = self._header()
        if existing is not None:
            self._check_columns(existing)
            self.fieldnames = existing

    def _header(self):
        """The existing file's columns, or ``None`` for a missing or empty file."""
        if not os.path.exists(self.path):
            return None
        with open(self.path, newline="") as f:
            return next(csv.reader(f), None)

    def _check_columns(self, existing):
        if self.fieldnames is not None and list(self.fieldnames) != list(existing):
            raise ValueError(
                f"CSVLogger: {self.path} has columns {existing}, but this run logs "
                f"{self.fieldnames}; log the same columns to resume it, use another path, or "
                f"pass append=False to start the file over")

    def log(self, row=None, **values):
        """Append one row (a dict and/or keywords); cells left out stay empty."""
        row = {**(row or {}), **values}
        if self.fieldnames is None:
            self.fieldnames = list(row)
        unknown = [name for name in row if name not in self.fieldnames]
        if unknown:
            raise ValueError(f"CSVLogger.log: columns {unknown} are not among the file's "
                             f"columns {self.fieldnames}")
        write_header = not os.path.exists(self.path) or os.path.getsize(self.path) == 0
        # opened per row: nothing is left buffered in memory, and no handle to close
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fieldnames)
            if write_header:
                writer.writeheader()
            writer.writerow({name: _scalar(value) for name, value in row.items()})
            f.flush()

    def read(self):
        """The rows logged so far as dicts, numbers parsed (an empty cell is ``None``)."""
        if self._header() is None:
            return []
        with open(self.path, newline="") as f:
            return [{name: _parse(cell) for name, cell in row.items()}
                    for row in csv.DictReader(f)]


def _parse(cell):
    if cell == "":
        return None
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def _columns(history):
    """``{name: [values per epoch]}`` from a dict of lists or a list of per-epoch dicts."""
    if isinstance(history, dict):
        return {name: list(values) for name, values in history.items()}
    names = list(dict.fromkeys(name for row in history for name in row))
    return {name: [row.get(name) for row in history] for name in names}


def _base_name(name):
    for prefix in ("train_", "val_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


def plot_history(history, path, title=None):
    """Save training curves as a PNG: one panel per quantity (``loss``, ``accuracy``, ...)
    with its training (``loss`` or ``train_loss``) and validation (``val_loss``) values per
    epoch. ``history`` is a dict of lists or a list of per-epoch dicts (what
    ``CSVLogger.read`` returns); an ``epoch`` column, if present, is the x axis. Needs
    matplotlib; draws with its Agg backend and leaves pyplot's state alone. Returns the
    matplotlib ``Figure``.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "curves.png")
    >>> history = {"loss": [1.0, 0.6, 0.4], "val_loss": [1.1, 0.8, 0.7],
    ...            "accuracy": [0.5, 0.7, 0.8], "val_accuracy": [0.45, 0.6, 0.65]}
    >>> fig = fnx.train.plot_history(history, path)
    >>> len(fig.axes), open(path, "rb").read(8) == b"\\x89PNG\\r\\n\\x1a\\n"
    (2, True)
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plot_history needs matplotlib: pip install matplotlib (or pip "
                          "install 'fnx[examples]')") from err
    columns = _columns(history)
    epochs = columns.pop("epoch", None)
    panels = {}
    for name in columns:
        panels.setdefault(_base_name(name), []).append(name)
    if not panels:
        raise ValueError("plot_history: history has no values to plot (only an epoch column)")
    fig = Figure(figsize=(5 * len(panels), 4), layout="constrained")
    FigureCanvasAgg(fig)  # Agg renders this figure whatever pyplot's backend is
    for ax, (base, names) in zip(fig.subplots(1, len(panels), squeeze=False)[0],
                                 panels.items(), strict=True):
        for name in names:
            values = [math.nan if v is None else float(_scalar(v)) for v in columns[name]]
            x = epochs if epochs is not None else range(1, len(values) + 1)
            label = "validation" if name.startswith("val_") else "train"
            ax.plot(list(x), values, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(base)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.savefig(os.fspath(path), format="png", dpi=100)
    return fig
