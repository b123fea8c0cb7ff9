"""``ResnetBlock2D``: the residual block of the U-Net and the VAE (He et al. 2016, in the pre-activation form of
He et al. 2016b with GroupNorm, as in DDPM, Ho et al. 2020), matching diffusers' parameter names:

    h = conv1(SiLU(norm1(x)))
    h = h + time_emb_proj(SiLU(temb))[:, :, None, None]        (skipped when temb_channels is None: the VAE)
    h = conv2(dropout(SiLU(norm2(h))))
    out = (shortcut(x) + h) / output_scale_factor               shortcut = 1x1 conv_shortcut when C changes

The time embedding is added as a per-channel bias, so every spatial position learns the same shift for a given t.
"""
from __future__ import annotations

from . import init
from .activations import get_activation
from .conv import Conv2d
from .dropout import Dropout
from .linear import Linear
from .module import Module, as_tensor
from .norm import GroupNorm


class ResnetBlock2D(Module):
    """Args:
        in_channels: C_in.  out_channels: C_out (default C_in).
        temb_channels: width of the time embedding, or None for no time conditioning (VAE).
        groups, groups_out: GroupNorm groups of norm1 and norm2 (groups_out defaults to groups).
        eps: GroupNorm epsilon.  dropout: probability before conv2.  output_scale_factor: divides the sum.
        time_embedding_norm: "default" (add the projected embedding) or "scale_shift"
            (h = norm2(h) * (1 + scale) + shift, with time_emb_proj producing 2 C_out values).
        non_linearity: "swish" (= "silu", the default and SD's) or "gelu".
        use_in_shortcut: force (True) or forbid (False) the 1x1 conv_shortcut; default: only when C_in != C_out.
        conv_shortcut_bias: bias of conv_shortcut.  conv_2d_out_channels: output channels of conv2 (default C_out).
        generator: int seed or host Generator for the init (one stream for all children).
    forward(x, temb=None): x (B, C_in, H, W), temb (B, temb_channels) -> (B, C_out, H, W); temb is required when
    temb_channels is set and must be None when it is not.
    """

    def __init__(self, in_channels: int, out_channels: int | None = None, temb_channels: int | None = 512,
                 groups: int = 32, groups_out: int | None = None, eps: float = 1e-6, dropout: float = 0.0,
                 output_scale_factor: float = 1.0, time_embedding_norm: str = "default", non_linearity: str = "swish",
                 use_in_shortcut: bool | None = None, conv_shortcut_bias: bool = True,
                 conv_2d_out_channels: int | None = None, generator=None):
        super().__init__()
        if time_embedding_norm not in ("default", "scale_shift"):
            raise ValueError(f"ResnetBlock2D: time_embedding_norm must be 'default' or 'scale_shift', "
                             f"got {time_embedding_norm!r}")
        if time_embedding_norm == "scale_shift" and temb_channels is None:
            raise ValueError("ResnetBlock2D: time_embedding_norm='scale_shift' needs temb_channels")
        g = init.host_generator(generator)
        out_channels = in_channels if out_channels is None else out_channels
        conv_2d_out_channels = conv_2d_out_channels or out_channels
        self.in_channels, self.out_channels, self.temb_channels = in_channels, conv_2d_out_channels, temb_channels
        self.output_scale_factor, self.time_embedding_norm = output_scale_factor, time_embedding_norm

        self.norm1 = GroupNorm(groups, in_channels, eps=eps)
        self.conv1 = Conv2d(in_channels, out_channels, 3, padding=1, generator=g)
        if temb_channels is not None:
            width = 2 * out_channels if time_embedding_norm == "scale_shift" else out_channels
            self.time_emb_proj = Linear(temb_channels, width, generator=g)
        else:
            self.time_emb_proj = None
        self.norm2 = GroupNorm(groups_out or groups, out_channels, eps=eps)
        self.dropout = Dropout(dropout, generator=g)
        self.conv2 = Conv2d(out_channels, conv_2d_out_channels, 3, padding=1, generator=g)
        self.nonlinearity = get_activation(non_linearity, "ResnetBlock2D")
        if use_in_shortcut is None:
            use_in_shortcut = in_channels != conv_2d_out_channels
        self.conv_shortcut = Conv2d(in_channels, conv_2d_out_channels, 1, bias=conv_shortcut_bias,
                                    generator=g) if use_in_shortcut else None

    def forward(self, x, temb=None):
        x = as_tensor(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"ResnetBlock2D: expected input with {self.in_channels} channels "
                             f"(B, {self.in_channels}, H, W), got {x.shape}")
        h = self.conv1(self.nonlinearity(self.norm1(x)))
        if self.time_emb_proj is not None:
            if temb is None:
                raise ValueError(f"ResnetBlock2D: temb is required (built with temb_channels={self.temb_channels}); "
                                 "build it with temb_channels=None for a block without time conditioning")
            temb = as_tensor(temb)
            if temb.shape != (x.shape[0], self.temb_channels):
                raise ValueError(f"ResnetBlock2D: expected temb of shape ({x.shape[0]}, {self.temb_channels}) "
                                 f"(batch, temb_channels), got {temb.shape}")
            temb = self.time_emb_proj(self.nonlinearity(temb))[:, :, None, None]  # (B, C, 1, 1): a bias per channel
        elif temb is not None:
            raise ValueError("ResnetBlock2D: got temb, but the block was built with temb_channels=None")

        if self.time_embedding_norm == "scale_shift":
            scale, shift = temb.chunk(2, axis=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + temb) if temb is not None else self.norm2(h)
        h = self.conv2(self.dropout(self.nonlinearity(h)))
        shortcut = self.conv_shortcut(x) if self.conv_shortcut is not None else x
        out = shortcut + h
        return out / self.output_scale_factor if self.output_scale_factor != 1 else out

    def extra_repr(self) -> str:
        return f"in_channels={self.in_channels}, out_channels={self.out_channels}, temb_channels={self.temb_channels}"
