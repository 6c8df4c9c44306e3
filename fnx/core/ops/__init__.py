"""The primitives, one section each with every rule side by side (see docs/architecture.md)."""

from . import elementwise, linalg, reduction, shape  # noqa: F401
from . import conv, indexing, sorting  # noqa: F401,E402
