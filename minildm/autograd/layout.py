"""Moving images between the two memory layouts the convolutions use.

Models keep images channels-first, NCHW: (N, C, H, W), the layout of PyTorch and diffusers. The convolution
kernels gather windows of pixels, and there the channels-last layout NHWC, (N, H, W, C), is the fast one: the C
numbers of a pixel, and the kW*C numbers of a kernel row, are neighbours in memory, so a gather copies long
contiguous runs instead of W-wide pieces of each channel's rows. Each convolution therefore moves its input to
NHWC once (padding it on the way) and its output back to NCHW once (adding the bias on the way).
"""
from __future__ import annotations

from .. import backend

_CHANNEL_GROUP, _LARGE_MAP = 8, 1024


def channels_last_padded(x, top: int, left: int, bottom: int | None = None, right: int | None = None):
    """x: (N, C, H, W) -> (N, top + H + bottom, left + W + right, C): channels-last, inside a border of zeros.

    ``bottom`` and ``right`` default to ``top`` and ``left`` (symmetric padding). One copy.
    """
    xp = backend.get_array_module(x)
    bottom = top if bottom is None else bottom
    right = left if right is None else right
    n, c, h, w = x.shape
    x_pad = xp.empty((n, top + h + bottom, left + w + right, c), dtype=x.dtype)
    if top or bottom or left or right:  # zero only the border; the inside is overwritten next
        x_pad[:, :top], x_pad[:, top + h:], x_pad[:, :, :left], x_pad[:, :, left + w:] = 0, 0, 0, 0
    inside = x_pad[:, top:top + h, left:left + w]
    # NumPy copies a transposition in the destination's order, so each pixel reads C numbers that lie H*W apart.
    # On large maps those reads miss the cache, unless the copy goes a few channels at a time: groups of 8 measured
    # 3-4.7x faster on 32x32 maps, and slower on the 8x8 maps of the U-Net, hence the threshold.
    group = _CHANNEL_GROUP if h * w >= _LARGE_MAP and not backend.is_device_array(x) else c
    for start in range(0, c, group):
        inside[..., start:start + group] = x[:, start:start + group].transpose(0, 2, 3, 1)
    return x_pad


def to_channels_first(y, bias=None):
    """y: (N, H, W, C), channels-last (any strides) -> a contiguous (N, C, H, W) array, + bias (C,) if given.

    One transposing copy; the bias rides along with it instead of costing a pass of its own.
    """
    xp = backend.get_array_module(y)
    nchw = y.transpose(0, 3, 1, 2)
    if bias is None:
        return xp.ascontiguousarray(nchw)
    out = xp.empty(nchw.shape, dtype=xp.result_type(y, bias))
    return xp.add(nchw, bias[:, None, None], out=out)
