"""The layer modules of ``fnx.nn`` (``torch.nn.modules``), one file per family.

Each layer keeps PyTorch's constructor signature, attribute and state-dict names, default
initialisation and ``extra_repr``, and computes its forward pass with ``fnx.nn.functional``
(one implementation of the math). The public names are re-exported from ``fnx.nn``.

>>> fnx.nn.Linear(784, 128)
Linear(in_features=784, out_features=128, bias=True)
"""

from . import utils  # noqa: F401  (torch.nn.modules.utils)
