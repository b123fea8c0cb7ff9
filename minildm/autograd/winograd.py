"""Winograd's minimal filtering: a 3x3 convolution with 2.25x fewer multiplications (Lavin & Gray 2016).

In one dimension, two outputs of a 3-tap filter g over four inputs d,

    y0 = d0 g0 + d1 g1 + d2 g2
    y1 = d1 g0 + d2 g1 + d3 g2,

take 6 multiplications done directly, but only 4 done this way (Winograd's F(2, 3); Lavin & Gray 2016, sec. 4):

    m0 = (d0 - d2) g0                  m1 = (d1 + d2) (g0 + g1 + g2) / 2
    m3 = (d1 - d3) g2                  m2 = (d2 - d1) (g0 - g1 + g2) / 2
    y0 = m0 + m1 + m2                  y1 = m1 - m2 - m3

(expand m1 + m2 and m1 - m2 to check). In matrices, y = A^T [(G g) * (B^T d)], * elementwise, with

    B^T = [[1, 0, -1, 0],      G = [[1,    0,   0],        A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],           [1/2,  1/2, 1/2],              [0, 1, -1, -1]]
           [0, -1, 1, 0],           [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1]]

Nesting the 1-D algorithm in the two image axes gives F(2x2, 3x3): a 4x4 tile d of the padded input makes a
2x2 tile of the output (Lavin & Gray 2016, eq. 8),

    Y = A^T [ (G g G^T) * (B^T d B) ] A,

with 16 multiplications instead of 4 * 9 = 36. In a layer, the products are summed over the C input channels, so
for each of the 16 positions (p, q) of a transformed tile it is a matrix product over the channels:

    V[p, q] = (B^T d B)[p, q]   for every tile: (tiles, C)       the input transform
    U[p, q] = (G g G^T)[p, q]   for every filter: (C, O)         the filter transform
    M[p, q] = V[p, q] @ U[p, q]                                  16 GEMMs, (tiles, C) @ (C, O)
    Y       = A^T M A           for every tile and filter        the output transform

The GEMMs hold all the multiplications: 16 * (N*H*W/4) * C * O against im2row's (N*H*W) * 9C * O, 4/9 as many.
The transforms are sums and differences (B, A) of whole arrays, one NumPy operation each, and one small product
(G). Rounding: float32 results stay within a few 1e-7 of float64, like im2row's: the tile's values 0, +-1, +-1/2
keep the transforms well conditioned.
"""
from __future__ import annotations

import numpy

from .. import backend
from .layout import channels_last_padded, to_channels_first

_G = numpy.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
_G_KRON_G = numpy.kron(_G, _G)  # (16, 9): (G g G^T)[p, q] = sum_{a, b} G[p, a] G[q, b] g[a, b], row 4p + q


def _b_transpose(tap, out):
    """out[0..3] = B^T d for the four taps d_i = tap(i): d0 - d2, d1 + d2, d2 - d1, d1 - d3 (into out, no copies)."""
    xp = backend.get_array_module(out[0])
    xp.subtract(tap(0), tap(2), out=out[0])
    xp.add(tap(1), tap(2), out=out[1])
    xp.subtract(tap(2), tap(1), out=out[2])
    xp.subtract(tap(1), tap(3), out=out[3])


def input_transform(x_pad, tiles_h: int, tiles_w: int):
    """x_pad: (N, 2 tiles_h + 2, 2 tiles_w + 2, C), channels-last -> V = B^T d B of every 4x4 tile d.

    Tile (i, j) starts at row 2i, column 2j: neighbouring tiles overlap by two pixels. B^T d B is applied as B^T
    down the tiles' rows (tile row a of every tile is the strided view x_pad[:, a::2]), then across their columns.
    Returns V: (4, 4, N * tiles_h * tiles_w, C), position (p, q) of every tile.
    """
    xp = backend.get_array_module(x_pad)
    n, _, width, c = x_pad.shape
    rows = xp.empty((4, n, tiles_h, width, c), dtype=x_pad.dtype)  # rows[p] = (B^T d)[p], at every column
    _b_transpose(lambda a: x_pad[:, a:a + 2 * tiles_h:2], rows)
    v = xp.empty((4, 4, n, tiles_h, tiles_w, c), dtype=x_pad.dtype)
    for p in range(4):  # (B^T d B)[p, q]: tile column b of row p is the strided view rows[p][:, :, b::2]
        _b_transpose(lambda b: rows[p][:, :, b:b + 2 * tiles_w:2], v[p])
    return v.reshape(4, 4, n * tiles_h * tiles_w, c)


def filter_transform(weight):
    """weight: (O, C, 3, 3) -> U = G g G^T of every 3x3 filter g, as a contiguous (4, 4, C, O) array: one product."""
    xp = backend.get_array_module(weight)
    o, c = weight.shape[:2]
    taps = weight.transpose(2, 3, 1, 0).reshape(9, c * o)  # taps[(a, b), (c, o)] = g[o, c, a, b]
    return (xp.asarray(_G_KRON_G, dtype=weight.dtype) @ taps).reshape(4, 4, c, o)


def output_transform(m, n: int, tiles_h: int, tiles_w: int):
    """m: (4, 4, N * tiles_h * tiles_w, O) -> Y = A^T m A of every tile, laid out as the output image
    (N, 2 tiles_h, 2 tiles_w, O), channels-last: A^T down the rows (m0 + m1 + m2, m1 - m2 - m3), then across."""
    xp = backend.get_array_module(m)
    o = m.shape[-1]
    m = m.reshape(4, 4, n, tiles_h, tiles_w, o)
    y = xp.empty((n, tiles_h, 2, tiles_w, 2, o), dtype=m.dtype)  # output pixel (2i + r, 2j + s) of tile (i, j)
    top = xp.add(m[0], m[1])  # (A^T m)[0] = m0 + m1 + m2, then (A^T m)[1] = m1 - m2 - m3: each (4, N, th, tw, O)
    top += m[2]
    bottom = xp.subtract(m[1], m[2])
    bottom -= m[3]
    for r, half in enumerate((top, bottom)):  # (A^T m A)[r, s], the same combinations across the columns
        left, right = y[:, :, r, :, 0], y[:, :, r, :, 1]
        xp.add(half[0], half[1], out=left)
        left += half[2]
        xp.subtract(half[1], half[2], out=right)
        right -= half[3]
    return y.reshape(n, 2 * tiles_h, 2 * tiles_w, o)


def conv3x3(x, weight, bias=None, padding: tuple = (1, 1)):
    """A 3x3 stride-1 convolution by F(2x2, 3x3): the numbers of ``conv2d``, up to rounding.

    x: (N, C, H, W); weight: (O, C, 3, 3); bias: (O,) or None; padding (ph, pw), each 0, 1 or 2. Arrays in and out
    (no autograd: ``conv2d`` wraps this forward with its stride-1 backward). Returns (N, O, H + 2ph - 2, W + 2pw - 2).
    """
    xp = backend.get_array_module(x)
    n, c, h, w = x.shape
    (ph, pw), o = padding, weight.shape[0]
    ho, wo = h + 2 * ph - 2, w + 2 * pw - 2
    tiles_h, tiles_w = (ho + 1) // 2, (wo + 1) // 2  # an odd size gets one more row/column of zeros below/right
    x_pad = channels_last_padded(x, ph, pw, 2 * tiles_h + 2 - h - ph, 2 * tiles_w + 2 - w - pw)
    v = input_transform(x_pad, tiles_h, tiles_w)  # (4, 4, tiles, C)
    del x_pad
    m = xp.matmul(v.reshape(16, -1, c), filter_transform(weight).reshape(16, c, o))  # the 16 GEMMs: (16, tiles, O)
    del v
    return to_channels_first(output_transform(m, n, tiles_h, tiles_w)[:, :ho, :wo], bias)
