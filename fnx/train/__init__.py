"""``fnx.train``: optional helpers for training loops. A plain ``for`` loop over a DataLoader
with ``loss.backward()`` and ``optimizer.step()`` stays the first-class way to train; these
add the pieces every such loop re-writes (docs/training.md):

* :class:`ProgressBar`: a tqdm bar over batches with running metrics and samples/s;
* :class:`EarlyStopping`: patience on a validation metric, keeping the best weights;
* :class:`Mean`, :class:`Accuracy`, :class:`TopKAccuracy`: running metrics on fnx arrays;
* :func:`evaluate`: a pass over a loader under ``no_grad`` and ``eval()``;
* :class:`CSVLogger` and :func:`plot_history`: a per-epoch log and its curves as a PNG.

>>> acc = fnx.train.Accuracy()
>>> acc.update(fnx.tensor([[0.1, 0.9], [0.8, 0.2]]), fnx.tensor([1, 1])); acc.compute()
0.5
"""

from ._early_stopping import EarlyStopping
from ._evaluate import evaluate
from ._logging import CSVLogger, plot_history
from ._metrics import Accuracy, Mean, TopKAccuracy
from ._progress import ProgressBar

__all__ = ["ProgressBar", "EarlyStopping", "Mean", "Accuracy", "TopKAccuracy", "evaluate",
           "CSVLogger", "plot_history"]
