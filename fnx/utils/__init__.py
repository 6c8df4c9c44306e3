"""``fnx.utils``: the place of ``torch.utils``: ``fnx.utils.data`` is ``fnx.data``, so
``from torch.utils.data import DataLoader`` ports by renaming ``torch`` to ``fnx``, and
``fnx.utils.tensorboard`` has ``SummaryWriter``.

>>> import fnx.utils.data
>>> fnx.utils.data is fnx.data and fnx.utils.data.DataLoader is fnx.data.DataLoader
True
"""

import sys

from .. import data

# One module under two names: `import fnx.utils.data.sampler` must not load a second copy
# of fnx.data.sampler (its classes would differ from fnx.data's for isinstance).
for _name, _module in list(sys.modules.items()):
    if _name == data.__name__ or _name.startswith(data.__name__ + "."):
        sys.modules[__name__ + _name[len("fnx"):]] = _module
del _name, _module
