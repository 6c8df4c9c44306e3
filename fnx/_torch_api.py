"""The PyTorch-style top-level functions (``fnx.tensor``, ``fnx.zeros(2, 3)``, ``fnx.cat``...)."""

__all__ = []
