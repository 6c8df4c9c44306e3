"""``fnx.scipy``: the parts of SciPy deep-learning code uses, written in fnx primitives."""

from . import special  # noqa: F401
