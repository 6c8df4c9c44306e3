"""Embedding and EmbeddingBag (``torch.nn.Embedding``, ``torch.nn.EmbeddingBag``)."""

import fnx
from ...core.errors import ShapeError
from .. import functional as F
from .. import init
from ..module import Module, Parameter
from ._util import new_parameter

__all__ = ["Embedding", "EmbeddingBag"]


def _pretrained_shape(name, embeddings):
    if embeddings.ndim != 2:
        raise ShapeError(f"{name}.from_pretrained: embeddings are expected to be 2-dimensional "
                         f"(num_embeddings, embedding_dim), got shape {tuple(embeddings.shape)}")
    return embeddings.shape


class _EmbeddingTable(Module):
    """The table both lookups share: ``weight (num_embeddings, embedding_dim)`` drawn
    ``N(0, 1)`` with the ``padding_idx`` row zeroed, or the given ``_weight``."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                 scale_grad_by_freq, sparse, _weight, freeze, device, dtype):
        super().__init__()
        name = type(self).__name__
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = F._padding_idx(name, padding_idx, num_embeddings)
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = new_parameter((num_embeddings, embedding_dim), dtype, device)
            self.reset_parameters()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ShapeError(f"{name}: shape of weight {tuple(_weight.shape)} does not "
                                 f"match num_embeddings and embedding_dim ({num_embeddings}, "
                                 f"{embedding_dim})")
            self.weight = Parameter(_weight)
        self.weight.requires_grad_(not freeze)

    def reset_parameters(self):
        """``N(0, 1)`` draws, with the ``padding_idx`` row zeroed."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            with fnx.no_grad():
                self.weight[self.padding_idx] = 0


class Embedding(_EmbeddingTable):
    """A lookup table: integer ``input (*)`` -> rows of ``weight (num_embeddings,
    embedding_dim)``, drawn ``N(0, 1)``. ``padding_idx``'s row starts at zero and gets no
    gradient; ``max_norm`` renormalizes looked-up rows in place.

    >>> emb = fnx.nn.Embedding(10, 3, padding_idx=0)
    >>> emb, emb(fnx.tensor([[0, 2], [4, 9]])).shape, emb.weight[0].tolist()
    (Embedding(10, 3, padding_idx=0), (2, 2, 3), [0.0, 0.0, 0.0])
    """

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False, _weight=None,
                 _freeze=False, device=None, dtype=None):
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, _freeze, device, dtype)

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx, self.max_norm, self.norm_type,
                           self.scale_grad_by_freq, self.sparse)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        if self.sparse:
            s += ", sparse=True"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        """An Embedding whose table is ``embeddings`` (2-D; shared, not copied), frozen
        unless ``freeze=False``.

        >>> emb = fnx.nn.Embedding.from_pretrained(fnx.tensor([[1.0, 2.3], [4.0, 5.1]]))
        >>> emb(fnx.tensor([1])).tolist(), emb.weight.requires_grad
        ([[4.0, 5.099999904632568]], False)
        """
        rows, cols = _pretrained_shape("Embedding", embeddings)
        return cls(rows, cols, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse,
                   _weight=embeddings, _freeze=freeze)


class EmbeddingBag(_EmbeddingTable):
    """Sums, means or maxima of bags of embeddings: a 2-D ``input (B, n)`` is ``B`` bags of
    ``n`` indices; a 1-D ``input`` is split into bags at ``offsets``. ``per_sample_weights``
    scale each lookup (``mode='sum'``).

    >>> bag = fnx.nn.EmbeddingBag(10, 3, mode="sum")
    >>> bag, bag(fnx.tensor([1, 2, 4, 5, 4, 3]), fnx.tensor([0, 4])).shape
    (EmbeddingBag(10, 3, mode='sum'), (2, 3))
    """

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, device=None, dtype=None):
        if mode not in ("sum", "mean", "max"):
            raise ValueError(f"EmbeddingBag: mode must be 'sum', 'mean' or 'max', got {mode!r}")
        super().__init__(num_embeddings, embedding_dim, padding_idx, max_norm, norm_type,
                         scale_grad_by_freq, sparse, _weight, False, device, dtype)
        self.mode, self.include_last_offset = mode, include_last_offset

    def forward(self, input, offsets=None, per_sample_weights=None):
        return F.embedding_bag(input, self.weight, offsets, self.max_norm, self.norm_type,
                               self.scale_grad_by_freq, self.mode, self.sparse,
                               per_sample_weights, self.include_last_offset, self.padding_idx)

    def extra_repr(self):
        s = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.max_norm is not None:
            s += f", max_norm={self.max_norm}"
        if self.norm_type != 2:
            s += f", norm_type={self.norm_type}"
        if self.scale_grad_by_freq:
            s += f", scale_grad_by_freq={self.scale_grad_by_freq}"
        s += f", mode={self.mode!r}"
        if self.padding_idx is not None:
            s += f", padding_idx={self.padding_idx}"
        return s

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, max_norm=None, norm_type=2.0,
                        scale_grad_by_freq=False, mode="mean", sparse=False,
                        include_last_offset=False, padding_idx=None):
        """An EmbeddingBag whose table is ``embeddings`` (2-D), frozen unless
        ``freeze=False``.

        >>> bag = fnx.nn.EmbeddingBag.from_pretrained(fnx.tensor([[1.0, 2.0], [3.0, 4.0]]))
        >>> bag(fnx.tensor([[0, 1]])).tolist()
        [[2.0, 3.0]]
        """
        rows, cols = _pretrained_shape("EmbeddingBag", embeddings)
        bag = cls(rows, cols, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                  embeddings, include_last_offset, padding_idx)
        bag.weight.requires_grad_(not freeze)
        return bag
