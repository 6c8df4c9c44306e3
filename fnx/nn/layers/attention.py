"""``MultiheadAttention`` (``torch.nn.MultiheadAttention``): PyTorch's parameters, masks, shapes
and the two paths of ``F.multi_head_attention_forward`` (explicit softmax weights when
``need_weights``, ``F.scaled_dot_product_attention`` otherwise)."""

import math

from ... import numpy as fnp
from ...core.errors import DTypeError, ShapeError
from .. import functional as F
from .. import init
from ..module import Module
from ._util import new_parameter
from .linear import Linear

__all__ = ["MultiheadAttention", "NonDynamicallyQuantizableLinear"]


class NonDynamicallyQuantizableLinear(Linear):
    """``Linear`` under PyTorch's name for ``MultiheadAttention.out_proj`` (so reprs match).

    >>> fnx.nn.NonDynamicallyQuantizableLinear(4, 4)
    NonDynamicallyQuantizableLinear(in_features=4, out_features=4, bias=True)
    """


def _float_mask(name, what, mask, dtype):
    """PyTorch's canonical mask: bool ``True`` (not allowed to attend) -> ``-inf``, float masks
    are added as they are."""
    if mask is None:
        return None
    mask = fnp.asarray(mask)
    if mask.dtype == fnp.bool_:
        return fnp.where(mask, -math.inf, 0.0).astype(dtype)
    if mask.dtype.kind != "f":
        raise DTypeError(f"{name}: only bool and floating types of {what} are supported, got "
                         f"dtype {mask.dtype}")
    return mask.astype(dtype)


def _pad_last(mask):
    """One more key column (bias_k/v, zero attention) that every query may attend to."""
    if mask is None:
        return None
    return fnp.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, 1)])


class MultiheadAttention(Module):
    """Multi-head attention, ``Concat(head_1, ..., head_h) W_O`` with
    ``head_i = softmax(Q W_i^Q (K W_i^K)^T / sqrt(d_head) + mask) V W_i^V``.

    Parameters as PyTorch: ``in_proj_weight (3E, E)`` / ``in_proj_bias`` (or
    ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when ``kdim``/``vdim`` differ from
    ``embed_dim``), ``out_proj``, optional ``bias_k``/``bias_v``. ``forward`` returns
    ``(attn_output, attn_weights)``; weights are averaged over heads unless
    ``average_attn_weights=False``, and ``None`` when ``need_weights=False``. Boolean masks mark
    with ``True`` the positions that may NOT be attended (PyTorch's convention here).

    >>> mha = fnx.nn.MultiheadAttention(8, 2, batch_first=True)
    >>> x = fnx.randn(3, 5, 8)
    >>> out, weights = mha(x, x, x)
    >>> out.shape, weights.shape
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"MultiheadAttention: embed_dim and num_heads must be greater than "
                             f"0, got embed_dim={embed_dim} and num_heads={num_heads} instead")
        if embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim must be divisible by num_heads, "
                             f"got embed_dim={embed_dim} and num_heads={num_heads}")
        self.embed_dim = embed_dim
        self.kdim = kdim if kdim is not None else embed_dim
        self.vdim = vdim if vdim is not None else embed_dim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads, self.dropout, self.batch_first = num_heads, dropout, batch_first
        self.head_dim = embed_dim // num_heads
        if self._qkv_same_embed_dim:
            self.in_proj_weight = new_parameter((3 * embed_dim, embed_dim), dtype, device)
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = new_parameter((embed_dim, embed_dim), dtype, device)
            self.k_proj_weight = new_parameter((embed_dim, self.kdim), dtype, device)
            self.v_proj_weight = new_parameter((embed_dim, self.vdim), dtype, device)
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = new_parameter((3 * embed_dim,), dtype, device)
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(embed_dim, embed_dim, bias=bias,
                                                        device=device, dtype=dtype)
        if add_bias_kv:
            self.bias_k = new_parameter((1, 1, embed_dim), dtype, device)
            self.bias_v = new_parameter((1, 1, embed_dim), dtype, device)
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self):
        """PyTorch's: xavier-uniform projections, zero in/out biases, xavier-normal bias_k/v
        (``out_proj.weight`` keeps Linear's initialisation)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for w in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(w)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)
        for b in (self.bias_k, self.bias_v):
            if b is not None:
                init.xavier_normal_(b)

    def _name(self):
        return f"MultiheadAttention(embed_dim={self.embed_dim}, num_heads={self.num_heads})"

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        """``query (L, N, E)`` (``(N, L, E)`` with ``batch_first``; ``(L, E)`` unbatched),
        ``key (S, N, kdim)``, ``value (S, N, vdim)``; ``key_padding_mask (N, S)``;
        ``attn_mask (L, S)`` or ``(N * num_heads, L, S)``. ``is_causal`` is a hint that
        ``attn_mask`` is the causal mask (which must be given, as in PyTorch)."""
        name = self._name()
        self_attention = query is key and key is value
        q, k, v = fnp.asarray(query), fnp.asarray(key), fnp.asarray(value)
        batched = self._check_shapes(name, q, k, v, key_padding_mask, attn_mask)
        if not batched:
            q, k, v = q[None], k[None], v[None]
            key_padding_mask = None if key_padding_mask is None else \
                fnp.asarray(key_padding_mask)[None]
        elif not self.batch_first:  # work batch-first: (N, L, E)
            q, k, v = (fnp.swapaxes(t, 0, 1) for t in (q, k, v))
        n_batch, n_q = q.shape[0], q.shape[1]
        key_padding_mask = _float_mask(name, "key_padding_mask", key_padding_mask, q.dtype)
        if is_causal and attn_mask is None:
            raise ValueError(f"{name}: need attn_mask if specifying the is_causal hint; "
                             f"Transformer.generate_square_subsequent_mask creates it")
        if is_causal and key_padding_mask is None and not need_weights:
            attn_mask = None  # as PyTorch: scaled_dot_product_attention builds the mask
        else:
            attn_mask = _float_mask(name, "attn_mask", attn_mask, q.dtype)
            is_causal = False
        q, k, v = self._project(q, k, v, self_attention)
        if self.bias_k is not None:
            k = fnp.concatenate([k, fnp.broadcast_to(self.bias_k, (n_batch, 1, self.embed_dim))],
                                axis=1)
            v = fnp.concatenate([v, fnp.broadcast_to(self.bias_v, (n_batch, 1, self.embed_dim))],
                                axis=1)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
        q, k, v = (fnp.swapaxes(t.reshape(n_batch, t.shape[1], self.num_heads, self.head_dim),
                                1, 2) for t in (q, k, v))
        if self.add_zero_attn:
            zeros = fnp.zeros((n_batch, self.num_heads, 1, self.head_dim), dtype=k.dtype,
                              device=k.device)
            k, v = fnp.concatenate([k, zeros], axis=2), fnp.concatenate([v, zeros], axis=2)
            attn_mask, key_padding_mask = _pad_last(attn_mask), _pad_last(key_padding_mask)
        mask = self._merge_masks(attn_mask, key_padding_mask, n_batch, n_q, k.shape[2])
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            scores = fnp.matmul(q * (1.0 / math.sqrt(self.head_dim)), fnp.swapaxes(k, -1, -2))
            weights = F.softmax(scores if mask is None else scores + mask, dim=-1)
            if dropout_p > 0.0:
                weights = F.dropout(weights, dropout_p, training=True)
            out = fnp.matmul(weights, v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, mask, dropout_p, is_causal)
            weights = None
        out = self.out_proj(fnp.swapaxes(out, 1, 2).reshape(n_batch, n_q, self.embed_dim))
        if weights is not None and average_attn_weights:
            weights = fnp.mean(weights, axis=1)
        if not batched:
            return out[0], None if weights is None else weights[0]
        return (out if self.batch_first else fnp.swapaxes(out, 0, 1)), weights

    def _check_shapes(self, name, q, k, v, key_padding_mask, attn_mask):
        """PyTorch's ``_mha_shape_check`` plus feature sizes; True for batched input."""
        if q.ndim not in (2, 3):
            raise ShapeError(f"{name}: query should be unbatched 2-D or batched 3-D, got shape "
                             f"{tuple(q.shape)}")
        batched = q.ndim == 3
        kind = "batched 3-D" if batched else "unbatched 2-D"
        if k.ndim != q.ndim or v.ndim != q.ndim:
            raise ShapeError(f"{name}: for {kind} query, key and value should also be {kind}, "
                             f"got shapes {tuple(k.shape)} and {tuple(v.shape)}")
        for what, x, size in (("query", q, self.embed_dim), ("key", k, self.kdim),
                              ("value", v, self.vdim)):
            if x.shape[-1] != size:
                raise ShapeError(f"{name} expected {what} with last dimension {size}, got "
                                 f"shape {tuple(x.shape)}")
        if k.shape[:-1] != v.shape[:-1] or (batched and k.shape[1 - self.batch_first]
                                            != q.shape[1 - self.batch_first]):
            raise ShapeError(f"{name}: query, key and value must agree in batch size and key "
                             f"and value in sequence length, got shapes {tuple(q.shape)}, "
                             f"{tuple(k.shape)} and {tuple(v.shape)} (batch_first="
                             f"{self.batch_first})")
        n_batch = q.shape[1 - self.batch_first] if batched else 1
        n_q, n_k = (q.shape[self.batch_first], k.shape[self.batch_first]) if batched else \
            (q.shape[0], k.shape[0])
        if key_padding_mask is not None:
            kpm = fnp.asarray(key_padding_mask)
            want = (n_batch, n_k) if batched else (n_k,)
            if tuple(kpm.shape) != want:
                raise ShapeError(f"{name} expected key_padding_mask of shape {want}, got "
                                 f"shape {tuple(kpm.shape)}")
        if attn_mask is not None:
            shape = tuple(fnp.asarray(attn_mask).shape)
            want = {2: (n_q, n_k), 3: (n_batch * self.num_heads, n_q, n_k)}.get(len(shape))
            if shape != want:
                raise ShapeError(f"{name} expected attn_mask of shape {(n_q, n_k)} or "
                                 f"{(n_batch * self.num_heads, n_q, n_k)} (batch * num_heads, "
                                 f"L, S), got shape {shape}")
        return batched

    def _project(self, q, k, v, self_attention):
        """The input projections. Self-attention (``query is key is value``) with the packed
        weight is one ``(N*L, E) x (E, 3E)`` product split afterwards, as PyTorch's
        ``_in_projection_packed``: one wide GEMM runs near BLAS peak where three narrow ones
        do not (MKL, d=128: 1.3 ms against 3 x 0.6-0.9 ms), and the backward has one product
        per operand instead of three. Otherwise one product per projection, the packed weight
        split."""
        w, b = self.in_proj_weight, self.in_proj_bias
        if w is not None and self_attention:
            return tuple(fnp.split(F.linear(q, w, b), 3, axis=-1))
        if w is not None:
            ws = fnp.split(w, 3, axis=0)
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        bs = (None,) * 3 if b is None else fnp.split(b, 3)
        return tuple(F.linear(x, wi, bi) for x, wi, bi in zip((q, k, v), ws, bs, strict=True))

    def _merge_masks(self, attn_mask, key_padding_mask, n_batch, n_q, n_k):
        """One additive mask broadcasting against the ``(N, heads, L, S)`` scores."""
        mask = None
        if attn_mask is not None:
            mask = attn_mask if attn_mask.ndim == 2 else \
                attn_mask.reshape(n_batch, self.num_heads, n_q, n_k)
        if key_padding_mask is not None:
            kpm = key_padding_mask[:, None, None, :]
            mask = kpm if mask is None else mask + kpm
        return mask
