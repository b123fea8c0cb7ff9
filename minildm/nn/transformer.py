"""The transformer part of the latent-diffusion U-Net (Rombach et al. 2022, sec. 3.3), diffusers' names:

    FeedForward:            net.0 (GEGLU: proj + gate) -> net.1 (dropout) -> net.2 (Linear)
    BasicTransformerBlock:  x = x + attn1(norm1(x))                       self-attention over the pixels
                            x = x + attn2(norm2(x), context)              cross-attention to the text
                            x = x + ff(norm3(x))                          (pre-norm residual, Xiong et al. 2020)
    Transformer2DModel:     h = proj_in(norm(x)) as (B, H*W, C) tokens -> blocks -> proj_out -> + x

so every pixel of the feature map can look at every other pixel and at every token of the prompt.
"""
from __future__ import annotations

from . import init
from .activations import GEGLU, LinearGELU
from .attention import Attention
from .containers import ModuleList
from .conv import Conv2d
from .dropout import Dropout
from .linear import Linear
from .module import Module, as_tensor
from .norm import GroupNorm, LayerNorm


class FeedForward(Module):
    """Position-wise MLP. Args: dim, dim_out (default dim), mult (hidden = dim * mult unless ``inner_dim``),
    dropout, activation_fn ("geglu", "gelu" or "gelu-approximate"), final_dropout, bias, generator.
    Shapes: (..., dim) -> (..., dim_out)."""

    def __init__(self, dim: int, dim_out: int | None = None, mult: int = 4, dropout: float = 0.0,
                 activation_fn: str = "geglu", final_dropout: bool = False, inner_dim: int | None = None,
                 bias: bool = True, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        inner_dim = int(dim * mult) if inner_dim is None else inner_dim
        if activation_fn == "geglu":
            act = GEGLU(dim, inner_dim, bias=bias, generator=g)
        elif activation_fn in ("gelu", "gelu-approximate"):
            act = LinearGELU(dim, inner_dim, approximate="tanh" if activation_fn == "gelu-approximate" else "none",
                             bias=bias, generator=g)
        else:
            raise ValueError(f"FeedForward: activation_fn must be 'geglu', 'gelu' or 'gelu-approximate', "
                             f"got {activation_fn!r}")
        layers = [act, Dropout(dropout, generator=g), Linear(inner_dim, dim_out or dim, bias=bias, generator=g)]
        if final_dropout:
            layers.append(Dropout(dropout, generator=g))
        self.net = ModuleList(layers)

    def forward(self, x):
        for layer in self.net:
            x = layer(x)
        return x


class BasicTransformerBlock(Module):
    """Self-attention, cross-attention and feed-forward, each pre-normed (LayerNorm) with a residual.

    Args:
        dim: token features.  num_attention_heads, attention_head_dim: of both attentions.
        dropout: inside attentions and feed-forward.  cross_attention_dim: context features; None builds no
            cross-attention (no norm2/attn2) unless ``double_self_attention``.
        activation_fn: of the feed-forward.  attention_bias: biases of to_q/to_k/to_v.
        only_cross_attention: attn1 also attends to the context.  double_self_attention: attn2 is self-attention.
        upcast_attention: accepted for compatibility (no effect in float32).
        norm_elementwise_affine, norm_eps: of the three LayerNorms.  final_dropout, ff_inner_dim, ff_bias,
        attention_out_bias: as in diffusers.  generator: int seed or host Generator.
    forward(hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        (B, T, dim) -> (B, T, dim); the masks are passed to attn1 and attn2 (see ``Attention``).
    """

    def __init__(self, dim: int, num_attention_heads: int, attention_head_dim: int, dropout: float = 0.0,
                 cross_attention_dim: int | None = None, activation_fn: str = "geglu", attention_bias: bool = False,
                 only_cross_attention: bool = False, double_self_attention: bool = False,
                 upcast_attention: bool = False, norm_elementwise_affine: bool = True, norm_eps: float = 1e-5,
                 final_dropout: bool = False, ff_inner_dim: int | None = None, ff_bias: bool = True,
                 attention_out_bias: bool = True, generator=None):
        super().__init__()
        g = init.host_generator(generator)
        self.dim, self.only_cross_attention = dim, only_cross_attention
        attn = dict(heads=num_attention_heads, dim_head=attention_head_dim, dropout=dropout, bias=attention_bias,
                    upcast_attention=upcast_attention, out_bias=attention_out_bias, generator=g)
        self.norm1 = LayerNorm(dim, eps=norm_eps, elementwise_affine=norm_elementwise_affine)
        self.attn1 = Attention(dim, cross_attention_dim=cross_attention_dim if only_cross_attention else None, **attn)
        if cross_attention_dim is not None or double_self_attention:
            self.norm2 = LayerNorm(dim, eps=norm_eps, elementwise_affine=norm_elementwise_affine)
            self.attn2 = Attention(dim, cross_attention_dim=None if double_self_attention else cross_attention_dim,
                                   **attn)
        else:
            self.norm2 = self.attn2 = None
        self.norm3 = LayerNorm(dim, eps=norm_eps, elementwise_affine=norm_elementwise_affine)
        self.ff = FeedForward(dim, dropout=dropout, activation_fn=activation_fn, final_dropout=final_dropout,
                              inner_dim=ff_inner_dim, bias=ff_bias, generator=g)

    def forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None):
        x = as_tensor(hidden_states)
        if x.ndim != 3 or x.shape[2] != self.dim:
            raise ValueError(f"BasicTransformerBlock: expected hidden_states (B, T, {self.dim}), got {x.shape}")
        context = encoder_hidden_states if self.only_cross_attention else None
        x = x + self.attn1(self.norm1(x), encoder_hidden_states=context, attention_mask=attention_mask)
        if self.attn2 is not None:
            x = x + self.attn2(self.norm2(x), encoder_hidden_states=encoder_hidden_states,
                               attention_mask=encoder_attention_mask)
        return x + self.ff(self.norm3(x))


def _keep_mask_to_bias(mask, dtype):
    """A 2-D (B, S) keep-mask (1/True = attend, 0/False = ignore) as diffusers' additive bias (1 - m) * -10000,
    shaped (B, 1, S); masks of other ranks are passed on unchanged."""
    if mask is None:
        return None
    mask = as_tensor(mask)
    if mask.ndim != 2:
        return mask
    return ((1 - mask.astype(dtype)) * -10000.0).reshape(mask.shape[0], 1, mask.shape[1])


class Transformer2DModel(Module):
    """A stack of BasicTransformerBlocks over the pixels of a feature map, with a residual around it all.

    Args:
        num_attention_heads, attention_head_dim: inner width = heads * head_dim.  in_channels: C.
        out_channels: output C (default in_channels).  num_layers: number of blocks.  dropout.
        norm_num_groups: groups of the input GroupNorm ``norm`` (eps 1e-6).  cross_attention_dim: context width.
        attention_bias, activation_fn, only_cross_attention, double_self_attention, upcast_attention,
        norm_elementwise_affine, norm_eps: passed to every block.
        use_linear_projection: proj_in/proj_out are Linear layers on the tokens (SD 2.x) instead of 1x1 convs
            (SD 1.x); the same map, stored in a different weight shape.
        generator: int seed or host Generator.
    forward(hidden_states, encoder_hidden_states=None, attention_mask=None, encoder_attention_mask=None):
        (B, C, H, W) -> (B, out_channels, H, W) (a Tensor, not diffusers' output object). 2-D masks are
        keep-masks (1 = attend), turned into the additive bias (1 - m) * -10000 as diffusers does.
    """

    def __init__(self, num_attention_heads: int, attention_head_dim: int, in_channels: int, *,
                 out_channels: int | None = None, num_layers: int = 1, dropout: float = 0.0,
                 norm_num_groups: int = 32, cross_attention_dim: int | None = None, attention_bias: bool = False,
                 activation_fn: str = "geglu", use_linear_projection: bool = False,
                 only_cross_attention: bool = False, double_self_attention: bool = False,
                 upcast_attention: bool = False, norm_elementwise_affine: bool = True, norm_eps: float = 1e-5,
                 generator=None):
        super().__init__()
        g = init.host_generator(generator)
        inner = num_attention_heads * attention_head_dim
        self.in_channels, self.out_channels, self.inner_dim = in_channels, out_channels or in_channels, inner
        self.use_linear_projection = use_linear_projection
        if self.out_channels != in_channels:  # accepted for diffusers' signature; the residual needs equal widths
            raise ValueError(f"Transformer2DModel: the residual needs out_channels == in_channels, got "
                             f"{self.out_channels} and {in_channels}")
        self.norm = GroupNorm(norm_num_groups, in_channels, eps=1e-6)
        self.proj_in = Linear(in_channels, inner, generator=g) if use_linear_projection else \
            Conv2d(in_channels, inner, 1, generator=g)
        self.transformer_blocks = ModuleList([
            BasicTransformerBlock(inner, num_attention_heads, attention_head_dim, dropout=dropout,
                                  cross_attention_dim=cross_attention_dim, activation_fn=activation_fn,
                                  attention_bias=attention_bias, only_cross_attention=only_cross_attention,
                                  double_self_attention=double_self_attention, upcast_attention=upcast_attention,
                                  norm_elementwise_affine=norm_elementwise_affine, norm_eps=norm_eps, generator=g)
            for _ in range(num_layers)])
        self.proj_out = Linear(inner, self.out_channels, generator=g) if use_linear_projection else \
            Conv2d(inner, self.out_channels, 1, generator=g)

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None, encoder_attention_mask=None):
        x = as_tensor(hidden_states)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Transformer2DModel: expected input with {self.in_channels} channels "
                             f"(B, {self.in_channels}, H, W), got {x.shape}")
        b, c, h, w = x.shape
        attention_mask = _keep_mask_to_bias(attention_mask, x.dtype)
        encoder_attention_mask = _keep_mask_to_bias(encoder_attention_mask, x.dtype)

        hs = self.norm(x)
        if self.use_linear_projection:  # tokens first, then a Linear on each token
            hs = self.proj_in(hs.reshape(b, c, h * w).swapaxes(1, 2))
        else:  # a 1x1 conv on the image, then tokens
            hs = self.proj_in(hs).reshape(b, self.inner_dim, h * w).swapaxes(1, 2)
        for block in self.transformer_blocks:
            hs = block(hs, attention_mask=attention_mask, encoder_hidden_states=encoder_hidden_states,
                       encoder_attention_mask=encoder_attention_mask)
        if self.use_linear_projection:
            hs = self.proj_out(hs).swapaxes(1, 2).reshape(b, self.out_channels, h, w)
        else:
            hs = self.proj_out(hs.swapaxes(1, 2).reshape(b, self.inner_dim, h, w))
        return hs + x
