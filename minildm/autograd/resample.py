"""Resampling ops around the convolutions: constant ``pad`` and nearest-neighbour ``interpolate`` (upsampling)."""
from __future__ import annotations

import numpy

from .. import backend
from .ops import as_tensor
from .tensor import Tensor


def pad(x, pad, value: float = 0.0) -> Tensor:  # noqa: A002 (torch's name)
    """Constant padding with torch's convention: ``pad`` lists (before, after) pairs starting from the LAST axis.

    ``pad(x, (0, 1, 0, 1))`` on (N, C, H, W) adds one column on the right and one row at the bottom.
    """
    x = as_tensor(x)
    pad = tuple(int(p) for p in pad)
    if len(pad) % 2 or len(pad) // 2 > x.ndim or any(p < 0 for p in pad):
        raise ValueError(f"pad: padding {pad} must be non-negative (before, after) pairs for at most {x.ndim} axes "
                         f"of shape {x.shape}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    xp = backend.get_array_module(x.data)
    out = xp.pad(x.data, widths, constant_values=value)
    inside = tuple(slice(before, before + size) for (before, _), size in zip(widths, x.shape))
    return Tensor.from_op(out, (x,), lambda g: (g[inside],), "pad")


def interpolate(x, scale_factor=2, mode: str = "nearest") -> Tensor:
    """Nearest-neighbour upsampling by an integer factor: each pixel becomes an sH x sW block.

    x: (N, C, H, W) -> (N, C, H*sH, W*sW). The backward sums each block's gradient back onto its pixel.
    """
    x = as_tensor(x)
    if mode != "nearest":
        raise ValueError(f"interpolate: only mode='nearest' is implemented, got {mode!r}")
    if x.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {x.shape}")
    factors = (scale_factor, scale_factor) if numpy.ndim(scale_factor) == 0 else tuple(scale_factor)
    if len(factors) != 2 or any(f != int(f) or f < 1 for f in factors):
        raise ValueError(f"interpolate: scale_factor must be a positive integer (or a pair), got {scale_factor!r}")
    sh, sw = int(factors[0]), int(factors[1])
    n, c, h, w = x.shape
    xp = backend.get_array_module(x.data)
    # (N, C, H, 1, W, 1) broadcast to (N, C, H, sH, W, sW): row i*sH + a, column j*sW + b copies pixel (i, j)
    blocks = xp.broadcast_to(x.data[:, :, :, None, :, None], (n, c, h, sh, w, sw))
    out = blocks.reshape(n, c, h * sh, w * sw)
    return Tensor.from_op(out, (x,), lambda g: (g.reshape(n, c, h, sh, w, sw).sum(axis=(3, 5)),), "interpolate")
