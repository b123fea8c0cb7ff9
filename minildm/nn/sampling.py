"""Resolution changes between U-Net / VAE levels: ``Upsample2D`` (x2) and ``Downsample2D`` (/2), as diffusers'.

    Upsample2D:   nearest-neighbour x2 (each pixel becomes a 2x2 block), then a 3x3 conv named ``conv``
                  (the "resize-convolution" of Odena et al. 2016, which avoids transposed-conv checkerboards)
    Downsample2D: a 3x3 conv with stride 2 named ``conv``; with ``padding=0`` the input is first padded by one
                  row at the bottom and one column at the right (the VAE encoder's asymmetric padding);
                  with ``use_conv=False``, 2x2 average pooling instead.
"""
from __future__ import annotations

from .. import backend
from . import functional as F
from .conv import Conv2d
from .module import Module, as_tensor


def _check(name: str, x, channels: int):
    if x.ndim != 4 or x.shape[1] != channels:
        raise ValueError(f"{name}: expected input with {channels} channels (N, {channels}, H, W), got {x.shape}")


def nearest_resize(x, size):
    """Nearest-neighbour resize of (N, C, H, W) to ``size`` = (H', W'): output pixel (i, j) copies input pixel
    (floor(i * H / H'), floor(j * W / W')), PyTorch's ``mode="nearest"`` rule. For exact integer factors prefer
    ``F.interpolate``, which is faster."""
    xp = backend.xp()
    (_, _, h, w), (out_h, out_w) = x.shape, size
    rows = xp.minimum(xp.floor(xp.arange(out_h) * (h / out_h)).astype(xp.int64), h - 1)
    cols = xp.minimum(xp.floor(xp.arange(out_w) * (w / out_w)).astype(xp.int64), w - 1)
    return x[:, :, rows][:, :, :, cols]


class Upsample2D(Module):
    """Args:
        channels: input channels.  use_conv: follow the resize with a conv (``conv``).
        out_channels: output channels of the conv (default: channels).
        kernel_size, padding: of the conv (3 and 1, keeping the size).
    forward(x, output_size=None): x (N, C, H, W) -> (N, out_channels, 2H, 2W), or ``output_size`` (H', W') when
    given (the U-Net passes it when the skip connection's size is odd).
    """

    def __init__(self, channels: int, use_conv: bool = True, out_channels: int | None = None, kernel_size: int = 3,
                 padding: int = 1, bias: bool = True, generator=None):
        super().__init__()
        self.channels, self.out_channels, self.use_conv = channels, out_channels or channels, use_conv
        if not use_conv and self.out_channels != channels:
            raise ValueError(f"Upsample2D: out_channels={out_channels} needs use_conv=True (channels={channels})")
        self.conv = Conv2d(channels, self.out_channels, kernel_size, padding=padding, bias=bias,
                           generator=generator) if use_conv else None

    def forward(self, x, output_size=None):
        x = as_tensor(x)
        _check("Upsample2D", x, self.channels)
        if output_size is None or tuple(output_size) == (2 * x.shape[2], 2 * x.shape[3]):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        else:
            x = nearest_resize(x, tuple(output_size))
        return self.conv(x) if self.conv is not None else x


class Downsample2D(Module):
    """Args:
        channels: input channels.  use_conv: stride-2 conv ``conv`` (else 2x2 average pooling).
        out_channels: output channels of the conv (default: channels).
        padding: of the conv; 0 means "pad one row/column at the bottom/right", as the VAE encoder does.
    Shapes: (N, C, H, W) -> (N, out_channels, ceil(H/2), ceil(W/2)) with the default padding=1.
    """

    def __init__(self, channels: int, use_conv: bool = True, out_channels: int | None = None, padding: int = 1,
                 kernel_size: int = 3, bias: bool = True, generator=None):
        super().__init__()
        self.channels, self.out_channels = channels, out_channels or channels
        self.use_conv, self.padding = use_conv, padding
        if not use_conv and self.out_channels != channels:
            raise ValueError(f"Downsample2D: out_channels={out_channels} needs use_conv=True (channels={channels})")
        self.conv = Conv2d(channels, self.out_channels, kernel_size, stride=2, padding=padding, bias=bias,
                           generator=generator) if use_conv else None

    def forward(self, x):
        x = as_tensor(x)
        _check("Downsample2D", x, self.channels)
        if self.conv is None:  # 2x2 average pooling; an odd last row/column is dropped, as in torch's AvgPool2d
            n, c, h, w = x.shape
            if h % 2 or w % 2:
                x = x[:, :, : h - h % 2, : w - w % 2]
            return x.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
        if self.padding == 0:
            x = F.pad(x, (0, 1, 0, 1))  # (left, right, top, bottom) of the last two axes, torch's order
        return self.conv(x)
