"""``Attention``: multi-head scaled dot-product attention (Vaswani et al. 2017), diffusers' ``Attention`` layout.

For queries from ``x`` (B, T, query_dim) and keys/values from a context (B, S, cross_attention_dim) -- the same
``x`` for self-attention, the text encoder's states for cross-attention (Rombach et al. 2022, eq. 3):

    Q = x W_q,  K = ctx W_k,  V = ctx W_v                      to_q, to_k, to_v: (B, T|S, heads * dim_head)
    head_h = softmax(Q_h K_h^T / sqrt(dim_head) + mask) V_h     per head, on dim_head-wide slices
    out = concat_h(head_h) W_o + b_o                            to_out.0 (then to_out.1: dropout)

The VAE's mid-block attention is the same layer on an image: (B, C, H, W) is normalised by ``group_norm``, read
as H*W tokens of C features, attended over, turned back into (B, C, H, W), added to the input
(``residual_connection``) and divided by ``rescale_output_factor``.

To look at the probabilities softmax(Q_h K_h^T / sqrt(dim_head) + mask), open ``attention_maps.record_attention``
around the forward passes; it sets ``recorder`` on the layers it records (None, the default, records nothing).
"""
from __future__ import annotations

from ..autograd import Tensor
from . import functional as F
from . import init
from .containers import ModuleList
from .dropout import Dropout
from .linear import Linear
from .module import Module, as_tensor
from .norm import GroupNorm


class Attention(Module):
    """Args:
        query_dim: features of x.  cross_attention_dim: features of the context (None: self-attention only,
            the context is x itself).  heads, dim_head: number and width of the heads (inner = heads * dim_head).
        dropout: after the output projection.  bias: biases of to_q/to_k/to_v.  out_bias: bias of to_out.0.
        upcast_attention, upcast_softmax: accepted for diffusers compatibility; minildm's attention already
            computes in the dtype of its inputs (float32 by default), so they change nothing there.
        norm_num_groups: if set, a GroupNorm ``group_norm`` (eps ``eps``) over the channels first (the VAE).
        scale_qk: scale the scores by 1/sqrt(dim_head) (else 1).  out_dim: output features (default query_dim).
        residual_connection: add the input to the output.  rescale_output_factor: divide the output by it.
        generator: int seed or host Generator for the init.
    Attributes:
        recorder: None, or (AttentionRecorder, this layer's name) while ``record_attention`` records this layer.
    forward(hidden_states, encoder_hidden_states=None, attention_mask=None):
        hidden_states: (B, T, query_dim), or (B, query_dim, H, W) -> same layout, out_dim features.
        encoder_hidden_states: (B, S, cross_attention_dim) context, or None (self-attention).
        attention_mask: boolean (True = may attend) or additive float (0 = attend, large negative = block), of
            shape (B, S) or (B, 1, S) (per key), (B, T, S), or (B, heads, T, S).
    """

    recorder = None  # set only inside attention_maps.record_attention

    def __init__(self, query_dim: int, cross_attention_dim: int | None = None, heads: int = 8, dim_head: int = 64,
                 dropout: float = 0.0, bias: bool = False, upcast_attention: bool = False,
                 upcast_softmax: bool = False, norm_num_groups: int | None = None, out_bias: bool = True,
                 scale_qk: bool = True, eps: float = 1e-5, rescale_output_factor: float = 1.0,
                 residual_connection: bool = False, out_dim: int | None = None, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.query_dim, self.heads, self.dim_head = query_dim, heads, dim_head
        self.is_cross_attention = cross_attention_dim is not None
        self.cross_attention_dim = cross_attention_dim if cross_attention_dim is not None else query_dim
        self.inner_dim, self.out_dim = heads * dim_head, out_dim if out_dim is not None else query_dim
        self.scale = dim_head ** -0.5 if scale_qk else 1.0
        self.rescale_output_factor, self.residual_connection = rescale_output_factor, residual_connection
        self.upcast_attention, self.upcast_softmax = upcast_attention, upcast_softmax
        if residual_connection and self.out_dim != query_dim:
            raise ValueError(f"Attention: residual_connection needs out_dim == query_dim, got {self.out_dim} "
                             f"and {query_dim}")

        self.group_norm = GroupNorm(norm_num_groups, query_dim, eps=eps) if norm_num_groups is not None else None
        self.to_q = Linear(query_dim, self.inner_dim, bias=bias, generator=g)
        self.to_k = Linear(self.cross_attention_dim, self.inner_dim, bias=bias, generator=g)
        self.to_v = Linear(self.cross_attention_dim, self.inner_dim, bias=bias, generator=g)
        self.to_out = ModuleList([Linear(self.inner_dim, self.out_dim, bias=out_bias, generator=g),
                                  Dropout(dropout, generator=g)])

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None):
        x = as_tensor(hidden_states)
        residual, spatial = x, x.ndim == 4
        if spatial:  # an image: (B, C, H, W) -> H*W tokens of C features
            b, c, h, w = x.shape
            if c != self.query_dim:
                raise ValueError(f"Attention: expected input with {self.query_dim} channels "
                                 f"(B, {self.query_dim}, H, W), got {x.shape}")
            x = x.reshape(b, c, h * w)
            if self.group_norm is not None:
                x = self.group_norm(x)  # GroupNorm normalises over (channels of the group, tokens): same thing
            x = x.swapaxes(1, 2)  # (B, HW, C)
        else:
            if x.ndim != 3 or x.shape[2] != self.query_dim:
                raise ValueError(f"Attention: expected hidden_states (B, T, {self.query_dim}) or "
                                 f"(B, {self.query_dim}, H, W), got {x.shape}")
            if self.group_norm is not None:
                x = self.group_norm(x.swapaxes(1, 2)).swapaxes(1, 2)
        batch, t = x.shape[0], x.shape[1]

        if encoder_hidden_states is None:
            if self.cross_attention_dim != self.query_dim:
                raise ValueError(f"Attention: encoder_hidden_states is required: to_k/to_v expect "
                                 f"cross_attention_dim={self.cross_attention_dim} features, but the queries have "
                                 f"query_dim={self.query_dim}")
            context = x
        else:
            context = as_tensor(encoder_hidden_states)
            if context.ndim != 3 or context.shape[0] != batch:
                raise ValueError(f"Attention: encoder_hidden_states must be (B={batch}, S, "
                                 f"{self.cross_attention_dim}), got {context.shape}")
            if context.shape[2] != self.cross_attention_dim:
                raise ValueError(f"Attention: encoder_hidden_states has dim {context.shape[2]}, expected "
                                 f"cross_attention_dim={self.cross_attention_dim}")
        s = context.shape[1]

        # (B, T, heads * d) -> (B, heads, T, d): each head attends over its own d-wide slice of the features. The
        # split is a strided view, not a copy: BLAS reads each head's (T, d) matrix in place (row stride heads * d).
        q = self._split_heads(self.to_q(x), batch, t)
        k = self._split_heads(self.to_k(context), batch, s)
        v = self._split_heads(self.to_v(context), batch, s)
        mask = self._prepare_mask(attention_mask, batch, t, s)
        if self.recorder is not None:  # opt-in, see attention_maps.py: P recomputed, outside the graph
            recorder, name = self.recorder
            recorder.record(name, self, q.data, k.data, None if mask is None else mask.data)
        out = F.scaled_dot_product_attention(q, k, v, mask=mask, scale=self.scale)  # (B, heads, T, d)
        out = out.permute(0, 2, 1, 3).reshape(batch, t, self.inner_dim)  # heads side by side again (one copy)
        out = self.to_out[1](self.to_out[0](out))

        if spatial:
            out = out.swapaxes(1, 2).reshape(b, self.out_dim, h, w)
        if self.residual_connection:
            out = out + residual
        return out / self.rescale_output_factor if self.rescale_output_factor != 1 else out

    def _split_heads(self, h, batch: int, length: int):
        """(B, L, heads * d) -> (B, heads, L, d), a view."""
        return h.reshape(batch, length, self.heads, self.dim_head).permute(0, 2, 1, 3)

    def _prepare_mask(self, mask, batch: int, t: int, s: int):
        """Any accepted mask as a Tensor that broadcasts to the scores (B, heads, T, S), or None."""
        if mask is None:
            return None
        mask = mask if isinstance(mask, Tensor) else Tensor(mask)
        shape = mask.shape
        if mask.ndim == 2:  # (B, S): one value per key
            mask = mask.reshape(shape[0], 1, 1, shape[1])
        elif mask.ndim == 3:  # (B, T or 1, S)
            mask = mask.reshape(shape[0], 1, shape[1], shape[2])
        ok = mask.ndim == 4 and all(m in (1, n) for m, n in zip(mask.shape, (batch, self.heads, t, s)))
        if not ok:
            raise ValueError(f"Attention: attention_mask has shape {shape}, expected (B, S), (B, 1, S), (B, T, S) "
                             f"or (B, heads, T, S) with B={batch}, heads={self.heads}, T={t}, S={s}")
        return mask

    def extra_repr(self) -> str:
        return (f"query_dim={self.query_dim}, cross_attention_dim={self.cross_attention_dim}, heads={self.heads}, "
                f"dim_head={self.dim_head}")
