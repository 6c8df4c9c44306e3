"""The primitives, one section each with every rule side by side (see docs/architecture.md)."""

from . import elementwise, linalg, reduction, shape  # noqa: F401
from . import conv, indexing, pooling, sorting  # noqa: F401,E402
from . import normalization  # noqa: F401,E402
from . import attention, embedding  # noqa: F401,E402
